/* The real service against the real broker and the stand-in Jube. */

#include "harness.h"

#include <cjson/cJSON.h>
#include "test.h"

#include <signal.h>
#include <stdbool.h>
#include <time.h>

/* Collects `count` responses and checks that each id in 0..count-1 ("<prefix>-<i>") came
 * exactly once. Returns how many arrived. */
static size_t expect_each_id_once(amqp_connection_state_t conn, const char *queue,
                                  const char *prefix, size_t count, int timeout_ms)
{
    message_list got = collect_messages(conn, queue, count, timeout_ms);
    char *seen = calloc(count, 1);
    for (size_t i = 0; i < got.count; i++) {
        char *id = response_entry_id(&got.items[i]);
        ASSERT_NOT_NULL(id);
        size_t n = strlen(prefix);
        ASSERT(strncmp(id, prefix, n) == 0 && id[n] == '-');
        long index = strtol(id + n + 1, NULL, 10);
        ASSERT(index >= 0 && (size_t)index < count);
        if (seen[index])
            FAIL("response for %s arrived twice", id);
        seen[index] = 1;
        free(id);
    }
    size_t arrived = got.count;
    if (arrived != count) {
        for (size_t i = 0; i < count; i++)
            if (!seen[i]) {
                fprintf(stderr, "first missing: %s-%zu\n", prefix, i);
                break;
            }
    }
    free(seen);
    free_messages(&got);
    return arrived;
}

