#include "reconnect.h"

#include "backoff.h"
#include "clock.h"
#include "job.h"
#include "log.h"

#include <stdio.h>
#include <string.h>

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

void ja_reconnect_init(ja_reconnect *r, const char *who, uint64_t seed, int node_count)
{
    memset(r, 0, sizeof *r);
    r->who = who;
    r->rng = seed ? seed : 1;
    r->count = node_count > 0 ? node_count : 1;
    for (int i = 0; i < r->count; i++)
        r->order[i] = i;
    for (int i = r->count - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(next_random(&r->rng) % (uint64_t)(i + 1));
        int swap = r->order[i];
        r->order[i] = r->order[j];
        r->order[j] = swap;
    }
}

/* Moves to the next node; returns the delay before trying it. */
static uint64_t move_on(ja_reconnect *r, const ja_config *cfg)
{
    r->position = (r->position + 1) % r->count;
    if (++r->tried < r->count)
        return 0;
    r->tried = 0;
    r->failures++;
    return ja_backoff_ms(r->failures, (uint64_t)cfg->reconnect_base_ms,
                         (uint64_t)cfg->reconnect_max_ms, &r->rng);
}

uint64_t ja_reconnect_failed(ja_reconnect *r, const ja_config *cfg, const char *error)
{
    int node = ja_reconnect_node(r);
    const char *name = cfg->brokers[node].name;
    bool first = !r->failing;
    bool new_reason = strcmp(error, r->last_error[node]) != 0;
    snprintf(r->last_error[node], sizeof r->last_error[node], "%s", error);
    if (first) {
        r->failing = true;
        r->down_since_ms = ja_clock_ms();
    }
    uint64_t delay = move_on(r, cfg);
    char next[512];
    if (delay == 0)
        snprintf(next, sizeof next, "trying node %s now", cfg->brokers[ja_reconnect_node(r)].name);
    else
        snprintf(next, sizeof next,
                 "every node tried; trying %s again in %llu ms (backing off "
                 "up to %d ms)",
                 cfg->brokers[ja_reconnect_node(r)].name, (unsigned long long)delay,
                 cfg->reconnect_max_ms);
    if (first || new_reason)
        ja_log_warn("%s cannot connect to node %s: %s; %s", r->who, name, error, next);
    else
        ja_log_debug("%s still cannot connect to node %s (round %u); %s", r->who, name,
                     r->failures + 1, next);
    return delay;
}

void ja_reconnect_succeeded(ja_reconnect *r, const ja_config *cfg)
{
    const struct amqp_connection_info *a = &cfg->brokers[ja_reconnect_node(r)].amqp;
    if (r->failing)
        ja_log_info("%s connected to node %s:%d vhost '%s' after %llu ms", r->who, a->host, a->port,
                    a->vhost, (unsigned long long)(ja_clock_ms() - r->down_since_ms));
    else
        ja_log_info("%s connected to node %s:%d vhost '%s'", r->who, a->host, a->port, a->vhost);
    r->up_since_ms = ja_clock_ms();
    r->tried = 0;
}

uint64_t ja_reconnect_lost(ja_reconnect *r, const ja_config *cfg, uint64_t now)
{
    if (now - r->up_since_ms >= JA_RECONNECT_STABLE_MS) {
        r->failures = 0;
        r->tried = 0;
        r->failing = false;
        for (int i = 0; i < r->count; i++)
            r->last_error[i][0] = '\0';
        r->position = (r->position + 1) % r->count;
        return 0;
    }
    if (!r->failing) {
        r->failing = true;
        r->down_since_ms = now;
    }
    return move_on(r, cfg);
}
