/* The test runner itself: a test that hangs is killed at its time limit, with what it started,
 * and named in the report. Run by CTest with JA_TEST_TIMEOUT_S=1 (see tests/CMakeLists.txt). */

#include "test.h"

TEST(hangs)
{
    /* A process of its own, as integration tests start the service: it must die too. */
    pid_t helper = fork();
    if (helper == 0) {
        for (;;)
            pause();
    }
    FILE *f = fopen(getenv("JA_RUNNER_HELPER_PID"), "w");
    if (f) {
        fprintf(f, "%d\n", (int)helper);
        fclose(f);
    }
    for (;;)
        pause();
}

TEST(helper_of_hangs_is_gone)
{
    FILE *f = fopen(getenv("JA_RUNNER_HELPER_PID"), "r");
    int pid = 0;
    ASSERT(f && fscanf(f, "%d", &pid) == 1);
    fclose(f);
    ASSERT_GT(pid, 0);
    /* Gone, or dead and waiting for its new parent to reap it. */
    char path[64], state = 'Z';
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *stat = fopen(path, "r");
    if (stat) {
        ASSERT_EQ(fscanf(stat, "%*d (%*[^)]) %c", &state), 1);
        fclose(stat);
    }
    if (state != 'Z')
        FAIL("the helper %d of the hung test still runs (state %c)", pid, state);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY_MANUAL(hangs),
        TEST_ENTRY_MANUAL(helper_of_hangs_is_gone),
    };
    return RUN_TESTS(tests);
}
