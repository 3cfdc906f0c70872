#include "config.h"

#include "log.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { OPT_INT, OPT_STRING, OPT_CHOICE } option_type;

typedef struct {
    const char *name; /* the flag, without the leading "--" */
    const char *env;
    option_type type;
    size_t offset;
    const char *default_value;  /* parsed like any other value, so defaults are validated too */
    long min, max;              /* OPT_INT */
    const char *const *choices; /* OPT_CHOICE, NULL-terminated; the index is stored */
    bool may_be_empty;          /* OPT_STRING */
    bool secret;                /* never printed */
    const char *help;
} option;

static const char *const queue_types[] = {"auto", "classic", "quorum", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
static const char *const log_formats[] = {"text", "json", NULL};
/* A switch: "--flag" alone means true; "--flag=false" and the environment spell it out. */
static const char *const switch_values[] = {"false", "true", NULL};
static const char *const unroutable_choices[] = {"hold", "ack", NULL};
static const char *const key_missing_choices[] = {"unordered", "dead-letter", NULL};
static const char *const concurrency_choices[] = {"adaptive", "fixed", NULL};

/* AMQP short strings (queue, exchange and routing-key names) hold at most 255 bytes. */
#define NAME_MAX_BYTES 255

#define INT_OPT(name, env, field, def, lo, hi, help)                                               \
    {                                                                                              \
        name, env, OPT_INT, offsetof(ja_config, field), def, lo, hi, NULL, false, false, help      \
    }
#define STR_OPT(name, env, field, def, empty_ok, secret, help)                                     \
    {                                                                                              \
        name, env, OPT_STRING, offsetof(ja_config, field), def, 0, 0, NULL, empty_ok, secret, help \
    }
#define CHOICE_OPT(name, env, field, def, choices, help)                                           \
    {                                                                                              \
        name, env, OPT_CHOICE, offsetof(ja_config, field), def, 0, 0, choices, false, false, help  \
    }

static const option options[] = {
    STR_OPT("amqp-uri", "AMQPUri", amqp_uri, "amqp://guest:guest@127.0.0.1:5672/", false, false,
            "RabbitMQ URI (amqp://user:pass@host:port/vhost), or the nodes of one cluster as a "
            "comma-separated list of URIs; each connection starts at its own node of the list "
            "and moves to the next when one fails. As in Jube, a bare '/' or no path means the "
            "vhost '/'."),
    STR_OPT("amqp-uri-file", "AMQPUri_FILE", amqp_uri_file, "", true, false,
            "File holding the RabbitMQ URI (a Docker or Kubernetes secret); replaces --amqp-uri."),
    STR_OPT("tls-ca", "JUBE_AMQP_TLS_CA", tls_ca, "", true, false,
            "CA bundle (PEM) that amqps:// brokers and https:// Jube URLs are verified against; "
            "empty means the system bundle."),
    STR_OPT("tls-cert", "JUBE_AMQP_TLS_CERT", tls_cert, "", true, false,
            "Client certificate (PEM) presented to the broker over amqps://; needs --tls-key."),
    STR_OPT("tls-key", "JUBE_AMQP_TLS_KEY", tls_key, "", true, false,
            "Private key (PEM) of --tls-cert."),
    CHOICE_OPT("tls-insecure", "JUBE_AMQP_TLS_INSECURE", tls_insecure, "false", switch_values,
               "Skip certificate and host-name verification of the broker and Jube. For tests "
               "only: anyone on the path can read and change the traffic. Logged as a warning."),
    INT_OPT("heartbeat", "AMQPHeartbeatSeconds", heartbeat_s, "30", 1, 600,
            "AMQP heartbeat in seconds; a dead broker is noticed within about two."),
    INT_OPT("amqp-connect-timeout-ms", "JUBE_AMQP_CONNECT_TIMEOUT_MS", connect_timeout_ms, "5000",
            100, 600000,
            "Longest time one attempt to connect to one node may take (TCP, TLS and the AMQP "
            "handshake); then the next node is tried."),
    INT_OPT("reconnect-base-ms", "JUBE_AMQP_RECONNECT_BASE_MS", reconnect_base_ms, "500", 1, 600000,
            "First delay before reconnecting to the broker; doubles up to the maximum."),
    INT_OPT("reconnect-max-ms", "JUBE_AMQP_RECONNECT_MAX_MS", reconnect_max_ms, "30000", 1, 3600000,
            "Longest delay between reconnection attempts."),
    STR_OPT("jube-url", "JUBE_URL", jube_url, "http://127.0.0.1:5001", false, false,
            "Base URL of Jube's HTTP API."),
    STR_OPT("jube-api-key", "JUBE_API_KEY", jube_api_key, "", true, true,
            "Sent to Jube as the X-API-KEY header when set."),
    STR_OPT("jube-api-key-file", "JUBE_API_KEY_FILE", jube_api_key_file, "", true, false,
            "File holding the API key; replaces --jube-api-key."),
    STR_OPT("jube-bearer-token", "JUBE_BEARER_TOKEN", jube_bearer_token, "", true, true,
            "Sent to Jube as 'Authorization: Bearer ...' when set."),
    STR_OPT("jube-bearer-token-file", "JUBE_BEARER_TOKEN_FILE", jube_bearer_token_file, "", true,
            false, "File holding the bearer token; replaces --jube-bearer-token."),
    INT_OPT("http-timeout-ms", "JUBE_AMQP_HTTP_TIMEOUT_MS", http_timeout_ms, "10000", 100, 600000,
            "Longest time one call to Jube may take, connecting included."),
    INT_OPT("http-connect-timeout-ms", "JUBE_AMQP_HTTP_CONNECT_TIMEOUT_MS", http_connect_timeout_ms,
            "2000", 10, 600000, "Longest time to open a connection to Jube."),
    INT_OPT("workers", "JUBE_AMQP_WORKERS", workers, "64", 1, 4096,
            "The most calls to Jube under way at once, each on its own keep-alive connection: "
            "the most messages Jube works on for this service at a time (with --concurrency "
            "fixed, always that many while there is work)."),
    CHOICE_OPT("concurrency", "JUBE_AMQP_CONCURRENCY", concurrency, "adaptive", concurrency_choices,
               "'adaptive': --workers is the upper bound, and the service keeps the calls under "
               "way near the point where more stop bringing more throughput, found from how long "
               "Jube takes and its 429, 503 and time-outs. 'fixed': --workers calls to Jube are "
               "under way whenever there is work."),
    INT_OPT("worker-threads", "JUBE_AMQP_WORKER_THREADS", worker_threads, "0", 0, 4096,
            "Threads that carry those calls, each running its share of them together; 0 means "
            "one per CPU (never more than --workers)."),
    INT_OPT("prefetch", "JUBE_AMQP_PREFETCH", prefetch, "256", 1, 65535,
            "Most unacknowledged deliveries the broker hands the service at once."),
    INT_OPT("ack-linger-ms", "JUBE_AMQP_ACK_LINGER_MS", ack_linger_ms, "5", 0, 1000,
            "While messages arrive faster than one per half this time, the acks and the reading "
            "of publish confirms may wait up to this long for the thread's next wake-up instead "
            "of each waking it (fewer wake-ups per message at partial load; responses are not "
            "delayed). 0 handles each at once. Off with --order-by, where a key's next message "
            "waits for its predecessor's ack."),
    INT_OPT("ring-size", "JUBE_AMQP_RING_SIZE", ring_size, "0", 0, 1048576,
            "Capacity of the consumer-to-worker ring; 0 means the prefetch. Never below it."),
    INT_OPT("max-body-bytes", "JUBE_AMQP_MAX_BODY_BYTES", max_body_bytes, "1048576", 2, 134217728,
            "Larger message bodies are dead-lettered (Jube's own default limit is 4000)."),
    INT_OPT("max-attempts", "JUBE_AMQP_MAX_ATTEMPTS", max_attempts, "5", 1, 1000,
            "Calls to Jube for a message that keeps getting a 5xx other than 502/503/504, before "
            "it is dead-lettered."),
    INT_OPT("retry-base-ms", "JUBE_AMQP_RETRY_BASE_MS", retry_base_ms, "100", 1, 600000,
            "First delay before calling Jube again; doubles (with jitter) up to the maximum."),
    INT_OPT("retry-max-ms", "JUBE_AMQP_RETRY_MAX_MS", retry_max_ms, "30000", 1, 3600000,
            "Longest delay between calls to Jube for one message, Retry-After included."),
    INT_OPT("max-hold-ms", "JUBE_AMQP_MAX_HOLD_MS", max_hold_ms, "900000", 1000, 86400000,
            "Longest time a delivery is held while Jube is unavailable before it is returned to "
            "the queue; keep it below RabbitMQ's consumer_timeout (30 minutes by default)."),
    INT_OPT("delivery-limit", "JUBE_AMQP_DELIVERY_LIMIT", delivery_limit, "20", 0, 1000000,
            "The inbound queue's delivery limit (RabbitMQ 4.x quorum queues: 20 unless a policy "
            "or x-delivery-limit says otherwise; 0 = the queue has none). A message redelivered "
            "within a quarter of it is published again to the queue's tail and the old delivery "
            "acked, so the broker never drops it."),
    INT_OPT("implicit-async-timeout-ms", "JUBE_AMQP_IMPLICIT_ASYNC_TIMEOUT_MS",
            implicit_async_timeout_ms, "60000", 100, 3600000,
            "When Jube answers with an Implicit Async placeholder, longest time to wait for the "
            "full answer from its Callback endpoint before the message is dead-lettered as "
            "implicit_async_incomplete (the transaction is never posted twice)."),
    INT_OPT("confirm-timeout-ms", "JUBE_AMQP_CONFIRM_TIMEOUT_MS", confirm_timeout_ms, "60000", 1000,
            3600000,
            "Longest wait for the broker to confirm a publish; past it the publisher's connection "
            "counts as broken and is made again (everything unconfirmed is published again)."),
    CHOICE_OPT(
        "unroutable-responses", "JUBE_AMQP_UNROUTABLE_RESPONSES", unroutable_responses, "hold",
        unroutable_choices,
        "When no queue receives a response on the outbound exchange: 'hold' keeps the "
        "delivery unacked and publishes the response again with backoff until a queue is "
        "bound (and --max-hold-ms returns it to the queue); 'ack' acks it and counts it, for "
        "deployments that read only reply_to."),
    STR_OPT("order-by", "JUBE_AMQP_ORDER_BY", order_by, "", true, false,
            "Keep each key's messages in order while different keys run in parallel: at most one "
            "call to Jube per key value at a time, in delivery order, and responses published in "
            "that order. The key is a JSON path into the body ($.AccountId, $.Payer.Id; a string "
            "or number) or an AMQP header (header:NAME). Off when empty."),
    CHOICE_OPT("order-key-missing", "JUBE_AMQP_ORDER_KEY_MISSING", order_key_missing, "unordered",
               key_missing_choices,
               "With --order-by, what happens to a message without a usable key (missing, not a "
               "string or number, longer than 256 bytes): 'unordered' processes it without "
               "ordering; 'dead-letter' dead-letters it as order_key_missing. Counted either "
               "way."),
    CHOICE_OPT("single-active-consumer", "JUBE_AMQP_SINGLE_ACTIVE_CONSUMER", single_active_consumer,
               "false", switch_values,
               "Declare the inbound queue with x-single-active-consumer (or require an existing "
               "one to have it), so of several replicas one consumes and the others stand by to "
               "take over: per-key order across replicas."),
    STR_OPT("inbound-queue", "JUBE_AMQP_INBOUND_QUEUE", inbound_queue, "jubeInbound", false, false,
            "Queue the transactions are consumed from."),
    STR_OPT("outbound-exchange", "JUBE_AMQP_OUTBOUND_EXCHANGE", outbound_exchange, "jubeOutbound",
            false, false, "Fanout exchange the responses are published to."),
    STR_OPT("routing-key", "JUBE_AMQP_ROUTING_KEY", routing_key, "", true, false,
            "Routing key of published responses."),
    STR_OPT("outbound-queue", "JUBE_AMQP_OUTBOUND_QUEUE", outbound_queue, "", true, false,
            "When set, a durable queue of this name is declared and bound to the outbound "
            "exchange."),
    STR_OPT("dead-letter-exchange", "JUBE_AMQP_DEAD_LETTER_EXCHANGE", dead_letter_exchange,
            "jubeDeadLetter", false, false, "Fanout exchange failed messages are published to."),
    STR_OPT("dead-letter-queue", "JUBE_AMQP_DEAD_LETTER_QUEUE", dead_letter_queue, "jubeDeadLetter",
            false, false,
            "Durable queue bound to the dead-letter exchange, so no dead letter is dropped."),
    CHOICE_OPT("queue-type", "JUBE_AMQP_QUEUE_TYPE", queue_type, "auto", queue_types,
               "Type of the queues the service creates (existing queues are used as they are): "
               "'auto' means quorum when --amqp-uri lists several nodes, classic otherwise."),
    STR_OPT("metrics-listen", "JUBE_AMQP_METRICS_LISTEN", metrics_listen, "", true, false,
            "Serve Prometheus metrics at /metrics, liveness at /healthz and readiness at /readyz "
            "on ADDR:PORT (for instance 0.0.0.0:9090); off when empty."),
    CHOICE_OPT("log-level", "JUBE_AMQP_LOG_LEVEL", log_level, "info", log_levels,
               "Least important level that is logged."),
    CHOICE_OPT("log-format", "JUBE_AMQP_LOG_FORMAT", log_format, "text", log_formats,
               "Log lines for people (text) or one JSON object per line (json), each with its "
               "time, level, thread and message, and the delivery tag, model, HTTP status and "
               "attempt of the message it is about."),
    INT_OPT("shutdown-timeout", "JUBE_AMQP_SHUTDOWN_TIMEOUT", shutdown_timeout_s, "30", 1, 3600,
            "Seconds a graceful shutdown may take before the service exits without finishing "
            "(unacknowledged messages return to the queue)."),
};

#define OPTION_COUNT (sizeof options / sizeof options[0])

static void *field_of(ja_config *cfg, const option *opt)
{
    return (char *)cfg + opt->offset;
}

static const void *const_field_of(const ja_config *cfg, const option *opt)
{
    return (const char *)cfg + opt->offset;
}

/* Says where a value came from: "--prefetch" or "environment variable JUBE_AMQP_PREFETCH". */
static void describe_source(const option *opt, bool from_env, char *out, size_t size)
{
    if (from_env)
        snprintf(out, size, "environment variable %s", opt->env);
    else
        snprintf(out, size, "--%s", opt->name);
}

static void describe_choices(const option *opt, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (const char *const *c = opt->choices; *c && used < size; c++)
        used +=
            (size_t)snprintf(out + used, size - used, "%s%s", c == opt->choices ? "" : ", ", *c);
}

static int set_value(ja_config *cfg, const option *opt, const char *value, bool from_env, char *err,
                     size_t err_size)
{
    char source[96];
    describe_source(opt, from_env, source, sizeof source);
    /* Secrets are never echoed, not even in an error. */
    const char *shown = opt->secret ? "(secret)" : value;

    switch (opt->type) {
    case OPT_INT: {
        char *end = NULL;
        errno = 0;
        long parsed = strtol(value, &end, 10);
        if (value[0] == '\0' || *end != '\0' || errno == ERANGE) {
            snprintf(err, err_size, "%s: '%s' is not a whole number (allowed: %ld..%ld)", source,
                     shown, opt->min, opt->max);
            return -EINVAL;
        }
        if (parsed < opt->min || parsed > opt->max) {
            snprintf(err, err_size, "%s: %ld is out of range %ld..%ld", source, parsed, opt->min,
                     opt->max);
            return -EINVAL;
        }
        *(int *)field_of(cfg, opt) = (int)parsed;
        return 0;
    }
    case OPT_STRING: {
        /* Kubernetes secrets and `echo` often leave one line break at the end: that one is not
         * part of the value. Any other CR or LF would split an HTTP header or a log line. */
        size_t len = strlen(value);
        if (len > 0 && value[len - 1] == '\n')
            len--;
        if (len > 0 && value[len - 1] == '\r')
            len--;
        if (memchr(value, '\r', len) || memchr(value, '\n', len)) {
            snprintf(err, err_size,
                     "%s: the value contains a line break (CR or LF); only one at its very end "
                     "is ignored",
                     source);
            return -EINVAL;
        }
        if (len == 0 && !opt->may_be_empty) {
            snprintf(err, err_size, "%s: must not be empty", source);
            return -EINVAL;
        }
        char *copy = strndup(value, len);
        if (!copy) {
            snprintf(err, err_size, "%s: out of memory", source);
            return -ENOMEM;
        }
        char **slot = field_of(cfg, opt);
        free(*slot);
        *slot = copy;
        return 0;
    }
    case OPT_CHOICE:
        for (int i = 0; opt->choices[i]; i++) {
            if (strcmp(opt->choices[i], value) == 0) {
                *(int *)field_of(cfg, opt) = i;
                return 0;
            }
        }
        char allowed[128];
        describe_choices(opt, allowed, sizeof allowed);
        snprintf(err, err_size, "%s: '%s' is not one of: %s", source, value, allowed);
        return -EINVAL;
    }
    return -EINVAL;
}

static const option *find_option(const char *name, size_t name_len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (strlen(options[i].name) == name_len && strncmp(options[i].name, name, name_len) == 0)
            return &options[i];
    }
    return NULL;
}

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

