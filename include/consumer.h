#ifndef JA_CONSUMER_H
#define JA_CONSUMER_H

#include "service.h"

/* The consumer owns the first AMQP connection. It consumes the inbound queue with the prefetch
 * limit and manual acks, wraps each delivery in a job and pushes it into the ring for the
 * workers. It alone acks (after the publisher confirmed the outcome), requeues (when a worker
 * gives a message back) and frees jobs. It waits on its socket and its inbox together, so an
 * ack goes out as soon as its confirm arrives. On shutdown it cancels its subscription and
 * stays until every delivery it took is settled. */

void *ja_consumer_run(void *svc);

#endif
