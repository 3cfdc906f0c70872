#ifndef JA_CONFIRM_WINDOW_H
#define JA_CONFIRM_WINDOW_H

#include "job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decides what the publisher does with each publish of a job, from the moment the job arrives
 * until the broker has stored every outcome of it: which publish goes out next, what a
 * basic.ack, basic.nack or basic.return means, what a lost connection or an overdue confirm
 * means, and when a job leaves the publisher (ack, requeue, drop or reject). Pure bookkeeping for
 * one publisher: the caller owns the connection, sends what this says, feeds back what the broker
 * answered, and passes in the clock.
 *
 * Rules:
 * - A publish counts as stored only when the broker confirmed it (basic.ack) and did not return
 *   it (basic.return, which RabbitMQ sends before the ack of the same publish). Each publish is
 *   settled once; confirms of settled or unknown sequence numbers are ignored.
 * - Nacked publishes are sent again after an exponential backoff per job. While the broker
 *   nacks every publish it answers (JA_REFUSALS_IN_A_ROW in a row), one publish at a time is in
 *   flight, probing it, and each refused probe backs the next one off: RabbitMQ 3.10 stores some
 *   of the publishes it nacks on a channel whose quorum queue lost its leader, so each publish
 *   sent into a refusal may become a duplicate.
 * - A returned dead letter is held and sent again with backoff; the caller declares the topology
 *   again first (needs_redeclare). A returned renewal (the inbound queue is gone) is held the
 *   same way; one that cannot be published at all becomes a dead letter (delivery_limit). A
 * returned response is held the same way, or accepted and counted under JA_UNROUTABLE_ACK. A
 * returned reply_to publish is accepted and counted: a reply queue that does not exist will not
 * appear by waiting.
 * - On a lost connection every unconfirmed publish goes out again first, in its old order. When
 *   the broker closed the channel for something a message may have caused, each unconfirmed
 *   publish is suspected once more; a publish suspected twice is sent alone, and when the channel
 *   closes with it alone in flight it is the cause: a response becomes a dead letter, a dead
 *   letter loses the producer's headers, and a bare dead letter that still fails is rejected.
 * - A job whose publishes could not all be stored within max_hold_ms of its delivery goes back to
 *   the queue; a job whose delivery's channel is gone is dropped (the broker redelivers it). */

typedef enum {
    JA_TARGET_OUTBOUND,    /* the outbound exchange */
    JA_TARGET_REPLY_TO,    /* the default exchange, routing key = the inbound reply_to */
    JA_TARGET_DEAD_LETTER, /* the dead-letter exchange */
    JA_TARGET_INBOUND,     /* the default exchange, routing key = the inbound queue: a renewal */
} ja_publish_target;

typedef enum {
    JA_UNROUTABLE_HOLD, /* hold a response no queue took and retry it, like a Jube outage */
    JA_UNROUTABLE_ACK,  /* ack it and count it (deployments that read only reply_to) */
} ja_unroutable_policy;

typedef struct {
    uint64_t retry_base_ms, retry_max_ms; /* backoff of refused or unroutable publishes */
    uint64_t max_hold_ms;                 /* from delivery; then the job goes back to the queue */
    uint64_t confirm_timeout_ms; /* a publish unconfirmed this long breaks the connection */
    ja_unroutable_policy unroutable_responses;
} ja_confirm_policy;

/* What happened to one publish, for the caller's metrics and log lines. */
typedef enum {
    JA_PUBLISH_STORED,            /* confirmed and routed */
    JA_PUBLISH_NACKED,            /* refused by the broker; sent again after a backoff */
    JA_PUBLISH_UNROUTABLE_HELD,   /* no queue took it; held and sent again after a backoff */
    JA_PUBLISH_UNROUTABLE_ACCEPT, /* no queue took it; accepted as is and counted */
    JA_PUBLISH_UNPUBLISHABLE,     /* it broke the channel on its own; see the job's failure */
} ja_publish_event;

typedef struct {
    void *ctx;
    /* The job leaves the publisher: state is JA_JOB_ACK, _REQUEUE, _DROP or _REJECT. */
    void (*finished)(void *ctx, ja_job *job, ja_job_state state);
    void (*event)(void *ctx, const ja_job *job, ja_publish_target target, ja_publish_event event);
} ja_confirm_callbacks;

/* One publish to send now. */
typedef struct {
    ja_job *job;
    ja_publish_target target;
} ja_publish;

/* A publish sent and not yet confirmed; seq = head_seq + its index. */
typedef struct {
    ja_job *job;
    ja_publish_target target;
    uint64_t sent_ms;
    bool returned;
    bool settled;
} ja_sent_publish;

/* A publish waiting for its backoff. */
typedef struct {
    ja_job *job;
    ja_publish_target target;
    uint64_t due_ms;
} ja_delayed_publish;