TEST(roundtrip)
{
    topology_names t = test_begin_with_default_names("roundtrip");
    stub_process stub = stub_start(NULL);
    service_process svc = service_start("roundtrip", &t, &stub, NULL);
    amqp_connection_state_t conn = test_connect();

    char *body = sample_transaction("0987654321");
    test_header headers[] = {
        {.key = "EntityAnalysisModelGuid", .kind = 'S', .text = SAMPLE_MODEL},
        {.key = "tenant", .kind = 'S', .text = "acme"},
        {.key = "attempt", .kind = 'I', .number = 7},
    };
    test_properties props = {.correlation_id = "corr-42",
                             .message_id = "msg-42",
                             .content_type = "application/json",
                             .headers = headers,
                             .header_count = 3};
    publish_message(conn, t.inbound, body, strlen(body), &props);
    wait_confirms(conn);

    message_list got = collect_messages(conn, t.outbound_queue, 1, 10000);
    ASSERT_EQ(got.count, 1);
    const amqp_envelope_t *m = &got.items[0];
    const amqp_basic_properties_t *p = &m->message.properties;
    char *id = response_entry_id(m);
    ASSERT_STR_EQ(id, "0987654321");
    free(id);
    ASSERT(bytes_equal(m->exchange, t.outbound));
    ASSERT(p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
    ASSERT(bytes_equal(p->content_type, "application/json"));
    ASSERT_EQ(p->delivery_mode, AMQP_DELIVERY_PERSISTENT);
    ASSERT(bytes_equal(p->correlation_id, "corr-42"));
    ASSERT(bytes_equal(p->message_id, "msg-42"));
    ASSERT(header_text_is(m, "EntityAnalysisModelGuid", SAMPLE_MODEL));
    ASSERT(header_text_is(m, "tenant", "acme"));
    ASSERT_EQ(header_int(m, "attempt"), 7);
    ASSERT_EQ(header_int(m, "x-jube-http-status"), 200);
    free_messages(&got);
    free(body);

    ASSERT_EQ(queue_depth(conn, t.inbound), 0);
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    ASSERT_EQ(stub_stat(&stub, "invocations"), 1);
    test_disconnect(conn);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    stub_stop(&stub);
}

TEST(five_thousand_exactly_once)
{
    enum { COUNT = 5000 };
    const char *args[] = {"--workers", "8", "--prefetch", "200", NULL};
    fixture f = fixture_start(NULL, args);
    publish_range(f.t.inbound, "txn", 0, COUNT);

    ASSERT_EQ(expect_each_id_once(f.conn, f.t.outbound_queue, "txn", COUNT, 120000), COUNT);
    ASSERT_EQ(service_stop(&f.svc, SIGTERM), 0);
    /* Nothing more may come: no duplicates, nothing left behind, nothing dead-lettered. */
    ASSERT_EQ(queue_depth(f.conn, f.t.outbound_queue), 0);
    ASSERT_EQ(queue_depth(f.conn, f.t.inbound), 0);
    ASSERT_EQ(queue_depth(f.conn, f.t.dead_letter_queue), 0);
    ASSERT_EQ(stub_stat(&f.stub, "invocations"), COUNT);
    fixture_stop(&f);
}

typedef struct {
    const char *name;
    const char *body;          /* NULL: the sample transaction */
    size_t body_len;           /* 0 with a body: strlen */
    test_header header;        /* kind 0: no header */
    const char *expected_code; /* NULL: must succeed */
    int expected_status;
    const char *detail_part;
} bad_input_case;

TEST(bad_input_is_dead_lettered_with_its_reason)
{
    /* The stand-in keeps Jube's 4000-byte limit; the service allows 6000, so a 5000-byte
     * body reaches Jube (and gets its 400), while a 7000-byte one is stopped by the service. */
    const char *args[] = {"--max-body-bytes", "6000", NULL};
    fixture f = fixture_start(NULL, args);

    char big[7001], jube_big[5001];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"TxnId\":\"big\"}", 15);
    big[7000] = '\0';
    memset(jube_big, ' ', sizeof jube_big);
    memcpy(jube_big, "{\"TxnId\":\"jube-big\"}", 20);
    jube_big[5000] = '\0';
    const test_header model = {.key = "EntityAnalysisModelGuid", .kind = 'S', .text = SAMPLE_MODEL};
    const bad_input_case cases[] = {
        {"no_header", NULL, 0, {0}, "missing_model_guid", 0, "no EntityAnalysisModelGuid"},
        {"int_header",
         NULL,
         0,
         {.key = "EntityAnalysisModelGuid", .kind = 'I', .number = 5},
         "invalid_model_guid",
         0,
         "is an integer (I)"},
        {"not_a_guid",
         NULL,
         0,
         {.key = "EntityAnalysisModelGuid", .kind = 'S', .text = "../x"},
         "invalid_model_guid",
         0,
         "\"../x\" is not a GUID"},
        {"not_json", "hello", 0, model, "invalid_json", 0, "not valid JSON"},
        {"json_array", "[1,2]", 0, model, "invalid_json", 0, "not an object"},
        {"empty_body", "", 0, model, "empty_body", 0, "empty"},
        {"too_large", big, 0, model, "body_too_large", 0, "7000 bytes"},
        {"unknown_model",
         NULL,
         0,
         {.key = "EntityAnalysisModelGuid",
          .kind = 'S',
          .text = "00000000-0000-0000-0000-000000000000"},
         "http_404",
         404,
         "Model not found."},
        {"jube_limit", jube_big, 0, model, "http_400", 400, "too large"},
        {"bytes_header_is_fine",
         NULL,
         0,
         {.key = "EntityAnalysisModelGuid", .kind = 'x', .text = SAMPLE_MODEL},
         NULL,
         0,
         NULL},
    };
    enum { CASES = sizeof cases / sizeof cases[0] };
    char *sample = sample_transaction("ok");
    for (size_t i = 0; i < CASES; i++) {
        const char *body = cases[i].body ? cases[i].body : sample;
        test_properties props = {.message_id = cases[i].name,
                                 .headers = &cases[i].header,
                                 .header_count = cases[i].header.kind ? 1 : 0};
        publish_message(f.conn, f.t.inbound, body, strlen(body), &props);
    }
    wait_confirms(f.conn);

    message_list dead = collect_messages(f.conn, f.t.dead_letter_queue, CASES - 1, 20000);
    ASSERT_EQ(dead.count, CASES - 1);
    for (size_t i = 0; i < CASES; i++) {
        const bad_input_case *c = &cases[i];
        if (!c->expected_code)
            continue;
        const amqp_envelope_t *m = NULL;
        for (size_t j = 0; j < dead.count; j++)
            if (bytes_equal(dead.items[j].message.properties.message_id, c->name))
                m = &dead.items[j];
        if (!m)
            FAIL("case %s: no dead letter", c->name);
        if (!header_text_is(m, "x-jube-error", c->expected_code))
            FAIL("case %s: x-jube-error is not %s", c->name, c->expected_code);
        const amqp_field_value_t *detail = header_of(m, "x-jube-error-detail");
        ASSERT(detail && detail->kind == AMQP_FIELD_KIND_UTF8);
        char text[2048];
        snprintf(text, sizeof text, "%.*s", (int)detail->value.bytes.len,
                 (char *)detail->value.bytes.bytes);
        if (!strstr(text, c->detail_part))
            FAIL("case %s: detail \"%s\" lacks \"%s\"", c->name, text, c->detail_part);
        ASSERT_EQ(header_int(m, "x-jube-http-status"), c->expected_status);
        ASSERT_EQ(header_int(m, "x-jube-attempts"), c->expected_status ? 1 : 0);
        /* The original body (up to --max-body-bytes) and headers travel with it. */
        const char *body = c->body ? c->body : sample;
        size_t kept = strlen(body) < 6000 ? strlen(body) : 6000;
        ASSERT_EQ(m->message.body.len, kept);
        ASSERT(kept == 0 || memcmp(m->message.body.bytes, body, kept) == 0);
        if (kept < strlen(body)) {
            const amqp_field_value_t *size = header_of(m, "x-jube-body-size");
            ASSERT(size && size->kind == AMQP_FIELD_KIND_I64);
            ASSERT_EQ(size->value.i64, (long long)strlen(body));
        }
        if (c->header.kind == 'S')
            ASSERT(header_text_is(m, "EntityAnalysisModelGuid", c->header.text));
        ASSERT_EQ(m->message.properties.delivery_mode, AMQP_DELIVERY_PERSISTENT);
    }
    free_messages(&dead);

    message_list ok = collect_messages(f.conn, f.t.outbound_queue, 1, 10000);
    ASSERT_EQ(ok.count, 1);
    ASSERT(bytes_equal(ok.items[0].message.properties.message_id, "bytes_header_is_fine"));
    free_messages(&ok);
    ASSERT(wait_queue_depth(f.conn, f.t.inbound, 0, 5000));
    ASSERT_EQ(service_stop(&f.svc, SIGTERM), 0);
    ASSERT_EQ(queue_depth(f.conn, f.t.inbound), 0);
    free(sample);
    fixture_stop(&f);
}

