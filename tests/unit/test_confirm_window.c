/* The confirm window: a job is acked only once the broker stored every outcome of it, each job
 * leaves exactly once, and refused, unroutable, lost and poisonous publishes are handled as the
 * header says. Driven the way the publisher drives it, against a model broker. */

#include "confirm_window.h"
#include "test.h"

#define MAX_JOBS 512

typedef struct {
    int finished[MAX_JOBS]; /* times each job left */
    ja_job_state end[MAX_JOBS];
    int events[8];
    ja_job *jobs;
} record;

static void on_finished(void *ctx, ja_job *job, ja_job_state state)
{
    record *r = ctx;
    size_t i = (size_t)(job - r->jobs);
    r->finished[i]++;
    r->end[i] = state;
}

static void on_event(void *ctx, const ja_job *job, ja_publish_target target, ja_publish_event e)
{
    (void)job;
    (void)target;
    ((record *)ctx)->events[e]++;
}

static const ja_confirm_policy policy = {.retry_base_ms = 100,
                                         .retry_max_ms = 1000,
                                         .max_hold_ms = 60000,
                                         .confirm_timeout_ms = 5000,
                                         .unroutable_responses = JA_UNROUTABLE_HOLD};

static void start(ja_confirm_window *w, record *r, ja_job *jobs, size_t n,
                  const ja_confirm_policy *p)
{
    memset(r, 0, sizeof *r);
    memset(jobs, 0, n * sizeof *jobs);
    r->jobs = jobs;
    for (size_t i = 0; i < n; i++) {
        jobs[i].generation = 1;
        jobs[i].state = JA_JOB_RESPOND;
    }
    ja_confirm_callbacks cb = {.ctx = r, .finished = on_finished, .event = on_event};
    ASSERT_EQ(ja_confirm_window_init(w, p ? p : &policy, &cb, 7), 0);
}

static void with_reply_to(ja_job *job)
{
    job->envelope.message.properties._flags |= AMQP_BASIC_REPLY_TO_FLAG;
    job->envelope.message.properties.reply_to = amqp_cstring_bytes("replies");
}

/* Sends everything that may go now; returns how many. */
static int send_all(ja_confirm_window *w, uint64_t now, ja_publish *sent, int max)
{
    int n = 0;
    ja_publish p;
    while (n < max && ja_confirm_window_next(w, now, 1, &p)) {
        ja_confirm_window_sent(w, &p, now);
        if (sent)
            sent[n] = p;
        n++;
    }
    return n;
}

TEST(stored_once_then_acked)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[2];
    start(&w, &r, jobs, 2, NULL);
    ja_confirm_window_submit(&w, &jobs[0]);
    ja_confirm_window_submit(&w, &jobs[1]);
    ASSERT_EQ(ja_confirm_window_next_seq(&w), 1);
    ASSERT_EQ(send_all(&w, 0, NULL, 10), 2);
    ASSERT_EQ(ja_confirm_window_unconfirmed(&w), 2);
    ja_confirm_window_confirm(&w, 2, false, true, 1);
    ASSERT_EQ(r.finished[1], 1);
    ASSERT_EQ(r.finished[0], 0);
    ja_confirm_window_confirm(&w, 2, true, true, 1); /* covers 1; 2 is settled already */
    ASSERT_EQ(r.finished[0], 1);
    ASSERT_EQ(r.finished[1], 1);
    ASSERT_EQ(r.end[0], JA_JOB_ACK);
    ja_confirm_window_confirm(&w, 1, false, true, 1); /* a stray confirm changes nothing */
    ASSERT_EQ(r.finished[0], 1);
    ASSERT_EQ(r.events[JA_PUBLISH_STORED], 2);
    ASSERT_EQ(ja_confirm_window_unconfirmed(&w), 0);
    ja_confirm_window_free(&w);
}

