#ifndef JA_WORKER_H
#define JA_WORKER_H

#include "service.h"

/* A worker thread takes jobs from the ring, checks the message, invokes the Jube model over HTTP,
 * decides what the answer means (see outcome.h), retries with backoff while Jube is unavailable,
 * and hands the result to the publisher. Workers never touch AMQP.
 *
 * Each thread carries `calls` jobs at once (its share of --workers), each call on its own
 * keep-alive connection, all in one libcurl multi handle: the thread sleeps in one poll() over
 * every connection and its bell, so under load one wake-up serves every answer that has arrived
 * instead of one thread waking per answer. */

typedef struct ja_worker ja_worker;

/* Everything thread `index` needs to carry `calls` calls, made before any thread starts (oom.h).
 * NULL when out of memory. */
ja_worker *ja_worker_new(ja_service *svc, int index, int calls);
/* The thread: arg is a ja_worker. */
void *ja_worker_run(void *arg);
/* After the thread has ended. */
void ja_worker_free(ja_worker *w);

#endif
