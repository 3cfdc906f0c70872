/* Per-key order (--order-by): 50 accounts' transactions run 64 calls at once (fixed), yet one
 * account's calls never overlap at Jube and arrive in delivery order, and their responses are
 * published in that order; through retries, dead letters, a killed service and a standby replica
 * taking over. The stand-in Jube watches the order (--order-key AccountId): calls of one key under
 * way at once (overlaps) and calls whose TxnId number is smaller than the key's previous call
 * (inversions). */

#include "harness.h"
#include "test.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { STREAM = 10000, ACCOUNTS = 50 };

static const char *const ordered_stub[] = {"--latency-jitter-ms", "3", "--order-key", "AccountId",
                                           NULL};

/* The sample transaction with TxnId "<name>-<n>" for account "acct-<n % ACCOUNTS>". */
static char *transaction(const char *name, long n)
{
    char id[96];
    snprintf(id, sizeof id, "%s-%ld", name, n);
    char *sample = sample_transaction(id);
    const char *marker = "\"AccountId\": \"Test1\"";
    char *at = strstr(sample, marker);
    if (!at)
        FAIL("the sample transaction has no AccountId");
    size_t size = strlen(sample) + 64;
    char *out = malloc(size);
    snprintf(out, size, "%.*s\"AccountId\": \"acct-%ld\"%s", (int)(at - sample), sample,
             n % ACCOUNTS, at + strlen(marker));
    free(sample);
    return out;
}

/* The outbound queue holds exactly the answers to transactions 0, ACCOUNTS, 2 x ACCOUNTS, ...
 * (one account's), in that order. */
static void expect_one_account_in_order(amqp_connection_state_t conn, const topology_names *t,
                                        const char *name, long count, int timeout_ms)
{
    message_list got = collect_messages(conn, t->outbound_queue, (size_t)count, timeout_ms);
    ASSERT_EQ(got.count, count);
    for (size_t i = 0; i < got.count; i++) {
        char *id = response_entry_id(&got.items[i]);
        ASSERT_EQ(strtol(id + strlen(name) + 1, NULL, 10), (long)i * ACCOUNTS);
        free(id);
    }
    free_messages(&got);
}

/* How publish_accounts declares the inbound queue. */
enum { CLASSIC = 0, SINGLE_ACTIVE = 1, QUORUM = 2 };

/* Publishes transactions [from, to) into the inbound queue, declared here if need be (with
 * x-single-active-consumer, or as a quorum queue, as `kind` says). */
static void publish_accounts(const topology_names *t, const char *name, long from, long to,
                             int kind)
{
    amqp_connection_state_t conn = test_connect();
    amqp_table_entry_t entries[2];
    int count = 0;
    if (kind & SINGLE_ACTIVE)
        entries[count++] =
            (amqp_table_entry_t){.key = amqp_cstring_bytes("x-single-active-consumer"),
                                 .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}};
    if (kind & QUORUM)
        entries[count++] = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-queue-type"),
            .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
    amqp_table_t args = {.num_entries = count, .entries = entries};
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(t->inbound), 0, 1, 0, 0, args);
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    for (long n = from; n < to; n++) {
        char *body = transaction(name, n);
        publish_transaction(conn, t->inbound, body);
        free(body);
    }
    wait_confirms(conn);
    test_disconnect(conn);
}

/* What the outbound queue held, per account, in the order the responses were published. */
typedef struct {
    long answers;
    long duplicates;
    long rewinds; /* a response for an earlier transaction of its account than the one before */
    long rewound_keys;
    /* The same among first answers only: a transaction answered for the first time after a later
     * one of its account was (a repeat of an answered one is a duplicate, not a reordering). */
    long first_rewinds;
} outbound_order;

