/* ring_bench: the consumer-to-worker ring against a mutex + condition variable queue of the same
 * interface, with threads far outnumbering the 2 cores: 1 producer -> 64 consumers (the
 * service's shape) and 64 producers -> 1 consumer. Sleeping works as in the service: the ring's
 * consumers wait on a semaphore posted after each push; the mutex queue waits on its condition
 * variables. Prints items per second for each. */

#include "ring.h"

#include <pthread.h>
#include <stdbool.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAPACITY 1024

/* ---- the two queues behind one interface: push blocks while full, pop while empty ---- */

typedef struct {
    ja_ring *ring;
    sem_t items; /* counts pushed items, as the service's work_ready does */
    sem_t slots; /* counts free cells, so a producer sleeps while the ring is full */
} ring_queue;

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    void *items[CAPACITY];
    size_t head, count;
} mutex_queue;

typedef struct {
    bool use_ring;
    ring_queue ring;
    mutex_queue mutex;
} queue;

static void queue_init(queue *q, bool use_ring)
{
    memset(q, 0, sizeof *q);
    q->use_ring = use_ring;
    if (use_ring) {
        q->ring.ring = ja_ring_new(CAPACITY);
        sem_init(&q->ring.items, 0, 0);
        sem_init(&q->ring.slots, 0, CAPACITY);
    } else {
        pthread_mutex_init(&q->mutex.lock, NULL);
        pthread_cond_init(&q->mutex.not_empty, NULL);
        pthread_cond_init(&q->mutex.not_full, NULL);
    }
}

static void queue_push(queue *q, void *item)
{
    if (q->use_ring) {
        sem_wait(&q->ring.slots);
        while (!ja_ring_push(q->ring.ring, item))
            ; /* a slot is free: only another producer's claim can be in the way, briefly */
        sem_post(&q->ring.items);
        return;
    }
    mutex_queue *m = &q->mutex;
    pthread_mutex_lock(&m->lock);
    while (m->count == CAPACITY)
        pthread_cond_wait(&m->not_full, &m->lock);
    m->items[(m->head + m->count) % CAPACITY] = item;
    m->count++;
    pthread_cond_signal(&m->not_empty);
    pthread_mutex_unlock(&m->lock);
}

static void *queue_pop(queue *q)
{
    if (q->use_ring) {
        sem_wait(&q->ring.items);
        void *item;
        while (!(item = ja_ring_pop(q->ring.ring)))
            ; /* an item is there: only a producer still finishing its push can be in the way */
        sem_post(&q->ring.slots);
        return item;
    }
    mutex_queue *m = &q->mutex;
    pthread_mutex_lock(&m->lock);
    while (m->count == 0)
        pthread_cond_wait(&m->not_empty, &m->lock);
    void *item = m->items[m->head];
    m->head = (m->head + 1) % CAPACITY;
    m->count--;
    pthread_cond_signal(&m->not_full);
    pthread_mutex_unlock(&m->lock);
    return item;
}

/* ---- the run ---- */

typedef struct {
    queue *q;
    long items;
    atomic_long *checksum;
} role;

static void *produce(void *arg)
{
    role *r = arg;
    for (long i = 1; i <= r->items; i++)
        queue_push(r->q, (void *)(uintptr_t)i);
    return NULL;
}

static void *consume(void *arg)
{
    role *r = arg;
    long sum = 0;
    for (long i = 0; i < r->items; i++)
        sum += (long)(uintptr_t)queue_pop(r->q);
    atomic_fetch_add(r->checksum, sum);
    return NULL;
}

static double run(bool use_ring, int producers, int consumers, long total)
{
    queue q;
    queue_init(&q, use_ring);
    atomic_long checksum = 0;
    pthread_t threads[200];
    role roles[200];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int n = 0;
    for (int i = 0; i < consumers; i++, n++) {
        roles[n] = (role){&q, total / consumers, &checksum};
        pthread_create(&threads[n], NULL, consume, &roles[n]);
    }
    for (int i = 0; i < producers; i++, n++) {
        roles[n] = (role){&q, total / producers, &checksum};
        pthread_create(&threads[n], NULL, produce, &roles[n]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long per_producer = total / producers;
    long expected = (long)producers * per_producer * (per_producer + 1) / 2;
    if (atomic_load(&checksum) != expected) {
        fprintf(stderr, "ring_bench: items lost or duplicated\n");
        exit(1);
    }
    if (use_ring)
        ja_ring_free(q.ring.ring);
    double seconds = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    return (double)total / seconds;
}

int main(int argc, char **argv)
{
    long total = argc > 1 ? atol(argv[1]) : 3 * 64 * 100000L;
    const struct {
        const char *shape;
        int producers, consumers;
    } shapes[] = {{"1->64", 1, 64}, {"64->1", 64, 1}};
    for (size_t i = 0; i < 2; i++) {
        double ring = run(true, shapes[i].producers, shapes[i].consumers, total);
        double mutex = run(false, shapes[i].producers, shapes[i].consumers, total);
        printf("ring %s %.0f mutex %s %.0f\n", shapes[i].shape, ring, shapes[i].shape, mutex);
    }
    return 0;
}