TEST(jube_unavailable_then_recovers)
{
    enum { COUNT = 300 };
    /* The first 600 calls fail with 503, as Jube does while its engine starts. */
    const char *stub_args[] = {"--fail-first", "600", "--fail-status", "503", NULL};
    const char *args[] = {"--workers", "16", "--retry-base-ms", "5", "--retry-max-ms", "50", NULL};
    fixture f = fixture_start(stub_args, args);
    publish_range(f.t.inbound, "r", 0, COUNT);

    ASSERT_EQ(expect_each_id_once(f.conn, f.t.outbound_queue, "r", COUNT, 60000), COUNT);
    ASSERT_EQ(stub_stat(&f.stub, "failures"), 600);
    ASSERT_EQ(queue_depth(f.conn, f.t.dead_letter_queue), 0);
    ASSERT(service_log_contains(&f.svc, "Jube unavailable: it answered HTTP 503"));
    ASSERT(service_log_contains(&f.svc, "Jube is answering again"));
    fixture_stop(&f);
}

TEST(server_error_dead_lettered_after_max_attempts)
{
    const char *stub_args[] = {"--fail-every", "1", "--fail-status", "500", NULL};
    const char *args[] = {"--max-attempts", "3", NULL};
    fixture f = fixture_start(stub_args, args);
    char *body = sample_transaction("e-1");
    publish_transaction(f.conn, f.t.inbound, body);
    wait_confirms(f.conn);

    message_list dead = collect_messages(f.conn, f.t.dead_letter_queue, 1, 10000);
    ASSERT_EQ(dead.count, 1);
    ASSERT(header_text_is(&dead.items[0], "x-jube-error", "http_500"));
    ASSERT_EQ(header_int(&dead.items[0], "x-jube-attempts"), 3);
    ASSERT_EQ(header_int(&dead.items[0], "x-jube-http-status"), 500);
    ASSERT_EQ(stub_stat(&f.stub, "requests"), 3);
    free_messages(&dead);
    free(body);
    ASSERT_EQ(queue_depth(f.conn, f.t.outbound_queue), 0);
    fixture_stop(&f);
}

