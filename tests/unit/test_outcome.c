/* What each answer from Jube means. */

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

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(success_needs_a_body),
        TEST_ENTRY(message_faults),
        TEST_ENTRY(unavailable),
        TEST_ENTRY(server_errors),
    };
    return RUN_TESTS(tests);
}
