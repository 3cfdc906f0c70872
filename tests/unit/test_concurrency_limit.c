/* The adaptive concurrency limit against a simulated Jube (Vector's simulator approach): a base
 * latency, a knee past which each extra call adds latency, 503 above a limit, jitter, and
 * capacity that changes or vanishes. The service calls as fast as the limit allows (a full
 * queue), and may notice each answer late, as a busy machine's thread wakes late: Jube is idle for
 * that time and the round trip the limit sees includes it. Each scenario asserts where the limit
 * settles and what it carries. */

#include "concurrency_limit.h"
#include "test.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    double base_ms;     /* latency unloaded */
    int knee;           /* calls Jube serves at base latency */
    double slope_ms;    /* latency added per call beyond the knee */
    int overload_above; /* 503 (answered in 1 ms) beyond this many calls; 0: never */
    double jitter_ms;   /* uniform 0..jitter added to each call */
    bool down;          /* every call fails at once (connection refused) */
    double notice_ms;   /* the service notices an answer uniformly 0..this late */
} jube_model;

enum { MAX_CALLS = 4096 };

/* How late the service notices an answer at most, on a busy 2-core machine (the scenarios but the
 * first use it: without it every answer lands on the same microsecond, which no machine does). */
#define NOTICE_MS 0.4

typedef struct {
    jube_model jube;
    ja_concurrency_limit limit;
    uint64_t now_us;
    uint64_t due_us[MAX_CALLS];  /* when the service notices each call's answer */
    uint64_t jube_us[MAX_CALLS]; /* when Jube sent it (Jube works on the call until then) */
    uint64_t start_us[MAX_CALLS];
    bool fails[MAX_CALLS];
    int in_flight_at_start[MAX_CALLS];
    int in_flight;
    bool outage; /* the service saw Jube down (as a worker's failed probe tells it) */
    uint64_t rng;
    /* Measured over the part of the run being judged. */
    double limit_sum;
    long limit_samples;
    long answered, failed;
    double at_jube_sum; /* calls at Jube, integrated over time (us) */
    uint64_t measured_us;
} sim;

static double uniform(sim *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return (double)(s->rng % 1000000) / 1000000.0;
}

/* The calls Jube is working on now. */
static int at_jube(const sim *s)
{
    int n = 0;
    for (int i = 0; i < s->in_flight; i++)
        n += s->jube_us[i] > s->now_us;
    return n;
}

static void start_call(sim *s)
{
    int n = at_jube(s) + 1;
    int i = s->in_flight++;
    const jube_model *j = &s->jube;
    double latency;
    bool fail = j->down || (j->overload_above > 0 && n > j->overload_above);
    if (fail) {
        latency = 1.0;
    } else {
        latency = j->base_ms + (n > j->knee ? (n - j->knee) * j->slope_ms : 0) +
                  j->jitter_ms * uniform(s);
    }
    s->start_us[i] = s->now_us;
    s->jube_us[i] = s->now_us + (uint64_t)(latency * 1000.0);
    s->due_us[i] = s->jube_us[i] + (uint64_t)(j->notice_ms * 1000.0 * uniform(s));
    s->fails[i] = fail;
    s->in_flight_at_start[i] = s->in_flight;
}

static void finish_call(sim *s, int i, bool measure)
{
    /* What the worker's gate does: a Jube that fails every call is out, until it answers. */
    if (s->fails[i] && s->jube.down && !s->outage) {
        s->outage = true;
        ja_concurrency_limit_outage(&s->limit);
    } else if (!s->fails[i] && s->outage) {
        s->outage = false;
        ja_concurrency_limit_recovered(&s->limit);
    }
    ja_concurrency_limit_sample(&s->limit, s->now_us / 1000, s->now_us - s->start_us[i],
                                s->fails[i], s->in_flight_at_start[i]);
    if (measure) {
        if (s->fails[i])
            s->failed++;
        else
            s->answered++;
    }
    s->in_flight--;
    s->due_us[i] = s->due_us[s->in_flight];
    s->jube_us[i] = s->jube_us[s->in_flight];
    s->start_us[i] = s->start_us[s->in_flight];
    s->fails[i] = s->fails[s->in_flight];
    s->in_flight_at_start[i] = s->in_flight_at_start[s->in_flight];
}