static outbound_order read_outbound_order(const topology_names *t, const char *name, long count)
{
    outbound_order o = {0};
    amqp_connection_state_t conn = test_connect();
    unsigned char *seen = calloc((size_t)count, 1);
    long last[ACCOUNTS], last_first[ACCOUNTS], rewinds_of[ACCOUNTS] = {0};
    for (int k = 0; k < ACCOUNTS; k++)
        last[k] = last_first[k] = -1;
    size_t prefix = strlen(name);
    long depth = queue_depth(conn, t->outbound_queue);
    while (depth > 0) {
        message_list got = collect_messages(conn, t->outbound_queue, (size_t)depth, 60000);
        ASSERT_EQ(got.count, depth);
        for (size_t i = 0; i < got.count; i++) {
            char *id = response_entry_id(&got.items[i]);
            ASSERT(id && strncmp(id, name, prefix) == 0 && id[prefix] == '-');
            long n = strtol(id + prefix + 1, NULL, 10);
            free(id);
            ASSERT(n >= 0 && n < count);
            int k = (int)(n % ACCOUNTS);
            if (seen[n]++) {
                o.duplicates++;
            } else {
                if (n < last_first[k])
                    o.first_rewinds++;
                last_first[k] = n;
            }
            if (n < last[k] && rewinds_of[k]++ == 0)
                o.rewound_keys++;
            if (n < last[k])
                o.rewinds++;
            last[k] = n;
            o.answers++;
        }
        free_messages(&got);
        depth = queue_depth(conn, t->outbound_queue);
    }
    for (long n = 0; n < count; n++)
        if (!seen[n])
            FAIL("%s-%ld never reached %s (lost)", name, n, t->outbound_queue);
    free(seen);
    test_disconnect(conn);
    return o;
}

static void wait_answers(const topology_names *t, long count, int timeout_ms)
{
    amqp_connection_state_t conn = test_connect();
    if (!wait_queue_depth(conn, t->outbound_queue, count, timeout_ms))
        FAIL("%s holds %ld responses, not %ld, after %d ms", t->outbound_queue,
             queue_depth(conn, t->outbound_queue), count, timeout_ms);
    test_disconnect(conn);
}

/* Waits until the whole stream is answered: duplicates can fill the outbound queue to STREAM
 * before the last deliveries are, so until the inbound queue holds nothing, unacknowledged
 * included. */
static void wait_stream_done(const topology_names *t)
{
    wait_depth_at_least(t->outbound_queue, STREAM, 180000);
    wait_queue_empty_and_acked(t->inbound, 180000);
}

/* Runs the stream through one service and returns its messages per second (publishing done
 * beforehand, so only the service is timed). */
static double run_stream(const char *name, const char *const *stub_args,
                         const char *const *service_args, long *overlaps, long *inversions,
                         outbound_order *order)
{
    topology_names t = test_begin(name);
    publish_accounts(&t, name, 0, STREAM, CLASSIC);
    stub_process stub = stub_start(stub_args);
    long long start = now_ms();
    service_process svc = service_start(name, &t, &stub, service_args);
    wait_answers(&t, STREAM, 180000);
    double rate = STREAM * 1000.0 / (double)(now_ms() - start);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    *overlaps = stub_stat(&stub, "order_overlaps");
    *inversions = stub_stat(&stub, "order_inversions");
    ASSERT_EQ(stub_stat(&stub, "order_keys"), ACCOUNTS);
    *order = read_outbound_order(&t, name, STREAM);
    amqp_connection_state_t conn = test_connect();
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    ASSERT_EQ(queue_depth(conn, t.inbound), 0);
    test_disconnect(conn);
    stub_stop(&stub);
    return rate;
}

TEST(fifty_accounts_in_order_at_64_calls)
{
    const char *ordered_args[] = {"--workers",   "64", "--concurrency", "fixed", "--order-by",
                                  "$.AccountId", NULL};
    const char *unordered_args[] = {"--workers", "64", "--concurrency", "fixed", NULL};
    long overlaps, inversions, u_overlaps, u_inversions;
    outbound_order order, u_order;
    double ordered_rate =
        run_stream("order_fifty", ordered_stub, ordered_args, &overlaps, &inversions, &order);
    double unordered_rate = run_stream("order_fifty_unordered", ordered_stub, unordered_args,
                                       &u_overlaps, &u_inversions, &u_order);
    fprintf(stderr,
            "per-key order: %d transactions over %d accounts, 64 calls at once, Jube 0-3 ms\n"
            "  --order-by $.AccountId: %.0f msg/s; at Jube %ld overlaps, %ld inversions; "
            "responses out of order: %ld\n"
            "  unordered:              %.0f msg/s; at Jube %ld overlaps, %ld inversions; "
            "responses out of order: %ld\n",
            STREAM, ACCOUNTS, ordered_rate, overlaps, inversions, order.rewinds, unordered_rate,
            u_overlaps, u_inversions, u_order.rewinds);
    ASSERT_EQ(overlaps, 0);
    ASSERT_EQ(inversions, 0);
    ASSERT_EQ(order.rewinds, 0);
    ASSERT_EQ(order.duplicates, 0);
    /* The stand-in can tell: without --order-by the same stream overlaps. */
    ASSERT_GT(u_overlaps, 0);
}