TEST(reply_to_is_a_second_publish)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    with_reply_to(&jobs[0]);
    ja_confirm_window_submit(&w, &jobs[0]);
    ja_publish sent[4];
    ASSERT_EQ(send_all(&w, 0, sent, 4), 2);
    ASSERT_EQ(sent[0].target, JA_TARGET_OUTBOUND);
    ASSERT_EQ(sent[1].target, JA_TARGET_REPLY_TO);
    ja_confirm_window_confirm(&w, 1, false, true, 0);
    ASSERT_EQ(r.finished[0], 0);
    /* No reply queue: counted and accepted, never retried. */
    ja_confirm_window_returned(&w, 2);
    ja_confirm_window_confirm(&w, 2, false, true, 0);
    ASSERT_EQ(r.finished[0], 1);
    ASSERT_EQ(r.end[0], JA_JOB_ACK);
    ASSERT_EQ(r.events[JA_PUBLISH_UNROUTABLE_ACCEPT], 1);
    ja_confirm_window_free(&w);
}

TEST(nack_backs_off_then_publishes_again)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    ja_confirm_window_submit(&w, &jobs[0]);
    ASSERT_EQ(send_all(&w, 0, NULL, 4), 1);
    uint64_t now = 10;
    uint64_t previous_delay = 0;
    for (int nack = 1; nack <= 4; nack++) {
        ja_confirm_window_confirm(&w, ja_confirm_window_next_seq(&w) - 1, false, false, now);
        ASSERT_EQ(r.finished[0], 0);
        uint64_t due = ja_confirm_window_next_due_ms(&w);
        ASSERT_GT(due, now);
        ASSERT_EQ(send_all(&w, due - 1, NULL, 4), 0);
        /* Exponential with jitter: never below half the previous full step. */
        uint64_t delay = due - now;
        ASSERT_GE(delay, previous_delay / 2);
        ASSERT_LE(delay, 1000);
        previous_delay = delay;
        now = due;
        ASSERT_EQ(send_all(&w, now, NULL, 4), 1);
    }
    ASSERT_EQ(r.events[JA_PUBLISH_NACKED], 4);
    ASSERT_EQ(ja_confirm_window_refusing_for(&w, now), now - 10); /* since the first nack */
    w.refusals = 2;
    ASSERT_EQ(ja_confirm_window_refusing_for(&w, now), 0); /* two nacks are not a pattern */
    w.refusals = 4;
    ja_confirm_window_confirm(&w, ja_confirm_window_next_seq(&w) - 1, false, true, now);
    ASSERT_EQ(r.end[0], JA_JOB_ACK);
    ASSERT_EQ(ja_confirm_window_refusing_for(&w, now + 1000), 0);
    ja_confirm_window_free(&w);
}

/* Once the broker has nacked JA_REFUSALS_IN_A_ROW publishes in a row, one publish at a time goes
 * out until one is stored: publishes that are due wait (without a timer of their own) while the
 * probe is unanswered, a refused probe backs the next one off, and the first ack lets everything
 * go again. */
