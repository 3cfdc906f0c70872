#ifndef JA_SCENARIO_H
#define JA_SCENARIO_H

/* A fault scenario: a stream of transactions with a fault in the middle. Afterwards every id
 * must have reached the outbound queue at least once, with no more duplicates than the prefetch
 * window, nothing dead-lettered and nothing left in the inbound queue. Used by the fault tests
 * on one broker and by the cluster tests.
 *
 * Duplicates come in two kinds, told apart by the response's body (the stand-in gives every
 * answer a fresh EntityAnalysisModelInstanceEntryGuid): a second answer to the same id means the
 * service took the delivery again and called Jube again; the same answer, byte for byte, stored
 * twice means one publish reached the queue twice (sent again after a lost connection, or stored
 * twice by the broker). */

#include "harness.h"

enum { STREAM = 10000, PREFETCH = 256, MAX_INSTANCES = 3 };

typedef struct scenario {
    const char *name;
    topology_names t;
    stub_process stub;
    service_process svc; /* the first instance */
    service_process others[MAX_INSTANCES - 1];
    int instances;
    const char *const *service_args;
    int metrics_port; /* of the first instance, when it serves metrics (cluster tests) */
} scenario;

typedef void (*fault_fn)(scenario *s);

typedef struct {
    const char *const *stub_args;
    const char *const *service_args;
    int instances;     /* 1 unless more */
    bool with_metrics; /* the first instance serves /metrics on s->metrics_port */
    fault_fn prepare;  /* after the topology is cleared, before the service starts */
    /* Duplicates allowed per instance, in prefetch windows: 1 unless more (see test_cluster.c). */
    int windows;
    /* Copies of the same answer allowed, when more than those windows (see test_cluster.c). */
    long stored_again_max;
    /* A fault long enough for the stream to end before it does (a rolling restart on a busy
     * machine): then "consuming again" is not looked for after it; the service consumed between
     * its parts, and everything must still arrive. */
    bool fault_may_outlast_stream;
} scenario_options;

void run_scenario(const char *name, const char *const *stub_args, const char *const *service_args,
                  fault_fn fault);
void run_scenario_with(const char *name, const scenario_options *options, fault_fn fault);

/* What arrived beyond one response per id. */
typedef struct {
    long duplicates;     /* every response beyond the first of its id */
    long answered_again; /* of them, a second answer from Jube */
    long stored_again;   /* of them, the same answer once more */
} arrivals;

/* Drains the outbound queue and checks every id in [0, count) is there. */
arrivals check_every_id_arrived(const scenario *s, long count);

#endif
