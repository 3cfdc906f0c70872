/* curl_client: the floor of an HTTP client's CPU per call, for the benchmark to measure the
 * service's workers against. One thread, one libcurl multi handle with --concurrency keep-alive
 * easy handles, each posting the body of --body-file to the stand-in Jube's invoke route again as
 * soon as its answer is in, until --count answers. No AMQP, no parsing. The benchmark reads its
 * CPU from the kernel when it exits.
 *
 *   curl_client --port P --count N --concurrency C --body-file F */

#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODEL "90c425fd-101a-420b-91d1-cb7a24a969cc"

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    (void)data;
    (void)arg;
    return size * n;
}

int main(int argc, char **argv)
{
    int port = 0, concurrency = 16;
    long count = 0;
    const char *body_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--count") == 0)
            count = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--concurrency") == 0)
            concurrency = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--body-file") == 0)
            body_file = argv[i + 1];
    }
    FILE *f = body_file ? fopen(body_file, "rb") : NULL;
    if (!port || count <= 0 || concurrency <= 0 || !f) {
        fprintf(stderr, "usage: curl_client --port P --count N --concurrency C --body-file F\n");
        return 2;
    }
    static char body[65536];
    size_t body_len = fread(body, 1, sizeof body, f);
    fclose(f);

    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/invoke/EntityAnalysisModel/%s", port, MODEL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM *multi = curl_multi_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/json");
    CURL **easy = calloc((size_t)concurrency, sizeof *easy);
    long started = 0, answered = 0;
    for (int i = 0; i < concurrency && started < count; i++, started++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDSIZE, (long)body_len);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy[i], CURLOPT_TCP_NODELAY, 1L);
        curl_multi_add_handle(multi, easy[i]);
    }
    while (answered < count) {
        int running;
        curl_multi_perform(multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            if (msg->data.result != CURLE_OK) {
                fprintf(stderr, "curl_client: %s\n", curl_easy_strerror(msg->data.result));
                return 1;
            }
            answered++;
            CURL *done = msg->easy_handle;
            curl_multi_remove_handle(multi, done);
            if (started < count) {
                started++;
                curl_multi_add_handle(multi, done); /* the same handle keeps its connection */
            }
        }
        if (answered < count)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    printf("%ld answers\n", answered);
    return 0;
}