TEST(reply_to_gets_the_response)
{
    fixture f = fixture_start(NULL, NULL);
    const char *replies = "reply_to.replies";
    amqp_queue_delete(f.conn, 1, amqp_cstring_bytes(replies), 0, 0);
    declare_queue(f.conn, replies, true); /* RabbitMQ 4.3 refuses transient non-exclusive queues */

    char *body = sample_transaction("rt-1");
    test_header model = {.key = "EntityAnalysisModelGuid", .kind = 'S', .text = SAMPLE_MODEL};
    test_properties props = {
        .correlation_id = "ask-1", .reply_to = replies, .headers = &model, .header_count = 1};
    publish_message(f.conn, f.t.inbound, body, strlen(body), &props);
    wait_confirms(f.conn);

    message_list reply = collect_messages(f.conn, replies, 1, 10000);
    ASSERT_EQ(reply.count, 1);
    char *id = response_entry_id(&reply.items[0]);
    ASSERT_STR_EQ(id, "rt-1");
    free(id);
    ASSERT(bytes_equal(reply.items[0].message.properties.correlation_id, "ask-1"));
    free_messages(&reply);
    message_list out = collect_messages(f.conn, f.t.outbound_queue, 1, 10000);
    ASSERT_EQ(out.count, 1);
    free_messages(&out);
    free(body);
    ASSERT_EQ(service_stop(&f.svc, SIGTERM), 0);
    amqp_queue_delete(f.conn, 1, amqp_cstring_bytes(replies), 0, 0);
    fixture_stop(&f);
}

/* A W3C traceparent on the message reaches Jube as the HTTP header of that name; a malformed one
 * is not passed on, and the message is still answered. */
TEST(traceparent_reaches_jube)
{
    fixture f = fixture_start(NULL, NULL);
    char trace[64], bad[96];
    snprintf(trace, sizeof trace, "00-%016llx%016llx-00f067aa0ba902b7-01",
             (unsigned long long)getpid(), (unsigned long long)now_ms());
    snprintf(bad, sizeof bad, "00-%016llx%016llx-00f067aa0ba902b7-01\r\nX-Injected: 1",
             (unsigned long long)getpid(), (unsigned long long)now_ms() + 1);
    const char *values[2] = {trace, bad};
    for (int i = 0; i < 2; i++) {
        char id[16];
        snprintf(id, sizeof id, "tp-%d", i);
        char *body = sample_transaction(id);
        test_header headers[] = {
            {.key = "EntityAnalysisModelGuid", .kind = 'S', .text = SAMPLE_MODEL},
            {.key = "traceparent", .kind = 'S', .text = values[i]}};
        test_properties props = {.headers = headers, .header_count = 2};
        publish_message(f.conn, f.t.inbound, body, strlen(body), &props);
        free(body);
    }
    wait_confirms(f.conn);
    message_list out = collect_messages(f.conn, f.t.outbound_queue, 2, 10000);
    ASSERT_EQ(out.count, 2);
    free_messages(&out);
    ASSERT(stub_log_contains(trace));
    bad[55] = '\0'; /* the well-formed part of the malformed value never went out either */
    ASSERT(!stub_log_contains(bad));
    ASSERT(!stub_log_contains("X-Injected"));
    fixture_stop(&f);
}

