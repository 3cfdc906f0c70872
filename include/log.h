#ifndef JA_LOG_H
#define JA_LOG_H

/* One log line per event, written with a single write(2) so lines from different threads never
 * interleave. The level is checked before the arguments are evaluated. */

typedef enum {
    JA_LOG_ERROR = 0,
    JA_LOG_WARN = 1,
    JA_LOG_INFO = 2,
    JA_LOG_DEBUG = 3,
} ja_log_level;

extern ja_log_level ja_log_threshold;

/* Names the calling thread in its log lines ("consumer", "worker-3", ...). */
void ja_log_set_thread_name(const char *name);

void ja_log_write(ja_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define JA_LOG(level, ...)                                                                         \
    do {                                                                                           \
        if ((level) <= ja_log_threshold)                                                           \
            ja_log_write((level), __VA_ARGS__);                                                    \
    } while (0)

#define ja_log_error(...) JA_LOG(JA_LOG_ERROR, __VA_ARGS__)
#define ja_log_warn(...)  JA_LOG(JA_LOG_WARN, __VA_ARGS__)
#define ja_log_info(...)  JA_LOG(JA_LOG_INFO, __VA_ARGS__)
#define ja_log_debug(...) JA_LOG(JA_LOG_DEBUG, __VA_ARGS__)

#endif
