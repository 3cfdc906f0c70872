#include "harness.h"

#include "test.h"

#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void pause_ms(long ms)
{
    struct timespec d = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    nanosleep(&d, NULL);
}

static const char *broker_dir(void)
{
    const char *dir = getenv("JA_TEST_BROKER_DIR");
    if (!dir)
        FAIL("JA_TEST_BROKER_DIR is not set: run the integration tests through ctest");
    return dir;
}

/* KEY's value in DIR/FILE, a file of KEY=VALUE lines written by scripts/broker.sh or
 * scripts/cluster.sh (quotes around the value dropped). Fails the test when it is not there. */
static const char *env_file_value(const char *dir, const char *file, const char *key)
{
    static char values[4][512];
    static int next;
    char *out = values[next++ % 4];
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "r");
    if (!f)
        FAIL("cannot read %s: is the test fixture running?", path);
    char line[1024];
    size_t n = strlen(key);
    out[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, key, n) != 0 || line[n] != '=')
            continue;
        const char *value = line + n + 1 + (line[n + 1] == '"');
        snprintf(out, sizeof values[0], "%.*s", (int)strcspn(value, "\"\n"), value);
    }
    fclose(f);
    if (!out[0])
        FAIL("no %s in %s", key, path);
    return out;
}

/* A port from broker.env (written by scripts/broker.sh start). */
static int broker_env_port(const char *key)
{
    return atoi(env_file_value(broker_dir(), "broker.env", key));
}

/* ---- the local cluster (scripts/cluster.sh), when the test runs on it ---- */

static const char *cluster_dir(void)
{
    return getenv("JA_TEST_CLUSTER_DIR");
}

bool on_cluster(void)
{
    return cluster_dir() != NULL;
}

static bool node_down[4]; /* as the test's own faults left them */

static const char *cluster_env(const char *key)
{
    return env_file_value(cluster_dir(), "cluster.env", key);
}

int cluster_node_port(int node)
{
    const char *ports = cluster_env("JA_CLUSTER_PORTS");
    int p[3];
    if (node < 1 || node > 3 || sscanf(ports, "%d %d %d", &p[0], &p[1], &p[2]) != 3)
        FAIL("no port for node %d in '%s'", node, ports);
    return p[node - 1];
}

int cluster_node_of_port(int port)
{
    for (int node = 1; node <= 3; node++)
        if (cluster_node_port(node) == port)
            return node;
    return 0;
}

static int live_node(void)
{
    for (int node = 1; node <= 3; node++)
        if (!node_down[node])
            return node;
    FAIL("every node of the cluster is down");
}

void cluster_fault(const char *command, int node)
{
    char line[1024];
    snprintf(line, sizeof line, "bash '%s/scripts/cluster.sh' %s '%s' %d >/dev/null", JA_SOURCE_DIR,
             command, cluster_dir(), node);
    if (system(line) != 0)
        FAIL("cluster.sh %s %d failed", command, node);
    bool down = strcmp(command, "kill") == 0 || strcmp(command, "stop-node") == 0 ||
                strcmp(command, "pause") == 0;
    node_down[node] = down;
}

int broker_port(void)
{
    if (on_cluster())
        return cluster_node_port(live_node());
    static int port;
    if (!port)
        port = broker_env_port("JA_TEST_AMQP_PORT");
    return port;
}

int broker_management_port(void)
{
    return broker_env_port("JA_TEST_MANAGEMENT_PORT");
}

int broker_tls_port(void)
{
    static int port;
    if (!port)
        port = broker_env_port("JA_TEST_TLS_PORT");
    return port;
}

const char *broker_tls_file(const char *name)
{
    static _Thread_local char path[8][512];
    static _Thread_local int next;
    char *out = path[next++ % 8];
    snprintf(out, sizeof path[0], "%s/tls/%s", broker_dir(), name);
    return out;
}

const char *broker_uri(void)
{
    if (on_cluster())
        return cluster_env("JA_CLUSTER_URIS");
    static char uri[128];
    snprintf(uri, sizeof uri, "amqp://guest:guest@127.0.0.1:%d/", broker_port());
    return uri;
}

/* "bash scripts/broker.sh ctl DIR", or the same for a live node of the cluster. */
static void ctl_prefix(char *out, size_t size)
{
    if (on_cluster())
        snprintf(out, size, "bash '%s/scripts/cluster.sh' ctl '%s' %d", JA_SOURCE_DIR,
                 cluster_dir(), live_node());
    else
        snprintf(out, size, "bash '%s/scripts/broker.sh' ctl '%s'", JA_SOURCE_DIR, broker_dir());
}

