#include "jube_limit.h"

#include "clock.h"
#include "job.h"
#include "log.h"
#include "metrics.h"

void ja_jube_limit_init(ja_jube_limit *l, bool adaptive, int floor, int ceiling)
{
    pthread_mutex_init(&l->lock, NULL);
    ja_concurrency_limit_init(&l->limit, adaptive, floor, ceiling, ja_clock_ms());
    l->logged = ja_concurrency_limit_current(&l->limit);
    atomic_init(&l->current, l->logged);
    atomic_init(&l->calls, 0);
    atomic_store(&ja_stats.jube_limit, l->logged);
}

void ja_jube_limit_destroy(ja_jube_limit *l)
{
    pthread_mutex_destroy(&l->lock);
}

/* Publishes a changed limit. Called with the lock held. */
static void publish(ja_jube_limit *l, int before)
{
    const ja_concurrency_limit *c = &l->limit;
    int now = ja_concurrency_limit_current(c);
    atomic_store_explicit(&l->current, now, memory_order_relaxed);
    atomic_store_explicit(&ja_stats.jube_limit, now, memory_order_relaxed);
    for (int i = 0; i < JA_LIMIT_CUT_CAUSES; i++)
        atomic_store_explicit(&ja_stats.limit_cuts[i], c->cuts[i], memory_order_relaxed);
    if (now >= 2 * l->logged || 2 * now <= l->logged) {
        ja_log_info("Jube concurrency limit now %d calls (was %d when last logged, %d just "
                    "before): round trip %.1f ms, %.1f ms unloaded",
                    now, l->logged, before, c->last_rtt_ms, c->baseline_ms);
        l->logged = now;
    }
}

bool ja_jube_limit_sample(ja_jube_limit *l, uint64_t rtt_us, bool overload, int in_flight)
{
    if (!l->limit.adaptive)
        return false;
    uint64_t now = ja_clock_ms();
    pthread_mutex_lock(&l->lock);
    ja_concurrency_limit *c = &l->limit;
    int before = ja_concurrency_limit_current(c);
    ja_concurrency_limit_sample(c, now, rtt_us, overload, in_flight);
    bool changed = ja_concurrency_limit_update(c, now);
    atomic_store_explicit(&ja_stats.jube_rtt_us, (unsigned long)(c->last_rtt_ms * 1000),
                          memory_order_relaxed);
    atomic_store_explicit(&ja_stats.jube_rtt_baseline_us, (unsigned long)(c->baseline_ms * 1000),
                          memory_order_relaxed);
    if (changed)
        publish(l, before);
    bool grew = ja_concurrency_limit_current(c) > before;
    pthread_mutex_unlock(&l->lock);
    return grew;
}

void ja_jube_limit_outage(ja_jube_limit *l)
{
    pthread_mutex_lock(&l->lock);
    ja_concurrency_limit_outage(&l->limit);
    pthread_mutex_unlock(&l->lock);
}

void ja_jube_limit_recovered(ja_jube_limit *l)
{
    pthread_mutex_lock(&l->lock);
    ja_concurrency_limit_recovered(&l->limit);
    pthread_mutex_unlock(&l->lock);
}
