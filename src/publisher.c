#include "publisher.h"

#include "amqp_connection.h"
#include "log.h"
#include "metrics.h"
#include "outbound_message.h"
#include "outcome.h"
#include "reconnect.h"
#include "topology.h"

#include <amqp_framing.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef enum { TARGET_OUTBOUND, TARGET_REPLY_TO, TARGET_DEAD_LETTER } target;

/* One publish awaiting the broker's confirm; seq = head_seq + its index in the window. */
typedef struct {
    ja_job *job;
    target target;
    bool settled;
} in_flight_publish;

/* A publish to send (again): after a nack, or after the connection was lost. */
typedef struct {
    ja_job *job;
    target target;
    uint64_t due_ms;
} retry;

typedef struct {
    ja_service *svc;
    const ja_config *cfg;
    amqp_connection_state_t conn;
    bool blocked;
    bool connected_before; /* a later connection counts as a reconnect */
    ja_reconnect reconnect;
    uint64_t rng;

    in_flight_publish *window; /* circular; capacity is a power of two */
    size_t window_capacity;
    size_t window_start; /* index of head_seq */
    size_t window_count;
    uint64_t head_seq; /* sequence number of the oldest publish in the window */

    retry *retries;
    size_t retry_count, retry_capacity;

    ja_inbox_node *backlog_head, *backlog_tail; /* jobs taken from the inbox, not yet published */
    ja_header_scratch scratch;
} publisher;

static in_flight_publish *window_at(publisher *p, uint64_t seq)
{
    return &p->window[(p->window_start + (size_t)(seq - p->head_seq)) & (p->window_capacity - 1)];
}

static bool window_grow(publisher *p)
{
    size_t capacity = p->window_capacity ? p->window_capacity * 2 : 1024;
    in_flight_publish *grown = malloc(capacity * sizeof *grown);
    if (!grown)
        return false;
    for (size_t i = 0; i < p->window_count; i++)
        grown[i] = p->window[(p->window_start + i) & (p->window_capacity - 1)];
    free(p->window);
    p->window = grown;
    p->window_capacity = capacity;
    p->window_start = 0;
    return true;
}

static bool add_retry(publisher *p, ja_job *job, target t, uint64_t due_ms)
{
    if (p->retry_count == p->retry_capacity) {
        size_t capacity = p->retry_capacity ? p->retry_capacity * 2 : 64;
        retry *grown = realloc(p->retries, capacity * sizeof *grown);
        if (!grown)
            return false;
        p->retries = grown;
        p->retry_capacity = capacity;
    }
    p->retries[p->retry_count++] = (retry){.job = job, .target = t, .due_ms = due_ms};
    return true;
}

/* One publish of a job is settled; the job goes back to the consumer with its last one. */
static void settle(publisher *p, ja_job *job)
{
    if (--job->unconfirmed_publishes == 0)
        ja_service_to_consumer(p->svc, job, JA_JOB_ACK);
}

/* Counts a job whose last publish the broker has just confirmed. */
static void count_outcome(const ja_job *job)
{
    if (job->state == JA_JOB_DEAD_LETTER)
        ja_count(&ja_stats.dead_lettered[ja_dead_letter_reason_of(job->failure.code)]);
    else
        ja_count(&ja_stats.published);
}

