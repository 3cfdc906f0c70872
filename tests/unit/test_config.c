/* Configuration: defaults, environment, flags, and a clear message for every bad value. */

#include "config.h"
#include "test.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct {
    int rc;
    ja_config cfg;
    ja_config_action action;
    char err[1024];
} parsed;

static parsed parse(int argc, char **argv)
{
    parsed p;
    p.rc = ja_config_parse(&p.cfg, argc, argv, &p.action, p.err, sizeof p.err);
    return p;
}

/* PARSE("--flag", "value", ...) parses those arguments. */
static parsed parse_list(char **args)
{
    int argc = 0;
    while (args[argc])
        argc++;
    return parse(argc, args);
}
#define PARSE(...) parse_list((char *[]){"jube-amqp", __VA_ARGS__, NULL})

static parsed parse_none(void)
{
    char *argv[] = {"jube-amqp"};
    return parse(1, argv);
}

TEST(defaults)
{
    parsed p = parse_none();
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.action, JA_CONFIG_RUN);
    ASSERT_STR_EQ(p.cfg.amqp_uri, "amqp://guest:guest@127.0.0.1:5672/");
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.vhost, "/"); /* as Jube's .NET client reads it */
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.host, "127.0.0.1");
    ASSERT_EQ(p.cfg.brokers[0].amqp.port, 5672);
    ASSERT_STR_EQ(p.cfg.jube_url, "http://127.0.0.1:5001");
    ASSERT_STR_EQ(p.cfg.inbound_queue, "jubeInbound");
    ASSERT_STR_EQ(p.cfg.outbound_exchange, "jubeOutbound");
    ASSERT_STR_EQ(p.cfg.dead_letter_exchange, "jubeDeadLetter");
    ASSERT_STR_EQ(p.cfg.dead_letter_queue, "jubeDeadLetter");
    ASSERT_STR_EQ(p.cfg.routing_key, "");
    ASSERT_STR_EQ(p.cfg.outbound_queue, "");
    ASSERT_EQ(p.cfg.heartbeat_s, 30);
    ASSERT_EQ(p.cfg.prefetch, 256);
    ASSERT_EQ(p.cfg.workers, 64);
    ASSERT_EQ(p.cfg.concurrency, JA_CONCURRENCY_ADAPTIVE);
    ASSERT_EQ(p.cfg.queue_type, JA_QUEUE_CLASSIC);
    ASSERT_EQ(p.cfg.ring_capacity, 256);
    ASSERT_EQ(p.cfg.silent_broker_ms, 60000); /* two heartbeats of 30 s */
    ASSERT_EQ(p.cfg.idle_wait_ms, 15000);
    ASSERT_EQ(p.cfg.stuck_ms, 61000);
    ASSERT_EQ(p.cfg.nap_linger_us, 5000);
    ASSERT(!p.cfg.ordered);
    ja_config_free(&p.cfg);
}

/* A valid value for every option of the table, what the start-up line then shows for it, and
 * what else it needs. "@" stands for a readable file. An option added to the table without a
 * line here fails the test below. */
