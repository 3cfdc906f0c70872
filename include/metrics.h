#ifndef JA_METRICS_H
#define JA_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the service counts, for Prometheus (--metrics-listen). One process-wide set of relaxed
 * atomic counters: each thread adds to them on its own path, and the metrics server reads them
 * when scraped. Names and meanings are in README.md ("Metrics"). */

/* Why a message was dead-lettered, as a bounded set of label values. */
typedef enum {
    JA_DL_MISSING_MODEL_GUID,
    JA_DL_INVALID_MODEL_GUID,
    JA_DL_EMPTY_BODY,
    JA_DL_BODY_TOO_LARGE,
    JA_DL_INVALID_JSON,
    JA_DL_HTTP_4XX,
    JA_DL_HTTP_5XX,
    JA_DL_RESPONSE_TOO_LARGE,
    JA_DL_UNPUBLISHABLE,
    JA_DL_IMPLICIT_ASYNC_INCOMPLETE,
    JA_DL_ORDER_KEY_MISSING,
    JA_DL_DELIVERY_LIMIT,
    JA_DL_OTHER,
    JA_DL_REASONS
} ja_dead_letter_reason;

/* Status classes of Jube's answers; "error" is no answer at all. */
typedef enum {
    JA_HTTP_2XX,
    JA_HTTP_3XX,
    JA_HTTP_4XX,
    JA_HTTP_5XX,
    JA_HTTP_ERROR,
    JA_HTTP_CLASSES
} ja_http_class;

#define JA_HISTOGRAM_BUCKETS 14

typedef struct {
    atomic_ulong buckets[JA_HISTOGRAM_BUCKETS]; /* not cumulative; summed when rendered */
    atomic_ulong count;
    atomic_ulong sum_us;
} ja_histogram;

typedef enum { JA_CONN_CONSUMER, JA_CONN_PUBLISHER, JA_CONNECTIONS } ja_connection_role;

/* What Implicit Async's Callback endpoint answered one poll. */
typedef enum {
    JA_CALLBACK_ANSWERED,  /* 200: the full answer */
    JA_CALLBACK_NOT_READY, /* 408 */
    JA_CALLBACK_NOT_FOUND, /* 404: callbacks off, expired or collected already */
    JA_CALLBACK_FAILED,    /* anything else, or no answer */
    JA_CALLBACK_OUTCOMES
} ja_callback_outcome;

/* Where a publish goes, as a label (the order of ja_publish_target). */
enum { JA_PUBLISH_TARGETS = 4 };

typedef struct {
    atomic_ulong consumed;
    atomic_ulong published;
    atomic_ulong dead_lettered[JA_DL_REASONS];
    atomic_ulong requeued;
    atomic_ulong renewed;       /* published again to the inbound queue near its delivery limit */
    atomic_ulong rejected;      /* nothing of it could be published */
    atomic_ulong publish_nacks; /* basic.nack from the broker */
    atomic_ulong unroutable[JA_PUBLISH_TARGETS]; /* returned: no queue took the publish */
    atomic_long unroutable_held;                 /* publishes held for want of a queue */
    atomic_ulong retries;
    atomic_ulong placeholders;                    /* Implicit Async placeholders */
    atomic_ulong callbacks[JA_CALLBACK_OUTCOMES]; /* Callback polls by what they got */
    atomic_ulong http_responses[JA_HTTP_CLASSES];
    ja_histogram jube_seconds;
    ja_histogram end_to_end_seconds;
    atomic_long in_flight;
    atomic_long unconfirmed;
    atomic_ulong reconnects[JA_CONNECTIONS];
    atomic_bool connected[JA_CONNECTIONS];
    atomic_int node[JA_CONNECTIONS]; /* the broker each connection is on (index into the list) */
    atomic_bool blocked;
    /* --order-by (set by the consumer thread) */
    atomic_long order_keys_active;     /* keys with a message being processed */
    atomic_long order_waiting;         /* messages waiting behind one of their key */
    atomic_ulong order_oldest_wait_ms; /* when the longest-waiting one arrived; 0: none */
    atomic_ulong order_unordered[4];   /* by ja_key_status (the first, found, unused) */
    atomic_ulong order_priority;       /* ordered messages that carried a priority */
    /* --concurrency (set by the worker threads through jube_limit.c) */
    atomic_long jube_limit;            /* calls to Jube that may be under way */
    atomic_ulong jube_rtt_us;          /* the last judged window's mean round trip */
    atomic_ulong jube_rtt_baseline_us; /* the round trip taken as unloaded */
    atomic_ulong limit_cuts[2];        /* decreases by ja_limit_cut */
} ja_metrics;

extern ja_metrics ja_stats;

static inline void ja_metrics_count(atomic_ulong *counter)
{
    atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

void ja_metrics_observe(ja_histogram *h, uint64_t microseconds);

ja_dead_letter_reason ja_metrics_dead_letter_reason(const char *failure_code);
ja_http_class ja_metrics_http_class(long status, bool answered);

/* Names the nodes (host:port) for the node label; the strings must outlive the metrics. */
void ja_metrics_set_nodes(const char *const *names, int count);

/* Writes the Prometheus text exposition (format 0.0.4) of every metric, with ring_depth read by
 * the caller. Returns the length written, or the length needed when it does not fit. */
size_t ja_metrics_render(char *out, size_t size, long ring_depth);

#endif