TEST(a_refusing_broker_is_probed_one_publish_at_a_time)
{
    enum { JOBS = 10 };
    ja_confirm_window w;
    record r;
    ja_job jobs[JOBS];
    start(&w, &r, jobs, JOBS, NULL);
    for (int i = 0; i < JOBS; i++)
        ja_confirm_window_submit(&w, &jobs[i]);
    ASSERT_EQ(send_all(&w, 0, NULL, JOBS), JOBS);
    /* Two nacks are no pattern: what is due goes out beside the rest in flight. */
    ja_confirm_window_confirm(&w, 1, false, false, 0);
    ja_confirm_window_confirm(&w, 2, false, false, 0);
    ASSERT_EQ(send_all(&w, 2000, NULL, JOBS), 2);
    /* The third: nothing more goes out while any publish is unanswered, and no timer is asked
     * for beyond the confirm time-out of the oldest one in flight. */
    ja_confirm_window_confirm(&w, 3, false, false, 2000);
    ASSERT_EQ(send_all(&w, 4000, NULL, JOBS), 0);
    ASSERT_EQ(ja_confirm_window_next_due_ms(&w), policy.confirm_timeout_ms);
    ja_confirm_window_confirm(&w, JOBS + 2, true, false, 4000); /* every one in flight */
    ASSERT_EQ(ja_confirm_window_unconfirmed(&w), 0);
    /* All refused and due: one probe at a time, the next one backed off after each nack, with
     * the publisher's timer set for it. */
    uint64_t now = 10000;
    for (int probe = 0; probe < 3; probe++) {
        ASSERT_EQ(send_all(&w, now, NULL, JOBS), 1);
        ASSERT_EQ(send_all(&w, now, NULL, JOBS), 0);
        ja_confirm_window_confirm(&w, ja_confirm_window_next_seq(&w) - 1, false, false, now);
        uint64_t due = ja_confirm_window_next_due_ms(&w);
        ASSERT_GT(due, now);
        ASSERT_LE(due, now + policy.retry_max_ms);
        ASSERT_EQ(send_all(&w, due - 1, NULL, JOBS), 0);
        now = due;
    }
    ASSERT_EQ(send_all(&w, now, NULL, JOBS), 1);
    /* Stored: the broker takes publishes again, and the rest go out together. */
    ja_confirm_window_confirm(&w, ja_confirm_window_next_seq(&w) - 1, false, true, now);
    ASSERT_EQ(ja_confirm_window_refusing_for(&w, now), 0);
    now += 10000;
    ASSERT_EQ(send_all(&w, now, NULL, JOBS), JOBS - 1);
    ja_confirm_window_confirm(&w, ja_confirm_window_next_seq(&w) - 1, true, true, now);
    for (int i = 0; i < JOBS; i++)
        ASSERT_EQ(r.end[i], JA_JOB_ACK);
    ja_confirm_window_free(&w);
}

TEST(returned_dead_letter_is_held_and_the_topology_declared_again)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    jobs[0].state = JA_JOB_DEAD_LETTER;
    ja_confirm_window_submit(&w, &jobs[0]);
    ASSERT_EQ(send_all(&w, 0, NULL, 4), 1);
    ja_confirm_window_returned(&w, 1);
    ja_confirm_window_confirm(&w, 1, false, true, 0);
    ASSERT_EQ(r.finished[0], 0); /* confirmed, but stored nowhere: never acked */
    ASSERT(w.needs_redeclare);
    ASSERT_EQ(w.unroutable_held, 1);
    ASSERT_EQ(r.events[JA_PUBLISH_UNROUTABLE_HELD], 1);
    uint64_t due = ja_confirm_window_next_due_ms(&w);
    ASSERT_EQ(send_all(&w, due, NULL, 4), 1);
    ASSERT_EQ(w.unroutable_held, 1); /* held until stored: out for another try */
    ja_confirm_window_confirm(&w, 2, false, true, due);
    ASSERT_EQ(r.finished[0], 1);
    ASSERT_EQ(r.end[0], JA_JOB_ACK);
    ASSERT_EQ(w.unroutable_held, 0);
    ja_confirm_window_free(&w);
}

/* Near the delivery limit the message goes to the inbound queue's tail: held when no queue takes
 * it (the consumer declares the queue again), a dead letter with reason delivery_limit when it
 * cannot be published at all, acked once stored. */
