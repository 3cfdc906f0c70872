#include "outcome.h"

#include <curl/curl.h>
#include <ctype.h>
#include <stdlib.h>

ja_outcome ja_outcome_classify(bool transport_ok, long http_status, size_t body_len)
{
    if (!transport_ok)
        return JA_OUTCOME_UNAVAILABLE;
    if (http_status >= 200 && http_status < 300) {
        /* Jube answers 204 with no body while a model is not started: try again later. */
        return body_len > 0 ? JA_OUTCOME_SUCCESS : JA_OUTCOME_UNAVAILABLE;
    }
    switch (http_status) {
    case 401: /* our credentials are wrong or missing: the operator must fix the service, */
    case 403: /* and the message stays safe in the broker meanwhile */
    case 408:
    case 429:
    case 502:
    case 503:
    case 504:
        return JA_OUTCOME_UNAVAILABLE;
    default:
        break;
    }
    if (http_status >= 400 && http_status < 500)
        return JA_OUTCOME_MESSAGE_FAULT;
    /* Other 5xx, and statuses Jube never sends (1xx, 3xx). */
    return JA_OUTCOME_SERVER_ERROR;
}

const char *ja_outcome_name(ja_outcome outcome)
{
    switch (outcome) {
    case JA_OUTCOME_SUCCESS:
        return "success";
    case JA_OUTCOME_MESSAGE_FAULT:
        return "message fault";
    case JA_OUTCOME_UNAVAILABLE:
        return "unavailable";
    case JA_OUTCOME_SERVER_ERROR:
        return "server error";
    }
    return "unknown";
}

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

int64_t ja_retry_after_ms(const char *value, time_t now)
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
