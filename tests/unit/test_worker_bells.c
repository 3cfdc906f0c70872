/* The worker bells against real threads: while one worker is awake the consumer lets it take the
 * jobs, yet a job never waits in the ring while every worker with room for it sleeps. */

#include "ring.h"
#include "worker_bells.h"
#include "test.h"

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

enum { WORKERS = 3, JOBS = 6000, LONG_SLEEP_MS = 300, ANSWER_MS = 1 };

typedef struct {
    ja_worker_bells bells;
    ja_ring *ring;
    atomic_long taken;
    atomic_long missed; /* long sleeps that ended by time-out with a job in the ring */
} shared;

typedef struct {
    shared *s;
    int index;
} worker_arg;

static void *run_worker(void *arg)
{
    worker_arg *a = arg;
    shared *s = a->s;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (uint64_t)(a->index + 1);
    while (atomic_load(&s->taken) < JOBS) {
        /* Without room for more calls, a worker sleeps until an answer (a short sleep here). */
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        bool hungry = rng % 4 != 0;
        if (hungry)
            ja_worker_bells_arm(&s->bells, a->index);
        ja_worker_bells_falling_asleep(&s->bells);
        if (hungry) {
            if (ja_ring_pop(s->ring)) {
                ja_worker_bells_woke(&s->bells);
                ja_worker_bells_disarm(&s->bells, a->index);
                atomic_fetch_add(&s->taken, 1);
                continue;
            }
        } else if (ja_ring_depth(s->ring) > 0) {
            ja_worker_bells_ring_one(&s->bells);
        }
        struct pollfd pfd = {.fd = ja_worker_bells_fd(&s->bells, a->index), .events = POLLIN};
        int ready = poll(&pfd, 1, hungry ? LONG_SLEEP_MS : ANSWER_MS);
        if (hungry && ready == 0 && ja_ring_depth(s->ring) > 0 && atomic_load(&s->taken) < JOBS)
            atomic_fetch_add(&s->missed, 1);
        ja_worker_bells_woke(&s->bells);
        if (hungry)
            ja_worker_bells_disarm(&s->bells, a->index);
        if (ready == 1)
            ja_worker_bells_clear(&s->bells, a->index);
        /* Take what waits while there is room (as a worker's next pass does). */
        if (ja_ring_pop(s->ring))
            atomic_fetch_add(&s->taken, 1);
    }
    return NULL;
}

TEST(a_job_never_waits_while_every_worker_with_room_sleeps)
{
    shared s = {.ring = ja_ring_new(64)};
    ASSERT_EQ(ja_worker_bells_init(&s.bells, WORKERS), 0);
    atomic_init(&s.taken, 0);
    atomic_init(&s.missed, 0);
    pthread_t threads[WORKERS];
    worker_arg args[WORKERS];
    for (int i = 0; i < WORKERS; i++) {
        args[i] = (worker_arg){&s, i};
        pthread_create(&threads[i], NULL, run_worker, &args[i]);
    }
    static int job;
    for (int i = 0; i < JOBS; i++) {
        while (!ja_ring_push(s.ring, &job))
            sched_yield();
        ja_worker_bells_work_added(&s.bells, ja_ring_depth(s.ring));
        /* Slow enough that workers often find the ring empty and go to sleep. */
        struct timespec pause = {.tv_nsec = 20000 + (i % 5) * 10000};
        nanosleep(&pause, NULL);
    }
    long long deadline = 0;
    while (atomic_load(&s.taken) < JOBS) {
        ASSERT_LT(deadline++, 10000);
        usleep(1000);
    }
    ja_worker_bells_ring_all(&s.bells);
    for (int i = 0; i < WORKERS; i++)
        pthread_join(threads[i], NULL);
    ASSERT_EQ(atomic_load(&s.missed), 0);
    ja_worker_bells_destroy(&s.bells);
    ja_ring_free(s.ring);
}

TEST(an_awake_worker_takes_a_few_jobs_without_a_bell)
{
    ja_worker_bells bells;
    ASSERT_EQ(ja_worker_bells_init(&bells, 2), 0);
    /* Worker 1 sleeps armed; worker 0 is awake. */
    ja_worker_bells_arm(&bells, 1);
    ja_worker_bells_falling_asleep(&bells);
    ja_worker_bells_work_added(&bells, 1);
    ja_worker_bells_work_added(&bells, JA_BELL_BACKLOG - 1);
    struct pollfd pfd = {.fd = ja_worker_bells_fd(&bells, 1), .events = POLLIN};
    ASSERT_EQ(poll(&pfd, 1, 0), 0);
    ja_worker_bells_work_added(&bells, JA_BELL_BACKLOG); /* jobs pile up: wake a second */
    ASSERT_EQ(poll(&pfd, 1, 0), 1);
    ja_worker_bells_destroy(&bells);
}

TEST(with_every_worker_asleep_the_lowest_armed_is_rung)
{
    ja_worker_bells bells;
    ASSERT_EQ(ja_worker_bells_init(&bells, 3), 0);
    for (int i = 2; i >= 1; i--) {
        ja_worker_bells_arm(&bells, i);
        ja_worker_bells_falling_asleep(&bells);
    }
    ja_worker_bells_falling_asleep(&bells); /* worker 0 asleep without room */
    ja_worker_bells_work_added(&bells, 1);
    struct pollfd one = {.fd = ja_worker_bells_fd(&bells, 1), .events = POLLIN};
    struct pollfd two = {.fd = ja_worker_bells_fd(&bells, 2), .events = POLLIN};
    ASSERT_EQ(poll(&one, 1, 0), 1);
    ASSERT_EQ(poll(&two, 1, 0), 0);
    ja_worker_bells_destroy(&bells);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(a_job_never_waits_while_every_worker_with_room_sleeps),
        TEST_ENTRY(an_awake_worker_takes_a_few_jobs_without_a_bell),
        TEST_ENTRY(with_every_worker_asleep_the_lowest_armed_is_rung),
    };
    return RUN_TESTS(tests);
}