TEST(renewal_is_held_when_returned_and_dead_lettered_when_unpublishable)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[2];
    start(&w, &r, jobs, 2, NULL);
    jobs[0].state = JA_JOB_RENEW;
    jobs[1].state = JA_JOB_RENEW;
    jobs[1].delivery_count = 15;
    ja_confirm_window_submit(&w, &jobs[0]);
    ja_publish sent[4];
    ASSERT_EQ(send_all(&w, 0, sent, 4), 1);
    ASSERT_EQ(sent[0].target, JA_TARGET_INBOUND);
    ja_confirm_window_returned(&w, 1);
    ja_confirm_window_confirm(&w, 1, false, true, 0);
    ASSERT_EQ(r.finished[0], 0);
    ASSERT_EQ(w.unroutable_held, 1);
    ASSERT(!w.needs_redeclare);
    uint64_t due = ja_confirm_window_next_due_ms(&w);
    ASSERT_EQ(send_all(&w, due, sent, 4), 1);
    ja_confirm_window_confirm(&w, 2, false, true, due);
    ASSERT_EQ(r.finished[0], 1);
    ASSERT_EQ(r.end[0], JA_JOB_ACK);

    ja_confirm_window_submit(&w, &jobs[1]);
    ja_publish p;
    ASSERT(ja_confirm_window_next(&w, due, 1, &p));
    ASSERT_EQ(p.target, JA_TARGET_INBOUND);
    ja_confirm_window_unpublishable(&w, &p, "headers too large");
    ASSERT(ja_confirm_window_next(&w, due, 1, &p));
    ASSERT_EQ(p.target, JA_TARGET_DEAD_LETTER);
    ASSERT_EQ(jobs[1].state, JA_JOB_DEAD_LETTER);
    ASSERT_STR_EQ(jobs[1].failure.code, "delivery_limit");
    ASSERT_CONTAINS(jobs[1].failure.detail, "delivered 16 times");
    ASSERT_CONTAINS(jobs[1].failure.detail, "headers too large");
    ja_confirm_window_sent(&w, &p, due);
    ja_confirm_window_confirm(&w, 3, false, true, due);
    ASSERT_EQ(r.finished[1], 1);
    ASSERT_EQ(r.end[1], JA_JOB_ACK);
    ja_confirm_window_free(&w);
}

TEST(returned_response_held_or_accepted_by_policy)
{
    for (int accept = 0; accept <= 1; accept++) {
        ja_confirm_policy p = policy;
        p.unroutable_responses = accept ? JA_UNROUTABLE_ACK : JA_UNROUTABLE_HOLD;
        ja_confirm_window w;
        record r;
        ja_job jobs[1];
        start(&w, &r, jobs, 1, &p);
        ja_confirm_window_submit(&w, &jobs[0]);
        ASSERT_EQ(send_all(&w, 0, NULL, 4), 1);
        ja_confirm_window_returned(&w, 1);
        ja_confirm_window_confirm(&w, 1, false, true, 0);
        ASSERT_EQ(r.finished[0], accept);
        ASSERT_EQ(w.unroutable_held, accept ? 0 : 1);
        ASSERT(!w.needs_redeclare); /* the outbound exchange's queues are not the service's */
        ja_confirm_window_free(&w);
    }
}

TEST(held_past_max_hold_goes_back_to_the_queue)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    ja_confirm_window_submit(&w, &jobs[0]);
    uint64_t now = 0;
    for (int i = 0; i < 1000 && r.finished[0] == 0; i++) {
        ASSERT_EQ(send_all(&w, now, NULL, 4), 1);
        ja_confirm_window_confirm(&w, ja_confirm_window_next_seq(&w) - 1, false, false, now);
        if (r.finished[0] == 0)
            now = ja_confirm_window_next_due_ms(&w);
    }
    ASSERT_EQ(r.finished[0], 1);
    ASSERT_EQ(r.end[0], JA_JOB_REQUEUE);
    /* Given back when the next try would pass the limit, not after it. */
    ASSERT_LT(now, 60000);
    ASSERT_GT(now, 60000 - 2 * 1000);
    ja_confirm_window_free(&w);
}

TEST(lost_connection_sends_everything_unconfirmed_again_in_order)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[4];
    start(&w, &r, jobs, 4, NULL);
    for (int i = 0; i < 4; i++)
        ja_confirm_window_submit(&w, &jobs[i]);
    ASSERT_EQ(send_all(&w, 0, NULL, 10), 4);
    ja_confirm_window_confirm(&w, 2, false, true, 0);
    ja_confirm_window_lost(&w, false, "connection reset");
    ASSERT_EQ(ja_confirm_window_next_seq(&w), 1);
    ja_publish sent[10];
    ASSERT_EQ(send_all(&w, 0, sent, 10), 3);
    ASSERT_PTR_EQ(sent[0].job, &jobs[0]);
    ASSERT_PTR_EQ(sent[1].job, &jobs[2]);
    ASSERT_PTR_EQ(sent[2].job, &jobs[3]);
    ja_confirm_window_confirm(&w, 3, true, true, 0);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(r.finished[i], 1);
    ja_confirm_window_free(&w);
}

