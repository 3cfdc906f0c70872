#include "json.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>

void ja_json_skip_space(ja_json_cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

bool ja_json_take(ja_json_cursor *c, char ch)
{
    ja_json_skip_space(c);
    if (c->p >= c->end || *c->p != ch)
        return false;
    c->p++;
    return true;
}

/* A small validating JSON scanner: no allocation, no global state, bounded nesting. It only
 * answers "is this JSON?"; the body is forwarded to Jube byte for byte and never rebuilt. */

#define JSON_MAX_DEPTH 256

typedef struct {
    ja_json_cursor at;
    const char *error;
    const char *error_at;
} scanner;

static bool fail(scanner *s, const char *what)
{
    if (!s->error) {
        s->error = what;
        s->error_at = s->at.p;
    }
    return false;
}

static void skip_space(scanner *s)
{
    ja_json_skip_space(&s->at);
}

static bool scan_literal(scanner *s, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(s->at.end - s->at.p) < n || memcmp(s->at.p, word, n) != 0)
        return fail(s, "unexpected character");
    s->at.p += n;
    return true;
}

static bool scan_string(scanner *s)
{
    s->at.p++; /* opening quote */
    while (s->at.p < s->at.end) {
        unsigned char c = (unsigned char)*s->at.p;
        if (c == '"') {
            s->at.p++;
            return true;
        }
        if (c < 0x20)
            return fail(s, "control character inside a string");
        if (c == '\\') {
            s->at.p++;
            if (s->at.p >= s->at.end)
                break;
            char e = *s->at.p;
            if (e == 'u') {
                for (int i = 1; i <= 4; i++) {
                    if (s->at.p + i >= s->at.end || !isxdigit((unsigned char)s->at.p[i]))
                        return fail(s, "bad \\u escape");
                }
                s->at.p += 4;
            } else if (!strchr("\"\\/bfnrt", e) || e == '\0') {
                return fail(s, "bad escape in a string");
            }
        }
        s->at.p++;
    }
    return fail(s, "unterminated string");
}

static bool scan_digits(scanner *s)
{
    if (s->at.p >= s->at.end || !isdigit((unsigned char)*s->at.p))
        return fail(s, "digit expected");
    while (s->at.p < s->at.end && isdigit((unsigned char)*s->at.p))
        s->at.p++;
    return true;
}

static bool scan_number(scanner *s)
{
    if (*s->at.p == '-')
        s->at.p++;
    if (s->at.p < s->at.end && *s->at.p == '0') {
        s->at.p++;
    } else if (!scan_digits(s)) {
        return false;
    }
    if (s->at.p < s->at.end && *s->at.p == '.') {
        s->at.p++;
        if (!scan_digits(s))
            return false;
    }
    if (s->at.p < s->at.end && (*s->at.p == 'e' || *s->at.p == 'E')) {
        s->at.p++;
        if (s->at.p < s->at.end && (*s->at.p == '+' || *s->at.p == '-'))
            s->at.p++;
        if (!scan_digits(s))
            return false;
    }
    return true;
}

static bool scan_value(scanner *s, int depth);

static bool scan_container(scanner *s, int depth, char close, bool is_object)
{
    if (depth >= JSON_MAX_DEPTH)
        return fail(s, "nested too deeply");
    s->at.p++; /* opening bracket */
    skip_space(s);
    if (s->at.p < s->at.end && *s->at.p == close) {
        s->at.p++;
        return true;
    }
    for (;;) {
        if (is_object) {
            skip_space(s);
            if (s->at.p >= s->at.end || *s->at.p != '"')
                return fail(s, "object key expected");
            if (!scan_string(s))
                return false;
            skip_space(s);
            if (s->at.p >= s->at.end || *s->at.p != ':')
                return fail(s, "':' expected");
            s->at.p++;
        }
        if (!scan_value(s, depth + 1))
            return false;
        skip_space(s);
        if (s->at.p >= s->at.end)
            return fail(s, "unexpected end of input");
        if (*s->at.p == close) {
            s->at.p++;
            return true;
        }
        if (*s->at.p != ',')
            return fail(s, is_object ? "',' or '}' expected" : "',' or ']' expected");
        s->at.p++;
    }
}

