/* The watchdog: an owner stuck inside a library call past the limit gets its socket shut down,
 * once; an owner that waits, or makes progress, is left alone. */

#include "watchdog.h"
#include "test.h"

#include <sys/socket.h>

TEST(stuck_only_when_busy_past_the_limit)
{
    ASSERT(!ja_watchdog_is_stuck(0, 100000, 1000)); /* waiting for input */
    ASSERT(!ja_watchdog_is_stuck(5000, 6000, 1000));
    ASSERT(ja_watchdog_is_stuck(5000, 6001, 1000));
    ASSERT(!ja_watchdog_is_stuck(7000, 6000, 1000)); /* stamped after the look began */
}

TEST(a_stuck_owner_has_its_socket_shut_down_once)
{
    int pair[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    ja_watched_connection w;
    ja_watchdog_init(&w, "publisher");
    ASSERT(!ja_watchdog_check(&w, 10000, 1000)); /* never busy */
    ja_watchdog_attach(&w, pair[0], 1000);
    ASSERT(!ja_watchdog_check(&w, 1500, 1000));
    ja_watchdog_busy(&w, 1500); /* progress */
    ASSERT(!ja_watchdog_check(&w, 2400, 1000));
    ASSERT(ja_watchdog_check(&w, 2600, 1000));
    char byte;
    ASSERT_EQ(recv(pair[1], &byte, 1, 0), 0); /* the peer sees the end */
    ASSERT_LT(send(pair[0], "x", 1, MSG_NOSIGNAL), 0);
    ASSERT(!ja_watchdog_check(&w, 9000, 1000)); /* said once */
    ja_watchdog_attach(&w, -1, 0);
    ASSERT(!ja_watchdog_check(&w, 99000, 1000));
    ja_watchdog_destroy(&w);
    close(pair[0]);
    close(pair[1]);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(stuck_only_when_busy_past_the_limit),
        TEST_ENTRY(a_stuck_owner_has_its_socket_shut_down_once),
    };
    return RUN_TESTS(tests);
}