TEST(retries_keep_the_order)
{
    const char *stub_args[] = {"--latency-jitter-ms", "3", "--order-key", "AccountId",
                               "--fail-every",        "5", NULL};
    const char *args[] = {
        "--workers",       "64", "--concurrency",  "fixed", "--order-by", "$.AccountId",
        "--retry-base-ms", "1",  "--retry-max-ms", "20",    NULL};
    long overlaps, inversions;
    outbound_order order;
    double rate = run_stream("order_retries", stub_args, args, &overlaps, &inversions, &order);
    fprintf(stderr,
            "per-key order with Jube answering 503 to every fifth call: %.0f msg/s; at Jube %ld "
            "overlaps, %ld inversions; responses out of order: %ld\n",
            rate, overlaps, inversions, order.rewinds);
    ASSERT_EQ(overlaps, 0);
    ASSERT_EQ(inversions, 0);
    ASSERT_EQ(order.rewinds, 0);
    ASSERT_EQ(order.duplicates, 0);
}

TEST(a_dead_letter_in_the_middle_unblocks_its_key)
{
    enum { COUNT = 1000, BAD = 500 };
    const char *name = "order_dead_letter";
    topology_names t = test_begin(name);
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, t.inbound, true);
    for (long n = 0; n < COUNT; n++) {
        char *body = transaction(name, n);
        if (n == BAD) {
            /* A model Jube does not know: it answers 404 and the message is dead-lettered. */
            test_header model = {"EntityAnalysisModelGuid", 'S',
                                 "00000000-0000-4000-8000-000000000000", 0};
            test_properties props = {.headers = &model, .header_count = 1};
            publish_message(conn, t.inbound, body, strlen(body), &props);
        } else {
            publish_transaction(conn, t.inbound, body);
        }
        free(body);
    }
    wait_confirms(conn);
    stub_process stub = stub_start(ordered_stub);
    const char *args[] = {"--workers", "16", "--order-by", "$.AccountId", NULL};
    service_process svc = service_start(name, &t, &stub, args);
    wait_answers(&t, COUNT - 1, 60000);
    ASSERT(wait_queue_depth(conn, t.dead_letter_queue, 1, 30000));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    message_list dead = collect_messages(conn, t.dead_letter_queue, 1, 10000);
    ASSERT_EQ(dead.count, 1);
    char key[32];
    snprintf(key, sizeof key, "acct-%d", BAD % ACCOUNTS);
    ASSERT(header_text_is(&dead.items[0], "x-jube-order-key", key));
    ASSERT(header_text_is(&dead.items[0], "x-jube-error", "http_404"));
    free_messages(&dead);
    ASSERT_EQ(stub_stat(&stub, "order_overlaps"), 0);
    ASSERT_EQ(stub_stat(&stub, "order_inversions"), 0);
    /* Every response but the dead letter's, each account's in order. */
    long last[ACCOUNTS];
    for (int k = 0; k < ACCOUNTS; k++)
        last[k] = -1;
    message_list got = collect_messages(conn, t.outbound_queue, COUNT - 1, 30000);
    ASSERT_EQ(got.count, COUNT - 1);
    for (size_t i = 0; i < got.count; i++) {
        char *id = response_entry_id(&got.items[i]);
        long n = strtol(id + strlen(name) + 1, NULL, 10);
        free(id);
        ASSERT_NE(n, BAD);
        ASSERT_GT(n, last[n % ACCOUNTS]);
        last[n % ACCOUNTS] = n;
    }
    free_messages(&got);
    test_disconnect(conn);
    stub_stop(&stub);
}

