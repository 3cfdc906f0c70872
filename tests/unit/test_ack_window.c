/* The ack window: batched acks never cover an unsettled delivery, and every delivery ends up
 * answered exactly once. */

#include "ack_window.h"
#include "test.h"

TEST(in_order_is_one_multiple_ack)
{
    ja_ack_window w;
    ASSERT_EQ(ja_ack_window_init(&w, 16), 0);
    for (uint64_t tag = 1; tag <= 5; tag++)
        ASSERT(!ja_ack_window_settle(&w, tag, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 5);
    ASSERT_EQ(ja_ack_window_advance(&w), 0);
    ja_ack_window_free(&w);
}

TEST(waits_for_the_earliest)
{
    ja_ack_window w;
    ASSERT_EQ(ja_ack_window_init(&w, 16), 0);
    ASSERT(!ja_ack_window_settle(&w, 2, false));
    ASSERT(!ja_ack_window_settle(&w, 3, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 0);
    ASSERT(!ja_ack_window_settle(&w, 1, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 3);
    ja_ack_window_free(&w);
}

TEST(requeued_tag_in_the_middle)
{
    ja_ack_window w;
    ASSERT_EQ(ja_ack_window_init(&w, 16), 0);
    ASSERT(!ja_ack_window_settle(&w, 1, false));
    ASSERT(!ja_ack_window_settle(&w, 2, true)); /* nacked alone by the caller */
    ASSERT(!ja_ack_window_settle(&w, 3, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 3);
    ja_ack_window_free(&w);
}

/* A channel closing with delivery 1 left unacked on purpose: 2 and 3, settled behind it, are
 * acked one by one first, and a later multiple ack never covers 1 twice nor 2 and 3 again. */
TEST(deferred_acks_are_taken_before_a_close)
{
    ja_ack_window w;
    ASSERT_EQ(ja_ack_window_init(&w, 16), 0);
    ASSERT(!ja_ack_window_settle(&w, 2, false));
    ASSERT(!ja_ack_window_settle(&w, 3, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 0);
    ASSERT_EQ(ja_ack_window_take_deferred(&w, 0), 2);
    ASSERT_EQ(ja_ack_window_take_deferred(&w, 2), 3);
    ASSERT_EQ(ja_ack_window_take_deferred(&w, 3), 0);
    ASSERT_EQ(ja_ack_window_take_deferred(&w, 0), 0);
    ASSERT(!ja_ack_window_settle(&w, 1, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 1); /* 2 and 3 were answered: folded over, not acked */
    ASSERT_EQ(ja_ack_window_advance(&w), 0);
    ja_ack_window_free(&w);
}

TEST(a_slow_delivery_cannot_fill_the_prefetch)
{
    ja_ack_window w;
    ASSERT_EQ(ja_ack_window_init(&w, 4), 0); /* at most 2 deferred */
    ASSERT(!ja_ack_window_settle(&w, 2, false));
    ASSERT(!ja_ack_window_settle(&w, 3, false));
    ASSERT(ja_ack_window_settle(&w, 4, false)); /* ack it alone now */
    ASSERT(ja_ack_window_settle(&w, 5, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 0);
    ASSERT(!ja_ack_window_settle(&w, 1, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 3);
    ASSERT_EQ(w.floor, 5);
    ja_ack_window_free(&w);
}

TEST(far_past_the_window)
{
    ja_ack_window w;
    ASSERT_EQ(ja_ack_window_init(&w, 16), 0); /* window 64, 8 deferred at most */
    for (uint64_t tag = 2; tag <= 9; tag++)
        ASSERT(!ja_ack_window_settle(&w, tag, false));
    for (uint64_t tag = 10; tag <= 500; tag++)
        ASSERT(ja_ack_window_settle(&w, tag, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 0);
    ASSERT(!ja_ack_window_settle(&w, 1, false));
    ASSERT_EQ(ja_ack_window_advance(&w), 9);
    ASSERT_EQ(w.floor, 500);
    ASSERT_EQ(w.alone.len, 0);
    ASSERT(!ja_ack_window_settle(&w, 501, false)); /* batching again */
    ASSERT_EQ(ja_ack_window_advance(&w), 501);
    ja_ack_window_free(&w);
}

/* A broker's view: outstanding tags, and what each ack does to them. */
TEST(random_orders_against_a_model_broker)
{
    enum { TAGS = 20000, PREFETCH = 64 };
    uint64_t rng = 42;
    for (int round = 0; round < 20; round++) {
        ja_ack_window w;
        ASSERT_EQ(ja_ack_window_init(&w, PREFETCH), 0);
        static unsigned char outstanding[TAGS + 1], settled[TAGS + 1];
        memset(outstanding, 0, sizeof outstanding);
        memset(settled, 0, sizeof settled);
        uint64_t delivered = 0;
        uint64_t in_flight[PREFETCH];
        int in_flight_count = 0;
        long answered = 0;
        while (answered < TAGS) {
            /* The broker delivers while fewer than PREFETCH are outstanding. */
            int out = 0;
            for (uint64_t t = w.floor + 1; t <= delivered; t++)
                out += outstanding[t];
            while (delivered < TAGS && out < PREFETCH && in_flight_count < PREFETCH) {
                delivered++;
                outstanding[delivered] = 1;
                in_flight[in_flight_count++] = delivered;
                out++;
            }
            ASSERT_GT(in_flight_count, 0);
            /* Settle a random one; a few are requeued (answered alone by the caller). */
            rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
            int pick = (int)(rng % (uint64_t)in_flight_count);
            uint64_t tag = in_flight[pick];
            in_flight[pick] = in_flight[--in_flight_count];
            settled[tag] = 1;
            bool requeued = rng % 97 == 0;
            if (requeued) {
                ASSERT(outstanding[tag]);
                outstanding[tag] = 0;
                answered++;
            }
            if (ja_ack_window_settle(&w, tag, requeued)) {
                ASSERT(outstanding[tag]);
                outstanding[tag] = 0;
                answered++;
            }
            if (rng % 3 == 0 || in_flight_count == 0) {
                uint64_t multiple = ja_ack_window_advance(&w);
                if (multiple) {
                    ASSERT(outstanding[multiple]); /* else the broker closes the channel */
                    for (uint64_t t = 1; t <= multiple; t++) {
                        if (outstanding[t]) {
                            if (!settled[t])
                                FAIL("tag %llu acked before it was settled", (unsigned long long)t);
                            outstanding[t] = 0;
                            answered++;
                        }
                    }
                }
            }
        }
        ASSERT_EQ(w.floor, TAGS);
        ja_ack_window_free(&w);
    }
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(in_order_is_one_multiple_ack),
        TEST_ENTRY(waits_for_the_earliest),
        TEST_ENTRY(requeued_tag_in_the_middle),
        TEST_ENTRY(deferred_acks_are_taken_before_a_close),
        TEST_ENTRY(a_slow_delivery_cannot_fill_the_prefetch),
        TEST_ENTRY(far_past_the_window),
        TEST_ENTRY(random_orders_against_a_model_broker),
    };
    return RUN_TESTS(tests);
}
