/* jube-stub: a stand-in for Jube's HTTP invoke API, for tests, benchmarks and local runs.
 *
 * It follows the rules in Jube's newest version: POST /api/invoke/EntityAnalysisModel/{guid}
 * (routing case-insensitive), Content-Length required (a chunked or empty body gets 400
 * "Content body is zero length."), a body limit (4000 bytes by default) answered with 400,
 * invalid JSON answered with 400, an unknown model with 404, a missing API key with 401 when one
 * is required, and on success 200 with a partial-format response whose EntityInstanceEntryId is
 * the request's TxnId. Error bodies are JSON string literals, as Jube writes them.
 *
 * Knobs for tests: latency, failure injection, and GET /stats with its counters. One thread per
 * connection keeps it simple and fast enough for every benchmark here (each worker of the
 * service holds one keep-alive connection). */

#include <cjson/cJSON.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_MODEL  "90c425fd-101a-420b-91d1-cb7a24a969cc"
#define MAX_MODELS    16
#define HEADER_LIMIT  16384
#define INVOKE_PREFIX "/api/invoke/entityanalysismodel/"

static struct {
    const char *host;
    int port;
    const char *models[MAX_MODELS];
    int model_count;
    long max_body_bytes;
    int latency_ms;
    long fail_every;
    long fail_first;
    int fail_status;
    int retry_after_s;
    const char *api_key;
} opt = {.host = "127.0.0.1", .max_body_bytes = 4000, .fail_status = 503};

static atomic_long requests;    /* every invoke request */
static atomic_long invocations; /* answered 200 */
static atomic_long failures;    /* answered with an injected failure */
static atomic_long rejections;  /* answered 4xx by Jube's own rules */
static atomic_long connections;

static void usage(void)
{
    fprintf(stderr, "usage: jube-stub [--host H] [--port P (0: any)] [--model GUID]... "
                    "[--max-body-bytes N]\n"
                    "                 [--latency-ms N] [--fail-every N] [--fail-first N] "
                    "[--fail-status S]\n"
                    "                 [--retry-after S] [--api-key KEY]\n");
    exit(2);
}

static long number_arg(const char *flag, const char *value, long min, long max)
{
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || errno || n < min || n > max) {
        fprintf(stderr, "jube-stub: %s: '%s' is not a number in %ld..%ld\n", flag, value, min, max);
        exit(2);
    }
    return n;
}

static void parse_args(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *value = argv[++i];
        if (strcmp(flag, "--host") == 0)
            opt.host = value;
        else if (strcmp(flag, "--port") == 0)
            opt.port = (int)number_arg(flag, value, 0, 65535);
        else if (strcmp(flag, "--model") == 0 && opt.model_count < MAX_MODELS)
            opt.models[opt.model_count++] = value;
        else if (strcmp(flag, "--max-body-bytes") == 0)
            opt.max_body_bytes = number_arg(flag, value, 1, 1L << 30);
        else if (strcmp(flag, "--latency-ms") == 0)
            opt.latency_ms = (int)number_arg(flag, value, 0, 600000);
        else if (strcmp(flag, "--fail-every") == 0)
            opt.fail_every = number_arg(flag, value, 0, 1L << 40);
        else if (strcmp(flag, "--fail-first") == 0)
            opt.fail_first = number_arg(flag, value, 0, 1L << 40);
        else if (strcmp(flag, "--fail-status") == 0)
            opt.fail_status = (int)number_arg(flag, value, 100, 599);
        else if (strcmp(flag, "--retry-after") == 0)
            opt.retry_after_s = (int)number_arg(flag, value, 0, 3600);
        else if (strcmp(flag, "--api-key") == 0)
            opt.api_key = value;
        else
            usage();
    }
    if (opt.model_count == 0)
        opt.models[opt.model_count++] = SAMPLE_MODEL;
}

typedef struct {
    int fd;
    char buf[HEADER_LIMIT + 65536];
    size_t len; /* bytes in buf */
} conn;

static bool send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        len -= (size_t)n;
    }
    return true;
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Status";
    }
}

static bool respond(conn *c, int status, const char *body, bool keep_alive)
{
    char head[512];
    size_t body_len = body ? strlen(body) : 0;
    char retry_after[64] = "";
    if (opt.retry_after_s > 0 && (status == 429 || status == 503))
        snprintf(retry_after, sizeof retry_after, "Retry-After: %d\r\n", opt.retry_after_s);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     status, reason_of(status), body_len, retry_after,
                     keep_alive ? "" : "Connection: close\r\n");
    return send_all(c->fd, head, (size_t)n) && (body_len == 0 || send_all(c->fd, body, body_len));
}

static bool known_model(const char *guid, size_t len)
{
    for (int i = 0; i < opt.model_count; i++)
        if (strlen(opt.models[i]) == len && strncasecmp(opt.models[i], guid, len) == 0)
            return true;
    return false;
}