TEST(messages_without_a_usable_key)
{
    const char *name = "order_no_key";
    topology_names t = test_begin(name);
    stub_process stub = stub_start(NULL);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--order-by",  "$.AccountId",      "--order-key-missing",
                          "dead-letter", "--metrics-listen", listen,
                          NULL};
    service_process svc = service_start(name, &t, &stub, args);
    amqp_connection_state_t conn = test_connect();
    publish_transaction(conn, t.inbound, "{\"TxnId\":\"no-account\"}");
    publish_transaction(conn, t.inbound, "{\"TxnId\":\"null-account\",\"AccountId\":null}");
    char *good = transaction(name, 1);
    publish_transaction(conn, t.inbound, good);
    free(good);
    wait_confirms(conn);
    ASSERT(wait_queue_depth(conn, t.dead_letter_queue, 2, 30000));
    ASSERT(wait_queue_depth(conn, t.outbound_queue, 1, 30000));
    ASSERT(wait_metric_at_least(port, "jube_amqp_order_unordered_total{reason=\"missing\"}", 1,
                                10000));
    ASSERT_EQ(scrape_metric(port, "jube_amqp_order_unordered_total{reason=\"not_scalar\"}"), 1);
    ASSERT(wait_metric_at_least(
        port, "jube_amqp_messages_dead_lettered_total{reason=\"order_key_missing\"}", 2, 10000));
    message_list dead = collect_messages(conn, t.dead_letter_queue, 2, 10000);
    ASSERT_EQ(dead.count, 2);
    for (size_t i = 0; i < dead.count; i++) {
        ASSERT(header_text_is(&dead.items[i], "x-jube-error", "order_key_missing"));
        ASSERT_NULL(header_of(&dead.items[i], "x-jube-order-key"));
    }
    const amqp_field_value_t *detail = header_of(&dead.items[0], "x-jube-error-detail");
    ASSERT(detail && detail->kind == AMQP_FIELD_KIND_UTF8);
    char text[512];
    snprintf(text, sizeof text, "%.*s", (int)detail->value.bytes.len,
             (const char *)detail->value.bytes.bytes);
    ASSERT_CONTAINS(text, "no usable order key: --order-by '$.AccountId'");
    free_messages(&dead);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* Checks what order survived a fault: every transaction answered, no overlap at Jube, and at
 * most one rewind per account (the deliveries the broker gave back are answered again, from the
 * oldest unacknowledged one of the account onwards, in order). */
static void report_survival(const char *what, const char *name, const topology_names *t,
                            const stub_process *stub)
{
    long overlaps = stub_stat(stub, "order_overlaps");
    long inversions = stub_stat(stub, "order_inversions");
    long inverted_keys = stub_stat(stub, "order_inverted_keys");
    outbound_order order = read_outbound_order(t, name, STREAM);
    fprintf(stderr,
            "%s: %d transactions over %d accounts; at Jube %ld overlaps and %ld inversions (the "
            "redelivered transactions, invoked again); %ld duplicate responses, %ld accounts "
            "with their responses rewound once, %ld rewinds in all; 0 lost\n",
            what, STREAM, ACCOUNTS, overlaps, inversions, order.duplicates, order.rewound_keys,
            order.rewinds);
    ASSERT_EQ(overlaps, 0);
    ASSERT_EQ(inversions, inverted_keys); /* at most one per account */
    ASSERT_LE(order.rewinds, ACCOUNTS);
    ASSERT_EQ(order.rewinds, order.rewound_keys);
    ASSERT_EQ(order.first_rewinds, 0);
}

static void sigkill_mid_stream(const char *name, int kind)
{
    topology_names t = test_begin(name);
    publish_accounts(&t, name, 0, STREAM, kind);
    stub_process stub = stub_start(ordered_stub);
    const char *args[] = {"--workers",   "64", "--concurrency", "fixed", "--order-by",
                          "$.AccountId", NULL};
    service_process svc = service_start(name, &t, &stub, args);
    wait_depth_at_least(t.outbound_queue, STREAM / 4, 120000);
    ASSERT_EQ(service_stop(&svc, SIGKILL), 128 + SIGKILL);
    svc = service_start(name, &t, &stub, args);
    wait_stream_done(&t);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    report_survival(kind & QUORUM ? "SIGKILL mid-stream, quorum queue" : "SIGKILL mid-stream", name,
                    &t, &stub);
    stub_stop(&stub);
}