static const struct {
    const char *flag, *value, *shown, *companion, *companion_value;
} samples[] = {
    {"amqp-uri", "amqp://u:p@broker:5673/prod", "amqp://u:***@broker:5673/prod", NULL, NULL},
    {"amqp-uri-file", "@", "@", NULL, NULL},
    {"tls-ca", "@", "@", NULL, NULL},
    {"tls-cert", "@", "@", "--tls-key", "@"},
    {"tls-key", "@", "@", "--tls-cert", "@"},
    {"tls-insecure", "true", "true", NULL, NULL},
    {"heartbeat", "10", "10", NULL, NULL},
    {"amqp-connect-timeout-ms", "700", "700", NULL, NULL},
    {"reconnect-base-ms", "50", "50", NULL, NULL},
    {"reconnect-max-ms", "5000", "5000", NULL, NULL},
    {"jube-url", "https://jube.example:5001/", "https://jube.example:5001/", NULL, NULL},
    {"jube-api-key", "k", "(set)", NULL, NULL},
    {"jube-api-key-file", "@", "@", NULL, NULL},
    {"jube-bearer-token", "t", "(set)", NULL, NULL},
    {"jube-bearer-token-file", "@", "@", NULL, NULL},
    {"http-timeout-ms", "2500", "2500", NULL, NULL},
    {"http-connect-timeout-ms", "500", "500", NULL, NULL},
    {"workers", "64", "64", NULL, NULL},
    {"concurrency", "fixed", "fixed", NULL, NULL},
    {"worker-threads", "4", "4", NULL, NULL},
    {"prefetch", "300", "300", NULL, NULL},
    {"ack-linger-ms", "7", "7", NULL, NULL},
    {"ring-size", "1000", "1000", NULL, NULL},
    {"max-body-bytes", "4000", "4000", NULL, NULL},
    {"max-attempts", "3", "3", NULL, NULL},
    {"retry-base-ms", "10", "10", NULL, NULL},
    {"retry-max-ms", "1000", "1000", NULL, NULL},
    {"max-hold-ms", "2000", "2000", NULL, NULL},
    {"delivery-limit", "0", "0", NULL, NULL},
    {"implicit-async-timeout-ms", "1500", "1500", NULL, NULL},
    {"confirm-timeout-ms", "2000", "2000", NULL, NULL},
    {"unroutable-responses", "ack", "ack", NULL, NULL},
    {"order-by", "$.AccountId", "$.AccountId", NULL, NULL},
    {"order-key-missing", "dead-letter", "dead-letter", "--order-by", "$.AccountId"},
    {"single-active-consumer", "true", "true", NULL, NULL},
    {"inbound-queue", "in", "in", NULL, NULL},
    {"outbound-exchange", "out", "out", NULL, NULL},
    {"routing-key", "rk", "rk", NULL, NULL},
    {"outbound-queue", "outq", "outq", NULL, NULL},
    {"dead-letter-exchange", "dlx", "dlx", NULL, NULL},
    {"dead-letter-queue", "dlq", "dlq", NULL, NULL},
    {"queue-type", "quorum", "quorum", NULL, NULL},
    {"metrics-listen", "127.0.0.1:9090", "127.0.0.1:9090", NULL, NULL},
    {"log-level", "debug", "debug", NULL, NULL},
    {"log-format", "json", "json", NULL, NULL},
    {"shutdown-timeout", "7", "7", NULL, NULL},
};

/* Parses argv (and one environment variable when env is given), then checks the start-up line
 * shows `shown` for the option. */
static void expect_shown(char **argv, const char *env, const char *env_value, const char *flag,
                         const char *shown, const char *spelling)
{
    if (env)
        setenv(env, env_value, 1);
    int argc = 0;
    while (argv[argc])
        argc++;
    parsed p = parse(argc, argv);
    if (env)
        unsetenv(env);
    if (p.rc != 0)
        FAIL("--%s given %s was refused: %s", flag, spelling, p.err);
    char line[8192], want[1200];
    ja_config_describe(&p.cfg, line, sizeof line);
    snprintf(want, sizeof want, " %s=%s", flag, shown);
    if (!strstr(line, want) && strncmp(line, want + 1, strlen(want + 1)) != 0)
        FAIL("--%s given %s: the start-up line lacks \"%s\": %s", flag, spelling, want + 1, line);
    ja_config_free(&p.cfg);
}

