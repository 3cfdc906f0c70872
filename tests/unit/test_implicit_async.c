/* Telling Jube's Implicit Async placeholders from answers. */

#include "implicit_async.h"
#include "test.h"

static ja_answer_kind kind_of(const char *json, char guid[JA_GUID_LEN + 1])
{
    return ja_implicit_async_kind_of(json, strlen(json), guid);
}

TEST(placeholder_as_the_newest_jube_writes_it)
{
    char guid[JA_GUID_LEN + 1];
    ASSERT_EQ(kind_of("{\"EntityAnalysisModelInstanceEntryGuid\":\"6F1D2A0E-3c1b-4e0a-9a51-"
                      "0d2c9e4b7f10\",\"EntityInstanceEntryId\":\"0987654321\",\"ReferenceDate\":"
                      "\"2026-03-01T10:00:00\",\"ImplicitAsyncTimedOut\":true}",
                      guid),
              JA_ANSWER_PLACEHOLDER);
    ASSERT_STR_EQ(guid, "6f1d2a0e-3c1b-4e0a-9a51-0d2c9e4b7f10");
}

TEST(keys_in_any_case_and_values_of_any_kind_before_them)
{
    char guid[JA_GUID_LEN + 1];
    ASSERT_EQ(kind_of(" { \"responseElevation\" : {\"value\": [1, {\"a\": \"}\"}]}, \"n\": -1.5e3,"
                      " \"x\": null, \"s\": \"a \\\" b\", \"entityAnalysisModelInstanceEntryGuid\""
                      ": \"6f1d2a0e-3c1b-4e0a-9a51-0d2c9e4b7f10\", \"implicitasynctimedout\" : "
                      "true }",
                      guid),
              JA_ANSWER_PLACEHOLDER);
}

TEST(answers_are_not_placeholders)
{
    char guid[JA_GUID_LEN + 1];
    ASSERT_EQ(kind_of("{\"ImplicitAsyncTimedOut\":false,\"EntityAnalysisModelInstanceEntryGuid\":"
                      "\"6f1d2a0e-3c1b-4e0a-9a51-0d2c9e4b7f10\"}",
                      guid),
              JA_ANSWER_COMPLETE);
    ASSERT_EQ(kind_of("{\"EntityInstanceEntryId\":\"1\"}", guid), JA_ANSWER_COMPLETE);
    /* Only the top level counts. */
    ASSERT_EQ(kind_of("{\"Nested\":{\"ImplicitAsyncTimedOut\":true}}", guid), JA_ANSWER_COMPLETE);
    ASSERT_EQ(kind_of("[{\"ImplicitAsyncTimedOut\":true}]", guid), JA_ANSWER_COMPLETE);
    ASSERT_EQ(kind_of("\"ImplicitAsyncTimedOut\":true", guid), JA_ANSWER_COMPLETE);
    ASSERT_EQ(kind_of("", guid), JA_ANSWER_COMPLETE);
    ASSERT_EQ(kind_of("{\"ImplicitAsyncTimedOut\":\"true\"}", guid), JA_ANSWER_COMPLETE);
}

TEST(placeholder_without_a_usable_guid)
{
    char guid[JA_GUID_LEN + 1];
    ASSERT_EQ(kind_of("{\"ImplicitAsyncTimedOut\":true}", guid), JA_ANSWER_PLACEHOLDER_NO_GUID);
    ASSERT_EQ(kind_of("{\"EntityAnalysisModelInstanceEntryGuid\":\"../../x\","
                      "\"ImplicitAsyncTimedOut\":true}",
                      guid),
              JA_ANSWER_PLACEHOLDER_NO_GUID);
}

TEST(truncated_text_never_reads_past_its_end)
{
    const char *full = "{\"a\":[\"]}\",{\"b\":1}],\"ImplicitAsyncTimedOut\":true,"
                       "\"EntityAnalysisModelInstanceEntryGuid\":\"6f1d2a0e-3c1b-4e0a-9a51-"
                       "0d2c9e4b7f10\"}";
    char guid[JA_GUID_LEN + 1];
    for (size_t n = 0; n < strlen(full); n++) {
        char *copy = malloc(n ? n : 1); /* exactly n bytes: ASan catches a read past them */
        memcpy(copy, full, n);
        ja_answer_kind k = ja_implicit_async_kind_of(copy, n, guid);
        ASSERT(k == JA_ANSWER_COMPLETE || k == JA_ANSWER_PLACEHOLDER ||
               k == JA_ANSWER_PLACEHOLDER_NO_GUID);
        free(copy);
    }
    ASSERT_EQ(kind_of(full, guid), JA_ANSWER_PLACEHOLDER);
}

