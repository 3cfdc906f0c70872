#ifndef JA_TEXT_H
#define JA_TEXT_H

#include <stddef.h>

/* Text that goes where a person reads it (log lines, a dead letter's x-jube-error-detail): never
 * half a UTF-8 character, never a raw control byte or quote. */

/* The length of text[0..len) without a UTF-8 character cut off at its end. */
size_t ja_text_utf8_cut(const char *text, size_t len);

/* Writes at most max_in bytes of in, with quotes, backslashes and non-printable bytes escaped,
 * so any value can be quoted in a log line or an error detail. Always NUL-terminates. */
void ja_text_escape(const void *in, size_t in_len, size_t max_in, char *out, size_t out_size);

#endif
