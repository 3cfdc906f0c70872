/* --concurrency adaptive against stand-ins of Jube: one with a knee (5 ms up to 10 calls at once,
 * 5 ms more per extra call, 503 above 40), where adaptive must carry most of the knee's capacity
 * with few 503s while a fixed setting beyond the knee does not; and a fast one, where adaptive
 * must stay within 10% of the best fixed setting. */

#include "harness.h"
#include "test.h"

#include <signal.h>
#include <stdio.h>

typedef struct {
    double rate;    /* messages per second */
    long calls;     /* invocations Jube received */
    long refused;   /* of them, answered 503 for overload */
    long most;      /* invocations under way at once, at most */
    double at_jube; /* invocations under way at once, on average over the run */
    double jube_ms; /* the time Jube took per invocation, on average */
    long gap_us;    /* the time between an answer and the next call on its connection */
    double limit;   /* the service's limit at the end */
    double cuts_latency, cuts_overload, rtt_ms, baseline_ms;
} run_result;

/* Publishes `count` transactions, then times one service draining them. */
static run_result run(const char *name, long count, const char *const *stub_args,
                      const char *workers, const char *mode)
{
    topology_names t = test_begin(name);
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, t.inbound, true);
    test_disconnect(conn);
    publish_range(t.inbound, name, 0, count);
    stub_process stub = stub_start(stub_args);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--workers", workers, "--concurrency", mode, "--metrics-listen",
                          listen,      NULL};
    long long start = now_ms();
    service_process svc = service_start(name, &t, &stub, args);
    wait_depth_at_least(t.outbound_queue, count, 300000);
    run_result r = {.rate = count * 1000.0 / (double)(now_ms() - start)};
    r.limit = scrape_metric(port, "jube_amqp_jube_concurrency_limit");
    r.cuts_latency =
        scrape_metric(port, "jube_amqp_jube_concurrency_decreases_total{cause=\"latency\"}");
    r.cuts_overload =
        scrape_metric(port, "jube_amqp_jube_concurrency_decreases_total{cause=\"overload\"}");
    r.rtt_ms = scrape_metric(port, "jube_amqp_jube_round_trip_seconds") * 1000;
    r.baseline_ms = scrape_metric(port, "jube_amqp_jube_round_trip_baseline_seconds") * 1000;
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    r.calls = stub_stat(&stub, "requests");
    r.refused = stub_stat(&stub, "overloaded");
    r.most = stub_stat(&stub, "most_serving");
    r.at_jube = (double)stub_stat(&stub, "serving_ms") * r.rate / 1000.0 / (double)count;
    r.jube_ms = (double)stub_stat(&stub, "serving_ms") / (double)r.calls;
    r.gap_us = stub_stat(&stub, "gap_us");
    stub_stop(&stub);
    conn = test_connect();
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    ASSERT_EQ(queue_depth(conn, t.inbound), 0);
    test_disconnect(conn);
    fprintf(stderr,
            "  %-9s --workers %-4s %6.0f msg/s, %6ld calls to Jube for %ld messages (%ld "
            "answered 503), %.1f at once on average (%.2f ms each, %ld us between calls), at most "
            "%ld; limit at the end %.0f (decreased %.0f times for "
            "latency, %.0f for overload; round trip %.2f ms, baseline %.2f ms)\n",
            mode, workers, r.rate, r.calls, count, r.refused, r.at_jube, r.jube_ms, r.gap_us,
            r.most, r.limit, r.cuts_latency, r.cuts_overload, r.rtt_ms, r.baseline_ms);
    return r;
}

TEST(adaptive_finds_the_knee)
{
    const char *knee[] = {"--latency-ms",     "5",  "--knee", "10", "--knee-step-ms", "5",
                          "--overload-above", "40", NULL};
    fprintf(stderr, "Jube with a knee: 5 ms up to 10 calls at once, +5 ms per extra call, 503 "
                    "above 40 (2,000 msg/s at the knee, less the service's own time per call)\n");
    /* What this machine carries at exactly the knee, the default beside it, then adaptive with
     * a bound far beyond the knee. */
    run_result at_knee = run("conc_knee_fixed10", 10000, knee, "10", "fixed");
    run_result fixed = run("conc_knee_fixed16", 3000, knee, "16", "fixed");
    run_result adaptive = run("conc_knee_adaptive", 10000, knee, "256", "adaptive");
    fprintf(stderr, "  adaptive carries %.0f%% of the knee's capacity on this machine\n",
            100.0 * adaptive.rate / at_knee.rate);
    /* At least 80% of the knee's capacity, with few 503s. */
    ASSERT(adaptive.rate >= 0.8 * at_knee.rate);
    ASSERT_LE(adaptive.refused, 10000 / 50);
    ASSERT_GT(adaptive.rate, 2 * fixed.rate);
}

/* Reads the service's limit every 20 ms until it is within [low, high]; returns the milliseconds
 * that took, or -1 when it did not within timeout_ms. */
static long ms_until_limit_within(int port, int low, int high, long timeout_ms)
{
    long long start = now_ms();
    while (now_ms() - start <= timeout_ms) {
        double limit = scrape_metric(port, "jube_amqp_jube_concurrency_limit");
        if (limit >= low && limit <= high)
            return (long)(now_ms() - start);
        pause_ms(20);
    }
    return -1;
}

/* A service with a backlog against a Jube answering in 20 ms and 5 ms slower per call past its
 * knee, started adaptive with a bound of 256. Returns the port of its metrics. */
