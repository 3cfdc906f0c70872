#include "outbound_message.h"

#include "amqp_headers.h"
#include "delivery_limit.h"
#include "validate.h"

#include <amqp_framing.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define APP_ID "jube-amqp"

static bool key_is(amqp_bytes_t key, const char *name)
{
    return ja_amqp_headers_key_is(key, name, strlen(name));
}

/* Headers never copied from the inbound message: x-jube-* are the service's own (an inbound copy
 * would be stale or forged), and CC and BCC would add destinations to the publish
 * (sender-selected distribution: a producer could route replies into any queue, and a CC that is
 * not an array of strings makes the broker close the channel). A response also replaces the
 * model header with the validated, lower-case GUID; a renewal drops the broker's counts of the
 * old delivery, so the copy starts afresh. */
typedef enum { COPY_FOR_RESPONSE, COPY_FOR_DEAD_LETTER, COPY_FOR_RENEWAL } copy_purpose;

static bool is_replaced(amqp_bytes_t key, copy_purpose purpose)
{
    return (key.len >= 7 && memcmp(key.bytes, "x-jube-", 7) == 0) || key_is(key, "CC") ||
           key_is(key, "BCC") || (purpose == COPY_FOR_RESPONSE && key_is(key, JA_MODEL_HEADER)) ||
           (purpose == COPY_FOR_RENEWAL &&
            (key_is(key, JA_DELIVERY_COUNT_HEADER) || key_is(key, JA_ACQUIRED_COUNT_HEADER)));
}

/* Copies the inbound headers (none when bare), less those replaced, and leaves room for `extra`
 * more. */
static int copy_inbound_headers(const ja_job *job, ja_header_scratch *scratch, size_t extra,
                                copy_purpose purpose, bool bare, amqp_table_t *out)
{
    const amqp_basic_properties_t *in = &job->envelope.message.properties;
    size_t inbound =
        (in->_flags & AMQP_BASIC_HEADERS_FLAG) && !bare ? (size_t)in->headers.num_entries : 0;
    scratch->entries.len = 0;
    if (ja_buffer_reserve(&scratch->entries, (inbound + extra) * sizeof(amqp_table_entry_t)) != 0)
        return -ENOMEM;
    amqp_table_entry_t *entries = (amqp_table_entry_t *)(void *)scratch->entries.data;
    size_t n = 0;
    for (size_t i = 0; i < inbound; i++) {
        if (!is_replaced(in->headers.entries[i].key, purpose))
            entries[n++] = in->headers.entries[i];
    }
    out->entries = entries;
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

static void add_long(amqp_table_t *table, const char *key, uint64_t value)
{
    amqp_table_entry_t *e = &table->entries[table->num_entries++];
    e->key = amqp_cstring_bytes(key);
    e->value.kind = AMQP_FIELD_KIND_I64;
    e->value.value.i64 = (int64_t)value;
}

int ja_outbound_message_response(const ja_job *job, ja_header_scratch *scratch,
                                 uint64_t publish_seq, amqp_basic_properties_t *props)
{
    const amqp_basic_properties_t *in = &job->envelope.message.properties;
    memset(props, 0, sizeof *props);
    if (copy_inbound_headers(job, scratch, 4, COPY_FOR_RESPONSE, false, &props->headers) != 0)
        return -ENOMEM;
    add_string(&props->headers, JA_MODEL_HEADER, job->model_guid);
    /* The answer was collected from Implicit Async's Callback endpoint, not the invoke. */
    if (job->instance_guid[0])
        add_string(&props->headers, "x-jube-implicit-async", "callback");
    add_int(&props->headers, "x-jube-http-status", job->http_status);
    add_long(&props->headers, JA_PUBLISH_SEQ_HEADER, publish_seq);

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

int ja_outbound_message_dead_letter(const ja_job *job, ja_header_scratch *scratch,
                                    uint64_t publish_seq, amqp_basic_properties_t *props)
{
    *props = job->envelope.message.properties;
    if (copy_inbound_headers(job, scratch, 7, COPY_FOR_DEAD_LETTER, job->publishing.bare,
                             &props->headers) != 0)
        return -ENOMEM;
    add_string(&props->headers, "x-jube-error", job->failure.code);
    add_string(&props->headers, "x-jube-error-detail", job->failure.detail);
    add_int(&props->headers, "x-jube-http-status", job->http_status);
    add_int(&props->headers, "x-jube-attempts", job->attempts);
    add_long(&props->headers, JA_PUBLISH_SEQ_HEADER, publish_seq);
    if (job->body_size > job->envelope.message.body.len)
        add_long(&props->headers, "x-jube-body-size", job->body_size);
    /* With --order-by: the key this dead letter stopped holding up. */
    if (job->ordered) {
        amqp_table_entry_t *e = &props->headers.entries[props->headers.num_entries++];
        e->key = amqp_cstring_bytes("x-jube-order-key");
        e->value.kind = AMQP_FIELD_KIND_UTF8;
        e->value.value.bytes =
            (amqp_bytes_t){.len = job->order_key_len, .bytes = (void *)job->order_key};
    }

    /* RabbitMQ checks user_id against the publishing connection's login and closes the channel
     * when they differ: the producer's user_id can never be published by this service. */
    props->_flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props->_flags &= ~(AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_USER_ID_FLAG);
    props->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    if (!(props->_flags & AMQP_BASIC_APP_ID_FLAG)) {
        props->_flags |= AMQP_BASIC_APP_ID_FLAG;
        props->app_id = amqp_cstring_bytes(APP_ID);
    }
    return 0;
}

int ja_outbound_message_renewal(const ja_job *job, ja_header_scratch *scratch, uint64_t publish_seq,
                                amqp_basic_properties_t *props)
{
    *props = job->envelope.message.properties;
    if (copy_inbound_headers(job, scratch, 2, COPY_FOR_RENEWAL, false, &props->headers) != 0)
        return -ENOMEM;
    add_int(&props->headers, JA_RENEWALS_HEADER,
            job->renewals < INT32_MAX ? (int)job->renewals + 1 : INT32_MAX);
    add_long(&props->headers, JA_PUBLISH_SEQ_HEADER, publish_seq);
    /* The producer's user_id is refused from this connection's login (see above); the copy is
     * stored as durably as the service's own publishes. */
    props->_flags |= AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
    props->_flags &= ~AMQP_BASIC_USER_ID_FLAG;
    props->delivery_mode = AMQP_DELIVERY_PERSISTENT;
    return 0;
}

bool ja_outbound_message_is_direct_reply_to(amqp_bytes_t reply_to)
{
    static const char prefix[] = "amq.rabbitmq.reply-to";
    return reply_to.len >= sizeof prefix - 1 &&
           memcmp(reply_to.bytes, prefix, sizeof prefix - 1) == 0;
}

void ja_outbound_message_scratch_free(ja_header_scratch *scratch)
{
    ja_buffer_free(&scratch->entries);
}

bool ja_outbound_message_fits(const amqp_basic_properties_t *props, uint32_t frame_max,
                              amqp_bytes_t scratch)
{
    /* A frame is 7 bytes of frame header and 1 of end marker around the payload, and a content
     * header's payload starts with class, weight and body size (12 bytes). */
    size_t room = frame_max > 20 ? frame_max - 20 : 0;
    amqp_bytes_t into = {.len = room < scratch.len ? room : scratch.len, .bytes = scratch.bytes};
    return amqp_encode_properties(AMQP_BASIC_CLASS, (void *)props, into) >= 0;
}
