/* Reconnecting: a connection that dies right after it was made keeps the backoff growing; one
 * that lasted starts a new series at once. */

#include "reconnect.h"
#include "test.h"

TEST(short_lived_connections_do_not_reset_the_backoff)
{
    static ja_config cfg = {.reconnect_base_ms = 100, .reconnect_max_ms = 10000};
    cfg.brokers[0].amqp.host = "broker";
    cfg.brokers[0].amqp.vhost = "/";
    cfg.broker_count = 1;
    ja_reconnect r;
    ja_reconnect_init(&r, "publisher", 1, 1);
    uint64_t previous = 0;
    for (int i = 0; i < 6; i++) {
        ja_reconnect_succeeded(&r, &cfg);
        uint64_t delay = ja_reconnect_lost(&r, &cfg, r.up_since_ms + 10);
        ASSERT_GT(delay, 0);
        ASSERT_GE(delay, previous); /* equal jitter: each step at least half of a doubled one */
        previous = delay;
    }
    ASSERT_GE(previous, 1600); /* 100 ms doubled five times, less at most half for jitter */
    ja_reconnect_succeeded(&r, &cfg);
    ASSERT_EQ(ja_reconnect_lost(&r, &cfg, r.up_since_ms + JA_RECONNECT_STABLE_MS), 0);
    ASSERT_EQ(r.failures, 0);
    ASSERT_LE(ja_reconnect_failed(&r, &cfg, "refused"), 100);
}

static ja_config three_nodes(void)
{
    ja_config cfg = {.reconnect_base_ms = 100, .reconnect_max_ms = 10000, .broker_count = 3};
    for (int i = 0; i < 3; i++) {
        cfg.brokers[i].amqp.host = "node";
        cfg.brokers[i].amqp.vhost = "/";
        snprintf(cfg.brokers[i].name, sizeof cfg.brokers[i].name, "node%d:5672", i + 1);
    }
    return cfg;
}

/* A failed node is left for the next at once; the backoff comes only once every node failed. */
TEST(every_node_is_tried_before_backing_off)
{
    static ja_config cfg;
    cfg = three_nodes();
    ja_reconnect r;
    ja_reconnect_init(&r, "consumer", 99, 3);
    int seen[3] = {0};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 3; i++) {
            seen[ja_reconnect_node(&r)]++;
            uint64_t delay = ja_reconnect_failed(&r, &cfg, "connection refused");
            ASSERT_EQ(delay > 0, i == 2);
        }
    }
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(seen[i], 3); /* each node once a round */
    ja_reconnect_succeeded(&r, &cfg);
    int on = ja_reconnect_node(&r);
    /* A lasting connection lost: the next node, at once. */
    ASSERT_EQ(ja_reconnect_lost(&r, &cfg, r.up_since_ms + JA_RECONNECT_STABLE_MS), 0);
    ASSERT_NE(ja_reconnect_node(&r), on);
}

/* Two connections (or replicas) start from different places in their own shuffled orders. */
TEST(orders_differ_by_seed)
{
    int first[3] = {0};
    for (uint64_t seed = 1; seed <= 60; seed++) {
        ja_reconnect r;
        ja_reconnect_init(&r, "consumer", seed * 7919, 3);
        first[ja_reconnect_node(&r)]++;
    }
    for (int i = 0; i < 3; i++)
        ASSERT_GE(first[i], 5);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(short_lived_connections_do_not_reset_the_backoff),
        TEST_ENTRY(every_node_is_tried_before_backing_off),
        TEST_ENTRY(orders_differ_by_seed),
    };
    return RUN_TESTS(tests);
}
