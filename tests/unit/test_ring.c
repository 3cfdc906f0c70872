/* The ring and the inbox under many threads: every item must come out exactly once. */

#include "inbox.h"
#include "ring.h"
#include "test.h"

#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

TEST(capacity_rounds_up_and_full_ring_refuses)
{
    ja_ring *ring = ja_ring_new(5);
    ASSERT(ring);
    ASSERT_EQ(ja_ring_capacity(ring), 8);
    static int items[9];
    for (int i = 0; i < 8; i++)
        ASSERT(ja_ring_push(ring, &items[i]));
    ASSERT(!ja_ring_push(ring, &items[8]));
    ASSERT_EQ(ja_ring_depth(ring), 8);
    for (int i = 0; i < 8; i++)
        ASSERT_PTR_EQ(ja_ring_pop(ring), &items[i]); /* FIFO with one thread */
    ASSERT_NULL(ja_ring_pop(ring));
    ja_ring_free(ring);
}

TEST(wraps_around_many_laps)
{
    ja_ring *ring = ja_ring_new(4);
    for (uintptr_t i = 1; i < 100000; i++) {
        ASSERT(ja_ring_push(ring, (void *)i));
        ASSERT_EQ((uintptr_t)ja_ring_pop(ring), i);
    }
    ja_ring_free(ring);
}

#define PER_PRODUCER 50000

typedef struct {
    ja_ring *ring;
    int id;
    int producers;
    atomic_int *seen;      /* one counter per item */
    atomic_long *consumed; /* items popped by all consumers */
    long total;
} shared;

static void *produce(void *arg)
{
    shared *s = arg;
    for (long i = 0; i < PER_PRODUCER; i++) {
        /* Items are never NULL: encode (producer, index) plus one. */
        uintptr_t item = (uintptr_t)(s->id * PER_PRODUCER + i) + 1;
        while (!ja_ring_push(s->ring, (void *)item))
            sched_yield();
    }
    return NULL;
}

static void *consume(void *arg)
{
    shared *s = arg;
    while (atomic_load(s->consumed) < s->total) {
        void *item = ja_ring_pop(s->ring);
        if (!item) {
            sched_yield();
            continue;
        }
        atomic_fetch_add(&s->seen[(uintptr_t)item - 1], 1);
        atomic_fetch_add(s->consumed, 1);
    }
    return NULL;
}

static void exactly_once(int producers, int consumers, size_t capacity)
{
    ja_ring *ring = ja_ring_new(capacity);
    long total = (long)producers * PER_PRODUCER;
    atomic_int *seen = calloc((size_t)total, sizeof *seen);
    atomic_long consumed = 0;
    pthread_t threads[64];
    shared args[64];
    int n = 0;
    for (int i = 0; i < consumers; i++, n++) {
        args[n] = (shared){ring, i, producers, seen, &consumed, total};
        pthread_create(&threads[n], NULL, consume, &args[n]);
    }
    for (int i = 0; i < producers; i++, n++) {
        args[n] = (shared){ring, i, producers, seen, &consumed, total};
        pthread_create(&threads[n], NULL, produce, &args[n]);
    }
    for (int i = 0; i < n; i++)
        pthread_join(threads[i], NULL);
    ASSERT_EQ(atomic_load(&consumed), total);
    for (long i = 0; i < total; i++) {
        if (atomic_load(&seen[i]) != 1)
            FAIL("item %ld seen %d times", i, atomic_load(&seen[i]));
    }
    ASSERT_NULL(ja_ring_pop(ring));
    free(seen);
    ja_ring_free(ring);
}

TEST(one_producer_many_consumers)
{
    exactly_once(1, 8, 64);
}
TEST(many_producers_one_consumer)
{
    exactly_once(8, 1, 64);
}
TEST(many_producers_many_consumers)
{
    exactly_once(4, 4, 16);
}
TEST(tiny_ring_under_contention)
{
    exactly_once(3, 3, 2);
}

typedef struct {
    ja_inbox *inbox;
    ja_inbox_node *nodes;
    int count;
} pusher;

