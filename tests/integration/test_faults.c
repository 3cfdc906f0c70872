/* Fault injection: a stream of transactions with a fault in the middle. Afterwards every id
 * must have reached the outbound queue at least once, with no more duplicates than the prefetch
 * window, nothing dead-lettered and nothing left in the inbound queue. */

#include "harness.h"
#include "scenario.h"
#include "test.h"

#include <signal.h>
#include <time.h>

static const char *const service_args[] = {"--workers",   "16", "--prefetch", "256",
                                           "--heartbeat", "5",  NULL};

/* A Jube slow enough that the stream outlasts a fault started with rabbitmqctl (a few seconds
 * of its own on a busy machine): 16 calls of 30 ms, about 500 a second. */
static const char *const paced_jube[] = {"--latency-ms", "30", NULL};

static void stop_and_start_app(scenario *s)
{
    (void)s;
    ASSERT_EQ(broker_ctl("stop_app"), 0);
    ASSERT_EQ(broker_ctl("start_app"), 0);
}

TEST(broker_app_restarted)
{
    run_scenario("fault_stop_app", paced_jube, service_args, stop_and_start_app);
}

static void kill_broker(scenario *s)
{
    (void)s;
    broker_kill_and_restart();
}

/* A classic queue keeps recent acks in the broker's memory, so a killed broker can bring back
 * messages that were already acked (seen here: about 300 more than the prefetch). Quorum queues
 * log acks before the broker acts on them, but acks it received and had not written yet die with
 * it too (seen: 251 unacknowledged and 209 more; once 586 duplicates in all): three windows. */
static const char *const quorum_args[] = {
    "--workers", "16", "--prefetch", "256", "--heartbeat", "5", "--queue-type", "quorum", NULL};

TEST(broker_killed_and_restarted)
{
    scenario_options o = {.service_args = quorum_args, .windows = 3};
    run_scenario_with("fault_broker_kill", &o, kill_broker);
}

static void kill_service(scenario *s)
{
    ASSERT_EQ(service_stop(&s->svc, SIGKILL), 128 + SIGKILL);
    s->svc = service_start(s->name, &s->t, &s->stub, s->service_args);
}

TEST(service_killed_and_restarted)
{
    run_scenario("fault_service_kill", NULL, service_args, kill_service);
}

static void jube_down_for_10_s(scenario *s)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->stub.port);
    stub_stop(&s->stub);
    pause_ms(10000); /* the outage itself */
    const char *again[] = {"--port", port, NULL};
    s->stub = stub_start(again);
    ASSERT(service_log_contains(&s->svc, "Jube unavailable"));
}

TEST(jube_down_for_10_seconds)
{
    run_scenario("fault_jube_down", NULL, service_args, jube_down_for_10_s);
}

static void close_publisher_connection(scenario *s)
{
    (void)s;
    ASSERT_EQ(broker_close_connections("jube-amqp publisher"), 1);
}

/* rabbitmqctl takes a second or two to find and close a connection: a slower Jube keeps the
 * stream going meanwhile. */

TEST(publisher_connection_closed)
{
    run_scenario("fault_publisher_closed", paced_jube, service_args, close_publisher_connection);
}

static void close_consumer_connection(scenario *s)
{
    (void)s;
    ASSERT_EQ(broker_close_connections("jube-amqp consumer"), 1);
}

TEST(consumer_connection_closed)
{
    run_scenario("fault_consumer_closed", paced_jube, service_args, close_consumer_connection);
}

/* Publishing to a deleted exchange makes the broker close the channel with 404; the service
 * declares its topology again and publishes what was not confirmed. */
static void delete_outbound_exchange(scenario *s)
{
    amqp_connection_state_t conn = test_connect();
    amqp_exchange_delete(conn, 1, amqp_cstring_bytes(s->t.outbound), 0);
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    test_disconnect(conn);
    long long deadline = now_ms() + 20000;
    while (!service_log_contains(&s->svc, "404 NOT_FOUND")) {
        ASSERT_LT(now_ms(), deadline);
        pause_ms(20);
    }
}

TEST(outbound_exchange_deleted)
{
    run_scenario("fault_exchange_deleted", paced_jube, service_args, delete_outbound_exchange);
}

/* A broker that stops answering without closing anything (a frozen VM, a network partition)
 * is noticed through missed heartbeats: within about two heartbeats (5 s here). */
