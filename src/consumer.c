#include "consumer.h"

#include "ack_window.h"
#include "amqp_connection.h"
#include "clock.h"
#include "delivery.h"
#include "delivery_limit.h"
#include "key_scheduler.h"
#include "log.h"
#include "metrics.h"
#include "nap.h"
#include "reconnect.h"
#include "topology.h"
#include "validate.h"

#include <amqp_framing.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Deliveries read in one go before the inbox is looked at again, so acks are never starved. */
#define READ_BATCH 64

struct ja_consumer {
    ja_service *svc;
    const ja_config *cfg;
    amqp_connection_state_t conn;
    uint64_t generation; /* of conn; increases with every connection */
    size_t in_flight;    /* deliveries on conn not yet acked or requeued */
    amqp_bytes_t consumer_tag;
    bool cancelled; /* the subscription was cancelled for shutdown */
    ja_ack_window acks;
    ja_reconnect reconnect;
    /* --order-by: each key's messages wait here while one of them is out (key_scheduler.h). */
    bool ordered;
    ja_key_scheduler keys;
    uint64_t next_order_check_ms;
    /* --order-by, stopping: deliveries of keys left unacked for the channel's close, which
     * returns them to the queue's head in delivery order (a nack may put them at its back). */
    size_t parked;
    bool priority_seen; /* a message with a priority was logged */
    /* Acks wait for the next delivery while deliveries come close together (nap.h). */
    ja_nap nap;
    ja_job_pool jobs; /* reused: steady traffic allocates no jobs (job.h) */
};

static ja_job *job_of_order(ja_order_node *node)
{
    return (ja_job *)((char *)node - offsetof(ja_job, order));
}

static void publish_order_gauges(const ja_consumer *c)
{
    atomic_store_explicit(&ja_stats.order_keys_active, (long)c->keys.live_keys,
                          memory_order_relaxed);
    atomic_store_explicit(&ja_stats.order_waiting, (long)c->keys.waiting, memory_order_relaxed);
}

/* Hands a job to the workers. Returns false (and keeps it) when the ring is full, which the
 * prefetch rules out. */
static bool push_to_ring(ja_consumer *c, ja_job *job)
{
    if (!ja_ring_push(c->svc->work, job))
        return false;
    ja_service_work_pushed(c->svc);
    return true;
}

/* Leaves deliveries that waited behind their key unacked, for the channel's close. */
static void park_list(ja_consumer *c, ja_order_node *list)
{
    while (list) {
        ja_order_node *next = list->next;
        c->parked++;
        ja_job_recycle(&c->jobs, job_of_order(list));
        list = next;
    }
}

static void lose_connection(ja_consumer *c, const char *why)
{
    ja_log_warn("consumer connection to node %s lost: %s; %zu unacknowledged deliveries will be "
                "redelivered by the broker",
                c->cfg->brokers[ja_reconnect_node(&c->reconnect)].name, why, c->in_flight);
    ja_watchdog_attach(&c->svc->watch[JA_CONN_CONSUMER], -1, 0);
    ja_amqp_connection_destroy(c->conn);
    c->conn = NULL;
    c->in_flight = 0;
    c->parked = 0;
    atomic_store(&ja_stats.in_flight, 0);
    atomic_store(&ja_stats.connected[JA_CONN_CONSUMER], false);
    amqp_bytes_free(c->consumer_tag);
    c->consumer_tag = amqp_empty_bytes;
    /* No delivery of the old channel can be acked any more: tell workers to stop on them,
     * and take back those no worker has started. */
    atomic_store(&c->svc->live_generation, 0);
    ja_service_wake_sleepers(c->svc);
    ja_job *job;
    while ((job = ja_ring_pop(c->svc->work)))
        ja_job_recycle(&c->jobs, job);
    if (c->ordered) {
        /* The broker redelivers them all; the keys start afresh on the next connection. */
        ja_order_node *waiting = ja_key_scheduler_clear(&c->keys);
        while (waiting) {
            ja_order_node *next = waiting->next;
            ja_job_recycle(&c->jobs, job_of_order(waiting));
            waiting = next;
        }
        publish_order_gauges(c);
    }
    /* A connection that dies soon after it was made does not reset the backoff. */
    uint64_t delay = ja_reconnect_lost(&c->reconnect, c->cfg, ja_clock_ms());
    if (delay > 0)
        ja_service_sleep(c->svc, delay, JA_WAKE_ON_STOP, 0);
}

