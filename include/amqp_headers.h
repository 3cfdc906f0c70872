#ifndef JA_AMQP_HEADERS_H
#define JA_AMQP_HEADERS_H

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>

/* Reading a message's AMQP headers: the one look-up every module uses. Names are compared byte
 * for byte, as RabbitMQ does. */

/* True when key is exactly name_len bytes of name. */
bool ja_amqp_headers_key_is(amqp_bytes_t key, const char *name, size_t name_len);

/* The value of the first header called name (name_len bytes), or NULL when the message has no
 * headers or none of that name. */
const amqp_field_value_t *ja_amqp_headers_find(const amqp_basic_properties_t *props,
                                               const char *name, size_t name_len);

/* The same for a NUL-terminated name. */
const amqp_field_value_t *ja_amqp_headers_get(const amqp_basic_properties_t *props,
                                              const char *name);

#endif
