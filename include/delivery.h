#ifndef JA_DELIVERY_H
#define JA_DELIVERY_H

#include "watchdog.h"

#include <amqp.h>
#include <stddef.h>
#include <stdint.h>

/* Reads one delivery on the consumer's connection with bounded memory. rabbitmq-c's
 * amqp_consume_message allocates whatever body size the content header announces before reading
 * it (RabbitMQ accepts up to 128 MiB by default), so a burst of large messages could hold
 * gigabytes. This reads the header first and keeps at most max_body bytes of the body; the rest
 * is read frame by frame (at most frame_max bytes each) and let go. */

typedef enum {
    JA_DELIVERY_READ,   /* *out holds the delivery */
    JA_DELIVERY_CLOSED, /* instead of its frames the broker closed the channel or the connection:
                           the method is in *closed for the caller to handle */
    JA_DELIVERY_BROKEN, /* the connection failed or broke the protocol; *status is the
                           AMQP_STATUS_* that says how, for the log */
} ja_delivery_result;

/* Reads the content header and body frames that follow the basic.deliver frame `deliver` (whose
 * decoded method is not valid afterwards: take its delivery tag first), waiting at most
 * timeout_ms for each, and telling `watch` (may be NULL) of the progress each frame is, so a
 * large body arriving slowly is not taken for a stuck connection. Fills *out (freed with
 * amqp_destroy_envelope) and *body_size (the size announced; out->message.body holds at most
 * max_body bytes of it). Running out of memory ends the process (oom.h). */
ja_delivery_result ja_delivery_read(amqp_connection_state_t conn, const amqp_frame_t *deliver,
                                    size_t max_body, int timeout_ms, ja_watched_connection *watch,
                                    amqp_envelope_t *out, uint64_t *body_size,
                                    amqp_method_t *closed, int *status);

#endif
