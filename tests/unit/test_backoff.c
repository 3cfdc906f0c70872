/* The backoff between tries, and a server's Retry-After. */

#include "backoff.h"
#include "test.h"

TEST(backoff_grows_with_jitter_and_stops_at_the_cap)
{
    uint64_t rng = 12345;
    for (unsigned attempt = 1; attempt <= 40; attempt++) {
        uint64_t ideal = 100;
        for (unsigned i = 1; i < attempt && ideal < 30000; i++)
            ideal *= 2;
        if (ideal > 30000)
            ideal = 30000;
        for (int k = 0; k < 100; k++) {
            uint64_t d = ja_backoff_ms(attempt, 100, 30000, &rng);
            if (d < ideal - ideal / 2 || d > ideal)
                FAIL("attempt %u: %llu ms outside [%llu, %llu]", attempt, (unsigned long long)d,
                     (unsigned long long)(ideal - ideal / 2), (unsigned long long)ideal);
        }
    }
}

TEST(backoff_jitter_spreads_workers)
{
    uint64_t rng = 99;
    uint64_t first = ja_backoff_ms(5, 100, 30000, &rng);
    int different = 0;
    for (int i = 0; i < 50; i++)
        different += ja_backoff_ms(5, 100, 30000, &rng) != first;
    ASSERT_GT(different, 40);
}

TEST(retry_after)
{
    ASSERT_EQ(ja_backoff_retry_after_ms("5", 0), 5000);
    ASSERT_EQ(ja_backoff_retry_after_ms(" 0\r\n", 0), 0);
    ASSERT_EQ(ja_backoff_retry_after_ms("soon", 0), -1);
    ASSERT_EQ(ja_backoff_retry_after_ms("-3", 0), -1);
    ASSERT_EQ(ja_backoff_retry_after_ms("12x", 0), -1);
    /* An HTTP date 30 s after "now". */
    ASSERT_EQ(ja_backoff_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", 1445412480), 30000);
    ASSERT_EQ(ja_backoff_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", 1445412600), 0);
}

TEST(retry_after_lengthens_the_delay_up_to_the_cap)
{
    ASSERT_EQ(ja_backoff_with_retry_after(100, -1, 30000), 100);     /* none sent */
    ASSERT_EQ(ja_backoff_with_retry_after(100, 0, 30000), 100);      /* "now" */
    ASSERT_EQ(ja_backoff_with_retry_after(5000, 2000, 30000), 5000); /* shorter: ours */
    ASSERT_EQ(ja_backoff_with_retry_after(100, 2000, 30000), 2000);
    ASSERT_EQ(ja_backoff_with_retry_after(100, 90000, 30000), 30000); /* never past the cap */
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(backoff_grows_with_jitter_and_stops_at_the_cap),
        TEST_ENTRY(backoff_jitter_spreads_workers),
        TEST_ENTRY(retry_after),
        TEST_ENTRY(retry_after_lengthens_the_delay_up_to_the_cap),
    };
    return RUN_TESTS(tests);
}
