#include "buffer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The smallest allocation: small arrays do not grow a few bytes at a time. */
#define FIRST_CAPACITY 256

int ja_buffer_reserve(ja_buffer *b, size_t more)
{
    if (b->cap - b->len >= more)
        return 0;
    if (more > SIZE_MAX / 2 - b->len)
        return -ENOMEM;
    size_t cap = b->cap ? b->cap : FIRST_CAPACITY;
    while (cap - b->len < more)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown)
        return -ENOMEM;
    b->data = grown;
    b->cap = cap;
    return 0;
}

int ja_buffer_append(ja_buffer *b, const void *data, size_t n, size_t limit)
{
    if (b->len + n > limit)
        return -EMSGSIZE;
    int rc = ja_buffer_reserve(b, n);
    if (rc != 0)
        return rc;
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return 0;
}

void ja_buffer_trim(ja_buffer *b, size_t keep)
{
    if (b->len == 0 && b->cap > keep)
        ja_buffer_free(b);
}

void ja_buffer_free(ja_buffer *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
