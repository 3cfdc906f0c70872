#include "publisher.h"

#include "amqp_connection.h"
#include "amqp_headers.h"
#include "clock.h"
#include "confirm_window.h"
#include "log.h"
#include "metrics.h"
#include "nap.h"
#include "oom.h"
#include "outbound_message.h"
#include "publish_frames.h"
#include "reconnect.h"
#include "text.h"
#include "topology.h"

#include <amqp_framing.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The channel the publisher declares topology on while publishing goes on over JA_CHANNEL: a
 * passive declaration that fails closes its channel, and that must not be the confirm channel. */
#define TOPOLOGY_CHANNEL 2

/* Nacks and nothing else for this long: the channel is made again (see confirm_window.h). */
#define REFUSALS_BEFORE_RECONNECT_MS 3000

/* Framed publishes are written once this many bytes wait, and at the end of each pass. */
#define FRAMES_FLUSH_BYTES (256 * 1024)

/* What a write that cannot finish looks at of the broker's unread input (publish_frames.h). */
#define PEEK_BYTES (64 * 1024)

struct ja_publisher {
    ja_service *svc;
    const ja_config *cfg;
    amqp_connection_state_t conn;
    bool blocked;
    bool connected_before; /* a later connection counts as a reconnect */
    ja_reconnect reconnect;
    ja_confirm_window window;
    ja_header_scratch scratch;
    amqp_bytes_t encode_scratch; /* frame_max bytes: does a publish's header fit a frame? */
    /* On plain TCP the publisher frames publishes itself and writes a pass's in one send()
     * (publish_frames.h); with TLS it leaves that to amqp_basic_publish. */
    bool own_framing;
    ja_buffer frames;
    uint8_t *peek; /* PEEK_BYTES */
    /* Confirms wait for the next result while results come close together (nap.h), and the
     * acks they allow wait for the consumer's next delivery likewise. */
    ja_nap nap;

    /* Why the connection was lost, for the confirm window. */
    bool loss_suspect;
    char loss_reason[512];

    /* States logged once when they begin and once when they end. */
    bool refusing;             /* the broker nacks publishes */
    bool unroutable_responses; /* responses reach no queue */
    bool unroutable_dead_letter;
    bool reply_to_missing;
};

static const char *target_name(const ja_publisher *p, ja_publish_target target)
{
    return target == JA_TARGET_DEAD_LETTER ? p->cfg->dead_letter_exchange
           : target == JA_TARGET_OUTBOUND  ? p->cfg->outbound_exchange
           : target == JA_TARGET_INBOUND   ? p->cfg->inbound_queue
                                           : "(reply_to)";
}

static ja_log_fields fields_of(const ja_job *job)
{
    return (ja_log_fields){.delivery_tag = job->envelope.delivery_tag,
                           .model_guid = job->model_guid,
                           .http_status = job->http_status,
                           .attempt = job->attempts};
}

/* A job leaves the publisher: it is counted here, where the broker's answer is known. */
static void on_finished(void *ctx, ja_job *job, ja_job_state state)
{
    ja_publisher *p = ctx;
    if (state == JA_JOB_ACK) {
        if (job->state == JA_JOB_RENEW)
            ja_metrics_count(&ja_stats.renewed);
        else if (job->state == JA_JOB_DEAD_LETTER)
            ja_metrics_count(
                &ja_stats.dead_lettered[ja_metrics_dead_letter_reason(job->failure.code)]);
        else
            ja_metrics_count(&ja_stats.published);
    } else if (state == JA_JOB_REJECT) {
        const amqp_basic_properties_t *in = &job->envelope.message.properties;
        char message_id[200] = "", correlation_id[200] = "";
        if (in->_flags & AMQP_BASIC_MESSAGE_ID_FLAG)
            ja_text_escape(in->message_id.bytes, in->message_id.len, 128, message_id,
                           sizeof message_id);
        if (in->_flags & AMQP_BASIC_CORRELATION_ID_FLAG)
            ja_text_escape(in->correlation_id.bytes, in->correlation_id.len, 128, correlation_id,
                           sizeof correlation_id);
        ja_log_fields fields = fields_of(job);
        ja_log_error_about(&fields,
                           "rejecting the delivery (message_id \"%s\", correlation_id \"%s\"): not "
                           "even a dead letter without its headers could be published to '%s' "
                           "(%s)",
                           message_id, correlation_id, p->cfg->dead_letter_exchange,
                           job->failure.detail);
    }
    if (state == JA_JOB_ACK && p->nap.linger_us > 0)
        ja_service_to_consumer_lazily(p->svc, job, state);
    else
        ja_service_to_consumer(p->svc, job, state);
}

