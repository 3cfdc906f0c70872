#ifndef JA_JUBE_LIMIT_H
#define JA_JUBE_LIMIT_H

#include "concurrency_limit.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* The concurrency limit (concurrency_limit.h) shared by the worker threads: each answer is a
 * sample under a lock (a few per millisecond at most), and the current limit is an atomic every
 * thread reads to take its share (ja_concurrency_limit_share). Changes go to the metrics, and to
 * the log when the limit has moved by a factor of two since it was last logged. */

typedef struct {
    pthread_mutex_t lock;
    ja_concurrency_limit limit; /* guarded by lock */
    int logged;                 /* the limit last logged; guarded by lock */
    atomic_int current;         /* the limit, read without the lock */
    atomic_int calls;           /* calls to Jube under way, in every thread */
} ja_jube_limit;

/* The calls to Jube that may be under way now, in all threads (read without the lock). */
static inline int ja_jube_limit_current(ja_jube_limit *l)
{
    return atomic_load_explicit(&l->current, memory_order_relaxed);
}

/* A call starts: returns the calls under way with it, in every thread (its sample's load). */
static inline int ja_jube_limit_call_started(ja_jube_limit *l)
{
    return atomic_fetch_add(&l->calls, 1) + 1;
}

static inline void ja_jube_limit_call_ended(ja_jube_limit *l)
{
    atomic_fetch_sub(&l->calls, 1);
}

/* adaptive: --concurrency adaptive; ceiling: --workers; floor: the least it falls to. */
void ja_jube_limit_init(ja_jube_limit *l, bool adaptive, int floor, int ceiling);
void ja_jube_limit_destroy(ja_jube_limit *l);

/* One invoke's answer (see ja_concurrency_limit_sample). Returns true when the limit grew: the
 * caller wakes the worker threads, whose shares grew with it. */
bool ja_jube_limit_sample(ja_jube_limit *l, uint64_t rtt_us, bool overload, int in_flight);

/* Jube is out (a probe failed), or answers again after that. */
void ja_jube_limit_outage(ja_jube_limit *l);
void ja_jube_limit_recovered(ja_jube_limit *l);

#endif