TEST(dead_generation_is_dropped_not_published)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[3];
    start(&w, &r, jobs, 3, NULL);
    for (int i = 0; i < 3; i++)
        ja_confirm_window_submit(&w, &jobs[i]);
    jobs[1].generation = 2;
    ja_publish sent[4];
    ASSERT_EQ(send_all(&w, 0, sent, 4), 2); /* the live generation is 1 */
    ASSERT_EQ(r.finished[1], 1);
    ASSERT_EQ(r.end[1], JA_JOB_DROP);
    /* While publishing is blocked, a sweep drops what waits. */
    jobs[2].generation = 5;
    ja_confirm_window_submit(&w, &jobs[2]);
    ja_confirm_window_sweep(&w, 0, 1);
    ASSERT_EQ(r.end[2], JA_JOB_DROP);
    ja_confirm_window_free(&w);
}

/* A clock read just before a job was stamped is not an ancient job. */
TEST(a_clock_read_before_the_job_was_stamped_is_not_held_too_long)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    jobs[0].received_ms = 5000;
    ja_confirm_window_submit(&w, &jobs[0]);
    ja_confirm_window_sweep(&w, 4999, 1);
    ASSERT_EQ(r.finished[0], 0);
    ASSERT_EQ(send_all(&w, 4999, NULL, 4), 1);
    ja_confirm_window_free(&w);
}

TEST(overdue_confirm)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    ja_confirm_window_submit(&w, &jobs[0]);
    ASSERT(!ja_confirm_window_overdue(&w, 0));
    send_all(&w, 100, NULL, 1);
    ASSERT_EQ(ja_confirm_window_next_due_ms(&w), 5100);
    ASSERT(!ja_confirm_window_overdue(&w, 5099));
    ASSERT(ja_confirm_window_overdue(&w, 5100));
    ja_confirm_window_restart_clock(&w, 9000); /* publishing was blocked until now */
    ASSERT(!ja_confirm_window_overdue(&w, 13999));
    ASSERT(ja_confirm_window_overdue(&w, 14000));
    ja_confirm_window_free(&w);
}

/* A response that keeps breaking the channel: found alone, then published as a dead letter,
 * then as a bare one, then rejected; the innocent publish beside it goes through. */
TEST(poisonous_publish_is_found_and_demoted)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[2];
    start(&w, &r, jobs, 2, NULL);
    ja_confirm_window_submit(&w, &jobs[0]); /* the poisonous one */
    ja_confirm_window_submit(&w, &jobs[1]);
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ(send_all(&w, 0, NULL, 10), 2);
        ja_confirm_window_lost(&w, true, "406 PRECONDITION_FAILED");
    }
    /* Both are suspected twice now: each goes out alone. */
    ja_publish sent[4];
    ASSERT_EQ(send_all(&w, 0, sent, 4), 1);
    ASSERT_PTR_EQ(sent[0].job, &jobs[0]);
    ja_confirm_window_lost(&w, true, "406 PRECONDITION_FAILED - bad");
    ASSERT_EQ(jobs[0].state, JA_JOB_DEAD_LETTER);
    ASSERT_STR_EQ(jobs[0].failure.code, "unpublishable");
    ASSERT_CONTAINS(jobs[0].failure.detail, "406 PRECONDITION_FAILED - bad");
    ASSERT_EQ(r.events[JA_PUBLISH_UNPUBLISHABLE], 1);

    ASSERT_EQ(send_all(&w, 0, sent, 4), 1); /* the innocent one, alone */
    ASSERT_PTR_EQ(sent[0].job, &jobs[1]);
    ASSERT_EQ(send_all(&w, 0, sent, 4), 0);
    ja_confirm_window_confirm(&w, 1, false, true, 0);
    ASSERT_EQ(r.end[1], JA_JOB_ACK);
    ASSERT_EQ(jobs[1].publishing.suspect, 0);

    /* The dead letter now goes out normally; it breaks the channel twice more... */
    for (int round = 0; round < 2; round++) {
        ASSERT_EQ(send_all(&w, 0, sent, 4), 1);
        ASSERT_EQ(sent[0].target, JA_TARGET_DEAD_LETTER);
        ja_confirm_window_lost(&w, true, "406");
    }
    ASSERT_EQ(send_all(&w, 0, sent, 4), 1);
    ja_confirm_window_lost(&w, true, "406");
    ASSERT(jobs[0].publishing.bare);
    ASSERT_STR_EQ(jobs[0].failure.code, "unpublishable");
    ASSERT_CONTAINS(jobs[0].failure.detail, "left out");
    ASSERT_EQ(r.finished[0], 0);
    /* ... and even bare it fails: rejected, with nothing left behind. */
    for (int round = 0; round < 3; round++) {
        ASSERT_EQ(send_all(&w, 0, sent, 4), 1);
        ja_confirm_window_lost(&w, true, "406");
    }
    ASSERT_EQ(r.finished[0], 1);
    ASSERT_EQ(r.end[0], JA_JOB_REJECT);
    ASSERT_EQ(send_all(&w, 0, sent, 4), 0);
    ja_confirm_window_free(&w);
}