/* /metrics counts what the test sent; /healthz and /readyz answer; other paths get 404. */
TEST(metrics_count_what_was_sent)
{
    topology_names t = test_begin("metrics");
    stub_process stub = stub_start(NULL);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--metrics-listen", listen, NULL};
    service_process svc = service_start("metrics", &t, &stub, args);
    publish_range(t.inbound, "metrics", 0, 20);
    amqp_connection_state_t conn = test_connect();
    test_header model = {.key = "EntityAnalysisModelGuid", .kind = 'S', .text = SAMPLE_MODEL};
    test_properties props = {.headers = &model, .header_count = 1};
    for (int i = 0; i < 3; i++)
        publish_message(conn, t.inbound, "{not json", 9, &props);
    wait_confirms(conn);
    message_list out = collect_messages(conn, t.outbound_queue, 20, 20000);
    ASSERT_EQ(out.count, 20);
    free_messages(&out);
    message_list dead = collect_messages(conn, t.dead_letter_queue, 3, 20000);
    ASSERT_EQ(dead.count, 3);
    free_messages(&dead);

    /* The last acks follow the confirms: wait for the counters to settle, bounded. */
    int status = 0;
    char *scrape = NULL;
    long long deadline = now_ms() + 10000;
    for (;;) {
        free(scrape);
        scrape = http_get(port, "/metrics", &status);
        ASSERT(scrape && status == 200);
        if (metric_value(scrape, "jube_amqp_in_flight_messages") == 0 || now_ms() > deadline)
            break;
        pause_ms(20);
    }
    ASSERT_EQ(metric_value(scrape, "jube_amqp_messages_consumed_total"), 23);
    ASSERT_EQ(metric_value(scrape, "jube_amqp_messages_published_total"), 20);
    ASSERT_EQ(
        metric_value(scrape, "jube_amqp_messages_dead_lettered_total{reason=\"invalid_json\"}"), 3);
    ASSERT_EQ(metric_value(scrape, "jube_amqp_jube_responses_total{class=\"2xx\"}"), 20);
    ASSERT_EQ(metric_value(scrape, "jube_amqp_jube_request_duration_seconds_count"), 20);
    ASSERT_EQ(metric_value(scrape, "jube_amqp_end_to_end_seconds_count"), 23);
    ASSERT_EQ(metric_value(scrape, "jube_amqp_in_flight_messages"), 0);
    char series[160];
    snprintf(series, sizeof series,
             "jube_amqp_connection_up{connection=\"consumer\",node=\"127.0.0.1:%d\"}",
             broker_port());
    ASSERT_EQ(metric_value(scrape, series), 1);
    snprintf(series, sizeof series,
             "jube_amqp_connection_up{connection=\"publisher\",node=\"127.0.0.1:%d\"}",
             broker_port());
    ASSERT_EQ(metric_value(scrape, series), 1);
    free(scrape);

    char *body = http_get(port, "/healthz", &status);
    ASSERT(body && status == 200);
    free(body);
    body = http_get(port, "/readyz", &status);
    ASSERT(body && status == 200);
    free(body);
    body = http_get(port, "/nope", &status);
    ASSERT(body && status == 404);
    free(body);

    /* Jube gone: the next message finds it unavailable, and the service is not ready. */
    stub_stop(&stub);
    publish_range(t.inbound, "metrics-late", 0, 1);
    deadline = now_ms() + 10000;
    do {
        body = http_get(port, "/readyz", &status);
        ASSERT(body);
        free(body);
        ASSERT_LT(now_ms(), deadline);
        if (status == 200)
            pause_ms(20);
    } while (status == 200);
    ASSERT_EQ(status, 503);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    test_disconnect(conn);
}

/* RabbitMQ 3.x only: 4.3 refuses to declare a non-durable, non-exclusive queue (541), so there
 * Jube's own declaration fails and nothing is left to adopt. */
TEST(adopts_jube_style_topology)
{
    topology_names t = test_begin("adopt");
    amqp_connection_state_t conn = test_connect();
    /* As Jube declares them: a non-durable queue and a non-durable fanout exchange. */
    declare_queue(conn, t.inbound, false);
    amqp_exchange_declare(conn, 1, amqp_cstring_bytes(t.outbound), amqp_cstring_bytes("fanout"), 0,
                          0, 0, 0, amqp_empty_table);
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);

    stub_process stub = stub_start(NULL);
    service_process svc = service_start("adopt", &t, &stub, NULL);
    char *body = sample_transaction("adopt-1");
    publish_transaction(conn, t.inbound, body);
    wait_confirms(conn);
    message_list out = collect_messages(conn, t.outbound_queue, 1, 10000);
    ASSERT_EQ(out.count, 1);
    free_messages(&out);
    free(body);
    char expected[400];
    snprintf(expected, sizeof expected, "using existing queue '%s'", t.inbound);
    ASSERT(service_log_contains(&svc, expected));
    snprintf(expected, sizeof expected, "using existing exchange '%s'", t.outbound);
    ASSERT(service_log_contains(&svc, expected));
    ASSERT(!service_log_contains(&svc, "PRECONDITION_FAILED"));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