static void on_event(void *ctx, const ja_job *job, ja_publish_target target, ja_publish_event e)
{
    ja_publisher *p = ctx;
    ja_log_fields fields = fields_of(job);
    switch (e) {
    case JA_PUBLISH_STORED:
        if (p->refusing) {
            p->refusing = false;
            ja_log_info("the broker accepts publishes again");
        }
        if (target == JA_TARGET_OUTBOUND && p->unroutable_responses) {
            p->unroutable_responses = false;
            ja_log_info("responses reach a queue again on exchange '%s'",
                        p->cfg->outbound_exchange);
        } else if (target == JA_TARGET_DEAD_LETTER && p->unroutable_dead_letter) {
            p->unroutable_dead_letter = false;
            ja_log_info("dead letters reach a queue again on exchange '%s'",
                        p->cfg->dead_letter_exchange);
        } else if (target == JA_TARGET_REPLY_TO) {
            p->reply_to_missing = false;
        }
        return;
    case JA_PUBLISH_NACKED:
        ja_metrics_count(&ja_stats.publish_nacks);
        if (!p->refusing) {
            p->refusing = true;
            ja_log_warn_about(&fields,
                              "the broker refused (nack) a publish to '%s'; publishing it again "
                              "with backoff (up to %d ms apart)",
                              target_name(p, target), p->cfg->retry_max_ms);
        }
        return;
    case JA_PUBLISH_UNROUTABLE_HELD:
    case JA_PUBLISH_UNROUTABLE_ACCEPT:
        ja_metrics_count(&ja_stats.unroutable[target]);
        break;
    case JA_PUBLISH_UNPUBLISHABLE:
        ja_log_warn_about(
            &fields, "%s could not be published (%s); %s",
            target == JA_TARGET_DEAD_LETTER ? "its dead letter" : "its response", p->loss_reason,
            target != JA_TARGET_DEAD_LETTER ? "publishing a dead letter instead"
            : job->publishing.bare          ? "rejecting the delivery"
                                   : "publishing the dead letter without the message's headers");
        return;
    }
    /* No queue took it. */
    if (target == JA_TARGET_REPLY_TO) {
        const amqp_bytes_t q = job->envelope.message.properties.reply_to;
        if (!p->reply_to_missing)
            ja_log_warn_about(&fields,
                              "no queue named '%.*s' (the message's reply_to) exists; the reply "
                              "is not delivered (counted in "
                              "jube_amqp_unroutable_publishes_total)",
                              (int)q.len, (const char *)q.bytes);
        p->reply_to_missing = true;
    } else if (target == JA_TARGET_OUTBOUND && !p->unroutable_responses) {
        p->unroutable_responses = true;
        if (e == JA_PUBLISH_UNROUTABLE_HELD)
            ja_log_warn("no queue is bound to exchange '%s': responses are held and published "
                        "again with backoff until one is (--unroutable-responses hold)",
                        p->cfg->outbound_exchange);
        else
            ja_log_warn("no queue is bound to exchange '%s': responses are acked and counted "
                        "(--unroutable-responses ack)",
                        p->cfg->outbound_exchange);
    } else if (target == JA_TARGET_INBOUND) {
        ja_log_warn_about(&fields,
                          "no queue named '%s' took a message published to it again near its "
                          "delivery limit; publishing it again with backoff",
                          p->cfg->inbound_queue);
    } else if (target == JA_TARGET_DEAD_LETTER && !p->unroutable_dead_letter) {
        p->unroutable_dead_letter = true;
        ja_log_warn("a dead letter to exchange '%s' reached no queue: declaring '%s' again and "
                    "publishing it again with backoff",
                    p->cfg->dead_letter_exchange, p->cfg->dead_letter_queue);
    }
}

