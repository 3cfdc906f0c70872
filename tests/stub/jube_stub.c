/* jube-stub: a stand-in for Jube's HTTP invoke API, for tests, benchmarks and local runs.
 *
 * It follows the rules in Jube's newest version: POST /api/invoke/EntityAnalysisModel/{guid}
 * (routing case-insensitive), Content-Length required (a chunked or empty body gets 400
 * "Content body is zero length."), a body limit (4000 bytes by default) answered with 400,
 * invalid JSON answered with 400, an unknown model with 404, a missing API key with 401 when one
 * is required, and on success 200 with a partial-format response whose EntityInstanceEntryId is
 * the request's TxnId. Error bodies are JSON string literals, as Jube writes them.
 *
 * Knobs for tests: latency (with random jitter), failure injection, a knee (--knee N
 * --knee-step-ms S: past N invocations under way each one more adds S ms; PUT /knee/N moves it
 * while running, as when Jube scales out), overload (--overload-above N: 503 past N), and GET
 * /stats with its counters, among them the time invocations spent inside (serving_ms) and the
 * caller's mean time between an answer and its next call on a connection (gap_us). With --order-key
 * NAME it watches per-key order as Jube's stateful models would feel it: for each value of the
 * top-level member NAME, the calls under way at once (an overlap is a call arriving while another
 * of its key is unanswered) and the order of arrival (an inversion is a call whose TxnId ends in a
 * smaller number than the key's previous call).
 *
 * Like Jube's own web server (Kestrel), it serves every connection from a few event-loop threads
 * (epoll; --threads, 1 by default) rather than a thread per connection: on a machine it shares
 * with the broker and the service under benchmark, a sleeping thread per connection would cost
 * every caller a wake-up per request. --latency-ms delays each answer on a timer, without holding
 * up the other connections, counted from the request's arrival and kept to the microsecond, so
 * that a knee of 10 calls at 5 ms carries the 2,000 a second it should. */

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
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define SAMPLE_MODEL    "90c425fd-101a-420b-91d1-cb7a24a969cc"
#define MAX_MODELS      16
#define HEADER_LIMIT    16384
#define INVOKE_PREFIX   "/api/invoke/entityanalysismodel/"
#define CALLBACK_PREFIX "/api/invoke/entityanalysismodel/callback/"
#define MAX_CALLBACKS   4096

static struct {
    const char *host;
    int port;
    const char *models[MAX_MODELS];
    int model_count;
    long max_body_bytes;
    int latency_ms;
    int latency_jitter_ms; /* each answer waits latency_ms plus 0..this, at random */
    const char *order_key; /* top-level member whose per-value order is watched, or NULL */
    int knee;              /* with knee_step_ms: invocations served at the base latency */
    int knee_step_ms;      /* latency added per invocation under way beyond the knee */
    int overload_above;    /* 503 at once beyond this many invocations under way; 0: never */
    long fail_every;
    long fail_first;
    int fail_status;
    int retry_after_s;
    const char *api_key;
    int threads;
    long implicit_async_every; /* every Nth answer is an Implicit Async placeholder; 0: never */
    int callback_delay_ms;     /* the full answer is ready this long after the placeholder */
    bool callbacks_disabled;   /* the Callback endpoint answers 404 (EnableCallback off) */
} opt = {.host = "127.0.0.1", .max_body_bytes = 4000, .fail_status = 503, .threads = 1};

static atomic_long requests;    /* every invoke request */
static atomic_long invocations; /* answered 200 */
static atomic_long failures;    /* answered with an injected failure */
static atomic_long rejections;  /* answered 4xx by Jube's own rules */
static atomic_long connections;
static atomic_long placeholders;       /* invocations answered with a placeholder */
static atomic_long callback_requests;  /* GETs of the Callback endpoint */
static atomic_long callback_answers;   /* answered 200 */
static atomic_long callback_not_ready; /* answered 408 */
static atomic_long serving;            /* invocations under way (--knee, --overload-above) */
static atomic_int knee;                /* --knee, or what PUT /knee/N set since */
static atomic_long overloaded;         /* answered 503 by --overload-above */
static atomic_long most_serving;
static atomic_llong serving_ns; /* the time invocations spent inside, from request to answer */
static atomic_llong gap_ns;     /* on a kept-alive connection, from an answer to the next request */
static atomic_long gaps;