int broker_ctl(const char *args)
{
    char prefix[768], command[2048];
    ctl_prefix(prefix, sizeof prefix);
    snprintf(command, sizeof command, "%s %s >/dev/null 2>&1", prefix, args);
    int status = system(command);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* rabbitmqctl's tab-separated answer to `args`, filtered by a shell pipeline, to read. */
static FILE *broker_ctl_output(const char *args, const char *filter)
{
    char prefix[768], command[2048];
    ctl_prefix(prefix, sizeof prefix);
    snprintf(command, sizeof command, "%s %s --no-table-headers -q 2>/dev/null | %s", prefix, args,
             filter);
    return popen(command, "r");
}

int cluster_leader_of(const char *queue)
{
    char filter[512];
    snprintf(filter, sizeof filter, "awk -F'\t' '$1 == \"%s\" {print $2}'", queue);
    FILE *out = broker_ctl_output("list_queues name leader", filter);
    int port = 0;
    if (!out || fscanf(out, "jubeamqp%d@", &port) != 1)
        port = 0;
    if (out)
        pclose(out);
    return cluster_node_of_port(port);
}

long queue_messages_total(const char *queue)
{
    char filter[512];
    snprintf(filter, sizeof filter, "awk -F'\t' '$1 == \"%s\" {print $2}'", queue);
    FILE *out = broker_ctl_output("list_queues name messages", filter);
    long total = -1;
    if (!out || fscanf(out, "%ld", &total) != 1)
        total = -1;
    if (out)
        pclose(out);
    return total;
}

void wait_queue_empty_and_acked(const char *queue, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    /* Each look is a rabbitmqctl call (a second of CPU): a pause between them. */
    while (queue_messages_total(queue) != 0) {
        if (now_ms() > deadline)
            FAIL("%s still has unacknowledged messages after %d ms", queue, timeout_ms);
        pause_ms(500);
    }
}

int broker_close_connections(const char *name)
{
    char filter[512];
    snprintf(filter, sizeof filter, "grep -F '\"connection_name\",\"%s\"' | cut -f1", name);
    FILE *pids = broker_ctl_output("list_connections pid client_properties", filter);
    if (!pids)
        FAIL("cannot list the broker's connections");
    char pid[256];
    int closed = 0;
    while (fgets(pid, sizeof pid, pids)) {
        pid[strcspn(pid, "\n")] = '\0';
        char args[512];
        snprintf(args, sizeof args, "close_connection '%s' 'closed by a fault test'", pid);
        if (broker_ctl(args) == 0)
            closed++;
    }
    pclose(pids);
    return closed;
}

pid_t broker_pid(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/broker.pid", broker_dir());
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (!f || fscanf(f, "%d", &pid) != 1)
        FAIL("cannot read %s", path);
    fclose(f);
    return (pid_t)pid;
}

void broker_kill_and_restart(void)
{
    char command[1024];
    snprintf(command, sizeof command,
             "bash '%s/scripts/broker.sh' kill '%s' && bash '%s/scripts/broker.sh' start '%s' %d "
             ">/dev/null",
             JA_SOURCE_DIR, broker_dir(), JA_SOURCE_DIR, broker_dir(), broker_port());
    if (system(command) != 0)
        FAIL("could not kill and restart the broker");
}

/* ---- the test's own AMQP client ---- */

typedef struct {
    amqp_connection_state_t conn;
    uint64_t published;
    uint64_t confirmed;
    amqp_channel_t next_channel;
} client_state;

static client_state clients[8];

static client_state *state_of(amqp_connection_state_t conn)
{
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++)
        if (clients[i].conn == conn)
            return &clients[i];
    FAIL("unknown test connection");
}

static void check_reply(amqp_connection_state_t conn, const char *what)
{
    amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        FAIL("%s: %s", what, amqp_error_string2(r.library_error));
    if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = r.reply.decoded;
        FAIL("%s: channel closed %u %.*s", what, m->reply_code, (int)m->reply_text.len,
             (char *)m->reply_text.bytes);
    }
    FAIL("%s: broker error (method 0x%08x)", what, r.reply.id);
}

amqp_connection_state_t test_connect(void)
{
    return test_connect_as("guest", "guest");
}

amqp_connection_state_t test_connect_as(const char *user, const char *password)
{
    return test_connect_to(broker_port(), user, password);
}

