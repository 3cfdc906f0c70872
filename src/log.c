#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

ja_log_level ja_log_threshold = JA_LOG_INFO;

static _Thread_local char thread_name[24] = "main";

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void ja_log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof thread_name, "%s", name);
    /* Also the kernel's name (at most 15 bytes), so top, perf and gdb show each thread's role. */
    char short_name[16];
    snprintf(short_name, sizeof short_name, "%s", name);
    pthread_setname_np(pthread_self(), short_name);
}

void ja_log_write(ja_log_level level, const char *fmt, ...)
{
    char line[2048];
    struct timespec now;
    struct tm utc;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    int n = (int)strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &utc);
    n += snprintf(line + n, sizeof line - (size_t)n, ".%03ldZ %-5s [%s] ", now.tv_nsec / 1000000L,
                  level_names[level], thread_name);

    va_list args;
    va_start(args, fmt);
    int body = vsnprintf(line + n, sizeof line - (size_t)n, fmt, args);
    va_end(args);

    size_t len = (size_t)n + (body > 0 ? (size_t)body : 0);
    if (len > sizeof line - 2)
        len = sizeof line - 2; /* truncated: keep the newline */
    line[len++] = '\n';

    /* A failed log write has nowhere to be reported; the service keeps going. */
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored;
}
