#ifndef JA_OUTBOUND_MESSAGE_H
#define JA_OUTBOUND_MESSAGE_H

#include "job.h"

#include <amqp.h>
#include <stddef.h>

/* The properties and headers of what the publisher sends: Jube's response, or a dead letter.
 * Both keep the inbound message's headers and add the service's own. The result points into
 * the job and into the scratch table, and is valid until either changes. */

typedef struct {
    amqp_table_entry_t *entries;
    size_t capacity;
} ja_header_scratch;

/* Response: content type application/json, persistent, the inbound correlation_id, message_id
 * and headers, plus EntityAnalysisModelGuid and x-jube-http-status. Returns 0 or -ENOMEM. */
int ja_response_properties(const ja_job *job, ja_header_scratch *scratch,
                           amqp_basic_properties_t *props);

/* Dead letter: the inbound properties (without an expiration, which would silently drop it),
 * persistent, plus x-jube-error, x-jube-error-detail, x-jube-http-status and x-jube-attempts.
 * Returns 0 or -ENOMEM. */
int ja_dead_letter_properties(const ja_job *job, ja_header_scratch *scratch,
                              amqp_basic_properties_t *props);

void ja_header_scratch_free(ja_header_scratch *scratch);

#endif
