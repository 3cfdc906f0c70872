#include "validate.h"

#include <ctype.h>
#include <string.h>

bool ja_guid_is_valid(const char *s, size_t len)
{
    if (len != JA_GUID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        bool hyphen_here = (i == 8 || i == 13 || i == 18 || i == 23);
        if (hyphen_here ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

static const char *field_kind_name(uint8_t kind)
{
    switch (kind) {
    case AMQP_FIELD_KIND_UTF8:
        return "a long string (S)";
    case AMQP_FIELD_KIND_BYTES:
        return "a byte array (x)";
    case AMQP_FIELD_KIND_I32:
        return "an integer (I)";
    case AMQP_FIELD_KIND_I64:
        return "an integer (l)";
    case AMQP_FIELD_KIND_BOOLEAN:
        return "a boolean (t)";
    case AMQP_FIELD_KIND_TABLE:
        return "a table (F)";
    case AMQP_FIELD_KIND_ARRAY:
        return "an array (A)";
    case AMQP_FIELD_KIND_VOID:
        return "void (V)";
    default:
        return "a non-string field";
    }
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

void ja_find_traceparent(const amqp_basic_properties_t *props, char out[JA_TRACEPARENT_LEN + 1])
{
    out[0] = '\0';
    if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return;
    for (int i = 0; i < props->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &props->headers.entries[i];
        if (e->key.len != 11 || memcmp(e->key.bytes, "traceparent", 11) != 0)
            continue;
        if (e->value.kind != AMQP_FIELD_KIND_UTF8 && e->value.kind != AMQP_FIELD_KIND_BYTES)
            return;
        const char *v = e->value.value.bytes.bytes;
        if (e->value.value.bytes.len != JA_TRACEPARENT_LEN || !lower_hex(v, 2) || v[2] != '-' ||
            !lower_hex(v + 3, 32) || v[35] != '-' || !lower_hex(v + 36, 16) || v[52] != '-' ||
            !lower_hex(v + 53, 2))
            return;
        memcpy(out, v, JA_TRACEPARENT_LEN);
        out[JA_TRACEPARENT_LEN] = '\0';
        return;
    }
}

bool ja_validate_model_header(const amqp_basic_properties_t *props, char guid[JA_GUID_LEN + 1],
                              ja_failure *why)
{
    const amqp_table_entry_t *entry = NULL;
    if (props->_flags & AMQP_BASIC_HEADERS_FLAG) {
        for (int i = 0; i < props->headers.num_entries; i++) {
            const amqp_bytes_t key = props->headers.entries[i].key;
            if (key.len == strlen(JA_MODEL_HEADER) &&
                memcmp(key.bytes, JA_MODEL_HEADER, key.len) == 0) {
                entry = &props->headers.entries[i];
                break;
            }
        }
    }
    if (!entry) {
        ja_failure_set(why, "missing_model_guid",
                       "The message has no " JA_MODEL_HEADER " header; it must name the Jube "
                       "model to invoke as a GUID string.");
        return false;
    }
    uint8_t kind = entry->value.kind;
    if (kind != AMQP_FIELD_KIND_UTF8 && kind != AMQP_FIELD_KIND_BYTES) {
        ja_failure_set(why, "invalid_model_guid",
                       "The " JA_MODEL_HEADER " header is %s; it must be a long string (S) or "
                       "byte array (x) holding a GUID.",
                       field_kind_name(kind));
        return false;
    }
    amqp_bytes_t value = entry->value.value.bytes;
    if (!ja_guid_is_valid(value.bytes, value.len)) {
        char shown[200];
        ja_escape_for_text(value.bytes, value.len, 64, shown, sizeof shown);
        ja_failure_set(why, "invalid_model_guid",
                       "The " JA_MODEL_HEADER " header \"%s\" is not a GUID "
                       "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx, hexadecimal).",
                       shown);
        return false;
    }
    for (size_t i = 0; i < JA_GUID_LEN; i++)
        guid[i] = (char)tolower(((const unsigned char *)value.bytes)[i]);
    guid[JA_GUID_LEN] = '\0';
    return true;
}

/* A small validating JSON scanner: no allocation, no global state, bounded nesting. It only
 * answers "is this JSON?"; the body is forwarded to Jube byte for byte and never rebuilt. */

#define JSON_MAX_DEPTH 256

typedef struct {
    const char *p;
    const char *end;
    const char *error;
    const char *error_at;
} scanner;

static bool fail(scanner *s, const char *what)
{
    if (!s->error) {
        s->error = what;
        s->error_at = s->p;
    }
    return false;
}

static void skip_space(scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool scan_literal(scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return fail(s, "unexpected character");
    s->p += n;
    return true;
}

static bool scan_string(scanner *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return fail(s, "control character inside a string");
        if (c == '\\') {
            s->p++;
            if (s->p >= s->end)
                break;
            char e = *s->p;
            if (e == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (s->p + i >= s->end || !isxdigit((unsigned char)s->p[i]))
                        return fail(s, "bad \\u escape");
                }
                s->p += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return fail(s, "bad escape in a string");
            }
        }
        s->p++;
    }
    return fail(s, "unterminated string");
}

static bool scan_digits(scanner *s)
{
    if (s->p >= s->end || !isdigit((unsigned char)*s->p))
        return fail(s, "digit expected");
    while (s->p < s->end && isdigit((unsigned char)*s->p))
        s->p++;
    return true;
}

static bool scan_number(scanner *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0') {
        s->p++;
    } else if (!scan_digits(s)) {
        return false;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!scan_digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!scan_digits(s))
            return false;
    }
    return true;
}

static bool scan_value(scanner *s, int depth);

static bool scan_container(scanner *s, int depth, char close, bool is_object)
{
    if (depth >= JSON_MAX_DEPTH)
        return fail(s, "nested too deeply");
    s->p++; /* opening bracket */
    skip_space(s);
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return true;
    }
    for (;;) {
        if (is_object) {
            skip_space(s);
            if (s->p >= s->end || *s->p != '"')
                return fail(s, "object key expected");
            if (!scan_string(s))
                return false;
            skip_space(s);
            if (s->p >= s->end || *s->p != ':')
                return fail(s, "':' expected");
            s->p++;
        }
        if (!scan_value(s, depth + 1))
            return false;
        skip_space(s);
        if (s->p >= s->end)
            return fail(s, "unexpected end of input");
        if (*s->p == close) {
            s->p++;
            return true;
        }
        if (*s->p != ',')
            return fail(s, is_object ? "',' or '}' expected" : "',' or ']' expected");
        s->p++;
    }
}

