#ifndef JA_JSON_H
#define JA_JSON_H

#include <stdbool.h>
#include <stddef.h>

/* JSON without a document: one strict scanner (RFC 8259: no allocation, bounded nesting) that
 * checks a message body is JSON before it goes to Jube, and walks an answer or a body forward to
 * read one member (Implicit Async placeholders, the order key) where building a whole document
 * would cost more than the message. It trusts nothing: every step checks the end of the text and
 * says false when the text is not what it expected. */

/* The JSON check alone: returns NULL when text is exactly one valid JSON value (with optional
 * surrounding white space), else a description of the first problem, with its byte offset
 * written to error_offset. */
const char *ja_json_check(const char *text, size_t len, size_t *error_offset, bool *is_object);

typedef struct {
    const char *p, *end;
} ja_json_cursor;

void ja_json_skip_space(ja_json_cursor *c);

/* True when the next character (after white space) is ch; moves past it. */
bool ja_json_take(ja_json_cursor *c, char ch);

/* At a '"': moves past the string; its raw contents (escapes left as they are) in *s, *n. */
bool ja_json_read_string(ja_json_cursor *c, const char **s, size_t *n);

/* Moves past one value of any kind, checking it as ja_json_check does. */
bool ja_json_skip_value(ja_json_cursor *c);

/* Calls member(name, name_len, cursor at the value, arg) for each member of the object that
 * starts at c, in order, until member returns false. The value is skipped after each call
 * whatever member did with its own copy of the cursor. Returns false when c is not at an object
 * or the text ends early. */
typedef bool (*ja_json_member_fn)(const char *name, size_t name_len, ja_json_cursor value,
                                  void *arg);
bool ja_json_each_member(ja_json_cursor *c, ja_json_member_fn member, void *arg);

/* Decodes the raw contents of a JSON string (as ja_json_read_string gives them) into out, as
 * UTF-8, its length in *out_len. Returns 0, -EINVAL when an escape is malformed, or -ENOSPC when
 * it does not fit in out_size bytes. */
int ja_json_unescape(const char *s, size_t n, char *out, size_t out_size, size_t *out_len);

#endif
