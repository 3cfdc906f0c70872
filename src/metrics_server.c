#include "metrics_server.h"

#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ja_metrics_server {
    struct MHD_Daemon *daemon;
    ja_service *svc;
};

static enum MHD_Result reply(struct MHD_Connection *connection, unsigned int status,
                             const char *content_type, const char *body, size_t len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!response)
        return MHD_NO;
    MHD_add_response_header(response, "Content-Type", content_type);
    enum MHD_Result rc = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result serve_metrics(struct MHD_Connection *connection, ja_service *svc)
{
    long depth = (long)ja_ring_depth(svc->work);
    size_t needed = ja_metrics_render(NULL, 0, depth) + 1;
    char *text = malloc(needed);
    if (!text)
        return MHD_NO;
    size_t len = ja_metrics_render(text, needed, depth);
    enum MHD_Result rc = reply(connection, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                               text, len < needed ? len : needed - 1);
    free(text);
    return rc;
}

static enum MHD_Result serve_ready(struct MHD_Connection *connection, ja_service *svc)
{
    const char *why = NULL;
    if (!atomic_load(&ja_stats.connected[JA_CONN_CONSUMER]))
        why = "the consumer connection to the broker is down\n";
    else if (!atomic_load(&ja_stats.connected[JA_CONN_PUBLISHER]))
        why = "the publisher connection to the broker is down\n";
    else if (!atomic_load(&svc->jube_available))
        why = "Jube is unavailable\n";
    else if (atomic_load(&ja_stats.unroutable_held) > 0)
        why = "responses or dead letters reach no queue; they are held and published again\n";
    else if (atomic_load(&svc->stopping))
        why = "shutting down\n";
    if (why)
        return reply(connection, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain", why, strlen(why));
    return reply(connection, MHD_HTTP_OK, "text/plain", "ready\n", 6);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **state)
{
    (void)version, (void)upload_data, (void)upload_data_size, (void)state;
    ja_metrics_server *server = cls;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return reply(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", "GET only\n", 9);
    if (strcmp(url, "/metrics") == 0)
        return serve_metrics(connection, server->svc);
    if (strcmp(url, "/healthz") == 0)
        return reply(connection, MHD_HTTP_OK, "text/plain", "ok\n", 3);
    if (strcmp(url, "/readyz") == 0)
        return serve_ready(connection, server->svc);
    return reply(connection, MHD_HTTP_NOT_FOUND, "text/plain",
                 "not found: try /metrics, /healthz or /readyz\n", 45);
}

/* "ADDR:PORT" with an IPv4 address, or ":PORT" / "PORT" for every interface. */
static bool parse_listen(const char *listen, struct sockaddr_in *addr)
{
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    const char *colon = strrchr(listen, ':');
    const char *port_text = colon ? colon + 1 : listen;
    char host[64] = "0.0.0.0";
    if (colon && colon != listen) {
        size_t n = (size_t)(colon - listen);
        if (n >= sizeof host)
            return false;
        memcpy(host, listen, n);
        host[n] = '\0';
    }
    char *end;
    long port = strtol(port_text, &end, 10);
    if (*port_text == '\0' || *end != '\0' || port < 1 || port > 65535)
        return false;
    addr->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &addr->sin_addr) == 1;
}

ja_metrics_server *ja_metrics_server_start(ja_service *svc, const char *listen, char *err,
                                           size_t err_size)
{
    struct sockaddr_in addr;
    if (!parse_listen(listen, &addr)) {
        snprintf(err, err_size,
                 "--metrics-listen: '%s' is not ADDR:PORT (an IPv4 address, or none for all)",
                 listen);
        return NULL;
    }
    ja_metrics_server *server = calloc(1, sizeof *server);
    if (!server) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    server->svc = svc;
    server->daemon = MHD_start_daemon(
        /* poll or epoll, not select: with --workers near 1000 the service's descriptors pass
         * FD_SETSIZE, and select() could no longer watch the metrics socket. */
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, ntohs(addr.sin_port),
        NULL, NULL, on_request, server, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_PER_IP_CONNECTION_LIMIT, 4u,
        MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!server->daemon) {
        snprintf(err, err_size, "--metrics-listen: cannot serve %s: %s", listen,
                 errno ? strerror(errno) : "libmicrohttpd refused");
        free(server);
        return NULL;
    }
    return server;
}

void ja_metrics_server_stop(ja_metrics_server *server)
{
    if (!server)
        return;
    MHD_stop_daemon(server->daemon);
    free(server);
}
