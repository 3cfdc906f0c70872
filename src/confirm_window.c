#include "confirm_window.h"

#include "backoff.h"
#include "oom.h"
#include "text.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Memory for the window grows with the traffic; running out after start-up ends the process
 * (oom.h: a half-tracked publish would be worse than a restart, which loses nothing). */

/* A circular array of `count` items of `size` bytes from `start` in `capacity`, copied in order
 * to the front of a new one twice as large (or of `first` items when empty). */
static void *grow_circular(void *items, size_t *start, size_t count, size_t *capacity, size_t first,
                           size_t size)
{
    size_t grown_capacity = *capacity ? *capacity * 2 : first;
    ja_buffer grown = {0};
    if (ja_buffer_reserve(&grown, grown_capacity * size) != 0)
        ja_oom("tracking publishes");
    size_t head = *capacity - *start < count ? *capacity - *start : count;
    memcpy(grown.data, (char *)items + *start * size, head * size);
    memcpy(grown.data + head * size, items, (count - head) * size);
    free(items);
    *start = 0;
    *capacity = grown_capacity;
    return grown.data;
}

/* ---- the ready deque ---- */

static void ready_reserve(ja_confirm_window *w)
{
    if (w->ready_count == w->ready_capacity)
        w->ready = grow_circular(w->ready, &w->ready_start, w->ready_count, &w->ready_capacity, 256,
                                 sizeof *w->ready);
}

static void ready_push_back(ja_confirm_window *w, ja_job *job, ja_publish_target target)
{
    ready_reserve(w);
    w->ready[(w->ready_start + w->ready_count) & (w->ready_capacity - 1)] =
        (ja_publish){.job = job, .target = target};
    w->ready_count++;
}

static void ready_push_front(ja_confirm_window *w, ja_job *job, ja_publish_target target)
{
    ready_reserve(w);
    w->ready_start = (w->ready_start + w->ready_capacity - 1) & (w->ready_capacity - 1);
    w->ready[w->ready_start] = (ja_publish){.job = job, .target = target};
    w->ready_count++;
}

static ja_publish ready_pop_front(ja_confirm_window *w)
{
    ja_publish p = w->ready[w->ready_start];
    w->ready_start = (w->ready_start + 1) & (w->ready_capacity - 1);
    w->ready_count--;
    return p;
}

/* ---- the sent window ---- */

static ja_sent_publish *sent_at(const ja_confirm_window *w, uint64_t seq)
{
    return &w->sent[(w->sent_start + (size_t)(seq - w->head_seq)) & (w->sent_capacity - 1)];
}

static void sent_reserve(ja_confirm_window *w)
{
    if (w->sent_count == w->sent_capacity)
        w->sent = grow_circular(w->sent, &w->sent_start, w->sent_count, &w->sent_capacity, 1024,
                                sizeof *w->sent);
}

static void drop_settled_head(ja_confirm_window *w)
{
    while (w->sent_count > 0 && w->sent[w->sent_start].settled) {
        w->sent_start = (w->sent_start + 1) & (w->sent_capacity - 1);
        w->sent_count--;
        w->head_seq++;
    }
}

/* ---- jobs ---- */

/* The worse of two ends: a rejected delivery stays rejected, a dropped one dropped, and a job
 * given back is not acked. */
static ja_job_state worse(ja_job_state a, ja_job_state b)
{
    static const ja_job_state order[] = {JA_JOB_ACK, JA_JOB_REQUEUE, JA_JOB_DROP, JA_JOB_REJECT};
    int ra = 0, rb = 0;
    for (int i = 0; i < 4; i++) {
        if (order[i] == a)
            ra = i;
        if (order[i] == b)
            rb = i;
    }
    return ra >= rb ? a : b;
}

/* One publish of the job is over; the job leaves with its last one. */
static void release(ja_confirm_window *w, ja_job *job, ja_job_state end)
{
    job->publishing.end = worse(job->publishing.end, end);
    if (--job->publishing.open == 0) {
        if (job->publishing.unroutable) {
            job->publishing.unroutable = false;
            w->unroutable_held--;
        }
        w->cb.finished(w->cb.ctx, job, job->publishing.end);
    }
}

static bool held_too_long(const ja_confirm_window *w, const ja_job *job, uint64_t when)
{
    return ja_job_held_too_long(job, when, w->policy.max_hold_ms);
}

/* Whether a waiting publish of job must not go out: returns the end to release it with, or
 * JA_JOB_ACK when it may be sent. */
static ja_job_state must_not_send(const ja_confirm_window *w, const ja_job *job, uint64_t now,
                                  uint64_t live_generation, bool check_hold)
{
    if (job->generation != live_generation)
        return JA_JOB_DROP;
    if (job->publishing.end != JA_JOB_ACK)
        return job->publishing.end;
    if (check_hold && held_too_long(w, job, now))
        return JA_JOB_REQUEUE;
    return JA_JOB_ACK;
}

