#include "amqp_connection.h"

#include "log.h"

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SYSTEM_CA_BUNDLE "/etc/ssl/certs/ca-certificates.crt"
#define RPC_TIMEOUT_S    30

/* Without these a dead peer could hold a send forever (rabbitmq-c 0.11 has no send time-out:
 * alanxz/rabbitmq-c#519, amqp_basic_publish blocks while the broker reads nothing): the kernel now
 * fails the socket once data stays unacknowledged for two heartbeats, and probes an idle one. */
void ja_amqp_connection_socket_blocked(amqp_connection_state_t conn, int silent_broker_ms,
                                       bool blocked)
{
    unsigned int user_timeout_ms = blocked ? 0 : (unsigned int)silent_broker_ms;
    int fd = amqp_get_sockfd(conn);
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms,
                              sizeof user_timeout_ms) != 0)
        ja_log_warn("could not set the TCP user time-out on the AMQP socket: %s", strerror(errno));
}

static void set_socket_timeouts(int fd, const ja_config *cfg)
{
    int on = 1;
    unsigned int user_timeout_ms = (unsigned int)cfg->silent_broker_ms;
    int idle = cfg->heartbeat_s;
    int interval = cfg->heartbeat_s / 3 > 0 ? cfg->heartbeat_s / 3 : 1;
    int count = 3;
    if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count) != 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms) !=
            0)
        ja_log_warn("could not set TCP keepalive and user time-out on the AMQP socket: %s",
                    strerror(errno));
}

/* Why OpenSSL refused the broker's certificate during this thread's last handshake, or 0.
 * rabbitmq-c only reports "peer verification failed"; operators need to know whether the CA is
 * wrong, the certificate expired or the host name does not match. */
static _Thread_local int refused_certificate;

static int note_verify_result(int preverify_ok, X509_STORE_CTX *store)
{
    if (!preverify_ok && !refused_certificate)
        refused_certificate = X509_STORE_CTX_get_error(store);
    return preverify_ok; /* the decision stays OpenSSL's */
}

static amqp_socket_t *new_socket(amqp_connection_state_t conn, const ja_config *cfg,
                                 const struct amqp_connection_info *info, char *err,
                                 size_t err_size)
{
    if (!info->ssl) {
        amqp_socket_t *socket = amqp_tcp_socket_new(conn);
        if (!socket)
            snprintf(err, err_size, "could not create a TCP socket");
        return socket;
    }
    amqp_socket_t *socket = amqp_ssl_socket_new(conn);
    if (!socket) {
        snprintf(err, err_size, "could not create a TLS socket");
        return NULL;
    }
    bool verify = !cfg->tls_insecure;
    amqp_ssl_socket_set_verify_peer(socket, verify);
    amqp_ssl_socket_set_verify_hostname(socket, verify);
    const char *ca = cfg->tls_ca[0] ? cfg->tls_ca : SYSTEM_CA_BUNDLE;
    int rc = amqp_ssl_socket_set_ssl_versions(socket, AMQP_TLSv1_2, AMQP_TLSvLATEST);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, err_size, "could not require TLS 1.2 or newer: %s", amqp_error_string2(rc));
        return NULL;
    }
    rc = amqp_ssl_socket_set_cacert(socket, ca);
    if (rc != AMQP_STATUS_OK) {
        snprintf(err, err_size, "could not load the CA bundle %s: %s", ca, amqp_error_string2(rc));
        return NULL;
    }
    if (cfg->tls_cert[0]) {
        rc = amqp_ssl_socket_set_key(socket, cfg->tls_cert, cfg->tls_key);
        if (rc != AMQP_STATUS_OK) {
            snprintf(err, err_size, "could not load the client certificate %s with key %s: %s",
                     cfg->tls_cert, cfg->tls_key, amqp_error_string2(rc));
            return NULL;
        }
    }
    SSL_CTX *ctx = amqp_ssl_socket_get_context(socket);
    if (ctx)
        SSL_CTX_set_verify(ctx, SSL_CTX_get_verify_mode(ctx), note_verify_result);
    return socket;
}

