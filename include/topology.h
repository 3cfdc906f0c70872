#ifndef JA_TOPOLOGY_H
#define JA_TOPOLOGY_H

#include "config.h"

#include <amqp.h>
#include <stddef.h>

/* Declares the queues and exchanges the service needs. Each is first declared passively: one
 * that exists is used as it is (Jube declares jubeInbound and jubeOutbound non-durable, and a
 * declaration with other flags would fail with 406 and close the channel). One that does not
 * exist is created durable. Both return 0, or -1 with the reason in err. */

/* The consumer's side: the inbound queue. */
int ja_topology_declare_inbound(amqp_connection_state_t conn, const ja_config *cfg, char *err,
                                size_t err_size);

/* The publisher's side: the outbound exchange (fanout), the optional outbound queue bound to
 * it, the dead-letter exchange (fanout) and the dead-letter queue bound to it. */
int ja_topology_declare_outbound(amqp_connection_state_t conn, const ja_config *cfg, char *err,
                                 size_t err_size);

#endif
