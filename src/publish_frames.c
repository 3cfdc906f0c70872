#include "publish_frames.h"

#include <amqp_framing.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A frame: type (1), channel (2), payload size (4), payload, end marker (1). */
#define FRAME_HEADER_SIZE 7
#define FRAME_END         0xCE
/* A content header's payload before the properties: class, weight, body size. */
#define CONTENT_HEADER_FIXED 12

static void put16(uint8_t *at, uint16_t v)
{
    at[0] = (uint8_t)(v >> 8);
    at[1] = (uint8_t)v;
}

static void put32(uint8_t *at, uint32_t v)
{
    put16(at, (uint16_t)(v >> 16));
    put16(at + 2, (uint16_t)v);
}

static void put64(uint8_t *at, uint64_t v)
{
    put32(at, (uint32_t)(v >> 32));
    put32(at + 4, (uint32_t)v);
}

/* The payload of the next frame, written by the caller before it closes the frame. */
static uint8_t *next_payload(const ja_buffer *b)
{
    return (uint8_t *)b->data + b->len + FRAME_HEADER_SIZE;
}

/* Puts the header and the end marker around the size bytes of payload written at next_payload. */
static void close_frame(ja_buffer *b, uint8_t type, amqp_channel_t channel, size_t size)
{
    uint8_t *at = (uint8_t *)b->data + b->len;
    at[0] = type;
    put16(at + 1, channel);
    put32(at + 3, (uint32_t)size);
    b->len += FRAME_HEADER_SIZE + size;
    b->data[b->len++] = (char)FRAME_END;
}

int ja_publish_frames_append(ja_buffer *b, amqp_channel_t channel, uint32_t frame_max,
                             amqp_bytes_t exchange, amqp_bytes_t routing_key, bool mandatory,
                             const amqp_basic_properties_t *properties, amqp_bytes_t body)
{
    size_t max_payload = frame_max - FRAME_HEADER_SIZE - 1;
    size_t start = b->len;
    /* The method and the header each fit in a frame; reserving two whole frames keeps the
     * encoders' output within the buffer without measuring it first. */
    if (ja_buffer_reserve(b, 2 * (size_t)frame_max) != 0)
        return -ENOMEM;

    amqp_basic_publish_t method = {.ticket = 0,
                                   .exchange = exchange,
                                   .routing_key = routing_key,
                                   .mandatory = mandatory,
                                   .immediate = 0};
    uint8_t *payload = next_payload(b);
    put32(payload, AMQP_BASIC_PUBLISH_METHOD);
    int n = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &method,
                               (amqp_bytes_t){.len = max_payload - 4, .bytes = payload + 4});
    if (n < 0)
        return n;
    close_frame(b, AMQP_FRAME_METHOD, channel, (size_t)n + 4);

    payload = next_payload(b);
    put16(payload, AMQP_BASIC_CLASS);
    put16(payload + 2, 0); /* weight */
    put64(payload + 4, body.len);
    n = amqp_encode_properties(AMQP_BASIC_CLASS, (void *)properties,
                               (amqp_bytes_t){.len = max_payload - CONTENT_HEADER_FIXED,
                                              .bytes = payload + CONTENT_HEADER_FIXED});
    if (n < 0) {
        b->len = start;
        return -EMSGSIZE;
    }
    close_frame(b, AMQP_FRAME_HEADER, channel, (size_t)n + CONTENT_HEADER_FIXED);

    size_t frames = (body.len + max_payload - 1) / max_payload;
    if (ja_buffer_reserve(b, body.len + frames * (FRAME_HEADER_SIZE + 1)) != 0) {
        b->len = start;
        return -ENOMEM;
    }
    for (size_t offset = 0; offset < body.len; offset += max_payload) {
        size_t size = body.len - offset < max_payload ? body.len - offset : max_payload;
        memcpy(next_payload(b), (const uint8_t *)body.bytes + offset, size);
        close_frame(b, AMQP_FRAME_BODY, channel, size);
    }
    return 0;
}

ja_peek_blocking ja_publish_frames_peek_blocking(const uint8_t *bytes, size_t len)
{
    /* A method frame on channel 0 (type 1, channel 0, payload size), then class 10 and method
     * 60 (blocked, with a reason) or 61 (unblocked, a 4-byte payload and the frame end). */
    static const uint8_t method_on_channel_0[] = {AMQP_FRAME_METHOD, 0, 0};
    ja_peek_blocking last = JA_PEEK_NOTHING;
    for (size_t i = 0; i + 11 <= len; i++) {
        const uint8_t *f = bytes + i;
        if (memcmp(f, method_on_channel_0, 3) != 0 || f[7] != 0 || f[8] != 10 || f[9] != 0)
            continue;
        uint32_t size = (uint32_t)f[3] << 24 | (uint32_t)f[4] << 16 | (uint32_t)f[5] << 8 | f[6];
        if (f[10] == 60 && size >= 5)
            last = JA_PEEK_BLOCKED;
        else if (f[10] == 61 && size == 4 && i + 12 <= len && f[11] == AMQP_FRAME_END)
            last = JA_PEEK_UNBLOCKED;
    }
    return last;
}
