#ifndef JA_NAP_H
#define JA_NAP_H

#include <stdbool.h>
#include <stdint.h>

/* Whether a thread may nap: sleep for at most a short linger, letting the hand-offs that are not
 * urgent (acks for the consumer, publish confirms for the publisher) wait for its next wake-up
 * instead of each waking it at once.
 *
 * At partial load every stage otherwise wakes once per message for each thing it hands on or
 * hears back, and on a machine whose cores are shared (a VM above all) a wake-up costs more than
 * the work it brings. A thread whose own events (deliveries for the consumer, results for the
 * publisher) come closer together than half the linger wakes soon anyway: the waiting hand-offs
 * ride along with the next event, or the linger's end. A thread whose events come further apart
 * sleeps until something wakes it, as before: napping would then add wake-ups, not save them.
 *
 * Pure bookkeeping, owned by one thread, with the clock (microseconds) passed in. */

typedef struct {
    uint64_t linger_us; /* 0: never nap */
    uint64_t last_event_us;
    uint64_t gap_us; /* moving average of the time between events */
    bool seen_event;
} ja_nap;

void ja_nap_init(ja_nap *nap, uint64_t linger_us);

/* One of the thread's own events happened (a batch of them counts each). */
void ja_nap_event(ja_nap *nap, uint64_t now_us);

/* True when the thread may nap now: its events come closer together than half the linger and
 * the last one was within the linger. Sleep no longer than ja_nap_timeout_ms then. */
bool ja_nap_may(const ja_nap *nap, uint64_t now_us);

/* The longest nap, in poll()'s milliseconds, rounded up (at least 1). */
int ja_nap_timeout_ms(const ja_nap *nap);

#endif
