#include "delivery.h"

#include "clock.h"
#include "job.h"
#include "oom.h"

#include <amqp_framing.h>
#include <stdbool.h>
#include <string.h>
#include <sys/time.h>

static int wait_frame(amqp_connection_state_t conn, int timeout_ms, amqp_frame_t *frame)
{
    struct timeval timeout = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return amqp_simple_wait_frame_noblock(conn, frame, &timeout);
}

/* A frame that is neither the next part of the delivery nor a close breaks the protocol. */
static ja_delivery_result unexpected(const amqp_frame_t *frame, amqp_method_t *closed, int *status)
{
    if (frame->frame_type == AMQP_FRAME_METHOD &&
        (frame->payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
         frame->payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        *closed = frame->payload.method;
        return JA_DELIVERY_CLOSED;
    }
    *status = AMQP_STATUS_UNEXPECTED_STATE;
    return JA_DELIVERY_BROKEN;
}

static void copy_bytes(amqp_pool_t *pool, amqp_bytes_t *b)
{
    if (b->len == 0)
        return;
    amqp_bytes_t copy;
    amqp_pool_alloc_bytes(pool, b->len, &copy);
    if (!copy.bytes)
        ja_oom("reading a delivery");
    memcpy(copy.bytes, b->bytes, b->len);
    *b = copy;
}

/* The frame's properties live in the connection's buffers; the envelope gets its own copy in
 * its pool (as amqp_read_message does, whose clone rabbitmq-c does not export). */
static void clone_properties(const amqp_basic_properties_t *in, amqp_basic_properties_t *out,
                             amqp_pool_t *pool)
{
    /* Fields whose flag is off are not decoded, and may hold anything. */
    *out = *in;
    const struct {
        amqp_flags_t flag;
        amqp_bytes_t *field;
    } strings[] = {
        {AMQP_BASIC_CONTENT_TYPE_FLAG, &out->content_type},
        {AMQP_BASIC_CONTENT_ENCODING_FLAG, &out->content_encoding},
        {AMQP_BASIC_CORRELATION_ID_FLAG, &out->correlation_id},
        {AMQP_BASIC_REPLY_TO_FLAG, &out->reply_to},
        {AMQP_BASIC_EXPIRATION_FLAG, &out->expiration},
        {AMQP_BASIC_MESSAGE_ID_FLAG, &out->message_id},
        {AMQP_BASIC_TYPE_FLAG, &out->type},
        {AMQP_BASIC_USER_ID_FLAG, &out->user_id},
        {AMQP_BASIC_APP_ID_FLAG, &out->app_id},
        {AMQP_BASIC_CLUSTER_ID_FLAG, &out->cluster_id},
    };
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if (in->_flags & strings[i].flag)
            copy_bytes(pool, strings[i].field);
    }
    if ((in->_flags & AMQP_BASIC_HEADERS_FLAG) &&
        amqp_table_clone(&in->headers, &out->headers, pool) != AMQP_STATUS_OK)
        ja_oom("reading a delivery");
}

ja_delivery_result ja_delivery_read(amqp_connection_state_t conn, const amqp_frame_t *deliver,
                                    size_t max_body, int timeout_ms, ja_watched_connection *watch,
                                    amqp_envelope_t *out, uint64_t *body_size,
                                    amqp_method_t *closed, int *status)
{
    const amqp_basic_deliver_t *d = deliver->payload.method.decoded;
    memset(out, 0, sizeof *out);
    out->channel = deliver->channel;
    out->delivery_tag = d->delivery_tag;
    out->redelivered = d->redelivered;
    out->consumer_tag = amqp_bytes_malloc_dup(d->consumer_tag);
    out->exchange = amqp_bytes_malloc_dup(d->exchange);
    out->routing_key = amqp_bytes_malloc_dup(d->routing_key);
    init_amqp_pool(&out->message.pool, 4096);
    if ((d->consumer_tag.len && !out->consumer_tag.bytes) ||
        (d->exchange.len && !out->exchange.bytes) ||
        (d->routing_key.len && !out->routing_key.bytes))
        ja_oom("reading a delivery");

    amqp_frame_t frame;
    *status = wait_frame(conn, timeout_ms, &frame);
    if (*status != AMQP_STATUS_OK) {
        amqp_destroy_envelope(out);
        return JA_DELIVERY_BROKEN;
    }
    if (frame.frame_type != AMQP_FRAME_HEADER) {
        amqp_destroy_envelope(out);
        return unexpected(&frame, closed, status);
    }
    *body_size = frame.payload.properties.body_size;
    clone_properties(frame.payload.properties.decoded, &out->message.properties,
                     &out->message.pool);
    size_t keep = *body_size < max_body ? (size_t)*body_size : max_body;
    if (keep > 0) {
        out->message.body = amqp_bytes_malloc(keep);
        if (!out->message.body.bytes)
            ja_oom("reading a delivery");
    }
    uint64_t read = 0;
    while (read < *body_size) {
        *status = wait_frame(conn, timeout_ms, &frame);
        if (*status != AMQP_STATUS_OK) {
            amqp_destroy_envelope(out);
            return JA_DELIVERY_BROKEN;
        }
        if (frame.frame_type != AMQP_FRAME_BODY) {
            amqp_destroy_envelope(out);
            return unexpected(&frame, closed, status);
        }
        size_t len = frame.payload.body_fragment.len;
        if (read + len > *body_size) {
            amqp_destroy_envelope(out);
            *status = AMQP_STATUS_BAD_AMQP_DATA;
            return JA_DELIVERY_BROKEN;
        }
        if (read < keep) {
            size_t part = keep - read < len ? (size_t)(keep - read) : len;
            memcpy((char *)out->message.body.bytes + read, frame.payload.body_fragment.bytes, part);
        }
        read += len;
        if (watch)
            ja_watchdog_busy(watch, ja_clock_ms());
        /* Frames already passed on are not needed again: let the library reuse their memory. */
        amqp_maybe_release_buffers_on_channel(conn, deliver->channel);
    }
    return JA_DELIVERY_READ;
}
