#ifndef JA_WORKER_BELL_H
#define JA_WORKER_BELL_H

#include <stdatomic.h>
#include <stdbool.h>

/* How the consumer wakes a worker thread that is waiting for work, without a system call when
 * every worker is busy.
 *
 * Each worker thread sleeps in one poll() over its HTTP sockets and its bell (an eventfd). Before
 * it sleeps with room for more calls it arms its bell, then looks at the ring once more; after
 * each push the consumer rings one armed bell, if any. Both sides put a sequentially consistent
 * fence between their store and their load, so either the worker finds the job or the consumer
 * finds the armed bell: a job is never left in the ring while every worker sleeps. */

typedef struct {
    int fd;
    atomic_bool armed;
} ja_worker_bell;

typedef struct {
    ja_worker_bell *bells;
    int count;
    atomic_int armed_count; /* lets the consumer skip the scan while every worker is busy */
    atomic_uint next;       /* where the next scan starts, so wake-ups are spread out */
} ja_worker_bells;

/* Returns 0 or a negative errno. */
int ja_worker_bells_init(ja_worker_bells *bells, int count);
void ja_worker_bells_destroy(ja_worker_bells *bells);

/* The worker's side: arm before the last look at the ring, disarm after waking. */
void ja_worker_bell_arm(ja_worker_bells *bells, int index);
void ja_worker_bell_disarm(ja_worker_bells *bells, int index);
/* Reads the bell's eventfd after poll() found it readable. */
void ja_worker_bell_clear(ja_worker_bells *bells, int index);
int ja_worker_bell_fd(const ja_worker_bells *bells, int index);

/* The consumer's side, after pushing a job: wakes one armed worker, if any. */
void ja_worker_bells_ring_one(ja_worker_bells *bells);

/* Wakes every worker whether armed or not, so each looks at the shared state again (shutdown,
 * a lost consumer connection). */
void ja_worker_bells_ring_all(ja_worker_bells *bells);

#endif
