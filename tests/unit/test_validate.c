/* Input checks: the model header and the body, each failure with its code and the value. */

#include "json.h"
#include "text.h"
#include "validate.h"
#include "test.h"

#define SAMPLE_GUID "90c425fd-101a-420b-91d1-cb7a24a969cc"

static amqp_basic_properties_t with_header(amqp_table_entry_t *entry, int count)
{
    amqp_basic_properties_t props = {0};
    props._flags = AMQP_BASIC_HEADERS_FLAG;
    props.headers.num_entries = count;
    props.headers.entries = entry;
    return props;
}

static amqp_table_entry_t string_entry(const char *key, const char *value, uint8_t kind)
{
    amqp_table_entry_t e = {.key = amqp_cstring_bytes(key)};
    e.value.kind = kind;
    e.value.value.bytes = amqp_cstring_bytes(value);
    return e;
}

/* Only a well-formed W3C traceparent is passed on, so nothing else can reach an HTTP header. */
TEST(traceparent_found_only_when_well_formed)
{
    const char *good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    char out[JA_TRACEPARENT_LEN + 1];
    amqp_table_entry_t e[2] = {string_entry(JA_MODEL_HEADER, SAMPLE_GUID, AMQP_FIELD_KIND_UTF8),
                               string_entry("traceparent", good, AMQP_FIELD_KIND_UTF8)};
    amqp_basic_properties_t props = with_header(e, 2);
    ja_validate_traceparent(&props, out);
    ASSERT_STR_EQ(out, good);
    e[1].value.kind = AMQP_FIELD_KIND_BYTES;
    ja_validate_traceparent(&props, out);
    ASSERT_STR_EQ(out, good);

    const char *bad[] = {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\n",
                         "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
                         "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
                         "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e[1] = string_entry("traceparent", bad[i], AMQP_FIELD_KIND_UTF8);
        ja_validate_traceparent(&props, out);
        ASSERT_STR_EQ(out, "");
    }
    e[1].value.kind = AMQP_FIELD_KIND_I32;
    ja_validate_traceparent(&props, out);
    ASSERT_STR_EQ(out, "");
    props = with_header(e, 1);
    ja_validate_traceparent(&props, out);
    ASSERT_STR_EQ(out, "");
}

TEST(guid_shapes)
{
    ASSERT(ja_validate_guid(SAMPLE_GUID, 36));
    ASSERT(ja_validate_guid("90C425FD-101A-420B-91D1-CB7A24A969CC", 36));
    ASSERT(!ja_validate_guid("90c425fd101a420b91d1cb7a24a969cc", 32));
    ASSERT(!ja_validate_guid("90c425fd-101a-420b-91d1-cb7a24a969c", 35));
    ASSERT(!ja_validate_guid("90c425fd-101a-420b-91d1-cb7a24a969cg", 36));
    ASSERT(!ja_validate_guid("90c425fd-101a-420b-91d1/cb7a24a969cc", 36));
    ASSERT(!ja_validate_guid("../../../../admin/x?y=1&z=2#abcdefgh", 36));
}

TEST(header_as_long_string_or_bytes_is_lowercased)
{
    char guid[JA_GUID_LEN + 1];
    ja_failure why = {0};
    amqp_table_entry_t e =
        string_entry(JA_MODEL_HEADER, "90C425FD-101A-420B-91D1-CB7A24A969CC", AMQP_FIELD_KIND_UTF8);
    amqp_basic_properties_t props = with_header(&e, 1);
    ASSERT(ja_validate_model_header(&props, guid, &why));
    ASSERT_STR_EQ(guid, SAMPLE_GUID);
    e = string_entry(JA_MODEL_HEADER, SAMPLE_GUID, AMQP_FIELD_KIND_BYTES);
    ASSERT(ja_validate_model_header(&props, guid, &why));
    ASSERT_STR_EQ(guid, SAMPLE_GUID);
}

