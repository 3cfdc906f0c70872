#include "service.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int ja_service_init(ja_service *svc, const ja_config *cfg)
{
    svc->cfg = cfg;
    svc->work = ja_ring_new(cfg->ring_capacity);
    if (!svc->work)
        return -ENOMEM;
    int rc = ja_worker_bells_init(&svc->bells, cfg->worker_threads);
    if (rc == 0)
        rc = ja_inbox_init(&svc->to_publisher, 1);
    /* Acks waiting for a napping consumer wake it before the broker's credit runs low. */
    if (rc == 0)
        rc = ja_inbox_init(&svc->to_consumer, (unsigned)cfg->prefetch / 4);
    if (rc != 0)
        return rc;
    atomic_init(&svc->live_generation, 0);
    atomic_init(&svc->stopping, false);
    atomic_init(&svc->threads_exit, false);
    atomic_init(&svc->consumer_done, false);
    atomic_init(&svc->jube_available, true);
    atomic_init(&svc->exit_code, 0);
    /* Every worker thread keeps at least one call, so no thread's waiting retries are stranded. */
    int floor = cfg->worker_threads > 2 ? cfg->worker_threads : 2;
    ja_jube_limit_init(&svc->jube, cfg->concurrency == JA_CONCURRENCY_ADAPTIVE, floor,
                       cfg->workers);
    ja_watchdog_init(&svc->watch[JA_CONN_CONSUMER], "consumer");
    ja_watchdog_init(&svc->watch[JA_CONN_PUBLISHER], "publisher");

    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&svc->sleep_lock, NULL);
    pthread_cond_init(&svc->sleep_changed, &attr);
    pthread_condattr_destroy(&attr);
    return 0;
}

static void free_list(ja_inbox_node *node)
{
    while (node) {
        ja_inbox_node *next = node->next;
        ja_job_free(ja_job_of(node));
        node = next;
    }
}

void ja_service_destroy(ja_service *svc)
{
    if (svc->work) {
        ja_job *job;
        while ((job = ja_ring_pop(svc->work)))
            ja_job_free(job);
        ja_ring_free(svc->work);
        svc->work = NULL;
    }
    free_list(ja_inbox_take_all(&svc->to_publisher));
    free_list(ja_inbox_take_all(&svc->to_consumer));
    ja_inbox_destroy(&svc->to_publisher);
    ja_jube_limit_destroy(&svc->jube);
    ja_inbox_destroy(&svc->to_consumer);
    ja_worker_bells_destroy(&svc->bells);
    ja_watchdog_destroy(&svc->watch[JA_CONN_CONSUMER]);
    ja_watchdog_destroy(&svc->watch[JA_CONN_PUBLISHER]);
    pthread_mutex_destroy(&svc->sleep_lock);
    pthread_cond_destroy(&svc->sleep_changed);
}

void ja_service_fail(ja_service *svc, int exit_code)
{
    int none = 0;
    if (atomic_compare_exchange_strong(&svc->exit_code, &none, exit_code))
        kill(getpid(), SIGTERM); /* the main thread waits for signals */
}

bool ja_service_is_live(const ja_service *svc, uint64_t generation)
{
    return generation == atomic_load(&svc->live_generation);
}

static bool sleep_interrupted(ja_service *svc, ja_wake_on wake_on, uint64_t generation)
{
    if (atomic_load(&svc->threads_exit))
        return true;
    if (wake_on == JA_WAKE_ON_STOP && atomic_load(&svc->stopping))
        return true;
    return generation != 0 && !ja_service_is_live(svc, generation);
}

bool ja_service_sleep(ja_service *svc, uint64_t ms, ja_wake_on wake_on, uint64_t generation)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&svc->sleep_lock);
    int rc = 0;
    while (!sleep_interrupted(svc, wake_on, generation) && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&svc->sleep_changed, &svc->sleep_lock, &deadline);
    bool interrupted = sleep_interrupted(svc, wake_on, generation);
    pthread_mutex_unlock(&svc->sleep_lock);
    return !interrupted;
}

void ja_service_wake_sleepers(ja_service *svc)
{
    /* Taking the lock orders this wake-up after any sleeper's check of the state. */
    pthread_mutex_lock(&svc->sleep_lock);
    pthread_cond_broadcast(&svc->sleep_changed);
    pthread_mutex_unlock(&svc->sleep_lock);
    ja_worker_bells_ring_all(&svc->bells);
}