static void delay(ja_confirm_window *w, ja_job *job, ja_publish_target target, uint64_t now,
                  bool unroutable)
{
    job->publishing.failures++;
    uint64_t due = now + ja_backoff_ms(job->publishing.failures, w->policy.retry_base_ms,
                                       w->policy.retry_max_ms, &w->rng);
    if (held_too_long(w, job, due)) {
        release(w, job, JA_JOB_REQUEUE);
        return;
    }
    ja_delayed_publish entry = {.job = job, .target = target, .due_ms = due};
    if (ja_buffer_append(&w->delayed, &entry, sizeof entry, SIZE_MAX) != 0)
        ja_oom("tracking publishes");
    /* Held counts the job from its first return until it leaves, published again meanwhile or
     * not: /readyz must not read "ready" while a held publish is out for another try. */
    if (unroutable && !job->publishing.unroutable) {
        job->publishing.unroutable = true;
        w->unroutable_held++;
    }
}

static ja_delayed_publish *delayed(const ja_confirm_window *w)
{
    return (ja_delayed_publish *)(void *)w->delayed.data;
}

static size_t delayed_count(const ja_confirm_window *w)
{
    return w->delayed.len / sizeof(ja_delayed_publish);
}

static void remove_delayed(ja_confirm_window *w, size_t i)
{
    w->delayed.len -= sizeof(ja_delayed_publish);
    delayed(w)[i] = delayed(w)[delayed_count(w)];
}

/* The publish broke the channel on its own (or could not be encoded): the next, plainer form of
 * the job's outcome goes out instead, down to a rejection. */
static void demote(ja_confirm_window *w, ja_job *job, ja_publish_target target, const char *reason)
{
    w->cb.event(w->cb.ctx, job, target, JA_PUBLISH_UNPUBLISHABLE);
    job->publishing.suspect = 0;
    if (target == JA_TARGET_INBOUND) {
        /* The message as it came cannot go back to the queue: keep it as a dead letter rather
         * than let the broker's delivery limit drop it. */
        ja_failure_set(&job->failure, "delivery_limit",
                       "The message was delivered %u times, near the queue's delivery limit, and "
                       "could not be published to the queue again: %s. Publish it to the queue "
                       "again to replay it.",
                       job->delivery_count + 1, reason);
        job->state = JA_JOB_DEAD_LETTER;
        ready_push_back(w, job, JA_TARGET_DEAD_LETTER);
        return;
    }
    if (target != JA_TARGET_DEAD_LETTER) {
        if (job->state != JA_JOB_DEAD_LETTER) {
            char answer[1100];
            ja_text_escape(job->response.data, job->response.len, 1024, answer, sizeof answer);
            ja_failure_set(&job->failure, "unpublishable",
                           "Jube answered HTTP %d, but its response could not be published: %s. "
                           "Jube answered: \"%s\"",
                           job->http_status, reason, answer);
            job->state = JA_JOB_DEAD_LETTER;
            job->publishing.open++;
            ready_push_back(w, job, JA_TARGET_DEAD_LETTER);
        }
        release(w, job, JA_JOB_ACK);
        return;
    }
    if (!job->publishing.bare) {
        job->publishing.bare = true;
        char code[sizeof job->failure.code], previous[JA_ERROR_DETAIL_MAX];
        snprintf(code, sizeof code, "%s", job->failure.code);
        snprintf(previous, sizeof previous, "%s", job->failure.detail);
        ja_failure_set(&job->failure, code,
                       "%s [The dead letter could not be published with the message's own "
                       "headers (%s); they were left out.]",
                       previous, reason);
        ready_push_back(w, job, JA_TARGET_DEAD_LETTER);
        return;
    }
    release(w, job, JA_JOB_REJECT);
}

/* ---- the interface ---- */

int ja_confirm_window_init(ja_confirm_window *w, const ja_confirm_policy *policy,
                           const ja_confirm_callbacks *cb, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->policy = *policy;
    w->cb = *cb;
    w->rng = seed ? seed : 1;
    w->head_seq = 1;
    w->sent_capacity = 1024;
    w->sent = malloc(w->sent_capacity * sizeof *w->sent);
    w->ready_capacity = 256;
    w->ready = malloc(w->ready_capacity * sizeof *w->ready);
    if (!w->sent || !w->ready) {
        ja_confirm_window_free(w);
        return -ENOMEM;
    }
    return 0;
}

void ja_confirm_window_free(ja_confirm_window *w)
{
    free(w->sent);
    free(w->ready);
    ja_buffer_free(&w->delayed);
    memset(w, 0, sizeof *w);
}