static bool connect_consumer(ja_consumer *c)
{
    char err[1024];
    const char *queue = c->cfg->inbound_queue;
    c->conn = ja_amqp_connection_open(c->cfg, ja_reconnect_node(&c->reconnect),
                                      "jube-amqp consumer", err, sizeof err);
    ja_topology_result topology =
        c->conn ? ja_topology_declare_inbound(c->conn, JA_CHANNEL, c->cfg, err, sizeof err)
                : JA_TOPOLOGY_RETRY;
    if (topology == JA_TOPOLOGY_UNUSABLE) {
        ja_log_error("%s", err);
        ja_service_fail(c->svc, JA_EXIT_BAD_CONFIG);
    }
    if (topology == JA_TOPOLOGY_READY) {
        amqp_basic_qos(c->conn, JA_CHANNEL, 0, (uint16_t)c->cfg->prefetch, 0);
        amqp_rpc_reply_t reply = amqp_get_rpc_reply(c->conn);
        amqp_basic_consume_ok_t *ok = NULL;
        if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
            ok = amqp_basic_consume(c->conn, JA_CHANNEL, amqp_cstring_bytes(queue),
                                    amqp_empty_bytes, 0, 0, 0, amqp_empty_table);
            reply = amqp_get_rpc_reply(c->conn);
        }
        if (ok) {
            c->consumer_tag = amqp_bytes_malloc_dup(ok->consumer_tag);
            c->generation++;
            c->in_flight = 0;
            c->parked = 0;
            c->cancelled = false;
            ja_ack_window_reset(&c->acks);
            atomic_store(&c->svc->live_generation, c->generation);
            ja_reconnect_succeeded(&c->reconnect, c->cfg);
            if (c->generation > 1)
                ja_metrics_count(&ja_stats.reconnects[JA_CONN_CONSUMER]);
            atomic_store(&ja_stats.node[JA_CONN_CONSUMER], ja_reconnect_node(&c->reconnect));
            atomic_store(&ja_stats.connected[JA_CONN_CONSUMER], true);
            ja_watchdog_attach(&c->svc->watch[JA_CONN_CONSUMER], amqp_get_sockfd(c->conn),
                               ja_clock_ms());
            ja_log_info("consuming queue '%s' with prefetch %d", queue, c->cfg->prefetch);
            return true;
        }
        char why[512];
        ja_amqp_connection_describe_reply(reply, why, sizeof why);
        snprintf(err, sizeof err, "could not consume queue '%s': %s", queue, why);
    }
    if (c->conn)
        ja_amqp_connection_destroy(c->conn);
    c->conn = NULL;
    uint64_t delay = ja_reconnect_failed(&c->reconnect, c->cfg, err);
    ja_service_sleep(c->svc, delay, JA_WAKE_ON_STOP, 0);
    return false;
}

/* Gives a delivery the service cannot take back to the queue at once, and settles its tag so
 * the acks after it are not held back. */
static void return_at_once(ja_consumer *c, uint64_t tag, const char *why)
{
    ja_log_fields fields = {.delivery_tag = tag};
    ja_log_error_about(&fields, "%s: returning the delivery to the queue", why);
    amqp_basic_nack(c->conn, JA_CHANNEL, tag, 0, 1);
    ja_ack_window_settle(&c->acks, tag, true);
}

/* Finds the order key of a fresh job (--order-by). Returns false when the message is to run
 * unordered. */
