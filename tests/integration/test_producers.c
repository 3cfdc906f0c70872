/* Whatever producers publish, and whatever the broker refuses, one message never stalls the
 * service, and nothing is acked unless the broker stored its outcome. Real broker, real binary,
 * the messages built here. Each test prints the figures it measured. */

#include "harness.h"
#include "test.h"

#include <signal.h>

static const test_header model = {
    .key = "EntityAnalysisModelGuid", .kind = 'S', .text = SAMPLE_MODEL};

static service_process start_with_metrics(const char *name, const topology_names *t,
                                          const stub_process *stub, int *port,
                                          const char *const *more)
{
    *port = free_port();
    static char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", *port);
    const char *args[32] = {"--metrics-listen", listen};
    int n = 2;
    for (int i = 0; more && more[i] && n < 31; i++)
        args[n++] = more[i];
    args[n] = NULL;
    return service_start(name, t, stub, args);
}

static const amqp_envelope_t *find_by_message_id(const message_list *list, const char *id)
{
    for (size_t i = 0; i < list->count; i++)
        if (bytes_equal(list->items[i].message.properties.message_id, id))
            return &list->items[i];
    return NULL;
}

static void header_text(const amqp_envelope_t *m, const char *key, char *out, size_t size)
{
    const amqp_field_value_t *v = header_of(m, key);
    if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES))
        FAIL("no text header %s", key);
    snprintf(out, size, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
}

/* About 130,900 bytes of headers: the broker takes them (a content header may fill a frame),
 * but the service's own headers no longer fit beside them. */
