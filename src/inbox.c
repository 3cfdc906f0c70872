#include "inbox.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

int ja_inbox_init(ja_inbox *inbox, unsigned wake_after)
{
    atomic_init(&inbox->head, NULL);
    atomic_init(&inbox->wake_pending, false);
    atomic_init(&inbox->napping, false);
    atomic_init(&inbox->lazy_waiting, 0);
    inbox->wake_after = wake_after > 0 ? wake_after : 1;
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

/* Writes the eventfd unless a wake-up is pending already: one system call per wake-up, not per
 * node. */
static void wake_once(ja_inbox *inbox)
{
    if (!atomic_exchange(&inbox->wake_pending, true))
        ja_inbox_wake(inbox);
}

static void link_node(ja_inbox *inbox, ja_inbox_node *node)
{
    ja_inbox_node *head = atomic_load_explicit(&inbox->head, memory_order_relaxed);
    do {
        node->next = head;
    } while (!atomic_compare_exchange_weak_explicit(&inbox->head, &head, node, memory_order_seq_cst,
                                                    memory_order_relaxed));
}

void ja_inbox_push(ja_inbox *inbox, ja_inbox_node *node)
{
    link_node(inbox, node);
    wake_once(inbox);
}

void ja_inbox_push_lazy(ja_inbox *inbox, ja_inbox_node *node)
{
    link_node(inbox, node);
    unsigned waiting = atomic_fetch_add(&inbox->lazy_waiting, 1) + 1;
    /* The link above and this load are both sequentially consistent (see the header). */
    if (!atomic_load(&inbox->napping) || waiting >= inbox->wake_after)
        wake_once(inbox);
}

void ja_inbox_set_napping(ja_inbox *inbox, bool napping)
{
    atomic_store(&inbox->napping, napping);
}

bool ja_inbox_has_nodes(ja_inbox *inbox)
{
    return atomic_load(&inbox->head) != NULL;
}

void ja_inbox_woken(ja_inbox *inbox)
{
    uint64_t count;
    ssize_t ignored = read(inbox->wake_fd, &count, sizeof count);
    (void)ignored;
}

ja_inbox_node *ja_inbox_take_all(ja_inbox *inbox)
{
    /* Clear the pending flag before taking the list: a push that lands after the exchange below
     * finds no wake-up pending and writes a fresh one, so none is lost. A wake-up written after
     * the flag was cleared but for a node taken here only costs the owner one pass. */
    atomic_store(&inbox->wake_pending, false);
    atomic_store(&inbox->lazy_waiting, 0);

    ja_inbox_node *lifo = atomic_exchange(&inbox->head, NULL);
    ja_inbox_node *fifo = NULL;
    while (lifo) {
        ja_inbox_node *next = lifo->next;
        lifo->next = fifo;
        fifo = lifo;
        lifo = next;
    }
    return fifo;
}