TEST(sigterm_under_load_loses_nothing)
{
    enum { COUNT = 3000 };
    const char *stub_args[] = {"--latency-ms", "2", NULL};
    const char *args[] = {"--workers", "8", "--prefetch", "100", NULL};
    fixture f = fixture_start(stub_args, args);
    publish_range(f.t.inbound, "s", 0, COUNT);

    /* Stop it part-way through. */
    long long deadline = now_ms() + 60000;
    while (queue_depth(f.conn, f.t.outbound_queue) < COUNT / 5) {
        ASSERT_LT(now_ms(), deadline);
        struct timespec d = {.tv_nsec = 5000000};
        nanosleep(&d, NULL);
    }
    ASSERT_EQ(service_stop(&f.svc, SIGTERM), 0);
    ASSERT(service_log_contains(&f.svc, "every delivery is settled"));
    long done = queue_depth(f.conn, f.t.outbound_queue);
    long left = queue_depth(f.conn, f.t.inbound);
    fprintf(stderr, "after SIGTERM: %ld responses, %ld still queued\n", done, left);
    ASSERT_GT(left, 0);
    ASSERT_EQ(done + left, COUNT); /* a graceful stop leaves no duplicate */

    f.svc = service_start("sigterm", &f.t, &f.stub, args);
    ASSERT_EQ(expect_each_id_once(f.conn, f.t.outbound_queue, "s", COUNT, 60000), COUNT);
    ASSERT_EQ(service_stop(&f.svc, SIGTERM), 0);
    ASSERT_EQ(queue_depth(f.conn, f.t.dead_letter_queue), 0);
    fixture_stop(&f);
}

TEST(quorum_queues_on_request)
{
    const char *args[] = {"--queue-type", "quorum", NULL};
    fixture f = fixture_start(NULL, args);
    /* Declaring a queue again with the same arguments succeeds, with others fails: so this
     * passes only if the service created it as a durable quorum queue. */
    amqp_table_entry_t quorum = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
    amqp_queue_declare(f.conn, 1, amqp_cstring_bytes(f.t.inbound), 0, 1, 0, 0,
                       (amqp_table_t){.num_entries = 1, .entries = &quorum});
    ASSERT_EQ(amqp_get_rpc_reply(f.conn).reply_type, AMQP_RESPONSE_NORMAL);
    char *body = sample_transaction("q-1");
    publish_transaction(f.conn, f.t.inbound, body);
    wait_confirms(f.conn);
    message_list out = collect_messages(f.conn, f.t.outbound_queue, 1, 10000);
    ASSERT_EQ(out.count, 1);
    free_messages(&out);
    free(body);
    fixture_stop(&f);
}

/* The path a person clicks through in RabbitMQ's management UI, as Jube's own documentation
 * shows it: "Publish message" on the inbound queue with the model header, then "Get messages" on
 * the queue bound to the outbound exchange. Both through the management HTTP API the UI uses. */
