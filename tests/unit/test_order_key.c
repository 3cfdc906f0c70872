/* --order-by: what a spec may be, and which key each kind of message has. */

#include "order_key.h"
#include "test.h"

#include <errno.h>

#include <string.h>

static ja_key_status key_of(const char *spec_text, const char *body, char *key, size_t *len)
{
    ja_order_spec spec;
    char err[512];
    ASSERT_EQ(ja_order_key_parse_spec(spec_text, &spec, err, sizeof err), 0);
    amqp_basic_properties_t props = {0};
    return ja_order_key_of(&spec, body, strlen(body), &props, key, len);
}

static void expect_key(const char *spec, const char *body, const char *want)
{
    char key[JA_ORDER_KEY_MAX];
    size_t len;
    ASSERT_EQ(key_of(spec, body, key, &len), JA_KEY_FOUND);
    ASSERT_EQ(len, strlen(want));
    ASSERT_MEM_EQ(key, want, len);
}

static void expect_status(const char *spec, const char *body, ja_key_status want)
{
    char key[JA_ORDER_KEY_MAX];
    size_t len;
    ASSERT_EQ(key_of(spec, body, key, &len), want);
}

TEST(top_level_string_and_number)
{
    expect_key("$.AccountId", "{\"TxnId\":\"1\",\"AccountId\":\"Test1\"}", "Test1");
    expect_key("$.AccountId", " { \"AccountId\" : 12345 , \"x\": [1,2]}", "12345");
    expect_key("$.AccountId", "{\"AccountId\":-1.5e3}", "-1.5e3");
    expect_key("$.AccountId", "{\"a\":{\"AccountId\":\"inner\"},\"AccountId\":\"outer\"}", "outer");
    expect_key("$.AccountId", "{\"AccountId\":\"\"}", "");
}

TEST(nested_path)
{
    expect_key("$.Payer.Id", "{\"Payer\":{\"Name\":\"x\",\"Id\":\"P-7\"},\"Id\":\"no\"}", "P-7");
    expect_key("$.a.b.c", "{\"a\":{\"b\":{\"c\":42}}}", "42");
    expect_status("$.a.b", "{\"a\":\"text\"}", JA_KEY_NOT_SCALAR);
    expect_status("$.a.b", "{\"a\":{\"c\":1}}", JA_KEY_MISSING);
}

TEST(escapes_are_decoded)
{
    /* Two spellings of one account are one key. */
    expect_key("$.AccountId", "{\"AccountId\":\"A\\u0042\\\"c\\\\\"}", "AB\"c\\");
    expect_key("$.AccountId", "{\"AccountId\":\"\\u00e9\\ud83d\\ude00\"}",
               "\xc3\xa9\xf0\x9f\x98\x80");
}

TEST(missing_or_not_scalar)
{
    expect_status("$.AccountId", "{\"TxnId\":\"1\"}", JA_KEY_MISSING);
    expect_status("$.AccountId", "not json", JA_KEY_MISSING);
    expect_status("$.AccountId", "", JA_KEY_MISSING);
    expect_status("$.AccountId", "[{\"AccountId\":\"x\"}]", JA_KEY_MISSING);
    expect_status("$.AccountId", "{\"AccountId\":\"unterminated", JA_KEY_MISSING);
    expect_status("$.AccountId", "{\"AccountId\":null}", JA_KEY_NOT_SCALAR);
    expect_status("$.AccountId", "{\"AccountId\":true}", JA_KEY_NOT_SCALAR);
    expect_status("$.AccountId", "{\"AccountId\":{\"x\":1}}", JA_KEY_NOT_SCALAR);
    expect_status("$.AccountId", "{\"AccountId\":[1]}", JA_KEY_NOT_SCALAR);
    expect_status("$.AccountId", "{\"AccountId\":\"bad \\q escape\"}", JA_KEY_MISSING);
    /* Names are matched as written, with their case. */
    expect_status("$.AccountId", "{\"accountid\":\"x\"}", JA_KEY_MISSING);
}