#define SECRET_FILE_MAX_BYTES 65536

/* Replaces *secret with the contents of path, without the line break editors and
 * `echo > file` leave at the end. The error names the file, never its contents. */
static int read_secret_file(const char *flag, const char *path, char **secret, char *err,
                            size_t err_size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: cannot read '%s': %s", flag, path, strerror(errno));
        return -EINVAL;
    }
    char *text = malloc(SECRET_FILE_MAX_BYTES + 1);
    size_t len = text ? fread(text, 1, SECRET_FILE_MAX_BYTES + 1, f) : 0;
    bool failed = text && ferror(f);
    fclose(f);
    if (!text || failed || len > SECRET_FILE_MAX_BYTES) {
        snprintf(err, err_size, "%s: cannot read '%s': %s", flag, path,
                 !text    ? "out of memory"
                 : failed ? "read error"
                          : "larger than 64 KiB");
        free(text);
        return -EINVAL;
    }
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        len--;
    text[len] = '\0';
    if (len == 0 || memchr(text, '\n', len) || memchr(text, '\0', len)) {
        snprintf(err, err_size, "%s: '%s' must hold the secret on one line", flag, path);
        free(text);
        return -EINVAL;
    }
    free(*secret);
    *secret = text;
    return 0;
}

/* Where each setting's value came from; a later source wins. */
typedef enum { FROM_DEFAULT, FROM_ENVIRONMENT, FROM_FLAG } value_source;

