#include "metrics.h"

#include "clock.h"
#include "job.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ja_metrics ja_stats;

static const char *const *node_names;
static int node_count;

void ja_metrics_set_nodes(const char *const *names, int count)
{
    node_names = names;
    node_count = count;
}

/* Upper bounds in seconds: from a fast local Jube (under a millisecond) to a time-out. */
static const double bucket_bounds[JA_HISTOGRAM_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

static const char *const reason_labels[JA_DL_REASONS] = {"missing_model_guid",
                                                         "invalid_model_guid",
                                                         "empty_body",
                                                         "body_too_large",
                                                         "invalid_json",
                                                         "http_4xx",
                                                         "http_5xx",
                                                         "response_too_large",
                                                         "unpublishable",
                                                         "implicit_async_incomplete",
                                                         "order_key_missing",
                                                         "delivery_limit",
                                                         "other"};
static const char *const callback_labels[JA_CALLBACK_OUTCOMES] = {"answered", "not_ready",
                                                                  "not_found", "failed"};
static const char *const target_labels[JA_PUBLISH_TARGETS] = {"outbound", "reply_to", "dead_letter",
                                                              "inbound"};

static const char *const class_labels[JA_HTTP_CLASSES] = {"2xx", "3xx", "4xx", "5xx", "error"};
static const char *const unordered_labels[4] = {"found", "missing", "not_scalar", "too_long"};
static const char *const connection_labels[JA_CONNECTIONS] = {"consumer", "publisher"};

void ja_metrics_observe(ja_histogram *h, uint64_t microseconds)
{
    double seconds = (double)microseconds / 1e6;
    for (int i = 0; i < JA_HISTOGRAM_BUCKETS; i++) {
        if (seconds <= bucket_bounds[i]) {
            atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
            break;
        }
    }
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, microseconds, memory_order_relaxed);
}

ja_dead_letter_reason ja_metrics_dead_letter_reason(const char *code)
{
    for (int i = 0; i < JA_DL_REASONS; i++)
        if (strcmp(code, reason_labels[i]) == 0)
            return (ja_dead_letter_reason)i;
    if (strncmp(code, "http_4", 6) == 0)
        return JA_DL_HTTP_4XX;
    if (strncmp(code, "http_5", 6) == 0)
        return JA_DL_HTTP_5XX;
    return JA_DL_OTHER;
}

ja_http_class ja_metrics_http_class(long status, bool answered)
{
    if (!answered || status < 200 || status > 599)
        return JA_HTTP_ERROR;
    return (ja_http_class)(status / 100 - 2);
}

typedef struct {
    char *out;
    size_t size, len;
} writer;