TEST(too_long)
{
    char body[1024];
    char value[JA_ORDER_KEY_MAX + 2];
    memset(value, 'k', sizeof value - 1);
    value[sizeof value - 1] = '\0';
    snprintf(body, sizeof body, "{\"AccountId\":\"%s\"}", value);
    expect_status("$.AccountId", body, JA_KEY_TOO_LONG);
    value[JA_ORDER_KEY_MAX] = '\0'; /* exactly the limit */
    snprintf(body, sizeof body, "{\"AccountId\":\"%s\"}", value);
    expect_key("$.AccountId", body, value);
}

static ja_key_status header_key(const amqp_table_entry_t *entries, int count, char *key,
                                size_t *len)
{
    ja_order_spec spec;
    char err[256];
    ASSERT_EQ(ja_order_key_parse_spec("header:x-account", &spec, err, sizeof err), 0);
    amqp_basic_properties_t props = {
        .headers = {.num_entries = count, .entries = (amqp_table_entry_t *)entries}};
    if (count >= 0)
        props._flags = AMQP_BASIC_HEADERS_FLAG;
    return ja_order_key_of(&spec, "{}", 2, &props, key, len);
}

TEST(header_values)
{
    char key[JA_ORDER_KEY_MAX];
    size_t len;
    amqp_table_entry_t e[2] = {
        {.key = amqp_cstring_bytes("other"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("no")}},
        {.key = amqp_cstring_bytes("x-account"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("acc-9")}},
    };
    ASSERT_EQ(header_key(e, 2, key, &len), JA_KEY_FOUND);
    ASSERT(len == 5 && memcmp(key, "acc-9", 5) == 0);
    e[1].value = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_I64, .value.i64 = -77};
    ASSERT_EQ(header_key(e, 2, key, &len), JA_KEY_FOUND);
    ASSERT(len == 3 && memcmp(key, "-77", 3) == 0);
    e[1].value = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_U8, .value.u8 = 200};
    ASSERT_EQ(header_key(e, 2, key, &len), JA_KEY_FOUND);
    ASSERT(len == 3 && memcmp(key, "200", 3) == 0);
    e[1].value = (amqp_field_value_t){.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1};
    ASSERT_EQ(header_key(e, 2, key, &len), JA_KEY_NOT_SCALAR);
    ASSERT_EQ(header_key(e, 1, key, &len), JA_KEY_MISSING);
    ASSERT_EQ(header_key(e, -1, key, &len), JA_KEY_MISSING); /* no headers at all */
}

static void expect_refused(const char *text, const char *says)
{
    ja_order_spec spec;
    char err[512] = "";
    ASSERT_EQ(ja_order_key_parse_spec(text, &spec, err, sizeof err), -EINVAL);
    ASSERT_CONTAINS(err, "--order-by");
    ASSERT_CONTAINS(err, says);
    ASSERT_EQ(spec.source, JA_ORDER_OFF);
}

TEST(specs)
{
    ja_order_spec spec;
    char err[256];
    ASSERT_EQ(ja_order_key_parse_spec("", &spec, err, sizeof err), 0);
    ASSERT_EQ(spec.source, JA_ORDER_OFF);
    ASSERT_EQ(ja_order_key_parse_spec("$.a.b", &spec, err, sizeof err), 0);
    ASSERT_EQ(spec.source, JA_ORDER_BY_BODY);
    ASSERT_EQ(spec.parts, 2);
    ASSERT_EQ(ja_order_key_parse_spec("header:x", &spec, err, sizeof err), 0);
    ASSERT_EQ(spec.source, JA_ORDER_BY_HEADER);
    expect_refused("AccountId", "'AccountId'");
    expect_refused("$AccountId", "'$AccountId'");
    expect_refused("$.", "'$.'");
    expect_refused("$.a..b", "'$.a..b'");
    expect_refused("$.a.", "'$.a.'");
    expect_refused("$.a.b.c.d.e.f.g.h.i", "up to 8");
    expect_refused("header:", "names no header");
}

static const test_case tests[] = {
    TEST_ENTRY(top_level_string_and_number),
    TEST_ENTRY(nested_path),
    TEST_ENTRY(escapes_are_decoded),
    TEST_ENTRY(missing_or_not_scalar),
    TEST_ENTRY(too_long),
    TEST_ENTRY(header_values),
    TEST_ENTRY(specs),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests);
}
