#ifndef JA_RECONNECT_H
#define JA_RECONNECT_H

#include "config.h"

#include <stdint.h>

/* The reconnection policy shared by the consumer and the publisher: jittered exponential backoff
 * from --reconnect-base-ms to --reconnect-max-ms, and one log line per change of state (lost,
 * still failing for a new reason, connected again), never one per attempt. */

typedef struct {
    const char *who; /* "consumer" or "publisher", for the log */
    unsigned failures;
    uint64_t down_since_ms;
    char last_error[512];
    uint64_t rng;
} ja_reconnect;

void ja_reconnect_init(ja_reconnect *r, const char *who, uint64_t seed);

/* Records a failed attempt and returns how long to wait before the next one. */
uint64_t ja_reconnect_failed(ja_reconnect *r, const ja_config *cfg, const char *error);

/* Records a successful connection, logging how long the outage lasted if there was one. */
void ja_reconnect_succeeded(ja_reconnect *r, const ja_config *cfg);

#endif
