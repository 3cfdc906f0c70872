#include "nap.h"

/* One gap longer than this counts as this: after a quiet spell, a few close events are enough
 * to start napping again. */
#define GAP_CAP_LINGERS 8

void ja_nap_init(ja_nap *nap, uint64_t linger_us)
{
    *nap = (ja_nap){.linger_us = linger_us, .gap_us = linger_us * GAP_CAP_LINGERS};
}

void ja_nap_event(ja_nap *nap, uint64_t now_us)
{
    if (nap->seen_event) {
        uint64_t gap = now_us > nap->last_event_us ? now_us - nap->last_event_us : 0;
        uint64_t cap = nap->linger_us * GAP_CAP_LINGERS;
        if (gap > cap)
            gap = cap;
        /* An average over about the last eight events: steady load, not one close pair. */
        nap->gap_us = nap->gap_us - nap->gap_us / 8 + gap / 8;
    }
    nap->seen_event = true;
    nap->last_event_us = now_us;
}

bool ja_nap_may(const ja_nap *nap, uint64_t now_us)
{
    if (nap->linger_us == 0 || !nap->seen_event)
        return false;
    uint64_t since = now_us > nap->last_event_us ? now_us - nap->last_event_us : 0;
    return nap->gap_us * 2 < nap->linger_us && since < nap->linger_us;
}

int ja_nap_timeout_ms(const ja_nap *nap)
{
    uint64_t ms = (nap->linger_us + 999) / 1000;
    return ms < 1 ? 1 : (int)ms;
}
