#ifndef JA_JOB_H
#define JA_JOB_H

#include "buffer.h"
#include "failure.h"
#include "inbox.h"
#include "key_scheduler.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One delivery on its way through the service, and everything learnt about it.
 *
 * Ownership: the consumer thread creates every job (one per delivery) and is the only thread
 * that frees one. In between, the job belongs to whichever thread popped it last: the worker
 * that took it from the ring, then the publisher, then the consumer again through its inbox.
 * No two threads ever touch a job at the same time. */

#define JA_GUID_LEN 36

typedef enum {
    JA_JOB_NEW,         /* consumer -> worker: to be validated and sent to Jube */
    JA_JOB_RESPOND,     /* worker -> publisher: publish Jube's response */
    JA_JOB_DEAD_LETTER, /* worker -> publisher: publish to the dead-letter exchange */
    JA_JOB_RENEW,       /* worker -> publisher: publish the message again to the inbound queue's
                           tail, near the queue's delivery limit (delivery_limit.h) */
    JA_JOB_ACK,         /* publisher -> consumer: the outcome is confirmed; ack the delivery */
    JA_JOB_REQUEUE,     /* worker -> consumer: give the delivery back to the broker */
    JA_JOB_DROP,        /* its delivery belongs to a closed channel: just free it */
    JA_JOB_REJECT,      /* publisher -> consumer: nothing of it can be published; reject it */
} ja_job_state;

/* The publisher's bookkeeping for a job (confirm_window.c). */
typedef struct {
    int open;          /* publishes not settled yet */
    unsigned failures; /* nacks and returns so far: the backoff step */
    unsigned suspect;  /* channel errors a message may cause while one of its publishes was out */
    bool bare;         /* a dead letter without the producer's headers */
    bool unroutable;   /* a publish of it came back unroutable and is held (unroutable_held) */
    ja_job_state end;  /* what happens to the delivery once nothing of it is out: JA_JOB_ACK,
                          or _REQUEUE, _DROP, _REJECT once decided */
} ja_publishing;

typedef struct ja_job {
    ja_inbox_node node;       /* links the job into an inbox */
    amqp_envelope_t envelope; /* owns the body and the properties */
    uint64_t generation;      /* the consumer connection the delivery came on */
    uint64_t received_ms;     /* when it was delivered (monotonic clock) */
    ja_job_state state;
    char model_guid[JA_GUID_LEN + 1]; /* lower case, once validated */
    char traceparent[56];             /* W3C trace context passed on to Jube, or "" */
    int http_status;                  /* Jube's last status, 0 when none */
    int attempts;                     /* calls made to Jube */
    ja_failure failure;
    ja_buffer response;
    /* Implicit Async (implicit_async.h): once Jube answered with a placeholder, the instance
     * GUID whose full answer is collected from the Callback endpoint (never by posting again),
     * until callback_deadline_ms. "" otherwise. */
    char instance_guid[JA_GUID_LEN + 1];
    uint64_t callback_deadline_ms;
    unsigned callback_polls;
    char placeholder[512];   /* the placeholder, quoted for a dead letter's detail */
    uint64_t body_size;      /* as the content header announced it; the body holds at most
                                --max-body-bytes of it */
    uint32_t delivery_count; /* x-delivery-count: returns the queue's delivery limit counted */
    uint32_t renewals;       /* x-jube-renewals: times the service published it again */
    ja_publishing publishing;
    /* --order-by: the message's key as found at delivery; ordered when it was found, and then
     * the consumer's key scheduler holds its place. */
    ja_order_node order;
    bool ordered;
    unsigned char order_key_status; /* ja_key_status */
    unsigned short order_key_len;
    char order_key[JA_ORDER_KEY_MAX];
} ja_job;

static inline ja_job *ja_job_of(ja_inbox_node *node)
{
    return (ja_job *)((char *)node - offsetof(ja_job, node));
}

/* The consumer's jobs, kept for reuse so that steady traffic allocates none. The pool's room is
 * made before any thread starts (oom.h); the jobs themselves are message memory, made by the
 * consumer thread as deliveries first need them (at most about the prefetch), so they live in
 * that thread's malloc arena beside the deliveries' bodies: made before the threads started,
 * they left that arena so empty that glibc trimmed and grew it again with every few messages
 * (the benchmark's drain: 4 us more CPU a message). Running out of memory for one ends the
 * process. Only the consumer thread uses the pool. */
typedef struct {
    ja_job **spare;
    size_t count, capacity;
} ja_job_pool;

/* Makes room to keep `capacity` jobs. Returns 0 or -ENOMEM. */
int ja_job_pool_init(ja_job_pool *pool, size_t capacity);
void ja_job_pool_destroy(ja_job_pool *pool);

/* A job for a delivery just read: it takes over the envelope, and what was learnt about an
 * earlier delivery is forgotten (the answer buffer keeps its memory). Never NULL. */
ja_job *ja_job_new(ja_job_pool *pool, const amqp_envelope_t *envelope, uint64_t body_size,
                   uint64_t generation, uint64_t now_ms);
/* The delivery is settled: the job goes back to the pool, or is freed when the pool is full. */
void ja_job_recycle(ja_job_pool *pool, ja_job *job);
/* True when, at at_ms, the delivery has been held --max-hold-ms or longer: RabbitMQ closes the
 * channel of a delivery unacked past its consumer_timeout, so a long hold must end before. */
bool ja_job_held_too_long(const ja_job *job, uint64_t at_ms, uint64_t max_hold_ms);
/* Frees a job and everything it holds (at shutdown, from any list it is left in). */
void ja_job_free(ja_job *job);

#endif
