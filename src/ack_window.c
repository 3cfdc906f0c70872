#include "ack_window.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPEN = 0,     /* not settled yet */
    DEFERRED = 1, /* settled; its ack waits to be folded into a multiple ack */
    ANSWERED = 2, /* settled and already answered on its own */
};

static ja_tag_range *alone(const ja_ack_window *w)
{
    return (ja_tag_range *)(void *)w->alone.data;
}

static size_t alone_count(const ja_ack_window *w)
{
    return w->alone.len / sizeof(ja_tag_range);
}

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
    ja_buffer_free(&w->alone);
    memset(w, 0, sizeof *w);
}

void ja_ack_window_reset(ja_ack_window *w)
{
    memset(w->state, 0, w->size);
    w->floor = 0;
    w->deferred = 0;
    w->alone.len = 0;
}

/* Keeps the ranges sorted and merged; tags mostly arrive in order, so this is cheap. */
static bool add_alone(ja_ack_window *w, uint64_t tag)
{
    size_t count = alone_count(w);
    size_t i = count;
    while (i > 0 && alone(w)[i - 1].lo > tag)
        i--;
    if (i > 0 && alone(w)[i - 1].hi + 1 == tag) {
        alone(w)[i - 1].hi = tag;
        if (i < count && alone(w)[i].lo == tag + 1) { /* closes a gap */
            alone(w)[i - 1].hi = alone(w)[i].hi;
            memmove(&alone(w)[i], &alone(w)[i + 1], (count - i - 1) * sizeof(ja_tag_range));
            w->alone.len -= sizeof(ja_tag_range);
        }
        return true;
    }
    if (i < count && alone(w)[i].lo == tag + 1) {
        alone(w)[i].lo = tag;
        return true;
    }
    if (ja_buffer_reserve(&w->alone, sizeof(ja_tag_range)) != 0)
        return false;
    memmove(&alone(w)[i + 1], &alone(w)[i], (count - i) * sizeof(ja_tag_range));
    alone(w)[i] = (ja_tag_range){tag, tag};
    w->alone.len += sizeof(ja_tag_range);
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
            if (alone_count(w) == 0 || alone(w)[0].lo != next)
                break;
            /* A run answered alone: jump over it. Its tags never used the window's slots. */
            w->floor = alone(w)[0].hi;
            w->alone.len -= sizeof(ja_tag_range);
            memmove(&alone(w)[0], &alone(w)[1], w->alone.len);
            continue;
        }
        *slot = OPEN;
        w->floor = next;
    }
    return multiple;
}
