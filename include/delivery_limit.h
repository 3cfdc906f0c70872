#ifndef JA_DELIVERY_LIMIT_H
#define JA_DELIVERY_LIMIT_H

#include <amqp.h>
#include <stdbool.h>
#include <stdint.h>

/* RabbitMQ 4.x quorum queues have a delivery limit (20 unless set): a message returned to the
 * queue more often than that (a nack or reject with requeue, or a channel or connection closing
 * with it unacked) is dead-lettered by the broker, or removed with no notice to anyone when the
 * queue has no dead-letter exchange. 4.3 no longer counts basic.nack with requeue; everything
 * else still counts. The service cannot stop a connection from being lost, so it never lets a
 * message it holds get near the limit: a delivery whose count has reached the renewal point is
 * published again to the tail of the inbound queue (a fresh count) and the old delivery acked
 * once that publish is confirmed, instead of ever being returned again.
 *
 * Pure: reading the counts a delivery carries, and the rule. */

/* Set by the broker on a redelivery from a quorum queue: the returns that count toward the limit
 * (4.0-4.3), and (4.3) every return. */
#define JA_DELIVERY_COUNT_HEADER "x-delivery-count"
#define JA_ACQUIRED_COUNT_HEADER "x-acquired-count"
/* Set by the service on a message it published again: how many times it did so. */
#define JA_RENEWALS_HEADER "x-jube-renewals"

typedef struct {
    uint32_t delivery_count; /* x-delivery-count, 0 when absent */
    uint32_t acquired_count; /* x-acquired-count, 0 when absent */
    uint32_t renewals;       /* x-jube-renewals, 0 when absent */
} ja_delivery_counts;

/* Reads the counts from a delivery's headers; a missing header, or one that is not a
 * non-negative integer, counts 0. */
ja_delivery_counts ja_delivery_limit_counts(const amqp_basic_properties_t *props);

/* The delivery count from which a message is renewed: limit - ceil(limit / 4), leaving a quarter
 * of the limit for the returns the service cannot prevent (connections lost before the renewal is
 * confirmed). 0 when limit is 0 (the queue has no limit). limit is 0 or at least 2. */
uint32_t ja_delivery_limit_renew_at(int limit);

/* True when a delivery with this count must be renewed rather than processed and possibly
 * returned again. */
bool ja_delivery_limit_must_renew(int limit, uint32_t delivery_count);

#endif