static value_source source_of(const value_source *sources, size_t field_offset)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].offset == field_offset)
            return sources[i];
    return FROM_DEFAULT;
}

/* A secret file replaces its value unless the value was given more directly (a flag beats a file
 * named in the environment); the two given the same way are a contradiction. */
static int read_secret_files(ja_config *cfg, const value_source *sources, char *err,
                             size_t err_size)
{
    const struct {
        const char *flag, *value_flag;
        const char *path;
        char **secret;
        size_t file_offset, value_offset;
    } files[] = {
        {"--amqp-uri-file", "--amqp-uri", cfg->amqp_uri_file, &cfg->amqp_uri,
         offsetof(ja_config, amqp_uri_file), offsetof(ja_config, amqp_uri)},
        {"--jube-api-key-file", "--jube-api-key", cfg->jube_api_key_file, &cfg->jube_api_key,
         offsetof(ja_config, jube_api_key_file), offsetof(ja_config, jube_api_key)},
        {"--jube-bearer-token-file", "--jube-bearer-token", cfg->jube_bearer_token_file,
         &cfg->jube_bearer_token, offsetof(ja_config, jube_bearer_token_file),
         offsetof(ja_config, jube_bearer_token)},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (!files[i].path[0])
            continue;
        value_source file = source_of(sources, files[i].file_offset);
        value_source value = source_of(sources, files[i].value_offset);
        if (value > file)
            continue;
        if (value == file) {
            snprintf(err, err_size, "%s and %s are both set %s; give one of them", files[i].flag,
                     files[i].value_flag, file == FROM_FLAG ? "as flags" : "in the environment");
            return -EINVAL;
        }
        int rc = read_secret_file(files[i].flag, files[i].path, files[i].secret, err, err_size);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Splits --amqp-uri at commas and parses each URI. */
static int parse_brokers(ja_config *cfg, char *err, size_t err_size)
{
    free(cfg->amqp_uri_storage);
    cfg->amqp_uri_storage = strdup(cfg->amqp_uri);
    if (!cfg->amqp_uri_storage)
        return -ENOMEM;
    cfg->broker_count = 0;
    char *next = cfg->amqp_uri_storage;
    int listed = 1;
    for (const char *c = cfg->amqp_uri; *c; c++)
        listed += *c == ',';
    if (listed > JA_MAX_BROKERS) {
        snprintf(err, err_size, "--amqp-uri: %d URIs is more than %d", listed, JA_MAX_BROKERS);
        return -EINVAL;
    }
    while (next) {
        char *uri = next;
        char *comma = strchr(uri, ',');
        next = comma ? comma + 1 : NULL;
        if (comma)
            *comma = '\0';
        while (*uri == ' ')
            uri++;
        for (char *end = uri + strlen(uri); end > uri && end[-1] == ' ';)
            *--end = '\0';
        int n = cfg->broker_count;
        struct amqp_connection_info *info = &cfg->brokers[n].amqp;
        amqp_default_connection_info(info);
        if (uri[0] == '\0' || amqp_parse_url(uri, info) != AMQP_STATUS_OK) {
            /* The URI may hold a password: say which one and what shape is expected, not what
             * was given. */
            char which[48] = "";
            if (listed > 1)
                snprintf(which, sizeof which, " (URI %d of %d)", n + 1, listed);
            snprintf(err, err_size,
                     "--amqp-uri: not a valid AMQP URI%s (expected "
                     "amqp://user:password@host:port/vhost or amqps://..., several separated by "
                     "commas)",
                     which);
            return -EINVAL;
        }
        /* Jube reads AMQPUri with the .NET client, which takes "amqp://host/" to mean the vhost
         * "/". The AMQP URI spec would make it the empty vhost, which RabbitMQ refuses; operators
         * reuse Jube's value, so follow Jube. */
        if (info->vhost[0] == '\0')
            info->vhost = "/";
        snprintf(cfg->brokers[n].name, sizeof cfg->brokers[n].name, "%s:%d", info->host,
                 info->port);
        cfg->broker_count++;
    }
    return 0;
}

/* Checks that need more than one setting, or the shape of a URL. */
/* The settings every thread reads that follow from others (config.h). */
static void resolve_derived(ja_config *cfg)
{
    cfg->ordered = cfg->order_spec.source != JA_ORDER_OFF;
    cfg->ring_capacity = (size_t)(cfg->ring_size ? cfg->ring_size : cfg->prefetch);
    cfg->nap_linger_us = cfg->ordered ? 0 : (uint64_t)cfg->ack_linger_ms * 1000u;
    cfg->silent_broker_ms = cfg->heartbeat_s * 2000;
    cfg->idle_wait_ms = cfg->heartbeat_s * 500;
    cfg->stuck_ms = cfg->silent_broker_ms + 1000;
}

static int validate(ja_config *cfg, const value_source *sources, char *err, size_t err_size)
{
    int rc = read_secret_files(cfg, sources, err, err_size);
    if (rc != 0)
        return rc;
    if (cfg->retry_base_ms > cfg->retry_max_ms) {
        snprintf(err, err_size, "--retry-base-ms %d is larger than --retry-max-ms %d",
                 cfg->retry_base_ms, cfg->retry_max_ms);
        return -EINVAL;
    }
    if (cfg->reconnect_base_ms > cfg->reconnect_max_ms) {
        snprintf(err, err_size, "--reconnect-base-ms %d is larger than --reconnect-max-ms %d",
                 cfg->reconnect_base_ms, cfg->reconnect_max_ms);
        return -EINVAL;
    }
    if (cfg->delivery_limit == 1) {
        snprintf(err, err_size,
                 "--delivery-limit 1 leaves no room to renew a message before the broker drops "
                 "it; use 0 (no limit) or 2 and more");
        return -EINVAL;
    }
    if (cfg->ring_size != 0 && cfg->ring_size < cfg->prefetch) {
        snprintf(err, err_size,
                 "--ring-size %d is smaller than --prefetch %d; the ring must hold every "
                 "delivery the broker may hand out (use 0 for the prefetch)",
                 cfg->ring_size, cfg->prefetch);
        return -EINVAL;
    }
    if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
        snprintf(err, err_size, "%s is set without %s; a client certificate needs both",
                 cfg->tls_cert[0] ? "--tls-cert" : "--tls-key",
                 cfg->tls_cert[0] ? "--tls-key" : "--tls-cert");
        return -EINVAL;
    }
    const struct {
        const char *flag;
        const char *path;
    } tls_files[] = {
        {"--tls-ca", cfg->tls_ca}, {"--tls-cert", cfg->tls_cert}, {"--tls-key", cfg->tls_key}};
    for (size_t i = 0; i < sizeof tls_files / sizeof tls_files[0]; i++) {
        if (tls_files[i].path[0] && access(tls_files[i].path, R_OK) != 0) {
            snprintf(err, err_size, "%s: cannot read '%s': %s", tls_files[i].flag,
                     tls_files[i].path, strerror(errno));
            return -EINVAL;
        }
    }
    if (cfg->worker_threads > cfg->workers) {
        snprintf(err, err_size,
                 "--worker-threads %d is more than --workers %d; each thread carries at least "
                 "one call",
                 cfg->worker_threads, cfg->workers);
        return -EINVAL;
    }
    if (cfg->worker_threads == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->worker_threads = cpus < 1 ? 1 : cpus < cfg->workers ? (int)cpus : cfg->workers;
    }
    if (cfg->http_connect_timeout_ms > cfg->http_timeout_ms) {
        snprintf(err, err_size, "--http-connect-timeout-ms %d is larger than --http-timeout-ms %d",
                 cfg->http_connect_timeout_ms, cfg->http_timeout_ms);
        return -EINVAL;
    }
    if (cfg->jube_api_key[0] && cfg->jube_bearer_token[0]) {
        snprintf(err, err_size,
                 "--jube-api-key and --jube-bearer-token are both set; Jube takes "
                 "one of them");
        return -EINVAL;
    }
    if (!has_prefix(cfg->jube_url, "http://") && !has_prefix(cfg->jube_url, "https://")) {
        char shown[600];
        ja_config_redact_url(cfg->jube_url, shown, sizeof shown);
        snprintf(err, err_size, "--jube-url: '%s' does not start with http:// or https://", shown);
        return -EINVAL;
    }
    const struct {
        const char *flag;
        const char *value;
    } names[] = {
        {"--inbound-queue", cfg->inbound_queue},
        {"--outbound-exchange", cfg->outbound_exchange},
        {"--routing-key", cfg->routing_key},
        {"--outbound-queue", cfg->outbound_queue},
        {"--dead-letter-exchange", cfg->dead_letter_exchange},
        {"--dead-letter-queue", cfg->dead_letter_queue},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t len = strlen(names[i].value);
        if (len > NAME_MAX_BYTES) {
            snprintf(err, err_size, "%s: %zu bytes is longer than AMQP allows (%d)", names[i].flag,
                     len, NAME_MAX_BYTES);
            return -EINVAL;
        }
    }

    if (ja_order_key_parse_spec(cfg->order_by, &cfg->order_spec, err, err_size) != 0)
        return -EINVAL;

    rc = parse_brokers(cfg, err, err_size);
    if (rc != 0)
        return rc;
    if (cfg->queue_type == JA_QUEUE_AUTO)
        cfg->queue_type = cfg->broker_count > 1 ? JA_QUEUE_QUORUM : JA_QUEUE_CLASSIC;
    return 0;
}

int ja_config_parse(ja_config *cfg, int argc, char **argv, ja_config_action *action, char *err,
                    size_t err_size)
{
    memset(cfg, 0, sizeof *cfg);
    *action = JA_CONFIG_RUN;
    err[0] = '\0';
    value_source sources[OPTION_COUNT] = {FROM_DEFAULT};

    for (size_t i = 0; i < OPTION_COUNT; i++) {
        int rc = set_value(cfg, &options[i], options[i].default_value, false, err, err_size);
        if (rc != 0)
            return rc;
    }
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const char *value = getenv(options[i].env);
        if (value) {
            int rc = set_value(cfg, &options[i], value, true, err, err_size);
            if (rc != 0)
                return rc;
            sources[i] = FROM_ENVIRONMENT;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *action = JA_CONFIG_HELP;
            return 0;
        }
        if (strcmp(arg, "--version") == 0) {
            *action = JA_CONFIG_VERSION;
            return 0;
        }
        if (!has_prefix(arg, "--")) {
            snprintf(err, err_size, "unexpected argument '%s' (flags start with --; see --help)",
                     arg);
            return -EINVAL;
        }
        const char *name = arg + 2;
        const char *equals = strchr(name, '=');
        size_t name_len = equals ? (size_t)(equals - name) : strlen(name);
        const option *opt = find_option(name, name_len);
        if (!opt) {
            snprintf(err, err_size, "unknown flag '--%.*s' (see --help)", (int)name_len, name);
            return -EINVAL;
        }
        const char *value;
        if (equals) {
            value = equals + 1;
        } else if (opt->choices == switch_values) {
            value = "true";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, err_size, "--%s needs a value", opt->name);
            return -EINVAL;
        }
        int rc = set_value(cfg, opt, value, false, err, err_size);
        if (rc != 0)
            return rc;
        sources[opt - options] = FROM_FLAG;
    }
    int rc = validate(cfg, sources, err, err_size);
    if (rc == 0)
        resolve_derived(cfg);
    return rc;
}

