#ifndef JA_OUTBOUND_MESSAGE_H
#define JA_OUTBOUND_MESSAGE_H

#include "buffer.h"
#include "job.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The properties and headers of what the publisher sends: Jube's response, or a dead letter.
 * Both keep the inbound message's headers and add the service's own. The result points into
 * the job and into the scratch table, and is valid until either changes. */

/* Carries the confirm sequence number of a publish, so that a basic.return (which names no
 * sequence number) can be matched to the publish it returns. */
#define JA_PUBLISH_SEQ_HEADER "x-jube-publish-seq"

/* The table of headers being built (amqp_table_entry_t items), kept between publishes. */
typedef struct {
    ja_buffer entries;
} ja_header_scratch;

/* Response: content type application/json, persistent, the inbound correlation_id, message_id
 * and headers (less CC and BCC), plus EntityAnalysisModelGuid, x-jube-http-status,
 * x-jube-publish-seq and, for an answer collected after an Implicit Async placeholder,
 * x-jube-implicit-async: callback. Returns 0 or -ENOMEM. */
int ja_outbound_message_response(const ja_job *job, ja_header_scratch *scratch,
                                 uint64_t publish_seq, amqp_basic_properties_t *props);

/* Dead letter: the inbound properties (without an expiration, which would silently drop it, and
 * without user_id, which the broker would refuse), persistent, the inbound headers (less CC and
 * BCC; none at all once job->publishing.bare), plus x-jube-error, x-jube-error-detail,
 * x-jube-http-status, x-jube-attempts, x-jube-publish-seq and, for a body cut at
 * --max-body-bytes, x-jube-body-size. Returns 0 or -ENOMEM. */
int ja_outbound_message_dead_letter(const ja_job *job, ja_header_scratch *scratch,
                                    uint64_t publish_seq, amqp_basic_properties_t *props);

/* Renewal (delivery_limit.h): the inbound message again, as the producer sent it (less user_id,
 * which the broker would refuse), persistent, its headers less the broker's x-delivery-count and
 * x-acquired-count (and CC, BCC, x-jube-*), plus x-jube-renewals (one more than it carried) and
 * x-jube-publish-seq. Returns 0 or -ENOMEM. */
int ja_outbound_message_renewal(const ja_job *job, ja_header_scratch *scratch, uint64_t publish_seq,
                                amqp_basic_properties_t *props);

/* True when a reply_to names RabbitMQ's direct reply-to (amq.rabbitmq.reply-to...): replies to it
 * reach the requester's channel without a queue. */
bool ja_outbound_message_is_direct_reply_to(amqp_bytes_t reply_to);

/* True when props fit in one content-header frame of a connection with this frame_max; scratch
 * must hold frame_max bytes. */
bool ja_outbound_message_fits(const amqp_basic_properties_t *props, uint32_t frame_max,
                              amqp_bytes_t scratch);

void ja_outbound_message_scratch_free(ja_header_scratch *scratch);

#endif
