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

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(placeholder_as_the_newest_jube_writes_it),
        TEST_ENTRY(keys_in_any_case_and_values_of_any_kind_before_them),
        TEST_ENTRY(answers_are_not_placeholders),
        TEST_ENTRY(placeholder_without_a_usable_guid),
        TEST_ENTRY(truncated_text_never_reads_past_its_end),
    };
    return RUN_TESTS(tests);
}
