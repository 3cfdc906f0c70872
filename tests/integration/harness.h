#ifndef JA_HARNESS_H
#define JA_HARNESS_H

/* What the integration tests share: the real broker the CTest fixture started
 * (scripts/broker.sh), the stand-in Jube and the service as child processes, and a small AMQP
 * client to publish and collect messages. Every wait is bounded. */

#include <amqp.h>
#include <amqp_framing.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SAMPLE_MODEL "90c425fd-101a-420b-91d1-cb7a24a969cc"

/* Names of one test's queues and exchanges, all prefixed with the test's name. */
typedef struct {
    char inbound[300];
    char outbound[300];
    char outbound_queue[300];
    char dead_letter_exchange[300];
    char dead_letter_queue[300];
    bool defaults; /* the service runs without name flags: these are its defaults */
} topology_names;

typedef struct {
    pid_t pid;
    int port;
} stub_process;

typedef struct {
    pid_t pid;
    char log_path[512];
} service_process;

/* The local three-node cluster (scripts/cluster.sh), when the test runs on it
 * (JA_TEST_CLUSTER_DIR). Then the broker functions below use a node the test has not taken down,
 * and broker_uri() lists all three. Nodes are numbered 1 to 3. */
bool on_cluster(void);
int cluster_node_port(int node);
/* The node listening on an AMQP port, or 0. */
int cluster_node_of_port(int port);
/* Runs scripts/cluster.sh COMMAND (kill, stop-node, start-node, pause, resume) on a node. */
void cluster_fault(const char *command, int node);
/* The node of the quorum leader of a queue, or 0. */
int cluster_leader_of(const char *queue);

/* The broker's AMQP port, from the fixture's broker.env. */
int broker_port(void);
/* amqp://guest:guest@127.0.0.1:PORT/ */
const char *broker_uri(void);
/* Runs rabbitmqctl against the test broker; returns its exit status. */
int broker_ctl(const char *args);
/* Has the broker close every connection whose client named itself `name`; returns how many. */
int broker_close_connections(const char *name);
/* Ready plus unacknowledged messages of a queue, from rabbitmqctl (about a second); -1 when the
 * broker does not list it. */
long queue_messages_total(const char *queue);
/* Waits (bounded) until a queue holds nothing, unacknowledged messages included. */
void wait_queue_empty_and_acked(const char *queue, int timeout_ms);
/* The process id of the broker's VM. */
pid_t broker_pid(void);
/* The node's amqps:// listener (127.0.0.1, certificate for "localhost", client certificate
 * required) and the files scripts/tls-certs.sh made for it: "ca.pem", "client.pem", ... */
int broker_tls_port(void);
/* The node's management UI and HTTP API (login guest/guest), on 127.0.0.1. */
int broker_management_port(void);
const char *broker_tls_file(const char *name);
/* Kills the broker's VM at once, then starts it again on the same port and data. */
void broker_kill_and_restart(void);

/* The running test's name (set by the runner, test.h). Queues, exchanges and service logs are
 * named after it: the first label a test uses stands for the test itself, another label gives
 * "<test>.<label>" (a second topology or service of the same test). */
const char *test_name(void);

/* Starts a test: names its topology, deletes anything left of it from an earlier run, and
 * empties its service log. */
topology_names test_begin(const char *label);
/* The same with the service's default names (jubeInbound, jubeOutbound, jubeDeadLetter). */
topology_names test_begin_with_default_names(const char *label);
void delete_topology(const topology_names *names);

/* Starts jube-stub with extra arguments (NULL-terminated); waits until it listens. */
stub_process stub_start(const char *const *extra_args);
void stub_stop(stub_process *stub);
/* True when a line of the stand-ins' shared log holds text (it logs each traceparent it gets). */
bool stub_log_contains(const char *text);
/* A counter from GET /stats ("requests", "invocations", "failures", ...). */
long stub_stat(const stub_process *stub, const char *name);
/* Moves the stand-in's knee (started with --knee): from now on `calls` are served unslowed. */
void stub_set_knee(const stub_process *stub, int calls);

/* Starts the service on the test's topology (binding no queue to the outbound exchange when
 * names->outbound_queue is empty), with extra arguments (NULL-terminated), and waits
 * until it consumes the inbound queue. */
service_process service_start(const char *label, const topology_names *names,
                              const stub_process *stub, const char *const *extra_args);
/* The same without waiting; then wait for `count` copies at once (they may race to declare). */
service_process service_launch(const char *label, const topology_names *names,
                               const stub_process *stub, const char *const *extra_args);
void service_wait_consuming(const service_process *services, int count,
                            const topology_names *names);
/* Starts the service without waiting, with exactly these arguments after the binary name. */
service_process service_spawn(const char *label, const char *const *args);
/* Sends sig and waits (bounded) for the exit; returns the exit status, or 128+signal. */
int service_stop(service_process *service, int sig);
/* Waits (bounded) for an exit that should happen by itself. */
int service_wait_exit(service_process *service, int timeout_ms);
/* True when the service's log contains text. */
bool service_log_contains(const service_process *service, const char *text);