static void new_guid(char out[37])
{
    static _Thread_local uint64_t state;
    if (state == 0)
        state = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&state;
    unsigned char b[16];
    for (int i = 0; i < 16; i++) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        b[i] = (unsigned char)state;
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* The partial response format of Jube 2026-02, built around the request's TxnId. */
static char *model_response(const cJSON *request)
{
    const cJSON *txn = cJSON_GetObjectItemCaseSensitive(request, "TxnId");
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(request, "TxnDateTime");
    char guid[37];
    new_guid(guid);
    char now[40];
    time_t t = time(NULL);
    struct tm utc;
    gmtime_r(&t, &utc);
    strftime(now, sizeof now, "%Y-%m-%dT%H:%M:%S+00:00", &utc);

    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "CreatedDate", now);
    cJSON_AddStringToObject(r, "EntityAnalysisModelInstanceEntryGuid", guid);
    cJSON_AddStringToObject(r, "EntityInstanceEntryId",
                            cJSON_IsString(txn) ? txn->valuestring : "");
    cJSON_AddStringToObject(r, "ReferenceDate", cJSON_IsString(when) ? when->valuestring : now);
    cJSON *elevation = cJSON_AddObjectToObject(r, "ResponseElevation");
    cJSON_AddNumberToObject(elevation, "Value", 0.0);
    cJSON_AddNullToObject(elevation, "Redirect");
    cJSON_AddNullToObject(elevation, "ForeColor");
    cJSON_AddNullToObject(elevation, "BackColor");
    cJSON_AddNullToObject(elevation, "Content");
    cJSON_AddStringToObject(elevation, "CreatedDate", now);
    cJSON_AddArrayToObject(r, "Dictionary");
    cJSON_AddArrayToObject(r, "TtlCounter");
    cJSON_AddArrayToObject(r, "Sanction");
    cJSON_AddArrayToObject(r, "Abstraction");
    cJSON_AddArrayToObject(r, "AbstractionCalculation");
    cJSON_AddArrayToObject(r, "HttpAdaptation");
    cJSON_AddArrayToObject(r, "Activation");
    char *text = cJSON_PrintUnformatted(r);
    cJSON_Delete(r);
    return text;
}

typedef struct {
    char method[16];
    char path[512];
    long content_length; /* -1 when absent */
    bool chunked;
    bool close;
    char api_key[256];
    bool has_api_key;
} request;

/* Parses the request line and the headers the stub cares about. */
static bool parse_head(char *head, request *r)
{
    memset(r, 0, sizeof *r);
    r->content_length = -1;
    char *line_end = strstr(head, "\r\n");
    if (!line_end)
        return false;
    *line_end = '\0';
    if (sscanf(head, "%15s %511s", r->method, r->path) != 2)
        return false;
    for (char *line = line_end + 2; *line;) {
        char *end = strstr(line, "\r\n");
        if (!end)
            break;
        *end = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            char *value = colon + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            if (strcasecmp(line, "Content-Length") == 0)
                r->content_length = strtol(value, NULL, 10);
            else if (strcasecmp(line, "Transfer-Encoding") == 0)
                r->chunked = strcasestr(value, "chunked") != NULL;
            else if (strcasecmp(line, "Connection") == 0)
                r->close = strcasecmp(value, "close") == 0;
            else if (strcasecmp(line, "X-API-KEY") == 0) {
                snprintf(r->api_key, sizeof r->api_key, "%s", value);
                r->has_api_key = true;
            }
        }
        line = end + 2;
    }
    return true;
}

static bool handle_invoke(conn *c, const request *r, char *body, size_t body_len, bool keep)
{
    long n = atomic_fetch_add(&requests, 1) + 1;
    if (opt.latency_ms > 0) {
        struct timespec d = {.tv_sec = opt.latency_ms / 1000,
                             .tv_nsec = (long)(opt.latency_ms % 1000) * 1000000L};
        nanosleep(&d, NULL);
    }
    if (n <= opt.fail_first || (opt.fail_every > 0 && n % opt.fail_every == 0)) {
        atomic_fetch_add(&failures, 1);
        return respond(c, opt.fail_status, opt.fail_status == 204 ? NULL : "\"Injected failure.\"",
                       keep);
    }
    if (opt.api_key && (!r->has_api_key || strcmp(r->api_key, opt.api_key) != 0)) {
        atomic_fetch_add(&rejections, 1);
        return respond(c, 401, "\"Unauthorized.\"", keep);
    }
    const char *guid = r->path + strlen(INVOKE_PREFIX);
    size_t guid_len = strcspn(guid, "/?");
    if (guid[guid_len] == '/' || !known_model(guid, guid_len)) {
        atomic_fetch_add(&rejections, 1);
        return respond(c, 404, "\"Model not found.\"", keep);
    }
    if (r->chunked || r->content_length <= 0) {
        atomic_fetch_add(&rejections, 1);
        return respond(c, 400, "\"Content body is zero length.\"", keep);
    }
    if ((long)body_len > opt.max_body_bytes) {
        atomic_fetch_add(&rejections, 1);
        return respond(c, 400, "\"Content body is too large.\"", keep);
    }
    cJSON *json = cJSON_ParseWithLength(body, body_len);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        atomic_fetch_add(&rejections, 1);
        return respond(c, 400, "\"Invalid JSON.\"", keep);
    }
    char *answer = model_response(json);
    cJSON_Delete(json);
    atomic_fetch_add(&invocations, 1);
    bool ok = respond(c, 200, answer, keep);
    free(answer);
    return ok;
}

