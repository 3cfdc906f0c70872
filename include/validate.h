#ifndef JA_VALIDATE_H
#define JA_VALIDATE_H

#include "job.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Checks a delivery before anything of it goes near a URL or Jube. Each check returns true, or
 * false with the failure (code and detail, naming the offending value) filled in. */

#define JA_MODEL_HEADER "EntityAnalysisModelGuid"

/* True for 8-4-4-4-12 hexadecimal digits, either case. */
bool ja_validate_guid(const char *s, size_t len);

/* Finds the EntityAnalysisModelGuid header (an AMQP long string 'S' or byte array 'x'), checks
 * it is a GUID and writes it in lower case to guid. */
bool ja_validate_model_header(const amqp_basic_properties_t *props, char guid[JA_GUID_LEN + 1],
                              ja_failure *why);

/* W3C trace context: "00-" 32 hex digits "-" 16 hex digits "-" 2 hex digits. */
#define JA_TRACEPARENT_LEN 55

/* Copies a valid W3C traceparent header (long string or byte array) into out, or leaves out
 * empty when there is none or it is malformed: trace context is best effort and never a
 * reason to refuse a message, and only a well-formed value may go into an HTTP header. */
void ja_validate_traceparent(const amqp_basic_properties_t *props,
                             char out[JA_TRACEPARENT_LEN + 1]);

/* Checks the body size the content header announced. The consumer keeps at most max_bytes of a
 * body (kept), so a larger one is dead-lettered with what was kept of it. */
bool ja_validate_body_size(uint64_t announced, size_t kept, size_t max_bytes, ja_failure *why);

/* Checks the body is not empty and one JSON object (RFC 8259). Its size is checked first, on
 * what the content header announced (ja_validate_body_size). */
bool ja_validate_body(const void *body, size_t len, ja_failure *why);

#endif
