#ifndef JA_BUFFER_H
#define JA_BUFFER_H

#include <stddef.h>

/* The one growable array of the service: bytes (Jube's answer, the publisher's frames) or items
 * of any size (the ack window's ranges, the confirm window's publishes, a message's headers),
 * counted in bytes. It keeps its memory between uses, doubling when it must grow. */
typedef struct {
    char *data;
    size_t len; /* bytes in use */
    size_t cap; /* bytes allocated */
} ja_buffer;

/* Makes room for `more` bytes after len. Returns 0 or -ENOMEM (the buffer unchanged). */
int ja_buffer_reserve(ja_buffer *b, size_t more);
/* Appends n bytes unless len would pass limit. Returns 0, -EMSGSIZE or -ENOMEM. */
int ja_buffer_append(ja_buffer *b, const void *data, size_t n, size_t limit);
/* Gives the memory back when more than `keep` bytes are allocated and none are in use: one
 * large message must not pin its size for the life of the process. */
void ja_buffer_trim(ja_buffer *b, size_t keep);
void ja_buffer_free(ja_buffer *b);

#endif
