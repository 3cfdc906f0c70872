#ifndef JA_KEY_SCHEDULER_H
#define JA_KEY_SCHEDULER_H

#include "order_key.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-key order with many keys at once (--order-by): for each key, at most one message is out
 * of the consumer's hands at a time (in the ring, at a worker, at the publisher), and the key's
 * later messages wait here, in delivery order, until that one is settled. Different keys run in
 * parallel; a slow key holds up only its own messages, unlike fixed `hash % N` lanes.
 *
 * Pure bookkeeping, owned by the consumer thread and driven by it: a message arrives (run it
 * now, or it waits), the running one is finished (the next of its key, if any, runs), or is
 * given back to the broker (its key's waiting messages go back with it, in order). The clock is
 * passed in. Nothing allocates after init: a key exists only while it has messages, and there are
 * never more messages than the prefetch, so a pool of that many keys always suffices. */

/* Links a message into its key's queue; embedded in the job. */
typedef struct ja_order_node {
    struct ja_order_node *next; /* the next waiting message of the key, or of a returned list */
    struct ja_order_key *key;   /* the key it belongs to while it is in the scheduler */
    uint64_t arrived_ms;
} ja_order_node;

typedef struct ja_order_key {
    uint64_t hash;
    struct ja_order_key *chain;                 /* the next key in its hash bucket, or free */
    struct ja_order_key *prev_live, *next_live; /* every live key, for the age scan */
    ja_order_node *running;                     /* out of the consumer's hands */
    ja_order_node *head, *tail;                 /* waiting, oldest first */
    size_t waiting;
    size_t len;
    char bytes[JA_ORDER_KEY_MAX];
} ja_order_key;

typedef struct {
    ja_order_key *pool;
    ja_order_key *free_keys;
    ja_order_key **buckets;
    size_t bucket_mask;
    ja_order_key *live;
    size_t capacity;
    size_t live_keys; /* keys with a message running */
    size_t waiting;   /* messages waiting behind a running one of their key */
} ja_key_scheduler;

typedef enum {
    JA_ORDER_RUN,  /* the key had nothing in the process: the message runs now */
    JA_ORDER_WAIT, /* it waits behind its key's running message */
    JA_ORDER_FULL, /* more keys than capacity: a caller's bug (more messages than the prefetch) */
} ja_order_decision;

/* capacity: the most messages ever held at once (the prefetch). Returns 0 or -ENOMEM. */
int ja_key_scheduler_init(ja_key_scheduler *s, size_t capacity);
void ja_key_scheduler_free(ja_key_scheduler *s);

ja_order_decision ja_key_scheduler_arrive(ja_key_scheduler *s, ja_order_node *node, const char *key,
                                          size_t key_len, uint64_t now_ms);

/* node, running, is settled (acked, dead-lettered, rejected). Returns the next message of its
 * key, which is now running, or NULL (the key is gone). */
ja_order_node *ja_key_scheduler_finish(ja_key_scheduler *s, ja_order_node *node);

/* node, running, goes back to the broker. Returns its key's waiting messages, oldest first,
 * linked by next: they go back too, after it, so the broker keeps them in order. The key is
 * gone. */
ja_order_node *ja_key_scheduler_give_back(ja_key_scheduler *s, ja_order_node *node);

/* Forgets every key (the consumer connection is gone) and returns every waiting message, linked
 * by next. Running messages are no longer known to it. */
ja_order_node *ja_key_scheduler_clear(ja_key_scheduler *s);

/* When the longest-waiting message arrived, or UINT64_MAX when none waits. */
uint64_t ja_key_scheduler_oldest_wait(const ja_key_scheduler *s);

#endif