/* Sends one publish. Returns false when the connection is no longer usable. */
static bool send_publish(ja_publisher *p, const ja_publish *pub)
{
    ja_job *job = pub->job;
    const amqp_message_t *msg = &job->envelope.message;
    uint64_t seq = ja_confirm_window_next_seq(&p->window);
    amqp_basic_properties_t props;
    const char *exchange;
    amqp_bytes_t routing_key;
    bool mandatory = true;
    int rc;
    switch (pub->target) {
    case JA_TARGET_OUTBOUND:
        exchange = p->cfg->outbound_exchange;
        routing_key = amqp_cstring_bytes(p->cfg->routing_key);
        rc = ja_outbound_message_response(job, &p->scratch, seq, &props);
        break;
    case JA_TARGET_REPLY_TO:
        exchange = ""; /* the default exchange routes by queue name */
        routing_key = msg->properties.reply_to;
        /* RabbitMQ returns a mandatory publish to a direct reply-to name although it delivers it
         * (no queue holds it); a requester that has gone is the feature's own contract. */
        mandatory = !ja_outbound_message_is_direct_reply_to(routing_key);
        rc = ja_outbound_message_response(job, &p->scratch, seq, &props);
        break;
    case JA_TARGET_INBOUND:
        exchange = "";
        routing_key = amqp_cstring_bytes(p->cfg->inbound_queue);
        rc = ja_outbound_message_renewal(job, &p->scratch, seq, &props);
        break;
    default:
        exchange = p->cfg->dead_letter_exchange;
        routing_key = amqp_cstring_bytes(p->cfg->inbound_queue);
        rc = ja_outbound_message_dead_letter(job, &p->scratch, seq, &props);
        break;
    }
    if (rc != 0)
        ja_oom("building a message");
    amqp_bytes_t body = pub->target == JA_TARGET_DEAD_LETTER || pub->target == JA_TARGET_INBOUND
                            ? msg->body
                            : (amqp_bytes_t){.len = job->response.len, .bytes = job->response.data};
    uint32_t frame_max = (uint32_t)amqp_get_frame_max(p->conn);
    bool fits;
    if (p->own_framing) {
        rc = ja_publish_frames_append(&p->frames, JA_CHANNEL, frame_max,
                                      amqp_cstring_bytes(exchange), routing_key, mandatory, &props,
                                      body);
        if (rc == -ENOMEM)
            ja_oom("framing a message");
        fits = rc == 0;
    } else {
        /* rabbitmq-c sends the method frame before it encodes the header: a header that does
         * not fit would break the connection's framing, so it is checked first. */
        fits = ja_outbound_message_fits(&props, frame_max, p->encode_scratch);
    }
    if (!fits) {
        snprintf(p->loss_reason, sizeof p->loss_reason,
                 "the message's headers and the service's own do not fit in one AMQP frame of "
                 "%d bytes",
                 amqp_get_frame_max(p->conn));
        ja_confirm_window_unpublishable(&p->window, pub, p->loss_reason);
        p->loss_reason[0] = '\0';
        return true;
    }
    /* Tracked before sending: if the send fails it is unconfirmed, and goes out again. */
    ja_confirm_window_sent(&p->window, pub, ja_clock_ms());
    if (p->own_framing)
        return true; /* written by flush_frames */
    rc = amqp_basic_publish(p->conn, JA_CHANNEL, amqp_cstring_bytes(exchange), routing_key,
                            mandatory, 0, &props, body);
    if (rc != AMQP_STATUS_OK) {
        snprintf(p->loss_reason, sizeof p->loss_reason, "publishing failed: %s",
                 amqp_error_string2(rc));
        return false;
    }
    return true;
}

