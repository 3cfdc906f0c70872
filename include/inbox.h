#ifndef JA_INBOX_H
#define JA_INBOX_H

#include <stdatomic.h>
#include <stdbool.h>

/* An unbounded, lock-free, many-producer single-owner list with a wake-up file descriptor.
 *
 * The consumer and the publisher each own an inbox: workers hand results to the publisher, and
 * the publisher (or a worker) hands finished jobs back to the consumer. Both owners also wait on
 * their AMQP socket, so the wake-up is an eventfd they can poll beside it.
 *
 * A push links an intrusive node with one compare-and-swap and writes the eventfd only when no
 * wake-up is pending already. A lazy push does not wake an owner that naps (nap.h): one that
 * sleeps no longer than a short linger anyway, and takes the node then or at its next event.
 * The owner says whether it naps before its last look at the list, and both sides put a
 * sequentially consistent operation between their store and their load, so either the owner sees
 * the node or the pusher sees that it sleeps for long and wakes it. Lazy pushes wake the owner
 * all the same once wake_after of them wait.
 *
 * The owner takes everything at once, which is why no ABA problem can arise. It can never be
 * full, so a producer never has to wait or drop. */

typedef struct ja_inbox_node {
    struct ja_inbox_node *next;
} ja_inbox_node;

typedef struct {
    _Atomic(ja_inbox_node *) head;
    atomic_bool wake_pending; /* the eventfd was written and the owner has not read it yet */
    atomic_bool napping;      /* the owner sleeps no longer than its linger */
    atomic_uint lazy_waiting; /* lazy pushes since the owner last took the list */
    unsigned wake_after;      /* this many lazy pushes wake even a napping owner */
    int wake_fd;
} ja_inbox;

/* Returns 0 or a negative errno. wake_after is at least 1. */
int ja_inbox_init(ja_inbox *inbox, unsigned wake_after);
void ja_inbox_destroy(ja_inbox *inbox);

/* Hands the owner a node and wakes it. */
void ja_inbox_push(ja_inbox *inbox, ja_inbox_node *node);

/* Hands the owner a node that can wait for its next wake-up if it naps. */
void ja_inbox_push_lazy(ja_inbox *inbox, ja_inbox_node *node);

/* Wakes the owner without handing it anything (to make it look at shared state). */
void ja_inbox_wake(ja_inbox *inbox);

/* The owner, before its last look at the list and its sleep: whether it will nap. */
void ja_inbox_set_napping(ja_inbox *inbox, bool napping);

/* True when nodes wait (lazy ones need not have woken the owner). Owner only. */
bool ja_inbox_has_nodes(ja_inbox *inbox);

/* poll() found the inbox's fd readable: consumes the wake-up. Call it before ja_inbox_take_all,
 * and only then, so a pass that was not woken by the inbox costs no system call. Owner only. */
void ja_inbox_woken(ja_inbox *inbox);

/* Takes every node, oldest first. Owner only. */
ja_inbox_node *ja_inbox_take_all(ja_inbox *inbox);

/* Readable while a wake-up is pending: poll it beside a socket. */
static inline int ja_inbox_fd(const ja_inbox *inbox)
{
    return inbox->wake_fd;
}

#endif