/* A connection of the test's own (as guest, or as another user of the broker). */
amqp_connection_state_t test_connect(void);
amqp_connection_state_t test_connect_as(const char *user, const char *password);
amqp_connection_state_t test_connect_to(int port, const char *user, const char *password);
void test_disconnect(amqp_connection_state_t conn);

/* The depth of a queue over a connection of its own, or -1 when the broker cannot be reached
 * or the queue does not exist: for polling while the broker may be restarting. */
long queue_depth_now(const char *queue);

/* Waits, through broker restarts, until the queue holds at least `count` messages. */
void wait_depth_at_least(const char *queue, long count, int timeout_ms);
void wait_depth_zero(const char *queue, int timeout_ms);
/* Messages in a queue (passive declare); -1 when it does not exist. */
long queue_depth(amqp_connection_state_t conn, const char *queue);
long queue_consumers(amqp_connection_state_t conn, const char *queue);
/* Waits (bounded) until the queue holds `count` messages. */
bool wait_queue_depth(amqp_connection_state_t conn, const char *queue, long count, int timeout_ms);
void declare_queue(amqp_connection_state_t conn, const char *queue, bool durable);

/* One header for publish_message. kind 'S' (long string), 'x' (bytes) or 'I' (int). */
typedef struct {
    const char *key;
    char kind;
    const char *text;
    int number;
} test_header;

typedef struct {
    const char *correlation_id;
    const char *message_id;
    const char *reply_to;
    const char *content_type;
    const char *user_id;
    const test_header *headers;
    int header_count;
} test_properties;

/* Publishes to the default exchange (routing key = queue) persistently, with confirms. */
void publish_message(amqp_connection_state_t conn, const char *queue, const void *body, size_t len,
                     const test_properties *props);
/* The same with only the model header: the usual way to send a transaction. */
void publish_transaction(amqp_connection_state_t conn, const char *queue, const char *body);
/* Publishes transactions "<prefix>-<from>" up to "<prefix>-<to - 1>" (their TxnId) over a
 * connection of its own, and waits for the broker's confirms. */
void publish_range(const char *queue, const char *prefix, long from, long to);
/* Waits for the confirms of everything published so far. */
void wait_confirms(amqp_connection_state_t conn);

/* Collects up to `count` messages from a queue (auto-ack), waiting at most timeout_ms. The
 * envelopes belong to the caller: free them with free_messages. */
typedef struct {
    amqp_envelope_t *items;
    size_t count;
} message_list;
message_list collect_messages(amqp_connection_state_t conn, const char *queue, size_t count,
                              int timeout_ms);
void free_messages(message_list *list);

/* Helpers on received messages. */
const amqp_field_value_t *header_of(const amqp_envelope_t *msg, const char *key);
bool header_text_is(const amqp_envelope_t *msg, const char *key, const char *text);
int header_int(const amqp_envelope_t *msg, const char *key);
bool bytes_equal(amqp_bytes_t bytes, const char *text);
/* The EntityInstanceEntryId of a Jube response (a fresh string), or NULL. */
char *response_entry_id(const amqp_envelope_t *msg);

/* The sample transaction with its TxnId replaced (a fresh string). */
char *sample_transaction(const char *txn_id);

/* Milliseconds on a monotonic clock. */
long long now_ms(void);
/* Sleeps ms milliseconds: only between looks at a condition, or as the length of a fault. */
void pause_ms(long ms);

/* A loopback port nobody listens on now. */
int free_port(void);

/* GET http://127.0.0.1:port{path}; returns the body (malloc'd) and the status, or NULL when
 * nothing answered. */
char *http_get(int port, const char *path, int *status);
/* The same with any method, optional Basic credentials (base64 of user:password) and an optional
 * JSON body. */
char *http_request(int port, const char *method, const char *path, const char *basic_auth,
                   const char *json, int *status);

/* The value of one sample line ("name{labels} value") of a /metrics scrape, or -1. */
double metric_value(const char *scrape, const char *series);
/* Scrapes http://127.0.0.1:port/metrics for one series; -1 when absent or unreachable. */
double scrape_metric(int port, const char *series);
/* Waits (bounded) until a series reaches value. */
bool wait_metric_at_least(int port, const char *series, double value, int timeout_ms);
/* A memory figure of a process from /proc/PID/status, in KiB: "VmRSS" (resident now) or "VmHWM"
 * (its peak); -1 when unknown. */
long memory_kib(pid_t pid, const char *field);

/* The usual start of a test: its topology, the stand-in Jube (with stub_args) and the service
 * (with service_args) on it, both lists NULL-terminated or NULL, and a connection of the test's
 * own; all named after the running test. */
typedef struct {
    topology_names t;
    stub_process stub;
    service_process svc;
    amqp_connection_state_t conn;
} fixture;
fixture fixture_start(const char *const *stub_args, const char *const *service_args);
/* The usual end: the service stopped with SIGTERM (it must exit 0), the connection closed, the
 * stand-in stopped. */
void fixture_stop(fixture *f);

#endif
