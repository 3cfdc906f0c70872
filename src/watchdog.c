#include "watchdog.h"

#include "log.h"

#include <sys/socket.h>

void ja_watchdog_init(ja_watched_connection *w, const char *name)
{
    w->name = name;
    w->fd = -1;
    w->fired = false;
    atomic_init(&w->busy_since, 0);
    pthread_mutex_init(&w->lock, NULL);
}

void ja_watchdog_destroy(ja_watched_connection *w)
{
    pthread_mutex_destroy(&w->lock);
}

void ja_watchdog_attach(ja_watched_connection *w, int fd, uint64_t now)
{
    pthread_mutex_lock(&w->lock);
    w->fd = fd;
    w->fired = false;
    /* Whatever the owner did before (connecting, backing off) is not a hang of this socket. */
    atomic_store_explicit(&w->busy_since, fd >= 0 ? now : 0, memory_order_relaxed);
    pthread_mutex_unlock(&w->lock);
}

bool ja_watchdog_is_stuck(uint64_t busy_since, uint64_t now, uint64_t limit_ms)
{
    return busy_since != 0 && now > busy_since && now - busy_since > limit_ms;
}

bool ja_watchdog_check(ja_watched_connection *w, uint64_t now, uint64_t limit_ms)
{
    uint64_t since = atomic_load_explicit(&w->busy_since, memory_order_relaxed);
    if (!ja_watchdog_is_stuck(since, now, limit_ms))
        return false;
    bool fired = false;
    pthread_mutex_lock(&w->lock);
    if (w->fd >= 0 && !w->fired) {
        /* shutdown, not close: the descriptor stays the owner's to free, and cannot be reused
         * by another connection while the owner still holds it. */
        shutdown(w->fd, SHUT_RDWR);
        w->fired = fired = true;
    }
    pthread_mutex_unlock(&w->lock);
    if (fired)
        ja_log_warn("the %s thread has been inside one AMQP call for %llu ms (the broker stopped "
                    "reading?); shutting its connection down to reconnect",
                    w->name, (unsigned long long)(now - since));
    return fired;
}
