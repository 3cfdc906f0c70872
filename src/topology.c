#include "topology.h"

#include "amqp_connection.h"
#include "log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* True when the last RPC failed because the broker closed the channel with 404 NOT_FOUND, which
 * is how a passive declaration says "no such queue or exchange". The close is answered and the
 * channel re-opened, ready for the real declaration. */
static bool absent_and_channel_reopened(amqp_connection_state_t conn, amqp_channel_t channel,
                                        amqp_rpc_reply_t reply, char *err, size_t err_size)
{
    if (reply.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
        reply.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return false;
    const amqp_channel_close_t *close = reply.reply.decoded;
    bool not_found = close->reply_code == AMQP_NOT_FOUND;
    ja_amqp_connection_answer_close(conn, channel, &reply.reply);
    if (!ja_amqp_connection_reopen_channel(conn, channel, err, err_size))
        return false;
    return not_found;
}

/* True when the broker refused an RPC for want of a permission (403 ACCESS_REFUSED closes the
 * channel). No reconnect can mend that; the operator must grant the permission. */
static bool access_refused(amqp_rpc_reply_t reply)
{
    return reply.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION &&
           reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD &&
           ((const amqp_channel_close_t *)reply.reply.decoded)->reply_code == AMQP_ACCESS_REFUSED;
}

static ja_topology_result refused(amqp_connection_state_t conn, amqp_channel_t channel,
                                  amqp_rpc_reply_t reply, const char *what, const char *name,
                                  char *err, size_t err_size)
{
    char why[512];
    ja_amqp_connection_describe_reply(reply, why, sizeof why);
    snprintf(err, err_size,
             "could not %s '%s': %s. The service's user needs the 'configure' permission on it "
             "(to declare it; RabbitMQ 4.2.6 and 4.3.0 ask for it even to look up one that "
             "exists), 'read' on the inbound queue and 'write' on the exchanges it publishes to: "
             "grant them with rabbitmqctl set_permissions",
             what, name, why);
    ja_amqp_connection_answer_close(conn, channel, &reply.reply);
    return JA_TOPOLOGY_UNUSABLE;
}

static ja_topology_result fail_with(amqp_connection_state_t conn, amqp_channel_t channel,
                                    const char *what, const char *name, char *err, size_t err_size)
{
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    if (access_refused(reply))
        return refused(conn, channel, reply, what, name, err, err_size);
    char why[512];
    ja_amqp_connection_describe_reply(reply, why, sizeof why);
    snprintf(err, err_size, "could not %s '%s': %s", what, name, why);
    return JA_TOPOLOGY_RETRY;
}

/* The arguments the service declares a queue with: x-queue-type for a quorum queue, and
 * x-single-active-consumer when asked for. */
typedef struct {
    amqp_table_entry_t entries[2];
    amqp_table_t table;
} queue_arguments;

static void queue_arguments_of(queue_arguments *args, bool quorum, bool single_active)
{
    int n = 0;
    if (quorum)
        args->entries[n++] = (amqp_table_entry_t){
            .key = amqp_cstring_bytes("x-queue-type"),
            .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("quorum")}};
    if (single_active)
        args->entries[n++] =
            (amqp_table_entry_t){.key = amqp_cstring_bytes("x-single-active-consumer"),
                                 .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}};
    args->table = (amqp_table_t){.num_entries = n, .entries = n ? args->entries : NULL};
}

static ja_topology_result ensure_queue(amqp_connection_state_t conn, amqp_channel_t channel,
                                       const ja_config *cfg, const char *name, char *err,
                                       size_t err_size)
{
    amqp_bytes_t queue = amqp_cstring_bytes(name);
    amqp_queue_declare_ok_t *ok =
        amqp_queue_declare(conn, channel, queue, 1, 0, 0, 0, amqp_empty_table);
    if (ok) {
        ja_log_info("using existing queue '%s' (%u messages, %u consumers)", name,
                    ok->message_count, ok->consumer_count);
        return JA_TOPOLOGY_READY;
    }
    err[0] = '\0';
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    if (access_refused(reply))
        return refused(conn, channel, reply, "look up queue", name, err, err_size);
    if (!absent_and_channel_reopened(conn, channel, reply, err, err_size))
        return err[0] ? JA_TOPOLOGY_RETRY
                      : fail_with(conn, channel, "look up queue", name, err, err_size);

    /* Only x-queue-type: every argument takes part in RabbitMQ's equivalence check, so a producer
     * that declares the queue with the usual arguments would be refused (406) if the service had
     * added more. Leader placement (x-queue-leader-locator) is left to a policy. */
    queue_arguments args;
    queue_arguments_of(&args, cfg->queue_type == JA_QUEUE_QUORUM, false);
    if (!amqp_queue_declare(conn, channel, queue, 0, 1, 0, 0, args.table))
        return fail_with(conn, channel, "create queue", name, err, err_size);
    ja_log_info("created durable %s queue '%s'",
                cfg->queue_type == JA_QUEUE_QUORUM ? "quorum" : "classic", name);
    return JA_TOPOLOGY_READY;
}

