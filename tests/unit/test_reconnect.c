/* Reconnecting: a connection that dies right after it was made keeps the backoff growing; one
 * that lasted starts a new series at once. */

#include "reconnect.h"
#include "test.h"

TEST(short_lived_connections_do_not_reset_the_backoff)
{
    ja_config cfg = {.reconnect_base_ms = 100, .reconnect_max_ms = 10000};
    cfg.amqp.host = "broker";
    cfg.amqp.vhost = "/";
    ja_reconnect r;
    ja_reconnect_init(&r, "publisher", 1);
    uint64_t previous = 0;
    for (int i = 0; i < 6; i++) {
        ja_reconnect_succeeded(&r, &cfg);
        uint64_t delay = ja_reconnect_lost(&r, &cfg, r.up_since_ms + 10);
        ASSERT(delay > 0);
        ASSERT(delay >= previous); /* equal jitter: each step at least half of a doubled one */
        previous = delay;
    }
    ASSERT(previous >= 1600); /* 100 ms doubled five times, less at most half for jitter */
    ja_reconnect_succeeded(&r, &cfg);
    ASSERT_EQ(ja_reconnect_lost(&r, &cfg, r.up_since_ms + JA_RECONNECT_STABLE_MS), 0);
    ASSERT_EQ(r.failures, 0);
    ASSERT(ja_reconnect_failed(&r, &cfg, "refused") <= 100);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(short_lived_connections_do_not_reset_the_backoff),
    };
    return RUN_TESTS(tests);
}