amqp_connection_state_t test_connect_to(int port, const char *user, const char *password)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    struct timeval timeout = {.tv_sec = 10};
    if (amqp_socket_open_noblock(socket, "127.0.0.1", port, &timeout) != AMQP_STATUS_OK)
        FAIL("cannot connect to the test broker on port %d", port);
    amqp_rpc_reply_t r =
        amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL)
        FAIL("cannot log in to the test broker as %s", user);
    amqp_channel_open(conn, 1);
    check_reply(conn, "channel.open");
    amqp_confirm_select(conn, 1);
    check_reply(conn, "confirm.select");
    for (size_t i = 0; i < sizeof clients / sizeof clients[0]; i++) {
        if (!clients[i].conn) {
            clients[i] = (client_state){.conn = conn, .next_channel = 2};
            return conn;
        }
    }
    FAIL("too many test connections");
}

void test_disconnect(amqp_connection_state_t conn)
{
    client_state *s = state_of(conn);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    memset(s, 0, sizeof *s);
}

/* A fresh channel for one probe, so that a 404 closing it does not disturb channel 1. */
static amqp_channel_t open_probe_channel(amqp_connection_state_t conn)
{
    client_state *s = state_of(conn);
    amqp_channel_t ch = s->next_channel++;
    if (s->next_channel > 2000)
        s->next_channel = 2;
    amqp_channel_open(conn, ch);
    check_reply(conn, "channel.open");
    return ch;
}

static bool passive_declare(amqp_connection_state_t conn, const char *queue, long *messages,
                            long *consumers)
{
    amqp_channel_t ch = open_probe_channel(conn);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, ch, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    if (!ok) {
        amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
        if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
            r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            amqp_channel_close_ok_t close_ok = {0};
            amqp_send_method(conn, ch, AMQP_CHANNEL_CLOSE_OK_METHOD, &close_ok);
            return false;
        }
        check_reply(conn, "queue.declare (passive)");
    }
    *messages = ok->message_count;
    *consumers = ok->consumer_count;
    amqp_channel_close(conn, ch, AMQP_REPLY_SUCCESS);
    return true;
}

/* The connection queue_depth_now polls on, kept between looks: a connection made for every look
 * (every 20 ms while a test waits) cost the broker more than the messages of the test. Made
 * again after any failure (the broker restarting, a queue that does not exist closing the
 * channel). The test process is one thread. */
static amqp_connection_state_t poll_conn;

static void poll_conn_drop(void)
{
    if (poll_conn)
        amqp_destroy_connection(poll_conn);
    poll_conn = NULL;
}

static bool poll_conn_open(void)
{
    if (poll_conn)
        return true;
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    struct timeval timeout = {.tv_sec = 2};
    if (amqp_socket_open_noblock(socket, "127.0.0.1", broker_port(), &timeout) != AMQP_STATUS_OK ||
        amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
            AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(conn);
        return false;
    }
    amqp_channel_open(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) {
        amqp_destroy_connection(conn);
        return false;
    }
    /* Reads must not wait for ever on a broker that froze. */
    struct timeval rpc = {.tv_sec = 5};
    amqp_set_rpc_timeout(conn, &rpc);
    poll_conn = conn;
    return true;
}

long queue_depth_now(const char *queue)
{
    if (!poll_conn_open())
        return -1;
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(poll_conn, 1, amqp_cstring_bytes(queue), 1, 0, 0, 0, amqp_empty_table);
    if (!ok) {
        poll_conn_drop();
        return -1;
    }
    return ok->message_count;
}

long queue_depth(amqp_connection_state_t conn, const char *queue)
{
    long messages, consumers;
    return passive_declare(conn, queue, &messages, &consumers) ? messages : -1;
}

long queue_consumers(amqp_connection_state_t conn, const char *queue)
{
    long messages, consumers;
    return passive_declare(conn, queue, &messages, &consumers) ? consumers : -1;
}

bool wait_queue_depth(amqp_connection_state_t conn, const char *queue, long count, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (queue_depth(conn, queue) != count) {
        if (now_ms() > deadline)
            return false;
        pause_ms(20);
    }
    return true;
}

void declare_queue(amqp_connection_state_t conn, const char *queue, bool durable)
{
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, durable, 0, 0, amqp_empty_table);
    check_reply(conn, "queue.declare");
}

static const char *log_dir(void);

const char *test_name(void)
{
    const char *name = getenv("JA_TEST_NAME");
    return name && name[0] ? name : "test";
}

/* Queues, exchanges and logs carry the running test's name. A test that sets up a second
 * topology or service under another label gets "<test>.<label>" for it. */
