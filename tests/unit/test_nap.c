/* When a thread may nap: only while its own events come closer together than half the linger,
 * and never longer than the linger after the last one. */

#include "nap.h"
#include "test.h"

/* Feeds events every gap_us from start_us; returns the time of the last. */
static uint64_t events_every(ja_nap *nap, uint64_t start_us, uint64_t gap_us, int count)
{
    uint64_t t = start_us;
    for (int i = 0; i < count; i++, t += gap_us)
        ja_nap_event(nap, t);
    return t - gap_us;
}

TEST(never_naps_without_a_linger_or_before_any_event)
{
    ja_nap nap;
    ja_nap_init(&nap, 0);
    uint64_t last = events_every(&nap, 1000, 10, 100);
    ASSERT(!ja_nap_may(&nap, last));
    ja_nap_init(&nap, 5000);
    ASSERT(!ja_nap_may(&nap, 0));
    ASSERT(!ja_nap_may(&nap, 123456));
}

TEST(naps_while_events_are_close_and_stops_after_the_linger)
{
    ja_nap nap;
    ja_nap_init(&nap, 5000);
    uint64_t last = events_every(&nap, 1000, 600, 40); /* 1,600 a second */
    ASSERT(ja_nap_may(&nap, last));
    ASSERT(ja_nap_may(&nap, last + 4999));
    ASSERT(!ja_nap_may(&nap, last + 5000)); /* the events stopped: sleep until woken */
    ASSERT_EQ(ja_nap_timeout_ms(&nap), 5);
}

TEST(events_further_apart_than_half_the_linger_never_nap)
{
    ja_nap nap;
    ja_nap_init(&nap, 5000);
    uint64_t t = 0;
    for (int i = 0; i < 1000; i++, t += 2600) {
        ja_nap_event(&nap, t);
        ASSERT(!ja_nap_may(&nap, t));
    }
}

TEST(one_close_pair_after_a_quiet_spell_is_not_enough)
{
    ja_nap nap;
    ja_nap_init(&nap, 5000);
    uint64_t last = events_every(&nap, 0, 1000000, 10); /* one a second */
    ja_nap_event(&nap, last + 100);
    ASSERT(!ja_nap_may(&nap, last + 100));
    /* A steady 1,600 a second brings napping back within a few dozen events, since one long
     * gap counts as at most eight lingers. */
    uint64_t start = last + 700;
    int needed = 0;
    while (!ja_nap_may(&nap, start + (uint64_t)needed * 600)) {
        ja_nap_event(&nap, start + (uint64_t)needed * 600);
        needed++;
        ASSERT_LT(needed, 40);
    }
    ASSERT_GT(needed, 8);
}

TEST(a_clock_that_steps_back_counts_as_no_gap)
{
    ja_nap nap;
    ja_nap_init(&nap, 5000);
    uint64_t last = events_every(&nap, 100000, 500, 40);
    ja_nap_event(&nap, last - 1000);
    ASSERT(ja_nap_may(&nap, last - 1000));
    ASSERT(ja_nap_may(&nap, last - 2000));
}

TEST(timeout_rounds_up_to_whole_milliseconds)
{
    ja_nap nap;
    ja_nap_init(&nap, 1);
    ASSERT_EQ(ja_nap_timeout_ms(&nap), 1);
    ja_nap_init(&nap, 2500);
    ASSERT_EQ(ja_nap_timeout_ms(&nap), 3);
}

/* Against a model: a random stream of events, the answer recomputed from the whole history
 * (a moving average over it, the last event's time). */
TEST(agrees_with_a_model_on_random_streams)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int run = 0; run < 200; run++) {
        uint64_t linger = 1000 + (uint64_t)run * 97;
        ja_nap nap;
        ja_nap_init(&nap, linger);
        double model_gap = (double)(linger * 8);
        uint64_t t = 0, last = 0;
        bool any = false;
        for (int i = 0; i < 500; i++) {
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            uint64_t step = rng % 4 == 0 ? rng % (linger * 20) : rng % linger;
            t += step;
            if (rng % 3 != 0) {
                if (any) {
                    double gap = (double)(t - last);
                    if (gap > (double)(linger * 8))
                        gap = (double)(linger * 8);
                    model_gap = model_gap * 7 / 8 + gap / 8;
                }
                any = true;
                last = t;
                ja_nap_event(&nap, t);
            }
            bool model = any && model_gap * 2 < (double)linger && t - last < linger;
            /* The integer average may differ from the real one by a few microseconds. */
            bool near_edge =
                any && (model_gap * 2 > (double)linger - 64 && model_gap * 2 < (double)linger + 64);
            if (!near_edge)
                ASSERT_EQ(ja_nap_may(&nap, t), model);
        }
    }
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(never_naps_without_a_linger_or_before_any_event),
        TEST_ENTRY(naps_while_events_are_close_and_stops_after_the_linger),
        TEST_ENTRY(events_further_apart_than_half_the_linger_never_nap),
        TEST_ENTRY(one_close_pair_after_a_quiet_spell_is_not_enough),
        TEST_ENTRY(a_clock_that_steps_back_counts_as_no_gap),
        TEST_ENTRY(timeout_rounds_up_to_whole_milliseconds),
        TEST_ENTRY(agrees_with_a_model_on_random_streams),
    };
    return RUN_TESTS(tests);
}