static bool find_order_key(ja_consumer *c, ja_job *job)
{
    size_t len = 0;
    const amqp_message_t *msg = &job->envelope.message;
    ja_key_status status = ja_order_key_of(&c->cfg->order_spec, msg->body.bytes, msg->body.len,
                                           &msg->properties, job->order_key, &len);
    job->order_key_status = (unsigned char)status;
    job->order_key_len = (unsigned short)len;
    job->ordered = status == JA_KEY_FOUND;
    if (!job->ordered)
        ja_metrics_count(&ja_stats.order_unordered[status]);
    /* RabbitMQ 4.x quorum queues deliver higher priorities first, before earlier messages of the
     * same key: the service cannot undo that, so it keeps delivery order and says so. */
    if (job->ordered && (msg->properties._flags & AMQP_BASIC_PRIORITY_FLAG)) {
        ja_metrics_count(&ja_stats.order_priority);
        if (!c->priority_seen) {
            c->priority_seen = true;
            ja_log_warn("a message of an ordered queue carries priority %u: RabbitMQ 4.x quorum "
                        "queues deliver higher priorities first, ahead of earlier messages of "
                        "the same key; the service keeps the order it is delivered in (counted "
                        "in jube_amqp_order_priority_messages_total). Producers of '%s' should "
                        "not set priority",
                        msg->properties.priority, c->cfg->inbound_queue);
        }
    }
    return job->ordered;
}

/* Sends a job on: to the ring, or (ordered, with an earlier message of its key out) to wait in
 * the key scheduler. Returns false when it could be neither: the caller gives it back. */
static bool dispatch(ja_consumer *c, ja_job *job)
{
    if (!c->ordered || !find_order_key(c, job))
        return push_to_ring(c, job);
    if (atomic_load(&c->svc->stopping)) {
        /* Nothing of a key starts once stopping: an earlier message of it may be parked. */
        job->ordered = false;
        c->parked++;
        ja_job_recycle(&c->jobs, job);
        return true;
    }
    ja_order_decision decision = ja_key_scheduler_arrive(&c->keys, &job->order, job->order_key,
                                                         job->order_key_len, job->received_ms);
    if (decision == JA_ORDER_WAIT) {
        publish_order_gauges(c);
        return true;
    }
    if (decision == JA_ORDER_RUN && push_to_ring(c, job)) {
        publish_order_gauges(c);
        return true;
    }
    if (decision == JA_ORDER_RUN) /* the key's only message: nothing waits behind it */
        ja_key_scheduler_give_back(&c->keys, &job->order);
    job->ordered = false;
    return false;
}

/* A delivery the broker has counted near the queue's delivery limit never goes back to it: one
 * more return (a connection lost while Jube is down, say) could be the one it drops it on. It is
 * published again to the queue's tail instead (a fresh count) and acked once that is stored;
 * decided here, on arrival, since workers do not take jobs while Jube is unavailable. Returns
 * true when the job went to the publisher for that. */
static bool renew_near_the_limit(ja_consumer *c, ja_job *job)
{
    const amqp_message_t *msg = &job->envelope.message;
    ja_delivery_counts counts = ja_delivery_limit_counts(&msg->properties);
    job->delivery_count = counts.delivery_count;
    job->renewals = counts.renewals;
    if (!ja_delivery_limit_must_renew(c->cfg->delivery_limit, counts.delivery_count))
        return false;
    ja_log_fields fields = {.delivery_tag = job->envelope.delivery_tag};
    /* A body cut at --max-body-bytes cannot be published again whole: it is dead-lettered, as
     * a worker would. */
    if (!ja_validate_body_size(job->body_size, msg->body.len, (size_t)c->cfg->max_body_bytes,
                               &job->failure)) {
        job->state = JA_JOB_DEAD_LETTER;
    } else {
        ja_log_warn_about(&fields,
                          "delivered %u times (x-acquired-count %u), near --delivery-limit %d: "
                          "publishing it again to the tail of queue '%s' before the broker "
                          "drops it",
                          counts.delivery_count, counts.acquired_count, c->cfg->delivery_limit,
                          c->cfg->inbound_queue);
        job->state = JA_JOB_RENEW;
    }
    ja_service_to_publisher(c->svc, job);
    return true;
}