static ja_topology_result ensure_fanout_exchange(amqp_connection_state_t conn,
                                                 amqp_channel_t channel, const char *name,
                                                 char *err, size_t err_size)
{
    amqp_bytes_t exchange = amqp_cstring_bytes(name);
    amqp_bytes_t fanout = amqp_cstring_bytes("fanout");
    if (amqp_exchange_declare(conn, channel, exchange, fanout, 1, 0, 0, 0, amqp_empty_table)) {
        ja_log_info("using existing exchange '%s'", name);
        return JA_TOPOLOGY_READY;
    }
    err[0] = '\0';
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    if (access_refused(reply))
        return refused(conn, channel, reply, "look up exchange", name, err, err_size);
    if (!absent_and_channel_reopened(conn, channel, reply, err, err_size))
        return err[0] ? JA_TOPOLOGY_RETRY
                      : fail_with(conn, channel, "look up exchange", name, err, err_size);
    if (!amqp_exchange_declare(conn, channel, exchange, fanout, 0, 1, 0, 0, amqp_empty_table))
        return fail_with(conn, channel, "create exchange", name, err, err_size);
    ja_log_info("created durable fanout exchange '%s'", name);
    return JA_TOPOLOGY_READY;
}

static ja_topology_result bind_queue(amqp_connection_state_t conn, amqp_channel_t channel,
                                     const char *queue, const char *exchange, char *err,
                                     size_t err_size)
{
    if (!amqp_queue_bind(conn, channel, amqp_cstring_bytes(queue), amqp_cstring_bytes(exchange),
                         amqp_empty_bytes, amqp_empty_table))
        return fail_with(conn, channel, "bind to its exchange the queue", queue, err, err_size);
    return JA_TOPOLOGY_READY;
}

/* A passive declaration accepts an exchange of any type. An active one as a durable fanout is
 * refused with 406 when the type differs (RabbitMQ compares the type first), or the durability;
 * only the type matters here. */