/* Waits until the socket takes data again, while a write is under way. A broker that takes
 * nothing for two heartbeats is gone, unless it said it blocked publishing (a resource alarm):
 * RabbitMQ sends connection.blocked and stops reading, so the write waits for
 * connection.unblocked instead, found in the unread input without reading it (publish_frames.h),
 * or until the service exits. Returns false when the connection is to be dropped. */
static bool wait_writable(ja_publisher *p, int fd)
{
    uint64_t give_up_ms = ja_clock_ms() + (uint64_t)p->cfg->silent_broker_ms;
    ja_watched_connection *watch = &p->svc->watch[JA_CONN_PUBLISHER];
    for (;;) {
        if (atomic_load(&p->svc->threads_exit)) {
            snprintf(p->loss_reason, sizeof p->loss_reason, "stopping");
            return false;
        }
        if (!p->blocked && ja_clock_ms() >= give_up_ms) {
            snprintf(p->loss_reason, sizeof p->loss_reason,
                     "publishing failed: the broker took no data for %d ms",
                     p->cfg->silent_broker_ms);
            return false;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT | POLLIN};
        int ready = poll(&pfd, 1, 100);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready > 0 && (pfd.revents & POLLOUT))
            return true;
        if (ready <= 0 || !(pfd.revents & POLLIN))
            continue;
        ssize_t n = recv(fd, p->peek, PEEK_BYTES, MSG_PEEK | MSG_DONTWAIT);
        ja_peek_blocking said =
            n > 0 ? ja_publish_frames_peek_blocking(p->peek, (size_t)n) : JA_PEEK_NOTHING;
        if (said == JA_PEEK_BLOCKED && !p->blocked) {
            p->blocked = true;
            atomic_store(&ja_stats.blocked, true);
            ja_log_warn("the broker blocked publishing while a write was under way; waiting "
                        "for it to unblock");
            ja_amqp_connection_socket_blocked(p->conn, p->cfg->silent_broker_ms, true);
            ja_watchdog_idle(watch); /* waiting on the broker, not stuck in a send */
        } else if (said == JA_PEEK_UNBLOCKED && p->blocked) {
            /* read_frames logs the unblock once the write is done. */
            ja_amqp_connection_socket_blocked(p->conn, p->cfg->silent_broker_ms, false);
            give_up_ms = ja_clock_ms() + (uint64_t)p->cfg->silent_broker_ms;
            ja_watchdog_busy(watch, ja_clock_ms());
        }
        /* The input stays unread: wait for room to write only, or the next look would come at
         * once. */
        struct pollfd out = {.fd = fd, .events = POLLOUT};
        if (poll(&out, 1, 100) > 0 && (out.revents & POLLOUT))
            return true;
    }
}

/* Writes the publishes framed so far. Returns false when the connection is no longer usable
 * (they are unconfirmed then, and go out again on the next one). */
static bool flush_frames(ja_publisher *p)
{
    int fd = amqp_get_sockfd(p->conn);
    size_t sent = 0;
    while (sent < p->frames.len) {
        ssize_t n =
            send(fd, p->frames.data + sent, p->frames.len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_writable(p, fd))
                continue; /* wait_writable said why otherwise */
        } else {
            snprintf(p->loss_reason, sizeof p->loss_reason, "publishing failed: %s",
                     n == 0 ? "nothing written" : strerror(errno));
        }
        p->frames.len = 0;
        return false;
    }
    p->frames.len = 0;
    ja_buffer_trim(&p->frames, 4 * FRAMES_FLUSH_BYTES);
    return true;
}

static bool publish_ready(ja_publisher *p)
{
    ja_publish pub;
    uint64_t live = atomic_load(&p->svc->live_generation);
    while (ja_confirm_window_next(&p->window, ja_clock_ms(), live, &pub)) {
        if (!send_publish(p, &pub))
            return false;
        if (p->frames.len >= FRAMES_FLUSH_BYTES && !flush_frames(p))
            return false;
        ja_watchdog_busy(&p->svc->watch[JA_CONN_PUBLISHER], ja_clock_ms());
    }
    return flush_frames(p);
}