TEST(every_option_of_the_table_as_a_flag_both_ways_and_as_its_variable)
{
    char file[] = "/tmp/ja-config-test-XXXXXX";
    int fd = mkstemp(file);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, "amqp://f:p@filehost:5672/\n", 26), 26);
    close(fd);
    size_t count = ja_config_option_count();
    ASSERT_EQ(count, sizeof samples / sizeof samples[0]);
    for (size_t i = 0; i < count; i++) {
        const char *flag, *env;
        bool is_switch;
        ja_config_option_at(i, &flag, &env, &is_switch);
        size_t s = 0;
        while (s < count && strcmp(samples[s].flag, flag) != 0)
            s++;
        if (s == count)
            FAIL("--%s has no sample value in this test", flag);
        const char *value = strcmp(samples[s].value, "@") == 0 ? file : samples[s].value;
        const char *shown = strcmp(samples[s].shown, "@") == 0 ? file : samples[s].shown;
        char *companion = (char *)samples[s].companion;
        char *companion_value =
            (char *)(samples[s].companion_value && strcmp(samples[s].companion_value, "@") == 0
                         ? file
                         : samples[s].companion_value);
        char dashed[80], joined[1200];
        snprintf(dashed, sizeof dashed, "--%s", flag);
        snprintf(joined, sizeof joined, "--%s=%s", flag, value);
        /* "--flag value" ("--flag" alone for a switch), "--flag=value", the variable. */
        char *separate[] = {"jube-amqp", dashed, is_switch ? NULL : (char *)value,
                            NULL,        NULL,   NULL};
        int n = is_switch ? 2 : 3;
        separate[n] = companion;
        separate[n + 1] = companion_value;
        expect_shown(separate, NULL, NULL, flag, shown, "as --flag value");
        char *together[] = {"jube-amqp", joined, companion, companion_value, NULL};
        expect_shown(together, NULL, NULL, flag, shown, "as --flag=value");
        char *none[] = {"jube-amqp", companion, companion_value, NULL};
        expect_shown(none, env, value, flag, shown, "in its environment variable");
    }
    unlink(file);
}

TEST(many_flags_at_once)
{
    parsed p = PARSE(
        "--amqp-uri", "amqp://u:p@broker:5673/prod", "--heartbeat=10", "--reconnect-base-ms", "50",
        "--reconnect-max-ms", "5000", "--jube-url", "https://jube.example:5001/", "--jube-api-key",
        "k", "--http-timeout-ms", "2500", "--http-connect-timeout-ms", "500", "--workers", "64",
        "--worker-threads", "4", "--prefetch", "300", "--ring-size", "1000", "--max-body-bytes",
        "4000", "--max-attempts", "3", "--retry-base-ms", "10", "--retry-max-ms", "1000",
        "--inbound-queue", "in", "--outbound-exchange", "out", "--routing-key", "rk",
        "--outbound-queue", "outq", "--dead-letter-exchange", "dlx", "--dead-letter-queue", "dlq",
        "--queue-type", "quorum", "--log-level", "debug", "--shutdown-timeout", "7");
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.host, "broker");
    ASSERT_EQ(p.cfg.brokers[0].amqp.port, 5673);
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.vhost, "prod");
    ASSERT_EQ(p.cfg.heartbeat_s, 10);
    ASSERT_EQ(p.cfg.reconnect_base_ms, 50);
    ASSERT_EQ(p.cfg.reconnect_max_ms, 5000);
    ASSERT_STR_EQ(p.cfg.jube_url, "https://jube.example:5001/");
    ASSERT_STR_EQ(p.cfg.jube_api_key, "k");
    ASSERT_EQ(p.cfg.http_timeout_ms, 2500);
    ASSERT_EQ(p.cfg.http_connect_timeout_ms, 500);
    ASSERT_EQ(p.cfg.workers, 64);
    ASSERT_EQ(p.cfg.worker_threads, 4);
    ASSERT_EQ(p.cfg.prefetch, 300);
    ASSERT_EQ(p.cfg.ring_capacity, 1000);
    ASSERT_EQ(p.cfg.max_body_bytes, 4000);
    ASSERT_EQ(p.cfg.max_attempts, 3);
    ASSERT_EQ(p.cfg.retry_base_ms, 10);
    ASSERT_EQ(p.cfg.retry_max_ms, 1000);
    ASSERT_STR_EQ(p.cfg.inbound_queue, "in");
    ASSERT_STR_EQ(p.cfg.outbound_exchange, "out");
    ASSERT_STR_EQ(p.cfg.routing_key, "rk");
    ASSERT_STR_EQ(p.cfg.outbound_queue, "outq");
    ASSERT_STR_EQ(p.cfg.dead_letter_exchange, "dlx");
    ASSERT_STR_EQ(p.cfg.dead_letter_queue, "dlq");
    ASSERT_EQ(p.cfg.queue_type, JA_QUEUE_QUORUM);
    ASSERT_EQ(p.cfg.log_level, 3);
    ASSERT_EQ(p.cfg.shutdown_timeout_s, 7);
    ja_config_free(&p.cfg);
}