TEST(sigkill_mid_stream)
{
    sigkill_mid_stream("order_sigkill", CLASSIC);
}

TEST(sigkill_mid_stream_on_a_quorum_queue)
{
    sigkill_mid_stream("order_sigkill_quorum", QUORUM);
}

/* A rolling deploy with a backlog: SIGTERM three times while the stream runs, then a fourth run
 * drains it. A graceful stop finishes what is under way and leaves each key's waiting messages
 * unacked for the channel's close, which returns them to the head of the queue in order, on a
 * classic queue and on a quorum queue without a delivery limit (where a nack would put them at
 * its back, behind the key's later messages): no transaction is answered for the first time
 * after a later one of its account. A classic queue answers nothing twice. RabbitMQ 3.10's quorum
 * queue returns some deliveries acked just before a channel closes (with or without --order-by:
 * 169 in three stops unordered, here), which are answered again: they stay within the in-flight
 * window of each stop. */
static void sigterm_three_times(const char *name, int kind)
{
    topology_names t = test_begin(name);
    publish_accounts(&t, name, 0, STREAM, kind);
    stub_process stub = stub_start(ordered_stub);
    const char *args[] = {"--workers",   "64", "--concurrency", "fixed", "--order-by",
                          "$.AccountId", NULL};
    for (int stop = 1; stop <= 3; stop++) {
        service_process svc = service_start(name, &t, &stub, args);
        wait_depth_at_least(t.outbound_queue, stop * STREAM / 5, 120000);
        ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    }
    service_process svc = service_start(name, &t, &stub, args);
    wait_stream_done(&t);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    long overlaps = stub_stat(&stub, "order_overlaps");
    long inversions = stub_stat(&stub, "order_inversions");
    outbound_order order = read_outbound_order(&t, name, STREAM);
    fprintf(stderr,
            "three graceful stops with a backlog, %s queue: %d transactions over %d accounts; at "
            "Jube %ld overlaps, %ld inversions; %ld duplicate responses, %ld rewinds, %ld among "
            "first answers; 0 lost\n",
            kind & QUORUM ? "quorum" : "classic", STREAM, ACCOUNTS, overlaps, inversions,
            order.duplicates, order.rewinds, order.first_rewinds);
    ASSERT_EQ(overlaps, 0);
    ASSERT_EQ(order.first_rewinds, 0);
    if (kind & QUORUM) {
        ASSERT_LE(order.duplicates, 3 * 256); /* three stops, prefetch 256 */
    } else {
        ASSERT_EQ(inversions, 0);
        ASSERT_EQ(order.duplicates, 0);
    }
    stub_stop(&stub);
}

TEST(graceful_stops_with_a_backlog_keep_the_order)
{
    sigterm_three_times("order_sigterm", CLASSIC);
}

TEST(graceful_stops_with_a_backlog_keep_the_order_on_a_quorum_queue)
{
    sigterm_three_times("order_sigterm_quorum", QUORUM);
}

/* Lines of a service log that hold text. */
static int log_lines_with(const service_process *svc, const char *text)
{
    FILE *f = fopen(svc->log_path, "r");
    int n = 0;
    char line[4096];
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, text))
            n++;
    if (f)
        fclose(f);
    return n;
}

/* A quorum queue counts only its active consumer in a passive declare: there the replicas' log
 * (one file for both) says when both consume. */
static void wait_both_consuming(service_process *active, service_process *standby,
                                const topology_names *t, int kind)
{
    if (!(kind & QUORUM)) {
        service_process both[2] = {*active, *standby};
        service_wait_consuming(both, 2, t);
        return;
    }
    long long deadline = now_ms() + 20000;
    while (log_lines_with(standby, "consuming queue") < 2) {
        if (now_ms() > deadline)
            FAIL("the standby did not consume %s within 20 s", t->inbound);
        pause_ms(20);
    }
}