/* Close codes a message can cause: a property the broker refuses (user_id, a malformed header,
 * a size over max_message_size) or a frame it cannot parse. */
static bool caused_by_content(uint16_t code)
{
    return code == AMQP_PRECONDITION_FAILED || code == AMQP_FRAME_ERROR ||
           code == AMQP_SYNTAX_ERROR;
}

/* The message of a basic.return names no sequence number; the service's header carries it. */
static void note_return(ja_publisher *p, const amqp_message_t *returned)
{
    const amqp_field_value_t *seq =
        ja_amqp_headers_get(&returned->properties, JA_PUBLISH_SEQ_HEADER);
    if (seq && seq->kind == AMQP_FIELD_KIND_I64) {
        ja_confirm_window_returned(&p->window, (uint64_t)seq->value.i64);
        return;
    }
    ja_log_warn("the broker returned a message without the %s header; ignored",
                JA_PUBLISH_SEQ_HEADER);
}

/* Reads everything the broker sent, without blocking. Returns false when the connection is
 * no longer usable. */
static bool read_frames(ja_publisher *p)
{
    for (;;) {
        amqp_frame_t frame;
        struct timeval zero = {0, 0};
        int rc = amqp_simple_wait_frame_noblock(p->conn, &frame, &zero);
        if (rc == AMQP_STATUS_TIMEOUT)
            return true;
        if (rc != AMQP_STATUS_OK) {
            snprintf(p->loss_reason, sizeof p->loss_reason, "%s", amqp_error_string2(rc));
            return false;
        }
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        amqp_method_t *method = &frame.payload.method;
        switch (method->id) {
        case AMQP_BASIC_ACK_METHOD: {
            const amqp_basic_ack_t *ack = method->decoded;
            ja_confirm_window_confirm(&p->window, ack->delivery_tag, ack->multiple, true,
                                      ja_clock_ms());
            break;
        }
        case AMQP_BASIC_NACK_METHOD: {
            const amqp_basic_nack_t *nack = method->decoded;
            ja_confirm_window_confirm(&p->window, nack->delivery_tag, nack->multiple, false,
                                      ja_clock_ms());
            break;
        }
        case AMQP_BASIC_RETURN_METHOD: {
            /* Its header and body frames follow; the return comes before the publish's ack. */
            amqp_message_t returned;
            amqp_rpc_reply_t reply = amqp_read_message(p->conn, frame.channel, &returned, 0);
            if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
                ja_amqp_connection_describe_reply(reply, p->loss_reason, sizeof p->loss_reason);
                return false;
            }
            note_return(p, &returned);
            amqp_destroy_message(&returned);
            break;
        }
        case AMQP_CONNECTION_BLOCKED_METHOD: {
            const amqp_connection_blocked_t *b = method->decoded;
            bool noticed = p->blocked; /* already, by a write that had to wait */
            if (!noticed)
                ja_amqp_connection_socket_blocked(p->conn, p->cfg->silent_broker_ms, true);
            p->blocked = true;
            atomic_store(&ja_stats.blocked, true);
            if (!noticed)
                ja_log_warn("the broker blocked publishing (%.*s); holding results until it "
                            "unblocks",
                            (int)b->reason.len, (const char *)b->reason.bytes);
            break;
        }
        case AMQP_CONNECTION_UNBLOCKED_METHOD:
            if (p->blocked)
                ja_amqp_connection_socket_blocked(p->conn, p->cfg->silent_broker_ms, false);
            p->blocked = false;
            ja_confirm_window_restart_clock(&p->window, ja_clock_ms());
            atomic_store(&ja_stats.blocked, false);
            ja_log_info("the broker unblocked publishing");
            break;
        case AMQP_CHANNEL_CLOSE_METHOD:
        case AMQP_CONNECTION_CLOSE_METHOD: {
            amqp_rpc_reply_t reply = {.reply_type = AMQP_RESPONSE_SERVER_EXCEPTION,
                                      .reply = *method};
            uint16_t code = method->id == AMQP_CHANNEL_CLOSE_METHOD
                                ? ((const amqp_channel_close_t *)method->decoded)->reply_code
                                : ((const amqp_connection_close_t *)method->decoded)->reply_code;
            ja_amqp_connection_describe_reply(reply, p->loss_reason, sizeof p->loss_reason);
            p->loss_suspect = caused_by_content(code);
            ja_amqp_connection_answer_close(p->conn, frame.channel, method);
            return false;
        }
        default:
            break;
        }
    }
}

