#ifndef JA_AMQP_CONNECTION_H
#define JA_AMQP_CONNECTION_H

#include "config.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>

/* Opening, watching and closing one AMQP connection. The consumer and the publisher each own
 * one; a connection is never touched by two threads (rabbitmq-c is not thread-safe). */

/* Both threads use one channel on their own connection. */
#define JA_CHANNEL 1

/* Opens a connection to cfg->brokers[broker] named `name` (shown in the broker's management UI),
 * logs in advertising the consumer_cancel_notify, connection.blocked and publisher-confirm
 * capabilities, and opens JA_CHANNEL, within --amqp-connect-timeout-ms. Returns NULL with the
 * reason in err. */
amqp_connection_state_t ja_amqp_connection_open(const ja_config *cfg, int broker, const char *name,
                                                char *err, size_t err_size);

/* Closes the channel and the connection politely (bounded by the RPC time-out), then frees it. */
void ja_amqp_connection_close(amqp_connection_state_t conn);

/* Frees a connection known to be dead, without talking to the broker. */
void ja_amqp_connection_destroy(amqp_connection_state_t conn);

/* A broker that blocked publishing (a resource alarm) reads nothing and advertises no room on
 * purpose; the kernel's user time-out (two heartbeats, against a send that never ends) would
 * fail the socket under a write that waits for the unblock. Off while blocked, on again after. */
void ja_amqp_connection_socket_blocked(amqp_connection_state_t conn, int silent_broker_ms,
                                       bool blocked);

/* Re-opens a channel after the broker closed it (the close-ok must already be sent). */
bool ja_amqp_connection_reopen_channel(amqp_connection_state_t conn, amqp_channel_t channel,
                                       char *err, size_t err_size);

/* Describes a failed RPC for a log line: the library's error, or the broker's close reason. */
void ja_amqp_connection_describe_reply(amqp_rpc_reply_t reply, char *out, size_t out_size);

/* Answers a channel.close (of `channel`) or connection.close the broker sent, so it can finish
 * closing. */
void ja_amqp_connection_answer_close(amqp_connection_state_t conn, amqp_channel_t channel,
                                     const amqp_method_t *method);

/* Waits until the connection has input (already buffered by the library, or on the socket; the
 * socket only when watch_socket), until extra_fd is readable, or until timeout_ms passes.
 * Returns a bit set of JA_WAIT_*. */
#define JA_WAIT_AMQP  1
#define JA_WAIT_EXTRA 2
int ja_amqp_connection_wait(amqp_connection_state_t conn, int extra_fd, int timeout_ms,
                            bool watch_socket);

#endif
