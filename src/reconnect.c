#include "reconnect.h"

#include "job.h"
#include "log.h"
#include "outcome.h"

#include <stdio.h>
#include <string.h>

void ja_reconnect_init(ja_reconnect *r, const char *who, uint64_t seed)
{
    memset(r, 0, sizeof *r);
    r->who = who;
    r->rng = seed ? seed : 1;
}

uint64_t ja_reconnect_failed(ja_reconnect *r, const ja_config *cfg, const char *error)
{
    r->failures++;
    uint64_t delay = ja_backoff_ms(r->failures, (uint64_t)cfg->reconnect_base_ms,
                                   (uint64_t)cfg->reconnect_max_ms, &r->rng);
    if (r->failures == 1) {
        r->down_since_ms = ja_now_ms();
        ja_log_warn("%s cannot connect: %s; reconnecting in %llu ms, backing off up to %d ms",
                    r->who, error, (unsigned long long)delay, cfg->reconnect_max_ms);
    } else if (strcmp(error, r->last_error) != 0) {
        ja_log_warn("%s still cannot connect (attempt %u): %s", r->who, r->failures, error);
    } else {
        ja_log_debug("%s still cannot connect (attempt %u); reconnecting in %llu ms", r->who,
                     r->failures, (unsigned long long)delay);
    }
    snprintf(r->last_error, sizeof r->last_error, "%s", error);
    return delay;
}

void ja_reconnect_succeeded(ja_reconnect *r, const ja_config *cfg)
{
    if (r->failures > 0)
        ja_log_info("%s connected to %s:%d vhost '%s' after %u attempts (%llu ms)", r->who,
                    cfg->amqp.host, cfg->amqp.port, cfg->amqp.vhost, r->failures + 1,
                    (unsigned long long)(ja_now_ms() - r->down_since_ms));
    else
        ja_log_info("%s connected to %s:%d vhost '%s'", r->who, cfg->amqp.host, cfg->amqp.port,
                    cfg->amqp.vhost);
    r->up_since_ms = ja_now_ms();
    r->last_error[0] = '\0';
}

uint64_t ja_reconnect_lost(ja_reconnect *r, const ja_config *cfg, uint64_t now)
{
    if (now - r->up_since_ms >= JA_RECONNECT_STABLE_MS) {
        r->failures = 0;
        return 0;
    }
    r->failures++;
    if (r->failures == 1)
        r->down_since_ms = now;
    return ja_backoff_ms(r->failures, (uint64_t)cfg->reconnect_base_ms,
                         (uint64_t)cfg->reconnect_max_ms, &r->rng);
}