/* Everything published but not confirmed on a lost connection is published again on the next
 * one: the broker may or may not have it, and a duplicate is better than a loss. */
static void lose_connection(ja_publisher *p)
{
    ja_log_warn("publisher connection to node %s lost: %s; %zu unconfirmed publishes will be "
                "published again",
                p->cfg->brokers[ja_reconnect_node(&p->reconnect)].name, p->loss_reason,
                ja_confirm_window_unconfirmed(&p->window));
    ja_watchdog_attach(&p->svc->watch[JA_CONN_PUBLISHER], -1, 0);
    ja_amqp_connection_destroy(p->conn);
    p->conn = NULL;
    p->blocked = false;
    atomic_store(&ja_stats.blocked, false);
    atomic_store(&ja_stats.connected[JA_CONN_PUBLISHER], false);
    ja_confirm_window_lost(&p->window, p->loss_suspect, p->loss_reason);
    p->loss_suspect = false;
    p->loss_reason[0] = '\0';
    /* A connection that dies soon after it was made (a message breaking it, a broker refusing
     * it) does not reset the backoff. */
    uint64_t delay = ja_reconnect_lost(&p->reconnect, p->cfg, ja_clock_ms());
    if (delay > 0)
        ja_service_sleep(p->svc, delay, JA_WAKE_ON_EXIT, 0);
}

static void fail_fatally(ja_publisher *p, const char *why)
{
    ja_log_error("%s", why);
    ja_service_fail(p->svc, JA_EXIT_BAD_TOPOLOGY);
}

static bool connect_publisher(ja_publisher *p)
{
    char err[1024];
    p->conn = ja_amqp_connection_open(p->cfg, ja_reconnect_node(&p->reconnect),
                                      "jube-amqp publisher", err, sizeof err);
    if (p->conn) {
        ja_topology_result rc =
            ja_topology_declare_outbound(p->conn, JA_CHANNEL, p->cfg, err, sizeof err);
        if (rc == JA_TOPOLOGY_WRONG_TYPE || rc == JA_TOPOLOGY_UNUSABLE)
            fail_fatally(p, err);
        if (rc == JA_TOPOLOGY_READY) {
            amqp_confirm_select(p->conn, JA_CHANNEL);
            amqp_rpc_reply_t reply = amqp_get_rpc_reply(p->conn);
            if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
                ja_reconnect_succeeded(&p->reconnect, p->cfg);
                p->own_framing = !p->cfg->brokers[ja_reconnect_node(&p->reconnect)].amqp.ssl;
                if (p->connected_before)
                    ja_metrics_count(&ja_stats.reconnects[JA_CONN_PUBLISHER]);
                p->connected_before = true;
                atomic_store(&ja_stats.node[JA_CONN_PUBLISHER], ja_reconnect_node(&p->reconnect));
                atomic_store(&ja_stats.connected[JA_CONN_PUBLISHER], true);
                ja_watchdog_attach(&p->svc->watch[JA_CONN_PUBLISHER], amqp_get_sockfd(p->conn),
                                   ja_clock_ms());
                return true;
            }
            ja_amqp_connection_describe_reply(reply, err, sizeof err);
        }
    }
    if (p->conn)
        ja_amqp_connection_destroy(p->conn);
    p->conn = NULL;
    uint64_t delay = ja_reconnect_failed(&p->reconnect, p->cfg, err);
    ja_service_sleep(p->svc, delay, JA_WAKE_ON_EXIT, 0);
    return false;
}