static char first_label[128];

static void name_after_test(const char *label, char *out, size_t size)
{
    if (!first_label[0])
        snprintf(first_label, sizeof first_label, "%s", label);
    if (strcmp(label, first_label) == 0)
        snprintf(out, size, "%s", test_name());
    else
        snprintf(out, size, "%s.%s", test_name(), label);
}

static void empty_log(const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.log", log_dir(), name);
    FILE *log = fopen(path, "w");
    if (log)
        fclose(log);
}

topology_names test_begin_with_default_names(const char *label)
{
    char name[256];
    name_after_test(label, name, sizeof name);
    topology_names n = {.defaults = true};
    snprintf(n.inbound, sizeof n.inbound, "jubeInbound");
    snprintf(n.outbound, sizeof n.outbound, "jubeOutbound");
    snprintf(n.outbound_queue, sizeof n.outbound_queue, "%s.outq", name);
    snprintf(n.dead_letter_exchange, sizeof n.dead_letter_exchange, "jubeDeadLetter");
    snprintf(n.dead_letter_queue, sizeof n.dead_letter_queue, "jubeDeadLetter");
    delete_topology(&n);
    empty_log(name);
    return n;
}

topology_names test_begin(const char *label)
{
    char name[256];
    name_after_test(label, name, sizeof name);
    topology_names n = {.defaults = false};
    snprintf(n.inbound, sizeof n.inbound, "%s.in", name);
    snprintf(n.outbound, sizeof n.outbound, "%s.out", name);
    snprintf(n.outbound_queue, sizeof n.outbound_queue, "%s.outq", name);
    snprintf(n.dead_letter_exchange, sizeof n.dead_letter_exchange, "%s.dlx", name);
    snprintf(n.dead_letter_queue, sizeof n.dead_letter_queue, "%s.dlq", name);
    delete_topology(&n);
    empty_log(name);
    return n;
}

void delete_topology(const topology_names *names)
{
    amqp_connection_state_t conn = test_connect();
    const char *queues[] = {names->inbound, names->outbound_queue, names->dead_letter_queue};
    for (size_t i = 0; i < 3; i++) {
        amqp_queue_delete(conn, 1, amqp_cstring_bytes(queues[i]), 0, 0);
        check_reply(conn, "queue.delete");
    }
    const char *exchanges[] = {names->outbound, names->dead_letter_exchange};
    for (size_t i = 0; i < 2; i++) {
        amqp_exchange_delete(conn, 1, amqp_cstring_bytes(exchanges[i]), 0);
        check_reply(conn, "exchange.delete");
    }
    test_disconnect(conn);
}

static void read_confirm_frames(amqp_connection_state_t conn, client_state *s, int timeout_ms)
{
    amqp_frame_t frame;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    int rc = amqp_simple_wait_frame_noblock(conn, &frame, &tv);
    if (rc == AMQP_STATUS_TIMEOUT)
        return;
    if (rc != AMQP_STATUS_OK)
        FAIL("test publisher connection failed: %s", amqp_error_string2(rc));
    if (frame.frame_type != AMQP_FRAME_METHOD)
        return;
    if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        amqp_basic_ack_t *ack = frame.payload.method.decoded;
        if (ack->delivery_tag > s->confirmed)
            s->confirmed = ack->delivery_tag;
    } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        FAIL("the broker refused a test message");
    } else if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_t *m = frame.payload.method.decoded;
        FAIL("the broker closed the test channel: %.*s", (int)m->reply_text.len,
             (char *)m->reply_text.bytes);
    }
}