static bool handle_stats(conn *c, bool keep)
{
    char body[256];
    snprintf(body, sizeof body,
             "{\"requests\":%ld,\"invocations\":%ld,\"failures\":%ld,\"rejections\":%ld,"
             "\"connections\":%ld}",
             atomic_load(&requests), atomic_load(&invocations), atomic_load(&failures),
             atomic_load(&rejections), atomic_load(&connections));
    return respond(c, 200, body, keep);
}

/* Reads until buf holds at least `need` bytes. */
static bool fill(conn *c, size_t need)
{
    while (c->len < need) {
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        c->len += (size_t)n;
    }
    return true;
}

/* Reads and discards `n` body bytes that do not fit the buffer. */
static bool skip_bytes(conn *c, size_t n)
{
    char sink[65536];
    size_t have = c->len < n ? c->len : n;
    memmove(c->buf, c->buf + have, c->len - have);
    c->len -= have;
    n -= have;
    while (n > 0) {
        ssize_t got = recv(c->fd, sink, n < sizeof sink ? n : sizeof sink, 0);
        if (got <= 0)
            return false;
        n -= (size_t)got;
    }
    return true;
}

static void *serve(void *arg)
{
    conn *c = arg;
    atomic_fetch_add(&connections, 1);
    for (;;) {
        char *end = NULL;
        while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
            if (c->len >= HEADER_LIMIT || !fill(c, c->len + 1))
                goto done;
        }
        size_t head_len = (size_t)(end - c->buf) + 4;
        char head[HEADER_LIMIT + 1];
        memcpy(head, c->buf, head_len);
        head[head_len] = '\0';
        request r;
        if (!parse_head(head, &r)) {
            respond(c, 400, "\"Bad request.\"", false);
            goto done;
        }
        memmove(c->buf, c->buf + head_len, c->len - head_len);
        c->len -= head_len;
        bool keep = !r.close;

        size_t body_len = r.content_length > 0 && !r.chunked ? (size_t)r.content_length : 0;
        bool invoke = strncasecmp(r.path, INVOKE_PREFIX, strlen(INVOKE_PREFIX)) == 0;
        if (body_len > sizeof c->buf) {
            /* Far over any limit: answer without keeping it. */
            if (!skip_bytes(c, body_len))
                goto done;
            atomic_fetch_add(&requests, 1);
            atomic_fetch_add(&rejections, 1);
            if (!respond(c, 400, "\"Content body is too large.\"", keep))
                goto done;
            continue;
        }
        if (!fill(c, body_len))
            goto done;
        bool ok;
        if (r.chunked) {
            /* Jube refuses chunked bodies; answer and drop the connection, whose framing the
             * stub does not follow. */
            atomic_fetch_add(&requests, 1);
            atomic_fetch_add(&rejections, 1);
            respond(c, 400, "\"Content body is zero length.\"", false);
            goto done;
        } else if (invoke && strcmp(r.method, "POST") == 0) {
            ok = handle_invoke(c, &r, c->buf, body_len, keep);
        } else if (strcmp(r.path, "/stats") == 0 && strcmp(r.method, "GET") == 0) {
            ok = handle_stats(c, keep);
        } else if (invoke) {
            ok = respond(c, 405, "\"Method not allowed.\"", keep);
        } else {
            ok = respond(c, 404, "\"Not found.\"", keep);
        }
        memmove(c->buf, c->buf + body_len, c->len - body_len);
        c->len -= body_len;
        if (!ok || !keep)
            goto done;
    }
done:
    close(c->fd);
    free(c);
    return NULL;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1) {
        fprintf(stderr, "jube-stub: --host: '%s' is not an IPv4 address\n", opt.host);
        return 2;
    }
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 1024) != 0) {
        fprintf(stderr, "jube-stub: cannot listen on %s:%d: %s\n", opt.host, opt.port,
                strerror(errno));
        return 1;
    }
    socklen_t len = sizeof addr;
    getsockname(listener, (struct sockaddr *)&addr, &len);
    /* The first line of output says where it listens: the tests read it. */
    printf("listening on %s:%d\n", opt.host, ntohs(addr.sin_port));
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            perror("jube-stub: accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        conn *c = malloc(sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->len = 0;
        pthread_t thread;
        if (pthread_create(&thread, &attr, serve, c) != 0) {
            close(fd);
            free(c);
        }
    }
}