/* A dead letter came back unroutable: the dead-letter queue and its binding are declared again
 * on a channel of their own, while publishing goes on. Returns false when the connection is
 * gone. */
static bool declare_topology_again(ja_publisher *p)
{
    amqp_channel_open(p->conn, TOPOLOGY_CHANNEL);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(p->conn);
    char err[1024] = "";
    if (reply.reply_type == AMQP_RESPONSE_NORMAL) {
        ja_topology_result rc =
            ja_topology_declare_outbound(p->conn, TOPOLOGY_CHANNEL, p->cfg, err, sizeof err);
        if (rc == JA_TOPOLOGY_WRONG_TYPE || rc == JA_TOPOLOGY_UNUSABLE) {
            fail_fatally(p, err);
            return false;
        }
        if (rc != JA_TOPOLOGY_READY)
            ja_log_warn("could not declare the topology again: %s", err);
        amqp_channel_close(p->conn, TOPOLOGY_CHANNEL, AMQP_REPLY_SUCCESS);
        reply = amqp_get_rpc_reply(p->conn);
    }
    if (reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION ||
        (reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
         reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD)) {
        ja_amqp_connection_describe_reply(reply, p->loss_reason, sizeof p->loss_reason);
        return false;
    }
    return true;
}

static void take_inbox(ja_publisher *p)
{
    ja_inbox_node *node = ja_inbox_take_all(&p->svc->to_publisher);
    uint64_t now = node ? ja_clock_us() : 0;
    while (node) {
        ja_nap_event(&p->nap, now);
        ja_inbox_node *next = node->next;
        ja_confirm_window_submit(&p->window, ja_job_of(node));
        node = next;
    }
}

static int wait_timeout_ms(const ja_publisher *p)
{
    uint64_t timeout = (uint64_t)p->cfg->idle_wait_ms;
    uint64_t now = ja_clock_ms(), due = ja_confirm_window_next_due_ms(&p->window);
    if (due != UINT64_MAX) {
        uint64_t wait = due > now ? due - now : 0;
        if (wait < timeout)
            timeout = wait;
    }
    return (int)timeout;
}

static void publish_metrics(const ja_publisher *p)
{
    atomic_store_explicit(&ja_stats.unconfirmed, (long)ja_confirm_window_unconfirmed(&p->window),
                          memory_order_relaxed);
    atomic_store_explicit(&ja_stats.unroutable_held,
                          (long)ja_confirm_window_unroutable_held(&p->window),
                          memory_order_relaxed);
}

/* One pass while connected. Returns false when the connection was lost. */
static bool serve(ja_publisher *p)
{
    amqp_maybe_release_buffers(p->conn);
    /* Reading first also keeps a send from starting on a connection already known dead. */
    if (!read_frames(p))
        return false;
    take_inbox(p);
    uint64_t now = ja_clock_ms();
    if (p->blocked) {
        ja_confirm_window_sweep(&p->window, now, atomic_load(&p->svc->live_generation));
    } else {
        if (ja_confirm_window_take_redeclare(&p->window) && !declare_topology_again(p))
            return false;
        if (!publish_ready(p))
            return false;
    }
    if (!read_frames(p))
        return false;
    if (ja_confirm_window_refusing_for(&p->window, ja_clock_ms()) >= REFUSALS_BEFORE_RECONNECT_MS) {
        snprintf(p->loss_reason, sizeof p->loss_reason,
                 "the broker has refused (nack) every publish for %d s; connecting again, since "
                 "RabbitMQ keeps refusing on a channel whose quorum queue lost its leader",
                 REFUSALS_BEFORE_RECONNECT_MS / 1000);
        return false;
    }
    if (!p->blocked && ja_confirm_window_overdue(&p->window, ja_clock_ms())) {
        snprintf(p->loss_reason, sizeof p->loss_reason,
                 "a publish was not confirmed within --confirm-timeout-ms %d",
                 p->cfg->confirm_timeout_ms);
        return false;
    }
    return true;
}