static void take_delivery(ja_consumer *c, amqp_envelope_t *envelope, uint64_t body_size)
{
    ja_job *job = ja_job_new(&c->jobs, envelope, body_size, c->generation, ja_clock_ms());
    c->in_flight++;
    ja_nap_event(&c->nap, ja_clock_us());
    ja_metrics_count(&ja_stats.consumed);
    atomic_store_explicit(&ja_stats.in_flight, (long)c->in_flight, memory_order_relaxed);
    if (renew_near_the_limit(c, job))
        return;
    /* The broker never has more than prefetch deliveries out to us, and the ring (and the key
     * scheduler) hold at least that many, so this cannot fail. */
    if (!dispatch(c, job)) {
        char why[200];
        snprintf(why, sizeof why,
                 "the work ring (capacity %zu) or the key scheduler (capacity %zu) is full with "
                 "%zu deliveries in flight",
                 ja_ring_capacity(c->svc->work), c->keys.capacity, c->in_flight);
        return_at_once(c, envelope->delivery_tag, why);
        c->in_flight--;
        ja_job_recycle(&c->jobs, job);
    }
}

/* Handles a method that is not a delivery. Returns false when the connection must be replaced. */
static bool handle_method(ja_consumer *c, amqp_method_t *method)
{
    char why[600];
    switch (method->id) {
    case AMQP_BASIC_CANCEL_METHOD:
        snprintf(why, sizeof why,
                 "the broker cancelled the subscription to queue '%s' (basic.cancel: the queue "
                 "was deleted, its node went down, or on RabbitMQ 4.3 a delivery stayed unacked "
                 "past the consumer timeout); consuming it again on a new connection",
                 c->cfg->inbound_queue);
        lose_connection(c, why);
        return false;
    case AMQP_CHANNEL_CLOSE_METHOD:
    case AMQP_CONNECTION_CLOSE_METHOD: {
        amqp_rpc_reply_t reply = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION, .reply = *method};
        ja_amqp_connection_describe_reply(reply, why, sizeof why);
        ja_amqp_connection_answer_close(c->conn, JA_CHANNEL, method);
        lose_connection(c, why);
        return false;
    }
    default:
        return true; /* e.g. basic.cancel-ok */
    }
}

/* Reads a delivery's header and body after its basic.deliver. Returns false when the connection
 * must be replaced. */
static bool read_delivery(ja_consumer *c, const amqp_frame_t *deliver)
{
    amqp_envelope_t envelope;
    uint64_t body_size = 0;
    amqp_method_t closed;
    /* The header and body follow the method at once; a broker silent for two heartbeats is
     * gone. */
    int status = 0;
    ja_delivery_result rc =
        ja_delivery_read(c->conn, deliver, (size_t)c->cfg->max_body_bytes, c->cfg->silent_broker_ms,
                         &c->svc->watch[JA_CONN_CONSUMER], &envelope, &body_size, &closed, &status);
    switch (rc) {
    case JA_DELIVERY_READ:
        take_delivery(c, &envelope, body_size);
        ja_watchdog_busy(&c->svc->watch[JA_CONN_CONSUMER], ja_clock_ms());
        return true;
    case JA_DELIVERY_CLOSED:
        return handle_method(c, &closed);
    case JA_DELIVERY_BROKEN:
        break;
    }
    lose_connection(c, amqp_error_string2(status));
    return false;
}