static bool scan_value(scanner *s, int depth)
{
    skip_space(s);
    if (s->p >= s->end)
        return fail(s, "unexpected end of input");
    switch (*s->p) {
    case '{':
        return scan_container(s, depth, '}', true);
    case '[':
        return scan_container(s, depth, ']', false);
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        if (*s->p == '-' || isdigit((unsigned char)*s->p))
            return scan_number(s);
        return fail(s, "unexpected character");
    }
}

const char *ja_json_check(const char *text, size_t len, size_t *error_offset, bool *is_object)
{
    scanner s = {.p = text, .end = text + len, .error = NULL, .error_at = NULL};
    skip_space(&s);
    *is_object = s.p < s.end && *s.p == '{';
    if (scan_value(&s, 0)) {
        skip_space(&s);
        if (s.p != s.end)
            fail(&s, "unexpected data after the JSON value");
    }
    if (s.error)
        *error_offset = (size_t)(s.error_at - text);
    return s.error;
}

bool ja_validate_body_size(uint64_t announced, size_t kept, size_t max_bytes, ja_failure *why)
{
    if (announced <= max_bytes)
        return true;
    ja_failure_set(why, "body_too_large",
                   "The message body is %llu bytes, more than --max-body-bytes %zu; this dead "
                   "letter keeps its first %zu bytes.",
                   (unsigned long long)announced, max_bytes, kept);
    return false;
}

bool ja_validate_body(const void *body, size_t len, size_t max_bytes, ja_failure *why)
{
    if (len == 0) {
        ja_failure_set(why, "empty_body", "The message body is empty; Jube needs a JSON object.");
        return false;
    }
    if (len > max_bytes) {
        ja_failure_set(why, "body_too_large",
                       "The message body is %zu bytes, more than --max-body-bytes %zu.", len,
                       max_bytes);
        return false;
    }
    size_t offset = 0;
    bool is_object = false;
    const char *problem = ja_json_check(body, len, &offset, &is_object);
    if (problem) {
        char near[120];
        ja_escape_for_text((const char *)body + offset, len - offset, 24, near, sizeof near);
        ja_failure_set(why, "invalid_json",
                       "The message body is not valid JSON: %s at byte %zu (near \"%s\").", problem,
                       offset, near);
        return false;
    }
    if (!is_object) {
        ja_failure_set(why, "invalid_json",
                       "The message body is JSON but not an object; Jube models read fields of "
                       "a JSON object.");
        return false;
    }
    return true;
}
