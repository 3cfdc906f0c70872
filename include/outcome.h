#ifndef JA_OUTCOME_H
#define JA_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What a worker does with the answer Jube gave (or did not give) for one message. */
typedef enum {
    JA_OUTCOME_SUCCESS,       /* 2xx with a body: publish it */
    JA_OUTCOME_MESSAGE_FAULT, /* Jube rejected this message: dead-letter it now */
    JA_OUTCOME_UNAVAILABLE,   /* Jube cannot answer now: retry without limit, backing off */
    JA_OUTCOME_SERVER_ERROR,  /* Jube failed on this message: retry up to --max-attempts */
} ja_outcome;

/* transport_ok is false when no HTTP answer arrived (refused, reset, timed out). */
ja_outcome ja_outcome_classify(bool transport_ok, long http_status, size_t body_len);

const char *ja_outcome_name(ja_outcome outcome);

/* The delay before attempt number `attempt` (1 for the first retry): exponential from base_ms,
 * capped at max_ms, with equal jitter (half fixed, half random) so that many workers never
 * retry in step. rng is the caller's own xorshift state, never 0. */
uint64_t ja_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint64_t *rng);

/* Parses a Retry-After header value (seconds, or an HTTP date relative to now). Returns the
 * delay in milliseconds, or -1 when the value is neither. */
int64_t ja_retry_after_ms(const char *value, time_t now);

#endif
