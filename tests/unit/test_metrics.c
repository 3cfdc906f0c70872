/* The Prometheus exposition: names, labels, cumulative histogram buckets, reason mapping. */

#include "metrics.h"
#include "test.h"

static char *render(long ring_depth)
{
    size_t needed = ja_metrics_render(NULL, 0, ring_depth) + 1;
    char *text = malloc(needed);
    ASSERT_EQ(ja_metrics_render(text, needed, ring_depth), needed - 1);
    return text;
}

TEST(counters_gauges_and_labels)
{
    ja_metrics_count(&ja_stats.consumed);
    ja_metrics_count(&ja_stats.consumed);
    ja_metrics_count(&ja_stats.dead_lettered[ja_metrics_dead_letter_reason("invalid_json")]);
    ja_metrics_count(&ja_stats.dead_lettered[ja_metrics_dead_letter_reason("http_404")]);
    ja_metrics_count(&ja_stats.dead_lettered[ja_metrics_dead_letter_reason("http_500")]);
    ja_metrics_count(&ja_stats.http_responses[ja_metrics_http_class(503, true)]);
    ja_metrics_count(&ja_stats.http_responses[ja_metrics_http_class(0, false)]);
    ja_metrics_count(&ja_stats.reconnects[JA_CONN_PUBLISHER]);
    atomic_store(&ja_stats.connected[JA_CONN_CONSUMER], true);
    atomic_store(&ja_stats.node[JA_CONN_CONSUMER], 1);
    static const char *const nodes[] = {"rabbit-1:5672", "rabbit-2:5672", "rabbit-3:5672"};
    ja_metrics_set_nodes(nodes, 3);
    char *text = render(7);
    ASSERT_CONTAINS(text, "# TYPE jube_amqp_messages_consumed_total counter\n"
                          "jube_amqp_messages_consumed_total 2\n");
    ASSERT_CONTAINS(text, "jube_amqp_messages_dead_lettered_total{reason=\"invalid_json\"} 1\n");
    ASSERT_CONTAINS(text, "jube_amqp_messages_dead_lettered_total{reason=\"http_4xx\"} 1\n");
    ASSERT_CONTAINS(text, "jube_amqp_messages_dead_lettered_total{reason=\"http_5xx\"} 1\n");
    ASSERT_CONTAINS(text, "jube_amqp_jube_responses_total{class=\"5xx\"} 1\n");
    ASSERT_CONTAINS(text, "jube_amqp_jube_responses_total{class=\"error\"} 1\n");
    ASSERT_CONTAINS(text, "jube_amqp_reconnects_total{connection=\"publisher\"} 1\n");
    /* One series per node: 1 on the node the connection is on. */
    ASSERT_CONTAINS(text,
                    "jube_amqp_connection_up{connection=\"consumer\",node=\"rabbit-1:5672\"} 0\n"
                    "jube_amqp_connection_up{connection=\"consumer\",node=\"rabbit-2:5672\"} 1\n"
                    "jube_amqp_connection_up{connection=\"consumer\",node=\"rabbit-3:5672\"} 0\n");
    ASSERT_CONTAINS(text,
                    "jube_amqp_connection_up{connection=\"publisher\",node=\"rabbit-1:5672\"} 0\n");
    ASSERT_CONTAINS(text, "jube_amqp_ring_depth 7\n");
    ASSERT_CONTAINS(text, "jube_amqp_build_info{version=\"" JA_VERSION "\"} 1\n");
    free(text);
}

TEST(histogram_buckets_are_cumulative)
{
    ja_metrics_observe(&ja_stats.jube_seconds, 300);      /* 0.3 ms */
    ja_metrics_observe(&ja_stats.jube_seconds, 4000);     /* 4 ms */
    ja_metrics_observe(&ja_stats.jube_seconds, 60000000); /* a minute: only +Inf */
    char *text = render(0);
    const char *name = "jube_amqp_jube_request_duration_seconds";
    char line[160];
    const char *expected[][2] = {
        {"0.0005", "1"}, {"0.001", "1"}, {"0.005", "2"}, {"10", "2"}, {"+Inf", "3"}};
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++) {
        snprintf(line, sizeof line, "%s_bucket{le=\"%s\"} %s\n", name, expected[i][0],
                 expected[i][1]);
        ASSERT_CONTAINS(text, line);
    }
    snprintf(line, sizeof line, "%s_sum 60.004300\n%s_count 3\n", name, name);
    ASSERT_CONTAINS(text, line);
    free(text);
}

TEST(reason_and_class_mapping)
{
    ASSERT_EQ(ja_metrics_dead_letter_reason("missing_model_guid"), JA_DL_MISSING_MODEL_GUID);
    ASSERT_EQ(ja_metrics_dead_letter_reason("response_too_large"), JA_DL_RESPONSE_TOO_LARGE);
    ASSERT_EQ(ja_metrics_dead_letter_reason("http_422"), JA_DL_HTTP_4XX);
    ASSERT_EQ(ja_metrics_dead_letter_reason("something new"), JA_DL_OTHER);
    ASSERT_EQ(ja_metrics_http_class(200, true), JA_HTTP_2XX);
    ASSERT_EQ(ja_metrics_http_class(404, true), JA_HTTP_4XX);
    ASSERT_EQ(ja_metrics_http_class(200, false), JA_HTTP_ERROR);
    ASSERT_EQ(ja_metrics_http_class(999, true), JA_HTTP_ERROR);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(counters_gauges_and_labels),
        TEST_ENTRY(histogram_buckets_are_cumulative),
        TEST_ENTRY(reason_and_class_mapping),
    };
    return RUN_TESTS(tests);
}