static bool publish_one(publisher *p, ja_job *job, target t)
{
    if (p->window_count == p->window_capacity && !window_grow(p)) {
        ja_log_error("out of memory tracking publishes; retrying");
        return add_retry(p, job, t, ja_now_ms() + 100);
    }
    const amqp_message_t *msg = &job->envelope.message;
    amqp_basic_properties_t props;
    const char *exchange;
    amqp_bytes_t routing_key;
    int rc;
    switch (t) {
    case TARGET_OUTBOUND:
        exchange = p->cfg->outbound_exchange;
        routing_key = amqp_cstring_bytes(p->cfg->routing_key);
        rc = ja_response_properties(job, &p->scratch, &props);
        break;
    case TARGET_REPLY_TO:
        exchange = ""; /* the default exchange routes by queue name */
        routing_key = msg->properties.reply_to;
        rc = ja_response_properties(job, &p->scratch, &props);
        break;
    default:
        exchange = p->cfg->dead_letter_exchange;
        routing_key = amqp_cstring_bytes(p->cfg->inbound_queue);
        rc = ja_dead_letter_properties(job, &p->scratch, &props);
        break;
    }
    if (rc != 0) {
        ja_log_error("out of memory building a message; retrying");
        return add_retry(p, job, t, ja_now_ms() + 100);
    }
    amqp_bytes_t body = t == TARGET_DEAD_LETTER
                            ? msg->body
                            : (amqp_bytes_t){.len = job->response.len, .bytes = job->response.data};

    /* Track it before sending: if the send fails, it is still unconfirmed and goes out again
     * on the next connection. */
    *window_at(p, p->head_seq + p->window_count) =
        (in_flight_publish){.job = job, .target = t, .settled = false};
    p->window_count++;
    rc = amqp_basic_publish(p->conn, JA_CHANNEL, amqp_cstring_bytes(exchange), routing_key, 0, 0,
                            &props, body);
    if (rc != AMQP_STATUS_OK) {
        ja_log_warn("publisher connection lost while publishing: %s", amqp_error_string2(rc));
        return false;
    }
    return true;
}

static bool publish_job(publisher *p, ja_job *job)
{
    if (!ja_service_is_live(p->svc, job->generation)) {
        /* Its delivery can no longer be acked and will come again: publishing now would only
         * make a duplicate. */
        ja_service_to_consumer(p->svc, job, JA_JOB_DROP);
        return true;
    }
    if (job->state == JA_JOB_DEAD_LETTER) {
        job->unconfirmed_publishes = 1;
        return publish_one(p, job, TARGET_DEAD_LETTER);
    }
    const amqp_basic_properties_t *in = &job->envelope.message.properties;
    bool reply = (in->_flags & AMQP_BASIC_REPLY_TO_FLAG) && in->reply_to.len > 0;
    job->unconfirmed_publishes = reply ? 2 : 1;
    if (!publish_one(p, job, TARGET_OUTBOUND)) {
        /* The connection is gone; the reply goes out with the retries on the next one. */
        if (reply && !add_retry(p, job, TARGET_REPLY_TO, ja_now_ms()))
            ja_log_error("out of memory: a reply could not be kept for the next connection");
        return false;
    }
    return !reply || publish_one(p, job, TARGET_REPLY_TO);
}

static void drop_settled_head(publisher *p)
{
    while (p->window_count > 0 && p->window[p->window_start].settled) {
        p->window_start = (p->window_start + 1) & (p->window_capacity - 1);
        p->window_count--;
        p->head_seq++;
    }
}

/* Applies a basic.ack (confirmed = true) or basic.nack from the broker. */
static void on_confirm(publisher *p, uint64_t tag, bool multiple, bool confirmed)
{
    uint64_t end = p->head_seq + p->window_count;
    if (tag < p->head_seq || tag >= end)
        return; /* already settled */
    uint64_t from = multiple ? p->head_seq : tag;
    for (uint64_t seq = from; seq <= tag; seq++) {
        in_flight_publish *f = window_at(p, seq);
        if (f->settled)
            continue;
        f->settled = true;
        if (confirmed) {
            if (f->job->unconfirmed_publishes == 1)
                count_outcome(f->job);
            settle(p, f->job);
        } else {
            ja_log_warn("the broker refused (nack) a publish to '%s'; publishing it again",
                        f->target == TARGET_DEAD_LETTER ? p->cfg->dead_letter_exchange
                        : f->target == TARGET_OUTBOUND  ? p->cfg->outbound_exchange
                                                        : "(reply_to)");
            uint64_t delay = ja_backoff_ms(1, (uint64_t)p->cfg->retry_base_ms,
                                           (uint64_t)p->cfg->retry_max_ms, &p->rng);
            if (!add_retry(p, f->job, f->target, ja_now_ms() + delay))
                ja_log_error("out of memory: a nacked publish waits for a reconnect");
        }
    }
    drop_settled_head(p);
}

