#include "inbox.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int ja_inbox_init(ja_inbox *inbox)
{
    atomic_init(&inbox->head, NULL);
    inbox->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    return inbox->wake_fd < 0 ? -errno : 0;
}

void ja_inbox_destroy(ja_inbox *inbox)
{
    if (inbox->wake_fd >= 0)
        close(inbox->wake_fd);
    inbox->wake_fd = -1;
}

void ja_inbox_wake(ja_inbox *inbox)
{
    uint64_t one = 1;
    ssize_t ignored = write(inbox->wake_fd, &one, sizeof one);
    (void)ignored;
}

void ja_inbox_push(ja_inbox *inbox, ja_inbox_node *node)
{
    ja_inbox_node *head = atomic_load_explicit(&inbox->head, memory_order_relaxed);
    do {
        node->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&inbox->head, &head, node, memory_order_release,
                                                    memory_order_relaxed));
    if (head == NULL)
        ja_inbox_wake(inbox);
}

ja_inbox_node *ja_inbox_take_all(ja_inbox *inbox)
{
    /* Clear the wake-up before taking the list: a push that lands after the exchange below
     * finds the list empty and writes a fresh wake-up, so none is lost. */
    uint64_t count;
    ssize_t ignored = read(inbox->wake_fd, &count, sizeof count);
    (void)ignored;

    ja_inbox_node *lifo = atomic_exchange_explicit(&inbox->head, NULL, memory_order_acquire);
    ja_inbox_node *fifo = NULL;
    while (lifo) {
        ja_inbox_node *next = lifo->next;
        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
    }
    return fifo;
}