static int start_with_backlog(fixture *f, const char *name, const char *knee, long backlog)
{
    const char *stub_args[] = {"--latency-ms",     "20",  "--knee", knee, "--knee-step-ms", "5",
                               "--overload-above", "200", NULL};
    f->t = test_begin(name);
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, f->t.inbound, true);
    test_disconnect(conn);
    publish_range(f->t.inbound, name, 0, backlog);
    f->stub = stub_start(stub_args);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--workers", "256", "--concurrency", "adaptive", "--metrics-listen",
                          listen,      NULL};
    f->svc = service_start(name, &f->t, &f->stub, args);
    return port;
}

static void stop_with_backlog(fixture *f)
{
    ASSERT_EQ(service_stop(&f->svc, SIGTERM), 0);
    ASSERT_EQ(stub_stat(&f->stub, "overloaded"), 0);
    stub_stop(&f->stub);
    amqp_connection_state_t conn = test_connect();
    ASSERT_EQ(queue_depth(conn, f->t.dead_letter_queue), 0);
    test_disconnect(conn);
    delete_topology(&f->t);
}

/* Jube scales out from 5 calls to 40 and back (PUT /knee on the stand-in) under a backlog: the
 * limit is near each new knee within 2 s. */
TEST(adaptive_follows_jube_capacity)
{
    fixture f;
    int port = start_with_backlog(&f, "conc_capacity", "5", 20000);
    /* At the knee of 5 (about 250 transactions a second) for a while. */
    wait_depth_at_least(f.t.outbound_queue, 600, 30000);
    int at_5 = (int)scrape_metric(port, "jube_amqp_jube_concurrency_limit");
    ASSERT(at_5 >= 3 && at_5 <= 12);

    stub_set_knee(&f.stub, 40);
    long up = ms_until_limit_within(port, 32, 256, 10000);
    long answered = stub_stat(&f.stub, "invocations");
    wait_depth_at_least(f.t.outbound_queue, answered + 4000, 30000); /* 2 s at the knee */
    int at_40 = (int)scrape_metric(port, "jube_amqp_jube_concurrency_limit");

    stub_set_knee(&f.stub, 5);
    long down = ms_until_limit_within(port, 1, at_5 * 5 / 4 + 1, 10000);
    fprintf(stderr,
            "  limit %d at a knee of 5; knee 5 -> 40: limit >= 32 after %ld ms (%d 2 s later); "
            "40 -> 5: limit <= %d after %ld ms\n",
            at_5, up, at_40, at_5 * 5 / 4 + 1, down);
    ASSERT(up >= 0 && up <= 2000);
    ASSERT(at_40 >= 32 && at_40 <= 48);
    ASSERT(down >= 0 && down <= 2000);
    stop_with_backlog(&f);
}

/* Jube is gone for 2 s under a backlog and comes back: the limit does not stay at its floor but
 * is back near where it was within 2 s of Jube's return. */
TEST(adaptive_returns_after_an_outage)
{
    fixture f;
    int port = start_with_backlog(&f, "conc_outage", "40", 20000);
    ASSERT_GE(ms_until_limit_within(port, 32, 256, 10000), 0);
    long answered = stub_stat(&f.stub, "invocations");
    wait_depth_at_least(f.t.outbound_queue, answered + 2000, 30000);
    int before = (int)scrape_metric(port, "jube_amqp_jube_concurrency_limit");

    char stub_port[16];
    snprintf(stub_port, sizeof stub_port, "%d", f.stub.port);
    stub_stop(&f.stub);
    /* The service finds it gone (connection refused). */
    ASSERT(wait_metric_at_least(port, "jube_amqp_jube_responses_total{class=\"error\"}", 1, 10000));
    pause_ms(2000); /* the outage itself */
    const char *again[] = {"--latency-ms",     "20",  "--knee", "40",
                           "--knee-step-ms",   "5",   "--port", stub_port,
                           "--overload-above", "200", NULL};
    f.stub = stub_start(again);
    long back = ms_until_limit_within(port, before * 8 / 10, 256, 10000);
    fprintf(stderr, "  limit %d before a 2 s outage; back to %d or more %ld ms after Jube was\n",
            before, before * 8 / 10, back);
    ASSERT(back >= 0 && back <= 2000);
    stop_with_backlog(&f);
}

/* The best of several runs: on a machine whose two cores the broker, the stand-in and the service
 * share, a run is only ever slowed by the others (single runs of one setting differ by 10%), so
 * each setting's fastest run says what it can carry. The rounds interleave the settings so that
 * a slow spell of the machine does not fall on one setting alone. */
enum { FAST_ROUNDS = 3 };

TEST(adaptive_keeps_up_with_a_fast_jube)
{
    fprintf(stderr, "A fast Jube (the stand-in without latency), the best of %d runs each\n",
            FAST_ROUNDS);
    enum { COUNT = 20000 };
    double f16 = 0, f64 = 0, adaptive = 0;
    for (int round = 0; round < FAST_ROUNDS; round++) {
        double r = run("conc_fast_fixed16", COUNT, NULL, "16", "fixed").rate;
        f16 = r > f16 ? r : f16;
        r = run("conc_fast_fixed64", COUNT, NULL, "64", "fixed").rate;
        f64 = r > f64 ? r : f64;
        r = run("conc_fast_adaptive", COUNT, NULL, "64", "adaptive").rate;
        adaptive = r > adaptive ? r : adaptive;
    }
    double best = f16 > f64 ? f16 : f64;
    fprintf(stderr,
            "  adaptive carries %.0f%% of the best fixed setting (%.0f against %.0f msg/s)\n",
            100.0 * adaptive / best, adaptive, best);
    ASSERT(adaptive >= 0.9 * best);
}

static const test_case tests[] = {
    TEST_ENTRY(adaptive_finds_the_knee),
    TEST_ENTRY(adaptive_keeps_up_with_a_fast_jube),
    TEST_ENTRY(adaptive_follows_jube_capacity),
    TEST_ENTRY(adaptive_returns_after_an_outage),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests);
}