/* Reads everything the broker sent, without blocking. Returns false when the connection is
 * no longer usable. */
static bool read_frames(publisher *p)
{
    for (;;) {
        amqp_frame_t frame;
        struct timeval zero = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(p->conn, &frame, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            return true;
        if (rc != AMQP_STATUS_OK) {
            ja_log_warn("publisher connection lost: %s", amqp_error_string2(rc));
            return false;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        amqp_method_t *method = &frame.payload.method;
        switch (method->id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *ack = method->decoded;
            on_confirm(p, ack->delivery_tag, ack->multiple, true);
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *nack = method->decoded;
            on_confirm(p, nack->delivery_tag, nack->multiple, false);
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            /* Not expected (nothing is published mandatory), but its content frames follow and
             * must be read. */
            amqp_message_t returned;
            amqp_rpc_reply_t reply = amqp_read_message(p->conn, frame.channel, &returned, 0);
            if (reply.reply_type != AMQP_RESPONSE_NORMAL)
                return false;
            amqp_destroy_message(&returned);
            break;
        }
        case AMQP_CONNECTION_BLOCKED_METHOD: {
            const amqp_connection_blocked_t *b = method->decoded;
            p->blocked = true;
            atomic_store(&ja_stats.blocked, true);
            ja_log_warn("the broker blocked publishing (%.*s); holding results until it "
                        "unblocks",
                        (int)b->reason.len, (const char *)b->reason.bytes);
            break;
        }
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            p->blocked = false;
            atomic_store(&ja_stats.blocked, false);
            ja_log_info("the broker unblocked publishing");
            break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_rpc_reply_t reply = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                                      .reply = *method};
            char why[512];
            ja_amqp_describe_reply(reply, why, sizeof why);
            ja_log_warn("publisher: %s", why);
            ja_amqp_answer_close(p->conn, method);
            return false;
        }
        default:
            break;
        }
    }
}

/* Everything published but not confirmed on a lost connection is published again on the next
 * one: the broker may or may not have it, and a duplicate is better than a loss. */
static void lose_connection(publisher *p)
{
    ja_amqp_destroy(p->conn);
    p->conn = NULL;
    p->blocked = false;
    atomic_store(&ja_stats.blocked, false);
    atomic_store(&ja_stats.connected[JA_CONN_PUBLISHER], false);
    uint64_t now = ja_now_ms();
    for (size_t i = 0; i < p->window_count; i++) {
        in_flight_publish *f = &p->window[(p->window_start + i) & (p->window_capacity - 1)];
        if (!f->settled && !add_retry(p, f->job, f->target, now))
            ja_log_error("out of memory: a publish could not be kept for the next connection");
    }
    p->window_count = 0;
    p->window_start = 0;
    p->head_seq = 1;
}

static bool connect_publisher(publisher *p)
{
    char err[1024];
    p->conn = ja_amqp_open(p->cfg, "jube-amqp publisher", err, sizeof err);
    if (p->conn && ja_topology_declare_outbound(p->conn, p->cfg, err, sizeof err) == 0) {
        amqp_confirm_select(p->conn, JA_CHANNEL);
        amqp_rpc_reply_t reply = amqp_get_rpc_reply(p->conn);
        if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
            p->head_seq = 1; /* confirm sequence numbers start at 1 on every channel */
            ja_reconnect_succeeded(&p->reconnect, p->cfg);
            if (p->connected_before)
                ja_count(&ja_stats.reconnects[JA_CONN_PUBLISHER]);
            p->connected_before = true;
            atomic_store(&ja_stats.connected[JA_CONN_PUBLISHER], true);
            return true;
        }
        ja_amqp_describe_reply(reply, err, sizeof err);
    }
    if (p->conn)
        ja_amqp_destroy(p->conn);
    p->conn = NULL;
    uint64_t delay = ja_reconnect_failed(&p->reconnect, p->cfg, err);
    ja_service_sleep(p->svc, delay, JA_WAKE_ON_EXIT, 0);
    return false;
}

