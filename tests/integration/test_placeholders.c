/* Jube's Implicit Async: a 200 that is only a placeholder is never published as the answer; the
 * full answer is collected from the Callback endpoint, and the transaction is never posted to
 * Jube twice. The stand-in Jube answers placeholders behind its knobs. */

#include "harness.h"
#include "test.h"

#include <signal.h>

static bool body_contains(const amqp_envelope_t *m, const char *text)
{
    return memmem(m->message.body.bytes, m->message.body.len, text, strlen(text)) != NULL;
}

static void dead_letter_detail(const amqp_envelope_t *m, char *out, size_t size)
{
    const amqp_field_value_t *v = header_of(m, "x-jube-error-detail");
    ASSERT(v && v->kind == AMQP_FIELD_KIND_UTF8);
    snprintf(out, size, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
}

TEST(every_placeholder_is_replaced_by_its_full_answer)
{
    enum { COUNT = 30 };
    topology_names t = test_begin("implicit_async");
    const char *stub_args[] = {"--implicit-async-every", "3", "--callback-delay-ms", "50", NULL};
    stub_process stub = stub_start(stub_args);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--metrics-listen", listen, NULL};
    service_process svc = service_start("implicit_async", &t, &stub, args);
    publish_range(t.inbound, "ia", 0, COUNT);
    amqp_connection_state_t conn = test_connect();
    message_list out = collect_messages(conn, t.outbound_queue, COUNT, 20000);
    ASSERT_EQ(out.count, COUNT);
    int via_callback = 0;
    for (size_t i = 0; i < out.count; i++) {
        const amqp_envelope_t *m = &out.items[i];
        /* Every one is a full answer: the rule results are there. */
        ASSERT(body_contains(m, "\"ResponseElevation\""));
        if (header_text_is(m, "x-jube-implicit-async", "callback")) {
            via_callback++;
            ASSERT(body_contains(m, "\"ImplicitAsyncTimedOut\":true"));
        } else {
            ASSERT(body_contains(m, "\"ImplicitAsyncTimedOut\":false"));
        }
    }
    free_messages(&out);
    printf("%d answers, %d of them collected from the Callback endpoint; Jube posted %ld times\n",
           COUNT, via_callback, stub_stat(&stub, "requests"));
    ASSERT_EQ(via_callback, COUNT / 3);
    ASSERT_EQ(stub_stat(&stub, "requests"), COUNT); /* never posted twice */
    ASSERT_EQ(stub_stat(&stub, "callback_answers"), COUNT / 3);
    ASSERT(wait_metric_at_least(
        port, "jube_amqp_implicit_async_callbacks_total{outcome=\"answered\"}", COUNT / 3, 5000));
    ASSERT_EQ(scrape_metric(port, "jube_amqp_implicit_async_placeholders_total"), COUNT / 3);
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

TEST(not_ready_then_ready)
{
    topology_names t = test_begin("implicit_async_408");
    const char *stub_args[] = {"--implicit-async-every", "1", "--callback-delay-ms", "1500", NULL};
    stub_process stub = stub_start(stub_args);
    service_process svc = service_start("implicit_async_408", &t, &stub, NULL);
    long long start = now_ms();
    publish_range(t.inbound, "late", 0, 1);
    amqp_connection_state_t conn = test_connect();
    message_list out = collect_messages(conn, t.outbound_queue, 1, 20000);
    ASSERT_EQ(out.count, 1);
    long long took = now_ms() - start;
    ASSERT(header_text_is(&out.items[0], "x-jube-implicit-async", "callback"));
    ASSERT(body_contains(&out.items[0], "\"ResponseElevation\""));
    free_messages(&out);
    long not_ready = stub_stat(&stub, "callback_not_ready");
    printf("answer collected after %lld ms, after %ld polls answered 408\n", took, not_ready);
    ASSERT_GE(took, 1500);
    ASSERT_GE(not_ready, 1);
    ASSERT_EQ(stub_stat(&stub, "requests"), 1);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* Runs one placeholder against the given stand-in and service flags and returns its dead letter's
 * detail. */
static void expect_incomplete(const char *name, const char *const *stub_args,
                              const char *const *service_args, char *detail, size_t size)
{
    topology_names t = test_begin(name);
    stub_process stub = stub_start(stub_args);
    service_process svc = service_start(name, &t, &stub, service_args);
    publish_range(t.inbound, name, 0, 1);
    amqp_connection_state_t conn = test_connect();
    message_list dead = collect_messages(conn, t.dead_letter_queue, 1, 20000);
    ASSERT_EQ(dead.count, 1);
    ASSERT(header_text_is(&dead.items[0], "x-jube-error", "implicit_async_incomplete"));
    dead_letter_detail(&dead.items[0], detail, size);
    printf("%s: %s\n", name, detail);
    ASSERT_CONTAINS(detail, "ImplicitAsyncTimedOut\\\":true"); /* the placeholder, quoted */
    free_messages(&dead);
    ASSERT_EQ(queue_depth(conn, t.outbound_queue), 0);
    ASSERT_EQ(stub_stat(&stub, "requests"), 1);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    ASSERT_EQ(queue_messages_total(t.inbound), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

TEST(callbacks_off_is_dead_lettered)
{
    const char *stub_args[] = {"--implicit-async-every", "1", "--callbacks", "disabled", NULL};
    char detail[2048];
    expect_incomplete("implicit_async_404", stub_args, NULL, detail, sizeof detail);
    ASSERT_CONTAINS(detail, "answered 404");
}

TEST(limit_passed_is_dead_lettered)
{
    const char *stub_args[] = {"--implicit-async-every", "1", "--callback-delay-ms", "600000",
                               NULL};
    const char *args[] = {"--implicit-async-timeout-ms", "1000", NULL};
    char detail[2048];
    expect_incomplete("implicit_async_limit", stub_args, args, detail, sizeof detail);
    ASSERT_CONTAINS(detail, "not ready within --implicit-async-timeout-ms 1000");
}

/* A graceful stop keeps polling for an answer that is on its way: here ready 1.5 s after the
 * placeholder, well within --shutdown-timeout. The answer is published, nothing dead-lettered,
 * and the transaction was posted once. */
TEST(shutdown_waits_for_an_answer_on_its_way)
{
    topology_names t = test_begin("implicit_async_stop_waits");
    const char *stub_args[] = {"--implicit-async-every", "1", "--callback-delay-ms", "1500", NULL};
    stub_process stub = stub_start(stub_args);
    service_process svc = service_start("implicit_async_stop_waits", &t, &stub, NULL);
    publish_range(t.inbound, "waits", 0, 1);
    long long deadline = now_ms() + 10000;
    while (stub_stat(&stub, "callback_not_ready") < 1) {
        ASSERT_LT(now_ms(), deadline);
        pause_ms(20);
    }
    long long stopped_at = now_ms();
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    printf("stopped %lld ms after the first poll answered 408\n", now_ms() - stopped_at);
    amqp_connection_state_t conn = test_connect();
    message_list out = collect_messages(conn, t.outbound_queue, 1, 5000);
    ASSERT_EQ(out.count, 1);
    ASSERT(header_text_is(&out.items[0], "x-jube-implicit-async", "callback"));
    free_messages(&out);
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    ASSERT_EQ(queue_messages_total(t.inbound), 0);
    ASSERT_EQ(stub_stat(&stub, "requests"), 1);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* An answer that is not ready by the shutdown's settle-by time (--shutdown-timeout 4: 3 s):
 * giving the delivery back would post it to Jube again, so it is dead-lettered with the instance
 * GUID instead; nothing is lost and nothing is processed twice. */
TEST(shutdown_while_awaiting_the_answer_loses_nothing)
{
    topology_names t = test_begin("implicit_async_stop");
    const char *stub_args[] = {"--implicit-async-every", "1", "--callback-delay-ms", "600000",
                               NULL};
    stub_process stub = stub_start(stub_args);
    const char *args[] = {"--shutdown-timeout", "4", NULL};
    service_process svc = service_start("implicit_async_stop", &t, &stub, args);
    publish_range(t.inbound, "stop", 0, 1);
    long long deadline = now_ms() + 10000;
    while (stub_stat(&stub, "callback_not_ready") < 1) {
        ASSERT_LT(now_ms(), deadline);
        pause_ms(20);
    }
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    amqp_connection_state_t conn = test_connect();
    message_list dead = collect_messages(conn, t.dead_letter_queue, 1, 5000);
    ASSERT_EQ(dead.count, 1);
    char detail[2048];
    dead_letter_detail(&dead.items[0], detail, sizeof detail);
    ASSERT_CONTAINS(detail, "stopped waiting");
    ASSERT_CONTAINS(detail, "/api/invoke/EntityAnalysisModel/Callback/");
    free_messages(&dead);
    ASSERT_EQ(queue_messages_total(t.inbound), 0);
    ASSERT_EQ(stub_stat(&stub, "requests"), 1);
    test_disconnect(conn);
    stub_stop(&stub);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(every_placeholder_is_replaced_by_its_full_answer),
        TEST_ENTRY(not_ready_then_ready),
        TEST_ENTRY(callbacks_off_is_dead_lettered),
        TEST_ENTRY(limit_passed_is_dead_lettered),
        TEST_ENTRY(shutdown_waits_for_an_answer_on_its_way),
        TEST_ENTRY(shutdown_while_awaiting_the_answer_loses_nothing),
    };
    return RUN_TESTS(tests);
}