void ja_config_free(ja_config *cfg)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        if (options[i].type == OPT_STRING) {
            char **slot = field_of(cfg, &options[i]);
            free(*slot);
            *slot = NULL;
        }
    }
    free(cfg->amqp_uri_storage);
    cfg->amqp_uri_storage = NULL;
}

size_t ja_config_option_count(void)
{
    return OPTION_COUNT;
}

void ja_config_option_at(size_t i, const char **flag, const char **env, bool *is_switch)
{
    *flag = options[i].name;
    *env = options[i].env;
    *is_switch = options[i].choices == switch_values;
}

void ja_config_print_help(FILE *out)
{
    fprintf(out, "Usage: jube-amqp [--flag value | --flag=value]...\n\n"
                 "Consumes transactions from RabbitMQ, invokes the Jube model named by each\n"
                 "message's EntityAnalysisModelGuid header over Jube's HTTP API, and publishes\n"
                 "the response (or a dead letter saying what went wrong).\n"
                 "A flag wins over its environment variable, which wins over the default.\n\n");
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option *opt = &options[i];
        char allowed[160];
        switch (opt->type) {
        case OPT_INT:
            snprintf(allowed, sizeof allowed, "%ld..%ld", opt->min, opt->max);
            break;
        case OPT_STRING:
            snprintf(allowed, sizeof allowed, "%s", "text");
            break;
        case OPT_CHOICE:
            describe_choices(opt, allowed, sizeof allowed);
            if (opt->choices == switch_values)
                snprintf(allowed, sizeof allowed, "%s", "false, true; the bare flag means true");
            break;
        }
        fprintf(out, "  --%s (env %s; %s; default '%s')\n      %s\n", opt->name, opt->env, allowed,
                opt->default_value, opt->help);
    }
    fprintf(out, "  --help     print this text\n  --version  print the version\n\n"
                 "Exit status: 0 after a clean shutdown, 1 on a fatal error or a shutdown that\n"
                 "timed out, 2 for a bad flag or environment variable.\n");
}