TEST(environment_then_flags_win)
{
    setenv("AMQPUri", "amqp://a:b@envhost:1234/%2F", 1);
    setenv("AMQPHeartbeatSeconds", "12", 1);
    setenv("JUBE_URL", "http://envjube:9", 1);
    setenv("JUBE_AMQP_PREFETCH", "77", 1);
    setenv("JUBE_AMQP_WORKERS", "5", 1);
    parsed p = PARSE("--workers", "6");
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.host, "envhost");
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.vhost, "/");
    ASSERT_EQ(p.cfg.heartbeat_s, 12);
    ASSERT_STR_EQ(p.cfg.jube_url, "http://envjube:9");
    ASSERT_EQ(p.cfg.prefetch, 77);
    ASSERT_EQ(p.cfg.workers, 6);
    ja_config_free(&p.cfg);
}

TEST(out_of_range_names_flag_value_and_range)
{
    parsed p = PARSE("--prefetch", "0");
    ASSERT_EQ(p.rc, -22);
    ASSERT_STR_EQ(p.err, "--prefetch: 0 is out of range 1..65535");
    ja_config_free(&p.cfg);
}

TEST(not_a_number)
{
    parsed p = PARSE("--workers", "many");
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "--workers: 'many' is not a whole number (allowed: 1..4096)");
    ja_config_free(&p.cfg);
    p = PARSE("--workers", "12abc");
    ASSERT_NE(p.rc, 0);
    ASSERT_CONTAINS(p.err, "'12abc' is not a whole number");
    ja_config_free(&p.cfg);
}

/* --workers is the calls under way; the threads carrying them default to one per CPU, never more
 * threads than calls. */
TEST(worker_threads_share_the_calls)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    parsed p = PARSE("--workers", "64");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.cfg.worker_threads, cpus < 64 ? (int)cpus : 64);
    ja_config_free(&p.cfg);
    p = PARSE("--workers", "1");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.cfg.worker_threads, 1);
    ja_config_free(&p.cfg);
    p = PARSE("--workers", "8", "--worker-threads", "8");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.cfg.worker_threads, 8);
    ja_config_free(&p.cfg);
    p = PARSE("--workers", "4", "--worker-threads", "5");
    ASSERT_EQ(p.rc, -22);
    ASSERT_STR_EQ(p.err, "--worker-threads 5 is more than --workers 4; each thread carries at "
                         "least one call");
    ja_config_free(&p.cfg);
}

static char *write_temp(const char *contents)
{
    static char path[64];
    snprintf(path, sizeof path, "/tmp/jube-amqp-secret-XXXXXX");
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, contents, strlen(contents)), (ssize_t)strlen(contents));
    close(fd);
    return path;
}

/* Secrets can come from files (Docker and Kubernetes secrets); errors name the file, never its
 * contents. */