void publish_message(amqp_connection_state_t conn, const char *queue, const void *body, size_t len,
                     const test_properties *tp)
{
    client_state *s = state_of(conn);
    amqp_basic_properties_t props = {0};
    amqp_table_entry_t entries[16];
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (tp) {
        if (tp->correlation_id) {
            props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
            props.correlation_id = amqp_cstring_bytes(tp->correlation_id);
        }
        if (tp->message_id) {
            props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
            props.message_id = amqp_cstring_bytes(tp->message_id);
        }
        if (tp->reply_to) {
            props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
            props.reply_to = amqp_cstring_bytes(tp->reply_to);
        }
        if (tp->content_type) {
            props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
            props.content_type = amqp_cstring_bytes(tp->content_type);
        }
        if (tp->user_id) {
            props._flags |= AMQP_BASIC_USER_ID_FLAG;
            props.user_id = amqp_cstring_bytes(tp->user_id);
        }
        if (tp->header_count > 0) {
            props._flags |= AMQP_BASIC_HEADERS_FLAG;
            for (int i = 0; i < tp->header_count && i < 16; i++) {
                const test_header *h = &tp->headers[i];
                entries[i].key = amqp_cstring_bytes(h->key);
                if (h->kind == 'I') {
                    entries[i].value.kind = AMQP_FIELD_KIND_I32;
                    entries[i].value.value.i32 = h->number;
                } else {
                    entries[i].value.kind =
                        h->kind == 'x' ? AMQP_FIELD_KIND_BYTES : AMQP_FIELD_KIND_UTF8;
                    entries[i].value.value.bytes = amqp_cstring_bytes(h->text);
                }
            }
            props.headers.num_entries = tp->header_count;
            props.headers.entries = entries;
        }
    }
    amqp_bytes_t payload = {.len = len, .bytes = (void *)body};
    int rc = amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 0, 0, &props,
                                payload);
    if (rc != AMQP_STATUS_OK)
        FAIL("test publish failed: %s", amqp_error_string2(rc));
    s->published++;
    /* Keep confirms from piling up unread. */
    if (s->published % 256 == 0)
        read_confirm_frames(conn, s, 0);
}

void publish_transaction(amqp_connection_state_t conn, const char *queue, const char *body)
{
    test_header model = {.key = "EntityAnalysisModelGuid", .kind = 'S', .text = SAMPLE_MODEL};
    test_properties props = {
        .content_type = "application/json", .headers = &model, .header_count = 1};
    publish_message(conn, queue, body, strlen(body), &props);
}

void publish_range(const char *queue, const char *prefix, long from, long to)
{
    amqp_connection_state_t conn = test_connect();
    for (long i = from; i < to; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%ld", prefix, i);
        char *body = sample_transaction(id);
        publish_transaction(conn, queue, body);
        free(body);
    }
    wait_confirms(conn);
    test_disconnect(conn);
}

void wait_confirms(amqp_connection_state_t conn)
{
    client_state *s = state_of(conn);
    long long deadline = now_ms() + 60000;
    while (s->confirmed < s->published) {
        if (now_ms() > deadline)
            FAIL("the broker confirmed %llu of %llu test messages within 60 s",
                 (unsigned long long)s->confirmed, (unsigned long long)s->published);
        read_confirm_frames(conn, s, 100);
    }
}

message_list collect_messages(amqp_connection_state_t conn, const char *queue, size_t count,
                              int timeout_ms)
{
    message_list list = {.items = calloc(count ? count : 1, sizeof(amqp_envelope_t))};
    amqp_channel_t ch = open_probe_channel(conn);
    amqp_basic_qos(conn, ch, 0, 500, 0);
    check_reply(conn, "basic.qos");
    amqp_basic_consume_ok_t *ok = amqp_basic_consume(conn, ch, amqp_cstring_bytes(queue),
                                                     amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
    check_reply(conn, "basic.consume");
    amqp_bytes_t tag = amqp_bytes_malloc_dup(ok->consumer_tag);
    long long deadline = now_ms() + timeout_ms;
    /* Acked 64 at a time ("multiple"): one ack per message cost the broker a fair share of a
     * 10,000-message test. Whatever is read is acked before the channel closes. */
    uint64_t unacked_tag = 0;
    while (list.count < count && now_ms() < deadline) {
        amqp_maybe_release_buffers(conn);
        struct timeval tv = {.tv_usec = 100000};
        amqp_envelope_t envelope;
        amqp_rpc_reply_t r = amqp_consume_message(conn, &envelope, &tv, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            unacked_tag = envelope.delivery_tag;
            list.items[list.count++] = envelope;
            if (list.count % 64 == 0) {
                amqp_basic_ack(conn, ch, unacked_tag, 1);
                unacked_tag = 0;
            }
        } else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                   r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
            amqp_frame_t frame;
            if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK)
                FAIL("test consumer connection failed");
        } else if (!(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                     r.library_error == AMQP_STATUS_TIMEOUT)) {
            FAIL("test consumer failed on queue %s", queue);
        }
    }
    if (unacked_tag)
        amqp_basic_ack(conn, ch, unacked_tag, 1);
    /* Closing the channel returns anything delivered but not read to the queue. */
    amqp_channel_close(conn, ch, AMQP_REPLY_SUCCESS);
    amqp_bytes_free(tag);
    return list;
}

