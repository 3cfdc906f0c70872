#ifndef JA_RING_H
#define JA_RING_H

#include <stdbool.h>
#include <stddef.h>

/* A bounded, lock-free, multi-producer multi-consumer queue of pointers (Dmitry Vyukov's design:
 * a sequence number per cell and one compare-and-swap per operation, so no thread ever waits for
 * another to finish). It carries jobs from the consumer thread to the workers.
 *
 * The ring stores pointers only; whoever pops an item owns it. It never sleeps: callers pair it
 * with their own way of waiting (see worker.c). */

typedef struct ja_ring ja_ring;

/* capacity is rounded up to a power of two. Returns NULL when out of memory. */
ja_ring *ja_ring_new(size_t capacity);
void ja_ring_free(ja_ring *ring);

size_t ja_ring_capacity(const ja_ring *ring);

/* Returns false, and keeps nothing, when the ring is full. */
bool ja_ring_push(ja_ring *ring, void *item);

/* Returns NULL when the ring is empty. */
void *ja_ring_pop(ja_ring *ring);

/* Items in the ring; exact only when no push or pop is under way. */
size_t ja_ring_depth(const ja_ring *ring);

#endif
