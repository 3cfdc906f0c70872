#include "outbound_message.h"

#include "validate.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define APP_ID "jube-amqp"

static bool key_is(amqp_bytes_t key, const char *name)
{
    return key.len == strlen(name) && memcmp(key.bytes, name, key.len) == 0;
}

/* x-jube-* headers are the service's own; an inbound copy would be stale or forged. A response
 * also replaces the model header with the validated, lower-case GUID. */
static bool is_replaced(amqp_bytes_t key, bool replace_model_header)
{
    return (key.len >= 7 && memcmp(key.bytes, "x-jube-", 7) == 0) ||
           (replace_model_header && key_is(key, JA_MODEL_HEADER));
}

/* Copies the inbound headers, less those replaced, and leaves room for `extra` more. */
static int copy_inbound_headers(const ja_job *job, ja_header_scratch *scratch, size_t extra,
                                bool replace_model_header, amqp_table_t *out)
{
    const amqp_basic_properties_t *in = &job->envelope.message.properties;
    size_t inbound = (in->_flags & AMQP_BASIC_HEADERS_FLAG) ? (size_t)in->headers.num_entries : 0;
    if (inbound + extra > scratch->capacity) {
        size_t capacity = inbound + extra + 8;
        amqp_table_entry_t *grown = realloc(scratch->entries, capacity * sizeof *grown);
        if (!grown)
            return -ENOMEM;
        scratch->entries = grown;
        scratch->capacity = capacity;
    }
    size_t n = 0;
    for (size_t i = 0; i < inbound; i++) {
        if (!is_replaced(in->headers.entries[i].key, replace_model_header))
            scratch->entries[n++] = in->headers.entries[i];
    }
    out->entries = scratch->entries;
    out->num_entries = (int)n;
    return 0;
}

static void add_string(amqp_table_t *table, const char *key, const char *value)
{
    amqp_table_entry_t *e = &table->entries[table->num_entries++];
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_UTF8;
    e->value.value.bytes = amqp_cstring_bytes(value);
}

static void add_int(amqp_table_t *table, const char *key, int value)
{
    amqp_table_entry_t *e = &table->entries[table->num_entries++];
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_I32;
    e->value.value.i32 = value;
}

int ja_response_properties(const ja_job *job, ja_header_scratch *scratch,
                           amqp_basic_properties_t *props)
{
    const amqp_basic_properties_t *in = &job->envelope.message.properties;
    memset(props, 0, sizeof *props);
    if (copy_inbound_headers(job, scratch, 2, true, &props->headers) != 0)
        return -ENOMEM;
    add_string(&props->headers, JA_MODEL_HEADER, job->model_guid);
    add_int(&props->headers, "x-jube-http-status", job->http_status);

    props->_flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                    AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_APP_ID_FLAG;
    props->content_type = amqp_cstring_bytes("application/json");
    props->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    props->app_id = amqp_cstring_bytes(APP_ID);
    if (in->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
        props->_flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
        props->correlation_id = in->correlation_id;
    }
    if (in->_flags & AMQP_BASIC_MESSAGE_ID_FLAG) {
        props->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
        props->message_id = in->message_id;
    }
    return 0;
}

int ja_dead_letter_properties(const ja_job *job, ja_header_scratch *scratch,
                              amqp_basic_properties_t *props)
{
    *props = job->envelope.message.properties;
    if (copy_inbound_headers(job, scratch, 4, false, &props->headers) != 0)
        return -ENOMEM;
    add_string(&props->headers, "x-jube-error", job->failure.code);
    add_string(&props->headers, "x-jube-error-detail", job->failure.detail);
    add_int(&props->headers, "x-jube-http-status", job->http_status);
    add_int(&props->headers, "x-jube-attempts", job->attempts);

    props->_flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props->_flags &= ~AMQP_BASIC_EXPIRATION_FLAG;
    props->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (!(props->_flags & AMQP_BASIC_APP_ID_FLAG)) {
        props->_flags |= AMQP_BASIC_APP_ID_FLAG;
        props->app_id = amqp_cstring_bytes(APP_ID);
    }
    return 0;
}

void ja_header_scratch_free(ja_header_scratch *scratch)
{
    free(scratch->entries);
    scratch->entries = NULL;
    scratch->capacity = 0;
}