void ja_confirm_window_submit(ja_confirm_window *w, ja_job *job)
{
    job->publishing = (ja_publishing){.end = JA_JOB_ACK};
    if (job->state == JA_JOB_DEAD_LETTER || job->state == JA_JOB_RENEW) {
        job->publishing.open = 1;
        ready_push_back(w, job,
                        job->state == JA_JOB_RENEW ? JA_TARGET_INBOUND : JA_TARGET_DEAD_LETTER);
        return;
    }
    const amqp_basic_properties_t *in = &job->envelope.message.properties;
    bool reply = (in->_flags & AMQP_BASIC_REPLY_TO_FLAG) && in->reply_to.len > 0;
    job->publishing.open = reply ? 2 : 1;
    ready_push_back(w, job, JA_TARGET_OUTBOUND);
    if (reply)
        ready_push_back(w, job, JA_TARGET_REPLY_TO);
}

/* Moves every delayed publish that is due to the back of the ready deque. */
static void promote_due(ja_confirm_window *w, uint64_t now)
{
    for (size_t i = 0; i < delayed_count(w);) {
        if (delayed(w)[i].due_ms > now) {
            i++;
            continue;
        }
        ready_push_back(w, delayed(w)[i].job, delayed(w)[i].target);
        remove_delayed(w, i);
    }
}

static bool refusing(const ja_confirm_window *w)
{
    return w->refusals >= JA_REFUSALS_IN_A_ROW;
}

/* Whether every publish waits for the confirm of those in flight: a suspect publish is in flight
 * alone, or the broker refuses everything and the one publish probing it is not answered yet. */
static bool waits_for_a_confirm(const ja_confirm_window *w)
{
    return w->alone_seq != 0 || (refusing(w) && w->unsettled > 0);
}

bool ja_confirm_window_next(ja_confirm_window *w, uint64_t now, uint64_t live_generation,
                            ja_publish *out)
{
    if (waits_for_a_confirm(w) || (refusing(w) && now < w->probe_due_ms))
        return false;
    promote_due(w, now);
    while (w->ready_count > 0) {
        ja_publish *front = &w->ready[w->ready_start];
        /* A publish that can go out now does, however old its job: holding was decided when it
         * was delayed, and giving back a fresh answer would only make Jube work twice. */
        ja_job_state end = must_not_send(w, front->job, now, live_generation, false);
        if (end != JA_JOB_ACK) {
            ja_publish p = ready_pop_front(w);
            release(w, p.job, end);
            continue;
        }
        /* Suspected twice: it goes out alone, so the next channel error names it. */
        if (front->job->publishing.suspect >= 2 && w->unsettled > 0)
            return false;
        *out = ready_pop_front(w);
        return true;
    }
    return false;
}

uint64_t ja_confirm_window_next_seq(const ja_confirm_window *w)
{
    return w->head_seq + w->sent_count;
}

void ja_confirm_window_sent(ja_confirm_window *w, const ja_publish *p, uint64_t now)
{
    sent_reserve(w);
    uint64_t seq = ja_confirm_window_next_seq(w);
    w->sent_count++;
    *sent_at(w, seq) = (ja_sent_publish){.job = p->job, .target = p->target, .sent_ms = now};
    w->unsettled++;
    if (p->job->publishing.suspect >= 2)
        w->alone_seq = seq;
}

void ja_confirm_window_unpublishable(ja_confirm_window *w, const ja_publish *p, const char *reason)
{
    demote(w, p->job, p->target, reason);
}

void ja_confirm_window_returned(ja_confirm_window *w, uint64_t seq)
{
    if (seq < w->head_seq || seq >= w->head_seq + w->sent_count)
        return;
    ja_sent_publish *s = sent_at(w, seq);
    if (!s->settled)
        s->returned = true;
}

/* A publish the broker confirmed after returning it: no queue took it. */
static void settle_returned(ja_confirm_window *w, ja_job *job, ja_publish_target target,
                            uint64_t now)
{
    bool hold =
        target == JA_TARGET_DEAD_LETTER || target == JA_TARGET_INBOUND ||
        (target == JA_TARGET_OUTBOUND && w->policy.unroutable_responses == JA_UNROUTABLE_HOLD);
    if (!hold) {
        w->cb.event(w->cb.ctx, job, target, JA_PUBLISH_UNROUTABLE_ACCEPT);
        release(w, job, JA_JOB_ACK);
        return;
    }
    w->cb.event(w->cb.ctx, job, target, JA_PUBLISH_UNROUTABLE_HELD);
    if (target == JA_TARGET_DEAD_LETTER)
        w->needs_redeclare = true; /* the dead-letter queue is ours to create again */
    delay(w, job, target, now, true);
}

