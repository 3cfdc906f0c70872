#include "implicit_async.h"

#include "json.h"
#include "validate.h"

#include <ctype.h>
#include <stdbool.h>
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
