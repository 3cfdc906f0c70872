#include "ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define CACHE_LINE 64

/* A cell is free for the producer at position p when seq == p, and holds an item for the
 * consumer at position p when seq == p + 1. */
typedef struct {
    atomic_size_t seq;
    void *item;
} cell;

struct ja_ring {
    /* The two positions live on their own cache lines so producers and consumers do not
     * invalidate each other's line on every operation. */
    alignas(CACHE_LINE) atomic_size_t enqueue_pos;
    alignas(CACHE_LINE) atomic_size_t dequeue_pos;
    alignas(CACHE_LINE) size_t mask;
    cell *cells;
};

static size_t round_up_pow2(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

ja_ring *ja_ring_new(size_t capacity)
{
    if (capacity < 2)
        capacity = 2;
    capacity = round_up_pow2(capacity);
    ja_ring *ring = aligned_alloc(CACHE_LINE, sizeof *ring);
    if (!ring)
        return NULL;
    ring->cells = calloc(capacity, sizeof *ring->cells);
    if (!ring->cells) {
        free(ring);
        return NULL;
    }
    for (size_t i = 0; i < capacity; i++)
        atomic_init(&ring->cells[i].seq, i);
    ring->mask = capacity - 1;
    atomic_init(&ring->enqueue_pos, 0);
    atomic_init(&ring->dequeue_pos, 0);
    return ring;
}

void ja_ring_free(ja_ring *ring)
{
    if (!ring)
        return;
    free(ring->cells);
    free(ring);
}

size_t ja_ring_capacity(const ja_ring *ring)
{
    return ring->mask + 1;
}

bool ja_ring_push(ja_ring *ring, void *item)
{
    size_t pos = atomic_load_explicit(&ring->enqueue_pos, memory_order_relaxed);
    for (;;) {
        cell *c = &ring->cells[pos & ring->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)pos;
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&ring->enqueue_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                c->item = item;
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
            /* Another producer took pos; the failed CAS reloaded it. */
        } else if (diff < 0) {
            return false; /* the cell still holds an item from one lap ago: full */
        } else {
            pos = atomic_load_explicit(&ring->enqueue_pos, memory_order_relaxed);
        }
    }
}

void *ja_ring_pop(ja_ring *ring)
{
    size_t pos = atomic_load_explicit(&ring->dequeue_pos, memory_order_relaxed);
    for (;;) {
        cell *c = &ring->cells[pos & ring->mask];
        size_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        intptr_t diff = (intptr_t)seq - (intptr_t)(pos + 1);
        if (diff == 0) {
            if (atomic_compare_exchange_weak_explicit(&ring->dequeue_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                void *item = c->item;
                /* Hand the cell to the producer of the next lap. */
                atomic_store_explicit(&c->seq, pos + ring->mask + 1, memory_order_release);
                return item;
            }
        } else if (diff < 0) {
            return NULL; /* empty */
        } else {
            pos = atomic_load_explicit(&ring->dequeue_pos, memory_order_relaxed);
        }
    }
}

size_t ja_ring_depth(const ja_ring *ring)
{
    size_t head = atomic_load_explicit(&ring->dequeue_pos, memory_order_relaxed);
    size_t tail = atomic_load_explicit(&ring->enqueue_pos, memory_order_relaxed);
    return tail >= head ? tail - head : 0;
}