/* Runs for ms of simulated time; measures when asked. */
static void run(sim *s, uint64_t ms, bool measure)
{
    uint64_t end = s->now_us + ms * 1000;
    while (s->now_us < end) {
        int limit = ja_concurrency_limit_current(&s->limit);
        while (s->in_flight < limit && s->in_flight < MAX_CALLS)
            start_call(s);
        /* The next answer. */
        int next = 0;
        for (int i = 1; i < s->in_flight; i++)
            if (s->due_us[i] < s->due_us[next])
                next = i;
        if (measure) {
            for (int i = 0; i < s->in_flight; i++) {
                uint64_t until = s->jube_us[i] < s->due_us[next] ? s->jube_us[i] : s->due_us[next];
                if (until > s->now_us)
                    s->at_jube_sum += (double)(until - s->now_us);
            }
            s->measured_us += s->due_us[next] - s->now_us;
        }
        s->now_us = s->due_us[next];
        finish_call(s, next, measure);
        ja_concurrency_limit_update(&s->limit, s->now_us / 1000);
        if (measure) {
            s->limit_sum += ja_concurrency_limit_current(&s->limit);
            s->limit_samples++;
        }
    }
}

static void sim_init(sim *s, jube_model jube, int ceiling)
{
    memset(s, 0, sizeof *s);
    s->jube = jube;
    s->rng = 0x9E3779B97F4A7C15ull;
    s->now_us = 1000000;
    ja_concurrency_limit_init(&s->limit, true, 2, ceiling, s->now_us / 1000);
}

static void reset_measures(sim *s)
{
    s->limit_sum = 0;
    s->limit_samples = 0;
    s->answered = s->failed = 0;
    s->at_jube_sum = 0;
    s->measured_us = 0;
}

static double mean_limit(const sim *s)
{
    return s->limit_samples ? s->limit_sum / (double)s->limit_samples : 0;
}

static void report(const char *name, const sim *s, double seconds)
{
    fprintf(stderr, "%-34s mean limit %6.1f, %5.1f at Jube, %7.0f answers/s, %5.1f%% 503\n", name,
            mean_limit(s), s->measured_us ? s->at_jube_sum / (double)s->measured_us : 0,
            s->answered / seconds,
            100.0 * s->failed / (double)(s->answered + s->failed ? s->answered + s->failed : 1));
}

TEST(knee_at_10)
{
    sim s;
    sim_init(&s, (jube_model){.base_ms = 5, .knee = 10, .slope_ms = 5, .overload_above = 40}, 256);
    run(&s, 5000, false);
    run(&s, 20000, true);
    report("knee 10 (5 ms, +5 ms per call)", &s, 20);
    ASSERT(mean_limit(&s) >= 9 && mean_limit(&s) <= 13);
    /* The knee carries 2,000 answers a second. */
    ASSERT(s.answered / 20.0 >= 0.8 * 2000);
    ASSERT_EQ(s.failed, 0);
}

/* The same knee, noticed as late as a busy 2-core machine notices (0-0.4 ms, 0.2 on average). */
TEST(knee_at_10_noticed_late)
{
    sim s;
    sim_init(
        &s,
        (jube_model){
            .base_ms = 5, .knee = 10, .slope_ms = 5, .overload_above = 40, .notice_ms = NOTICE_MS},
        256);
    run(&s, 5000, false);
    run(&s, 20000, true);
    report("knee 10, noticed 0-0.4 ms late", &s, 20);
    ASSERT(s.answered / 20.0 >= 0.9 * 2000);
    ASSERT_EQ(s.failed, 0);
}

TEST(knee_at_10_with_jitter)
{
    sim s;
    sim_init(
        &s,
        (jube_model){.base_ms = 5, .knee = 10, .slope_ms = 5, .overload_above = 40, .jitter_ms = 3},
        256);
    run(&s, 5000, false);
    run(&s, 20000, true);
    report("knee 10, 0-3 ms jitter", &s, 20);
    ASSERT(mean_limit(&s) >= 8 && mean_limit(&s) <= 14);
    ASSERT(s.answered / 20.0 >= 0.8 * 10 / 0.0065);
}

