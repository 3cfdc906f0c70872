#include "log.h"

#include "text.h"
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

ja_log_level ja_log_threshold = JA_LOG_INFO;
ja_log_format ja_log_output_format = JA_LOG_TEXT;

static _Thread_local char thread_name[24] = "main";

static const char *const text_levels[] = {"ERROR", "WARN", "INFO", "DEBUG"};
static const char *const json_levels[] = {"error", "warn", "info", "debug"};

void ja_log_set_thread_name(const char *name)
{
    snprintf(thread_name, sizeof thread_name, "%s", name);
    /* Also the kernel's name (at most 15 bytes), so top, perf and gdb show each thread's role. */
    char short_name[16];
    snprintf(short_name, sizeof short_name, "%s", name);
    pthread_setname_np(pthread_self(), short_name);
}

/* A line being built; appends stop quietly at the end of the buffer (the line is cut, never
 * overrun), keeping room for what closes it. */
typedef struct {
    char data[LINE_MAX_BYTES];
    size_t len;
} line_buf;

#define CLOSING_ROOM 4 /* "\"}\n" at most */

static void append(line_buf *line, const char *text, size_t n)
{
    size_t room = sizeof line->data - CLOSING_ROOM - line->len;
    if (n > room)
        n = room;
    memcpy(line->data + line->len, text, n);
    line->len += n;
}

static void appendf(line_buf *line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void appendf(line_buf *line, const char *fmt, ...)
{
    char piece[256];
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(piece, sizeof piece, fmt, args);
    va_end(args);
    if (n > 0)
        append(line, piece, (size_t)n < sizeof piece ? (size_t)n : sizeof piece - 1);
}

/* Appends text as the inside of a JSON string: quotes, backslashes and control bytes escaped.
 * Bytes >= 0x80 pass through; the service's messages quote untrusted bytes through
 * ja_text_escape, which leaves only printable ASCII. A string too long for the line ends
 * before the escape that does not fit, never inside it. */
static void append_json_string(line_buf *line, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        char piece[8];
        size_t n;
        if (*p == '"' || *p == '\\')
            n = (size_t)snprintf(piece, sizeof piece, "\\%c", *p);
        else if (*p < 0x20)
            n = (size_t)snprintf(piece, sizeof piece, "\\u%04x", *p);
        else
            piece[0] = (char)*p, n = 1;
        if (line->len + n > sizeof line->data - CLOSING_ROOM)
            return;
        append(line, piece, n);
    }
}

static void append_time(line_buf *line)
{
    struct timespec now;
    struct tm utc;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &utc);
    char stamp[40];
    size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &utc);
    snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", now.tv_nsec / 1000000L);
    append(line, stamp, strlen(stamp));
}

static void append_text_fields(line_buf *line, const ja_log_fields *f)
{
    if (f->delivery_tag)
        appendf(line, " delivery_tag=%llu", (unsigned long long)f->delivery_tag);
    if (f->model_guid && f->model_guid[0])
        appendf(line, " model=%s", f->model_guid);
    if (f->http_status)
        appendf(line, " http_status=%d", f->http_status);
    if (f->attempt)
        appendf(line, " attempt=%d", f->attempt);
}

static void append_json_fields(line_buf *line, const ja_log_fields *f)
{
    if (f->delivery_tag)
        appendf(line, ",\"delivery_tag\":%llu", (unsigned long long)f->delivery_tag);
    if (f->model_guid && f->model_guid[0]) {
        append(line, ",\"model\":\"", 10);
        append_json_string(line, f->model_guid);
        append(line, "\"", 1);
    }
    if (f->http_status)
        appendf(line, ",\"http_status\":%d", f->http_status);
    if (f->attempt)
        appendf(line, ",\"attempt\":%d", f->attempt);
}

void ja_log_write(ja_log_level level, const ja_log_fields *fields, const char *fmt, ...)
{
    char message[LINE_MAX_BYTES];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);

    line_buf line = {.len = 0};
    if (ja_log_output_format == JA_LOG_JSON) {
        append(&line, "{\"time\":\"", 9);
        append_time(&line);
        appendf(&line, "\",\"level\":\"%s\",\"thread\":\"", json_levels[level]);
        append_json_string(&line, thread_name);
        if (fields)
            append(&line, "\"", 1), append_json_fields(&line, fields), append(&line, ",\"", 2);
        else
            append(&line, "\",\"", 3);
        append(&line, "message\":\"", 10);
        append_json_string(&line, message);
        /* The closing room was kept free, so this always fits: the line stays valid JSON. */
        memcpy(line.data + line.len, "\"}\n", 3);
        line.len += 3;
    } else {
        append_time(&line);
        appendf(&line, " %-5s [%s] ", text_levels[level], thread_name);
        append(&line, message, strlen(message));
        if (fields)
            append_text_fields(&line, fields);
        line.data[line.len++] = '\n';
    }
    /* A failed log write has nowhere to be reported; the service keeps going. */
    ssize_t ignored = write(STDERR_FILENO, line.data, line.len);
    (void)ignored;
}