TEST(missing_header)
{
    char guid[JA_GUID_LEN + 1];
    ja_failure why = {0};
    amqp_basic_properties_t none = {0};
    ASSERT(!ja_validate_model_header(&none, guid, &why));
    ASSERT_STR_EQ(why.code, "missing_model_guid");
    ASSERT_CONTAINS(why.detail, "no EntityAnalysisModelGuid header");

    amqp_table_entry_t other =
        string_entry("entityanalysismodelguid", SAMPLE_GUID, AMQP_FIELD_KIND_UTF8);
    amqp_basic_properties_t props = with_header(&other, 1);
    ASSERT(!ja_validate_model_header(&props, guid, &why));
    ASSERT_STR_EQ(why.code, "missing_model_guid");
}

TEST(header_of_wrong_type)
{
    char guid[JA_GUID_LEN + 1];
    ja_failure why = {0};
    amqp_table_entry_t e = {.key = amqp_cstring_bytes(JA_MODEL_HEADER)};
    e.value.kind = AMQP_FIELD_KIND_I32;
    e.value.value.i32 = 42;
    amqp_basic_properties_t props = with_header(&e, 1);
    ASSERT(!ja_validate_model_header(&props, guid, &why));
    ASSERT_STR_EQ(why.code, "invalid_model_guid");
    ASSERT_CONTAINS(why.detail, "is an integer (I)");
}

TEST(header_not_a_guid_is_quoted_escaped)
{
    char guid[JA_GUID_LEN + 1];
    ja_failure why = {0};
    amqp_table_entry_t e = string_entry(JA_MODEL_HEADER, "../admin\"\n", AMQP_FIELD_KIND_UTF8);
    amqp_basic_properties_t props = with_header(&e, 1);
    ASSERT(!ja_validate_model_header(&props, guid, &why));
    ASSERT_STR_EQ(why.code, "invalid_model_guid");
    ASSERT_CONTAINS(why.detail, "\"../admin\\\"\\x0a\" is not a GUID");
}

TEST(body_checks)
{
    ja_failure why = {0};
    ASSERT(ja_validate_body("{\"TxnId\":\"1\"}", 13, &why));
    ASSERT(!ja_validate_body("", 0, &why));
    ASSERT_STR_EQ(why.code, "empty_body");
    ASSERT(!ja_validate_body_size(7, 6, 6, &why));
    ASSERT_STR_EQ(why.code, "body_too_large");
    ASSERT_CONTAINS(why.detail, "7 bytes, more than --max-body-bytes 6; this dead letter keeps "
                                "its first 6 bytes");
    ASSERT(ja_validate_body_size(6, 6, 6, &why));
    ASSERT(!ja_validate_body("not json", 8, &why));
    ASSERT_STR_EQ(why.code, "invalid_json");
    ASSERT_CONTAINS(why.detail, "at byte 0");
    ASSERT(!ja_validate_body("{\"a\":}", 6, &why));
    ASSERT_CONTAINS(why.detail, "at byte 5");
    ASSERT(!ja_validate_body("[1,2]", 5, &why));
    ASSERT_STR_EQ(why.code, "invalid_json");
    ASSERT_CONTAINS(why.detail, "not an object");
}

static bool valid_json(const char *text)
{
    size_t at;
    bool object;
    return ja_json_check(text, strlen(text), &at, &object) == NULL;
}