TEST(overload_above_5)
{
    sim s;
    sim_init(&s,
             (jube_model){.base_ms = 5, .knee = 1000, .overload_above = 5, .notice_ms = NOTICE_MS},
             256);
    run(&s, 5000, false);
    run(&s, 20000, true);
    report("503 above 5", &s, 20);
    ASSERT(mean_limit(&s) >= 4 && mean_limit(&s) <= 12);
    ASSERT(s.answered / 20.0 >= 0.8 * 1000);
    /* Few 503s: the limit sits below the line most of the time. */
    ASSERT_LT(s.failed * 10, s.answered);
}

TEST(capacity_rising_from_5_to_40)
{
    sim s;
    sim_init(
        &s,
        (jube_model){
            .base_ms = 5, .knee = 5, .slope_ms = 5, .overload_above = 200, .notice_ms = NOTICE_MS},
        256);
    run(&s, 10000, false);
    ASSERT_LE(ja_concurrency_limit_current(&s.limit), 8);
    s.jube.knee = 40;
    /* Within three seconds the service carries 80% of the new capacity (8,000 answers/s). */
    run(&s, 3000, false);
    reset_measures(&s);
    run(&s, 3000, true);
    report("capacity 5 -> 40, 3-6 s after", &s, 3);
    ASSERT(s.answered / 3.0 >= 0.8 * 8000);
}

/* Runs until the limit is within [low, high]; returns the simulated milliseconds that took, or
 * -1 when it did not within ms. */
static long ms_until_within(sim *s, int low, int high, uint64_t ms)
{
    uint64_t start = s->now_us;
    while (s->now_us < start + ms * 1000) {
        int limit = ja_concurrency_limit_current(&s->limit);
        if (limit >= low && limit <= high)
            return (long)((s->now_us - start) / 1000);
        run(s, 1, false);
    }
    return -1;
}

/* Jube's capacity changes under a steady load (as when it scales out and back): the limit is
 * near the new knee within 2 s each way, at 5 ms and at 20 ms a call. */
TEST(capacity_5_to_40_and_back_is_followed_within_2_s)
{
    const double base_ms[] = {5, 20};
    for (int b = 0; b < 2; b++) {
        sim s;
        sim_init(&s,
                 (jube_model){.base_ms = base_ms[b],
                              .knee = 5,
                              .slope_ms = 5,
                              .overload_above = 200,
                              .notice_ms = NOTICE_MS},
                 256);
        run(&s, 10000, false);
        int before = ja_concurrency_limit_current(&s.limit);
        ASSERT_LE(before, 12);
        s.jube.knee = 40;
        long up = ms_until_within(&s, 32, 256, 5000);
        run(&s, 5000, false);
        int settled = ja_concurrency_limit_current(&s.limit);
        s.jube.knee = 5;
        long down = ms_until_within(&s, 1, before * 5 / 4 + 1, 5000);
        fprintf(stderr,
                "%.0f ms a call: knee 5 -> 40 followed in %ld ms (limit %d after 5 s), "
                "40 -> 5 in %ld ms\n",
                base_ms[b], up, settled, down);
        ASSERT(up >= 0 && up <= 2000);
        ASSERT(settled >= 36 && settled <= 44);
        ASSERT(down >= 0 && down <= 2000);
    }
}

/* The knee moves far past the bound: the limit stays at the bound, window after window, and
 * its steps stop growing there. */
TEST(a_knee_past_the_bound_is_held_at_the_bound)
{
    sim s;
    sim_init(
        &s,
        (jube_model){
            .base_ms = 5, .knee = 5, .slope_ms = 5, .overload_above = 200, .notice_ms = NOTICE_MS},
        16);
    run(&s, 5000, false);
    s.jube.knee = 1000;
    run(&s, 60000, false);
    ASSERT_EQ(ja_concurrency_limit_current(&s.limit), 16);
    ASSERT_LE(s.limit.probe_step, 16);
}

TEST(flat_fast_jube_grows_to_the_bound)
{
    sim s;
    sim_init(&s, (jube_model){.base_ms = 1, .knee = 100000, .notice_ms = NOTICE_MS}, 256);
    run(&s, 2000, true);
    report("flat 1 ms Jube", &s, 2);
    ASSERT_EQ(ja_concurrency_limit_current(&s.limit), 256);
    /* Slow start: the bound within half a second. */
    sim_init(&s, (jube_model){.base_ms = 1, .knee = 100000, .notice_ms = NOTICE_MS}, 256);
    run(&s, 500, false);
    ASSERT_EQ(ja_concurrency_limit_current(&s.limit), 256);
}