static bool scan_value(scanner *s, int depth)
{
    skip_space(s);
    if (s->at.p >= s->at.end)
        return fail(s, "unexpected end of input");
    switch (*s->at.p) {
    case '{':
        return scan_container(s, depth, '}', true);
    case '[':
        return scan_container(s, depth, ']', false);
    case '"':
        return scan_string(s);
    case 't':
        return scan_literal(s, "true");
    case 'f':
        return scan_literal(s, "false");
    case 'n':
        return scan_literal(s, "null");
    default:
        if (*s->at.p == '-' || isdigit((unsigned char)*s->at.p))
            return scan_number(s);
        return fail(s, "unexpected character");
    }
}

const char *ja_json_check(const char *text, size_t len, size_t *error_offset, bool *is_object)
{
    scanner s = {.at = {text, text + len}};
    skip_space(&s);
    *is_object = s.at.p < s.at.end && *s.at.p == '{';
    if (scan_value(&s, 0)) {
        skip_space(&s);
        if (s.at.p != s.at.end)
            fail(&s, "unexpected data after the JSON value");
    }
    if (s.error)
        *error_offset = (size_t)(s.error_at - text);
    return s.error;
}

bool ja_json_read_string(ja_json_cursor *c, const char **s, size_t *n)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    scanner scan = {.at = *c};
    if (!scan_string(&scan))
        return false;
    *s = c->p + 1;
    *n = (size_t)(scan.at.p - c->p) - 2;
    *c = scan.at;
    return true;
}

bool ja_json_skip_value(ja_json_cursor *c)
{
    scanner scan = {.at = *c};
    if (!scan_value(&scan, 0))
        return false;
    *c = scan.at;
    return true;
}

bool ja_json_each_member(ja_json_cursor *c, ja_json_member_fn member, void *arg)
{
    if (!ja_json_take(c, '{'))
        return false;
    ja_json_skip_space(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return true;
    }
    for (;;) {
        ja_json_skip_space(c);
        const char *name;
        size_t name_len;
        if (!ja_json_read_string(c, &name, &name_len) || !ja_json_take(c, ':'))
            return false;
        ja_json_skip_space(c);
        if (!member(name, name_len, *c, arg))
            return true;
        if (!ja_json_skip_value(c))
            return false;
        if (ja_json_take(c, ','))
            continue;
        return ja_json_take(c, '}');
    }
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Reads the four hex digits of a \u escape at s[0..4). Returns the code unit or -1. */
static long read_hex4(const char *s, size_t left)
{
    if (left < 4)
        return -1;
    long unit = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(s[i]);
        if (d < 0)
            return -1;
        unit = unit * 16 + d;
    }
    return unit;
}

/* Appends the UTF-8 encoding of a code point. Returns false when it does not fit. */
static bool put_utf8(unsigned long cp, char *out, size_t out_size, size_t *len)
{
    unsigned char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xC0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xE0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[2] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xF0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        b[3] = (unsigned char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    if (*len + n > out_size)
        return false;
    for (size_t i = 0; i < n; i++)
        out[(*len)++] = (char)b[i];
    return true;
}

int ja_json_unescape(const char *s, size_t n, char *out, size_t out_size, size_t *out_len)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            if (len >= out_size)
                return -ENOSPC;
            out[len++] = s[i];
            continue;
        }
        if (++i >= n)
            return -EINVAL;
        char simple = 0;
        switch (s[i]) {
        case '"':
        case '\\':
        case '/':
            simple = s[i];
            break;
        case 'b':
            simple = '\b';
            break;
        case 'f':
            simple = '\f';
            break;
        case 'n':
            simple = '\n';
            break;
        case 'r':
            simple = '\r';
            break;
        case 't':
            simple = '\t';
            break;
        case 'u': {
            long unit = read_hex4(s + i + 1, n - i - 1);
            if (unit < 0)
                return -EINVAL;
            i += 4;
            unsigned long cp = (unsigned long)unit;
            /* A high surrogate followed by \u and a low one is one character. */
            if (unit >= 0xD800 && unit <= 0xDBFF && i + 6 < n && s[i + 1] == '\\' &&
                s[i + 2] == 'u') {
                long low = read_hex4(s + i + 3, n - i - 3);
                if (low >= 0xDC00 && low <= 0xDFFF) {
                    cp = 0x10000 + (((unsigned long)unit - 0xD800) << 10) +
                         ((unsigned long)low - 0xDC00);
                    i += 6;
                }
            }
            if (!put_utf8(cp, out, out_size, &len))
                return -ENOSPC;
            continue;
        }
        default:
            return -EINVAL;
        }
        if (len >= out_size)
            return -ENOSPC;
        out[len++] = simple;
    }
    *out_len = len;
    return 0;
}
