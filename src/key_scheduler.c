#include "key_scheduler.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a: keys are short and a few per message; nothing fancier pays for itself here. */
static uint64_t hash_of(const char *key, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int ja_key_scheduler_init(ja_key_scheduler *s, size_t capacity)
{
    memset(s, 0, sizeof *s);
    if (capacity == 0)
        capacity = 1;
    size_t buckets = 16;
    while (buckets < 2 * capacity)
        buckets <<= 1;
    /* calloc: a large prefetch costs address space, and memory only for keys ever used. */
    s->pool = calloc(capacity, sizeof *s->pool);
    s->buckets = calloc(buckets, sizeof *s->buckets);
    if (!s->pool || !s->buckets) {
        ja_key_scheduler_free(s);
        return -ENOMEM;
    }
    s->capacity = capacity;
    s->bucket_mask = buckets - 1;
    for (size_t i = capacity; i-- > 0;) {
        s->pool[i].chain = s->free_keys;
        s->free_keys = &s->pool[i];
    }
    return 0;
}

void ja_key_scheduler_free(ja_key_scheduler *s)
{
    free(s->pool);
    free(s->buckets);
    memset(s, 0, sizeof *s);
}

static ja_order_key *find(const ja_key_scheduler *s, uint64_t hash, const char *key, size_t len)
{
    for (ja_order_key *k = s->buckets[hash & s->bucket_mask]; k; k = k->chain)
        if (k->hash == hash && k->len == len && memcmp(k->bytes, key, len) == 0)
            return k;
    return NULL;
}

static ja_order_key *create(ja_key_scheduler *s, uint64_t hash, const char *key, size_t len)
{
    ja_order_key *k = s->free_keys;
    if (!k)
        return NULL;
    s->free_keys = k->chain;
    k->hash = hash;
    k->len = len;
    memcpy(k->bytes, key, len);
    k->running = NULL;
    k->head = k->tail = NULL;
    k->waiting = 0;
    ja_order_key **bucket = &s->buckets[hash & s->bucket_mask];
    k->chain = *bucket;
    *bucket = k;
    k->prev_live = NULL;
    k->next_live = s->live;
    if (s->live)
        s->live->prev_live = k;
    s->live = k;
    s->live_keys++;
    return k;
}

static void destroy(ja_key_scheduler *s, ja_order_key *k)
{
    ja_order_key **link = &s->buckets[k->hash & s->bucket_mask];
    while (*link != k)
        link = &(*link)->chain;
    *link = k->chain;
    if (k->prev_live)
        k->prev_live->next_live = k->next_live;
    else
        s->live = k->next_live;
    if (k->next_live)
        k->next_live->prev_live = k->prev_live;
    k->chain = s->free_keys;
    s->free_keys = k;
    s->live_keys--;
}

ja_order_decision ja_key_scheduler_arrive(ja_key_scheduler *s, ja_order_node *node, const char *key,
                                          size_t key_len, uint64_t now_ms)
{
    if (key_len > JA_ORDER_KEY_MAX)
        return JA_ORDER_FULL;
    uint64_t hash = hash_of(key, key_len);
    ja_order_key *k = find(s, hash, key, key_len);
    node->next = NULL;
    node->arrived_ms = now_ms;
    if (!k) {
        k = create(s, hash, key, key_len);
        if (!k)
            return JA_ORDER_FULL;
        node->key = k;
        k->running = node;
        return JA_ORDER_RUN;
    }
    node->key = k;
    if (k->tail)
        k->tail->next = node;
    else
        k->head = node;
    k->tail = node;
    k->waiting++;
    s->waiting++;
    return JA_ORDER_WAIT;
}

/* Unlinks every waiting message of k and returns them, oldest first. */
static ja_order_node *take_waiting(ja_key_scheduler *s, ja_order_key *k)
{
    ja_order_node *list = k->head;
    for (ja_order_node *n = list; n; n = n->next)
        n->key = NULL;
    s->waiting -= k->waiting;
    k->head = k->tail = NULL;
    k->waiting = 0;
    return list;
}

ja_order_node *ja_key_scheduler_finish(ja_key_scheduler *s, ja_order_node *node)
{
    ja_order_key *k = node->key;
    node->key = NULL;
    if (!k || k->running != node)
        return NULL;
    ja_order_node *next = k->head;
    if (!next) {
        destroy(s, k);
        return NULL;
    }
    k->head = next->next;
    if (!k->head)
        k->tail = NULL;
    next->next = NULL;
    k->waiting--;
    s->waiting--;
    k->running = next;
    return next;
}

ja_order_node *ja_key_scheduler_give_back(ja_key_scheduler *s, ja_order_node *node)
{
    ja_order_key *k = node->key;
    node->key = NULL;
    if (!k || k->running != node)
        return NULL;
    ja_order_node *list = take_waiting(s, k);
    destroy(s, k);
    return list;
}

ja_order_node *ja_key_scheduler_clear(ja_key_scheduler *s)
{
    ja_order_node *list = NULL, **end = &list;
    while (s->live) {
        ja_order_key *k = s->live;
        if (k->head) {
            ja_order_node *tail = k->tail;
            *end = take_waiting(s, k);
            end = &tail->next;
        }
        /* The running messages are in other threads' hands now: not touched. */
        destroy(s, k);
    }
    return list;
}

uint64_t ja_key_scheduler_oldest_wait(const ja_key_scheduler *s)
{
    uint64_t oldest = UINT64_MAX;
    for (const ja_order_key *k = s->live; k; k = k->next_live)
        if (k->head && k->head->arrived_ms < oldest)
            oldest = k->head->arrived_ms;
    return oldest;
}