/* Reads what the broker sent, up to READ_BATCH deliveries, without blocking. */
static bool read_input(ja_consumer *c)
{
    for (int i = 0; i < READ_BATCH; i++) {
        amqp_maybe_release_buffers(c->conn);
        amqp_frame_t frame;
        struct timeval zero = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(c->conn, &frame, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            return true;
        if (rc != AMQP_STATUS_OK) {
            lose_connection(c, amqp_error_string2(rc));
            return false;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        bool ok = frame.payload.method.id == AMQP_BASIC_DELIVER_METHOD
                      ? read_delivery(c, &frame)
                      : handle_method(c, &frame.payload.method);
        if (!ok)
            return false;
        if (!amqp_frames_enqueued(c->conn) && !amqp_data_in_buffer(c->conn))
            return true;
    }
    return true;
}

/* --order-by never gives a key's messages back one nack at a time: a quorum queue without a
 * delivery limit puts a nacked message at its back, behind the key's later messages, and a
 * same-key delivery already on its way would overtake those given back. Closing the channel
 * instead returns every unacknowledged delivery to the head of the queue in delivery order, on
 * every queue type and version; deliveries of other keys come back too (their answers, if
 * already published, are published again: duplicates, never a reordering). */
static void give_everything_back(ja_consumer *c, const char *why)
{
    atomic_fetch_add_explicit(&ja_stats.requeued, c->in_flight, memory_order_relaxed);
    char reason[600];
    snprintf(reason, sizeof reason,
             "%s; with --order-by the channel is closed so that the broker returns every "
             "unacknowledged delivery to the head of the queue in delivery order",
             why);
    lose_connection(c, reason);
}

/* An ordered job is settled: the next message of its key runs. Stopping, nothing of a key runs
 * any more: its waiting messages are parked for the channel's close. */
static void settle_order(ja_consumer *c, ja_job *job, bool stopping)
{
    if (stopping) {
        park_list(c, ja_key_scheduler_give_back(&c->keys, &job->order));
    } else {
        ja_order_node *next = ja_key_scheduler_finish(&c->keys, &job->order);
        /* The ring holds the prefetch, so this push cannot fail. */
        if (next && !push_to_ring(c, job_of_order(next))) {
            ja_log_error("the work ring (capacity %zu) is full with %zu deliveries in flight",
                         ja_ring_capacity(c->svc->work), c->in_flight);
            abort();
        }
    }
    publish_order_gauges(c);
}

/* Acks, requeues or frees every job handed back. Returns false when the connection failed. */
static bool settle_returned_jobs(ja_consumer *c, bool stopping)
{
    ja_inbox_node *node = ja_inbox_take_all(&c->svc->to_consumer);
    int rc = AMQP_STATUS_OK;
    bool give_back_in_order = false;
    while (node) {
        ja_inbox_node *next = node->next;
        ja_job *job = ja_job_of(node);
        if (c->conn && job->generation == c->generation && rc == AMQP_STATUS_OK && job->ordered &&
            job->state == JA_JOB_REQUEUE) {
            /* Never a nack for a key's message (give_everything_back): stopping, it and its key's
             * waiting messages are parked for the channel's close; otherwise the channel is
             * closed once this pass has acked what it can. */
            if (stopping) {
                c->parked++;
                settle_order(c, job, true);
            } else {
                give_back_in_order = true;
            }
        } else if (c->conn && job->generation == c->generation && rc == AMQP_STATUS_OK) {
            uint64_t tag = job->envelope.delivery_tag;
            if (job->state == JA_JOB_REQUEUE || job->state == JA_JOB_REJECT) {
                bool requeue = job->state == JA_JOB_REQUEUE;
                ja_metrics_count(requeue ? &ja_stats.requeued : &ja_stats.rejected);
                rc = amqp_basic_nack(c->conn, JA_CHANNEL, tag, 0, requeue);
                ja_ack_window_settle(&c->acks, tag, true);
            } else if (ja_ack_window_settle(&c->acks, tag, false)) {
                rc = amqp_basic_ack(c->conn, JA_CHANNEL, tag, 0);
            }
            if (job->state == JA_JOB_ACK)
                ja_metrics_observe(&ja_stats.end_to_end_seconds,
                                   (ja_clock_ms() - job->received_ms) * 1000u);
            c->in_flight--;
            if (job->ordered && rc == AMQP_STATUS_OK)
                settle_order(c, job, stopping);
        }
        ja_job_recycle(&c->jobs, job);
        node = next;
    }
    atomic_store_explicit(&ja_stats.in_flight, (long)c->in_flight, memory_order_relaxed);
    if (c->conn && rc == AMQP_STATUS_OK) {
        /* One ack for every settled delivery whose predecessors are all settled too. */
        uint64_t multiple = ja_ack_window_advance(&c->acks);
        if (multiple)
            rc = amqp_basic_ack(c->conn, JA_CHANNEL, multiple, 1);
    }
    if (rc != AMQP_STATUS_OK) {
        lose_connection(c, amqp_error_string2(rc));
        return false;
    }
    if (give_back_in_order) {
        give_everything_back(c, "a delivery of a key was held past --max-hold-ms");
        return false;
    }
    return true;
}

/* Once a second with --order-by: the longest wait for the metrics, and messages that waited
 * behind their key so long that holding them further would pass --max-hold-ms are given back
 * (RabbitMQ closes the channel of a delivery unacked past its consumer_timeout), in order, by
 * closing the channel (give_everything_back). Returns false when the connection was closed. */
static bool check_waiting(ja_consumer *c, uint64_t now)
{
    if (now < c->next_order_check_ms)
        return true;
    c->next_order_check_ms = now + 1000;
    uint64_t oldest = ja_key_scheduler_oldest_wait(&c->keys);
    atomic_store_explicit(&ja_stats.order_oldest_wait_ms, oldest == UINT64_MAX ? 0 : oldest,
                          memory_order_relaxed);
    if (oldest == UINT64_MAX || now - oldest < (uint64_t)c->cfg->max_hold_ms)
        return true;
    char why[200];
    snprintf(why, sizeof why,
             "%zu deliveries waited behind their keys for --max-hold-ms %d (the key's message "
             "before them is still being processed)",
             c->keys.waiting, c->cfg->max_hold_ms);
    give_everything_back(c, why);
    return false;
}

static void cancel_subscription(ja_consumer *c)
{
    c->cancelled = true;
    if (c->ordered) {
        /* RabbitMQ 3.10's quorum queue puts the unacknowledged deliveries of a cancelled consumer
         * at its back when the channel closes (without a delivery limit); a consumer that is
         * still subscribed gets them returned to the head, in order. Later deliveries are parked
         * (dispatch), and the prefetch bounds them. */
        ja_log_info("stopping: no key starts a message any more; waiting for %zu deliveries in "
                    "flight",
                    c->in_flight);
        return;
    }
    amqp_basic_cancel(c->conn, JA_CHANNEL, c->consumer_tag);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(c->conn);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[600];
        ja_amqp_connection_describe_reply(reply, why, sizeof why);
        lose_connection(c, why);
        return;
    }
    ja_log_info("stopped consuming; waiting for %zu deliveries in flight", c->in_flight);
}

ja_consumer *ja_consumer_new(ja_service *svc)
{
    ja_consumer *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->svc = svc;
    c->cfg = svc->cfg;
    /* Replicas started at the same second still walk the nodes in orders of their own. */
    ja_reconnect_init(&c->reconnect, "consumer",
                      ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0xA5A5A5A5ull,
                      c->cfg->broker_count);
    c->ordered = c->cfg->ordered;
    ja_nap_init(&c->nap, c->cfg->nap_linger_us);
    if (ja_job_pool_init(&c->jobs, c->cfg->ring_capacity) != 0 ||
        ja_ack_window_init(&c->acks, (unsigned)c->cfg->prefetch) != 0 ||
        (c->ordered && ja_key_scheduler_init(&c->keys, (size_t)c->cfg->prefetch) != 0)) {
        ja_consumer_free(c);
        return NULL;
    }
    return c;
}

void ja_consumer_free(ja_consumer *c)
{
    if (!c)
        return;
    ja_ack_window_free(&c->acks);
    ja_key_scheduler_free(&c->keys);
    ja_job_pool_destroy(&c->jobs);
    amqp_bytes_free(c->consumer_tag);
    free(c);
}

void *ja_consumer_run(void *arg)
{
    ja_log_set_thread_name("consumer");
    ja_consumer *c = arg;
    int heartbeat_wait_ms = c->cfg->idle_wait_ms;
    /* With --order-by the consumer looks at waiting messages once a second. */
    int wait_ms = c->ordered && heartbeat_wait_ms > 1000 ? 1000 : heartbeat_wait_ms;

    for (;;) {
        bool stopping = atomic_load(&c->svc->stopping);
        if (!c->conn) {
            if (stopping)
                break; /* nothing left that could be acked */
            if (!connect_consumer(c))
                continue;
        }
        if (!settle_returned_jobs(c, stopping))
            continue;
        if (c->ordered && !check_waiting(c, ja_clock_ms()))
            continue;
        if (stopping && !c->cancelled) {
            cancel_subscription(c);
            if (!c->conn)
                continue;
        }
        if (stopping && c->in_flight == c->parked && !amqp_frames_enqueued(c->conn) &&
            !amqp_data_in_buffer(c->conn)) {
            /* Settled deliveries behind a parked one still wait for a multiple ack: ack them now,
             * or the close would return them too and they would be answered twice. */
            for (uint64_t tag = 0; (tag = ja_ack_window_take_deferred(&c->acks, tag)) != 0;)
                amqp_basic_ack(c->conn, JA_CHANNEL, tag, 0);
            ja_watchdog_attach(&c->svc->watch[JA_CONN_CONSUMER], -1, 0);
            ja_amqp_connection_close(c->conn);
            c->conn = NULL;
            if (c->parked > 0) {
                atomic_fetch_add_explicit(&ja_stats.requeued, c->parked, memory_order_relaxed);
                ja_log_info("every delivery is settled but %zu that waited behind their keys; "
                            "consumer connection closed: the broker returns those to the head "
                            "of the queue in delivery order",
                            c->parked);
            } else {
                ja_log_info("every delivery is settled; consumer connection closed");
            }
            break;
        }
        /* Napping, acks handed back lazily wait for the next delivery or the nap's end; while
         * sleeping for long, they wake the consumer (inbox.h). */
        ja_inbox *inbox = &c->svc->to_consumer;
        bool nap = !stopping && c->in_flight > 0 && ja_nap_may(&c->nap, ja_clock_us());
        ja_inbox_set_napping(inbox, nap);
        if (!nap && ja_inbox_has_nodes(inbox))
            continue; /* handed back lazily while the consumer still napped */
        ja_watched_connection *watch = &c->svc->watch[JA_CONN_CONSUMER];
        ja_watchdog_idle(watch);
        int ready = ja_amqp_connection_wait(c->conn, ja_inbox_fd(inbox),
                                            nap ? ja_nap_timeout_ms(&c->nap) : wait_ms, true);
        ja_watchdog_busy(watch, ja_clock_ms());
        if (ready & JA_WAIT_EXTRA)
            ja_inbox_woken(inbox);
        /* Read even when nothing arrived: that is when rabbitmq-c sends heartbeats. */
        if (!(ready & JA_WAIT_EXTRA) || (ready & JA_WAIT_AMQP))
            read_input(c);
    }

    atomic_store(&c->svc->live_generation, 0);
    settle_returned_jobs(c, true); /* frees anything handed back meanwhile */
    atomic_store(&c->svc->consumer_done, true);
    return NULL;
}
