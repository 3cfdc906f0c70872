#ifndef JA_LOG_H
#define JA_LOG_H

#include <stdint.h>

/* One log line per event, written with a single write(2) so lines from different threads never
 * interleave. The level is checked before the arguments are evaluated.
 *
 * Two formats (--log-format): text for people,
 *   2026-11-25T10:00:00.123Z WARN  [worker-1] Jube unavailable: ... delivery_tag=7 attempt=2
 * and JSON for log pipelines, one object per line,
 *   {"time":"2026-11-25T10:00:00.123Z","level":"warn","thread":"worker-1","message":"...",
 *    "delivery_tag":7,"attempt":2}
 * Events about one message carry its fields; the others carry none. */

typedef enum {
    JA_LOG_ERROR = 0,
    JA_LOG_WARN = 1,
    JA_LOG_INFO = 2,
    JA_LOG_DEBUG = 3,
} ja_log_level;

typedef enum { JA_LOG_TEXT = 0, JA_LOG_JSON = 1 } ja_log_format;

/* What an event is about; zero or NULL members are left out. */
typedef struct {
    uint64_t delivery_tag;
    const char *model_guid;
    int http_status;
    int attempt;
} ja_log_fields;

extern ja_log_level ja_log_threshold;
extern ja_log_format ja_log_output_format;

/* Names the calling thread in its log lines ("consumer", "worker-3", ...). */
void ja_log_set_thread_name(const char *name);

void ja_log_write(ja_log_level level, const ja_log_fields *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define JA_LOG(level, fields, ...)                                                                 \
    do {                                                                                           \
        if ((level) <= ja_log_threshold)                                                           \
            ja_log_write((level), (fields), __VA_ARGS__);                                          \
    } while (0)

#define ja_log_error(...) JA_LOG(JA_LOG_ERROR, NULL, __VA_ARGS__)
#define ja_log_warn(...)  JA_LOG(JA_LOG_WARN, NULL, __VA_ARGS__)
#define ja_log_info(...)  JA_LOG(JA_LOG_INFO, NULL, __VA_ARGS__)
#define ja_log_debug(...) JA_LOG(JA_LOG_DEBUG, NULL, __VA_ARGS__)

/* The same, about one message. */
#define ja_log_error_about(fields, ...) JA_LOG(JA_LOG_ERROR, (fields), __VA_ARGS__)
#define ja_log_warn_about(fields, ...)  JA_LOG(JA_LOG_WARN, (fields), __VA_ARGS__)
#define ja_log_debug_about(fields, ...) JA_LOG(JA_LOG_DEBUG, (fields), __VA_ARGS__)

#endif
