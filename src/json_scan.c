#include "json_scan.h"

#include <ctype.h>

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

bool ja_json_read_string(ja_json_cursor *c, const char **s, size_t *n)
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

bool ja_json_skip_value(ja_json_cursor *c)
{
    const char *s;
    size_t n;
    if (c->p >= c->end)
        return false;
    if (*c->p == '"')
        return ja_json_read_string(c, &s, &n);
    if (*c->p == '{' || *c->p == '[') {
        int depth = 0;
        while (c->p < c->end) {
            char ch = *c->p;
            if (ch == '"') {
                if (!ja_json_read_string(c, &s, &n))
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
    const char *start = c->p;
    while (c->p < c->end && *c->p != ',' && *c->p != '}' && *c->p != ']' &&
           !isspace((unsigned char)*c->p))
        c->p++;
    return c->p > start;
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

long ja_json_unescape(const char *s, size_t n, char *out, size_t out_size)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '\\') {
            if (len >= out_size)
                return -2;
            out[len++] = s[i];
            continue;
        }
        if (++i >= n)
            return -1;
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
                return -1;
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
                return -2;
            continue;
        }
        default:
            return -1;
        }
        if (len >= out_size)
            return -2;
        out[len++] = simple;
    }
    return (long)len;
}
