/* The gate of a worker thread: calls up to its share while Jube answers; while Jube is
 * unavailable, one probe per backoff step; a thread's calls and probe always accounted. */

#include "jube_gate.h"
#include "test.h"

static ja_jube_gate gate_of(void)
{
    ja_jube_gate g;
    ja_jube_gate_init(&g, 100, 1600, 42);
    return g;
}

TEST(open_up_to_the_share)
{
    ja_jube_gate g = gate_of();
    for (int i = 0; i < 3; i++) {
        ASSERT(ja_jube_gate_may_start(&g, 3, 0));
        ASSERT(!ja_jube_gate_started(&g, true)); /* no probe while open */
    }
    ASSERT(!ja_jube_gate_may_start(&g, 3, 0));
    ASSERT(ja_jube_gate_may_start(&g, 4, 0)); /* the share grew */
    ASSERT_EQ(ja_jube_gate_answered(&g, false, false, -1, 5), JA_GATE_UNCHANGED);
    ASSERT(ja_jube_gate_may_start(&g, 3, 5));
}

TEST(unavailable_closes_then_one_probe_per_step)
{
    ja_jube_gate g = gate_of();
    for (int i = 0; i < 4; i++)
        ja_jube_gate_started(&g, true);
    ASSERT_EQ(ja_jube_gate_answered(&g, false, true, -1, 1000), JA_GATE_CLOSED);
    ASSERT(ja_jube_gate_closed(&g));
    uint64_t open_at = g.open_at_ms;
    ASSERT(open_at >= 1050 && open_at <= 1100); /* the first step: 50-100 ms with jitter */
    /* The other calls under way find it unavailable too: they wait, the step does not grow. */
    ASSERT_EQ(ja_jube_gate_answered(&g, false, true, -1, 1001), JA_GATE_UNCHANGED);
    ASSERT_EQ(g.open_at_ms, open_at);
    ASSERT(!ja_jube_gate_may_start(&g, 16, open_at - 1));
    ASSERT_EQ(ja_jube_gate_due(&g, 1010), open_at);
    ASSERT_EQ(ja_jube_gate_due(&g, open_at + 5), open_at + 5);
    ASSERT(ja_jube_gate_may_start(&g, 16, open_at));
    ASSERT(ja_jube_gate_started(&g, true));                  /* the probe */
    ASSERT(!ja_jube_gate_may_start(&g, 16, open_at + 1000)); /* only one at a time */
    ASSERT_EQ(ja_jube_gate_answered(&g, true, true, -1, open_at + 10), JA_GATE_OUTAGE);
    uint64_t second = g.open_at_ms - (open_at + 10);
    ASSERT(second >= 100 && second <= 200);
    ASSERT(ja_jube_gate_started(&g, true));
    ASSERT_EQ(ja_jube_gate_answered(&g, true, false, -1, g.open_at_ms + 3), JA_GATE_RECOVERED);
    ASSERT(!ja_jube_gate_closed(&g));
    ASSERT_EQ(g.calls, 2); /* the two left of the four */
}

TEST(a_single_failure_reopens_without_an_outage)
{
    ja_jube_gate g = gate_of();
    ja_jube_gate_started(&g, true);
    ja_jube_gate_started(&g, true);
    ASSERT_EQ(ja_jube_gate_answered(&g, false, true, -1, 0), JA_GATE_CLOSED);
    /* A call already under way succeeds: Jube answers after all. */
    ASSERT_EQ(ja_jube_gate_answered(&g, false, false, -1, 1), JA_GATE_REOPENED);
    ASSERT(ja_jube_gate_may_start(&g, 2, 1));
}

TEST(retry_after_is_honoured_up_to_the_maximum)
{
    ja_jube_gate g = gate_of();
    ja_jube_gate_started(&g, true);
    ja_jube_gate_answered(&g, false, true, 1000, 0);
    ASSERT_EQ(g.open_at_ms, 1000);
    ja_jube_gate_started(&g, true);
    ja_jube_gate_answered(&g, true, true, 60000, 1000);
    ASSERT_EQ(g.open_at_ms, 1000 + 1600);
}

TEST(callback_polls_never_probe)
{
    ja_jube_gate g = gate_of();
    ja_jube_gate_started(&g, true);
    ja_jube_gate_answered(&g, false, true, -1, 0);
    ASSERT(!ja_jube_gate_started(&g, false));
    ASSERT(ja_jube_gate_may_start(&g, 1, g.open_at_ms)); /* the probe is still free to start */
    ja_jube_gate_abandoned(&g, false);
    ASSERT_EQ(g.calls, 0);
}

TEST(model_random_answers)
{
    ja_jube_gate g = gate_of();
    uint64_t rng = 7, now = 0;
    int calls = 0, probes = 0;
    for (int step = 0; step < 200000; step++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        now += rng % 7;
        int share = 1 + (int)(rng >> 20) % 8;
        bool closed = ja_jube_gate_closed(&g);
        if ((rng >> 8) % 2 == 0 && ja_jube_gate_may_start(&g, share, now)) {
            if (!closed)
                ASSERT_LT(calls, share);
            else
                ASSERT(now >= g.open_at_ms && probes == 0);
            if (ja_jube_gate_started(&g, true))
                probes++;
            calls++;
        } else if (calls > 0) {
            bool probe = probes > 0 && (rng >> 30) % 2 == 0;
            bool unavailable = (rng >> 12) % 5 == 0;
            ja_gate_event e = ja_jube_gate_answered(&g, probe, unavailable, -1, now);
            if (probe)
                probes--;
            calls--;
            if (!unavailable)
                ASSERT(!ja_jube_gate_closed(&g));
            if (e == JA_GATE_OUTAGE)
                ASSERT(probe);
        }
        ASSERT_EQ(g.calls, calls);
        ASSERT_EQ(g.probe_in_flight, probes > 0);
        ASSERT_LE(probes, 1);
    }
}

static const test_case tests[] = {
    TEST_ENTRY(open_up_to_the_share),
    TEST_ENTRY(unavailable_closes_then_one_probe_per_step),
    TEST_ENTRY(a_single_failure_reopens_without_an_outage),
    TEST_ENTRY(retry_after_is_honoured_up_to_the_maximum),
    TEST_ENTRY(callback_polls_never_probe),
    TEST_ENTRY(model_random_answers),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests);
}
