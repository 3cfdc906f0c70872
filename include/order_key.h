#ifndef JA_ORDER_KEY_H
#define JA_ORDER_KEY_H

#include <amqp.h>
#include <stddef.h>

/* What --order-by names as a message's order key, and how the consumer finds it: a member of the
 * JSON body ($.AccountId, $.Payer.Id) or an AMQP header (header:x-account). The key is the value
 * as text: a string decoded from JSON, a number as written, a header's bytes or integer. */

#define JA_ORDER_KEY_MAX  256 /* longer keys are JA_KEY_TOO_LONG */
#define JA_ORDER_PATH_MAX 8   /* members in a JSON path */
#define JA_ORDER_SPEC_MAX 512

typedef enum { JA_ORDER_OFF, JA_ORDER_BY_BODY, JA_ORDER_BY_HEADER } ja_order_source;

typedef struct {
    ja_order_source source;
    char text[JA_ORDER_SPEC_MAX]; /* the spec as given */
    /* The member names of a JSON path, or the header name, as offsets into text. */
    unsigned short part_at[JA_ORDER_PATH_MAX];
    unsigned short part_len[JA_ORDER_PATH_MAX];
    int parts;
} ja_order_spec;

/* What a message's key turned out to be; all but JA_KEY_FOUND leave the message unordered (or
 * dead-lettered, with --order-key-missing dead-letter). */
typedef enum {
    JA_KEY_FOUND,
    JA_KEY_MISSING,    /* no such member or header (or the body is not a JSON object) */
    JA_KEY_NOT_SCALAR, /* an object, array, boolean or null; a header of another type */
    JA_KEY_TOO_LONG,   /* longer than JA_ORDER_KEY_MAX bytes */
    JA_KEY_STATUSES
} ja_key_status;

/* Parses "" (off), "$.Name[.Name...]" or "header:NAME". Returns 0, or -EINVAL with a sentence
 * for a person in err that quotes the value and says what is allowed. */
int ja_order_key_parse_spec(const char *text, ja_order_spec *spec, char *err, size_t err_size);

/* Finds the key of a message. key receives *key_len bytes (not NUL-terminated) when found. */
ja_key_status ja_order_key_of(const ja_order_spec *spec, const void *body, size_t body_len,
                              const amqp_basic_properties_t *props, char key[JA_ORDER_KEY_MAX],
                              size_t *key_len);

/* A label for metrics and dead letters: "missing", "not_scalar", "too_long". */
const char *ja_order_key_status_name(ja_key_status status);

#endif
