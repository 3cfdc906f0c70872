/* jube-amqp: the AMQP front door of the Jube fraud and AML engine.
 *
 * The main thread reads the configuration, starts the consumer, the workers and the publisher
 * (service.h shows how a message travels between them), then waits for SIGTERM or SIGINT and
 * runs the graceful shutdown. */

#include "clock.h"
#include "concurrency_limit.h"
#include "config.h"
#include "consumer.h"
#include "log.h"
#include "metrics_server.h"
#include "publisher.h"
#include "service.h"
#include "worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The threads and their state. Every thread's state is made before the first thread starts
 * (oom.h): a machine without the memory fails at start-up, not one thread short later. */
typedef struct {
    ja_consumer *consumer;
    ja_publisher *publisher;
    ja_worker **workers;
    int worker_count;
    pthread_t consumer_thread;
    pthread_t publisher_thread;
    pthread_t *worker_threads;
    int workers_started;
} threads;

/* Returns 0 or -ENOMEM. */
static int make_threads(ja_service *svc, threads *t)
{
    const ja_config *cfg = svc->cfg;
    t->worker_count = cfg->worker_threads;
    t->workers = calloc((size_t)t->worker_count, sizeof *t->workers);
    t->worker_threads = calloc((size_t)t->worker_count, sizeof *t->worker_threads);
    t->consumer = ja_consumer_new(svc);
    t->publisher = ja_publisher_new(svc);
    if (!t->workers || !t->worker_threads || !t->consumer || !t->publisher)
        return -ENOMEM;
    for (int i = 0; i < t->worker_count; i++) {
        /* --workers calls shared out as evenly as the thread count allows, as the limit is. */
        int calls = ja_concurrency_limit_share(cfg->workers, i, cfg->worker_threads);
        t->workers[i] = ja_worker_new(svc, i, calls);
        if (!t->workers[i])
            return -ENOMEM;
    }
    return 0;
}

/* Returns 0 or -errno; on an error the process ends (exit status 1), threads started or not. */
static int start_threads(threads *t)
{
    int rc = pthread_create(&t->publisher_thread, NULL, ja_publisher_run, t->publisher);
    for (int i = 0; rc == 0 && i < t->worker_count; i++) {
        rc = pthread_create(&t->worker_threads[i], NULL, ja_worker_run, t->workers[i]);
        if (rc == 0)
            t->workers_started++;
    }
    if (rc == 0)
        rc = pthread_create(&t->consumer_thread, NULL, ja_consumer_run, t->consumer);
    return -rc;
}

static void join_threads(ja_service *svc, threads *t)
{
    pthread_join(t->consumer_thread, NULL);
    atomic_store(&svc->threads_exit, true);
    ja_service_wake_sleepers(svc);
    ja_inbox_wake(&svc->to_publisher);
    for (int i = 0; i < t->workers_started; i++)
        pthread_join(t->worker_threads[i], NULL);
    pthread_join(t->publisher_thread, NULL);
}

static void free_threads(threads *t)
{
    for (int i = 0; t->workers && i < t->worker_count; i++)
        ja_worker_free(t->workers[i]);
    free(t->workers);
    free(t->worker_threads);
    ja_consumer_free(t->consumer);
    ja_publisher_free(t->publisher);
}

/* Waits for the first SIGTERM or SIGINT, then for the consumer to settle everything. Returns
 * true when the shutdown finished in time; false on a second signal or the time-out. */