void free_messages(message_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        amqp_destroy_envelope(&list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

const amqp_field_value_t *header_of(const amqp_envelope_t *msg, const char *key)
{
    const amqp_basic_properties_t *p = &msg->message.properties;
    if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < p->headers.num_entries; i++)
        if (bytes_equal(p->headers.entries[i].key, key))
            return &p->headers.entries[i].value;
    return NULL;
}

bool bytes_equal(amqp_bytes_t bytes, const char *text)
{
    return bytes.len == strlen(text) && memcmp(bytes.bytes, text, bytes.len) == 0;
}

bool header_text_is(const amqp_envelope_t *msg, const char *key, const char *text)
{
    const amqp_field_value_t *v = header_of(msg, key);
    return v && (v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES) &&
           bytes_equal(v->value.bytes, text);
}

int header_int(const amqp_envelope_t *msg, const char *key)
{
    const amqp_field_value_t *v = header_of(msg, key);
    if (!v)
        FAIL("header %s is missing", key);
    if (v->kind != AMQP_FIELD_KIND_I32)
        FAIL("header %s is of kind '%c', not I", key, v->kind);
    return v->value.i32;
}

char *response_entry_id(const amqp_envelope_t *msg)
{
    cJSON *json = cJSON_ParseWithLength(msg->message.body.bytes, msg->message.body.len);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(json, "EntityInstanceEntryId");
    char *copy = cJSON_IsString(id) ? strdup(id->valuestring) : NULL;
    cJSON_Delete(json);
    return copy;
}

char *sample_transaction(const char *txn_id)
{
    static char *sample;
    if (!sample) {
        FILE *f = fopen(JA_SAMPLE_REQUEST, "rb");
        if (!f)
            FAIL("cannot read %s", JA_SAMPLE_REQUEST);
        sample = calloc(1, 16384);
        fread(sample, 1, 16383, f);
        fclose(f);
    }
    const char *marker = "\"TxnId\": \"0987654321\"";
    const char *at = strstr(sample, marker);
    if (!at)
        FAIL("the sample transaction has no TxnId");
    size_t size = strlen(sample) + strlen(txn_id) + 16;
    char *out = malloc(size);
    snprintf(out, size, "%.*s\"TxnId\": \"%s\"%s", (int)(at - sample), sample, txn_id,
             at + strlen(marker));
    return out;
}

/* ---- child processes ---- */

static const char *log_dir(void)
{
    const char *dir = getenv("JA_TEST_LOG_DIR");
    return dir ? dir : "/tmp";
}

stub_process stub_start(const char *const *extra_args)
{
    int fds[2];
    if (pipe(fds) != 0)
        FAIL("pipe: %s", strerror(errno));
    const char *argv[40] = {JA_STUB_BIN, "--port", "0"};
    int argc = 3;
    for (int i = 0; extra_args && extra_args[i] && argc < 38; i++)
        argv[argc++] = extra_args[i];
    argv[argc] = NULL;
    char stub_log[512];
    snprintf(stub_log, sizeof stub_log, "%s/jube-stub.log", log_dir());
    pid_t pid = fork();
    if (pid == 0) {
        /* A test that dies must not leave its servers behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int log = open(stub_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(log, STDERR_FILENO);
        close(log);
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execv(JA_STUB_BIN, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    char line[128] = {0};
    size_t len = 0;
    long long deadline = now_ms() + 10000;
    while (!strchr(line, '\n') && len < sizeof line - 1) {
        struct pollfd pfd = {.fd = fds[0], .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&pfd, 1, left) <= 0)
            FAIL("jube-stub did not start within 10 s");
        ssize_t n = read(fds[0], line + len, sizeof line - 1 - len);
        if (n <= 0)
            FAIL("jube-stub exited at start");
        len += (size_t)n;
    }
    close(fds[0]);
    stub_process stub = {.pid = pid};
    if (sscanf(line, "listening on 127.0.0.1:%d", &stub.port) != 1)
        FAIL("unexpected first line from jube-stub: %s", line);
    return stub;
}

void stub_stop(stub_process *stub)
{
    if (stub->pid > 0) {
        kill(stub->pid, SIGKILL);
        waitpid(stub->pid, NULL, 0);
    }
    stub->pid = 0;
}

/* One HTTP/1.1 request to the stand-in (Connection: close); its whole answer into answer. */
static void stub_request(const stub_process *stub, const char *method_and_path, char *answer,
                         size_t size)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)stub->port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        FAIL("cannot reach jube-stub for %s", method_and_path);
    char request[256];
    snprintf(request, sizeof request,
             "%s HTTP/1.1\r\nHost: stub\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
             method_and_path);
    if (write(fd, request, strlen(request)) < 0)
        FAIL("cannot send to jube-stub");
    size_t len = 0;
    ssize_t n;
    while (len < size - 1 && (n = read(fd, answer + len, size - 1 - len)) > 0)
        len += (size_t)n;
    answer[len] = '\0';
    close(fd);
}

long stub_stat(const stub_process *stub, const char *name)
{
    char answer[2048];
    stub_request(stub, "GET /stats", answer, sizeof answer);
    char key[64];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *at = strstr(answer, key);
    if (!at)
        FAIL("no %s in jube-stub's /stats: %s", name, answer);
    return strtol(at + strlen(key), NULL, 10);
}

void stub_set_knee(const stub_process *stub, int calls)
{
    char path[64], answer[512];
    snprintf(path, sizeof path, "PUT /knee/%d", calls);
    stub_request(stub, path, answer, sizeof answer);
    if (strncmp(answer, "HTTP/1.1 200", 12) != 0)
        FAIL("jube-stub refused %s: %s", path, answer);
}

service_process service_spawn(const char *label, const char *const *args)
{
    service_process s = {0};
    char name[256];
    name_after_test(label, name, sizeof name);
    snprintf(s.log_path, sizeof s.log_path, "%s/%s.log", log_dir(), name);
    const char *argv[64] = {JA_SERVICE_BIN};
    int argc = 1;
    for (int i = 0; args && args[i] && argc < 63; i++)
        argv[argc++] = args[i];
    argv[argc] = NULL;
    fprintf(stderr, "service log: %s\n", s.log_path);
    s.pid = fork();
    if (s.pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(s.log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
        execv(JA_SERVICE_BIN, (char *const *)argv);
        _exit(127);
    }
    return s;
}

service_process service_launch(const char *label, const topology_names *names,
                               const stub_process *stub, const char *const *extra_args)
{
    char jube_url[64];
    snprintf(jube_url, sizeof jube_url, "http://127.0.0.1:%d", stub ? stub->port : 1);
    const char *args[64] = {
        "--amqp-uri",         broker_uri(), "--jube-url",          jube_url,
        "--heartbeat",        "10",         "--reconnect-base-ms", "100",
        "--reconnect-max-ms", "1000",       "--retry-base-ms",     "20",
        "--retry-max-ms",     "500",
    };
    int argc = 14;
    if (names->outbound_queue[0]) {
        args[argc++] = "--outbound-queue";
        args[argc++] = names->outbound_queue;
    }
    if (!names->defaults) {
        const char *named[] = {"--inbound-queue",        names->inbound,
                               "--outbound-exchange",    names->outbound,
                               "--dead-letter-exchange", names->dead_letter_exchange,
                               "--dead-letter-queue",    names->dead_letter_queue};
        for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
            args[argc++] = named[i];
    }
    for (int i = 0; extra_args && extra_args[i] && argc < 62; i++)
        args[argc++] = extra_args[i];
    args[argc] = NULL;
    return service_spawn(label, args);
}

void service_wait_consuming(const service_process *services, int count, const topology_names *names)
{
    amqp_connection_state_t conn = test_connect();
    long long deadline = now_ms() + 20000;
    while (queue_consumers(conn, names->inbound) < count) {
        for (int i = 0; i < count; i++) {
            int status;
            if (waitpid(services[i].pid, &status, WNOHANG) == services[i].pid)
                FAIL("the service exited at start (status %d); see %s", status,
                     services[i].log_path);
        }
        if (now_ms() > deadline)
            FAIL("%d copies of the service did not consume %s within 20 s; see %s", count,
                 names->inbound, services[0].log_path);
        pause_ms(20);
    }
    /* The publisher declares the outbound side; wait for it too. */
    while (queue_depth(conn, names->dead_letter_queue) < 0) {
        if (now_ms() > deadline)
            FAIL("the service did not declare %s within 20 s; see %s", names->dead_letter_queue,
                 services[0].log_path);
        pause_ms(20);
    }
    test_disconnect(conn);
}

service_process service_start(const char *label, const topology_names *names,
                              const stub_process *stub, const char *const *extra_args)
{
    service_process s = service_launch(label, names, stub, extra_args);
    service_wait_consuming(&s, 1, names);
    return s;
}

int service_wait_exit(service_process *service, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        int status;
        pid_t done = waitpid(service->pid, &status, WNOHANG);
        if (done == service->pid) {
            service->pid = 0;
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        if (now_ms() > deadline) {
            kill(service->pid, SIGKILL);
            waitpid(service->pid, NULL, 0);
            service->pid = 0;
            FAIL("the service did not exit within %d ms; see %s", timeout_ms, service->log_path);
        }
        pause_ms(10);
    }
}

int service_stop(service_process *service, int sig)
{
    if (service->pid <= 0)
        return -1;
    kill(service->pid, sig);
    return service_wait_exit(service, 60000);
}

static bool file_contains(const char *path, const char *text)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char line[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

bool service_log_contains(const service_process *service, const char *text)
{
    return file_contains(service->log_path, text);
}

bool stub_log_contains(const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/jube-stub.log", log_dir());
    return file_contains(path, text);
}

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &len) != 0)
        FAIL("cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(addr.sin_port);
}

char *http_get(int port, const char *path, int *status)
{
    return http_request(port, "GET", path, NULL, NULL, status);
}

char *http_request(int port, const char *method, const char *path, const char *basic_auth,
                   const char *json, int *status)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET,
                               .sin_port = htons((uint16_t)port),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval timeout = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return NULL;
    }
    /* HTTP/1.0: the answer comes whole, never chunked, and ends with the connection. */
    size_t body_len = json ? strlen(json) : 0;
    char *request = malloc(1024 + body_len);
    int n = snprintf(request, 1024, "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n", method, path);
    if (basic_auth)
        n += snprintf(request + n, 1024 - (size_t)n, "Authorization: Basic %s\r\n", basic_auth);
    if (json)
        n += snprintf(request + n, 1024 - (size_t)n,
                      "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    n += snprintf(request + n, 1024 - (size_t)n, "\r\n");
    memcpy(request + n, json ? json : "", body_len);
    size_t total = (size_t)n + body_len;
    bool sent = send(fd, request, total, MSG_NOSIGNAL) == (ssize_t)total;
    free(request);
    if (!sent) {
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *answer = malloc(cap);
    ssize_t got;
    while ((got = recv(fd, answer + len, cap - len - 1, 0)) > 0) {
        len += (size_t)got;
        if (len + 1 == cap)
            answer = realloc(answer, cap *= 2);
    }
    close(fd);
    answer[len] = '\0';
    char *body = strstr(answer, "\r\n\r\n");
    if (sscanf(answer, "HTTP/1.%*d %d", status) != 1 || !body) {
        free(answer);
        return NULL;
    }
    memmove(answer, body + 4, strlen(body + 4) + 1);
    return answer;
}

double metric_value(const char *scrape, const char *series)
{
    char key[256];
    snprintf(key, sizeof key, "\n%s ", series);
    const char *at = scrape ? strstr(scrape, key) : NULL;
    return at ? atof(at + strlen(key)) : -1;
}

double scrape_metric(int port, const char *series)
{
    int status = 0;
    char *scrape = http_get(port, "/metrics", &status);
    double value = status == 200 ? metric_value(scrape, series) : -1;
    free(scrape);
    return value;
}

bool wait_metric_at_least(int port, const char *series, double value, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (scrape_metric(port, series) < value) {
        if (now_ms() > deadline)
            return false;
        pause_ms(20);
    }
    return true;
}

long memory_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kib = strtol(line + n + 1, NULL, 10);
            break;
        }
    }
    if (f)
        fclose(f);
    return kib;
}

void wait_depth_at_least(const char *queue, long count, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    long depth;
    while ((depth = queue_depth_now(queue)) < count) {
        if (now_ms() > deadline)
            FAIL("%s holds %ld messages, not %ld, after %d ms", queue, depth, count, timeout_ms);
        pause_ms(20);
    }
}

void wait_depth_zero(const char *queue, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    long depth;
    while ((depth = queue_depth_now(queue)) != 0) {
        if (now_ms() > deadline)
            FAIL("%s still holds %ld messages after %d ms", queue, depth, timeout_ms);
        pause_ms(20);
    }
}

/* ---- the usual start and end of a test ---- */

fixture fixture_start(const char *const *stub_args, const char *const *service_args)
{
    fixture f;
    f.t = test_begin(test_name());
    f.stub = stub_start(stub_args);
    f.svc = service_start(test_name(), &f.t, &f.stub, service_args);
    f.conn = test_connect();
    return f;
}

void fixture_stop(fixture *f)
{
    if (f->svc.pid)
        ASSERT_EQ(service_stop(&f->svc, SIGTERM), 0);
    test_disconnect(f->conn);
    stub_stop(&f->stub);
}