/* The poll policy against a model of the Callback endpoint: answers of each kind at each time. */
TEST(a_full_answer_is_published_at_any_time_even_past_the_deadline)
{
    ASSERT_EQ(ja_implicit_async_step(200, true, 500, 1000, 100).action, JA_POLL_PUBLISH);
    ASSERT_EQ(ja_implicit_async_step(200, true, 5000, 1000, 100).action, JA_POLL_PUBLISH);
}

TEST(a_200_without_a_whole_body_is_polled_again)
{
    ja_poll_step s = ja_implicit_async_step(200, false, 500, 1000, 100);
    ASSERT_EQ(s.action, JA_POLL_AGAIN);
    ASSERT_EQ(s.next_poll_ms, 600);
}

TEST(a_404_ends_the_wait_at_once)
{
    ASSERT_EQ(ja_implicit_async_step(404, false, 0, 1000, 100).action, JA_POLL_GONE);
    ASSERT_EQ(ja_implicit_async_step(404, true, 0, 1000, 100).action, JA_POLL_GONE);
}

TEST(not_ready_failed_or_unanswered_waits_the_backoff_but_never_past_the_deadline)
{
    long statuses[] = {408, 500, 503, 0};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        ja_poll_step s = ja_implicit_async_step(statuses[i], false, 100, 1000, 300);
        ASSERT_EQ(s.action, JA_POLL_AGAIN);
        ASSERT_EQ(s.next_poll_ms, 400);
        s = ja_implicit_async_step(statuses[i], false, 900, 1000, 300);
        ASSERT_EQ(s.action, JA_POLL_AGAIN);
        ASSERT_EQ(s.next_poll_ms, 1000); /* the last poll at the deadline itself */
        ASSERT_EQ(ja_implicit_async_step(statuses[i], false, 1000, 1000, 300).action,
                  JA_POLL_TOO_LATE);
    }
}

/* A model: the answer is ready at ready_ms; each poll before answers 408. Walking the policy from
 * the placeholder, the answer is published when it is ready before the deadline, and the wait
 * ends at the deadline (never later) when it is not. */
TEST(agrees_with_a_model_of_an_answer_that_becomes_ready)
{
    uint64_t deadline = 10000;
    for (uint64_t ready = 0; ready <= 12000; ready += 250) {
        uint64_t now = 0;
        unsigned polls = 0;
        for (;;) {
            polls++;
            ASSERT_LT(polls, 1000);
            bool is_ready = now >= ready;
            uint64_t backoff = 100u << (polls < 6 ? polls : 6); /* doubling, capped */
            ja_poll_step s =
                ja_implicit_async_step(is_ready ? 200 : 408, is_ready, now, deadline, backoff);
            if (s.action == JA_POLL_PUBLISH) {
                ASSERT_LE(ready, deadline);
                break;
            }
            if (s.action == JA_POLL_TOO_LATE) {
                ASSERT_GT(ready, deadline);
                ASSERT_EQ(now, deadline);
                break;
            }
            ASSERT_EQ(s.action, JA_POLL_AGAIN);
            ASSERT(s.next_poll_ms > now && s.next_poll_ms <= deadline);
            now = s.next_poll_ms;
        }
    }
}

TEST(the_dead_letter_says_how_long_how_often_and_the_last_answer)
{
    char why[600];
    ja_implicit_async_too_late(why, sizeof why, 60000, 7, 408, "");
    ASSERT_CONTAINS(why, "not ready within --implicit-async-timeout-ms 60000 (7 polls, the last "
                         "answered 408)");
    ja_implicit_async_too_late(why, sizeof why, 60000, 3, 502, "");
    ASSERT_CONTAINS(why, "the last answered HTTP 502");
    ja_implicit_async_too_late(why, sizeof why, 60000, 2, 0, "Connection refused");
    ASSERT_CONTAINS(why, "the last got no answer: Connection refused");
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(placeholder_as_the_newest_jube_writes_it),
        TEST_ENTRY(keys_in_any_case_and_values_of_any_kind_before_them),
        TEST_ENTRY(answers_are_not_placeholders),
        TEST_ENTRY(placeholder_without_a_usable_guid),
        TEST_ENTRY(truncated_text_never_reads_past_its_end),
        TEST_ENTRY(a_full_answer_is_published_at_any_time_even_past_the_deadline),
        TEST_ENTRY(a_200_without_a_whole_body_is_polled_again),
        TEST_ENTRY(a_404_ends_the_wait_at_once),
        TEST_ENTRY(not_ready_failed_or_unanswered_waits_the_backoff_but_never_past_the_deadline),
        TEST_ENTRY(agrees_with_a_model_of_an_answer_that_becomes_ready),
        TEST_ENTRY(the_dead_letter_says_how_long_how_often_and_the_last_answer),
    };
    return RUN_TESTS(tests);
}
