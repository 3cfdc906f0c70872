#ifndef JA_WATCHDOG_H
#define JA_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Turns a thread stuck inside rabbitmq-c into a reconnect. rabbitmq-c 0.11 has no send time-out
 * (alanxz/rabbitmq-c#519, still open): a send to a broker that stopped reading can block for ever,
 * and with it the thread that owns the connection, so nothing of the service's own loop would
 * notice. The owner marks when it leaves its wait (busy) and when it goes back to it (idle); the
 * main thread looks once a second and, when the owner has been busy for longer than the limit,
 * shuts the socket down: the blocked call fails at once, and the owner reconnects as after any
 * loss. */

typedef struct {
    const char *name;            /* "consumer" or "publisher", for the log */
    pthread_mutex_t lock;        /* orders a shutdown against the owner replacing its socket */
    int fd;                      /* the connection's socket, or -1 */
    bool fired;                  /* shut down already: say so once */
    _Atomic uint64_t busy_since; /* ms; 0 while the owner waits for input */
} ja_watched_connection;

void ja_watchdog_init(ja_watched_connection *w, const char *name);
void ja_watchdog_destroy(ja_watched_connection *w);

/* The owner made a connection on socket fd (busy from now on), or is about to free it (fd -1). */
void ja_watchdog_attach(ja_watched_connection *w, int fd, uint64_t now);

/* The owner leaves its wait, or made progress (now in ms, never 0), or goes back to waiting. */
static inline void ja_watchdog_busy(ja_watched_connection *w, uint64_t now)
{
    atomic_store_explicit(&w->busy_since, now, memory_order_relaxed);
}
static inline void ja_watchdog_idle(ja_watched_connection *w)
{
    atomic_store_explicit(&w->busy_since, 0, memory_order_relaxed);
}

/* True when an owner busy since busy_since is stuck at now. */
bool ja_watchdog_is_stuck(uint64_t busy_since, uint64_t now, uint64_t limit_ms);

/* Shuts the socket down when its owner is stuck. Returns true when it did. */
bool ja_watchdog_check(ja_watched_connection *w, uint64_t now, uint64_t limit_ms);

#endif
