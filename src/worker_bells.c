#include "worker_bells.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

int ja_worker_bells_init(ja_worker_bells *bells, int count)
{
    bells->bells = calloc((size_t)count, sizeof *bells->bells);
    bells->count = 0;
    atomic_init(&bells->armed_count, 0);
    atomic_init(&bells->awake, count);
    if (!bells->bells)
        return -ENOMEM;
    for (int i = 0; i < count; i++) {
        bells->bells[i].fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (bells->bells[i].fd < 0)
            return -errno;
        atomic_init(&bells->bells[i].armed, false);
        bells->count++;
    }
    return 0;
}

void ja_worker_bells_destroy(ja_worker_bells *bells)
{
    for (int i = 0; i < bells->count; i++)
        close(bells->bells[i].fd);
    free(bells->bells);
    bells->bells = NULL;
    bells->count = 0;
}

static void ring(ja_worker_bell *bell)
{
    uint64_t one = 1;
    ssize_t ignored = write(bell->fd, &one, sizeof one);
    (void)ignored;
}

void ja_worker_bells_arm(ja_worker_bells *bells, int index)
{
    ja_worker_bell *bell = &bells->bells[index];
    if (!atomic_exchange(&bell->armed, true))
        atomic_fetch_add(&bells->armed_count, 1);
    /* Orders the armed flag before the caller's next look at the ring (see the header). */
    atomic_thread_fence(memory_order_seq_cst);
}

void ja_worker_bells_disarm(ja_worker_bells *bells, int index)
{
    /* Whoever clears the flag also takes it out of the count: the worker here, or the
     * consumer when it rang this bell. */
    if (atomic_exchange(&bells->bells[index].armed, false))
        atomic_fetch_sub(&bells->armed_count, 1);
}

void ja_worker_bells_clear(ja_worker_bells *bells, int index)
{
    uint64_t count;
    ssize_t ignored = read(bells->bells[index].fd, &count, sizeof count);
    (void)ignored;
}

int ja_worker_bells_fd(const ja_worker_bells *bells, int index)
{
    return bells->bells[index].fd;
}

void ja_worker_bells_falling_asleep(ja_worker_bells *bells)
{
    atomic_fetch_sub(&bells->awake, 1);
    /* Orders the count before the caller's last look at the ring (see the header). */
    atomic_thread_fence(memory_order_seq_cst);
}

void ja_worker_bells_woke(ja_worker_bells *bells)
{
    atomic_fetch_add(&bells->awake, 1);
}

void ja_worker_bells_ring_one(ja_worker_bells *bells)
{
    if (atomic_load(&bells->armed_count) == 0)
        return;
    /* The lowest first: the same thread keeps carrying the calls while it keeps up. */
    for (int i = 0; i < bells->count; i++) {
        ja_worker_bell *bell = &bells->bells[i];
        if (atomic_load_explicit(&bell->armed, memory_order_relaxed) &&
            atomic_exchange(&bell->armed, false)) {
            atomic_fetch_sub(&bells->armed_count, 1);
            ring(bell);
            return;
        }
    }
}

void ja_worker_bells_work_added(ja_worker_bells *bells, size_t waiting)
{
    /* Orders the push the caller just made before the look at the awake count and the bells. */
    atomic_thread_fence(memory_order_seq_cst);
    if (waiting < JA_BELL_BACKLOG && atomic_load(&bells->awake) > 0)
        return; /* an awake worker looks at the ring before it sleeps */
    ja_worker_bells_ring_one(bells);
}

void ja_worker_bells_ring_all(ja_worker_bells *bells)
{
    for (int i = 0; i < bells->count; i++)
        ring(&bells->bells[i]);
}
