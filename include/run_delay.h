#ifndef JA_RUN_DELAY_H
#define JA_RUN_DELAY_H

#include <stdint.h>

/* How long the calling thread has waited to run after it became runnable: the kernel's
 * schedstat run_delay. On a machine whose cores are busy, a worker woken by Jube's answer may wait
 * a while before it runs; the adaptive limit takes that wait out of the round trip, which should
 * say how long Jube took, not how long the service took to notice (concurrency_limit.h).
 *
 * Linux only, and only where the kernel keeps schedstats for /proc; elsewhere no wait is seen. */

typedef struct {
    int fd; /* /proc/thread-self/schedstat of the thread that opened it, or -1 */
} ja_run_delay;

/* Opens the calling thread's counter; the other functions must be called by the same thread. */
void ja_run_delay_open(ja_run_delay *d);
void ja_run_delay_close(ja_run_delay *d);

/* The thread's wait so far, in microseconds (0 when it cannot be read). */
uint64_t ja_run_delay_us(const ja_run_delay *d);

#endif