ja_publisher *ja_publisher_new(ja_service *svc)
{
    ja_publisher *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->svc = svc;
    p->cfg = svc->cfg;
    uint64_t seed = ((uint64_t)time(NULL) << 20) ^ (uint64_t)getpid() ^ 0x5A5A5A5Aull;
    ja_reconnect_init(&p->reconnect, "publisher", seed, p->cfg->broker_count);
    ja_confirm_policy policy = {
        .retry_base_ms = (uint64_t)p->cfg->retry_base_ms,
        .retry_max_ms = (uint64_t)p->cfg->retry_max_ms,
        .max_hold_ms = (uint64_t)p->cfg->max_hold_ms,
        .confirm_timeout_ms = (uint64_t)p->cfg->confirm_timeout_ms,
        .unroutable_responses =
            p->cfg->unroutable_responses == 0 ? JA_UNROUTABLE_HOLD : JA_UNROUTABLE_ACK,
    };
    ja_confirm_callbacks callbacks = {.ctx = p, .finished = on_finished, .event = on_event};
    ja_nap_init(&p->nap, p->cfg->nap_linger_us);
    p->encode_scratch = amqp_bytes_malloc(AMQP_DEFAULT_FRAME_SIZE);
    p->peek = malloc(PEEK_BYTES);
    if (ja_confirm_window_init(&p->window, &policy, &callbacks, seed) != 0 ||
        !p->encode_scratch.bytes || !p->peek) {
        ja_publisher_free(p);
        return NULL;
    }
    return p;
}

void ja_publisher_free(ja_publisher *p)
{
    if (!p)
        return;
    ja_confirm_window_free(&p->window);
    ja_outbound_message_scratch_free(&p->scratch);
    amqp_bytes_free(p->encode_scratch);
    ja_buffer_free(&p->frames);
    free(p->peek);
    free(p);
}

void *ja_publisher_run(void *arg)
{
    ja_log_set_thread_name("publisher");
    ja_publisher *p = arg;
    ja_service *svc = p->svc;
    while (!atomic_load(&svc->threads_exit)) {
        if (!p->conn) {
            take_inbox(p);
            ja_confirm_window_sweep(&p->window, ja_clock_ms(), atomic_load(&svc->live_generation));
            publish_metrics(p);
            if (!connect_publisher(p))
                continue;
        }
        if (!serve(p)) {
            lose_connection(p);
            continue;
        }
        publish_metrics(p);
        ja_watchdog_idle(&svc->watch[JA_CONN_PUBLISHER]);
        /* Napping, the publisher wakes for results and reads the confirms that came meanwhile
         * then, or at the nap's end; otherwise each confirm wakes it. */
        int timeout = wait_timeout_ms(p);
        bool nap = !p->blocked && ja_confirm_window_unconfirmed(&p->window) > 0 &&
                   ja_nap_may(&p->nap, ja_clock_us());
        if (nap && ja_nap_timeout_ms(&p->nap) < timeout)
            timeout = ja_nap_timeout_ms(&p->nap);
        if (ja_amqp_connection_wait(p->conn, ja_inbox_fd(&svc->to_publisher), timeout, !nap) &
            JA_WAIT_EXTRA)
            ja_inbox_woken(&svc->to_publisher);
        ja_watchdog_busy(&svc->watch[JA_CONN_PUBLISHER], ja_clock_ms());
    }
    ja_watchdog_idle(&svc->watch[JA_CONN_PUBLISHER]);
    ja_watchdog_attach(&svc->watch[JA_CONN_PUBLISHER], -1, 0);
    if (p->conn)
        ja_amqp_connection_close(p->conn);
    /* Whatever is left can no longer be acked (the consumer is done): hand it back to be freed. */
    ja_confirm_window_lost(&p->window, false, "stopping");
    ja_confirm_window_sweep(&p->window, ja_clock_ms(), 0);
    return NULL;
}
