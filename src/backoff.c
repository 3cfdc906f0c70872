#include "backoff.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>

static uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

uint64_t ja_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint64_t *rng)
{
    uint64_t delay = base_ms;
    for (unsigned i = 1; i < attempt && delay < max_ms; i++)
        delay *= 2;
    if (delay > max_ms)
        delay = max_ms;
    uint64_t half = delay / 2;
    return delay - half + xorshift64(rng) % (half + 1);
}

uint64_t ja_backoff_with_retry_after(uint64_t delay_ms, int64_t retry_after_ms, uint64_t max_ms)
{
    if (retry_after_ms > 0 && (uint64_t)retry_after_ms > delay_ms)
        delay_ms = (uint64_t)retry_after_ms < max_ms ? (uint64_t)retry_after_ms : max_ms;
    return delay_ms;
}

int64_t ja_backoff_retry_after_ms(const char *value, time_t now)
{
    while (*value == ' ')
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long seconds = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\r' || *end == '\n')
            end++;
        if (*end != '\0' || seconds < 0 || seconds > 86400 * 7)
            return -1;
        return (int64_t)seconds * 1000;
    }
    time_t when = curl_getdate(value, NULL);
    if (when == -1)
        return -1;
    return when > now ? (int64_t)(when - now) * 1000 : 0;
}
