/* The thread's wait to run, read from the kernel: it grows while another thread holds the only
 * CPU the thread may use, and stays put while the thread sleeps. */

#include "run_delay.h"
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

static void spin_us(uint64_t us)
{
    uint64_t end = now_us() + us;
    while (now_us() < end)
        ;
}

static atomic_bool stop;

static void *spinner(void *arg)
{
    (void)arg;
    while (!atomic_load(&stop))
        ;
    return NULL;
}

TEST(waits_while_another_thread_holds_the_cpu)
{
    ja_run_delay d;
    ja_run_delay_open(&d);
    if (d.fd < 0) {
        fprintf(stderr, "no /proc/thread-self/schedstat here: nothing to measure\n");
        ASSERT_EQ(ja_run_delay_us(&d), 0);
        return;
    }
    /* Both threads on one CPU: each runs about half the time, and waits the other half. */
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
    pthread_t other;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setaffinity_np(&attr, sizeof one, &one);
    ASSERT_EQ(pthread_create(&other, &attr, spinner, NULL), 0);
    pthread_attr_destroy(&attr);
    uint64_t before = ja_run_delay_us(&d);
    spin_us(300000);
    uint64_t waited = ja_run_delay_us(&d) - before;
    atomic_store(&stop, true);
    pthread_join(other, NULL);
    fprintf(stderr, "waited %llu us of 300 ms beside a spinning thread\n",
            (unsigned long long)waited);
    ASSERT_GE(waited, 30000);

    /* Asleep, it is not waiting to run. */
    before = ja_run_delay_us(&d);
    usleep(200000);
    ASSERT_LT(ja_run_delay_us(&d) - before, 20000);
    ja_run_delay_close(&d);
    ASSERT_EQ(d.fd, -1);
}

static const test_case tests[] = {
    TEST_ENTRY(waits_while_another_thread_holds_the_cpu),
};

int main(int argc, char **argv)
{
    return RUN_TESTS(tests);
}
