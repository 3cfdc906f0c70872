/* --concurrency adaptive against stand-ins of Jube: one with a knee (5 ms up to 10 calls at once,
 * 5 ms more per extra call, 503 above 40), where adaptive must carry 90% of what exactly the knee
 * carries on this machine, with few 503s, while a fixed setting beyond the knee does not; a fast
 * one, where adaptive must stay within 10% of the best fixed setting; one whose capacity moves
 * (5 calls, 40, 5), which the limit must follow within 2 s; and one that is gone for 2 s. */

#include "capacity.h"
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
    /* 90% of what the knee itself carries here (the benchmark holds it to 90% of the knee's
     * 2,000 a second, alone on the machine), holding Jube near the knee, under 1% of calls 503. */
    ASSERT(adaptive.rate >= 0.9 * at_knee.rate);
    ASSERT(adaptive.at_jube >= 0.9 * at_knee.at_jube);
    ASSERT_LT(adaptive.refused * 100, adaptive.calls);
    ASSERT_GT(adaptive.rate, 2 * fixed.rate);
}

/* Jube scales out from 5 calls to 40 and back under a backlog: the limit is near each new knee
 * within 2 s, without a 503. */
TEST(adaptive_follows_jube_capacity)
{
    capacity_change r = capacity_change_run("conc_capacity");
    ASSERT(r.at_5 >= 3 && r.at_5 <= 12);
    ASSERT(r.up_ms >= 0 && r.up_ms <= 2000);
    ASSERT(r.at_40 >= 32 && r.at_40 <= 48);
    ASSERT(r.down_ms >= 0 && r.down_ms <= 2000);
    ASSERT_EQ(r.refused, 0);
}

/* Jube is gone for 2 s under a backlog and comes back: the limit does not stay at its floor but
 * is back near where it was within 2 s of Jube's return. */
TEST(adaptive_returns_after_an_outage)
{
    capacity_outage r = capacity_outage_run("conc_outage");
    ASSERT(r.back_ms >= 0 && r.back_ms <= 2000);
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