typedef struct {
    ja_confirm_policy policy;
    ja_confirm_callbacks cb;
    uint64_t rng;

    ja_sent_publish *sent; /* circular, capacity a power of two */
    size_t sent_capacity, sent_start, sent_count;
    uint64_t head_seq; /* sequence number of sent[sent_start] */
    size_t unsettled;  /* entries of sent not settled yet */

    ja_publish *ready; /* circular deque of publishes to send now, oldest first */
    size_t ready_capacity, ready_start, ready_count;

    ja_buffer delayed;      /* ja_delayed_publish items, in no order */
    size_t unroutable_held; /* jobs with a publish no queue took, held until they leave */

    uint64_t alone_seq;     /* a suspect publish in flight alone, or 0 */
    uint64_t refused_since; /* the first of the nacks since the last ack, or 0 */
    unsigned refusals;      /* nacks since the last ack */
    uint64_t probe_due_ms;  /* while refusing: when the next probe may go out */
    bool needs_redeclare;   /* a dead letter was returned: declare the topology again */
} ja_confirm_window;

/* Returns 0 or -ENOMEM. */
int ja_confirm_window_init(ja_confirm_window *w, const ja_confirm_policy *policy,
                           const ja_confirm_callbacks *cb, uint64_t seed);
void ja_confirm_window_free(ja_confirm_window *w);

/* A job from the workers: its publishes (a dead letter, or the response and its reply_to copy)
 * are ready to send. */
void ja_confirm_window_submit(ja_confirm_window *w, ja_job *job);

/* The next publish to send now, if any. Publishes of jobs whose delivery can no longer be acked
 * (generation != live_generation) are dropped on the way, and jobs held past max_hold_ms go back
 * to the queue. Returns false when nothing may be sent now. */
bool ja_confirm_window_next(ja_confirm_window *w, uint64_t now, uint64_t live_generation,
                            ja_publish *out);

/* The sequence number the next sent publish gets (confirm sequence numbers start at 1 on every
 * channel): written into the message so a basic.return can be matched to it. */
uint64_t ja_confirm_window_next_seq(const ja_confirm_window *w);

/* The publish `p` (from _next) was sent, or is about to be. */
void ja_confirm_window_sent(ja_confirm_window *w, const ja_publish *p, uint64_t now);

/* A publish could not even be encoded (its properties do not fit a frame). Like a channel error
 * it caused alone: the job moves down the same ladder at once. reason is for the dead letter. */
void ja_confirm_window_unpublishable(ja_confirm_window *w, const ja_publish *p, const char *reason);

/* The broker returned the publish with this sequence number (basic.return). */
void ja_confirm_window_returned(ja_confirm_window *w, uint64_t seq);

/* basic.ack (ack = true) or basic.nack of tag, with its "multiple" flag. */
void ja_confirm_window_confirm(ja_confirm_window *w, uint64_t tag, bool multiple, bool ack,
                               uint64_t now);

/* The connection (or channel) is gone: every unconfirmed publish goes out again first. When
 * suspect_content, the broker's reason (text) may have been caused by a message. */
void ja_confirm_window_lost(ja_confirm_window *w, bool suspect_content, const char *reason);

/* Looks at every waiting publish without sending any: those of a dead generation are dropped,
 * and jobs held past max_hold_ms go back to the queue. For while the broker blocks publishing or
 * the connection is down, when nothing else would look at them. */
void ja_confirm_window_sweep(ja_confirm_window *w, uint64_t now, uint64_t live_generation);

/* The broker blocked publishing for a while: confirms could not come, so the time each
 * unconfirmed publish has waited starts again now. */
void ja_confirm_window_restart_clock(ja_confirm_window *w, uint64_t now);

/* True when the oldest unconfirmed publish was sent more than confirm_timeout_ms ago. */
bool ja_confirm_window_overdue(const ja_confirm_window *w, uint64_t now);

/* When something next becomes due: a delayed publish, or an overdue confirm. UINT64_MAX when
 * nothing is waiting on time. */
uint64_t ja_confirm_window_next_due_ms(const ja_confirm_window *w);

/* Nacks in a row, with no ack between them, that say the broker refuses everything. */
#define JA_REFUSALS_IN_A_ROW 3

/* How long the broker has nacked every publish it answered, once it has nacked
 * JA_REFUSALS_IN_A_ROW (0 otherwise, and after an ack). RabbitMQ 3.10 keeps nacking on a channel
 * whose quorum queue lost its leader, even once a new leader is elected; a new connection finds it.
 */
static inline uint64_t ja_confirm_window_refusing_for(const ja_confirm_window *w, uint64_t now)
{
    return w->refusals >= JA_REFUSALS_IN_A_ROW ? now - w->refused_since : 0;
}

/* Responses and dead letters held because no queue took them (for /readyz and the metrics). */
static inline size_t ja_confirm_window_unroutable_held(const ja_confirm_window *w)
{
    return w->unroutable_held;
}

/* True once a dead letter was returned (its queue is gone): the topology is to be declared
 * again before it is published again. Taking the answer clears it. */
static inline bool ja_confirm_window_take_redeclare(ja_confirm_window *w)
{
    bool needed = w->needs_redeclare;
    w->needs_redeclare = false;
    return needed;
}

/* Publishes sent and not yet confirmed. */
static inline size_t ja_confirm_window_unconfirmed(const ja_confirm_window *w)
{
    return w->unsettled;
}

#endif
