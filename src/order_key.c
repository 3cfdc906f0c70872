#include "order_key.h"

#include "amqp_headers.h"
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define HEADER_PREFIX "header:"

int ja_order_key_parse_spec(const char *text, ja_order_spec *spec, char *err, size_t err_size)
{
    memset(spec, 0, sizeof *spec);
    size_t len = strlen(text);
    if (len == 0)
        return 0;
    if (len >= sizeof spec->text) {
        snprintf(err, err_size, "--order-by: %zu bytes is longer than %d", len,
                 JA_ORDER_SPEC_MAX - 1);
        return -EINVAL;
    }
    memcpy(spec->text, text, len + 1);
    size_t prefix = strlen(HEADER_PREFIX);
    if (strncmp(text, HEADER_PREFIX, prefix) == 0) {
        size_t name_len = len - prefix;
        if (name_len == 0 || name_len > 255) {
            snprintf(err, err_size,
                     "--order-by: '%s' names no header; header:NAME needs a name of 1 to 255 "
                     "bytes",
                     text);
            return -EINVAL;
        }
        spec->source = JA_ORDER_BY_HEADER;
        spec->part_at[0] = (unsigned short)prefix;
        spec->part_len[0] = (unsigned short)name_len;
        spec->parts = 1;
        return 0;
    }
    if (strncmp(text, "$.", 2) != 0)
        goto bad;
    for (size_t at = 2;;) {
        size_t part = strcspn(text + at, ".");
        if (part == 0 || spec->parts == JA_ORDER_PATH_MAX)
            goto bad;
        spec->part_at[spec->parts] = (unsigned short)at;
        spec->part_len[spec->parts] = (unsigned short)part;
        spec->parts++;
        at += part;
        if (text[at] == '\0')
            break;
        at++; /* the dot */
    }
    spec->source = JA_ORDER_BY_BODY;
    return 0;
bad:
    snprintf(err, err_size,
             "--order-by: '%s' is neither a JSON path into the body ($.AccountId, $.a.b: up to "
             "%d member names, none empty) nor header:NAME",
             text, JA_ORDER_PATH_MAX);
    memset(spec, 0, sizeof *spec);
    return -EINVAL;
}

/* What one step of the path walk looks for in an object. */
typedef struct {
    const char *name;
    size_t name_len;
    bool found;
    ja_json_cursor value;
} member_search;

static bool find_member(const char *name, size_t name_len, ja_json_cursor value, void *arg)
{
    member_search *search = arg;
    if (name_len != search->name_len || memcmp(name, search->name, name_len) != 0)
        return true;
    search->found = true;
    search->value = value;
    return false;
}

static bool looks_like_number(char ch)
{
    return ch == '-' || (ch >= '0' && ch <= '9');
}

static ja_key_status key_from_json_value(ja_json_cursor value, char *key, size_t *key_len)
{
    if (value.p >= value.end)
        return JA_KEY_MISSING;
    if (*value.p == '"') {
        const char *s;
        size_t n;
        if (!ja_json_read_string(&value, &s, &n))
            return JA_KEY_MISSING;
        int rc = ja_json_unescape(s, n, key, JA_ORDER_KEY_MAX, key_len);
        if (rc == -ENOSPC)
            return JA_KEY_TOO_LONG;
        if (rc != 0)
            return JA_KEY_MISSING; /* not JSON: dead-lettered as invalid_json by the worker */
        return JA_KEY_FOUND;
    }
    if (!looks_like_number(*value.p))
        return JA_KEY_NOT_SCALAR;
    const char *start = value.p;
    if (!ja_json_skip_value(&value))
        return JA_KEY_MISSING;
    size_t n = (size_t)(value.p - start);
    if (n > JA_ORDER_KEY_MAX)
        return JA_KEY_TOO_LONG;
    memcpy(key, start, n);
    *key_len = n;
    return JA_KEY_FOUND;
}

static ja_key_status key_from_body(const ja_order_spec *spec, const char *body, size_t len,
                                   char *key, size_t *key_len)
{
    ja_json_cursor c = {body, body + len};
    for (int i = 0; i < spec->parts; i++) {
        member_search search = {.name = spec->text + spec->part_at[i],
                                .name_len = spec->part_len[i]};
        ja_json_skip_space(&c);
        if (c.p >= c.end)
            return JA_KEY_MISSING;
        if (*c.p != '{')
            return i == 0 ? JA_KEY_MISSING : JA_KEY_NOT_SCALAR;
        ja_json_each_member(&c, find_member, &search);
        if (!search.found)
            return JA_KEY_MISSING;
        c = search.value;
    }
    ja_json_skip_space(&c);
    return key_from_json_value(c, key, key_len);
}

static ja_key_status key_from_field(const amqp_field_value_t *v, char *key, size_t *key_len)
{
    int64_t number;
    switch (v->kind) {
    case AMQP_FIELD_KIND_UTF8:
    case AMQP_FIELD_KIND_BYTES:
        if (v->value.bytes.len > JA_ORDER_KEY_MAX)
            return JA_KEY_TOO_LONG;
        if (v->value.bytes.len > 0)
            memcpy(key, v->value.bytes.bytes, v->value.bytes.len);
        *key_len = v->value.bytes.len;
        return JA_KEY_FOUND;
    case AMQP_FIELD_KIND_I8:
        number = v->value.i8;
        break;
    case AMQP_FIELD_KIND_U8:
        number = v->value.u8;
        break;
    case AMQP_FIELD_KIND_I16:
        number = v->value.i16;
        break;
    case AMQP_FIELD_KIND_U16:
        number = v->value.u16;
        break;
    case AMQP_FIELD_KIND_I32:
        number = v->value.i32;
        break;
    case AMQP_FIELD_KIND_U32:
        number = v->value.u32;
        break;
    case AMQP_FIELD_KIND_I64:
        number = v->value.i64;
        break;
    case AMQP_FIELD_KIND_U64:
        *key_len = (size_t)snprintf(key, JA_ORDER_KEY_MAX, "%" PRIu64, v->value.u64);
        return JA_KEY_FOUND;
    default:
        return JA_KEY_NOT_SCALAR;
    }
    *key_len = (size_t)snprintf(key, JA_ORDER_KEY_MAX, "%" PRId64, number);
    return JA_KEY_FOUND;
}

static ja_key_status key_from_header(const ja_order_spec *spec,
                                     const amqp_basic_properties_t *props, char *key,
                                     size_t *key_len)
{
    const amqp_field_value_t *value =
        ja_amqp_headers_find(props, spec->text + spec->part_at[0], spec->part_len[0]);
    return value ? key_from_field(value, key, key_len) : JA_KEY_MISSING;
}

ja_key_status ja_order_key_of(const ja_order_spec *spec, const void *body, size_t body_len,
                              const amqp_basic_properties_t *props, char key[JA_ORDER_KEY_MAX],
                              size_t *key_len)
{
    *key_len = 0;
    switch (spec->source) {
    case JA_ORDER_BY_BODY:
        return key_from_body(spec, body, body_len, key, key_len);
    case JA_ORDER_BY_HEADER:
        return key_from_header(spec, props, key, key_len);
    default:
        return JA_KEY_MISSING;
    }
}

const char *ja_order_key_status_name(ja_key_status status)
{
    switch (status) {
    case JA_KEY_FOUND:
        return "found";
    case JA_KEY_MISSING:
        return "missing";
    case JA_KEY_NOT_SCALAR:
        return "not_scalar";
    case JA_KEY_TOO_LONG:
        return "too_long";
    default:
        return "unknown";
    }
}
