#ifndef JA_TEST_H
#define JA_TEST_H

/* A small test runner in the manner of libuv's: each test runs in a forked child, so a crash
 * fails that test only; a failing assertion prints both values. A binary runs every test, or
 * the one named on its command line, and ends with "N passed, N failed". */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*test_fn)(void);
typedef struct {
    const char *name;
    test_fn fn;
    int manual; /* runs only when named on the command line */
} test_case;

#define TEST(name) static void test_##name(void)
/* clang-format off */
#define TEST_ENTRY(name) {#name, test_##name, 0}
#define TEST_ENTRY_MANUAL(name) {#name, test_##name, 1}
/* clang-format on */

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

#define ASSERT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FAIL("assertion failed: %s", #cond);                                                   \
    } while (0)

#define ASSERT_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_)                                                                              \
            FAIL("%s == %s: %lld != %lld", #a, #b, a_, b_);                                        \
    } while (0)

#define ASSERT_NE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ == b_)                                                                              \
            FAIL("%s != %s: both %lld", #a, #b, a_);                                               \
    } while (0)

#define ASSERT_LE(a, b)                                                                            \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ > b_)                                                                               \
            FAIL("%s <= %s: %lld > %lld", #a, #b, a_, b_);                                         \
    } while (0)

#define ASSERT_STR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");    \
    } while (0)

#define ASSERT_CONTAINS(haystack, needle)                                                          \
    do {                                                                                           \
        const char *h_ = (haystack), *n_ = (needle);                                               \
        if (!h_ || !strstr(h_, n_))                                                                \
            FAIL("%s contains %s: \"%s\" lacks \"%s\"", #haystack, #needle, h_ ? h_ : "(null)",    \
                 n_);                                                                              \
    } while (0)

static inline int run_tests(const test_case *tests, size_t count, int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (size_t i = 0; i < count; i++) {
        if (argc > 1 ? strcmp(argv[1], tests[i].name) != 0 : tests[i].manual)
            continue;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            tests[i].fn();
            exit(0);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            printf("ok     %s\n", tests[i].name);
            passed++;
        } else {
            if (WIFSIGNALED(status))
                printf("FAILED %s (signal %d)\n", tests[i].name, WTERMSIG(status));
            else
                printf("FAILED %s\n", tests[i].name);
            failed++;
        }
    }
    if (passed + failed == 0) {
        printf("no test named '%s'\n", argc > 1 ? argv[1] : "");
        failed = 1;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define RUN_TESTS(list) run_tests(list, sizeof list / sizeof list[0], argc, argv)

#endif
