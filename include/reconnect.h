#ifndef JA_RECONNECT_H
#define JA_RECONNECT_H

#include "config.h"

#include <stdint.h>

/* The reconnection policy shared by the consumer and the publisher: jittered exponential backoff
 * from --reconnect-base-ms to --reconnect-max-ms, and one log line per change of state (lost,
 * still failing for a new reason, connected again), never one per attempt. */

typedef struct {
    const char *who;   /* "consumer" or "publisher", for the log */
    unsigned failures; /* attempts since the last connection that lasted */
    uint64_t down_since_ms;
    uint64_t up_since_ms; /* of the current connection */
    char last_error[512];
    uint64_t rng;
} ja_reconnect;

void ja_reconnect_init(ja_reconnect *r, const char *who, uint64_t seed);

/* Records a failed attempt and returns how long to wait before the next one. */
uint64_t ja_reconnect_failed(ja_reconnect *r, const ja_config *cfg, const char *error);

/* Records a successful connection, logging how long the outage lasted if there was one. */
void ja_reconnect_succeeded(ja_reconnect *r, const ja_config *cfg);

/* A connection that lasted at least this long ends a series of failures. */
#define JA_RECONNECT_STABLE_MS 5000

/* Records that the current connection was lost. Returns how long to wait before connecting
 * again: 0 after a connection that lasted, else the next backoff step, so that a connection that
 * keeps dying right after it was made is not retried in a tight loop. */
uint64_t ja_reconnect_lost(ja_reconnect *r, const ja_config *cfg, uint64_t now);

#endif