static void standby_takes_over(const char *name, int kind)
{
    topology_names t = test_begin(name);
    publish_accounts(&t, name, 0, STREAM, SINGLE_ACTIVE | kind);
    stub_process stub = stub_start(ordered_stub);
    int standby_port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", standby_port);
    const char *args[] = {"--workers",
                          "64",
                          "--concurrency",
                          "fixed",
                          "--order-by",
                          "$.AccountId",
                          "--single-active-consumer",
                          NULL};
    const char *standby_args[] = {"--workers",
                                  "64",
                                  "--concurrency",
                                  "fixed",
                                  "--order-by",
                                  "$.AccountId",
                                  "--single-active-consumer",
                                  "--metrics-listen",
                                  listen,
                                  NULL};
    service_process active = service_start(name, &t, &stub, args);
    service_process standby = service_launch(name, &t, &stub, standby_args);
    wait_both_consuming(&active, &standby, &t, kind);
    wait_depth_at_least(t.outbound_queue, STREAM / 4, 120000);
    /* Only the active replica has consumed so far. */
    ASSERT_EQ(scrape_metric(standby_port, "jube_amqp_messages_consumed_total"), 0);
    ASSERT_EQ(service_stop(&active, SIGKILL), 128 + SIGKILL);
    wait_stream_done(&t);
    ASSERT_GE(scrape_metric(standby_port, "jube_amqp_messages_consumed_total"), STREAM / 2);
    ASSERT_EQ(service_stop(&standby, SIGTERM), 0);
    report_survival(kind & QUORUM ? "standby replica taking over after SIGKILL, quorum queue"
                                  : "standby replica taking over after SIGKILL",
                    name, &t, &stub);
    stub_stop(&stub);
}

TEST(standby_replica_takes_over_in_order)
{
    standby_takes_over("order_standby", CLASSIC);
}

TEST(standby_replica_takes_over_in_order_on_a_quorum_queue)
{
    standby_takes_over("order_standby_quorum", QUORUM);
}

/* One account's first message cannot be answered for longer than --max-hold-ms: it goes back to
 * the queue, and the account's later messages held behind it go back with it, in order (the
 * channel is closed, so the broker returns them to the head of the queue), and the broker
 * delivers them again in order. Jube then sees them in order once it answers. On a quorum queue
 * without a delivery limit a nack would have put them at its back. */
static void held_too_long(const char *name, int kind)
{
    /* Half of the key's messages stay in the queue (prefetch 10): those a give-back must not let
     * overtake the ones given back. */
    enum { COUNT = 20, PREFETCH = 10 };
    topology_names t = test_begin(name);
    amqp_connection_state_t conn = test_connect();
    amqp_table_entry_t quorum = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(t.inbound), 0, 1, 0, 0,
                       (amqp_table_t){.num_entries = kind == QUORUM, .entries = &quorum});
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    for (long n = 0; n < COUNT; n++) {
        char *body = transaction(name, n * ACCOUNTS); /* all of account acct-0 */
        publish_transaction(conn, t.inbound, body);
        free(body);
    }
    wait_confirms(conn);
    const char *stub_args[] = {"--order-key", "AccountId", "--fail-first", "30", NULL};
    stub_process stub = stub_start(stub_args);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--order-by",
                          "$.AccountId",
                          "--prefetch",
                          "10",
                          "--max-hold-ms",
                          "3000",
                          "--retry-base-ms",
                          "50",
                          "--retry-max-ms",
                          "200",
                          "--metrics-listen",
                          listen,
                          NULL};
    service_process svc = service_start(name, &t, &stub, args);
    ASSERT(wait_metric_at_least(port, "jube_amqp_order_waiting_messages", PREFETCH - 1, 10000));
    ASSERT_EQ(scrape_metric(port, "jube_amqp_order_keys_active"), 1);
    ASSERT(wait_metric_at_least(port, "jube_amqp_order_longest_wait_seconds", 0.5, 10000));
    ASSERT(wait_metric_at_least(port, "jube_amqp_messages_requeued_total", PREFETCH, 30000));
    ASSERT(wait_queue_depth(conn, t.outbound_queue, COUNT, 60000));
    ASSERT_EQ(stub_stat(&stub, "order_overlaps"), 0);
    ASSERT_EQ(stub_stat(&stub, "order_inversions"), 0);
    /* Nothing of the key outlives its messages. */
    long long deadline = now_ms() + 10000;
    while (scrape_metric(port, "jube_amqp_order_keys_active") != 0 ||
           scrape_metric(port, "jube_amqp_order_waiting_messages") != 0) {
        if (now_ms() > deadline)
            FAIL("the key scheduler still holds keys after every message was answered");
        pause_ms(20);
    }
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    expect_one_account_in_order(conn, &t, name, COUNT, 10000);
    test_disconnect(conn);
    stub_stop(&stub);
}

