#ifndef JA_SERVICE_H
#define JA_SERVICE_H

#include "config.h"
#include "inbox.h"
#include "job.h"
#include "jube_limit.h"
#include "metrics.h"
#include "ring.h"
#include "watchdog.h"
#include "worker_bells.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* What the threads share. The path of a message, and the file that handles each step:
 *
 *   consumer.c  --ring-->  worker.c (x --worker-threads)  --to_publisher-->  publisher.c
 *       ^                       |                                 |
 *       +------to_consumer------+--------(confirmed)--------------+
 *
 * The consumer alone acks; it does so only when the job comes back through to_consumer. */
typedef struct ja_service {
    const ja_config *cfg;

    ja_ring *work;         /* consumer -> workers; capacity >= prefetch, so a push never fails */
    ja_worker_bells bells; /* one per worker thread: wakes it for new work or a change below */
    ja_inbox to_publisher; /* workers -> publisher: responses and dead letters to publish; and
                              consumer -> publisher: deliveries to renew (delivery_limit.h) */
    ja_inbox to_consumer;  /* publisher and workers -> consumer: jobs to ack, requeue or free */

    /* The consumer connection whose deliveries can still be acked; 0 while it is down. A job
     * from another generation can no longer be acked, so nobody spends work on it. */
    _Atomic uint64_t live_generation;

    atomic_bool stopping; /* shutdown requested: stop consuming, finish what is in flight */
    /* Once stopping: until when a message may still wait for its Implicit Async answer, leaving
     * time within --shutdown-timeout to dead-letter it if the answer does not come. */
    _Atomic uint64_t settle_by_ms;
    atomic_bool threads_exit; /* the consumer is done: workers and publisher may exit */
    atomic_bool consumer_done;
    atomic_bool jube_available; /* for logging the changes only */
    atomic_int exit_code;       /* set by ja_service_fail: the process ends with it */

    /* Calls to Jube that may be under way, shared out among the worker threads. */
    ja_jube_limit jube;

    /* The consumer's and the publisher's connections, watched by the main thread. */
    ja_watched_connection watch[JA_CONNECTIONS];

    /* Backoff sleeps end early when shutdown begins or the live generation changes. */
    pthread_mutex_t sleep_lock;
    pthread_cond_t sleep_changed;
} ja_service;

/* Returns 0 or a negative errno. */
int ja_service_init(ja_service *svc, const ja_config *cfg);

/* Frees the shared structures and any job still in them. Every thread must have exited. */
void ja_service_destroy(ja_service *svc);

/* What ends a ja_service_sleep early. */
typedef enum {
    JA_WAKE_ON_STOP, /* shutdown begins (or the threads are told to exit) */
    JA_WAKE_ON_EXIT, /* the threads are told to exit */
} ja_wake_on;

/* Sleeps up to ms milliseconds. Returns false when woken early: by wake_on, or because
 * generation is no longer live (pass 0 not to care). */
bool ja_service_sleep(ja_service *svc, uint64_t ms, ja_wake_on wake_on, uint64_t generation);

/* Ends every ja_service_sleep early, and wakes every worker thread, so each looks at the shared
 * state again. */
void ja_service_wake_sleepers(ja_service *svc);

bool ja_service_is_live(const ja_service *svc, uint64_t generation);

/* Exit statuses of the process. */
#define JA_EXIT_BAD_CONFIG   2 /* a setting a restart cannot fix */
#define JA_EXIT_BAD_TOPOLOGY JA_EXIT_BAD_CONFIG

/* A thread found something the service cannot run with (the reason is logged already): the main
 * thread ends the process with exit_code. */
void ja_service_fail(ja_service *svc, int exit_code);

/* Called by the consumer after each push to the ring. */
static inline void ja_service_work_pushed(ja_service *svc)
{
    ja_worker_bells_work_added(&svc->bells, ja_ring_depth(svc->work));
}

static inline void ja_service_to_publisher(ja_service *svc, ja_job *job)
{
    ja_inbox_push(&svc->to_publisher, &job->node);
}

static inline void ja_service_to_consumer(ja_service *svc, ja_job *job, ja_job_state state)
{
    job->state = state;
    ja_inbox_push(&svc->to_consumer, &job->node);
}

/* The same for a job whose ack may wait for the consumer's next wake-up while it naps
 * (--ack-linger-ms). */
static inline void ja_service_to_consumer_lazily(ja_service *svc, ja_job *job, ja_job_state state)
{
    job->state = state;
    ja_inbox_push_lazy(&svc->to_consumer, &job->node);
}

#endif