TEST(json_scanner_accepts_rfc8259)
{
    const char *good[] = {
        "{}",
        " { } ",
        "[]",
        "0",
        "-0.5e+10",
        "1E3",
        "\"s\"",
        "true",
        "false",
        "null",
        "{\"a\":[1,2,{\"b\":null}],\"c\":\"\\u00e9\\n\\\"\"}",
        "[\"\xc3\xa9\"]",
        "{\"TxnId\":\"0987654321\",\"Amount\":123.45}\n",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        if (!valid_json(good[i]))
            FAIL("rejected valid JSON: %s", good[i]);
}

TEST(json_scanner_rejects_the_rest)
{
    const char *bad[] = {
        "",
        " ",
        "{",
        "}",
        "{\"a\"}",
        "{\"a\":1,}",
        "[1,]",
        "01",
        "1.",
        ".5",
        "-",
        "1e",
        "tru",
        "nul",
        "{'a':1}",
        "{a:1}",
        "\"unterminated",
        "\"bad\\q\"",
        "\"\\u12G4\"",
        "{} {}",
        "[1 2]",
        "\"tab\tinside\"",
        "NaN",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (valid_json(bad[i]))
            FAIL("accepted invalid JSON: '%s'", bad[i]);
}

TEST(json_scanner_bounds_nesting)
{
    char deep[2001];
    memset(deep, '[', 1000);
    memset(deep + 1000, ']', 1000);
    deep[2000] = '\0';
    size_t at;
    bool object;
    const char *why = ja_json_check(deep, 2000, &at, &object);
    ASSERT_NOT_NULL(why);
    ASSERT_STR_EQ(why, "nested too deeply");
}

TEST(json_sample_transaction_is_an_object)
{
    FILE *f = fopen(JA_SAMPLE_REQUEST, "rb");
    ASSERT(f);
    char text[8192];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    ja_failure why = {0};
    ASSERT(ja_validate_body(text, n, &why));
}

/* Details and quoted values are UTF-8 header strings: never cut inside a character. */
TEST(details_are_cut_on_character_boundaries)
{
    ASSERT_EQ(ja_text_utf8_cut("ab\xc3\xa9", 4), 4);   /* "abé" whole */
    ASSERT_EQ(ja_text_utf8_cut("ab\xc3\xa9", 3), 2);   /* half an é */
    ASSERT_EQ(ja_text_utf8_cut("\xe2\x82\xac", 2), 0); /* two thirds of a euro sign */
    ASSERT_EQ(ja_text_utf8_cut("\xf0\x9f\x98\x80", 4), 4);
    ASSERT_EQ(ja_text_utf8_cut("abc", 3), 3);

    static char euros[3 * 2000 + 1];
    for (int i = 0; i < 2000; i++)
        memcpy(euros + 3 * i, "\xe2\x82\xac", 3);
    ja_failure failure;
    ja_failure_set(&failure, "x", "%s", euros);
    size_t len = strlen(failure.detail);
    ASSERT_LE(len, JA_ERROR_DETAIL_MAX - 1);
    ASSERT_EQ(len % 3, 0);

    char out[64];
    ja_text_escape(euros, sizeof euros - 1, 1000, out, sizeof out);
    len = strlen(out);
    ASSERT(len >= 3 && memcmp(out + len - 3, "...", 3) == 0);
    ASSERT_EQ((len - 3) % 3, 0);
    ja_text_escape(euros, sizeof euros - 1, 10, out, sizeof out); /* max_in mid-character */
    ASSERT_STR_EQ(out, "\xe2\x82\xac\xe2\x82\xac\xe2\x82\xac...");
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(guid_shapes),
        TEST_ENTRY(traceparent_found_only_when_well_formed),
        TEST_ENTRY(header_as_long_string_or_bytes_is_lowercased),
        TEST_ENTRY(missing_header),
        TEST_ENTRY(header_of_wrong_type),
        TEST_ENTRY(header_not_a_guid_is_quoted_escaped),
        TEST_ENTRY(body_checks),
        TEST_ENTRY(json_scanner_accepts_rfc8259),
        TEST_ENTRY(json_scanner_rejects_the_rest),
        TEST_ENTRY(json_scanner_bounds_nesting),
        TEST_ENTRY(json_sample_transaction_is_an_object),
        TEST_ENTRY(details_are_cut_on_character_boundaries),
    };
    return RUN_TESTS(tests);
}
