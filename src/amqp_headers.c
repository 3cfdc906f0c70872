#include "amqp_headers.h"

#include <string.h>

bool ja_amqp_headers_key_is(amqp_bytes_t key, const char *name, size_t name_len)
{
    return key.len == name_len && memcmp(key.bytes, name, name_len) == 0;
}

const amqp_field_value_t *ja_amqp_headers_find(const amqp_basic_properties_t *props,
                                               const char *name, size_t name_len)
{
    if (!(props->_flags & AMQP_BASIC_HEADERS_FLAG))
        return NULL;
    for (int i = 0; i < props->headers.num_entries; i++) {
        const amqp_table_entry_t *e = &props->headers.entries[i];
        if (ja_amqp_headers_key_is(e->key, name, name_len))
            return &e->value;
    }
    return NULL;
}

const amqp_field_value_t *ja_amqp_headers_get(const amqp_basic_properties_t *props,
                                              const char *name)
{
    return ja_amqp_headers_find(props, name, strlen(name));
}