static void *push_nodes(void *arg)
{
    pusher *p = arg;
    for (int i = 0; i < p->count; i++)
        ja_inbox_push(p->inbox, &p->nodes[i]);
    return NULL;
}

/* Takes every node waiting in the inbox, each one of nodes[0..count) and never seen before.
 * Returns how many. */
static long take_each_once(ja_inbox *inbox, ja_inbox_node *nodes, long count, char *seen)
{
    long taken = 0;
    for (ja_inbox_node *n = ja_inbox_take_all(inbox); n; n = n->next, taken++) {
        long index = n - nodes;
        ASSERT(index >= 0 && index < count);
        ASSERT_EQ(seen[index], 0);
        seen[index] = 1;
    }
    return taken;
}

TEST(inbox_delivers_every_node_once_and_wakes_its_owner)
{
    enum { PUSHERS = 4, EACH = 20000 };
    ja_inbox inbox;
    ASSERT_EQ(ja_inbox_init(&inbox, 1), 0);
    ja_inbox_node *nodes = calloc(PUSHERS * EACH, sizeof *nodes);
    pusher args[PUSHERS];
    pthread_t threads[PUSHERS];
    for (int i = 0; i < PUSHERS; i++) {
        args[i] = (pusher){&inbox, nodes + i * EACH, EACH};
        pthread_create(&threads[i], NULL, push_nodes, &args[i]);
    }
    char *seen = calloc(PUSHERS * EACH, 1);
    long taken = 0;
    while (taken < PUSHERS * EACH) {
        /* Every node must come with a wake-up: sleeping on the fd must never hang. */
        struct pollfd pfd = {.fd = ja_inbox_fd(&inbox), .events = POLLIN};
        ASSERT_EQ(poll(&pfd, 1, 10000), 1);
        ja_inbox_woken(&inbox);
        taken += take_each_once(&inbox, nodes, PUSHERS * EACH, seen);
    }
    for (int i = 0; i < PUSHERS; i++)
        pthread_join(threads[i], NULL);
    ASSERT_NULL(ja_inbox_take_all(&inbox));
    ja_inbox_destroy(&inbox);
    free(nodes);
    free(seen);
}

TEST(inbox_keeps_order_of_one_producer)
{
    ja_inbox inbox;
    ASSERT_EQ(ja_inbox_init(&inbox, 1), 0);
    ja_inbox_node nodes[5];
    for (int i = 0; i < 5; i++)
        ja_inbox_push(&inbox, &nodes[i]);
    int i = 0;
    for (ja_inbox_node *n = ja_inbox_take_all(&inbox); n; n = n->next, i++)
        ASSERT_PTR_EQ(n, &nodes[i]);
    ASSERT_EQ(i, 5);
    ja_inbox_destroy(&inbox);
}

static bool fd_readable(int fd)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    return poll(&pfd, 1, 0) == 1;
}

TEST(inbox_lazy_push_wakes_only_an_owner_that_does_not_nap)
{
    ja_inbox inbox;
    ASSERT_EQ(ja_inbox_init(&inbox, 3), 0);
    ja_inbox_node nodes[6];
    ja_inbox_push_lazy(&inbox, &nodes[0]); /* the owner sleeps until woken */
    ASSERT(fd_readable(ja_inbox_fd(&inbox)));
    ja_inbox_woken(&inbox);
    ASSERT_PTR_EQ(ja_inbox_take_all(&inbox), &nodes[0]);
    ASSERT(!fd_readable(ja_inbox_fd(&inbox)));

    ja_inbox_set_napping(&inbox, true);
    ja_inbox_push_lazy(&inbox, &nodes[1]);
    ja_inbox_push_lazy(&inbox, &nodes[2]);
    ASSERT(!fd_readable(ja_inbox_fd(&inbox)));
    ASSERT(ja_inbox_has_nodes(&inbox));
    ja_inbox_push_lazy(&inbox, &nodes[3]); /* wake_after of them wake even a napping owner */
    ASSERT(fd_readable(ja_inbox_fd(&inbox)));
    ja_inbox_woken(&inbox);
    int count = 0;
    for (ja_inbox_node *n = ja_inbox_take_all(&inbox); n; n = n->next)
        ASSERT_PTR_EQ(n, &nodes[1 + count++]);
    ASSERT_EQ(count, 3);
    ASSERT(!ja_inbox_has_nodes(&inbox));

    ja_inbox_push_lazy(&inbox, &nodes[4]); /* the count starts again after a take */
    ASSERT(!fd_readable(ja_inbox_fd(&inbox)));
    ja_inbox_push(&inbox, &nodes[5]); /* a plain push wakes, lazy ones before it or not */
    ASSERT(fd_readable(ja_inbox_fd(&inbox)));
    ja_inbox_take_all(&inbox);
    ja_inbox_destroy(&inbox);
}

