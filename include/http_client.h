#ifndef JA_HTTP_CLIENT_H
#define JA_HTTP_CLIENT_H

#include "config.h"
#include "job.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

/* Calls Jube's invoke endpoint. Each worker owns one client: one long-lived libcurl handle whose
 * keep-alive connection is reused for every request, never shared with another thread. */

typedef struct ja_http_client ja_http_client;

/* Jube's answers are small; a larger one is treated as a failure of Jube. */
#define JA_HTTP_MAX_RESPONSE_BYTES (16u * 1024u * 1024u)

typedef struct {
    bool transport_ok;       /* an HTTP status line arrived */
    bool response_too_large; /* the body passed JA_HTTP_MAX_RESPONSE_BYTES and was cut off */
    long status;
    int64_t retry_after_ms;      /* from Retry-After, or -1 */
    char error[CURL_ERROR_SIZE]; /* libcurl's words when transport_ok is false */
} ja_http_result;

/* Returns NULL when out of memory. curl_global_init must have run. */
ja_http_client *ja_http_client_new(const ja_config *cfg);
void ja_http_client_free(ja_http_client *client);

/* POSTs body to {jube-url}/api/invoke/EntityAnalysisModel/{guid} with a Content-Length. The
 * response body replaces response's contents. */
void ja_http_invoke(ja_http_client *client, const char *guid, const void *body, size_t len,
                    ja_buf *response, ja_http_result *result);

#endif
