#ifndef JA_INBOX_H
#define JA_INBOX_H

#include <stdatomic.h>

/* An unbounded, lock-free, many-producer single-owner list with a wake-up file descriptor.
 *
 * The consumer and the publisher each own an inbox: workers hand results to the publisher, and
 * the publisher (or a worker) hands finished jobs back to the consumer. Both owners also wait on
 * their AMQP socket, so the wake-up is an eventfd they can poll beside it.
 *
 * A push links an intrusive node with one compare-and-swap and writes the eventfd only when the
 * inbox was empty: a non-empty inbox already has a wake-up pending. The owner takes everything
 * at once, which is why no ABA problem can arise. It can never be full, so a producer never has
 * to wait or drop. */

typedef struct ja_inbox_node {
    struct ja_inbox_node *next;
} ja_inbox_node;

typedef struct {
    _Atomic(ja_inbox_node *) head;
    int wake_fd;
} ja_inbox;

/* Returns 0 or a negative errno. */
int ja_inbox_init(ja_inbox *inbox);
void ja_inbox_destroy(ja_inbox *inbox);

void ja_inbox_push(ja_inbox *inbox, ja_inbox_node *node);

/* Wakes the owner without handing it anything (to make it look at shared state). */
void ja_inbox_wake(ja_inbox *inbox);

/* Takes every node, oldest first, and consumes the pending wake-up. Owner only. */
ja_inbox_node *ja_inbox_take_all(ja_inbox *inbox);

/* Readable while a wake-up is pending: poll it beside a socket. */
static inline int ja_inbox_fd(const ja_inbox *inbox)
{
    return inbox->wake_fd;
}

#endif