/* The reason a TLS connection failed, in the operator's terms where OpenSSL said why. */
static void describe_open_failure(const struct amqp_connection_info *info, int rc, char *err,
                                  size_t err_size)
{
    if (info->ssl && refused_certificate)
        snprintf(err, err_size,
                 "could not connect to %s:%d: the broker's TLS certificate was refused: %s (check "
                 "--tls-ca and the host name in --amqp-uri)",
                 info->host, info->port, X509_verify_cert_error_string(refused_certificate));
    else if (rc == AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED)
        snprintf(err, err_size,
                 "could not connect to %s:%d: the broker's TLS certificate is not for the host "
                 "name '%s'",
                 info->host, info->port, info->host);
    else
        snprintf(err, err_size, "could not connect to %s:%d: %s", info->host, info->port,
                 amqp_error_string2(rc));
}

amqp_connection_state_t ja_amqp_connection_open(const ja_config *cfg, int broker, const char *name,
                                                char *err, size_t err_size)
{
    const struct amqp_connection_info *info = &cfg->brokers[broker].amqp;
    amqp_connection_state_t conn = amqp_new_connection();
    if (!conn) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    amqp_socket_t *socket = new_socket(conn, cfg, info, err, err_size);
    if (!socket)
        goto fail;

    /* Per attempt, so that a node that does not answer is left for the next one soon. */
    struct timeval connect_timeout = {.tv_sec = cfg->connect_timeout_ms / 1000,
                                      .tv_usec = (cfg->connect_timeout_ms % 1000) * 1000};
    refused_certificate = 0;
    int rc = amqp_socket_open_noblock(socket, info->host, info->port, &connect_timeout);
    if (rc != AMQP_STATUS_OK) {
        describe_open_failure(info, rc, err, err_size);
        goto fail;
    }
    set_socket_timeouts(amqp_get_sockfd(conn), cfg);
    struct timeval rpc_timeout = {.tv_sec = RPC_TIMEOUT_S};
    amqp_set_handshake_timeout(conn, &connect_timeout);
    amqp_set_rpc_timeout(conn, &rpc_timeout);

    amqp_table_entry_t capabilities[] = {
        {.key = amqp_cstring_bytes("consumer_cancel_notify"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("connection.blocked"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("publisher_confirms"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("basic.nack"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
        {.key = amqp_cstring_bytes("authentication_failure_close"),
         .value = {.kind = AMQP_FIELD_KIND_BOOLEAN, .value.boolean = 1}},
    };
    /* Which copy of the service this is, for operators looking at the broker's connection list
     * (replicas share their connection names). */
    char instance[128], host[64] = "?";
    gethostname(host, sizeof host - 1);
    snprintf(instance, sizeof instance, "%s pid %d", host, (int)getpid());
    amqp_table_entry_t properties[] = {
        {.key = amqp_cstring_bytes("instance"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(instance)}},
        {.key = amqp_cstring_bytes("capabilities"),
         .value = {.kind = AMQP_FIELD_KIND_TABLE,
                   .value.table = {.num_entries = sizeof capabilities / sizeof capabilities[0],
                                   .entries = capabilities}}},
        {.key = amqp_cstring_bytes("connection_name"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(name)}},
        {.key = amqp_cstring_bytes("product"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("jube-amqp")}},
        {.key = amqp_cstring_bytes("version"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(JA_VERSION)}},
    };
    amqp_table_t client_properties = {.num_entries = sizeof properties / sizeof properties[0],
                                      .entries = properties};
    amqp_rpc_reply_t reply = amqp_login_with_properties(
        conn, info->vhost, 0, AMQP_DEFAULT_FRAME_SIZE, cfg->heartbeat_s, &client_properties,
        AMQP_SASL_METHOD_PLAIN, info->user, info->password);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[512];
        ja_amqp_connection_describe_reply(reply, why, sizeof why);
        /* A broker that requires a client certificate ends the TLS session only now, when the
         * handshake is over from the client's side; say what is the likely cause. */
        bool maybe_client_cert = info->ssl && !cfg->tls_cert[0] &&
                                 reply.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                                 reply.library_error == AMQP_STATUS_SSL_ERROR;
        snprintf(err, err_size, "login to vhost '%s' on %s:%d as user '%s' failed: %s%s",
                 info->vhost, info->host, info->port, info->user, why,
                 maybe_client_cert ? "; the broker may require a client certificate (--tls-cert "
                                     "and --tls-key)"
                                   : "");
        goto fail;
    }
    amqp_channel_open(conn, JA_CHANNEL);
    reply = amqp_get_rpc_reply(conn);
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        char why[512];
        ja_amqp_connection_describe_reply(reply, why, sizeof why);
        snprintf(err, err_size, "could not open a channel: %s", why);
        goto fail;
    }
    return conn;
fail:
    amqp_destroy_connection(conn);
    return NULL;
}

void ja_amqp_connection_close(amqp_connection_state_t conn)
{
    if (!conn)
        return;
    amqp_channel_close(conn, JA_CHANNEL, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

void ja_amqp_connection_destroy(amqp_connection_state_t conn)
{
    if (conn)
        amqp_destroy_connection(conn);
}

bool ja_amqp_connection_reopen_channel(amqp_connection_state_t conn, amqp_channel_t channel,
                                       char *err, size_t err_size)
{
    amqp_channel_open(conn, channel);
    amqp_rpc_reply_t reply = amqp_get_rpc_reply(conn);
    if (reply.reply_type == AMQP_RESPONSE_NORMAL)
        return true;
    char why[512];
    ja_amqp_connection_describe_reply(reply, why, sizeof why);
    snprintf(err, err_size, "could not re-open the channel: %s", why);
    return false;
}

void ja_amqp_connection_describe_reply(amqp_rpc_reply_t reply, char *out, size_t out_size)
{
    switch (reply.reply_type) {
    case AMQP_RESPONSE_NORMAL:
        snprintf(out, out_size, "no error");
        return;
    case AMQP_RESPONSE_NONE:
        snprintf(out, out_size, "no reply from the broker");
        return;
    case AMQP_RESPONSE_LIBRARY_EXCEPTION:
        snprintf(out, out_size, "%s", amqp_error_string2(reply.library_error));
        return;
    case AMQP_RESPONSE_SERVER_EXCEPTION:
        if (reply.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
            const amqp_connection_close_t *m = reply.reply.decoded;
            snprintf(out, out_size, "the broker closed the connection: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else if (reply.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
            const amqp_channel_close_t *m = reply.reply.decoded;
            snprintf(out, out_size, "the broker closed the channel: %u %.*s", m->reply_code,
                     (int)m->reply_text.len, (const char *)m->reply_text.bytes);
        } else {
            snprintf(out, out_size, "unexpected reply method 0x%08X from the broker",
                     reply.reply.id);
        }
        return;
    }
    snprintf(out, out_size, "unknown reply type %d", (int)reply.reply_type);
}

void ja_amqp_connection_answer_close(amqp_connection_state_t conn, amqp_channel_t channel,
                                     const amqp_method_t *method)
{
    if (method->id == AMQP_CHANNEL_CLOSE_METHOD) {
        amqp_channel_close_ok_t ok = {0};
        amqp_send_method(conn, channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
    } else if (method->id == AMQP_CONNECTION_CLOSE_METHOD) {
        amqp_connection_close_ok_t ok = {0};
        amqp_send_method(conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
    }
}

int ja_amqp_connection_wait(amqp_connection_state_t conn, int extra_fd, int timeout_ms,
                            bool watch_socket)
{
    /* Input the library already read would never wake poll(): look there first. */
    int ready = 0;
    if (amqp_frames_enqueued(conn) || amqp_data_in_buffer(conn))
        ready |= JA_WAIT_AMQP;
    struct pollfd fds[2] = {
        {.fd = watch_socket ? amqp_get_sockfd(conn) : -1, .events = POLLIN},
        {.fd = extra_fd, .events = POLLIN},
    };
    int rc = poll(fds, 2, ready ? 0 : timeout_ms);
    if (rc > 0) {
        /* Errors and hang-ups count as input: reading the socket reports them. */
        if (fds[0].revents)
            ready |= JA_WAIT_AMQP;
        if (fds[1].revents)
            ready |= JA_WAIT_EXTRA;
    }
    return ready;
}
