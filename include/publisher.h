#ifndef JA_PUBLISHER_H
#define JA_PUBLISHER_H

#include "service.h"

/* The publisher owns the second AMQP connection, in confirm mode. It publishes responses to the
 * outbound exchange (and to reply_to when the message asked for it) and dead letters to the
 * dead-letter exchange, tracks every publish by its confirm sequence number, and hands a job
 * back to the consumer for acking once, and only once, all its publishes are confirmed. A
 * publish the broker nacks, or that a lost connection leaves unconfirmed, is published again. */

typedef struct ja_publisher ja_publisher;

/* Everything the thread needs, made before any thread starts (oom.h). NULL when out of memory. */
ja_publisher *ja_publisher_new(ja_service *svc);
/* The thread: arg is a ja_publisher. */
void *ja_publisher_run(void *arg);
/* After the thread has ended. */
void ja_publisher_free(ja_publisher *p);

#endif
