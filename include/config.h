#ifndef JA_CONFIG_H
#define JA_CONFIG_H

#include "order_key.h"

#include <amqp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* Every setting of the service. One table in config.c drives the command-line flags, the
 * environment variables, the --help text and the validation, so they can never disagree. */

typedef enum { JA_QUEUE_AUTO = 0, JA_QUEUE_CLASSIC = 1, JA_QUEUE_QUORUM = 2 } ja_queue_type;
typedef enum { JA_CONCURRENCY_ADAPTIVE = 0, JA_CONCURRENCY_FIXED = 1 } ja_concurrency_mode;

/* The most brokers (cluster nodes) one --amqp-uri may list. */
#define JA_MAX_BROKERS 16

typedef struct ja_config {
    char *amqp_uri;
    char *amqp_uri_file; /* when set, amqp_uri is read from it (Docker and Kubernetes secrets) */
    char *tls_ca;        /* "" = the system CA bundle */
    char *tls_cert;      /* client certificate for amqps://, or "" */
    char *tls_key;       /* its private key */
    int tls_insecure;    /* 1 = no certificate or host-name checks (tests only) */
    int heartbeat_s;
    int connect_timeout_ms; /* per attempt, per node: TCP, TLS and the AMQP handshake */
    int reconnect_base_ms;
    int reconnect_max_ms;

    char *jube_url;
    char *jube_api_key;
    char *jube_api_key_file;
    char *jube_bearer_token;
    char *jube_bearer_token_file;
    int http_timeout_ms;
    int http_connect_timeout_ms;

    int workers;        /* Jube calls under way at once (the upper bound with adaptive) */
    int concurrency;    /* ja_concurrency_mode */
    int worker_threads; /* threads that carry them; 0 in the flag means one per CPU */
    int prefetch;
    int ack_linger_ms;
    int ring_size;
    int max_body_bytes;
    int max_attempts;
    int retry_base_ms;
    int retry_max_ms;
    int max_hold_ms;
    int delivery_limit; /* the inbound queue's, 0 = none (delivery_limit.h) */
    int implicit_async_timeout_ms;
    int confirm_timeout_ms;
    int unroutable_responses; /* 0 = hold, 1 = ack */
    char *order_by;           /* --order-by as given; parsed into order_spec */
    ja_order_spec order_spec;
    int order_key_missing;      /* 0 = process unordered, 1 = dead-letter */
    int single_active_consumer; /* 1 = the inbound queue has x-single-active-consumer */

    char *inbound_queue;
    char *outbound_exchange;
    char *routing_key;
    char *outbound_queue;
    char *dead_letter_exchange;
    char *dead_letter_queue;
    int queue_type; /* ja_queue_type; never JA_QUEUE_AUTO after parsing */

    char *metrics_listen; /* "ADDR:PORT" of /metrics, /healthz and /readyz, or "" for none */
    int log_level;        /* ja_log_level */
    int log_format;       /* ja_log_format */
    int shutdown_timeout_s;

    /* Derived from amqp_uri, a comma-separated list of the nodes of one cluster; the strings
     * point into amqp_uri_storage. brokers[i].name is "host:port", for logs and metrics. */
    struct {
        struct amqp_connection_info amqp;
        char name[280];
    } brokers[JA_MAX_BROKERS];
    int broker_count;
    char *amqp_uri_storage;

    /* Resolved once from the settings above (ja_config_parse), so that no thread derives them
     * by hand. */
    bool ordered;           /* --order-by was given */
    size_t ring_capacity;   /* --ring-size, or the prefetch when 0 */
    uint64_t nap_linger_us; /* --ack-linger-ms, or 0 with --order-by: there a key's next
                               message waits for its predecessor's ack (nap.h) */
    /* The time-outs that follow the heartbeat. */
    int silent_broker_ms; /* two heartbeats: a broker silent this long (to a read, a write or
                             TCP) is gone */
    int idle_wait_ms;     /* half a heartbeat: the longest a connection's owner sleeps, so that
                             rabbitmq-c sends heartbeats in time */
    int stuck_ms;         /* the watchdog's limit for a thread inside one rabbitmq-c call: two
                             heartbeats and a second (watchdog.h) */
} ja_config;

typedef enum {
    JA_CONFIG_RUN,     /* start the service */
    JA_CONFIG_HELP,    /* --help was given */
    JA_CONFIG_VERSION, /* --version was given */
} ja_config_action;

/* Fills cfg from defaults, then the environment, then argv (flags win). Returns 0, or -EINVAL
 * with a message for a person in err that names the flag or variable, the value and what is
 * allowed. The caller frees cfg with ja_config_free in both cases. */
int ja_config_parse(ja_config *cfg, int argc, char **argv, ja_config_action *action, char *err,
                    size_t err_size);

void ja_config_free(ja_config *cfg);

/* The option table, for the test that tries every option: option i's flag (without "--"), its
 * environment variable, and whether it is a switch ("--flag" alone means true). */
size_t ja_config_option_count(void);
void ja_config_option_at(size_t i, const char **flag, const char **env, bool *is_switch);

/* The --help text, generated from the option table. */
void ja_config_print_help(FILE *out);

/* One line with every effective setting; passwords and secrets are redacted. */
void ja_config_describe(const ja_config *cfg, char *out, size_t out_size);

/* Writes url with the password of its user information (scheme://user:password@host) replaced,
 * so it can be logged. */
void ja_config_redact_url(const char *url, char *out, size_t size);

#endif
