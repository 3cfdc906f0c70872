#ifndef JA_ACK_WINDOW_H
#define JA_ACK_WINDOW_H

#include "buffer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decides how the consumer acks: one basic.ack with "multiple" for a run of settled deliveries
 * once every earlier one is settled too, which saves the broker most of its ack work; one by one
 * when a slow delivery holds the run back, so that finished deliveries never fill the prefetch
 * window while it waits. Pure bookkeeping for one channel: the consumer sends what it says.
 *
 * Delivery tags start at 1 on every channel and grow by one per delivery. */

typedef struct {
    uint64_t lo, hi;
} ja_tag_range;

typedef struct {
    uint64_t floor;  /* every tag <= floor is settled, and answered or covered by an ack */
    uint8_t *state;  /* per tag in (floor, floor + size): see ack_window.c */
    size_t size;     /* a power of two */
    size_t deferred; /* settled tags waiting for a multiple ack */
    size_t max_deferred;
    ja_buffer alone; /* ja_tag_range items, sorted: settled tags past the window, already
                        answered one by one */
} ja_ack_window;

/* prefetch bounds the deliveries outstanding at once. Returns 0 or -ENOMEM. */
int ja_ack_window_init(ja_ack_window *w, unsigned prefetch);
void ja_ack_window_free(ja_ack_window *w);

/* Forgets everything: a new channel starts again at tag 1. */
void ja_ack_window_reset(ja_ack_window *w);

/* Records that tag is settled. answered is true when the caller has already answered it on its
 * own (a nack with requeue). Returns true when the caller must now ack it on its own. */
bool ja_ack_window_settle(ja_ack_window *w, uint64_t tag, bool answered);

/* Moves past every settled tag it can. Returns the tag to ack with "multiple", or 0 for none. */
uint64_t ja_ack_window_advance(ja_ack_window *w);

/* The first settled tag after `after` whose ack still waits for a multiple one, now to be acked
 * on its own (it counts as answered); 0 when none. For a channel about to close with earlier
 * deliveries left unacked on purpose: what was settled must not come back. */
uint64_t ja_ack_window_take_deferred(ja_ack_window *w, uint64_t after);

#endif
