/* What RabbitMQ 4.x does differently, emulated on Debian's 3.10 with the setting that causes it:
 * a quorum queue's delivery limit (4.0's default is 20; set here by a policy, which 3.10 counts
 * the same way: every nack with requeue and every connection lost with the message unacked). A
 * message returned more often than that is removed by the broker without a word, unless the
 * queue has a dead-letter exchange. Each test first shows what the broker does to a service that
 * lets it (--delivery-limit 0: "the queue has none"), then that the service never lets it. */

#include "harness.h"
#include "test.h"

#include <amqp_tcp_socket.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TRANSACTIONS = 20 };

/* A delivery limit as a policy on the one queue. */
static void set_delivery_limit(const char *queue, int limit)
{
    char args[1024];
    snprintf(args, sizeof args,
             "set_policy --apply-to queues '%s' '^%s$' '{\"delivery-limit\":%d}'", queue, queue,
             limit);
    ASSERT_EQ(broker_ctl(args), 0);
}

static void clear_policy(const char *queue)
{
    char args[512];
    snprintf(args, sizeof args, "clear_policy '%s'", queue);
    broker_ctl(args);
}

static char metrics_listen[32];
static int metrics_port;

/* The service on a quorum inbound queue, reconnecting within 200 ms, with `more` arguments. */
static service_process start_service(const char *name, const topology_names *t,
                                     const stub_process *stub, const char *delivery_limit,
                                     const char *const *more)
{
    metrics_port = free_port();
    snprintf(metrics_listen, sizeof metrics_listen, "127.0.0.1:%d", metrics_port);
    const char *args[32] = {
        "--queue-type",       "quorum",       "--metrics-listen",    metrics_listen,
        "--delivery-limit",   delivery_limit, "--reconnect-base-ms", "50",
        "--reconnect-max-ms", "200"};
    int n = 10;
    for (int i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    return service_start(name, t, stub, args);
}

static double consumer_reconnects(void)
{
    return scrape_metric(metrics_port, "jube_amqp_reconnects_total{connection=\"consumer\"}");
}

/* Closes every connection to the broker `losses` times, each once the service has taken every
 * message again after the one before. */
static void lose_connections(const topology_names *t, int losses)
{
    for (int i = 1; i <= losses; i++) {
        long long deadline = now_ms() + 20000;
        while (queue_depth_now(t->inbound) != 0 || consumer_reconnects() < i - 1) {
            if (now_ms() > deadline)
                FAIL("loss %d: the service did not take the queue's messages again within 20 s", i);
            pause_ms(20);
        }
        ASSERT_EQ(broker_ctl("close_all_connections 'a delivery-limit test'"), 0);
        deadline = now_ms() + 20000;
        while (consumer_reconnects() < i) {
            if (now_ms() > deadline)
                FAIL("loss %d: the service did not connect again within 20 s", i);
            pause_ms(20);
        }
    }
}

/* How many of the transactions "<prefix>-0" ... reached the outbound queue or the dead-letter
 * queue (each counted once), waiting at most timeout_ms for all of them. */
static int transactions_out(const topology_names *t, const char *prefix, int timeout_ms)
{
    amqp_connection_state_t conn = test_connect();
    bool seen[TRANSACTIONS] = {false};
    int distinct = 0;
    long long deadline = now_ms() + timeout_ms;
    const char *queues[] = {t->outbound_queue, t->dead_letter_queue};
    while (distinct < TRANSACTIONS && now_ms() < deadline) {
        for (int q = 0; q < 2; q++) {
            message_list got = collect_messages(conn, queues[q], TRANSACTIONS, 200);
            for (size_t i = 0; i < got.count; i++) {
                const amqp_envelope_t *m = &got.items[i];
                char *id = q == 0 ? response_entry_id(m) : NULL;
                long n = -1;
                char text[128];
                if (q == 1) {
                    /* A dead letter carries the transaction itself. */
                    amqp_bytes_t body = m->message.body;
                    const char *at = memmem(body.bytes, body.len, prefix, strlen(prefix));
                    if (at) {
                        snprintf(text, sizeof text, "%.*s",
                                 (int)(body.len - (size_t)(at - (const char *)body.bytes)), at);
                        id = strdup(text);
                    }
                }
                size_t plen = strlen(prefix);
                if (id && strncmp(id, prefix, plen) == 0 && id[plen] == '-')
                    n = strtol(id + plen + 1, NULL, 10);
                if (n >= 0 && n < TRANSACTIONS && !seen[n]) {
                    seen[n] = true;
                    distinct++;
                }
                free(id);
            }
            free_messages(&got);
        }
    }
    test_disconnect(conn);
    return distinct;
}

static void restart_stub(stub_process *stub)
{
    char port[16];
    snprintf(port, sizeof port, "%d", stub->port);
    const char *again[] = {"--port", port, NULL};
    *stub = stub_start(again);
}

/* Jube down with 20 transactions queued on a quorum queue with a delivery-limit policy; `fault`
 * makes the broker count returns; then Jube comes back and every transaction must come out
 * (answered, or dead-lettered with a reason), or with the rule off none, the broker having
 * removed them. */
static void run_held(const char *name, int policy_limit, const char *delivery_limit,
                     const char *const *more, void (*fault)(const topology_names *),
                     const char *fault_text, int expect_out)
{
    topology_names t = test_begin(name);
    set_delivery_limit(t.inbound, policy_limit);
    stub_process stub = stub_start(NULL);
    stub_stop(&stub); /* Jube is down: its port refuses connections */
    service_process svc = start_service(name, &t, &stub, delivery_limit, more);
    publish_range(t.inbound, name, 0, TRANSACTIONS);
    fault(&t);
    double renewed = scrape_metric(metrics_port, "jube_amqp_messages_renewed_total");
    double requeued = scrape_metric(metrics_port, "jube_amqp_messages_requeued_total");
    restart_stub(&stub);
    int out = transactions_out(&t, name, expect_out ? 30000 : 2000);
    printf("%s, policy delivery-limit %d, --delivery-limit %s: %.0f give-backs, %.0f renewals; "
           "%d of %d transactions answered or dead-lettered once Jube was back\n",
           fault_text, policy_limit, delivery_limit, requeued, renewed, out, TRANSACTIONS);
    ASSERT_EQ(out, expect_out);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    stub_stop(&stub);
    clear_policy(t.inbound);
}

static void lose_connections_8_times(const topology_names *t)
{
    lose_connections(t, 8);
}

/* A delivery limit of 5 (4.0's 20 acts the same, after more losses: each loss is a rabbitmqctl
 * call of a second or more) drops what a service without the rule gets back 6 times... */
TEST(delivery_limit_drops_what_connection_losses_return_too_often)
{
    run_held("dl_losses_unguarded", 5, "0", NULL, lose_connections_8_times, "8 connection losses",
             0);
}

/* ...and the service at the broker's limit keeps every one of them. */
TEST(delivery_limit_connection_losses_lose_nothing)
{
    run_held("dl_losses", 5, "5", NULL, lose_connections_8_times, "8 connection losses",
             TRANSACTIONS);
}

static void jube_outage_of_30_seconds(const topology_names *t)
{
    (void)t;
    pause_ms(30 * 1000); /* the outage itself */
}

/* Jube down for 30 x --max-hold-ms: holds end with give-backs, which count. A message waits in
 * the ring until a worker thread looks at it, so each is given back only every few seconds here:
 * a delivery limit of 4 (renewed at 3) meets within 30 s what 4.0's 20 meets in a longer one. */
static const char *const short_holds[] = {
    "--max-hold-ms",  "1000", "--workers", "20", "--worker-threads", "1", "--retry-base-ms", "1",
    "--retry-max-ms", "1",    NULL};

TEST(delivery_limit_drops_what_a_long_outage_gives_back_too_often)
{
    run_held("dl_outage_unguarded", 4, "0", short_holds, jube_outage_of_30_seconds,
             "Jube down 30 s, --max-hold-ms 1000", 0);
}

TEST(delivery_limit_long_jube_outage_loses_nothing)
{
    run_held("dl_outage", 4, "4", short_holds, jube_outage_of_30_seconds,
             "Jube down 30 s, --max-hold-ms 1000", TRANSACTIONS);
}

/* The safety net the README recommends: one policy on the inbound queue with the leader locator,
 * the service's dead-letter exchange and a delivery limit. A message the broker removes at the
 * limit anyway (here a service told the queue has none, and a limit of 2) lands in the service's
 * dead-letter queue with the broker's reason. */
TEST(broker_dead_letters_at_its_limit_into_the_services_dead_letter_queue)
{
    const char *name = "dl_safety_net";
    topology_names t = test_begin(name);
    char args[1024];
    snprintf(args, sizeof args,
             "set_policy --apply-to queues '%s' '^%s$' "
             "'{\"queue-leader-locator\":\"balanced\",\"dead-letter-exchange\":\"%s\","
             "\"delivery-limit\":2}'",
             t.inbound, t.inbound, t.dead_letter_exchange);
    ASSERT_EQ(broker_ctl(args), 0);
    stub_process stub = stub_start(NULL);
    stub_stop(&stub);
    service_process svc = start_service(name, &t, &stub, "0", NULL);
    publish_range(t.inbound, name, 0, 1);
    lose_connections(&t, 3);
    amqp_connection_state_t conn = test_connect();
    message_list dead = collect_messages(conn, t.dead_letter_queue, 1, 20000);
    ASSERT_EQ(dead.count, 1);
    const amqp_field_value_t *reason = header_of(&dead.items[0], "x-first-death-reason");
    ASSERT(reason);
    printf("dead-lettered by the broker: x-first-death-reason %.*s\n", (int)reason->value.bytes.len,
           (const char *)reason->value.bytes.bytes);
    ASSERT(header_text_is(&dead.items[0], "x-first-death-reason", "delivery_limit"));
    ASSERT(header_text_is(&dead.items[0], "x-first-death-queue", t.inbound));
    ASSERT(header_text_is(&dead.items[0], "EntityAnalysisModelGuid", SAMPLE_MODEL));
    free_messages(&dead);
    test_disconnect(conn);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    clear_policy(t.inbound);
}

/* A user without the 'configure' permission is refused its declarations with 403 (on RabbitMQ
 * 4.2.6 and 4.3.0 even the look-up of a queue that exists; on 3.10 the creation of one that does
 * not): one clear error naming the permission and exit status 2, not a reconnect loop. */
TEST(refused_declaration_names_the_permission_and_exits_2)
{
    const char *name = "no_configure";
    topology_names t = test_begin(name);
    broker_ctl("add_user jubenoconf secret");
    ASSERT_EQ(broker_ctl("set_permissions -p / jubenoconf '^$' '.*' '.*'"), 0);
    char uri[256];
    snprintf(uri, sizeof uri, "amqp://jubenoconf:secret@127.0.0.1:%d/", broker_port());
    const char *const as_user[] = {"--amqp-uri", uri, NULL};
    service_process svc = service_launch(name, &t, NULL, as_user);
    int status = service_wait_exit(&svc, 20000);
    printf("exit status %d\n", status);
    ASSERT_EQ(status, 2);
    ASSERT(service_log_contains(&svc, "ACCESS_REFUSED"));
    ASSERT(service_log_contains(&svc, "needs the 'configure' permission"));
    broker_ctl("delete_user jubenoconf");
}

/* A requester using RabbitMQ's direct reply-to: it consumes the pseudo-queue
 * amq.rabbitmq.reply-to (no-ack) on its own channel and sends the transaction with that reply_to.
 * The broker delivers the reply to that channel without a queue; published with mandatory it
 * would also return it as unroutable (3.10-4.1), which the service would count and log as lost. */
TEST(direct_reply_to_is_answered_quietly)
{
    const char *name = "direct_reply";
    topology_names t = test_begin(name);
    stub_process stub = stub_start(NULL);
    service_process svc = start_service(name, &t, &stub, "20", NULL);

    amqp_connection_state_t requester = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(requester);
    ASSERT_EQ(amqp_socket_open(socket, "127.0.0.1", broker_port()), AMQP_STATUS_OK);
    ASSERT_EQ(amqp_login(requester, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest")
                  .reply_type,
              AMQP_RESPONSE_NORMAL);
    amqp_channel_open(requester, 1);
    ASSERT_EQ(amqp_get_rpc_reply(requester).reply_type, AMQP_RESPONSE_NORMAL);
    amqp_bytes_t pseudo = amqp_cstring_bytes("amq.rabbitmq.reply-to");
    amqp_basic_consume(requester, 1, pseudo, amqp_empty_bytes, 0, 1, 0, amqp_empty_table);
    ASSERT_EQ(amqp_get_rpc_reply(requester).reply_type, AMQP_RESPONSE_NORMAL);

    enum { ASKS = 5 };
    for (int i = 0; i < ASKS; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%d", name, i);
        char *body = sample_transaction(id);
        amqp_table_entry_t model = {.key = amqp_cstring_bytes("EntityAnalysisModelGuid"),
                                    .value = {.kind = AMQP_FIELD_KIND_UTF8,
                                              .value.bytes = amqp_cstring_bytes(SAMPLE_MODEL)}};
        amqp_basic_properties_t props = {._flags = AMQP_BASIC_REPLY_TO_FLAG |
                                                   AMQP_BASIC_CORRELATION_ID_FLAG |
                                                   AMQP_BASIC_HEADERS_FLAG,
                                         .reply_to = pseudo,
                                         .correlation_id = amqp_cstring_bytes(id),
                                         .headers = {.num_entries = 1, .entries = &model}};
        ASSERT_EQ(amqp_basic_publish(requester, 1, amqp_empty_bytes, amqp_cstring_bytes(t.inbound),
                                     0, 0, &props, amqp_cstring_bytes(body)),
                  AMQP_STATUS_OK);
        free(body);
    }
    int replies = 0;
    long long deadline = now_ms() + 20000;
    while (replies < ASKS && now_ms() < deadline) {
        amqp_envelope_t reply;
        struct timeval wait = {.tv_sec = 1};
        amqp_maybe_release_buffers(requester);
        amqp_rpc_reply_t r = amqp_consume_message(requester, &reply, &wait, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL)
            continue;
        char *id = response_entry_id(&reply);
        ASSERT(id && strncmp(id, name, strlen(name)) == 0);
        ASSERT(bytes_equal(reply.message.properties.correlation_id, id));
        free(id);
        amqp_destroy_envelope(&reply);
        replies++;
    }
    ASSERT(wait_metric_at_least(metrics_port, "jube_amqp_messages_published_total", ASKS, 10000));
    double unroutable =
        scrape_metric(metrics_port, "jube_amqp_unroutable_publishes_total{target=\"reply_to\"}");
    printf("direct reply-to: %d of %d replies reached the requester; %.0f counted unroutable\n",
           replies, ASKS, unroutable);
    ASSERT_EQ(replies, ASKS);
    ASSERT_EQ(unroutable, 0);
    ASSERT(!service_log_contains(&svc, "the reply is not delivered"));
    amqp_connection_close(requester, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(requester);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    stub_stop(&stub);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(delivery_limit_drops_what_connection_losses_return_too_often),
        TEST_ENTRY(delivery_limit_connection_losses_lose_nothing),
        TEST_ENTRY(delivery_limit_drops_what_a_long_outage_gives_back_too_often),
        TEST_ENTRY(delivery_limit_long_jube_outage_loses_nothing),
        TEST_ENTRY(broker_dead_letters_at_its_limit_into_the_services_dead_letter_queue),
        TEST_ENTRY(refused_declaration_names_the_permission_and_exits_2),
        TEST_ENTRY(direct_reply_to_is_answered_quietly),
    };
    return RUN_TESTS(tests);
}
