#include "validate.h"

#include "amqp_headers.h"
#include "json.h"
#include "text.h"

#include <ctype.h>
#include <string.h>

bool ja_validate_guid(const char *s, size_t len)
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

void ja_validate_traceparent(const amqp_basic_properties_t *props, char out[JA_TRACEPARENT_LEN + 1])
{
    out[0] = '\0';
    const amqp_field_value_t *e = ja_amqp_headers_get(props, "traceparent");
    if (!e || (e->kind != AMQP_FIELD_KIND_UTF8 && e->kind != AMQP_FIELD_KIND_BYTES))
        return;
    const char *v = e->value.bytes.bytes;
    if (e->value.bytes.len != JA_TRACEPARENT_LEN || !lower_hex(v, 2) || v[2] != '-' ||
        !lower_hex(v + 3, 32) || v[35] != '-' || !lower_hex(v + 36, 16) || v[52] != '-' ||
        !lower_hex(v + 53, 2))
        return;
    memcpy(out, v, JA_TRACEPARENT_LEN);
    out[JA_TRACEPARENT_LEN] = '\0';
}

bool ja_validate_model_header(const amqp_basic_properties_t *props, char guid[JA_GUID_LEN + 1],
                              ja_failure *why)
{
    const amqp_field_value_t *entry = ja_amqp_headers_get(props, JA_MODEL_HEADER);
    if (!entry) {
        ja_failure_set(why, "missing_model_guid",
                       "The message has no " JA_MODEL_HEADER " header; it must name the Jube "
                       "model to invoke as a GUID string.");
        return false;
    }
    uint8_t kind = entry->kind;
    if (kind != AMQP_FIELD_KIND_UTF8 && kind != AMQP_FIELD_KIND_BYTES) {
        ja_failure_set(why, "invalid_model_guid",
                       "The " JA_MODEL_HEADER " header is %s; it must be a long string (S) or "
                       "byte array (x) holding a GUID.",
                       field_kind_name(kind));
        return false;
    }
    amqp_bytes_t value = entry->value.bytes;
    if (!ja_validate_guid(value.bytes, value.len)) {
        char shown[200];
        ja_text_escape(value.bytes, value.len, 64, shown, sizeof shown);
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

bool ja_validate_body(const void *body, size_t len, ja_failure *why)
{
    if (len == 0) {
        ja_failure_set(why, "empty_body", "The message body is empty; Jube needs a JSON object.");
        return false;
    }
    size_t offset = 0;
    bool is_object = false;
    const char *problem = ja_json_check(body, len, &offset, &is_object);
    if (problem) {
        char near[120];
        ja_text_escape((const char *)body + offset, len - offset, 24, near, sizeof near);
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