TEST(secrets_from_files)
{
    char *key_file = strdup(write_temp("s3cret-key\n"));
    char *uri_file = strdup(write_temp("amqps://user:pa55@broker.example:5671/prod\r\n"));
    setenv("AMQPUri_FILE", uri_file, 1);
    parsed p = PARSE("--jube-api-key-file", key_file);
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.jube_api_key, "s3cret-key");
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.host, "broker.example");
    ASSERT_STR_EQ(p.cfg.brokers[0].amqp.password, "pa55");
    ASSERT(p.cfg.brokers[0].amqp.ssl);
    char line[4096];
    ja_config_describe(&p.cfg, line, sizeof line);
    ASSERT(!strstr(line, "s3cret-key") && !strstr(line, "pa55"));
    ja_config_free(&p.cfg);
    unsetenv("AMQPUri_FILE");

    p = PARSE("--jube-bearer-token-file", "/nonexistent/token");
    ASSERT_EQ(p.rc, -22);
    ASSERT_STR_EQ(p.err, "--jube-bearer-token-file: cannot read '/nonexistent/token': No such file "
                         "or directory");
    ja_config_free(&p.cfg);

    char *two_lines = strdup(write_temp("first\nsecond\n"));
    p = PARSE("--jube-api-key-file", two_lines);
    ASSERT_EQ(p.rc, -22);
    ASSERT_CONTAINS(p.err, "must hold the secret on one line");
    ASSERT(!strstr(p.err, "first"));
    ja_config_free(&p.cfg);
    unlink(key_file), unlink(uri_file), unlink(two_lines);
    free(key_file), free(uri_file), free(two_lines);
}

TEST(tls_switch_and_files)
{
    parsed p = PARSE("--tls-insecure", "--prefetch", "9");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.cfg.tls_insecure, 1);
    ASSERT_EQ(p.cfg.prefetch, 9); /* the bare switch did not take the next argument */
    ja_config_free(&p.cfg);
    p = PARSE("--tls-insecure=false");
    ASSERT_EQ(p.cfg.tls_insecure, 0);
    ja_config_free(&p.cfg);
    p = PARSE("--tls-cert", "/etc/hostname");
    ASSERT_STR_EQ(p.err, "--tls-cert is set without --tls-key; a client certificate needs both");
    ja_config_free(&p.cfg);
    p = PARSE("--tls-ca", "/nonexistent/ca.pem");
    ASSERT_STR_EQ(p.err, "--tls-ca: cannot read '/nonexistent/ca.pem': No such file or directory");
    ja_config_free(&p.cfg);
}

TEST(log_format_choice)
{
    parsed p = PARSE("--log-format", "json");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.cfg.log_format, 1);
    ja_config_free(&p.cfg);
    p = PARSE("--log-format", "xml");
    ASSERT_STR_EQ(p.err, "--log-format: 'xml' is not one of: text, json");
    ja_config_free(&p.cfg);
}

TEST(bad_environment_value_names_the_variable)
{
    setenv("JUBE_AMQP_PREFETCH", "70000", 1);
    parsed p = parse_none();
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "environment variable JUBE_AMQP_PREFETCH: 70000 is out of range 1..65535");
    ja_config_free(&p.cfg);
}

TEST(bad_choice_lists_the_choices)
{
    parsed p = PARSE("--queue-type", "stream");
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "--queue-type: 'stream' is not one of: auto, classic, quorum");
    ja_config_free(&p.cfg);
}

TEST(unknown_flag_missing_value_and_stray_argument)
{
    parsed p = PARSE("--prefetsh", "5");
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "unknown flag '--prefetsh' (see --help)");
    ja_config_free(&p.cfg);
    p = PARSE("--prefetch");
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "--prefetch needs a value");
    ja_config_free(&p.cfg);
    p = PARSE("prefetch");
    ASSERT_NE(p.rc, 0);
    ASSERT_CONTAINS(p.err, "unexpected argument 'prefetch'");
    ja_config_free(&p.cfg);
}