static void put(writer *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(writer *w, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(w->len < w->size ? w->out + w->len : NULL,
                      w->len < w->size ? w->size - w->len : 0, fmt, args);
    va_end(args);
    if (n > 0)
        w->len += (size_t)n;
}

static unsigned long get(atomic_ulong *counter)
{
    return atomic_load_explicit(counter, memory_order_relaxed);
}

static void header(writer *w, const char *name, const char *type, const char *help)
{
    put(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void histogram(writer *w, const char *name, const char *help, ja_histogram *h)
{
    header(w, name, "histogram", help);
    unsigned long cumulative = 0;
    for (int i = 0; i < JA_HISTOGRAM_BUCKETS; i++) {
        cumulative += get(&h->buckets[i]);
        put(w, "%s_bucket{le=\"%g\"} %lu\n", name, bucket_bounds[i], cumulative);
    }
    put(w, "%s_bucket{le=\"+Inf\"} %lu\n%s_sum %.6f\n%s_count %lu\n", name, get(&h->count), name,
        (double)get(&h->sum_us) / 1e6, name, get(&h->count));
}

size_t ja_metrics_render(char *out, size_t size, long ring_depth)
{
    writer w = {.out = out, .size = size};
    ja_metrics *m = &ja_stats;
    header(&w, "jube_amqp_build_info", "gauge", "Version of jube-amqp; always 1.");
    put(&w, "jube_amqp_build_info{version=\"%s\"} 1\n", JA_VERSION);

    header(&w, "jube_amqp_messages_consumed_total", "counter", "Deliveries taken from the queue.");
    put(&w, "jube_amqp_messages_consumed_total %lu\n", get(&m->consumed));
    header(&w, "jube_amqp_messages_published_total", "counter",
           "Responses confirmed by the broker on the outbound exchange.");
    put(&w, "jube_amqp_messages_published_total %lu\n", get(&m->published));
    header(&w, "jube_amqp_messages_dead_lettered_total", "counter",
           "Dead letters confirmed by the broker, by reason.");
    for (int i = 0; i < JA_DL_REASONS; i++)
        put(&w, "jube_amqp_messages_dead_lettered_total{reason=\"%s\"} %lu\n", reason_labels[i],
            get(&m->dead_lettered[i]));
    header(&w, "jube_amqp_messages_requeued_total", "counter",
           "Deliveries given back to the queue (shutdown, or held too long while Jube was down).");
    put(&w, "jube_amqp_messages_requeued_total %lu\n", get(&m->requeued));
    header(&w, "jube_amqp_messages_renewed_total", "counter",
           "Deliveries published again to the inbound queue's tail near its delivery limit.");
    put(&w, "jube_amqp_messages_renewed_total %lu\n", get(&m->renewed));
    header(&w, "jube_amqp_messages_rejected_total", "counter",
           "Deliveries rejected because not even a bare dead letter of them could be published.");
    put(&w, "jube_amqp_messages_rejected_total %lu\n", get(&m->rejected));
    header(&w, "jube_amqp_publish_nacks_total", "counter",
           "Publishes the broker refused (basic.nack); each is published again after a backoff.");
    put(&w, "jube_amqp_publish_nacks_total %lu\n", get(&m->publish_nacks));
    header(&w, "jube_amqp_unroutable_publishes_total", "counter",
           "Publishes the broker returned because no queue took them, by target.");
    for (int i = 0; i < JA_PUBLISH_TARGETS; i++)
        put(&w, "jube_amqp_unroutable_publishes_total{target=\"%s\"} %lu\n", target_labels[i],
            get(&m->unroutable[i]));
    header(&w, "jube_amqp_unroutable_held", "gauge",
           "Responses and dead letters held because no queue took them; retried with backoff.");
    put(&w, "jube_amqp_unroutable_held %ld\n", atomic_load(&m->unroutable_held));
    header(&w, "jube_amqp_jube_retries_total", "counter",
           "Calls to Jube that repeated an earlier call for the same message.");
    put(&w, "jube_amqp_jube_retries_total %lu\n", get(&m->retries));
    header(&w, "jube_amqp_implicit_async_placeholders_total", "counter",
           "Jube answers that were Implicit Async placeholders (the full answer comes from the "
           "Callback endpoint).");
    put(&w, "jube_amqp_implicit_async_placeholders_total %lu\n", get(&m->placeholders));
    header(&w, "jube_amqp_implicit_async_callbacks_total", "counter",
           "Polls of Jube's Callback endpoint, by what they got.");
    for (int i = 0; i < JA_CALLBACK_OUTCOMES; i++)
        put(&w, "jube_amqp_implicit_async_callbacks_total{outcome=\"%s\"} %lu\n",
            callback_labels[i], get(&m->callbacks[i]));
    header(&w, "jube_amqp_jube_responses_total", "counter",
           "Answers from Jube by status class; error means no answer.");
    for (int i = 0; i < JA_HTTP_CLASSES; i++)
        put(&w, "jube_amqp_jube_responses_total{class=\"%s\"} %lu\n", class_labels[i],
            get(&m->http_responses[i]));
    histogram(&w, "jube_amqp_jube_request_duration_seconds", "Time of one call to Jube.",
              &m->jube_seconds);
    histogram(&w, "jube_amqp_end_to_end_seconds",
              "From delivery to the broker's confirm of its outcome.", &m->end_to_end_seconds);

    header(&w, "jube_amqp_in_flight_messages", "gauge", "Deliveries taken and not yet settled.");
    put(&w, "jube_amqp_in_flight_messages %ld\n", atomic_load(&m->in_flight));
    header(&w, "jube_amqp_ring_depth", "gauge", "Deliveries waiting for a worker.");
    put(&w, "jube_amqp_ring_depth %ld\n", ring_depth);
    header(&w, "jube_amqp_unconfirmed_publishes", "gauge",
           "Publishes the broker has not confirmed yet.");
    put(&w, "jube_amqp_unconfirmed_publishes %ld\n", atomic_load(&m->unconfirmed));
    header(&w, "jube_amqp_reconnects_total", "counter",
           "Connections made again after one was lost, by connection.");
    for (int i = 0; i < JA_CONNECTIONS; i++)
        put(&w, "jube_amqp_reconnects_total{connection=\"%s\"} %lu\n", connection_labels[i],
            get(&m->reconnects[i]));
    header(&w, "jube_amqp_connection_up", "gauge",
           "1 while the AMQP connection is open on that node (one series per listed node).");
    for (int i = 0; i < JA_CONNECTIONS; i++) {
        bool up = atomic_load(&m->connected[i]);
        int on = atomic_load(&m->node[i]);
        for (int n = 0; n < (node_count > 0 ? node_count : 1); n++)
            put(&w, "jube_amqp_connection_up{connection=\"%s\",node=\"%s\"} %d\n",
                connection_labels[i], node_count > 0 ? node_names[n] : "", up && on == n ? 1 : 0);
    }
    header(&w, "jube_amqp_order_keys_active", "gauge",
           "With --order-by: keys with a message being processed (called, retried or being "
           "published); at most one per key.");
    put(&w, "jube_amqp_order_keys_active %ld\n", atomic_load(&m->order_keys_active));
    header(&w, "jube_amqp_order_waiting_messages", "gauge",
           "With --order-by: messages waiting in the service behind an earlier message of their "
           "key.");
    put(&w, "jube_amqp_order_waiting_messages %ld\n", atomic_load(&m->order_waiting));
    header(&w, "jube_amqp_order_longest_wait_seconds", "gauge",
           "With --order-by: how long the longest-waiting of those has waited (looked at once a "
           "second).");
    uint64_t oldest = atomic_load(&m->order_oldest_wait_ms);
    uint64_t now = ja_clock_ms();
    put(&w, "jube_amqp_order_longest_wait_seconds %.3f\n",
        oldest && atomic_load(&m->order_waiting) > 0 && now > oldest
            ? (double)(now - oldest) / 1000.0
            : 0.0);
    header(&w, "jube_amqp_order_priority_messages_total", "counter",
           "With --order-by: ordered messages that carried a priority (kept in delivery order).");
    put(&w, "jube_amqp_order_priority_messages_total %lu\n", get(&m->order_priority));
    header(&w, "jube_amqp_order_unordered_total", "counter",
           "With --order-by: messages without a usable key, by why (processed unordered, or "
           "dead-lettered with --order-key-missing dead-letter).");
    for (int i = 1; i < 4; i++)
        put(&w, "jube_amqp_order_unordered_total{reason=\"%s\"} %lu\n", unordered_labels[i],
            get(&m->order_unordered[i]));
    header(&w, "jube_amqp_jube_concurrency_limit", "gauge",
           "Calls to Jube that may be under way at once: --workers with --concurrency fixed, "
           "found from Jube's answers with adaptive.");
    put(&w, "jube_amqp_jube_concurrency_limit %ld\n", atomic_load(&m->jube_limit));
    header(&w, "jube_amqp_jube_round_trip_seconds", "gauge",
           "With --concurrency adaptive: the mean round trip of the last judged window of Jube's "
           "answers.");
    put(&w, "jube_amqp_jube_round_trip_seconds %.6f\n", (double)get(&m->jube_rtt_us) / 1e6);
    header(&w, "jube_amqp_jube_round_trip_baseline_seconds", "gauge",
           "With --concurrency adaptive: the round trip taken as Jube's unloaded one (the lowest "
           "recent window mean).");
    put(&w, "jube_amqp_jube_round_trip_baseline_seconds %.6f\n",
        (double)get(&m->jube_rtt_baseline_us) / 1e6);
    header(&w, "jube_amqp_jube_concurrency_decreases_total", "counter",
           "With --concurrency adaptive: decreases of the limit, by cause (overload: 429, 503, "
           "502, 504, 408 or no answer; latency: round trips well above the baseline).");
    put(&w, "jube_amqp_jube_concurrency_decreases_total{cause=\"overload\"} %lu\n",
        get(&m->limit_cuts[0]));
    put(&w, "jube_amqp_jube_concurrency_decreases_total{cause=\"latency\"} %lu\n",
        get(&m->limit_cuts[1]));
    header(&w, "jube_amqp_publishing_blocked", "gauge",
           "1 while the broker blocks publishing (a resource alarm).");
    put(&w, "jube_amqp_publishing_blocked %d\n", atomic_load(&m->blocked) ? 1 : 0);
    return w.len;
}
