/* What each answer from Jube means, the backoff, and Retry-After. */

#include "outcome.h"
#include "test.h"

TEST(success_needs_a_body)
{
    ASSERT_EQ(ja_outcome_classify(true, 200, 10), JA_OUTCOME_SUCCESS);
    ASSERT_EQ(ja_outcome_classify(true, 201, 1), JA_OUTCOME_SUCCESS);
    /* Jube 2025-03 answers 204 with no body while the model is not started. */
    ASSERT_EQ(ja_outcome_classify(true, 204, 0), JA_OUTCOME_UNAVAILABLE);
    ASSERT_EQ(ja_outcome_classify(true, 200, 0), JA_OUTCOME_UNAVAILABLE);
}

TEST(message_faults)
{
    const long statuses[] = {400, 404, 405, 409, 413, 415, 422, 451, 499};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (ja_outcome_classify(true, statuses[i], 5) != JA_OUTCOME_MESSAGE_FAULT)
            FAIL("HTTP %ld should be a message fault", statuses[i]);
}

TEST(unavailable)
{
    ASSERT_EQ(ja_outcome_classify(false, 0, 0), JA_OUTCOME_UNAVAILABLE);
    const long statuses[] = {401, 403, 408, 429, 502, 503, 504};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (ja_outcome_classify(true, statuses[i], 5) != JA_OUTCOME_UNAVAILABLE)
            FAIL("HTTP %ld should mean Jube is unavailable", statuses[i]);
}

TEST(server_errors)
{
    const long statuses[] = {500, 501, 505, 599, 302, 100};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (ja_outcome_classify(true, statuses[i], 5) != JA_OUTCOME_SERVER_ERROR)
            FAIL("HTTP %ld should be a server error", statuses[i]);
}

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
    ASSERT(different > 40);
}

TEST(retry_after)
{
    ASSERT_EQ(ja_retry_after_ms("5", 0), 5000);
    ASSERT_EQ(ja_retry_after_ms(" 0\r\n", 0), 0);
    ASSERT_EQ(ja_retry_after_ms("soon", 0), -1);
    ASSERT_EQ(ja_retry_after_ms("-3", 0), -1);
    ASSERT_EQ(ja_retry_after_ms("12x", 0), -1);
    /* An HTTP date 30 s after "now". */
    ASSERT_EQ(ja_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", 1445412480), 30000);
    ASSERT_EQ(ja_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", 1445412600), 0);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(success_needs_a_body),
        TEST_ENTRY(message_faults),
        TEST_ENTRY(unavailable),
        TEST_ENTRY(server_errors),
        TEST_ENTRY(backoff_grows_with_jitter_and_stops_at_the_cap),
        TEST_ENTRY(backoff_jitter_spreads_workers),
        TEST_ENTRY(retry_after),
    };
    return RUN_TESTS(tests);
}