static void freeze_broker(scenario *s)
{
    pid_t broker = broker_pid();
    ASSERT_EQ(kill(broker, SIGSTOP), 0);
    long long frozen_at = now_ms();
    long long deadline = frozen_at + 30000;
    while (!service_log_contains(&s->svc, "consumer connection to node") ||
           !service_log_contains(&s->svc, "publisher connection to node")) {
        if (now_ms() > deadline) {
            kill(broker, SIGCONT);
            FAIL("the service did not notice a frozen broker within 30 s");
        }
        pause_ms(50);
    }
    long long noticed = now_ms() - frozen_at;
    ASSERT_EQ(kill(broker, SIGCONT), 0);
    fprintf(stderr, "frozen broker noticed after %lld ms (heartbeat 5 s)\n", noticed);
    ASSERT_LE(noticed, 3 * 5000);
}

TEST(broker_frozen)
{
    run_scenario("fault_broker_frozen", NULL, service_args, freeze_broker);
}

static void nothing_more(scenario *s)
{
    (void)s; /* the stand-in fails every third call throughout */
}

TEST(jube_answers_503_to_every_third_call)
{
    const char *stub_args[] = {"--fail-every", "3", "--fail-status", "503", NULL};
    run_scenario("fault_jube_503", stub_args, service_args, nothing_more);
}

static void memory_alarm(scenario *s)
{
    ASSERT_EQ(broker_ctl("set_vm_memory_high_watermark 0.0000001"), 0);
    long long deadline = now_ms() + 20000;
    while (!service_log_contains(&s->svc, "the broker blocked publishing")) {
        ASSERT_LT(now_ms(), deadline);
        pause_ms(20);
    }
    pause_ms(3000); /* the alarm lasts a few seconds */
    ASSERT_EQ(broker_ctl("set_vm_memory_high_watermark 0.4"), 0);
}

TEST(broker_memory_alarm)
{
    run_scenario("fault_memory_alarm", paced_jube, service_args, memory_alarm);
}

static void sigterm_then_restart(scenario *s)
{
    ASSERT_EQ(service_stop(&s->svc, SIGTERM), 0);
    s->svc = service_start(s->name, &s->t, &s->stub, s->service_args);
}

TEST(sigterm_then_restart)
{
    run_scenario("fault_sigterm", NULL, service_args, sigterm_then_restart);
}

/* Deleting the queue deletes what is in it, so this one pauses the stream: half is published
 * and answered, the queue is deleted and declared again, then the other half is published. */
TEST(inbound_queue_deleted_and_recreated)
{
    scenario s = {.name = "fault_queue_deleted", .service_args = service_args};
    s.t = test_begin(s.name);
    s.stub = stub_start(NULL);
    s.svc = service_start(s.name, &s.t, &s.stub, service_args);
    publish_range(s.t.inbound, s.name, 0, STREAM / 2);
    wait_depth_at_least(s.t.outbound_queue, STREAM / 2, 120000);

    amqp_connection_state_t conn = test_connect();
    long long fault_at = now_ms();
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(s.t.inbound), 0, 0);
    ASSERT_EQ(amqp_get_rpc_reply(conn).reply_type, AMQP_RESPONSE_NORMAL);
    declare_queue(conn, s.t.inbound, true);
    long long deadline = now_ms() + 30000;
    while (queue_consumers(conn, s.t.inbound) < 1) {
        ASSERT_LT(now_ms(), deadline);
        pause_ms(20);
    }
    long long consuming_again = now_ms();
    test_disconnect(conn);
    ASSERT(service_log_contains(&s.svc, "cancelled the subscription"));

    publish_range(s.t.inbound, s.name, STREAM / 2, STREAM);
    wait_depth_zero(s.t.inbound, 120000);
    wait_depth_at_least(s.t.outbound_queue, STREAM, 120000);
    ASSERT_EQ(service_stop(&s.svc, SIGTERM), 0);
    long duplicates = check_every_id_arrived(&s, STREAM).duplicates;
    fprintf(stderr,
            "fault %s: %d messages, consuming again %lld ms after the deletion; %ld "
            "duplicates, 0 lost\n",
            s.name, STREAM, consuming_again - fault_at, duplicates);
    ASSERT_LE(duplicates, PREFETCH);
    stub_stop(&s.stub);
}

/* While Jube is unavailable each worker thread probes it once per backoff step, whatever
 * messages it holds. 4 threads backing off from 100 ms to 400 ms (each delay at least half its
 * step) make at most 3 + 2650/200 = 16 calls each in 3 s, plus the first call of each of their
 * other calls under way; without backoff they would make thousands. */
