#ifndef JA_METRICS_SERVER_H
#define JA_METRICS_SERVER_H

#include "service.h"

/* The HTTP endpoint for monitoring (--metrics-listen ADDR:PORT), served by libmicrohttpd on its
 * own thread:
 *   /metrics  Prometheus text format (see metrics.h)
 *   /healthz  200 while the process runs (liveness)
 *   /readyz   200 while both AMQP connections are up and Jube's last answer was not a failure
 *             of Jube (readiness); 503 with the reason otherwise */

typedef struct ja_metrics_server ja_metrics_server;

/* Returns NULL with the reason in err when the address cannot be served. */
ja_metrics_server *ja_metrics_server_start(ja_service *svc, const char *listen, char *err,
                                           size_t err_size);
void ja_metrics_server_stop(ja_metrics_server *server);

#endif