/* Per-key order (--order-key): one slot per key value seen. */
#define MAX_ORDER_KEYS 8192
static struct {
    char key[64];
    int in_flight;
    long last_seq;
    long inversions;
} order_slots[MAX_ORDER_KEYS];
static long order_keys, order_calls, order_overlaps, order_inversions, order_inverted_keys,
    order_max_in_flight;
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;

/* Full answers behind placeholders, collected once, as Jube keeps them. */
static struct {
    char guid[37];
    long long ready_ns;
    char *answer;
} callbacks[MAX_CALLBACKS];
static size_t callback_next;
static pthread_mutex_t callback_lock = PTHREAD_MUTEX_INITIALIZER;

static void usage(void)
{
    fprintf(stderr, "usage: jube-stub [--host H] [--port P (0: any)] [--model GUID]... "
                    "[--max-body-bytes N]\n"
                    "                 [--latency-ms N] [--fail-every N] [--fail-first N] "
                    "[--fail-status S]\n"
                    "                 [--retry-after S] [--api-key KEY] [--threads N]\n"
                    "                 [--implicit-async-every N] [--callback-delay-ms N] "
                    "[--callbacks enabled|disabled]\n");
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
        else if (strcmp(flag, "--latency-jitter-ms") == 0)
            opt.latency_jitter_ms = (int)number_arg(flag, value, 0, 600000);
        else if (strcmp(flag, "--order-key") == 0)
            opt.order_key = value;
        else if (strcmp(flag, "--knee") == 0)
            opt.knee = (int)number_arg(flag, value, 1, 1000000);
        else if (strcmp(flag, "--knee-step-ms") == 0)
            opt.knee_step_ms = (int)number_arg(flag, value, 0, 60000);
        else if (strcmp(flag, "--overload-above") == 0)
            opt.overload_above = (int)number_arg(flag, value, 1, 1000000);
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
        else if (strcmp(flag, "--threads") == 0)
            opt.threads = (int)number_arg(flag, value, 1, 64);
        else if (strcmp(flag, "--implicit-async-every") == 0)
            opt.implicit_async_every = number_arg(flag, value, 0, 1L << 40);
        else if (strcmp(flag, "--callback-delay-ms") == 0)
            opt.callback_delay_ms = (int)number_arg(flag, value, 0, 3600000);
        else if (strcmp(flag, "--callbacks") == 0 &&
                 (strcmp(value, "enabled") == 0 || strcmp(value, "disabled") == 0))
            opt.callbacks_disabled = strcmp(value, "disabled") == 0;
        else
            usage();
    }
    if (opt.model_count == 0)
        opt.models[opt.model_count++] = SAMPLE_MODEL;
}

typedef struct event_loop event_loop;

/* One client connection; only its event loop's thread touches it once it is registered. */
typedef struct conn {
    int fd;
    event_loop *loop;
    char buf[HEADER_LIMIT + 65536];
    size_t len;        /* bytes in buf */
    size_t skip;       /* bytes of an oversized body still to discard */
    char *answer;      /* a whole HTTP response waiting for its --latency-ms to pass */
    size_t answer_len; /* (only one at a time: clients do not pipeline) */
    bool close_after;  /* "Connection: close" was asked for, or the framing is lost */
    bool closed;       /* the socket is gone; freed when it leaves the timer queue */
    long long due_ns;  /* when answer is sent */
    struct conn *next_due;
    int order_slot; /* the key slot of the call being answered, or -1 */
    bool serving;   /* an invocation of it is under way (counted in `serving`) */
    long long serving_since_ns;
    long long answered_ns; /* when its last invocation's answer went out; 0 before the first */
    long long arrived_ns;  /* when the first bytes of the request being read arrived */
    long extra_ms;         /* latency its answer adds for the knee */
} conn;