TEST(empty_name_refused)
{
    parsed p = PARSE("--inbound-queue", "");
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "--inbound-queue: must not be empty");
    ja_config_free(&p.cfg);
}

TEST(cross_field_checks)
{
    parsed p = PARSE("--prefetch", "100", "--ring-size", "50");
    ASSERT_NE(p.rc, 0);
    ASSERT_CONTAINS(p.err, "--ring-size 50 is smaller than --prefetch 100");
    ja_config_free(&p.cfg);
    p = PARSE("--retry-base-ms", "500", "--retry-max-ms", "100");
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "--retry-base-ms 500 is larger than --retry-max-ms 100");
    ja_config_free(&p.cfg);
    p = PARSE("--jube-api-key", "a", "--jube-bearer-token", "b");
    ASSERT_NE(p.rc, 0);
    ASSERT_CONTAINS(p.err, "both set");
    ja_config_free(&p.cfg);
    p = PARSE("--jube-url", "ftp://jube");
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "--jube-url: 'ftp://jube' does not start with http:// or https://");
    ja_config_free(&p.cfg);
}

TEST(bad_amqp_uri_does_not_echo_the_password)
{
    parsed p = PARSE("--amqp-uri", "http://user:s3cret@host/");
    ASSERT_NE(p.rc, 0);
    ASSERT_CONTAINS(p.err, "--amqp-uri: not a valid AMQP URI");
    ASSERT(!strstr(p.err, "s3cret"));
    ja_config_free(&p.cfg);
}

TEST(long_name_refused)
{
    char name[300];
    memset(name, 'q', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    parsed p = PARSE("--outbound-queue", name);
    ASSERT_NE(p.rc, 0);
    ASSERT_STR_EQ(p.err, "--outbound-queue: 299 bytes is longer than AMQP allows (255)");
    ja_config_free(&p.cfg);
}

TEST(help_and_version)
{
    parsed p = PARSE("--help");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.action, JA_CONFIG_HELP);
    ja_config_free(&p.cfg);
    p = PARSE("--version");
    ASSERT_EQ(p.action, JA_CONFIG_VERSION);
    ja_config_free(&p.cfg);

    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ja_config_print_help(out);
    fclose(out);
    const char *flags[] = {"--amqp-uri",
                           "AMQPUri",
                           "--heartbeat",
                           "AMQPHeartbeatSeconds",
                           "--jube-url",
                           "JUBE_URL",
                           "--workers",
                           "--prefetch",
                           "--ring-size",
                           "--http-timeout-ms",
                           "--max-attempts",
                           "--retry-base-ms",
                           "--retry-max-ms",
                           "--max-body-bytes",
                           "--inbound-queue",
                           "--outbound-exchange",
                           "--dead-letter-exchange",
                           "--outbound-queue",
                           "--queue-type",
                           "--log-level",
                           "--shutdown-timeout",
                           "--version"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        ASSERT_CONTAINS(text, flags[i]);
    free(text);
}

TEST(describe_redacts_secrets)
{
    parsed p = PARSE("--amqp-uri", "amqp://user:hunter2@h:5672/v", "--jube-api-key", "topsecret");
    ASSERT_EQ(p.rc, 0);
    char line[4096];
    ja_config_describe(&p.cfg, line, sizeof line);
    ASSERT_CONTAINS(line, "amqp-uri=amqp://user:***@h:5672/v");
    ASSERT_CONTAINS(line, "jube-api-key=(set)");
    ASSERT_CONTAINS(line, "prefetch=256");
    ASSERT(!strstr(line, "hunter2"));
    ASSERT(!strstr(line, "topsecret"));
    ja_config_free(&p.cfg);
}

/* A trailing line break (from a Kubernetes secret, or echo) is dropped; any other CR or LF in a
 * key, token or URL would split an HTTP header, so it is refused with the setting named and the
 * secret not shown. */
TEST(line_breaks_in_values)
{
    setenv("JUBE_API_KEY", "abc\n", 1);
    parsed p = parse_none();
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.jube_api_key, "abc");
    ja_config_free(&p.cfg);
    setenv("JUBE_API_KEY", "abc\r\n", 1);
    p = parse_none();
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.jube_api_key, "abc");
    ja_config_free(&p.cfg);
    setenv("JUBE_API_KEY", "abc\n\n", 1);
    p = parse_none();
    ASSERT_EQ(p.rc, -22);
    ja_config_free(&p.cfg);
    setenv("JUBE_API_KEY", "ab\r\nX-Injected: 1", 1);
    p = parse_none();
    ASSERT_EQ(p.rc, -22);
    ASSERT_CONTAINS(p.err, "environment variable JUBE_API_KEY");
    ASSERT_CONTAINS(p.err, "line break");
    ASSERT(!strstr(p.err, "Injected"));
    ja_config_free(&p.cfg);
    unsetenv("JUBE_API_KEY");
    p = PARSE("--jube-bearer-token", "tok\ren");
    ASSERT_EQ(p.rc, -22);
    ASSERT_CONTAINS(p.err, "--jube-bearer-token");
    ja_config_free(&p.cfg);
    p = PARSE("--jube-url", "http://jube:5001\n/x");
    ASSERT_EQ(p.rc, -22);
    ASSERT_CONTAINS(p.err, "--jube-url");
    ja_config_free(&p.cfg);
}