static bool publish_due_retries(publisher *p)
{
    if (p->retry_count == 0)
        return true;
    uint64_t now = ja_now_ms();
    size_t kept = 0;
    bool ok = true;
    for (size_t i = 0; i < p->retry_count; i++) {
        retry r = p->retries[i];
        if (!ok || r.due_ms > now) {
            p->retries[kept++] = r;
            continue;
        }
        if (!ja_service_is_live(p->svc, r.job->generation)) {
            settle(p, r.job); /* the consumer sees the dead generation and frees it */
            continue;
        }
        ok = publish_one(p, r.job, r.target);
    }
    p->retry_count = kept;
    return ok;
}

static void take_inbox(publisher *p)
{
    ja_inbox_node *list = ja_inbox_take_all(&p->svc->to_publisher);
    if (!list)
        return;
    if (p->backlog_tail)
        p->backlog_tail->next = list;
    else
        p->backlog_head = list;
    while (list->next)
        list = list->next;
    p->backlog_tail = list;
}

static bool publish_backlog(publisher *p)
{
    while (p->backlog_head) {
        ja_inbox_node *node = p->backlog_head;
        p->backlog_head = node->next;
        if (!p->backlog_head)
            p->backlog_tail = NULL;
        if (!publish_job(p, ja_job_of(node)))
            return false;
    }
    return true;
}

static int wait_timeout_ms(const publisher *p)
{
    int timeout = p->cfg->heartbeat_s * 1000 / 2;
    if (p->retry_count > 0 && !p->blocked) {
        uint64_t now = ja_now_ms(), soonest = UINT64_MAX;
        for (size_t i = 0; i < p->retry_count; i++)
            if (p->retries[i].due_ms < soonest)
                soonest = p->retries[i].due_ms;
        uint64_t wait = soonest > now ? soonest - now : 0;
        if (wait < (uint64_t)timeout)
            timeout = (int)wait;
    }
    return timeout;
}

void *ja_publisher_run(void *arg)
{
    ja_log_set_thread_name("publisher");
    publisher p = {.svc = arg, .cfg = ((ja_service *)arg)->cfg, .head_seq = 1};
    p.rng = (uint64_t)time(NULL) | 1;
    ja_reconnect_init(&p.reconnect, "publisher", p.rng * 31);
    if (!window_grow(&p)) {
        ja_log_error("out of memory starting the publisher");
        return NULL;
    }
    while (!atomic_load(&p.svc->threads_exit)) {
        if (!p.conn && !connect_publisher(&p))
            continue;
        amqp_maybe_release_buffers(p.conn);
        /* Reading first also keeps a send from starting on a connection already known dead. */
        bool ok = read_frames(&p);
        take_inbox(&p);
        if (ok && !p.blocked)
            ok = publish_due_retries(&p) && publish_backlog(&p);
        if (ok)
            ok = read_frames(&p);
        if (!ok) {
            lose_connection(&p);
            continue;
        }
        atomic_store_explicit(&ja_stats.unconfirmed, (long)p.window_count, memory_order_relaxed);
        ja_amqp_wait(p.conn, ja_inbox_fd(&p.svc->to_publisher), wait_timeout_ms(&p));
    }
    if (p.conn)
        ja_amqp_close(p.conn);
    free(p.window);
    free(p.retries);
    ja_header_scratch_free(&p.scratch);
    return NULL;
}