struct event_loop {
    int epoll_fd;
    int timer_fd;   /* wakes the loop when the next answer is due (its epoll data is NULL) */
    conn *due_head; /* answers in the order they are due */
    /* How much earlier than due the loop sends: a thread wakes some tens of microseconds after
     * its timer on a busy machine, so answers are sent that much early, learnt from how late they
     * go out, to keep the mean latency the one asked for. */
    long long early_ns;
};

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

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

/* The number at the end of a TxnId ("run-1234" -> 1234), or -1. */
static long txn_seq(const char *txn)
{
    size_t len = strlen(txn), at = len;
    while (at > 0 && txn[at - 1] >= '0' && txn[at - 1] <= '9')
        at--;
    return at < len ? strtol(txn + at, NULL, 10) : -1;
}

/* A call for a key arrives: counts an overlap or an inversion. Returns its slot, or -1. */
static int order_call_begins(const cJSON *request)
{
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(request, opt.order_key);
    const cJSON *txn = cJSON_GetObjectItemCaseSensitive(request, "TxnId");
    char text[64];
    if (cJSON_IsString(key))
        snprintf(text, sizeof text, "%s", key->valuestring);
    else if (cJSON_IsNumber(key))
        snprintf(text, sizeof text, "%.17g", key->valuedouble);
    else
        return -1;
    long seq = cJSON_IsString(txn) ? txn_seq(txn->valuestring) : -1;
    uint64_t h = 1469598103934665603ull;
    for (const char *p = text; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    pthread_mutex_lock(&order_lock);
    int slot = -1;
    for (size_t i = 0; i < MAX_ORDER_KEYS; i++) {
        size_t at = (h + i) % MAX_ORDER_KEYS;
        if (order_slots[at].key[0] == '\0') {
            snprintf(order_slots[at].key, sizeof order_slots[at].key, "%s", text);
            order_slots[at].last_seq = -1;
            order_keys++;
        }
        if (strcmp(order_slots[at].key, text) == 0) {
            slot = (int)at;
            break;
        }
    }
    if (slot >= 0) {
        order_calls++;
        if (order_slots[slot].in_flight > 0)
            order_overlaps++;
        order_slots[slot].in_flight++;
        if (order_slots[slot].in_flight > order_max_in_flight)
            order_max_in_flight = order_slots[slot].in_flight;
        if (seq >= 0 && seq < order_slots[slot].last_seq) {
            order_inversions++;
            if (order_slots[slot].inversions++ == 0)
                order_inverted_keys++;
        }
        if (seq >= 0)
            order_slots[slot].last_seq = seq;
    }
    pthread_mutex_unlock(&order_lock);
    return slot;
}

/* Its answer is out (or its connection gone): the call is no longer under way. */
static void order_call_ends(conn *c)
{
    if (c->serving) {
        c->serving = false;
        atomic_fetch_sub(&serving, 1);
        c->answered_ns = now_ns();
        atomic_fetch_add(&serving_ns, c->answered_ns - c->serving_since_ns);
    }
    if (c->order_slot < 0)
        return;
    pthread_mutex_lock(&order_lock);
    order_slots[c->order_slot].in_flight--;
    pthread_mutex_unlock(&order_lock);
    c->order_slot = -1;
}

static void watch(conn *c, bool readable)
{
    struct epoll_event ev = {.events = readable ? EPOLLIN | EPOLLRDHUP : 0, .data.ptr = c};
    epoll_ctl(c->loop->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev);
}

static uint64_t next_random(void)
{
    static _Thread_local uint64_t state;
    if (state == 0)
        state = (uint64_t)now_ns() ^ (uint64_t)(uintptr_t)&state;
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

/* Sends an answer now, or (delayed, for an invocation) queues it for --latency-ms later. Returns
 * false when the connection is to be closed. */
static bool send_answer(conn *c, int status, const char *body, bool keep_alive, bool delayed)
{
    size_t body_len = body ? strlen(body) : 0;
    char retry_after[64] = "";
    if (opt.retry_after_s > 0 && (status == 429 || status == 503))
        snprintf(retry_after, sizeof retry_after, "Retry-After: %d\r\n", opt.retry_after_s);
    char *text = malloc(512 + body_len);
    if (!text)
        return false;
    int n = snprintf(text, 512,
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n%s%s\r\n",
                     status, reason_of(status), body_len, retry_after,
                     keep_alive ? "" : "Connection: close\r\n");
    if (body_len > 0)
        memcpy(text + n, body, body_len);
    size_t len = (size_t)n + body_len;
    c->close_after = c->close_after || !keep_alive;
    if (!delayed || (opt.latency_ms == 0 && opt.latency_jitter_ms == 0 && c->extra_ms == 0)) {
        bool ok = send_all(c->fd, text, len);
        free(text);
        order_call_ends(c);
        return ok && keep_alive;
    }
    event_loop *loop = c->loop;
    c->answer = text;
    c->answer_len = len;
    long long delay_ms = opt.latency_ms + c->extra_ms;
    c->extra_ms = 0;
    if (opt.latency_jitter_ms > 0)
        delay_ms += (long long)(next_random() % (uint64_t)(opt.latency_jitter_ms + 1));
    /* Counted from the request's arrival: the time to parse it is part of Jube's latency. */
    c->due_ns = (c->serving ? c->serving_since_ns : now_ns()) + delay_ms * 1000000LL;
    /* Kept in the order they are due: with jitter that is not the order they were queued. */
    conn **at = &loop->due_head;
    while (*at && (*at)->due_ns <= c->due_ns)
        at = &(*at)->next_due;
    c->next_due = *at;
    *at = c;
    watch(c, false); /* nothing more is read from it until the answer is out */
    return true;
}

static bool respond(conn *c, int status, const char *body, bool keep_alive)
{
    return send_answer(c, status, body, keep_alive, false);
}

/* Jube's answers to invocations, which --latency-ms delays. */
static bool answer_invoke(conn *c, int status, const char *body, bool keep_alive)
{
    return send_answer(c, status, body, keep_alive, true);
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

/* The partial response format of Jube 2026-02, built around the request's TxnId. With Implicit
 * Async on (--implicit-async-every), answers carry ImplicitAsyncTimedOut as the newest Jube
 * writes it: false when in time; true on a placeholder (identity and timing only) and on the full
 * answer later collected from the Callback endpoint. */
static char *model_response(const cJSON *request, bool timed_out, bool placeholder, char guid[37])
{
    const cJSON *txn = cJSON_GetObjectItemCaseSensitive(request, "TxnId");
    const cJSON *when = cJSON_GetObjectItemCaseSensitive(request, "TxnDateTime");
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
    if (opt.implicit_async_every > 0)
        cJSON_AddBoolToObject(r, "ImplicitAsyncTimedOut", timed_out);
    if (placeholder) {
        char *text = cJSON_PrintUnformatted(r);
        cJSON_Delete(r);
        return text;
    }
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

static long long now_ns(void);

/* Keeps a full answer (taking it) to be collected from the Callback endpoint. */
static void keep_for_callback(const char *guid, char *answer)
{
    pthread_mutex_lock(&callback_lock);
    size_t i = callback_next++ % MAX_CALLBACKS;
    free(callbacks[i].answer); /* the oldest uncollected one expires */
    snprintf(callbacks[i].guid, sizeof callbacks[i].guid, "%s", guid);
    callbacks[i].ready_ns = now_ns() + (long long)opt.callback_delay_ms * 1000000LL;
    callbacks[i].answer = answer;
    pthread_mutex_unlock(&callback_lock);
}

typedef struct {
    char method[16];
    char path[512];
    long content_length; /* -1 when absent */
    bool chunked;
    bool close;
    char api_key[256];
    bool has_api_key;
    char traceparent[128]; /* logged, so tests can see trace context arrive */
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
            else if (strcasecmp(line, "traceparent") == 0)
                snprintf(r->traceparent, sizeof r->traceparent, "%s", value);
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
    long under_way = atomic_fetch_add(&serving, 1) + 1;
    c->serving = true;
    c->serving_since_ns = c->arrived_ns ? c->arrived_ns : now_ns();
    if (c->answered_ns) {
        /* The caller's own time between calls: Jube sits idle for it. */
        atomic_fetch_add(&gap_ns, c->serving_since_ns - c->answered_ns);
        atomic_fetch_add(&gaps, 1);
    }
    for (long most = atomic_load(&most_serving); under_way > most;)
        if (atomic_compare_exchange_weak(&most_serving, &most, under_way))
            break;
    if (opt.overload_above > 0 && under_way > opt.overload_above) {
        /* Jube's thread pool is full: it refuses at once. */
        atomic_fetch_add(&overloaded, 1);
        return respond(c, 503, "\"Service Unavailable.\"", keep);
    }
    int knee_now = atomic_load(&knee);
    if (opt.knee_step_ms > 0 && knee_now > 0 && under_way > knee_now)
        c->extra_ms = (under_way - knee_now) * opt.knee_step_ms;
    if (r->traceparent[0])
        fprintf(stderr, "traceparent %s\n", r->traceparent);
    if (opt.order_key) {
        cJSON *parsed = cJSON_ParseWithLength(body, body_len);
        c->order_slot = parsed ? order_call_begins(parsed) : -1;
        cJSON_Delete(parsed);
    }
    if (n <= opt.fail_first || (opt.fail_every > 0 && n % opt.fail_every == 0)) {
        atomic_fetch_add(&failures, 1);
        return answer_invoke(c, opt.fail_status,
                             opt.fail_status == 204 ? NULL : "\"Injected failure.\"", keep);
    }
    if (opt.api_key && (!r->has_api_key || strcmp(r->api_key, opt.api_key) != 0)) {
        atomic_fetch_add(&rejections, 1);
        return answer_invoke(c, 401, "\"Unauthorized.\"", keep);
    }
    const char *guid = r->path + strlen(INVOKE_PREFIX);
    size_t guid_len = strcspn(guid, "/?");
    if (guid[guid_len] == '/' || !known_model(guid, guid_len)) {
        atomic_fetch_add(&rejections, 1);
        return answer_invoke(c, 404, "\"Model not found.\"", keep);
    }
    if (r->chunked || r->content_length <= 0) {
        atomic_fetch_add(&rejections, 1);
        return answer_invoke(c, 400, "\"Content body is zero length.\"", keep);
    }
    if ((long)body_len > opt.max_body_bytes) {
        atomic_fetch_add(&rejections, 1);
        return answer_invoke(c, 400, "\"Content body is too large.\"", keep);
    }
    cJSON *json = cJSON_ParseWithLength(body, body_len);
    if (!cJSON_IsObject(json)) {
        cJSON_Delete(json);
        atomic_fetch_add(&rejections, 1);
        return answer_invoke(c, 400, "\"Invalid JSON.\"", keep);
    }
    long answered = atomic_fetch_add(&invocations, 1) + 1;
    char instance[37];
    new_guid(instance);
    bool late = opt.implicit_async_every > 0 && answered % opt.implicit_async_every == 0;
    char *answer = model_response(json, late, false, instance);
    if (late) {
        /* The model took too long: a placeholder now, the full answer from the callback. */
        char *placeholder = model_response(json, true, true, instance);
        keep_for_callback(instance, answer);
        atomic_fetch_add(&placeholders, 1);
        answer = placeholder;
    }
    cJSON_Delete(json);
    bool ok = answer_invoke(c, 200, answer, keep);
    free(answer);
    return ok;
}

/* GET .../Callback/{guid}: 200 with the full answer once, 408 while it is not ready, 404 when
 * unknown, collected already, or callbacks are off. */
static bool handle_callback(conn *c, const request *r, bool keep)
{
    atomic_fetch_add(&callback_requests, 1);
    const char *guid = r->path + strlen(CALLBACK_PREFIX);
    if (opt.callbacks_disabled || strlen(guid) != 36)
        return respond(c, 404, "\"Not found.\"", keep);
    pthread_mutex_lock(&callback_lock);
    char *answer = NULL;
    bool waiting = false;
    for (size_t i = 0; i < MAX_CALLBACKS; i++) {
        if (!callbacks[i].answer || strcasecmp(callbacks[i].guid, guid) != 0)
            continue;
        if (now_ns() < callbacks[i].ready_ns) {
            waiting = true;
        } else {
            answer = callbacks[i].answer;
            callbacks[i].answer = NULL;
        }
        break;
    }
    pthread_mutex_unlock(&callback_lock);
    if (waiting) {
        atomic_fetch_add(&callback_not_ready, 1);
        return respond(c, 408, "\"Request timeout.\"", keep);
    }
    if (!answer)
        return respond(c, 404, "\"Not found.\"", keep);
    atomic_fetch_add(&callback_answers, 1);
    bool ok = respond(c, 200, answer, keep);
    free(answer);
    return ok;
}

static bool handle_stats(conn *c, bool keep)
{
    char body[1024];
    pthread_mutex_lock(&order_lock);
    long keys = order_keys, calls = order_calls, overlaps = order_overlaps,
         inversions = order_inversions, inverted = order_inverted_keys, most = order_max_in_flight;
    pthread_mutex_unlock(&order_lock);
    snprintf(body, sizeof body,
             "{\"order_keys\":%ld,\"order_calls\":%ld,\"order_overlaps\":%ld,"
             "\"order_inversions\":%ld,\"order_inverted_keys\":%ld,"
             "\"order_max_in_flight\":%ld,\"overloaded\":%ld,\"most_serving\":%ld,\"serving_ms\":%"
             "lld,\"gap_us\":%lld,"
             "\"requests\":%ld,\"invocations\":%ld,\"failures\":%ld,"
             "\"rejections\":%ld,"
             "\"connections\":%ld,\"placeholders\":%ld,\"callback_requests\":%ld,"
             "\"callback_answers\":%ld,\"callback_not_ready\":%ld}",
             keys, calls, overlaps, inversions, inverted, most, atomic_load(&overloaded),
             atomic_load(&most_serving), atomic_load(&serving_ns) / 1000000,
             atomic_load(&gaps) ? atomic_load(&gap_ns) / 1000 / atomic_load(&gaps) : 0LL,
             atomic_load(&requests), atomic_load(&invocations), atomic_load(&failures),
             atomic_load(&rejections), atomic_load(&connections), atomic_load(&placeholders),
             atomic_load(&callback_requests), atomic_load(&callback_answers),
             atomic_load(&callback_not_ready));
    return respond(c, 200, body, keep);
}

/* PUT /knee/N: Jube's capacity changes (it scaled out, or in): from now on N invocations are
 * served at the base latency. */
static bool handle_knee(conn *c, const char *value, bool keep)
{
    char *end;
    long n = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || n < 1 || n > 1000000)
        return respond(c, 400, "\"The knee is a number of invocations.\"", keep);
    atomic_store(&knee, (int)n);
    return respond(c, 200, "\"ok\"", keep);
}

static void close_conn(conn *c)
{
    epoll_ctl(c->loop->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->closed = true;
    if (!c->answer)
        free(c); /* else the timer queue still points at it and frees it */
}

static void consume(conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Answers the requests buffered on c, one at a time (an answer waiting for its latency holds the
 * next). Returns false when the connection is to be closed. */
static bool serve_buffered(conn *c)
{
    while (!c->answer) {
        if (c->skip > 0) {
            size_t n = c->len < c->skip ? c->len : c->skip;
            consume(c, n);
            c->skip -= n;
            if (c->skip > 0)
                return true; /* more of the body to come */
            atomic_fetch_add(&requests, 1);
            atomic_fetch_add(&rejections, 1);
            if (!respond(c, 400, "\"Content body is too large.\"", !c->close_after))
                return false;
            continue;
        }
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end)
            return c->len < HEADER_LIMIT;
        size_t head_len = (size_t)(end - c->buf) + 4;
        char head[HEADER_LIMIT + 1];
        memcpy(head, c->buf, head_len);
        head[head_len] = '\0';
        request r;
        if (!parse_head(head, &r)) {
            respond(c, 400, "\"Bad request.\"", false);
            return false;
        }
        bool keep = !r.close;
        size_t body_len = r.content_length > 0 && !r.chunked ? (size_t)r.content_length : 0;
        if (body_len > sizeof c->buf - head_len) {
            /* Far over any limit: answer once it is read, without keeping it. */
            consume(c, head_len);
            c->skip = body_len;
            c->close_after = !keep;
            continue;
        }
        if (c->len < head_len + body_len)
            return true; /* the body is still arriving */
        consume(c, head_len);
        bool invoke = strncasecmp(r.path, INVOKE_PREFIX, strlen(INVOKE_PREFIX)) == 0;
        bool ok;
        if (r.chunked) {
            /* Jube refuses chunked bodies; answer and drop the connection, whose framing the
             * stub does not follow. */
            atomic_fetch_add(&requests, 1);
            atomic_fetch_add(&rejections, 1);
            respond(c, 400, "\"Content body is zero length.\"", false);
            return false;
        } else if (strncasecmp(r.path, CALLBACK_PREFIX, strlen(CALLBACK_PREFIX)) == 0 &&
                   strcmp(r.method, "GET") == 0) {
            ok = handle_callback(c, &r, keep);
        } else if (invoke && strcmp(r.method, "POST") == 0) {
            ok = handle_invoke(c, &r, c->buf, body_len, keep);
        } else if (strcmp(r.path, "/stats") == 0 && strcmp(r.method, "GET") == 0) {
            ok = handle_stats(c, keep);
        } else if (strncmp(r.path, "/knee/", 6) == 0 && strcmp(r.method, "PUT") == 0) {
            ok = handle_knee(c, r.path + 6, keep);
        } else if (invoke) {
            ok = respond(c, 405, "\"Method not allowed.\"", keep);
        } else {
            ok = respond(c, 404, "\"Not found.\"", keep);
        }
        consume(c, body_len);
        if (!ok)
            return false;
    }
    return true;
}

static void on_readable(conn *c)
{
    for (;;) {
        if (c->len == sizeof c->buf) {
            size_t before = c->len;
            if (!serve_buffered(c))
                break;
            if (c->answer)
                return; /* the rest waits for the answer */
            if (c->len == before)
                break; /* nothing in it can be served: a head over HEADER_LIMIT */
            continue;
        }
        bool first_bytes = c->len == 0;
        ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, MSG_DONTWAIT);
        if (n > 0 && first_bytes)
            c->arrived_ns = now_ns(); /* Jube's time for the request starts here */
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (serve_buffered(c))
                return;
            break;
        }
        if (n <= 0)
            break;
        c->len += (size_t)n;
    }
    close_conn(c);
}

/* Sends the answers whose latency has passed; returns how long until the next is due (ns), or -1
 * when none waits. */
static long long send_due_answers(event_loop *loop)
{
    long long now = now_ns();
    while (loop->due_head && loop->due_head->due_ns <= now + loop->early_ns) {
        conn *c = loop->due_head;
        loop->due_head = c->next_due;
        long long late = now_ns() - c->due_ns;
        loop->early_ns += late / 16;
        if (loop->early_ns < 0)
            loop->early_ns = 0;
        else if (loop->early_ns > 500000)
            loop->early_ns = 500000;
        bool ok = !c->closed && send_all(c->fd, c->answer, c->answer_len) && !c->close_after;
        free(c->answer);
        c->answer = NULL;
        order_call_ends(c);
        if (c->closed) {
            free(c);
            continue;
        }
        if (ok) {
            watch(c, true);
            ok = serve_buffered(c);
        }
        if (!ok)
            close_conn(c);
    }
    if (!loop->due_head)
        return -1;
    long long wait = loop->due_head->due_ns - loop->early_ns - now;
    return wait > 0 ? wait : 0;
}

/* Waits for events at most timeout_ns (forever when negative), to the microsecond: epoll_wait's
 * whole milliseconds would make a 5 ms answer take up to 6, and the next one due a moment later
 * wait a millisecond more. So the loop's timerfd, in its epoll set, ends the wait. */
static int wait_events(event_loop *loop, struct epoll_event *events, int max, long long timeout_ns)
{
    if (timeout_ns == 0)
        return epoll_wait(loop->epoll_fd, events, max, 0);
    struct itimerspec when = {0};
    if (timeout_ns > 0) {
        when.it_value.tv_sec = timeout_ns / 1000000000LL;
        when.it_value.tv_nsec = timeout_ns % 1000000000LL;
    }
    timerfd_settime(loop->timer_fd, 0, &when, NULL); /* all zero: disarmed */
    return epoll_wait(loop->epoll_fd, events, max, -1);
}

static void *run_loop(void *arg)
{
    event_loop *loop = arg;
    struct epoll_event events[64];
    for (;;) {
        long long timeout_ns = send_due_answers(loop);
        int n = wait_events(loop, events, 64, timeout_ns);
        for (int i = 0; i < n; i++) {
            conn *c = events[i].data.ptr;
            if (!c) {
                uint64_t expirations;
                if (read(loop->timer_fd, &expirations, sizeof expirations) < 0) {
                    /* nothing to clear: the timer was re-armed since */
                }
                continue;
            }
            if (c->closed)
                continue;
            if (!c->answer)
                on_readable(c);
            else if (events[i].events & (EPOLLERR | EPOLLHUP))
                close_conn(c); /* gone while its answer waits; the timer queue frees it */
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    atomic_init(&knee, opt.knee);
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

    event_loop *loops = calloc((size_t)opt.threads, sizeof *loops);
    for (int i = 0; i < opt.threads; i++) {
        loops[i].epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        loops[i].timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        struct epoll_event timer = {.events = EPOLLIN, .data.ptr = NULL};
        pthread_t thread;
        if (loops[i].epoll_fd < 0 || loops[i].timer_fd < 0 ||
            epoll_ctl(loops[i].epoll_fd, EPOLL_CTL_ADD, loops[i].timer_fd, &timer) != 0 ||
            pthread_create(&thread, NULL, run_loop, &loops[i]) != 0) {
            perror("jube-stub: cannot start its event loops");
            return 1;
        }
        pthread_detach(thread);
    }
    /* The first line of output says where it listens: the tests read it. */
    printf("listening on %s:%d\n", opt.host, ntohs(addr.sin_port));
    fflush(stdout);

    for (unsigned next = 0;; next++) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            perror("jube-stub: accept");
            return 1;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->order_slot = -1;
        c->loop = &loops[next % (unsigned)opt.threads];
        atomic_fetch_add(&connections, 1);
        /* Level-triggered: a connection whose answer is waiting is simply not read until then. */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        if (epoll_ctl(c->loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
            close(fd);
            free(c);
        }
    }
}