TEST(jube_not_hammered_while_unavailable)
{
    topology_names t = test_begin("not_hammered");
    const char *stub_args[] = {"--fail-first", "100000000", "--fail-status", "503", NULL};
    stub_process stub = stub_start(stub_args);
    const char *args[] = {"--workers",       "8",   "--worker-threads", "4",   "--prefetch", "50",
                          "--retry-base-ms", "100", "--retry-max-ms",   "400", NULL};
    service_process svc = service_start("not_hammered", &t, &stub, args);
    publish_range(t.inbound, "not_hammered", 0, 50);
    long long start = now_ms();
    pause_ms(3000); /* the observation window */
    long calls = stub_stat(&stub, "requests");
    long long window = now_ms() - start;
    fprintf(stderr, "%ld calls to an unavailable Jube from 4 worker threads in %lld ms\n", calls,
            window);
    ASSERT_LE(calls, 4 * (16 + (window - 3000) / 200 + 1) + 4);
    ASSERT_GE(calls, 4);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    amqp_connection_state_t conn = test_connect();
    ASSERT_EQ(queue_depth(conn, t.inbound), 50); /* all given back, none lost */
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* RabbitMQ closes a channel whose delivery stays unacked past consumer_timeout; during a long
 * outage the service returns deliveries to the queue after --max-hold-ms instead. */
TEST(long_outage_returns_held_deliveries)
{
    topology_names t = test_begin("max_hold");
    const char *stub_args[] = {"--fail-first", "100000000", "--fail-status", "503", NULL};
    stub_process stub = stub_start(stub_args);
    const char *args[] = {
        "--workers", "2",           "--prefetch", "10", "--retry-max-ms", "200", "--max-hold-ms",
        "1000",      "--log-level", "debug",      NULL};
    service_process svc = service_start("max_hold", &t, &stub, args);
    publish_range(t.inbound, "max_hold", 0, 10);
    long long deadline = now_ms() + 20000;
    while (!service_log_contains(&svc, "to the queue: held")) {
        ASSERT_LT(now_ms(), deadline);
        pause_ms(50);
    }
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    amqp_connection_state_t conn = test_connect();
    ASSERT_EQ(queue_depth(conn, t.inbound), 10);
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    test_disconnect(conn);
    stub_stop(&stub);
}

/* A shutdown that cannot finish (every worker waits on a slow Jube) ends at once on a second
 * signal, or at the shutdown time-out, with exit status 1; the broker keeps the messages. */
static void stuck_shutdown(const char *name, bool second_signal)
{
    topology_names t = test_begin(name);
    const char *stub_args[] = {"--latency-ms", "60000", NULL};
    stub_process stub = stub_start(stub_args);
    const char *args[] = {"--workers",
                          "2",
                          "--http-timeout-ms",
                          "120000",
                          "--shutdown-timeout",
                          second_signal ? "600" : "2",
                          NULL};
    service_process svc = service_start(name, &t, &stub, args);
    publish_range(t.inbound, name, 0, 20);
    long long deadline = now_ms() + 20000;
    while (stub_stat(&stub, "requests") < 2) {
        ASSERT_LT(now_ms(), deadline);
        pause_ms(20);
    }
    kill(svc.pid, SIGTERM);
    long long first = now_ms();
    if (second_signal) {
        while (!service_log_contains(&svc, "received Terminated")) {
            ASSERT_LT(now_ms(), deadline);
            pause_ms(10);
        }
        ASSERT_EQ(service_stop(&svc, SIGTERM), 1);
    } else {
        ASSERT_EQ(service_wait_exit(&svc, 30000), 1);
        ASSERT(service_log_contains(&svc, "shutdown did not finish within 2 s"));
    }
    fprintf(stderr, "%s: exited %lld ms after the first SIGTERM\n", name, now_ms() - first);
    ASSERT_LT(now_ms() - first, 10000);
    amqp_connection_state_t conn = test_connect();
    ASSERT(wait_queue_depth(conn, t.inbound, 20, 10000)); /* nothing lost */
    test_disconnect(conn);
    stub_stop(&stub);
}

TEST(second_sigterm_exits_at_once)
{
    stuck_shutdown("second_sigterm", true);
}

TEST(shutdown_timeout_exits_at_once)
{
    stuck_shutdown("shutdown_timeout", false);
}

/* The soak (scripts/soak.sh, not part of the suite): a steady rate for JA_SOAK_SECONDS (600 by
 * default) at JA_SOAK_RATE messages a second (200), with one broker restart a third of the way
 * and a 10-second Jube outage two thirds of the way. It prints the service's RSS at the start
 * and the end, and the number of messages lost. */
TEST(soak)
{
    const char *seconds_env = getenv("JA_SOAK_SECONDS");
    const char *rate_env = getenv("JA_SOAK_RATE");
    long seconds = seconds_env ? atol(seconds_env) : 600;
    long rate = rate_env ? atol(rate_env) : 200;
    ASSERT(seconds >= 30 && rate >= 1);
    scenario s = {.name = "soak", .service_args = service_args};
    s.t = test_begin(s.name);
    s.stub = stub_start(NULL);
    s.svc = service_start(s.name, &s.t, &s.stub, service_args);

    long total = seconds * rate;
    long long start = now_ms();
    long rss_start = -1;
    bool broker_restarted = false, jube_outage = false;
    amqp_connection_state_t conn = test_connect();
    for (long i = 0; i < total; i++) {
        /* Hold the pace: message i is due at start + i / rate. */
        long long due = start + i * 1000 / rate;
        long long now = now_ms();
        if (due > now)
            pause_ms((int)(due - now));
        char id[64];
        snprintf(id, sizeof id, "soak-%ld", i);
        char *body = sample_transaction(id);
        publish_transaction(conn, s.t.inbound, body);
        free(body);
        long long elapsed = now_ms() - start;
        if (rss_start < 0 && elapsed > 10000) {
            rss_start = memory_kib(s.svc.pid, "VmRSS");
            fprintf(stderr, "soak: RSS after 10 s: %ld KiB\n", rss_start);
        }
        if (!broker_restarted && elapsed > seconds * 1000 / 3) {
            wait_confirms(conn);
            test_disconnect(conn);
            fprintf(stderr, "soak: RSS %ld KiB; restarting the broker at %lld s\n",
                    memory_kib(s.svc.pid, "VmRSS"), elapsed / 1000);
            ASSERT_EQ(broker_ctl("stop_app"), 0);
            ASSERT_EQ(broker_ctl("start_app"), 0);
            conn = test_connect();
            broker_restarted = true;
        }
        if (!jube_outage && elapsed > seconds * 2000 / 3) {
            fprintf(stderr, "soak: RSS %ld KiB; Jube down for 10 s at %lld s\n",
                    memory_kib(s.svc.pid, "VmRSS"), elapsed / 1000);
            char port[16];
            snprintf(port, sizeof port, "%d", s.stub.port);
            stub_stop(&s.stub);
            long long back = now_ms() + 10000;
            /* Keep publishing through the outage. */
            while (now_ms() < back && i + 1 < total) {
                i++;
                long long next_due = start + i * 1000 / rate;
                if (next_due > now_ms())
                    pause_ms((int)(next_due - now_ms()));
                snprintf(id, sizeof id, "soak-%ld", i);
                body = sample_transaction(id);
                publish_transaction(conn, s.t.inbound, body);
                free(body);
            }
            const char *again[] = {"--port", port, NULL};
            s.stub = stub_start(again);
            jube_outage = true;
        }
    }
    wait_confirms(conn);
    test_disconnect(conn);
    wait_depth_zero(s.t.inbound, 300000);
    wait_depth_at_least(s.t.outbound_queue, total, 300000);
    long rss_end = memory_kib(s.svc.pid, "VmRSS");
    ASSERT_EQ(service_stop(&s.svc, SIGTERM), 0);
    long duplicates = check_every_id_arrived(&s, total).duplicates;
    fprintf(stderr,
            "soak: %ld messages over %ld s at %ld/s; RSS %ld KiB after 10 s, %ld KiB at the end; "
            "%ld duplicates, 0 lost\n",
            total, seconds, rate, rss_start, rss_end, duplicates);
    stub_stop(&s.stub);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(broker_app_restarted),
        TEST_ENTRY(broker_killed_and_restarted),
        TEST_ENTRY(service_killed_and_restarted),
        TEST_ENTRY(jube_down_for_10_seconds),
        TEST_ENTRY(jube_answers_503_to_every_third_call),
        TEST_ENTRY(broker_memory_alarm),
        TEST_ENTRY(sigterm_then_restart),
        TEST_ENTRY(inbound_queue_deleted_and_recreated),
        TEST_ENTRY(broker_frozen),
        TEST_ENTRY(publisher_connection_closed),
        TEST_ENTRY(consumer_connection_closed),
        TEST_ENTRY(outbound_exchange_deleted),
        TEST_ENTRY(second_sigterm_exits_at_once),
        TEST_ENTRY(shutdown_timeout_exits_at_once),
        TEST_ENTRY(jube_not_hammered_while_unavailable),
        TEST_ENTRY(long_outage_returns_held_deliveries),
        TEST_ENTRY_MANUAL(soak), /* run by scripts/soak.sh */
    };
    return RUN_TESTS(tests);
}
