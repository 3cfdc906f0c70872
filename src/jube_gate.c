#include "jube_gate.h"

#include "backoff.h"

#include <string.h>

void ja_jube_gate_init(ja_jube_gate *g, uint64_t base_ms, uint64_t max_ms, uint64_t seed)
{
    memset(g, 0, sizeof *g);
    g->base_ms = base_ms;
    g->max_ms = max_ms;
    g->rng = seed ? seed : 1;
}

bool ja_jube_gate_may_start(const ja_jube_gate *g, int share, uint64_t now_ms)
{
    if (g->unavailable_streak == 0)
        return g->calls < share;
    return now_ms >= g->open_at_ms && !g->probe_in_flight;
}

bool ja_jube_gate_started(ja_jube_gate *g, bool counts_as_probe)
{
    g->calls++;
    bool probe = counts_as_probe && g->unavailable_streak > 0;
    if (probe)
        g->probe_in_flight = true;
    return probe;
}

static void ended(ja_jube_gate *g, bool was_probe)
{
    if (g->calls > 0)
        g->calls--;
    if (was_probe)
        g->probe_in_flight = false;
}

void ja_jube_gate_abandoned(ja_jube_gate *g, bool was_probe)
{
    ended(g, was_probe);
}

ja_gate_event ja_jube_gate_answered(ja_jube_gate *g, bool was_probe, bool unavailable,
                                    int64_t retry_after_ms, uint64_t now_ms)
{
    ended(g, was_probe);
    if (!unavailable) {
        unsigned streak = g->unavailable_streak;
        g->unavailable_streak = 0;
        return streak == 0 ? JA_GATE_UNCHANGED : streak > 1 ? JA_GATE_RECOVERED : JA_GATE_REOPENED;
    }
    /* A call that was under way when another found Jube unavailable just waits for the gate. */
    if (!was_probe && g->unavailable_streak > 0)
        return JA_GATE_UNCHANGED;
    g->unavailable_streak++;
    uint64_t delay = ja_backoff_ms(g->unavailable_streak, g->base_ms, g->max_ms, &g->rng);
    delay = ja_backoff_with_retry_after(delay, retry_after_ms, g->max_ms);
    g->open_at_ms = now_ms + delay;
    return was_probe ? JA_GATE_OUTAGE : JA_GATE_CLOSED;
}

uint64_t ja_jube_gate_due(const ja_jube_gate *g, uint64_t due_ms)
{
    if (g->unavailable_streak > 0 && due_ms < g->open_at_ms)
        return g->open_at_ms;
    return due_ms;
}