static bool wait_for_shutdown(ja_service *svc, const sigset_t *signals)
{
    /* The main thread also watches the connections' owners (watchdog.h), once a second. */
    uint64_t stuck_limit_ms = (uint64_t)svc->cfg->stuck_ms;
    struct timespec second = {.tv_sec = 1};
    int sig;
    while ((sig = sigtimedwait(signals, NULL, &second)) < 0) {
        for (int i = 0; i < JA_CONNECTIONS; i++)
            ja_watchdog_check(&svc->watch[i], ja_clock_ms(), stuck_limit_ms);
    }
    int code = atomic_load(&svc->exit_code);
    if (code != 0) {
        ja_log_error("stopping: the service cannot run this way (exit status %d)", code);
        _exit(code); /* unacknowledged deliveries return to the queue */
    }
    ja_log_info("received %s: stopping consumption and finishing the messages in flight "
                "(at most %d s)",
                strsignal(sig), svc->cfg->shutdown_timeout_s);
    /* A quarter of the time (at most 5 s) is kept for what cannot finish to be settled. */
    uint64_t timeout_ms = (uint64_t)svc->cfg->shutdown_timeout_s * 1000u;
    uint64_t reserve_ms = timeout_ms / 4 < 5000 ? timeout_ms / 4 : 5000;
    atomic_store(&svc->settle_by_ms, ja_clock_ms() + timeout_ms - reserve_ms);
    atomic_store(&svc->stopping, true);
    ja_service_wake_sleepers(svc);
    ja_inbox_wake(&svc->to_consumer);

    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += svc->cfg->shutdown_timeout_s;
    while (!atomic_load(&svc->consumer_done)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > deadline.tv_sec ||
            (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
            ja_log_error("shutdown did not finish within %d s; exiting now (unacknowledged "
                         "messages return to the queue)",
                         svc->cfg->shutdown_timeout_s);
            return false;
        }
        /* The consumer finishes on its own; look again every 50 ms, or at once on a signal. */
        struct timespec tick = {.tv_nsec = 50 * 1000000L};
        if (sigtimedwait(signals, NULL, &tick) > 0) {
            ja_log_error("second signal: exiting now (unacknowledged messages return to the "
                         "queue)");
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    ja_config cfg;
    ja_config_action action;
    char err[1024];
    if (ja_config_parse(&cfg, argc, argv, &action, err, sizeof err) != 0) {
        fprintf(stderr, "jube-amqp: %s\n", err);
        ja_config_free(&cfg);
        return JA_EXIT_BAD_CONFIG;
    }
    if (action == JA_CONFIG_HELP) {
        ja_config_print_help(stdout);
        ja_config_free(&cfg);
        return 0;
    }
    if (action == JA_CONFIG_VERSION) {
        printf("jube-amqp %s (rabbitmq-c %s, %s)\n", JA_VERSION, amqp_version(), curl_version());
        ja_config_free(&cfg);
        return 0;
    }
    ja_log_threshold = (ja_log_level)cfg.log_level;
    ja_log_output_format = (ja_log_format)cfg.log_format;
    char described[4096];
    ja_config_describe(&cfg, described, sizeof described);
    ja_log_info("jube-amqp %s starting: %s", JA_VERSION, described);
    if (cfg.tls_insecure)
        ja_log_warn("--tls-insecure: the certificates and host names of the broker and of Jube "
                    "are NOT verified; anyone on the network path can read and alter the "
                    "traffic. Use this for tests only.");

    /* Before any thread exists: libcurl's global state, no SIGPIPE from a dead socket, and
     * the shutdown signals blocked everywhere so only the main thread receives them. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ja_log_error("libcurl failed to initialise");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);

    const char *nodes[JA_MAX_BROKERS];
    for (int i = 0; i < cfg.broker_count; i++)
        nodes[i] = cfg.brokers[i].name;
    ja_metrics_set_nodes(nodes, cfg.broker_count);

    ja_service svc;
    int rc = ja_service_init(&svc, &cfg);
    threads t = {0};
    if (rc == 0)
        rc = make_threads(&svc, &t);
    if (rc == 0)
        rc = start_threads(&t);
    if (rc != 0) {
        ja_log_error("could not start: %s", strerror(-rc));
        return 1;
    }
    ja_metrics_server *metrics = NULL;
    if (cfg.metrics_listen[0]) {
        metrics = ja_metrics_server_start(&svc, cfg.metrics_listen, err, sizeof err);
        if (!metrics) {
            ja_log_error("%s", err);
            return 1;
        }
        ja_log_info("serving /metrics, /healthz and /readyz on %s", cfg.metrics_listen);
    }
    if (!wait_for_shutdown(&svc, &signals))
        _exit(1); /* leave the rest to the broker: unacked deliveries are redelivered */

    join_threads(&svc, &t);
    free_threads(&t);
    ja_metrics_server_stop(metrics);
    ja_service_destroy(&svc);
    curl_global_cleanup();
    ja_config_free(&cfg);
    ja_log_info("stopped cleanly");
    return 0;
}