TEST(held_too_long_gives_back_the_key_in_order)
{
    held_too_long("order_held", CLASSIC);
}

TEST(held_too_long_gives_back_the_key_in_order_on_a_quorum_queue)
{
    held_too_long("order_held_quorum", QUORUM);
}

/* The README's partitioning recipe in its 3.x form (rabbitmqadmin v1: Debian 12 has no v2) against
 * the test broker's management API: a consistent-hash exchange spreads the accounts over two
 * single-active-consumer queues, one service consumes each, and each account's messages stay in
 * order. */
static int run_admin(const char *command)
{
    char line[1024];
    snprintf(line, sizeof line, "rabbitmqadmin -H 127.0.0.1 -P %d -u guest -p guest %s >/dev/null",
             broker_management_port(), command);
    return system(line);
}

static void admin(const char *command)
{
    if (run_admin(command) != 0)
        FAIL("'rabbitmqadmin %s' failed", command);
}

/* Deletes what an earlier run left, if anything. */
static void admin_delete(const char *kind, const char *name)
{
    char command[256];
    snprintf(command, sizeof command, "delete %s name=%s 2>/dev/null", kind, name);
    run_admin(command);
}

TEST(partitions_by_consistent_hash)
{
    enum { COUNT = 4000, PARTITIONS = 2 };
    const char *name = "order_partitions";
    topology_names t = test_begin(name);
    char exchange[64], queues[PARTITIONS][64], command[512];
    snprintf(exchange, sizeof exchange, "%s.byAccount", name);
    admin_delete("exchange", exchange);
    snprintf(command, sizeof command,
             "declare exchange name=%s type=x-consistent-hash durable=true", exchange);
    admin(command);
    for (int i = 0; i < PARTITIONS; i++) {
        snprintf(queues[i], sizeof queues[i], "%s.in.%d", name, i);
        admin_delete("queue", queues[i]);
        snprintf(command, sizeof command,
                 "declare queue name=%s durable=true "
                 "arguments='{\"x-single-active-consumer\": true}'",
                 queues[i]);
        admin(command);
        snprintf(command, sizeof command, "declare binding source=%s destination=%s routing_key=1",
                 exchange, queues[i]);
        admin(command);
    }
    /* Producers publish to the exchange with the account as routing key. */
    amqp_connection_state_t conn = test_connect();
    amqp_table_entry_t model = {
        .key = amqp_cstring_bytes("EntityAnalysisModelGuid"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(SAMPLE_MODEL)}};
    amqp_basic_properties_t props = {._flags =
                                         AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT,
                                     .headers = {.num_entries = 1, .entries = &model}};
    for (long n = 0; n < COUNT; n++) {
        char *body = transaction(name, n);
        char account[32];
        snprintf(account, sizeof account, "acct-%ld", n % ACCOUNTS);
        ASSERT_EQ(amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange),
                                     amqp_cstring_bytes(account), 0, 0, &props,
                                     amqp_cstring_bytes(body)),
                  AMQP_STATUS_OK);
        free(body);
    }
    long long deadline = now_ms() + 30000;
    while (queue_depth(conn, queues[0]) + queue_depth(conn, queues[1]) != COUNT)
        if (now_ms() > deadline)
            FAIL("the partitions did not receive the %d transactions", COUNT);
        else
            pause_ms(20);
    for (int i = 0; i < PARTITIONS; i++)
        ASSERT_GT(queue_depth(conn, queues[i]), COUNT / 10); /* both partitions have accounts */

    stub_process stub = stub_start(ordered_stub);
    service_process svc[PARTITIONS];
    for (int i = 0; i < PARTITIONS; i++) {
        topology_names partition = t;
        snprintf(partition.inbound, sizeof partition.inbound, "%s", queues[i]);
        const char *args[] = {"--order-by", "$.AccountId", "--single-active-consumer", NULL};
        svc[i] = service_start(name, &partition, &stub, args);
    }
    ASSERT(wait_queue_depth(conn, t.outbound_queue, COUNT, 60000));
    for (int i = 0; i < PARTITIONS; i++)
        ASSERT_EQ(service_stop(&svc[i], SIGTERM), 0);
    ASSERT_EQ(stub_stat(&stub, "order_overlaps"), 0);
    ASSERT_EQ(stub_stat(&stub, "order_inversions"), 0);
    outbound_order order = read_outbound_order(&t, name, COUNT);
    ASSERT_EQ(order.duplicates, 0);
    ASSERT_EQ(order.rewinds, 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* The rule for a priority under --order-by: kept in delivery order, counted, the first logged. */
TEST(a_priority_is_kept_in_delivery_order_and_counted)
{
    enum { COUNT = 6 };
    const char *name = "order_priority";
    topology_names t = test_begin(name);
    stub_process stub = stub_start(ordered_stub);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--order-by", "$.AccountId", "--metrics-listen", listen, NULL};
    service_process svc = service_start(name, &t, &stub, args);
    amqp_connection_state_t conn = test_connect();
    amqp_table_entry_t model = {
        .key = amqp_cstring_bytes("EntityAnalysisModelGuid"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(SAMPLE_MODEL)}};
    for (long n = 0; n < COUNT; n++) {
        char *body = transaction(name, n * ACCOUNTS); /* one account */
        amqp_basic_properties_t props = {._flags = AMQP_BASIC_HEADERS_FLAG |
                                                   (n % 2 ? AMQP_BASIC_PRIORITY_FLAG : 0),
                                         .headers = {.num_entries = 1, .entries = &model},
                                         .priority = (uint8_t)(n % 2 ? 9 : 0)};
        ASSERT_EQ(amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(t.inbound), 0, 0,
                                     &props, amqp_cstring_bytes(body)),
                  AMQP_STATUS_OK);
        free(body);
    }
    wait_confirms(conn);
    expect_one_account_in_order(conn, &t, name, COUNT, 20000);
    ASSERT_EQ(scrape_metric(port, "jube_amqp_order_priority_messages_total"), COUNT / 2);
    ASSERT(service_log_contains(&svc, "carries priority 9"));
    ASSERT_EQ(stub_stat(&stub, "order_inversions"), 0);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

TEST(single_active_consumer_refuses_a_queue_without_it)
{
    const char *name = "order_sac_refused";
    topology_names t = test_begin(name);
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, t.inbound, true);
    test_disconnect(conn);
    const char *args[] = {"--single-active-consumer", NULL};
    service_process svc = service_launch(name, &t, NULL, args);
    ASSERT_EQ(service_wait_exit(&svc, 30000), 2);
    ASSERT(service_log_contains(&svc, "exists without x-single-active-consumer"));
}

static const test_case tests[] = {
    TEST_ENTRY(fifty_accounts_in_order_at_64_calls),
    TEST_ENTRY(retries_keep_the_order),
    TEST_ENTRY(a_dead_letter_in_the_middle_unblocks_its_key),
    TEST_ENTRY(messages_without_a_usable_key),
    TEST_ENTRY(sigkill_mid_stream),
    TEST_ENTRY(sigkill_mid_stream_on_a_quorum_queue),
    TEST_ENTRY(graceful_stops_with_a_backlog_keep_the_order),
    TEST_ENTRY(graceful_stops_with_a_backlog_keep_the_order_on_a_quorum_queue),
    TEST_ENTRY(standby_replica_takes_over_in_order),
    TEST_ENTRY(standby_replica_takes_over_in_order_on_a_quorum_queue),
    TEST_ENTRY(held_too_long_gives_back_the_key_in_order),
    TEST_ENTRY(held_too_long_gives_back_the_key_in_order_on_a_quorum_queue),
    TEST_ENTRY(partitions_by_consistent_hash),
    TEST_ENTRY(a_priority_is_kept_in_delivery_order_and_counted),
    TEST_ENTRY(single_active_consumer_refuses_a_queue_without_it),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests);
}