/* Lazy pushers against an owner that naps (sleeps at most 1 ms) or sleeps for long at random:
 * a node pushed while it sleeps for long must wake it, or it must see the node before sleeping.
 * A missed wake-up shows as a long sleep that ends by its time-out with nodes waiting. */
static void *push_lazily(void *arg)
{
    pusher *p = arg;
    for (int i = 0; i < p->count; i++) {
        ja_inbox_push_lazy(p->inbox, &p->nodes[i]);
        /* Slow enough that the owner often finds the inbox empty and goes to sleep. */
        struct timespec pause = {.tv_nsec = 20000 + (i % 7) * 5000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

TEST(inbox_lazy_push_never_leaves_a_long_sleeper_unwoken)
{
    enum { PUSHERS = 3, EACH = 3000, LONG_SLEEP_MS = 300 };
    ja_inbox inbox;
    ASSERT_EQ(ja_inbox_init(&inbox, 1000000), 0);
    ja_inbox_node *nodes = calloc(PUSHERS * EACH, sizeof *nodes);
    pusher args[PUSHERS];
    pthread_t threads[PUSHERS];
    for (int i = 0; i < PUSHERS; i++) {
        args[i] = (pusher){&inbox, nodes + i * EACH, EACH};
        pthread_create(&threads[i], NULL, push_lazily, &args[i]);
    }
    char *seen = calloc(PUSHERS * EACH, 1);
    long taken = 0, missed = 0;
    uint64_t rng = 88172645463325252ull;
    while (taken < PUSHERS * EACH) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        bool nap = rng % 2 == 0;
        ja_inbox_set_napping(&inbox, nap);
        if (!nap && ja_inbox_has_nodes(&inbox)) {
            /* seen before sleeping */
        } else {
            struct pollfd pfd = {.fd = ja_inbox_fd(&inbox), .events = POLLIN};
            int ready = poll(&pfd, 1, nap ? 1 : LONG_SLEEP_MS);
            if (!nap && ready == 0 && ja_inbox_has_nodes(&inbox))
                missed++;
            if (ready == 1)
                ja_inbox_woken(&inbox);
        }
        taken += take_each_once(&inbox, nodes, PUSHERS * EACH, seen);
    }
    for (int i = 0; i < PUSHERS; i++)
        pthread_join(threads[i], NULL);
    ASSERT_EQ(missed, 0);
    ja_inbox_destroy(&inbox);
    free(nodes);
    free(seen);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(capacity_rounds_up_and_full_ring_refuses),
        TEST_ENTRY(wraps_around_many_laps),
        TEST_ENTRY(one_producer_many_consumers),
        TEST_ENTRY(many_producers_one_consumer),
        TEST_ENTRY(many_producers_many_consumers),
        TEST_ENTRY(tiny_ring_under_contention),
        TEST_ENTRY(inbox_delivers_every_node_once_and_wakes_its_owner),
        TEST_ENTRY(inbox_keeps_order_of_one_producer),
        TEST_ENTRY(inbox_lazy_push_wakes_only_an_owner_that_does_not_nap),
        TEST_ENTRY(inbox_lazy_push_never_leaves_a_long_sleeper_unwoken),
    };
    return RUN_TESTS(tests);
}