TEST(a_person_can_send_a_transaction_through_the_management_ui)
{
    topology_names t = test_begin("try_it");
    stub_process stub = stub_start(NULL);
    service_process svc = service_start("try_it", &t, &stub, NULL);
    int port = broker_management_port();
    const char *guest = "Z3Vlc3Q6Z3Vlc3Q="; /* guest:guest */

    char *sample = sample_transaction("try-1");
    cJSON *publish = cJSON_CreateObject();
    cJSON *properties = cJSON_AddObjectToObject(publish, "properties");
    cJSON_AddStringToObject(properties, "content_type", "application/json");
    cJSON *headers = cJSON_AddObjectToObject(properties, "headers");
    cJSON_AddStringToObject(headers, "EntityAnalysisModelGuid", SAMPLE_MODEL);
    cJSON_AddStringToObject(publish, "routing_key", t.inbound);
    cJSON_AddStringToObject(publish, "payload", sample);
    cJSON_AddStringToObject(publish, "payload_encoding", "string");
    char *text = cJSON_PrintUnformatted(publish);
    int status = 0;
    char *answer =
        http_request(port, "POST", "/api/exchanges/%2F/amq.default/publish", guest, text, &status);
    ASSERT_EQ(status, 200);
    ASSERT_CONTAINS(answer, "\"routed\":true");
    free(answer);
    free(text);
    cJSON_Delete(publish);

    char path[400];
    snprintf(path, sizeof path, "/api/queues/%%2F/%s/get", t.outbound_queue);
    const char *get = "{\"count\":1,\"ackmode\":\"ack_requeue_false\",\"encoding\":\"auto\"}";
    cJSON *messages = NULL;
    long long deadline = now_ms() + 10000;
    while (cJSON_GetArraySize(messages) < 1) {
        ASSERT_LT(now_ms(), deadline);
        cJSON_Delete(messages);
        answer = http_request(port, "POST", path, guest, get, &status);
        ASSERT_EQ(status, 200);
        messages = cJSON_Parse(answer);
        free(answer);
        if (cJSON_GetArraySize(messages) < 1)
            pause_ms(50);
    }
    cJSON *payload =
        cJSON_Parse(cJSON_GetObjectItem(cJSON_GetArrayItem(messages, 0), "payload")->valuestring);
    ASSERT(payload);
    ASSERT_STR_EQ(cJSON_GetObjectItem(payload, "EntityInstanceEntryId")->valuestring, "try-1");
    ASSERT(cJSON_GetObjectItem(payload, "ResponseElevation"));
    cJSON_Delete(payload);
    cJSON_Delete(messages);
    free(sample);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    stub_stop(&stub);
}

TEST(bad_flags_exit_2_with_a_clear_message)
{
    const struct {
        const char *args[4];
        const char *message;
    } cases[] = {
        {{"--prefetch", "0", NULL}, "--prefetch: 0 is out of range 1..65535"},
        {{"--workers", "lots", NULL}, "--workers: 'lots' is not a whole number"},
        {{"--bogus", "1", NULL}, "unknown flag '--bogus'"},
        {{"--queue-type", "lazy", NULL}, "'lazy' is not one of: auto, classic, quorum"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        service_process svc = service_spawn("bad_flags", cases[i].args);
        ASSERT_EQ(service_wait_exit(&svc, 10000), 2);
        if (!service_log_contains(&svc, cases[i].message))
            FAIL("no '%s' in %s", cases[i].message, svc.log_path);
    }
    /* A key with a line break inside would split the X-API-KEY header: refused, not shown. */
    setenv("JUBE_API_KEY", "k3y\r\nX-Injected: yes", 1);
    const char *none[] = {NULL};
    service_process svc = service_spawn("bad_flags", none);
    ASSERT_EQ(service_wait_exit(&svc, 10000), 2);
    ASSERT(service_log_contains(&svc, "environment variable JUBE_API_KEY: the value contains a "
                                      "line break"));
    ASSERT(!service_log_contains(&svc, "Injected"));
    unsetenv("JUBE_API_KEY");

    const char *help[] = {"--help", NULL};
    svc = service_spawn("bad_flags", help);
    ASSERT_EQ(service_wait_exit(&svc, 10000), 0);
    ASSERT(service_log_contains(&svc, "--max-body-bytes"));
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(roundtrip),
        TEST_ENTRY(five_thousand_exactly_once),
        TEST_ENTRY(bad_input_is_dead_lettered_with_its_reason),
        TEST_ENTRY(jube_unavailable_then_recovers),
        TEST_ENTRY(server_error_dead_lettered_after_max_attempts),
        TEST_ENTRY(reply_to_gets_the_response),
        TEST_ENTRY(traceparent_reaches_jube),
        TEST_ENTRY(metrics_count_what_was_sent),
        TEST_ENTRY(adopts_jube_style_topology),
        TEST_ENTRY(sigterm_under_load_loses_nothing),
        TEST_ENTRY(quorum_queues_on_request),
        TEST_ENTRY(bad_flags_exit_2_with_a_clear_message),
        TEST_ENTRY(a_person_can_send_a_transaction_through_the_management_ui),
    };
    return RUN_TESTS(tests);
}
