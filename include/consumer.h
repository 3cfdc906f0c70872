#ifndef JA_CONSUMER_H
#define JA_CONSUMER_H

#include "service.h"

/* The consumer owns the first AMQP connection. It consumes the inbound queue with the prefetch
 * limit and manual acks, wraps each delivery in a job and pushes it into the ring for the
 * workers. It alone acks (after the publisher confirmed the outcome), requeues (when a worker
 * gives a message back) and frees jobs. It waits on its socket and its inbox together, so an
 * ack goes out as soon as its confirm arrives. On shutdown it cancels its subscription and
 * stays until every delivery it took is settled. */

typedef struct ja_consumer ja_consumer;

/* Everything the thread needs, made before any thread starts (oom.h). NULL when out of memory. */
ja_consumer *ja_consumer_new(ja_service *svc);
/* The thread: arg is a ja_consumer. */
void *ja_consumer_run(void *arg);
/* After the thread has ended. */
void ja_consumer_free(ja_consumer *c);

#endif