void ja_confirm_window_confirm(ja_confirm_window *w, uint64_t tag, bool multiple, bool ack,
                               uint64_t now)
{
    if (tag < w->head_seq || tag >= w->head_seq + w->sent_count)
        return; /* settled already, or never sent on this channel */
    for (uint64_t seq = multiple ? w->head_seq : tag; seq <= tag; seq++) {
        ja_sent_publish *s = sent_at(w, seq);
        if (s->settled)
            continue;
        s->settled = true;
        w->unsettled--;
        if (seq == w->alone_seq) {
            w->alone_seq = 0;
            s->job->publishing.suspect = 0; /* it went through alone: not the cause */
        }
        if (!ack && w->refusals++ == 0)
            w->refused_since = now;
        else if (ack)
            w->refusals = 0;
        if (!ack && refusing(w))
            w->probe_due_ms =
                now + ja_backoff_ms(w->refusals - JA_REFUSALS_IN_A_ROW + 1, w->policy.retry_base_ms,
                                    w->policy.retry_max_ms, &w->rng);
        if (!ack) {
            w->cb.event(w->cb.ctx, s->job, s->target, JA_PUBLISH_NACKED);
            delay(w, s->job, s->target, now, false);
        } else if (s->returned) {
            settle_returned(w, s->job, s->target, now);
        } else {
            w->cb.event(w->cb.ctx, s->job, s->target, JA_PUBLISH_STORED);
            release(w, s->job, JA_JOB_ACK);
        }
    }
    drop_settled_head(w);
}

void ja_confirm_window_lost(ja_confirm_window *w, bool suspect_content, const char *reason)
{
    /* Backwards, so that pushing to the front keeps the old order. */
    for (size_t i = w->sent_count; i-- > 0;) {
        uint64_t seq = w->head_seq + i;
        ja_sent_publish *s = sent_at(w, seq);
        if (s->settled)
            continue;
        if (suspect_content && seq == w->alone_seq) {
            demote(w, s->job, s->target, reason);
            continue;
        }
        if (suspect_content)
            s->job->publishing.suspect++;
        ready_push_front(w, s->job, s->target);
    }
    w->sent_count = 0;
    w->sent_start = 0;
    w->unsettled = 0;
    w->alone_seq = 0;
    w->refusals = 0;
    w->head_seq = 1; /* confirm sequence numbers start again on the next channel */
}

void ja_confirm_window_sweep(ja_confirm_window *w, uint64_t now, uint64_t live_generation)
{
    size_t count = w->ready_count;
    for (size_t i = 0; i < count; i++) {
        ja_publish p = ready_pop_front(w);
        ja_job_state end = must_not_send(w, p.job, now, live_generation, true);
        if (end != JA_JOB_ACK)
            release(w, p.job, end);
        else
            ready_push_back(w, p.job, p.target);
    }
    for (size_t i = 0; i < delayed_count(w);) {
        ja_delayed_publish d = delayed(w)[i];
        ja_job_state end = must_not_send(w, d.job, now, live_generation, true);
        if (end == JA_JOB_ACK) {
            i++;
            continue;
        }
        remove_delayed(w, i);
        release(w, d.job, end);
    }
}

void ja_confirm_window_restart_clock(ja_confirm_window *w, uint64_t now)
{
    for (size_t i = 0; i < w->sent_count; i++)
        w->sent[(w->sent_start + i) & (w->sent_capacity - 1)].sent_ms = now;
}

bool ja_confirm_window_overdue(const ja_confirm_window *w, uint64_t now)
{
    if (w->sent_count == 0)
        return false;
    /* The head is never settled (settled heads are dropped at once), and it is the oldest. */
    return now - w->sent[w->sent_start].sent_ms >= w->policy.confirm_timeout_ms;
}

uint64_t ja_confirm_window_next_due_ms(const ja_confirm_window *w)
{
    uint64_t soonest = UINT64_MAX;
    /* While a confirm is awaited nothing goes out, whatever is due: no wake-up for it. */
    if (!waits_for_a_confirm(w)) {
        for (size_t i = 0; i < delayed_count(w); i++)
            if (delayed(w)[i].due_ms < soonest)
                soonest = delayed(w)[i].due_ms;
        /* Nor before the next probe of a refusing broker may go out. */
        if (refusing(w) && (w->ready_count > 0 || soonest < w->probe_due_ms))
            soonest = w->probe_due_ms;
    }
    if (w->sent_count > 0) {
        uint64_t overdue = w->sent[w->sent_start].sent_ms + w->policy.confirm_timeout_ms;
        if (overdue < soonest)
            soonest = overdue;
    }
    return soonest;
}