TEST(huge_headers_do_not_stall_the_stream)
{
    topology_names t = test_begin("huge_headers");
    stub_process stub = stub_start(NULL);
    int port;
    service_process svc = start_with_metrics("huge_headers", &t, &stub, &port, NULL);
    amqp_connection_state_t conn = test_connect();

    static char padding[130950];
    memset(padding, 'p', sizeof padding - 1);
    test_header no_model[] = {{.key = "padding", .kind = 'S', .text = padding}};
    test_header with_model[] = {model, {.key = "padding", .kind = 'S', .text = padding}};
    char *body = sample_transaction("huge");
    test_properties bad = {.message_id = "huge-bad", .headers = no_model, .header_count = 1};
    test_properties good = {.message_id = "huge-good", .headers = with_model, .header_count = 2};
    publish_message(conn, t.inbound, body, strlen(body), &bad);
    publish_message(conn, t.inbound, body, strlen(body), &good);
    wait_confirms(conn);
    long long start = now_ms();
    publish_range(t.inbound, "after", 0, 100);

    message_list out = collect_messages(conn, t.outbound_queue, 100, 20000);
    long long took = now_ms() - start;
    printf("100 messages after two with 130,949-byte headers: %zu delivered in %lld ms\n",
           out.count, took);
    ASSERT_EQ(out.count, 100);
    free_messages(&out);

    message_list dead = collect_messages(conn, t.dead_letter_queue, 2, 10000);
    ASSERT_EQ(dead.count, 2);
    char code[64], detail[2048];
    const amqp_envelope_t *m = find_by_message_id(&dead, "huge-bad");
    ASSERT(m);
    header_text(m, "x-jube-error", code, sizeof code);
    header_text(m, "x-jube-error-detail", detail, sizeof detail);
    printf("bad GUID: %s: %s\n", code, detail);
    ASSERT_STR_EQ(code, "missing_model_guid");
    ASSERT_CONTAINS(detail, "left out");
    ASSERT_NULL(header_of(m, "padding"));
    m = find_by_message_id(&dead, "huge-good");
    ASSERT(m);
    header_text(m, "x-jube-error", code, sizeof code);
    header_text(m, "x-jube-error-detail", detail, sizeof detail);
    printf("valid GUID: %s: %s\n", code, detail);
    ASSERT_STR_EQ(code, "unpublishable");
    ASSERT_CONTAINS(detail, "do not fit");
    ASSERT_EQ(header_int(m, "x-jube-http-status"), 200);
    free_messages(&dead);

    double reconnects = scrape_metric(port, "jube_amqp_reconnects_total{connection=\"publisher\"}");
    printf("publisher reconnects: %.0f\n", reconnects);
    ASSERT(reconnects >= 0 && reconnects <= 2);
    ASSERT(wait_queue_depth(conn, t.inbound, 0, 5000));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    ASSERT_EQ(queue_messages_total(t.inbound), 0);
    free(body);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* RabbitMQ checks user_id against the publishing login: a producer's user_id copied into a dead
 * letter would close the publisher's channel over and over. */
TEST(user_id_of_another_user_never_reaches_a_dead_letter)
{
    broker_ctl("add_user jubeproducer secret");
    ASSERT_EQ(broker_ctl("set_permissions -p / jubeproducer \".*\" \".*\" \".*\""), 0);
    topology_names t = test_begin("user_id");
    stub_process stub = stub_start(NULL);
    int port;
    service_process svc = start_with_metrics("user_id", &t, &stub, &port, NULL);
    amqp_connection_state_t producer = test_connect_as("jubeproducer", "secret");
    test_properties bad = {.message_id = "uid-bad", .user_id = "jubeproducer"};
    test_properties good = {
        .message_id = "uid-good", .user_id = "jubeproducer", .headers = &model, .header_count = 1};
    char *body = sample_transaction("uid");
    publish_message(producer, t.inbound, body, strlen(body), &bad);
    publish_message(producer, t.inbound, body, strlen(body), &good);
    wait_confirms(producer);

    amqp_connection_state_t conn = test_connect();
    message_list dead = collect_messages(conn, t.dead_letter_queue, 1, 10000);
    ASSERT_EQ(dead.count, 1);
    ASSERT(bytes_equal(dead.items[0].message.properties.message_id, "uid-bad"));
    ASSERT(!(dead.items[0].message.properties._flags & AMQP_BASIC_USER_ID_FLAG));
    ASSERT(header_text_is(&dead.items[0], "x-jube-error", "missing_model_guid"));
    free_messages(&dead);
    message_list out = collect_messages(conn, t.outbound_queue, 1, 10000);
    ASSERT_EQ(out.count, 1);
    free_messages(&out);
    double reconnects = scrape_metric(port, "jube_amqp_reconnects_total{connection=\"publisher\"}");
    printf("publisher reconnects: %.0f\n", reconnects);
    ASSERT_EQ(reconnects, 0);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    free(body);
    test_disconnect(producer);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* Deleting the dead-letter queue under a running service: dead letters come back unroutable, are
 * held, the queue is declared again, and they land there. None is acked into nowhere. */
TEST(dead_letter_queue_deleted_under_a_running_service)
{
    topology_names t = test_begin("dlq_deleted");
    stub_process stub = stub_start(NULL);
    int port;
    service_process svc = start_with_metrics("dlq_deleted", &t, &stub, &port, NULL);
    amqp_connection_state_t conn = test_connect();
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(t.dead_letter_queue), 0, 0);
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), -1);

    test_properties bad = {.headers = &model, .header_count = 1};
    for (int i = 0; i < 3; i++)
        publish_message(conn, t.inbound, "{not json", 9, &bad);
    wait_confirms(conn);
    long long start = now_ms();
    ASSERT(wait_queue_depth(conn, t.dead_letter_queue, 3, 20000));
    message_list dead = collect_messages(conn, t.dead_letter_queue, 3, 5000);
    printf("dead letters in the re-created queue: %zu after %lld ms; returned publishes: %.0f\n",
           dead.count, now_ms() - start,
           scrape_metric(port, "jube_amqp_unroutable_publishes_total{target=\"dead_letter\"}"));
    ASSERT_EQ(dead.count, 3);
    free_messages(&dead);
    ASSERT(scrape_metric(port, "jube_amqp_unroutable_publishes_total{target=\"dead_letter\"}") >=
           1);
    ASSERT(wait_queue_depth(conn, t.inbound, 0, 5000));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    ASSERT_EQ(queue_messages_total(t.inbound), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

static void bind_a_queue(amqp_connection_state_t conn, const char *queue, const char *exchange)
{
    declare_queue(conn, queue, true);
    amqp_queue_bind(conn, 1, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                    amqp_empty_bytes, amqp_empty_table);
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
}

/* --unroutable-responses hold (the default): a response no queue takes keeps its delivery
 * unacked, shows in the metrics and /readyz, and is delivered once a queue is bound. */
TEST(unroutable_response_is_held_until_a_queue_is_bound)
{
    topology_names t = test_begin("unroutable_hold");
    t.outbound_queue[0] = '\0'; /* nothing bound to the outbound exchange */
    stub_process stub = stub_start(NULL);
    int port;
    service_process svc = start_with_metrics("unroutable_hold", &t, &stub, &port, NULL);
    amqp_connection_state_t conn = test_connect();
    publish_range(t.inbound, "held", 0, 1);
    ASSERT(wait_metric_at_least(port, "jube_amqp_unroutable_held", 1, 10000));
    int status = 0;
    char *ready = http_get(port, "/readyz", &status);
    printf("/readyz while held: %d %s", status, ready ? ready : "(none)\n");
    ASSERT_EQ(status, 503);
    ASSERT_CONTAINS(ready, "no queue");
    free(ready);
    ASSERT_EQ(queue_messages_total(t.inbound), 1); /* unacked, not gone */
    ASSERT(service_log_contains(&svc, "no queue is bound to exchange"));

    char bound[320];
    snprintf(bound, sizeof bound, "%s.late", t.outbound);
    bind_a_queue(conn, bound, t.outbound);
    message_list out = collect_messages(conn, bound, 1, 10000);
    ASSERT_EQ(out.count, 1);
    free_messages(&out);
    ASSERT(wait_queue_depth(conn, t.inbound, 0, 5000));
    ASSERT_EQ(queue_messages_total(t.inbound), 0);
    ASSERT(service_log_contains(&svc, "responses reach a queue again"));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(bound), 0, 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* --unroutable-responses ack: for deployments that read only reply_to. */
TEST(unroutable_response_is_acked_and_counted_when_asked)
{
    topology_names t = test_begin("unroutable_ack");
    t.outbound_queue[0] = '\0';
    stub_process stub = stub_start(NULL);
    int port;
    const char *args[] = {"--unroutable-responses", "ack", NULL};
    service_process svc = start_with_metrics("unroutable_ack", &t, &stub, &port, args);
    amqp_connection_state_t conn = test_connect();
    publish_range(t.inbound, "acked", 0, 5);
    ASSERT(wait_metric_at_least(port, "jube_amqp_unroutable_publishes_total{target=\"outbound\"}",
                                5, 10000));
    ASSERT(wait_queue_depth(conn, t.inbound, 0, 5000));
    ASSERT_EQ(scrape_metric(port, "jube_amqp_unroutable_held"), 0);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    ASSERT_EQ(queue_messages_total(t.inbound), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* 20 messages of 20 MB with prefetch 64: the service keeps at most --max-body-bytes of each. */
TEST(large_bodies_are_read_through_a_bounded_buffer)
{
    /* 15 MiB: under RabbitMQ 4.x's default max_message_size of 16 MiB. */
    enum { COUNT = 20, SIZE = 15 * 1024 * 1024, MAX_BODY = 1024 * 1024 };
    topology_names t = test_begin("large_bodies");
    stub_process stub = stub_start(NULL);
    const char *args[] = {"--prefetch", "64", "--max-body-bytes", "1048576", NULL};
    service_process svc = service_start("large_bodies", &t, &stub, args);
    amqp_connection_state_t conn = test_connect();
    char *body = malloc(SIZE);
    ASSERT(body);
    memset(body, ' ', SIZE);
    memcpy(body, "{\"TxnId\":\"large\"", 16);
    body[SIZE - 1] = '}';
    test_properties props = {.message_id = "large", .headers = &model, .header_count = 1};
    for (int i = 0; i < COUNT; i++)
        publish_message(conn, t.inbound, body, SIZE, &props);
    wait_confirms(conn);
    message_list dead = collect_messages(conn, t.dead_letter_queue, COUNT, 60000);
    ASSERT_EQ(dead.count, COUNT);
    for (size_t i = 0; i < dead.count; i++) {
        const amqp_envelope_t *m = &dead.items[i];
        ASSERT(header_text_is(m, "x-jube-error", "body_too_large"));
        ASSERT_EQ(m->message.body.len, MAX_BODY);
        ASSERT_MEM_EQ(m->message.body.bytes, body, MAX_BODY);
        ASSERT_EQ(header_of(m, "x-jube-body-size")->value.i64, SIZE);
    }
    free_messages(&dead);
    long peak = memory_kib(svc.pid, "VmHWM");
    printf("peak RSS of the service: %ld KiB after %d bodies of %d bytes (prefetch 64, "
           "--max-body-bytes %d)\n",
           peak, COUNT, SIZE, MAX_BODY);
    /* Prefetch x max-body-bytes plus a constant; holding the bodies would take 400 MiB. */
    ASSERT_GT(peak, 0);
    ASSERT_LE(peak, 160 * 1024);
    ASSERT(wait_queue_depth(conn, t.inbound, 0, 5000));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    free(body);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* A dead-letter queue that refuses every publish: the publisher backs off, and after
 * --max-hold-ms the delivery goes back to the queue instead of being held without end. */
TEST(refused_dead_letters_back_off_and_go_back_to_the_queue)
{
    topology_names t = test_begin("refused");
    amqp_connection_state_t conn = test_connect();
    amqp_table_entry_t limits[] = {
        {.key = amqp_cstring_bytes("x-max-length"),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 0}},
        {.key = amqp_cstring_bytes("x-overflow"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("reject-publish")}},
    };
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(t.dead_letter_queue), 0, 1, 0, 0,
                       (amqp_table_t){.num_entries = 2, .entries = limits});
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    stub_process stub = stub_start(NULL);
    int port;
    const char *args[] = {"--max-hold-ms", "2000", "--retry-base-ms", "100", "--retry-max-ms",
                          "5000",          NULL};
    service_process svc = start_with_metrics("refused", &t, &stub, &port, args);
    test_properties bad = {.message_id = "refused", .headers = &model, .header_count = 1};
    publish_message(conn, t.inbound, "{not json", 9, &bad);
    wait_confirms(conn);
    long long start = now_ms();
    ASSERT(wait_metric_at_least(port, "jube_amqp_messages_requeued_total", 1, 15000));
    double nacks = scrape_metric(port, "jube_amqp_publish_nacks_total");
    printf("first requeue after %lld ms, with %.0f nacks before it (backoff from 100 ms; "
           "--max-hold-ms 2000)\n",
           now_ms() - start, nacks);
    /* 100, 200, 400, 800 ms steps (with jitter) fit in 2 s; a fixed 50-100 ms would be 20+. */
    ASSERT(nacks >= 2 && nacks <= 8);
    ASSERT(service_log_contains(&svc, "refused (nack)"));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    ASSERT_EQ(queue_messages_total(t.inbound), 1); /* given back, never lost */
    test_disconnect(conn);
    stub_stop(&stub);
}

/* The dead-letter exchange must route by fanout; one of another type is refused at start. */
TEST(dead_letter_exchange_of_the_wrong_type_is_refused)
{
    topology_names t = test_begin("dlx_type");
    amqp_connection_state_t conn = test_connect();
    amqp_exchange_declare(conn, 1, amqp_cstring_bytes(t.dead_letter_exchange),
                          amqp_cstring_bytes("direct"), 0, 1, 0, 0, amqp_empty_table);
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    char uri[128];
    snprintf(uri, sizeof uri, "%s", broker_uri());
    const char *args[] = {"--amqp-uri",
                          uri,
                          "--inbound-queue",
                          t.inbound,
                          "--outbound-exchange",
                          t.outbound,
                          "--dead-letter-exchange",
                          t.dead_letter_exchange,
                          "--dead-letter-queue",
                          t.dead_letter_queue,
                          NULL};
    service_process svc = service_spawn("dlx_type", args);
    int status = service_wait_exit(&svc, 20000);
    ASSERT_EQ(status, 2);
    ASSERT(service_log_contains(&svc, "is not a fanout exchange"));
    amqp_exchange_delete(conn, 1, amqp_cstring_bytes(t.dead_letter_exchange), 0);
    test_disconnect(conn);
}

/* A resource alarm while the publisher writes more than the socket holds: RabbitMQ sends
 * connection.blocked and stops reading, and the write cannot finish. The publisher sees the block
 * (between writes, or in its unread input while a write waits) and waits for
 * connection.unblocked, instead of taking the broker for gone after two heartbeats (its own
 * check, or the kernel's user time-out on the unsent data) and reconnecting, and blocking again,
 * in a loop. */
TEST(memory_alarm_during_a_large_write_waits_for_the_unblock)
{
    enum { COUNT = 30, SIZE = 900 * 1024, HEARTBEAT_S = 2 };
    topology_names t = test_begin("alarm_mid_write");
    stub_process stub = stub_start(NULL);
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, t.inbound, true);
    char *body = malloc(SIZE);
    ASSERT(body);
    memset(body, 'x', SIZE);
    /* No model header: each is dead-lettered with its 900 KiB body, 27 MB in all. */
    test_properties props = {.message_id = "alarm"};
    for (int i = 0; i < COUNT; i++)
        publish_message(conn, t.inbound, body, SIZE, &props);
    wait_confirms(conn);
    test_disconnect(conn);
    ASSERT_EQ(broker_ctl("set_vm_memory_high_watermark 0.0000001"), 0);
    int port;
    const char *more[] = {"--heartbeat", "2", NULL};
    service_process svc = start_with_metrics("alarm_mid_write", &t, &stub, &port, more);
    long long deadline = now_ms() + 20000;
    /* Seen between writes, or by a write that cannot finish. */
    while (!service_log_contains(&svc, "the broker blocked publishing")) {
        if (now_ms() > deadline) {
            broker_ctl("set_vm_memory_high_watermark 0.4");
            FAIL("the publisher did not see the block within 20 s");
        }
        pause_ms(20);
    }
    pause_ms(3 * HEARTBEAT_S * 1000); /* the alarm lasts longer than two heartbeats */
    ASSERT_EQ(broker_ctl("set_vm_memory_high_watermark 0.4"), 0);
    conn = test_connect();
    message_list dead = collect_messages(conn, t.dead_letter_queue, COUNT, 60000);
    double reconnects = scrape_metric(port, "jube_amqp_reconnects_total{connection=\"publisher\"}");
    printf("%zu of %d dead letters of %d bytes after an alarm of %d s during the write; "
           "publisher reconnects: %.0f\n",
           dead.count, COUNT, SIZE, 3 * HEARTBEAT_S, reconnects);
    ASSERT_EQ(dead.count, COUNT);
    free_messages(&dead);
    ASSERT_EQ(reconnects, 0);
    ASSERT(!service_log_contains(&svc, "took no data"));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    free(body);
    test_disconnect(conn);
    stub_stop(&stub);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(huge_headers_do_not_stall_the_stream),
        TEST_ENTRY(user_id_of_another_user_never_reaches_a_dead_letter),
        TEST_ENTRY(dead_letter_queue_deleted_under_a_running_service),
        TEST_ENTRY(unroutable_response_is_held_until_a_queue_is_bound),
        TEST_ENTRY(unroutable_response_is_acked_and_counted_when_asked),
        TEST_ENTRY(large_bodies_are_read_through_a_bounded_buffer),
        TEST_ENTRY(refused_dead_letters_back_off_and_go_back_to_the_queue),
        TEST_ENTRY(dead_letter_exchange_of_the_wrong_type_is_refused),
        TEST_ENTRY(memory_alarm_during_a_large_write_waits_for_the_unblock),
    };
    return RUN_TESTS(tests);
}
