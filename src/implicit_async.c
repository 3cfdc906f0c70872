#include "implicit_async.h"

#include "json.h"
#include "validate.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool key_is(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

typedef struct {
    bool timed_out;
    char *guid;
} placeholder_scan;

static bool look_at_member(const char *name, size_t name_len, ja_json_cursor value, void *arg)
{
    placeholder_scan *scan = arg;
    if (key_is(name, name_len, "ImplicitAsyncTimedOut")) {
        scan->timed_out = value.end - value.p >= 4 && memcmp(value.p, "true", 4) == 0;
    } else if (key_is(name, name_len, "EntityAnalysisModelInstanceEntryGuid")) {
        const char *s;
        size_t n;
        if (ja_json_read_string(&value, &s, &n) && ja_validate_guid(s, n)) {
            for (size_t i = 0; i < n; i++)
                scan->guid[i] = (char)tolower((unsigned char)s[i]);
            scan->guid[n] = '\0';
        }
    }
    return true;
}

ja_answer_kind ja_implicit_async_kind_of(const char *body, size_t len, char guid[JA_GUID_LEN + 1])
{
    ja_json_cursor c = {body, body + len};
    placeholder_scan scan = {.guid = guid};
    guid[0] = '\0';
    /* A body cut short still tells what it said before the cut. */
    ja_json_each_member(&c, look_at_member, &scan);
    if (!scan.timed_out)
        return JA_ANSWER_COMPLETE;
    return guid[0] ? JA_ANSWER_PLACEHOLDER : JA_ANSWER_PLACEHOLDER_NO_GUID;
}

ja_poll_step ja_implicit_async_step(long status, bool answered, uint64_t now_ms,
                                    uint64_t deadline_ms, uint64_t backoff_ms)
{
    if (status == 200 && answered)
        return (ja_poll_step){.action = JA_POLL_PUBLISH};
    if (status == 404)
        return (ja_poll_step){.action = JA_POLL_GONE};
    if (now_ms >= deadline_ms)
        return (ja_poll_step){.action = JA_POLL_TOO_LATE};
    uint64_t due = now_ms + backoff_ms;
    return (ja_poll_step){.action = JA_POLL_AGAIN,
                          .next_poll_ms = due < deadline_ms ? due : deadline_ms};
}

void ja_implicit_async_too_late(char *out, size_t size, int timeout_ms, unsigned polls, long status,
                                const char *error)
{
    if (status == 408)
        snprintf(out, size,
                 "the answer was not ready within --implicit-async-timeout-ms %d (%u polls, the "
                 "last answered 408)",
                 timeout_ms, polls);
    else if (status)
        snprintf(out, size,
                 "the answer could not be collected within --implicit-async-timeout-ms %d (%u "
                 "polls, the last answered HTTP %ld)",
                 timeout_ms, polls, status);
    else
        snprintf(out, size,
                 "the answer could not be collected within --implicit-async-timeout-ms %d (%u "
                 "polls, the last got no answer: %s)",
                 timeout_ms, polls, error);
}
