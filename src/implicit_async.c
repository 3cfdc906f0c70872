#include "implicit_async.h"

#include "validate.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

typedef struct {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* At a '"': moves past the string; its raw contents (escapes left as they are) in *s, *n. */
static bool read_string(cursor *c, const char **s, size_t *n)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    const char *start = ++c->p;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p == '\\')
            c->p++;
        c->p++;
    }
    if (c->p >= c->end)
        return false;
    *s = start;
    *n = (size_t)(c->p - start);
    c->p++;
    return true;
}

/* Moves past one value of any kind: strings respected, brackets counted. */
static bool skip_value(cursor *c)
{
    const char *s;
    size_t n;
    if (c->p >= c->end)
        return false;
    if (*c->p == '"')
        return read_string(c, &s, &n);
    if (*c->p == '{' || *c->p == '[') {
        int depth = 0;
        while (c->p < c->end) {
            char ch = *c->p;
            if (ch == '"') {
                if (!read_string(c, &s, &n))
                    return false;
                continue;
            }
            if (ch == '{' || ch == '[') {
                depth++;
            } else if ((ch == '}' || ch == ']') && --depth == 0) {
                c->p++;
                return true;
            }
            c->p++;
        }
        return false;
    }
    /* A number, true, false or null. */
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && !isspace((unsigned char)*c->p))
        c->p++;
    return true;
}

static bool key_is(const char *s, size_t n, const char *name)
{
    return n == strlen(name) && strncasecmp(s, name, n) == 0;
}

ja_answer_kind ja_answer_kind_of(const char *body, size_t len, char guid[JA_GUID_LEN + 1])
{
    cursor c = {body, body + len};
    skip_space(&c);
    if (c.p >= c.end || *c.p != '{')
        return JA_ANSWER_COMPLETE;
    c.p++;
    bool timed_out = false;
    guid[0] = '\0';
    for (;;) {
        skip_space(&c);
        const char *key;
        size_t key_len;
        if (!read_string(&c, &key, &key_len))
            break;
        skip_space(&c);
        if (c.p >= c.end || *c.p != ':')
            break;
        c.p++;
        skip_space(&c);
        if (key_is(key, key_len, "ImplicitAsyncTimedOut")) {
            timed_out = c.end - c.p >= 4 && memcmp(c.p, "true", 4) == 0;
        } else if (key_is(key, key_len, "EntityAnalysisModelInstanceEntryGuid") && c.p < c.end &&
                   *c.p == '"') {
            const char *s;
            size_t n;
            cursor at = c;
            if (read_string(&at, &s, &n) && ja_guid_is_valid(s, n)) {
                for (size_t i = 0; i < n; i++)
                    guid[i] = (char)tolower((unsigned char)s[i]);
                guid[n] = '\0';
            }
        }
        if (!skip_value(&c))
            break;
        skip_space(&c);
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        break;
    }
    if (!timed_out)
        return JA_ANSWER_COMPLETE;
    return guid[0] ? JA_ANSWER_PLACEHOLDER : JA_ANSWER_PLACEHOLDER_NO_GUID;
}
