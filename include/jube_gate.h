#ifndef JA_JUBE_GATE_H
#define JA_JUBE_GATE_H

#include <stdbool.h>
#include <stdint.h>

/* Whether a worker thread may start a call to Jube now: the one mechanism behind both the limit
 * on calls under way (a share of the concurrency limit, concurrency_limit.h) and the stop while
 * Jube is unavailable.
 *
 * While Jube answers, a thread starts calls up to its share. When a call finds Jube unavailable
 * (no answer, 408, 429, 502-504, ...), the gate closes for one backoff step; then one call at a
 * time, the probe, tests whether Jube is back, and each failed probe closes it for a longer step
 * (exponential with jitter, from --retry-base-ms to --retry-max-ms, or Retry-After when longer).
 * So each thread probes an unavailable Jube once per step, however many messages it holds. Calls
 * already under way when the gate closes just wait for it to open again. Any answer that is not
 * "unavailable" opens it.
 *
 * Pure bookkeeping, one per worker thread, driven by the thread with a clock it passes in. */

typedef struct {
    uint64_t base_ms, max_ms;    /* the backoff */
    uint64_t rng;                /* xorshift state for the jitter, never 0 */
    unsigned unavailable_streak; /* failures in a row: the first, then failed probes */
    uint64_t open_at_ms;         /* while closed: when the next probe may start */
    bool probe_in_flight;
    int calls; /* this thread's calls under way */
} ja_jube_gate;

void ja_jube_gate_init(ja_jube_gate *g, uint64_t base_ms, uint64_t max_ms, uint64_t seed);

/* True while Jube is taken to be unavailable. */
static inline bool ja_jube_gate_closed(const ja_jube_gate *g)
{
    return g->unavailable_streak > 0;
}

/* Whether an answer could let another call start: while closed, when no probe is out; while
 * open, when the thread's calls are below its share. */
static inline bool ja_jube_gate_has_room(const ja_jube_gate *g, int share)
{
    return ja_jube_gate_closed(g) ? !g->probe_in_flight : g->calls < share;
}

/* Whether a call may start now, with `share` calls allowed to this thread: below the share while
 * Jube answers; only the probe, once due, while it does not. */
bool ja_jube_gate_may_start(const ja_jube_gate *g, int share, uint64_t now_ms);

/* A call starts. Returns true when it is the probe. A poll of Implicit Async's Callback endpoint
 * never probes (counts_as_probe false): its answers do not tell whether Jube takes invokes. */
bool ja_jube_gate_started(ja_jube_gate *g, bool counts_as_probe);

/* What an answer did to the gate. */
typedef enum {
    JA_GATE_UNCHANGED,
    JA_GATE_CLOSED,    /* Jube is unavailable: it closed (or stays closed a step longer) */
    JA_GATE_OUTAGE,    /* the same, and it was a failed probe: Jube is out, not just busy */
    JA_GATE_REOPENED,  /* Jube answers again after being unavailable */
    JA_GATE_RECOVERED, /* the same after an outage */
} ja_gate_event;

/* A call's answer, or its end without one. unavailable: Jube could not take it. retry_after_ms
 * from the answer, or -1. A call's end always counts (abandoned calls too: pass
 * unavailable false and was_probe as started). */
ja_gate_event ja_jube_gate_answered(ja_jube_gate *g, bool was_probe, bool unavailable,
                                    int64_t retry_after_ms, uint64_t now_ms);

/* A call ended without an answer that says anything (abandoned, or failed to start). */
void ja_jube_gate_abandoned(ja_jube_gate *g, bool was_probe);

/* When a call that would like to start at due_ms may start: not before the gate opens. */
uint64_t ja_jube_gate_due(const ja_jube_gate *g, uint64_t due_ms);

#endif
