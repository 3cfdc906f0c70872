#ifndef JA_CLOCK_H
#define JA_CLOCK_H

#include <stdint.h>

/* The service's one clock: monotonic, so a change of the wall clock never stretches a backoff or
 * a time-out. Pure modules never read it; their callers pass the time in. */

/* Milliseconds on the monotonic clock. */
uint64_t ja_clock_ms(void);
/* Microseconds on the same clock. */
uint64_t ja_clock_us(void);

#endif
