#include "http_client.h"

#include "outcome.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define INVOKE_PATH "/api/invoke/EntityAnalysisModel/"

struct ja_http_client {
    CURL *curl;
    struct curl_slist *headers;
    char *url; /* base URL and path prefix, with room for the GUID */
    size_t url_prefix_len;
    ja_buf *response; /* the buffer of the request under way */
    bool too_large;
    int64_t retry_after_ms;
    char error[CURL_ERROR_SIZE];
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    ja_http_client *client = userdata;
    size_t n = size * nmemb;
    if (ja_buf_append(client->response, data, n, JA_HTTP_MAX_RESPONSE_BYTES) != 0) {
        client->too_large = true;
        return 0; /* ends the transfer */
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    ja_http_client *client = userdata;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && n < 256 && strncasecmp(data, name, sizeof name - 1) == 0) {
        char value[256];
        memcpy(value, data + sizeof name - 1, n - (sizeof name - 1));
        value[n - (sizeof name - 1)] = '\0';
        client->retry_after_ms = ja_retry_after_ms(value, time(NULL));
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

ja_http_client *ja_http_client_new(const ja_config *cfg)
{
    ja_http_client *client = calloc(1, sizeof *client);
    if (!client)
        return NULL;
    size_t base_len = strlen(cfg->jube_url);
    while (base_len > 0 && cfg->jube_url[base_len - 1] == '/')
        base_len--; /* "http://jube:5001/" and "http://jube:5001" mean the same */
    client->url_prefix_len = base_len + strlen(INVOKE_PATH);
    client->url = malloc(client->url_prefix_len + JA_GUID_LEN + 1);
    client->curl = curl_easy_init();
    client->headers = build_headers(cfg);
    if (!client->url || !client->curl || !client->headers) {
        ja_http_client_free(client);
        return NULL;
    }
    memcpy(client->url, cfg->jube_url, base_len);
    memcpy(client->url + base_len, INVOKE_PATH, strlen(INVOKE_PATH));

    CURL *c = client->curl;
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, client->headers);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)cfg->http_timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->http_connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, client);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, client);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, client->error);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "jube-amqp/" JA_VERSION);
    /* Only Jube's own URL is ever called: no redirects to elsewhere, no other protocols. */
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    return client;
}

void ja_http_client_free(ja_http_client *client)
{
    if (!client)
        return;
    if (client->curl)
        curl_easy_cleanup(client->curl);
    curl_slist_free_all(client->headers);
    free(client->url);
    free(client);
}

void ja_http_invoke(ja_http_client *client, const char *guid, const void *body, size_t len,
                    ja_buf *response, ja_http_result *result)
{
    memcpy(client->url + client->url_prefix_len, guid, JA_GUID_LEN + 1);
    response->len = 0;
    client->response = response;
    client->too_large = false;
    client->retry_after_ms = -1;
    client->error[0] = '\0';

    CURL *c = client->curl;
    curl_easy_setopt(c, CURLOPT_URL, client->url);
    /* POSTFIELDS does not copy: body lives in the job's envelope until the call returns. */
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);

    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

    result->status = status;
    result->retry_after_ms = client->retry_after_ms;
    result->response_too_large = client->too_large;
    result->transport_ok = (rc == CURLE_OK || client->too_large) && status > 0;
    if (rc != CURLE_OK)
        snprintf(result->error, sizeof result->error, "%s",
                 client->error[0] ? client->error : curl_easy_strerror(rc));
    else
        result->error[0] = '\0';
    client->response = NULL;
}
