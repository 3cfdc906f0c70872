#ifndef JA_HTTP_CALL_H
#define JA_HTTP_CALL_H

#include "config.h"
#include "job.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

/* One call to Jube's invoke endpoint at a time, on a libcurl easy handle that lives as long as
 * its worker. A worker thread owns several and runs them together in one libcurl multi handle,
 * whose connection cache keeps a keep-alive connection per call under way; no handle is ever
 * shared with another thread. */

typedef struct ja_http_call ja_http_call;

/* Jube's answers are small; a larger one is treated as a failure of Jube. */
#define JA_HTTP_MAX_RESPONSE_BYTES (16u * 1024u * 1024u)

typedef struct {
    bool transport_ok;       /* an HTTP status line arrived */
    bool response_too_large; /* the body passed JA_HTTP_MAX_RESPONSE_BYTES and was cut off */
    long status;
    int64_t retry_after_ms;      /* from Retry-After, or -1 */
    uint64_t duration_us;        /* how long the call took, connecting included */
    char error[CURL_ERROR_SIZE]; /* libcurl's words when transport_ok is false */
} ja_http_result;

/* Returns NULL when out of memory. curl_global_init must have run. owner is kept as the easy
 * handle's CURLOPT_PRIVATE, to find the call's owner when the multi handle reports it done. */
ja_http_call *ja_http_call_new(const ja_config *cfg, void *owner);
void ja_http_call_free(ja_http_call *call);

/* Prepares a POST of body to {jube-url}/api/invoke/EntityAnalysisModel/{guid} with a
 * Content-Length (and a traceparent header when traceparent is not empty) and returns the easy
 * handle to add to a multi handle. body must stay valid until the call is finished; the
 * response body replaces response's contents. */
CURL *ja_http_call_prepare(ja_http_call *call, const char *guid, const char *traceparent,
                           const void *body, size_t len, ja_buffer *response);

/* Prepares a GET of {jube-url}/api/invoke/EntityAnalysisModel/Callback/{instance_guid}, with
 * the same credentials and headers as the invoke: Implicit Async's full answer
 * (implicit_async.h). */
CURL *ja_http_call_prepare_callback(ja_http_call *call, const char *instance_guid,
                                    const char *traceparent, ja_buffer *response);

CURL *ja_http_call_handle(const ja_http_call *call);

/* After the multi handle reported the easy handle done with rc (and it was removed from it). */
void ja_http_call_finish(ja_http_call *call, CURLcode rc, ja_http_result *result);

#endif
