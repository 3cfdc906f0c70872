#ifndef JA_BACKOFF_H
#define JA_BACKOFF_H

#include <stdint.h>
#include <time.h>

/* How long to wait before trying again: calls to Jube, publishes the broker refused, polls of
 * Jube's Callback endpoint, reconnections. One policy for all of them. */

/* The delay before attempt number `attempt` (1 for the first retry): exponential from base_ms,
 * capped at max_ms, with equal jitter (half fixed, half random) so that many workers never
 * retry in step. rng is the caller's own xorshift state, never 0. */
uint64_t ja_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint64_t *rng);

/* The delay honouring a server's Retry-After (retry_after_ms, or -1 when it sent none): the
 * longer of the two, never past max_ms. */
uint64_t ja_backoff_with_retry_after(uint64_t delay_ms, int64_t retry_after_ms, uint64_t max_ms);

/* Parses a Retry-After header value (seconds, or an HTTP date relative to now). Returns the
 * delay in milliseconds, or -1 when the value is neither. */
int64_t ja_backoff_retry_after_ms(const char *value, time_t now);

#endif
