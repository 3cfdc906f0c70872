#ifndef JA_TOPOLOGY_H
#define JA_TOPOLOGY_H

#include "config.h"

#include <amqp.h>
#include <stddef.h>

/* Declares the queues and exchanges the service needs. Each is first declared passively: one
 * that exists is used as it is (Jube declares jubeInbound and jubeOutbound non-durable, and a
 * declaration with other flags would fail with 406 and close the channel). One that does not
 * exist is created durable. Several replicas may declare at once: whoever loses a race finds the
 * other's queue and uses it. Both say what the caller does next, with the reason in err. */
typedef enum {
    JA_TOPOLOGY_READY, /* declared: consume, or publish */
    JA_TOPOLOGY_RETRY, /* the connection or the channel failed: connect again and declare again */
    /* The dead-letter exchange exists with a type other than fanout: the service's dead letters
     * (routing key = the inbound queue's name) would reach no queue. A restart cannot mend it. */
    JA_TOPOLOGY_WRONG_TYPE,
    /* --single-active-consumer, and the inbound queue exists without x-single-active-consumer;
     * or the broker refuses the service's user a declaration (403 ACCESS_REFUSED). */
    JA_TOPOLOGY_UNUSABLE,
} ja_topology_result;

/* The consumer's side: the inbound queue. */
ja_topology_result ja_topology_declare_inbound(amqp_connection_state_t conn, amqp_channel_t channel,
                                               const ja_config *cfg, char *err, size_t err_size);

/* The publisher's side: the outbound exchange (fanout), the optional outbound queue bound to
 * it, the dead-letter exchange (fanout, checked) and the dead-letter queue bound to it. */
ja_topology_result ja_topology_declare_outbound(amqp_connection_state_t conn,
                                                amqp_channel_t channel, const ja_config *cfg,
                                                char *err, size_t err_size);

#endif
