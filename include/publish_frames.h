#ifndef JA_PUBLISH_FRAMES_H
#define JA_PUBLISH_FRAMES_H

#include "buffer.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The frames of basic.publish, built by the service itself so that every publish of a pass goes
 * out in one send() on a plain-TCP connection: rabbitmq-c 0.11 sends the method, the content
 * header and each body frame with a send() of their own (three or more system calls per
 * publish, each reading the clock for its heartbeat bookkeeping). The encoding of the method
 * and the properties is still rabbitmq-c's (amqp_encode_method, amqp_encode_properties); only the
 * framing around it is here. With TLS the publisher keeps using amqp_basic_publish.
 *
 * Pure: a buffer owned by the publisher (buffer.h), no I/O. */

/* Appends the frames of one publish (method, content header, body split at frame_max).
 * Returns 0; -EMSGSIZE when the properties do not fit in one frame (nothing is
 * appended: rabbitmq-c would have sent the method frame alone, breaking the connection's
 * framing); -ENOMEM. */
int ja_publish_frames_append(ja_buffer *buffer, amqp_channel_t channel, uint32_t frame_max,
                             amqp_bytes_t exchange, amqp_bytes_t routing_key, bool mandatory,
                             const amqp_basic_properties_t *properties, amqp_bytes_t body);

/* What the broker last said of blocking in bytes peeked from the socket, unread by rabbitmq-c:
 * RabbitMQ sends connection.blocked and then stops reading a publishing connection, so a
 * publisher whose write cannot finish looks for it without reading (rabbitmq-c may send a
 * heartbeat while it reads, which must not land inside a half-written frame). The bytes may start
 * inside a frame whose beginning rabbitmq-c already holds, so the frames are found by their
 * exact bytes, not by walking frame headers. */
typedef enum {
    JA_PEEK_NOTHING,   /* neither frame is there */
    JA_PEEK_BLOCKED,   /* connection.blocked, not followed by connection.unblocked */
    JA_PEEK_UNBLOCKED, /* connection.unblocked last */
} ja_peek_blocking;

ja_peek_blocking ja_publish_frames_peek_blocking(const uint8_t *bytes, size_t len);

#endif
