#include "http_call.h"

#include "backoff.h"
#include "oom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define INVOKE_PATH   "/api/invoke/EntityAnalysisModel/"
#define CALLBACK_PATH "/api/invoke/EntityAnalysisModel/Callback/"

struct ja_http_call {
    CURL *curl;
    struct curl_slist *headers;       /* the same for every call */
    struct curl_slist *trace_headers; /* those plus this call's traceparent, or NULL */
    char *url;                        /* base URL and path prefix, with room for the GUID */
    size_t base_len;                  /* of the Jube URL at the start of url */
    ja_buffer *response;              /* the buffer of the request under way */
    bool too_large;
    int64_t retry_after_ms;
    char error[CURL_ERROR_SIZE];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    ja_http_call *call = userdata;
    size_t n = size * nmemb;
    if (ja_buffer_append(call->response, data, n, JA_HTTP_MAX_RESPONSE_BYTES) != 0) {
        call->too_large = true;
        return 0; /* ends the transfer */
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    ja_http_call *call = userdata;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && n < 256 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[256];
        memcpy(value, data + sizeof name - 1, n - (sizeof name - 1));
        value[n - (sizeof name - 1)] = '\0';
        call->retry_after_ms = ja_backoff_retry_after_ms(value, time(NULL));
    }
    return n;
}

static struct curl_slist *build_headers(const ja_config *cfg)
{
    struct curl_slist *list = NULL;
    char line[4096];
    /* An empty Expect stops libcurl from waiting for "100 Continue" on large bodies. */
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        struct curl_slist *next = curl_slist_append(list, fixed[i]);
        if (!next)
            goto fail;
        list = next;
    }
    line[0] = '\0';
    if (cfg->jube_api_key[0])
        snprintf(line, sizeof line, "X-API-KEY: %s", cfg->jube_api_key);
    else if (cfg->jube_bearer_token[0])
        snprintf(line, sizeof line, "Authorization: Bearer %s", cfg->jube_bearer_token);
    if (line[0]) {
        struct curl_slist *next = curl_slist_append(list, line);
        if (!next)
            goto fail;
        list = next;
    }
    return list;
fail:
    curl_slist_free_all(list);
    return NULL;
}

ja_http_call *ja_http_call_new(const ja_config *cfg, void *owner)
{
    ja_http_call *call = calloc(1, sizeof *call);
    if (!call)
        return NULL;
    size_t base_len = strlen(cfg->jube_url);
    while (base_len > 0 && cfg->jube_url[base_len - 1] == '/')
        base_len--; /* "http://jube:5001/" and "http://jube:5001" mean the same */
    call->base_len = base_len;
    /* Room for the longer of the two paths: the invoke and the Implicit Async callback. */
    call->url = malloc(base_len + strlen(CALLBACK_PATH) + JA_GUID_LEN + 1);
    call->curl = curl_easy_init();
    call->headers = build_headers(cfg);
    if (!call->url || !call->curl || !call->headers) {
        ja_http_call_free(call);
        return NULL;
    }
    memcpy(call->url, cfg->jube_url, base_len);

    CURL *c = call->curl;
    curl_easy_setopt(c, CURLOPT_PRIVATE, owner);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->http_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->http_connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, call);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, call->error);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "jube-amqp/" JA_VERSION);
    /* Only Jube's own URL is ever called: no redirects to elsewhere, no other protocols. */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    /* https:// Jube URLs: TLS 1.2 or newer, verified like the broker (libcurl verifies the peer
     * and the host name by default, against the system bundle unless --tls-ca names one). */
    curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    if (cfg->tls_ca[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->tls_ca);
    if (cfg->tls_insecure) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return call;
}

void ja_http_call_free(ja_http_call *call)
{
    if (!call)
        return;
    if (call->curl)
        curl_easy_cleanup(call->curl);
    curl_slist_free_all(call->headers);
    curl_slist_free_all(call->trace_headers);
    free(call->url);
    free(call);
}

/* A copy of the fixed headers with the traceparent line added; NULL when out of memory. */
static struct curl_slist *with_traceparent(const struct curl_slist *fixed, const char *traceparent)
{
    struct curl_slist *list = NULL;
    char line[80];
    snprintf(line, sizeof line, "traceparent: %s", traceparent);
    for (const struct curl_slist *h = fixed; h; h = h->next) {
        struct curl_slist *next = curl_slist_append(list, h->data);
        if (!next) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    struct curl_slist *next = curl_slist_append(list, line);
    if (!next)
        curl_slist_free_all(list);
    return next;
}

/* {jube-url}{path}{guid}: the base URL was copied in when the call was made. */
static void set_url(ja_http_call *call, const char *path, const char *guid)
{
    size_t path_len = strlen(path);
    memcpy(call->url + call->base_len, path, path_len);
    memcpy(call->url + call->base_len + path_len, guid, JA_GUID_LEN + 1);
    curl_easy_setopt(call->curl, CURLOPT_URL, call->url);
}

static void start(ja_http_call *call, ja_buffer *response)
{
    response->len = 0;
    call->response = response;
    call->too_large = false;
    call->retry_after_ms = -1;
    call->error[0] = '\0';
}

/* The credentials and fixed headers, with the message's traceparent when it has one. Returns
 * false when out of memory. */
static bool set_headers(ja_http_call *call, const char *traceparent)
{
    curl_slist_free_all(call->trace_headers);
    call->trace_headers = NULL;
    if (traceparent[0]) {
        call->trace_headers = with_traceparent(call->headers, traceparent);
        if (!call->trace_headers)
            return false;
    }
    curl_easy_setopt(call->curl, CURLOPT_HTTPHEADER,
                     call->trace_headers ? call->trace_headers : call->headers);
    return true;
}

CURL *ja_http_call_prepare(ja_http_call *call, const char *guid, const char *traceparent,
                           const void *body, size_t len, ja_buffer *response)
{
    if (!set_headers(call, traceparent))
        ja_oom("preparing a call to Jube");
    set_url(call, INVOKE_PATH, guid);
    start(call, response);
    CURL *c = call->curl;
    /* POSTFIELDS does not copy: body lives in the job's envelope until the call is finished. */
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    return c;
}

CURL *ja_http_call_prepare_callback(ja_http_call *call, const char *instance_guid,
                                    const char *traceparent, ja_buffer *response)
{
    if (!set_headers(call, traceparent))
        ja_oom("preparing a call to Jube");
    set_url(call, CALLBACK_PATH, instance_guid);
    start(call, response);
    curl_easy_setopt(call->curl, CURLOPT_HTTPGET, 1L);
    return call->curl;
}

CURL *ja_http_call_handle(const ja_http_call *call)
{
    return call->curl;
}

void ja_http_call_finish(ja_http_call *call, CURLcode rc, ja_http_result *result)
{
    long status = 0;
    curl_easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t duration_us = 0;
    curl_easy_getinfo(call->curl, CURLINFO_TOTAL_TIME_T, &duration_us);
    result->duration_us = duration_us > 0 ? (uint64_t)duration_us : 0;
    result->status = status;
    result->retry_after_ms = call->retry_after_ms;
    result->response_too_large = call->too_large;
    result->transport_ok = (rc == CURLE_OK || call->too_large) && status > 0;
    if (rc != CURLE_OK)
        snprintf(result->error, sizeof result->error, "%s",
                 call->error[0] ? call->error : curl_easy_strerror(rc));
    else
        result->error[0] = '\0';
    call->response = NULL;
}