static ja_topology_result check_fanout(amqp_connection_state_t conn, amqp_channel_t channel,
                                       const char *name, char *err, size_t err_size)
{
    if (amqp_exchange_declare(conn, channel, amqp_cstring_bytes(name), amqp_cstring_bytes("fanout"),
                              0, 1, 0, 0, amqp_empty_table))
        return JA_TOPOLOGY_READY;
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    if (reply.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
        reply.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return fail_with(conn, channel, "check the type of exchange", name, err, err_size);
    const amqp_channel_close_t *close = reply.reply.decoded;
    bool wrong_type = close->reply_code == AMQP_PRECONDITION_FAILED &&
                      memmem(close->reply_text.bytes, close->reply_text.len, "'type'", 6);
    char why[512];
    ja_amqp_connection_describe_reply(reply, why, sizeof why);
    ja_amqp_connection_answer_close(conn, channel, &reply.reply);
    if (wrong_type) {
        snprintf(err, err_size,
                 "the dead-letter exchange '%s' exists but is not a fanout exchange (%s); dead "
                 "letters are published with the inbound queue's name as routing key and would "
                 "reach no queue. Delete it, or name another with --dead-letter-exchange",
                 name, why);
        return JA_TOPOLOGY_WRONG_TYPE;
    }
    return ja_amqp_connection_reopen_channel(conn, channel, err, err_size) ? JA_TOPOLOGY_READY
                                                                           : JA_TOPOLOGY_RETRY;
}

/* The argument a 406 PRECONDITION_FAILED of an active queue declaration names ("inequivalent
 * arg 'x-queue-type' ..."), or NULL when the last RPC failed otherwise. The channel is closed by
 * then; its close is answered here. */
static const char *inequivalent_arg(amqp_connection_state_t conn, amqp_channel_t channel, char *why,
                                    size_t why_size)
{
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    ja_amqp_connection_describe_reply(reply, why, why_size);
    if (reply.reply_type != AMQP_RESPONSE_SERVER_EXCEPTION ||
        reply.reply.id != AMQP_CHANNEL_CLOSE_METHOD)
        return NULL;
    const amqp_channel_close_t *close = reply.reply.decoded;
    const char *found = NULL;
    static const char *const known[] = {"'x-single-active-consumer'", "'x-queue-type'"};
    if (close->reply_code == AMQP_PRECONDITION_FAILED) {
        found = "another argument";
        for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
            if (memmem(close->reply_text.bytes, close->reply_text.len, known[i], strlen(known[i])))
                found = known[i];
    }
    ja_amqp_connection_answer_close(conn, channel, &reply.reply);
    return found;
}

/* --single-active-consumer: one replica consumes, the others stand by. A new queue is declared
 * with x-single-active-consumer; an existing one must have it, which an active declaration with
 * it tells (RabbitMQ refuses an inequivalent one with 406 naming the argument). The queue's type
 * takes part in that check too, so both types are tried. */
static ja_topology_result ensure_single_active_queue(amqp_connection_state_t conn,
                                                     amqp_channel_t channel, const ja_config *cfg,
                                                     char *err, size_t err_size)
{
    const char *name = cfg->inbound_queue;
    amqp_bytes_t queue = amqp_cstring_bytes(name);
    bool quorum = cfg->queue_type == JA_QUEUE_QUORUM;
    for (int attempt = 0; attempt < 2; attempt++, quorum = !quorum) {
        queue_arguments args;
        queue_arguments_of(&args, quorum, true);
        if (amqp_queue_declare(conn, channel, queue, 0, 1, 0, 0, args.table)) {
            ja_log_info("queue '%s' has a single active consumer: replicas that are not "
                        "consuming stand by",
                        name);
            return JA_TOPOLOGY_READY;
        }
        char why[512];
        const char *arg = inequivalent_arg(conn, channel, why, sizeof why);
        if (!arg) {
            snprintf(err, err_size,
                     "could not declare queue '%s' with x-single-active-consumer: %s", name, why);
            return JA_TOPOLOGY_RETRY;
        }
        if (!ja_amqp_connection_reopen_channel(conn, channel, err, err_size))
            return JA_TOPOLOGY_RETRY;
        if (strcmp(arg, "'x-single-active-consumer'") == 0) {
            snprintf(err, err_size,
                     "--single-active-consumer: queue '%s' exists without "
                     "x-single-active-consumer (%s), so every replica would consume it and "
                     "per-key order would not hold across them. Delete the queue (the service "
                     "declares it with the argument) or declare it with "
                     "x-single-active-consumer=true",
                     name, why);
            return JA_TOPOLOGY_UNUSABLE;
        }
        if (strcmp(arg, "'x-queue-type'") != 0) {
            ja_log_warn("--single-active-consumer: queue '%s' has arguments of its own, so the "
                        "service cannot check it has x-single-active-consumer (%s); consuming it "
                        "as it is",
                        name, why);
            return JA_TOPOLOGY_READY;
        }
    }
    snprintf(err, err_size, "could not declare queue '%s' with x-single-active-consumer", name);
    return JA_TOPOLOGY_RETRY;
}

ja_topology_result ja_topology_declare_inbound(amqp_connection_state_t conn, amqp_channel_t channel,
                                               const ja_config *cfg, char *err, size_t err_size)
{
    if (cfg->single_active_consumer)
        return ensure_single_active_queue(conn, channel, cfg, err, err_size);
    return ensure_queue(conn, channel, cfg, cfg->inbound_queue, err, err_size);
}

ja_topology_result ja_topology_declare_outbound(amqp_connection_state_t conn,
                                                amqp_channel_t channel, const ja_config *cfg,
                                                char *err, size_t err_size)
{
    ja_topology_result rc =
        ensure_fanout_exchange(conn, channel, cfg->outbound_exchange, err, err_size);
    if (rc == JA_TOPOLOGY_READY && cfg->outbound_queue[0]) {
        rc = ensure_queue(conn, channel, cfg, cfg->outbound_queue, err, err_size);
        if (rc == JA_TOPOLOGY_READY)
            rc = bind_queue(conn, channel, cfg->outbound_queue, cfg->outbound_exchange, err,
                            err_size);
    }
    if (rc == JA_TOPOLOGY_READY)
        rc = ensure_fanout_exchange(conn, channel, cfg->dead_letter_exchange, err, err_size);
    if (rc == JA_TOPOLOGY_READY)
        rc = check_fanout(conn, channel, cfg->dead_letter_exchange, err, err_size);
    if (rc == JA_TOPOLOGY_READY)
        rc = ensure_queue(conn, channel, cfg, cfg->dead_letter_queue, err, err_size);
    if (rc == JA_TOPOLOGY_READY)
        rc = bind_queue(conn, channel, cfg->dead_letter_queue, cfg->dead_letter_exchange, err,
                        err_size);
    return rc;
}