/* A flag beats a secret file named in the environment, and a file flag beats a value in the
 * environment; both given the same way are refused. */
TEST(secret_file_and_value_precedence)
{
    char *key_file = strdup(write_temp("from-file\n"));
    setenv("JUBE_API_KEY_FILE", key_file, 1);
    parsed p = PARSE("--jube-api-key", "from-flag");
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.jube_api_key, "from-flag");
    ja_config_free(&p.cfg);
    p = parse_none();
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.jube_api_key, "from-file");
    ja_config_free(&p.cfg);
    unsetenv("JUBE_API_KEY_FILE");
    setenv("JUBE_API_KEY", "from-env", 1);
    p = PARSE("--jube-api-key-file", key_file);
    ASSERT_EQ(p.rc, 0);
    ASSERT_STR_EQ(p.cfg.jube_api_key, "from-file");
    ja_config_free(&p.cfg);
    unsetenv("JUBE_API_KEY");
    p = PARSE("--jube-api-key", "x", "--jube-api-key-file", key_file);
    ASSERT_EQ(p.rc, -22);
    ASSERT_CONTAINS(p.err, "--jube-api-key-file and --jube-api-key are both set as flags");
    ja_config_free(&p.cfg);
    unlink(key_file);
    free(key_file);
}

/* A cluster: several URIs, each with its own credentials and scheme; quorum queues by default. */
TEST(several_nodes_in_one_uri_setting)
{
    parsed p = PARSE("--amqp-uri",
                     "amqp://a:pa@node1:5672/, amqps://b:pb@node2:5671/prod ,amqp://c:pc@node3");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.cfg.broker_count, 3);
    ASSERT_STR_EQ(p.cfg.brokers[0].name, "node1:5672");
    ASSERT_STR_EQ(p.cfg.brokers[1].name, "node2:5671");
    ASSERT(p.cfg.brokers[1].amqp.ssl);
    ASSERT_STR_EQ(p.cfg.brokers[1].amqp.user, "b");
    ASSERT_STR_EQ(p.cfg.brokers[1].amqp.vhost, "prod");
    ASSERT_STR_EQ(p.cfg.brokers[2].amqp.vhost, "/");
    ASSERT_EQ(p.cfg.queue_type, JA_QUEUE_QUORUM);
    char line[4096];
    ja_config_describe(&p.cfg, line, sizeof line);
    ASSERT_CONTAINS(line, "amqp-uri=amqp://a:***@node1:5672/%2F,amqps://b:***@node2:5671/prod,"
                          "amqp://c:***@node3:5672/%2F");
    ASSERT_CONTAINS(line, "queue-type=quorum");
    ASSERT(!strstr(line, "pb"));
    ja_config_free(&p.cfg);

    p = PARSE("--amqp-uri", "amqp://a@node1,amqp://a@node2", "--queue-type", "classic");
    ASSERT_EQ(p.rc, 0);
    ASSERT_EQ(p.cfg.queue_type, JA_QUEUE_CLASSIC);
    ja_config_free(&p.cfg);
    p = parse_none();
    ASSERT_EQ(p.cfg.queue_type, JA_QUEUE_CLASSIC); /* one node: classic */
    ja_config_free(&p.cfg);

    p = PARSE("--amqp-uri", "amqp://a:s3cret@node1,http://a:s3cret@node2");
    ASSERT_EQ(p.rc, -22);
    ASSERT_CONTAINS(p.err, "URI 2 of 2");
    ASSERT(!strstr(p.err, "s3cret"));
    ja_config_free(&p.cfg);
    p = PARSE("--amqp-uri", "amqp://node1,,amqp://node3");
    ASSERT_EQ(p.rc, -22);
    ja_config_free(&p.cfg);
}

