#ifndef JA_WORKER_H
#define JA_WORKER_H

#include "service.h"

/* A worker takes jobs from the ring, checks the message, invokes the Jube model over HTTP,
 * decides what the answer means (see outcome.h), retries with backoff while Jube is unavailable,
 * and hands the result to the publisher. Workers never touch AMQP. */

typedef struct {
    ja_service *svc;
    int index;
} ja_worker_args;

void *ja_worker_run(void *args);

#endif
