#include "text.h"

#include <stdio.h>
#include <string.h>

size_t ja_text_utf8_cut(const char *text, size_t len)
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

void ja_text_escape(const void *in, size_t in_len, size_t max_in, char *out, size_t out_size)
{
    const unsigned char *p = in;
    size_t used = 0;
    size_t n = in_len < max_in ? in_len : max_in;
    n = ja_text_utf8_cut(in, n); /* never half a character */
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
