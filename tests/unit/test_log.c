/* Log lines: one per event, in text or JSON; a JSON line is valid JSON whatever the message holds,
 * and events about a message carry its fields. */

#include "log.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <fcntl.h>

/* Runs fn with stderr sent to a file and returns what it wrote. */
static char *capture_stderr(void (*fn)(void))
{
    char path[] = "/tmp/jube-amqp-log-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    int saved = dup(STDERR_FILENO);
    dup2(fd, STDERR_FILENO);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    off_t size = lseek(fd, 0, SEEK_END);
    char *text = calloc(1, (size_t)size + 1);
    ASSERT_EQ(pread(fd, text, (size_t)size, 0), (ssize_t)size);
    close(fd);
    unlink(path);
    return text;
}

static void write_events(void)
{
    ja_log_threshold = JA_LOG_INFO;
    ja_log_set_thread_name("worker-3");
    ja_log_fields fields = {.delivery_tag = 42,
                            .model_guid = "90c425fd-101a-420b-91d1-cb7a24a969cc",
                            .http_status = 503,
                            .attempt = 2};
    ja_log_warn_about(&fields, "Jube unavailable: it answered \"%s\"\n\tand\\more", "busy");
    ja_log_info("plain event");
    ja_log_debug("below the threshold %d", 1);
    char huge[6000];
    memset(huge, '"', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    ja_log_error("%s", huge);
}

static void write_events_below_threshold(void)
{
    ja_log_threshold = JA_LOG_WARN;
    ja_log_info("hidden");
    ja_log_warn("shown");
}

TEST(json_lines_are_valid_json_with_fields)
{
    ja_log_output_format = JA_LOG_JSON;
    char *out = capture_stderr(write_events);
    char *save = NULL;
    int lines = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        cJSON *json = cJSON_Parse(line);
        if (!json)
            FAIL("not JSON: %s", line);
        ASSERT(cJSON_IsString(cJSON_GetObjectItem(json, "time")));
        ASSERT_STR_EQ(cJSON_GetObjectItem(json, "thread")->valuestring, "worker-3");
        const char *level = cJSON_GetObjectItem(json, "level")->valuestring;
        const char *message = cJSON_GetObjectItem(json, "message")->valuestring;
        if (lines == 0) {
            ASSERT_STR_EQ(level, "warn");
            ASSERT_STR_EQ(message, "Jube unavailable: it answered \"busy\"\n\tand\\more");
            ASSERT_EQ(cJSON_GetObjectItem(json, "delivery_tag")->valueint, 42);
            ASSERT_STR_EQ(cJSON_GetObjectItem(json, "model")->valuestring,
                          "90c425fd-101a-420b-91d1-cb7a24a969cc");
            ASSERT_EQ(cJSON_GetObjectItem(json, "http_status")->valueint, 503);
            ASSERT_EQ(cJSON_GetObjectItem(json, "attempt")->valueint, 2);
        } else if (lines == 1) {
            ASSERT_STR_EQ(level, "info");
            ASSERT_STR_EQ(message, "plain event");
            ASSERT(!cJSON_GetObjectItem(json, "delivery_tag"));
        } else {
            ASSERT_STR_EQ(level, "error"); /* cut to the line limit, still valid */
            ASSERT(strlen(message) > 1000 && strspn(message, "\"") == strlen(message));
        }
        cJSON_Delete(json);
        lines++;
    }
    ASSERT_EQ(lines, 3); /* the debug event was below the threshold */
    free(out);
}

TEST(text_lines_carry_fields_as_key_values)
{
    ja_log_output_format = JA_LOG_TEXT;
    char *out = capture_stderr(write_events);
    ASSERT_CONTAINS(out, " WARN  [worker-3] Jube unavailable: it answered \"busy\"");
    ASSERT_CONTAINS(out, " delivery_tag=42 model=90c425fd-101a-420b-91d1-cb7a24a969cc "
                         "http_status=503 attempt=2\n");
    ASSERT_CONTAINS(out, " INFO  [worker-3] plain event\n");
    free(out);
    out = capture_stderr(write_events_below_threshold);
    ASSERT(!strstr(out, "hidden"));
    ASSERT_CONTAINS(out, "shown");
    free(out);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(json_lines_are_valid_json_with_fields),
        TEST_ENTRY(text_lines_carry_fields_as_key_values),
    };
    return RUN_TESTS(tests);
}