TEST(connection_errors_unrelated_to_content_blame_nobody)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    ja_confirm_window_submit(&w, &jobs[0]);
    for (int round = 0; round < 5; round++) {
        ASSERT_EQ(send_all(&w, 0, NULL, 4), 1);
        ja_confirm_window_lost(&w, false, "connection reset by peer");
    }
    ASSERT_EQ(jobs[0].publishing.suspect, 0);
    ASSERT_EQ(jobs[0].state, JA_JOB_RESPOND);
    ja_confirm_window_free(&w);
}

TEST(unencodable_response_becomes_a_bare_dead_letter)
{
    ja_confirm_window w;
    record r;
    ja_job jobs[1];
    start(&w, &r, jobs, 1, NULL);
    ja_confirm_window_submit(&w, &jobs[0]);
    ja_publish p;
    ASSERT(ja_confirm_window_next(&w, 0, 1, &p));
    ja_confirm_window_unpublishable(&w, &p, "headers too large");
    ASSERT(ja_confirm_window_next(&w, 0, 1, &p));
    ASSERT_EQ(p.target, JA_TARGET_DEAD_LETTER);
    ASSERT(!jobs[0].publishing.bare);
    ja_confirm_window_unpublishable(&w, &p, "headers too large");
    ASSERT(ja_confirm_window_next(&w, 0, 1, &p));
    ASSERT(jobs[0].publishing.bare);
    ja_confirm_window_sent(&w, &p, 0);
    ja_confirm_window_confirm(&w, 1, false, true, 0);
    ASSERT_EQ(r.end[0], JA_JOB_ACK);
    ASSERT_EQ(r.finished[0], 1);
    ja_confirm_window_free(&w);
}

