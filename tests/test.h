#ifndef JA_TEST_H
#define JA_TEST_H

/* A small test runner in the manner of libuv's: each test runs in a forked child, so a crash
 * fails that test only; a failing assertion prints both values. A binary runs every test, or
 * the one named on its command line, and ends with "N passed, N failed". A test that runs past
 * its time limit (JA_TEST_TIMEOUT_S, 300 s unless set) is killed with every process it started,
 * and reported by name. */

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
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

/* a op b for integers, printing both values when it fails. */
#define ASSERT_CMP(a, op, b)                                                                       \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (!(a_ op b_))                                                                           \
            FAIL("%s %s %s: %lld against %lld", #a, #op, #b, a_, b_);                              \
    } while (0)
#define ASSERT_LT(a, b) ASSERT_CMP(a, <, b)
#define ASSERT_GT(a, b) ASSERT_CMP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b)

#define ASSERT_PTR_EQ(a, b)                                                                        \
    do {                                                                                           \
        const void *a_ = (a), *b_ = (b);                                                           \
        if (a_ != b_)                                                                              \
            FAIL("%s == %s: %p != %p", #a, #b, a_, b_);                                            \
    } while (0)

#define ASSERT_NULL(a)                                                                             \
    do {                                                                                           \
        const void *a_ = (a);                                                                      \
        if (a_)                                                                                    \
            FAIL("%s is %p, not NULL", #a, a_);                                                    \
    } while (0)

#define ASSERT_NOT_NULL(a)                                                                         \
    do {                                                                                           \
        if (!(a))                                                                                  \
            FAIL("%s is NULL", #a);                                                                \
    } while (0)

/* n bytes at a and b are the same; prints the first that differs. */
#define ASSERT_MEM_EQ(a, b, n)                                                                     \
    do {                                                                                           \
        const unsigned char *a_ = (const unsigned char *)(a), *b_ = (const unsigned char *)(b);    \
        size_t n_ = (n);                                                                           \
        for (size_t i_ = 0; i_ < n_; i_++)                                                         \
            if (a_[i_] != b_[i_])                                                                  \
                FAIL("%s and %s differ at byte %zu of %zu: 0x%02x against 0x%02x", #a, #b, i_, n_, \
                     a_[i_], b_[i_]);                                                              \
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

/* Waits for the test's child up to timeout_s; on the time-out kills its process group (the
 * child and whatever it started). Returns false on the time-out. */
static inline int wait_test(pid_t pid, int timeout_s, int *status)
{
    int fd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (fd >= 0) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int rc;
        while ((rc = poll(&p, 1, timeout_s * 1000)) < 0 && errno == EINTR)
            ;
        close(fd);
        if (rc == 0) {
            kill(-pid, SIGKILL);
            waitpid(pid, status, 0);
            return 0;
        }
    }
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    return 1;
}

static inline int run_tests(const test_case *tests, size_t count, int argc, char **argv)
{
    int passed = 0, failed = 0;
    const char *limit = getenv("JA_TEST_TIMEOUT_S");
    int timeout_s = limit && atoi(limit) > 0 ? atoi(limit) : 300;
    for (size_t i = 0; i < count; i++) {
        if (argc > 1 ? strcmp(argv[1], tests[i].name) != 0 : tests[i].manual)
            continue;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            printf("FAILED %s (fork: %s)\n", tests[i].name, strerror(errno));
            failed++;
            continue;
        }
        if (pid == 0) {
            setpgid(0, 0); /* so a time-out can end everything the test started */
            /* The harness names the test's queues and logs after it (test_name()). */
            setenv("JA_TEST_NAME", tests[i].name, 1);
            tests[i].fn();
            exit(0);
        }
        setpgid(pid, pid);
        int status = 0;
        if (!wait_test(pid, timeout_s, &status)) {
            printf("FAILED %s (still running after %d s: killed)\n", tests[i].name, timeout_s);
            failed++;
            continue;
        }
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