/* Writes the URIs with their passwords replaced, so they can be logged. */
static void redact_uri(const ja_config *cfg, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < cfg->broker_count && used < size; i++) {
        const struct amqp_connection_info *a = &cfg->brokers[i].amqp;
        const char *vhost = strcmp(a->vhost, "/") == 0 ? "%2F" : a->vhost;
        used += (size_t)snprintf(out + used, size - used, "%s%s://%s:***@%s:%d/%s", i ? "," : "",
                                 a->ssl ? "amqps" : "amqp", a->user, a->host, a->port, vhost);
    }
}

void ja_config_redact_url(const char *url, char *out, size_t size)
{
    const char *scheme_end = strstr(url, "://");
    const char *authority = scheme_end ? scheme_end + 3 : url;
    size_t authority_len = strcspn(authority, "/?#");
    const char *at = memrchr(authority, '@', authority_len);
    if (!at) {
        snprintf(out, size, "%s", url);
        return;
    }
    /* user:password keeps the user; a lone token before '@' is all secret. */
    const char *colon = memchr(authority, ':', (size_t)(at - authority));
    if (colon)
        snprintf(out, size, "%.*s:***%s", (int)(colon - url), url, at);
    else
        snprintf(out, size, "%.*s***%s", (int)(authority - url), url, at);
}

void ja_config_describe(const ja_config *cfg, char *out, size_t out_size)
{
    size_t used = 0;
    for (size_t i = 0; i < OPTION_COUNT && used < out_size; i++) {
        const option *opt = &options[i];
        char value[600];
        if (opt->offset == offsetof(ja_config, amqp_uri)) {
            redact_uri(cfg, value, sizeof value);
        } else if (opt->offset == offsetof(ja_config, jube_url)) {
            ja_config_redact_url(cfg->jube_url, value, sizeof value);
        } else if (opt->type == OPT_INT) {
            snprintf(value, sizeof value, "%d", *(const int *)const_field_of(cfg, opt));
        } else if (opt->type == OPT_CHOICE) {
            snprintf(value, sizeof value, "%s",
                     opt->choices[*(const int *)const_field_of(cfg, opt)]);
        } else {
            const char *s = *(char *const *)const_field_of(cfg, opt);
            snprintf(value, sizeof value, "%s", opt->secret ? (s[0] ? "(set)" : "(unset)") : s);
        }
        used += (size_t)snprintf(out + used, out_size - used, "%s%s=%s", i ? " " : "", opt->name,
                                 value);
    }
}
