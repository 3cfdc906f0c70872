#ifndef JA_RECONNECT_H
#define JA_RECONNECT_H

#include "config.h"

#include <stdint.h>

/* The reconnection policy shared by the consumer and the publisher, across the nodes --amqp-uri
 * lists. Each connection walks the nodes in an order of its own (shuffled, so connections and
 * replicas spread over the cluster); when a node fails or refuses it moves to the next one at
 * once, and backs off (jittered, exponential from --reconnect-base-ms to --reconnect-max-ms) only
 * after every node was tried. One log line per change of state (lost, failing for a new reason,
 * connected again), never one per attempt. */

typedef struct {
    const char *who; /* "consumer" or "publisher", for the log */
    int order[JA_MAX_BROKERS];
    int count;         /* nodes */
    int position;      /* in order: the node to connect to next */
    int tried;         /* nodes tried in this round */
    unsigned failures; /* rounds in which every node failed, since a connection that lasted */
    bool failing;      /* since the last connection that lasted */
    uint64_t down_since_ms;
    uint64_t up_since_ms; /* of the current connection */
    char last_error[JA_MAX_BROKERS][256];
    uint64_t rng;
} ja_reconnect;

void ja_reconnect_init(ja_reconnect *r, const char *who, uint64_t seed, int node_count);

/* The broker (an index into cfg->brokers) to connect to now. */
static inline int ja_reconnect_node(const ja_reconnect *r)
{
    return r->order[r->position];
}

/* Records a failed attempt on the current node and moves to the next. Returns how long to wait
 * before the next attempt: 0 while nodes of this round are untried. */
uint64_t ja_reconnect_failed(ja_reconnect *r, const ja_config *cfg, const char *error);

/* Records a successful connection to the current node, logging how long the outage lasted if
 * there was one. */
void ja_reconnect_succeeded(ja_reconnect *r, const ja_config *cfg);

/* A connection that lasted at least this long ends a series of failures. */
#define JA_RECONNECT_STABLE_MS 5000

/* Records that the current connection was lost, and moves to the next node. Returns how long to
 * wait before connecting again: 0 after a connection that lasted; otherwise the connection
 * counts as a failed attempt, so that one that keeps dying right after it was made is not
 * retried in a tight loop. */
uint64_t ja_reconnect_lost(ja_reconnect *r, const ja_config *cfg, uint64_t now);

#endif
