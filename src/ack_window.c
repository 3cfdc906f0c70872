#include "ack_window.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPEN = 0,     /* not settled yet */
    DEFERRED = 1, /* settled; its ack waits to be folded into a multiple ack */
    ANSWERED = 2, /* settled and already answered on its own */
};

int ja_ack_window_init(ja_ack_window *w, unsigned prefetch)
{
    memset(w, 0, sizeof *w);
    w->size = 64;
    while (w->size < 4 * (size_t)prefetch)
        w->size <<= 1;
    /* Half the prefetch may wait for a slow delivery; the other half keeps the broker sending. */
    w->max_deferred = prefetch / 2 > 0 ? prefetch / 2 : 1;
    w->state = calloc(w->size, 1);
    return w->state ? 0 : -ENOMEM;
}

void ja_ack_window_free(ja_ack_window *w)
{
    free(w->state);
    free(w->alone);
    memset(w, 0, sizeof *w);
}

void ja_ack_window_reset(ja_ack_window *w)
{
    memset(w->state, 0, w->size);
    w->floor = 0;
    w->deferred = 0;
    w->alone_count = 0;
}

/* Keeps the ranges sorted and merged; tags mostly arrive in order, so this is cheap. */
static bool add_alone(ja_ack_window *w, uint64_t tag)
{
    size_t i = w->alone_count;
    while (i > 0 && w->alone[i - 1].lo > tag)
        i--;
    if (i > 0 && w->alone[i - 1].hi + 1 == tag) {
        w->alone[i - 1].hi = tag;
        if (i < w->alone_count && w->alone[i].lo == tag + 1) { /* closes a gap */
            w->alone[i - 1].hi = w->alone[i].hi;
            memmove(&w->alone[i], &w->alone[i + 1], (w->alone_count - i - 1) * sizeof *w->alone);
            w->alone_count--;
        }
        return true;
    }
    if (i < w->alone_count && w->alone[i].lo == tag + 1) {
        w->alone[i].lo = tag;
        return true;
    }
    if (w->alone_count == w->alone_capacity) {
        size_t capacity = w->alone_capacity ? w->alone_capacity * 2 : 16;
        ja_tag_range *grown = realloc(w->alone, capacity * sizeof *grown);
        if (!grown)
            return false;
        w->alone = grown;
        w->alone_capacity = capacity;
    }
    memmove(&w->alone[i + 1], &w->alone[i], (w->alone_count - i) * sizeof *w->alone);
    w->alone[i] = (ja_tag_range){tag, tag};
    w->alone_count++;
    return true;
}

bool ja_ack_window_settle(ja_ack_window *w, uint64_t tag, bool answered)
{
    if (tag <= w->floor)
        return !answered; /* cannot happen on a healthy channel; answering is always safe */
    if (tag - w->floor >= w->size) {
        /* Past the window: answer it alone and remember it, so the floor can pass it later.
         * If memory runs out the floor stops here, which only ends the batching. */
        add_alone(w, tag);
        return !answered;
    }
    uint8_t *slot = &w->state[tag & (w->size - 1)];
    /* The next tag after the floor is always deferred: the next advance folds it in at once. */
    if (answered || (w->deferred >= w->max_deferred && tag != w->floor + 1)) {
        *slot = ANSWERED;
        return !answered;
    }
    *slot = DEFERRED;
    w->deferred++;
    return false;
}

uint64_t ja_ack_window_take_deferred(ja_ack_window *w, uint64_t after)
{
    uint64_t tag = after > w->floor ? after + 1 : w->floor + 1;
    for (; w->deferred > 0 && tag - w->floor < w->size; tag++) {
        uint8_t *slot = &w->state[tag & (w->size - 1)];
        if (*slot == DEFERRED) {
            *slot = ANSWERED;
            w->deferred--;
            return tag;
        }
    }
    return 0;
}

uint64_t ja_ack_window_advance(ja_ack_window *w)
{
    uint64_t multiple = 0;
    for (;;) {
        uint64_t next = w->floor + 1;
        uint8_t *slot = &w->state[next & (w->size - 1)];
        if (*slot == DEFERRED) {
            multiple = next;
            w->deferred--;
        } else if (*slot == OPEN) {
            if (w->alone_count == 0 || w->alone[0].lo != next)
                break;
            /* A run answered alone: jump over it. Its tags never used the window's slots. */
            w->floor = w->alone[0].hi;
            memmove(&w->alone[0], &w->alone[1], (w->alone_count - 1) * sizeof *w->alone);
            w->alone_count--;
            continue;
        }
        *slot = OPEN;
        w->floor = next;
    }
    return multiple;
}
