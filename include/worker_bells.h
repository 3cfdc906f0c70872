#ifndef JA_WORKER_BELLS_H
#define JA_WORKER_BELLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* How the consumer wakes a worker thread that is waiting for work, without a system call when
 * a worker is awake to take it.
 *
 * Each worker thread sleeps in one poll() over its HTTP sockets and its bell (an eventfd). Before
 * it sleeps it counts itself out of the awake workers; with room for more calls it has armed its
 * bell before that, and then looks at the ring once more; without room, it rings another armed
 * bell if jobs wait in the ring (they are someone else's now). After each push the consumer rings
 * the lowest armed bell, unless a worker is awake and few jobs wait: that worker takes them before
 * it sleeps. So while one thread keeps up it carries the calls, waking once for many of them, and
 * a second is woken only when jobs pile up. Both sides put a sequentially consistent fence between
 * their store and their load, so either the worker finds the job or the consumer finds it asleep:
 * a job is never left in the ring while every worker with room sleeps. */

typedef struct {
    int fd;
    atomic_bool armed;
} ja_worker_bell;

typedef struct {
    ja_worker_bell *bells;
    int count;
    atomic_int armed_count; /* lets the consumer skip the scan while every worker is busy */
    atomic_int awake;       /* worker threads not asleep in poll() */
} ja_worker_bells;

/* Jobs waiting in the ring from which the consumer wakes a worker even while one is awake. */
#define JA_BELL_BACKLOG 4

/* Returns 0 or a negative errno. */
int ja_worker_bells_init(ja_worker_bells *bells, int count);
void ja_worker_bells_destroy(ja_worker_bells *bells);

/* The worker's side: arm (with room for more calls), count itself asleep, look at the ring once
 * more; after waking count itself awake and disarm. */
void ja_worker_bells_arm(ja_worker_bells *bells, int index);
void ja_worker_bells_disarm(ja_worker_bells *bells, int index);
void ja_worker_bells_falling_asleep(ja_worker_bells *bells);
void ja_worker_bells_woke(ja_worker_bells *bells);
/* Reads the bell's eventfd after poll() found it readable. */
void ja_worker_bells_clear(ja_worker_bells *bells, int index);
int ja_worker_bells_fd(const ja_worker_bells *bells, int index);

/* The consumer's side, after pushing a job (waiting: the ring's depth after the push): wakes the
 * lowest armed worker, unless one is awake and fewer than JA_BELL_BACKLOG jobs wait. */
void ja_worker_bells_work_added(ja_worker_bells *bells, size_t waiting);

/* Wakes the lowest armed worker, if any: a worker going to sleep without room hands it the jobs
 * in the ring. */
void ja_worker_bells_ring_one(ja_worker_bells *bells);

/* Wakes every worker whether armed or not, so each looks at the shared state again (shutdown,
 * a lost consumer connection). */
void ja_worker_bells_ring_all(ja_worker_bells *bells);

#endif