TEST(quick_return_after_an_outage)
{
    sim s;
    sim_init(
        &s,
        (jube_model){
            .base_ms = 5, .knee = 40, .slope_ms = 5, .overload_above = 200, .notice_ms = NOTICE_MS},
        256);
    run(&s, 10000, false);
    int before = ja_concurrency_limit_current(&s.limit);
    ASSERT_GE(before, 30);
    s.jube.down = true;
    run(&s, 3000, false);
    ASSERT_EQ(ja_concurrency_limit_current(&s.limit), 2); /* the floor */
    s.jube.down = false;
    run(&s, 500, false);
    ASSERT_GE(ja_concurrency_limit_current(&s.limit), before * 8 / 10);
}

TEST(a_slower_jube_is_learnt)
{
    sim s;
    sim_init(
        &s,
        (jube_model){
            .base_ms = 5, .knee = 20, .slope_ms = 5, .overload_above = 200, .notice_ms = NOTICE_MS},
        256);
    run(&s, 5000, false);
    ASSERT_GE(ja_concurrency_limit_current(&s.limit), 16);
    /* A heavier model: every call takes 20 ms, the knee where it was. */
    s.jube.base_ms = 20;
    run(&s, 10000, false);
    reset_measures(&s);
    run(&s, 5000, true);
    report("unloaded latency 5 -> 20 ms", &s, 5);
    ASSERT(mean_limit(&s) >= 15 && mean_limit(&s) <= 24);
    ASSERT(s.answered / 5.0 >= 0.8 * 20 / 0.020);
}

TEST(a_few_slow_answers_do_not_starve)
{
    sim s;
    sim_init(&s, (jube_model){.base_ms = 5, .knee = 1000, .notice_ms = NOTICE_MS}, 64);
    run(&s, 3000, false);
    ASSERT_EQ(ja_concurrency_limit_current(&s.limit), 64);
    /* Three answers twenty times slower, among thousands. */
    for (int i = 0; i < 3; i++)
        ja_concurrency_limit_sample(&s.limit, s.now_us / 1000, 100000, false, 64);
    run(&s, 1000, false);
    ASSERT_GE(ja_concurrency_limit_current(&s.limit), 57);
}

TEST(fixed_is_the_bound)
{
    ja_concurrency_limit l;
    ja_concurrency_limit_init(&l, false, 2, 16, 0);
    ASSERT_EQ(ja_concurrency_limit_current(&l), 16);
    for (int i = 0; i < 100; i++)
        ja_concurrency_limit_sample(&l, (uint64_t)i, 1000000, true, 16);
    ASSERT(!ja_concurrency_limit_update(&l, 1000));
    ASSERT_EQ(ja_concurrency_limit_current(&l), 16);
}

TEST(shares_split_the_limit_evenly)
{
    int total = 0;
    for (int i = 0; i < 3; i++)
        total += ja_concurrency_limit_share(10, i, 3);
    ASSERT_EQ(total, 10);
    ASSERT_EQ(ja_concurrency_limit_share(10, 0, 3), 4);
    ASSERT_EQ(ja_concurrency_limit_share(10, 2, 3), 3);
    ASSERT_EQ(ja_concurrency_limit_share(1, 1, 2), 0);
}

static const test_case tests[] = {
    TEST_ENTRY(knee_at_10),
    TEST_ENTRY(knee_at_10_noticed_late),
    TEST_ENTRY(knee_at_10_with_jitter),
    TEST_ENTRY(overload_above_5),
    TEST_ENTRY(capacity_rising_from_5_to_40),
    TEST_ENTRY(capacity_5_to_40_and_back_is_followed_within_2_s),
    TEST_ENTRY(a_knee_past_the_bound_is_held_at_the_bound),
    TEST_ENTRY(flat_fast_jube_grows_to_the_bound),
    TEST_ENTRY(quick_return_after_an_outage),
    TEST_ENTRY(a_slower_jube_is_learnt),
    TEST_ENTRY(a_few_slow_answers_do_not_starve),
    TEST_ENTRY(fixed_is_the_bound),
    TEST_ENTRY(shares_split_the_limit_evenly),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests);
}