TEST(jube_url_credentials_are_redacted)
{
    parsed p = PARSE("--jube-url", "https://svc:hunter2@jube.example:5001/base");
    ASSERT_EQ(p.rc, 0);
    char line[4096];
    ja_config_describe(&p.cfg, line, sizeof line);
    ASSERT_CONTAINS(line, "jube-url=https://svc:***@jube.example:5001/base");
    ASSERT(!strstr(line, "hunter2"));
    ja_config_free(&p.cfg);
    p = PARSE("--jube-url", "ftp://svc:hunter2@jube");
    ASSERT_EQ(p.rc, -22);
    ASSERT(!strstr(p.err, "hunter2"));
    ja_config_free(&p.cfg);
    char out[128];
    ja_config_redact_url("http://jube:5001/a@b", out, sizeof out);
    ASSERT_STR_EQ(out, "http://jube:5001/a@b");
    ja_config_redact_url("http://token@jube", out, sizeof out);
    ASSERT_STR_EQ(out, "http://***@jube");
}

int main(int argc, char **argv)
{
    /* Each test runs in its own child, so environment changes stay inside it. */
    static const test_case tests[] = {
        TEST_ENTRY(defaults),
        TEST_ENTRY(every_option_of_the_table_as_a_flag_both_ways_and_as_its_variable),
        TEST_ENTRY(many_flags_at_once),
        TEST_ENTRY(environment_then_flags_win),
        TEST_ENTRY(out_of_range_names_flag_value_and_range),
        TEST_ENTRY(not_a_number),
        TEST_ENTRY(worker_threads_share_the_calls),
        TEST_ENTRY(secrets_from_files),
        TEST_ENTRY(log_format_choice),
        TEST_ENTRY(tls_switch_and_files),
        TEST_ENTRY(bad_environment_value_names_the_variable),
        TEST_ENTRY(bad_choice_lists_the_choices),
        TEST_ENTRY(unknown_flag_missing_value_and_stray_argument),
        TEST_ENTRY(empty_name_refused),
        TEST_ENTRY(cross_field_checks),
        TEST_ENTRY(bad_amqp_uri_does_not_echo_the_password),
        TEST_ENTRY(long_name_refused),
        TEST_ENTRY(help_and_version),
        TEST_ENTRY(describe_redacts_secrets),
        TEST_ENTRY(line_breaks_in_values),
        TEST_ENTRY(secret_file_and_value_precedence),
        TEST_ENTRY(jube_url_credentials_are_redacted),
        TEST_ENTRY(several_nodes_in_one_uri_setting),
    };
    return RUN_TESTS(tests);
}
