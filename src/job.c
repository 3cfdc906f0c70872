#include "job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t ja_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

uint64_t ja_now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000u + (uint64_t)t.tv_nsec / 1000u;
}

size_t ja_utf8_cut(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    /* Find where the last character starts (at most 3 continuation bytes back). */
    size_t start = len;
    while (start > 0 && len - start < 4 && (s[start - 1] & 0xC0) == 0x80)
        start--;
    if (start == 0 || len - start >= 4)
        return len; /* not UTF-8 at the end: leave it */
    unsigned char lead = s[start - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    size_t have = len - (start - 1);
    return have < need ? start - 1 : len;
}

void ja_failure_set(ja_failure *failure, const char *code, const char *fmt, ...)
{
    snprintf(failure->code, sizeof failure->code, "%s", code);
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(failure->detail, sizeof failure->detail, fmt, args);
    va_end(args);
    /* A detail cut short must not end inside a character: the header is a UTF-8 string. */
    if (n >= (int)sizeof failure->detail) {
        size_t len = strlen(failure->detail);
        failure->detail[ja_utf8_cut(failure->detail, len)] = '\0';
    }
}

int ja_buf_append(ja_buf *buf, const void *data, size_t n, size_t limit)
{
    if (buf->len + n > limit)
        return -EMSGSIZE;
    if (buf->len + n > buf->cap) {
        size_t cap = buf->cap ? buf->cap : 4096;
        while (cap < buf->len + n)
            cap *= 2;
        char *grown = realloc(buf->data, cap);
        if (!grown)
            return -ENOMEM;
        buf->data = grown;
        buf->cap = cap;
    }
    memcpy(buf->data + buf->len, data, n);
    buf->len += n;
    return 0;
}

void ja_buf_free(ja_buf *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

void ja_escape_for_text(const void *in, size_t in_len, size_t max_in, char *out, size_t out_size)
{
    const unsigned char *p = in;
    size_t used = 0;
    size_t n = in_len < max_in ? in_len : max_in;
    n = ja_utf8_cut(in, n); /* never half a character */
    for (size_t i = 0; i < n && used + 5 < out_size; i++) {
        /* Room for a whole character, or stop before it. */
        if (p[i] >= 0xC0) {
            size_t len = p[i] >= 0xF0 ? 4 : p[i] >= 0xE0 ? 3 : 2;
            if (used + len + 5 >= out_size) {
                n = i;
                break;
            }
        }
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            out[used++] = '\\';
            out[used++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            used += (size_t)snprintf(out + used, out_size - used, "\\x%02x", c);
        } else {
            out[used++] = (char)c; /* UTF-8 passes through */
        }
    }
    if (n < in_len && used + 4 < out_size) {
        memcpy(out + used, "...", 3);
        used += 3;
    }
    out[used < out_size ? used : out_size - 1] = '\0';
}