static uint64_t next_random(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* A model broker answers publishes in random ways: acks (sometimes "multiple"), nacks, returns
 * while no queue is bound, and lost connections. Whatever it does, every job leaves exactly once,
 * and a job leaves with an ack only when the broker stored each of its publishes. */
TEST(random_broker_against_the_rules)
{
    enum { JOBS = 300 };
    for (uint64_t seed = 1; seed <= 30; seed++) {
        static ja_job jobs[JOBS];
        static record r;
        ja_confirm_policy p = policy;
        p.max_hold_ms = 1000000;
        ja_confirm_window w;
        start(&w, &r, jobs, JOBS, &p);
        bool stored[JOBS][3] = {{false}};
        uint64_t rng = seed * 7919;
        for (int i = 0; i < JOBS; i++) {
            if (next_random(&rng) % 3 == 0)
                jobs[i].state = JA_JOB_DEAD_LETTER;
            else if (next_random(&rng) % 3 == 0)
                with_reply_to(&jobs[i]);
        }
        int submitted = 0;
        uint64_t now = 0;
        /* What the broker holds of the current channel: seq -> publish. */
        ja_publish channel[4096];
        bool answered[4096];
        uint64_t channel_count = 0;
        for (int step = 0; step < 200000; step++) {
            int done = 0;
            for (int i = 0; i < JOBS; i++)
                done += r.finished[i];
            if (done == JOBS)
                break;
            if (submitted < JOBS && next_random(&rng) % 2)
                ja_confirm_window_submit(&w, &jobs[submitted++]);
            ja_publish pub;
            while (channel_count < 4000 && ja_confirm_window_next(&w, now, 1, &pub)) {
                ASSERT_EQ(ja_confirm_window_next_seq(&w), channel_count + 1);
                ja_confirm_window_sent(&w, &pub, now);
                channel[channel_count] = pub;
                answered[channel_count] = false;
                channel_count++;
            }
            uint64_t roll = next_random(&rng) % 100;
            if (roll < 2) {
                ja_confirm_window_lost(&w, false, "reset");
                channel_count = 0;
            } else if (channel_count > 0) {
                uint64_t seq = next_random(&rng) % channel_count + 1;
                bool multiple = next_random(&rng) % 4 == 0;
                bool nack = next_random(&rng) % 10 == 0;
                bool unroutable = next_random(&rng) % 10 == 0;
                for (uint64_t s = multiple ? 1 : seq; s <= seq; s++) {
                    if (answered[s - 1])
                        continue;
                    answered[s - 1] = true;
                    ja_publish *q = &channel[s - 1];
                    if (nack)
                        continue;
                    if (unroutable && q->target != JA_TARGET_REPLY_TO)
                        ja_confirm_window_returned(&w, s);
                    else
                        stored[q->job - jobs][q->target] = true;
                }
                ja_confirm_window_confirm(&w, seq, multiple, !nack, now);
            }
            now += next_random(&rng) % 50;
            for (int i = 0; i < JOBS; i++) {
                ASSERT_LE(r.finished[i], 1);
                if (r.finished[i] && r.end[i] == JA_JOB_ACK) {
                    bool dead = jobs[i].state == JA_JOB_DEAD_LETTER;
                    ASSERT(stored[i][dead ? JA_TARGET_DEAD_LETTER : JA_TARGET_OUTBOUND]);
                    bool reply =
                        jobs[i].envelope.message.properties._flags & AMQP_BASIC_REPLY_TO_FLAG;
                    if (reply && !dead)
                        ASSERT(stored[i][JA_TARGET_REPLY_TO]);
                }
            }
        }
        for (int i = 0; i < JOBS; i++) {
            ASSERT_EQ(r.finished[i], 1);
            ASSERT_EQ(r.end[i], JA_JOB_ACK);
        }
        ja_confirm_window_free(&w);
    }
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(stored_once_then_acked),
        TEST_ENTRY(reply_to_is_a_second_publish),
        TEST_ENTRY(nack_backs_off_then_publishes_again),
        TEST_ENTRY(a_refusing_broker_is_probed_one_publish_at_a_time),
        TEST_ENTRY(returned_dead_letter_is_held_and_the_topology_declared_again),
        TEST_ENTRY(renewal_is_held_when_returned_and_dead_lettered_when_unpublishable),
        TEST_ENTRY(returned_response_held_or_accepted_by_policy),
        TEST_ENTRY(held_past_max_hold_goes_back_to_the_queue),
        TEST_ENTRY(lost_connection_sends_everything_unconfirmed_again_in_order),
        TEST_ENTRY(dead_generation_is_dropped_not_published),
        TEST_ENTRY(a_clock_read_before_the_job_was_stamped_is_not_held_too_long),
        TEST_ENTRY(overdue_confirm),
        TEST_ENTRY(poisonous_publish_is_found_and_demoted),
        TEST_ENTRY(connection_errors_unrelated_to_content_blame_nobody),
        TEST_ENTRY(unencodable_response_becomes_a_bare_dead_letter),
        TEST_ENTRY(random_broker_against_the_rules),
    };
    return RUN_TESTS(tests);
}
