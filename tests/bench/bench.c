/* bench: the measurements behind docs/BENCHMARKS.md, run by scripts/bench.sh against a private
 * RabbitMQ node and the stand-in Jube on this machine. Each noisy figure is the median of 3 runs.
 * Prints one table and writes it as JSON to the path given as the first argument. */

#include "capacity.h"
#include "harness.h"
#include "test.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>

#define RUNS        3
#define DRAIN_COUNT 100000L
#define MODEL       SAMPLE_MODEL

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *values, int n)
{
    qsort(values, (size_t)n, sizeof *values, compare_doubles);
    return values[n / 2];
}

/* ---- /proc readings of the service ---- */

/* utime + stime of a process, or of one of its threads when task is given. */
static double cpu_seconds_of(pid_t pid, const char *task)
{
    char path[128];
    if (task)
        snprintf(path, sizeof path, "/proc/%d/task/%s/stat", (int)pid, task);
    else
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        FAIL("cannot read %s", path);
    char line[4096];
    if (!fgets(line, sizeof line, f))
        FAIL("empty %s", path);
    fclose(f);
    /* Fields after the parenthesised name: state is field 3; utime 14, stime 15. */
    const char *p = strrchr(line, ')') + 2;
    unsigned long utime = 0, stime = 0;
    int field = 3;
    while (field < 14 && (p = strchr(p, ' ')))
        p++, field++;
    sscanf(p, "%lu %lu", &utime, &stime);
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_seconds(pid_t pid)
{
    return cpu_seconds_of(pid, NULL);
}

static long status_kib(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    size_t n = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            kib = atol(line + n + 1);
    if (f)
        fclose(f);
    return kib;
}

/* How many times a thread went to sleep and was woken (voluntary_ctxt_switches). */
static long wake_ups_of(pid_t pid, const char *task)
{
    char path[320], line[256];
    snprintf(path, sizeof path, "/proc/%d/task/%s/status", (int)pid, task);
    FILE *f = fopen(path, "r");
    long count = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            count = atol(line + 24);
    if (f)
        fclose(f);
    return count;
}

/* CPU and wake-ups of the service's threads grouped by role (the thread name up to its first '-'
 * or digit), printed per run so a regression shows which stage it is in. */
static double print_thread_cpu(pid_t pid, long count)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *dir = opendir(path);
    if (!dir)
        return NAN;
    char names[16][16] = {{0}};
    double seconds[16] = {0};
    long wake_ups[16] = {0};
    int roles = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.')
            continue;
        char file[512], name[16] = "";
        snprintf(file, sizeof file, "%s/%s/comm", path, entry->d_name);
        FILE *f = fopen(file, "r");
        if (!f)
            continue;
        if (fscanf(f, "%15[^-0-9\n]", name) != 1)
            strcpy(name, "?");
        fclose(f);
        int r = 0;
        while (r < roles && strcmp(names[r], name) != 0)
            r++;
        if (r == roles && roles < 16)
            snprintf(names[roles++], sizeof names[0], "%s", name);
        if (r < roles) {
            seconds[r] += cpu_seconds_of(pid, entry->d_name);
            wake_ups[r] += wake_ups_of(pid, entry->d_name);
        }
    }
    closedir(dir);
    fprintf(stderr, "  by thread:");
    for (int r = 0; r < roles; r++)
        fprintf(stderr, " %s %.1f us", names[r], seconds[r] * 1e6 / (double)count);
    fprintf(stderr, "\n  wake-ups per message:");
    long all = 0;
    for (int r = 0; r < roles; r++) {
        fprintf(stderr, " %s %.2f", names[r], (double)wake_ups[r] / (double)count);
        all += wake_ups[r];
    }
    fprintf(stderr, "\n");
    return (double)all / (double)count;
}

/* ---- loading queues ---- */

static void preload(const char *queue, long count, const char *prefix)
{
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, queue, true);
    test_disconnect(conn);
    publish_range(queue, prefix, 0, count);
}

static void wait_for_depth(amqp_connection_state_t conn, const char *queue, long count,
                           int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    while (queue_depth(conn, queue) < count) {
        if (now_ms() > deadline)
            FAIL("%s did not reach %ld messages within %d ms", queue, count, timeout_ms);
        pause_ms(2);
    }
}

/* The passthrough forwards transactions (TxnId); the service forwards Jube's answers
 * (EntityInstanceEntryId). */
static char *id_of(const amqp_envelope_t *msg)
{
    char *id = response_entry_id(msg);
    if (id)
        return id;
    cJSON *json = cJSON_ParseWithLength(msg->message.body.bytes, msg->message.body.len);
    const cJSON *txn = cJSON_GetObjectItemCaseSensitive(json, "TxnId");
    id = cJSON_IsString(txn) ? strdup(txn->valuestring) : NULL;
    cJSON_Delete(json);
    return id;
}

static void check_all_ids(amqp_connection_state_t conn, const char *queue, const char *prefix,
                          long count)
{
    message_list got = collect_messages(conn, queue, (size_t)count, 120000);
    ASSERT_EQ(got.count, count);
    unsigned char *seen = calloc((size_t)count, 1);
    size_t n = strlen(prefix);
    for (size_t i = 0; i < got.count; i++) {
        char *id = id_of(&got.items[i]);
        if (!id || strncmp(id, prefix, n) != 0)
            FAIL("unexpected response id %s", id ? id : "(none)");
        long index = atol(id + n + 1);
        ASSERT(index >= 0 && index < count && !seen[index]);
        seen[index] = 1;
        free(id);
    }
    free(seen);
    free_messages(&got);
}

/* ---- 1. the broker's own limit ---- */

/* The broker's CPU per message while the passthrough ran: what the broker alone costs; and the
 * passthrough's own, the floor of an AMQP consume-publish-confirm-ack loop. */
static double passthrough_broker_us, passthrough_own_us;

/* User and system CPU seconds of a getrusage() or wait4() reading. */
static double seconds_of(const struct rusage *usage)
{
    return (double)usage->ru_utime.tv_sec + (double)usage->ru_utime.tv_usec / 1e6 +
           (double)usage->ru_stime.tv_sec + (double)usage->ru_stime.tv_usec / 1e6;
}

/* Waits for a child and returns the CPU seconds it used. */
static double wait_cpu_seconds(pid_t pid, int *status)
{
    struct rusage usage;
    if (wait4(pid, status, 0, &usage) != pid)
        FAIL("wait4 failed");
    return seconds_of(&usage);
}

static double passthrough_rate(void)
{
    topology_names t = test_begin("bench_passthrough");
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, t.outbound_queue, true);
    amqp_exchange_declare(conn, 1, amqp_cstring_bytes(t.outbound), amqp_cstring_bytes("fanout"), 0,
                          1, 0, 0, amqp_empty_table);
    amqp_queue_bind(conn, 1, amqp_cstring_bytes(t.outbound_queue), amqp_cstring_bytes(t.outbound),
                    amqp_empty_bytes, amqp_empty_table);
    preload(t.inbound, DRAIN_COUNT, "p");
    char port[16], count[32];
    snprintf(port, sizeof port, "%d", broker_port());
    snprintf(count, sizeof count, "%ld", DRAIN_COUNT);
    long long start = now_ms();
    double broker_before = cpu_seconds(broker_pid());
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(STDERR_FILENO, STDOUT_FILENO); /* its report is for the log, not the table */
        execl(JA_PASSTHROUGH_BIN, "passthrough", "--port", port, "--queue", t.inbound, "--exchange",
              t.outbound, "--prefetch", "256", "--count", count, (char *)NULL);
        _exit(127);
    }
    wait_for_depth(conn, t.outbound_queue, DRAIN_COUNT, 600000);
    double seconds = (double)(now_ms() - start) / 1000.0;
    passthrough_broker_us = (cpu_seconds(broker_pid()) - broker_before) * 1e6 / (double)DRAIN_COUNT;
    fprintf(stderr, "passthrough: %.0f messages/s, broker %.1f us CPU/message\n",
            (double)DRAIN_COUNT / seconds, passthrough_broker_us);
    int status;
    passthrough_own_us = wait_cpu_seconds(pid, &status) * 1e6 / (double)DRAIN_COUNT;
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    fprintf(stderr, "passthrough: its own CPU %.1f us/message\n", passthrough_own_us);
    check_all_ids(conn, t.outbound_queue, "p", DRAIN_COUNT);
    test_disconnect(conn);
    delete_topology(&t);
    return (double)DRAIN_COUNT / seconds;
}

/* ---- 2. the stand-in's own limit, measured with wrk ---- */

static double stub_rate(void)
{
    stub_process stub = stub_start(NULL);
    const char *script = "/tmp/jube-amqp-bench-post.lua";
    FILE *f = fopen(script, "w");
    char *body = sample_transaction("wrk");
    fprintf(f,
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\n"
            "wrk.body = [==[%s]==]\n",
            body);
    fclose(f);
    free(body);
    char command[512];
    snprintf(command, sizeof command,
             "wrk -t2 -c64 -d5s -s %s http://127.0.0.1:%d/api/invoke/EntityAnalysisModel/%s "
             "2>&1 | awk '/Requests\\/sec/ {print $2}'",
             script, stub.port, MODEL);
    FILE *out = popen(command, "r");
    double rate = 0;
    if (!out || fscanf(out, "%lf", &rate) != 1)
        FAIL("could not run wrk against the stand-in");
    pclose(out);
    ASSERT(stub_stat(&stub, "invocations") > 0);
    stub_stop(&stub);
    return rate;
}

/* The floor of the workers' part: a small libcurl multi client's CPU per call against the
 * stand-in (one thread, `concurrency` keep-alive connections: 64 like the drain's workers, or 1,
 * where every answer wakes it as at partial load). */
static double curl_client_us(const char *concurrency)
{
    enum { CALLS = 100000 };
    stub_process stub = stub_start(NULL);
    const char *path = "/tmp/jube-amqp-bench-body.json";
    FILE *f = fopen(path, "w");
    char *body = sample_transaction("curl");
    fputs(body, f);
    fclose(f);
    free(body);
    char port[16], count[16];
    snprintf(port, sizeof port, "%d", stub.port);
    snprintf(count, sizeof count, "%d", CALLS);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        dup2(STDERR_FILENO, STDOUT_FILENO);
        execl(JA_CURL_CLIENT_BIN, "curl_client", "--port", port, "--count", count, "--concurrency",
              concurrency, "--body-file", path, (char *)NULL);
        _exit(127);
    }
    int status;
    double us = wait_cpu_seconds(pid, &status) * 1e6 / CALLS;
    ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    stub_stop(&stub);
    fprintf(stderr, "libcurl multi client, %s at once: %.1f us CPU/call\n", concurrency, us);
    return us;
}

/* The price of one wake-up on this machine: two threads hand a token back and forth through
 * eventfds, each sleeping in poll() until the other writes, as the service's threads do at
 * partial load. The CPU of both threads per hand-over: the waker's write and the wake-up. */
typedef struct {
    int in, out, rounds;
    double cpu_seconds;
} wake_side;

static void *wake_side_run(void *arg)
{
    wake_side *side = arg;
    uint64_t one = 1, got;
    for (int i = 0; i < side->rounds; i++) {
        struct pollfd pfd = {.fd = side->in, .events = POLLIN};
        if (poll(&pfd, 1, 10000) != 1)
            FAIL("the other thread did not wake this one within 10 s");
        if (read(side->in, &got, sizeof got) != sizeof got ||
            write(side->out, &one, sizeof one) < 0)
            FAIL("eventfd failed");
    }
    struct rusage usage;
    getrusage(RUSAGE_THREAD, &usage);
    side->cpu_seconds = seconds_of(&usage);
    return NULL;
}

static double wake_up_us(void)
{
    enum { ROUNDS = 20000 };
    int a = eventfd(0, 0), b = eventfd(0, 0);
    wake_side sides[2] = {{.in = a, .out = b, .rounds = ROUNDS},
                          {.in = b, .out = a, .rounds = ROUNDS}};
    pthread_t threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&threads[i], NULL, wake_side_run, &sides[i]);
    uint64_t one = 1;
    if (write(a, &one, sizeof one) < 0)
        FAIL("eventfd failed");
    for (int i = 0; i < 2; i++)
        pthread_join(threads[i], NULL);
    close(a);
    close(b);
    double us = (sides[0].cpu_seconds + sides[1].cpu_seconds) * 1e6 / (2.0 * ROUNDS);
    fprintf(stderr, "one thread waking another: %.1f us CPU per wake-up\n", us);
    return us;
}

/* ---- 3. drain ---- */

/* CPU of each process per message, so the table shows where the machine's two cores went. */
typedef struct {
    double rate, cpu_us_per_message, broker_us_per_message, stub_us_per_message;
    long peak_rss_kib;
} drain_result;

static drain_result drain(const char *const *args, const char *stub_latency, long count)
{
    topology_names t = test_begin("bench_drain");
    const char *stub_args[] = {"--latency-ms", stub_latency, NULL};
    stub_process stub = stub_start(stub_args);
    preload(t.inbound, count, "d");
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, t.outbound_queue, true);
    long long start = now_ms();
    double broker_before = cpu_seconds(broker_pid()), stub_before = cpu_seconds(stub.pid);
    service_process svc = service_start("bench_drain", &t, &stub, args);
    wait_for_depth(conn, t.outbound_queue, count, 600000);
    drain_result r;
    r.rate = (double)count / ((double)(now_ms() - start) / 1000.0);
    r.cpu_us_per_message = cpu_seconds(svc.pid) * 1e6 / (double)count;
    r.broker_us_per_message = (cpu_seconds(broker_pid()) - broker_before) * 1e6 / (double)count;
    r.stub_us_per_message = (cpu_seconds(stub.pid) - stub_before) * 1e6 / (double)count;
    r.peak_rss_kib = status_kib(svc.pid, "VmHWM");
    print_thread_cpu(svc.pid, count);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    check_all_ids(conn, t.outbound_queue, "d", count);
    test_disconnect(conn);
    stub_stop(&stub);
    delete_topology(&t);
    return r;
}

/* ---- 4. latency at a steady rate ---- */

typedef struct {
    const char *queue;
    long expected;
    double *latencies_ms;
    long received;
} latency_probe;

static long long now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void *collect_latencies(void *arg)
{
    latency_probe *p = arg;
    amqp_connection_state_t conn = test_connect();
    amqp_channel_t ch = 7;
    amqp_channel_open(conn, ch);
    amqp_basic_consume(conn, ch, amqp_cstring_bytes(p->queue), amqp_empty_bytes, 0, 1, 0,
                       amqp_empty_table);
    long long deadline = now_ms() + 120000;
    while (p->received < p->expected && now_ms() < deadline) {
        amqp_maybe_release_buffers(conn);
        amqp_envelope_t env;
        struct timeval tv = {.tv_usec = 100000};
        amqp_rpc_reply_t r = amqp_consume_message(conn, &env, &tv, 0);
        if (r.reply_type != AMQP_RESPONSE_NORMAL) {
            if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
                r.library_error == AMQP_STATUS_UNEXPECTED_STATE) {
                amqp_frame_t frame;
                amqp_simple_wait_frame(conn, &frame);
            }
            continue;
        }
        const amqp_field_value_t *sent = header_of(&env, "x-bench-sent-ns");
        if (sent && sent->kind == AMQP_FIELD_KIND_UTF8) {
            char text[32];
            snprintf(text, sizeof text, "%.*s", (int)sent->value.bytes.len,
                     (char *)sent->value.bytes.bytes);
            p->latencies_ms[p->received++] = (double)(now_ns() - atoll(text)) / 1e6;
        }
        amqp_destroy_envelope(&env);
    }
    test_disconnect(conn);
    return NULL;
}

typedef struct {
    double p50, p99, max;
    double cpu_us_per_message;   /* the service's, over the run */
    double wake_ups_per_message; /* of all its threads */
} latency_result;

/* The service's flags for the drains and the steady loads (main sets them). */
static const char *const *load_args;

static latency_result latency_at(double rate, int seconds, const char *stub_latency)
{
    topology_names t = test_begin("bench_latency");
    const char *stub_args[] = {"--latency-ms", stub_latency, NULL};
    stub_process stub = stub_start(stub_args);
    service_process svc = service_start("bench_latency", &t, &stub, load_args);
    long count = (long)(rate * seconds);
    latency_probe probe = {.queue = t.outbound_queue, .expected = count};
    probe.latencies_ms = calloc((size_t)count, sizeof(double));
    pthread_t collector;
    pthread_create(&collector, NULL, collect_latencies, &probe);
    amqp_connection_state_t conn = test_connect();
    long long deadline = now_ms() + 10000;
    while (queue_consumers(conn, t.outbound_queue) < 1) { /* the collector subscribes */
        ASSERT(now_ms() < deadline);
        pause_ms(5);
    }

    char *body = sample_transaction("latency");
    double cpu_before = cpu_seconds(svc.pid);
    long long start = now_ns();
    for (long i = 0; i < count; i++) {
        long long due = start + (long long)((double)i * 1e9 / rate);
        long long wait = due - now_ns();
        if (wait > 0) {
            struct timespec d = {.tv_sec = wait / 1000000000LL, .tv_nsec = wait % 1000000000LL};
            nanosleep(&d, NULL);
        }
        char sent[32];
        snprintf(sent, sizeof sent, "%lld", now_ns());
        test_header headers[] = {{.key = "EntityAnalysisModelGuid", .kind = 'S', .text = MODEL},
                                 {.key = "x-bench-sent-ns", .kind = 'S', .text = sent}};
        test_properties props = {.headers = headers, .header_count = 2};
        publish_message(conn, t.inbound, body, strlen(body), &props);
    }
    wait_confirms(conn);
    test_disconnect(conn);
    pthread_join(collector, NULL);
    double cpu_used = cpu_seconds(svc.pid) - cpu_before;
    double wake_ups = print_thread_cpu(svc.pid, count);
    ASSERT_EQ(probe.received, count);
    qsort(probe.latencies_ms, (size_t)count, sizeof(double), compare_doubles);
    latency_result r = {probe.latencies_ms[count / 2], probe.latencies_ms[count * 99 / 100],
                        probe.latencies_ms[count - 1], cpu_used * 1e6 / (double)count, wake_ups};
    free(probe.latencies_ms);
    free(body);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    stub_stop(&stub);
    delete_topology(&t);
    return r;
}

/* ---- 6. a Jube with a knee: fixed against adaptive concurrency ---- */

typedef struct {
    double rate, calls_per_message, refused_per_message;
    double limit;   /* the adaptive limit at the end; the bound with fixed */
    double at_jube; /* calls under way inside Jube, on average over the run */
    double jube_ms; /* the time Jube took per call, on average */
} knee_result;

static const char *const knee_stub[] = {
    "--latency-ms", "5", "--knee", "10", "--knee-step-ms", "5", "--overload-above", "40", NULL};

/* The same knee for every setting: exactly the knee, fixed ones beyond it (slow, so fewer
 * messages), and adaptive with a bound far beyond it. */
enum { KNEE_SETTINGS = 5, KNEE_ADAPTIVE = 4 };
static const struct {
    const char *workers, *mode;
    long count;
} knee_settings[KNEE_SETTINGS] = {{"10", "fixed", 10000},
                                  {"16", "fixed", 5000},
                                  {"64", "fixed", 3000},
                                  {"256", "fixed", 3000},
                                  {"256", "adaptive", 10000}};

static knee_result knee_run(const char *workers, const char *mode, long count)
{
    topology_names t = test_begin("bench_knee");
    stub_process stub = stub_start(knee_stub);
    preload(t.inbound, count, "k");
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, t.outbound_queue, true);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--workers",  workers, "--concurrency",    mode,
                          "--prefetch", "512",   "--metrics-listen", listen,
                          NULL};
    long long start = now_ms();
    service_process svc = service_start("bench_knee", &t, &stub, args);
    wait_for_depth(conn, t.outbound_queue, count, 600000);
    long long elapsed_ms = now_ms() - start;
    knee_result r = {.rate = (double)count / ((double)elapsed_ms / 1000.0)};
    r.limit = scrape_metric(port, "jube_amqp_jube_concurrency_limit");
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    long calls = stub_stat(&stub, "requests"), serving_ms = stub_stat(&stub, "serving_ms");
    r.calls_per_message = (double)calls / (double)count;
    r.refused_per_message = (double)stub_stat(&stub, "overloaded") / (double)count;
    r.at_jube = (double)serving_ms / (double)elapsed_ms;
    r.jube_ms = (double)serving_ms / (double)calls;
    check_all_ids(conn, t.outbound_queue, "k", count);
    test_disconnect(conn);
    stub_stop(&stub);
    delete_topology(&t);
    fprintf(stderr,
            "knee, %s %s workers: %.0f msg/s, %.2f calls and %.2f 503s per message, "
            "limit %.0f; %.2f calls inside Jube on average, %.2f ms each\n",
            mode, workers, r.rate, r.calls_per_message, r.refused_per_message, r.limit, r.at_jube,
            r.jube_ms);
    return r;
}

/* ---- 7. idle ---- */

static double idle_cpu_percent(int seconds)
{
    topology_names t = test_begin("bench_idle");
    stub_process stub = stub_start(NULL);
    service_process svc = service_start("bench_idle", &t, &stub, NULL);
    pause_ms(2000);
    double before = cpu_seconds(svc.pid);
    pause_ms(seconds * 1000L);
    double used = cpu_seconds(svc.pid) - before;
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    stub_stop(&stub);
    delete_topology(&t);
    return used * 100.0 / seconds;
}

/* ---- 8. the ring ---- */

static void ring_rates(double rates[4])
{
    FILE *out = popen(JA_RING_BENCH_BIN, "r");
    char shape1[16], shape2[16];
    if (!out ||
        fscanf(out, "ring %15s %lf mutex %15s %lf\n", shape1, &rates[0], shape2, &rates[1]) != 4 ||
        fscanf(out, "ring %15s %lf mutex %15s %lf\n", shape1, &rates[2], shape2, &rates[3]) != 4)
        FAIL("ring_bench failed");
    pclose(out);
}

/* JA_BENCH_ONLY=limit,drain (for instance) runs only those sections while tuning; the table
 * for docs/BENCHMARKS.md comes from a full run. "knee" runs only the knee section, "capacity"
 * only Jube's capacity moving and its outage, once each, "bound" a flat 20 ms Jube at 64 calls,
 * fixed and adaptive, once each. */
static bool wanted(const char *section)
{
    const char *only = getenv("JA_BENCH_ONLY");
    return !only || strstr(only, section) != NULL;
}

int main(int argc, char **argv)
{
    const char *json_path = argc > 1 ? argv[1] : "bench.json";
    double samples[RUNS], cpu[RUNS], rss[RUNS], broker_cpu[RUNS], stub_cpu[RUNS];

    double limit = NAN, stub = NAN, limit_broker_cpu = NAN, floor_amqp = NAN, floor_http = NAN;
    double floor_http_one = NAN, floor_wake_up = NAN;
    if (wanted("limit") || wanted("cpu")) {
        for (int i = 0; i < RUNS; i++) {
            samples[i] = passthrough_rate();
            broker_cpu[i] = passthrough_broker_us;
            cpu[i] = passthrough_own_us;
        }
        limit = median(samples, RUNS);
        limit_broker_cpu = median(broker_cpu, RUNS);
        floor_amqp = median(cpu, RUNS);
        for (int i = 0; i < RUNS; i++)
            cpu[i] = curl_client_us("64");
        floor_http = median(cpu, RUNS);
        for (int i = 0; i < RUNS; i++)
            cpu[i] = curl_client_us("1");
        floor_http_one = median(cpu, RUNS);
        for (int i = 0; i < RUNS; i++)
            cpu[i] = wake_up_us();
        floor_wake_up = median(cpu, RUNS);
        fprintf(stderr,
                "passthrough limit: %.0f messages/s; floor %.1f us (AMQP) + %.1f us (HTTP)\n",
                limit, floor_amqp, floor_http);
    }
    if (wanted("stub")) {
        for (int i = 0; i < RUNS; i++)
            samples[i] = stub_rate();
        stub = median(samples, RUNS);
        fprintf(stderr, "stand-in Jube: %.0f requests/s\n", stub);
    }
    if (getenv("JA_BENCH_ONLY") && wanted("knee")) {
        for (int k = 0; k < KNEE_SETTINGS; k++)
            knee_run(knee_settings[k].workers, knee_settings[k].mode, knee_settings[k].count);
        return 0;
    }
    if (getenv("JA_BENCH_ONLY") && wanted("capacity")) {
        capacity_change_run("bench_capacity");
        capacity_outage_run("bench_outage");
        return 0;
    }
    if (getenv("JA_BENCH_ONLY") && wanted("bound")) {
        /* A flat 20 ms Jube, fixed 64 calls against adaptive with a bound of 64, once each. */
        for (int adaptive = 0; adaptive < 2; adaptive++) {
            const char *args[] = {"--workers",
                                  "64",
                                  "--prefetch",
                                  "128",
                                  "--concurrency",
                                  adaptive ? "adaptive" : "fixed",
                                  NULL};
            fprintf(stderr, "Jube at 20 ms, %s 64: %.0f messages/s\n",
                    adaptive ? "adaptive" : "fixed", drain(args, "20", 16000).rate);
        }
        return 0;
    }
    if (!wanted("drain") && !wanted("cpu"))
        return 0;

    const char *drain_workers = getenv("JA_BENCH_WORKERS") ? getenv("JA_BENCH_WORKERS") : "64";
    /* JA_BENCH_DRAIN_FLAGS="--worker-threads 1" (for instance) adds flags while tuning. */
    const char *drain_args[16] = {"--workers", drain_workers,   "--prefetch",
                                  "256",       "--concurrency", "fixed"};
    char *extra = strdup(getenv("JA_BENCH_DRAIN_FLAGS") ? getenv("JA_BENCH_DRAIN_FLAGS") : "");
    int argn = 6;
    for (char *save = NULL, *word = strtok_r(extra, " ", &save); word && argn < 15;
         word = strtok_r(NULL, " ", &save))
        drain_args[argn++] = word;
    load_args = drain_args;
    const double fractions[3] = {0.25, 0.5, 0.8};
    if (getenv("JA_BENCH_RATES")) {
        /* While tuning: JA_BENCH_RATES="1600 3200" runs only those steady loads, against a Jube
         * answering in JA_BENCH_JUBE_MS (0 unless given). */
        const char *latency = getenv("JA_BENCH_JUBE_MS") ? getenv("JA_BENCH_JUBE_MS") : "0";
        char *rates = strdup(getenv("JA_BENCH_RATES"));
        for (char *save = NULL, *word = strtok_r(rates, " ", &save); word;
             word = strtok_r(NULL, " ", &save)) {
            latency_result r = latency_at(atof(word), 5, latency);
            fprintf(stderr, "cpu, Jube %s ms, %s msg/s: %.1f us/msg, p50 %.2f ms, p99 %.2f ms\n",
                    latency, word, r.cpu_us_per_message, r.p50, r.p99);
        }
        free(rates);
        return 0;
    }
    if (getenv("JA_BENCH_ONLY") && wanted("cpu")) {
        /* While tuning: one run of each, the CPU per message at every load against the floor. */
        for (int m = 0; m < 2; m++) {
            const char *latency = m ? "1" : "0";
            drain_result d = drain(drain_args, latency, DRAIN_COUNT);
            fprintf(stderr, "cpu, Jube %s ms: drain %.0f msg/s at %.1f us/msg (floor %.1f)\n",
                    latency, d.rate, d.cpu_us_per_message, floor_amqp + floor_http);
            for (int f = 0; f < 3; f++) {
                latency_result r = latency_at(d.rate * fractions[f], 5, latency);
                fprintf(stderr, "cpu, Jube %s ms: %.0f%% of the drain: %.1f us/msg, p99 %.2f ms\n",
                        latency, fractions[f] * 100, r.cpu_us_per_message, r.p99);
            }
        }
        return 0;
    }
    for (int i = 0; i < RUNS; i++) {
        drain_result r = drain(drain_args, "0", DRAIN_COUNT);
        samples[i] = r.rate;
        cpu[i] = r.cpu_us_per_message;
        broker_cpu[i] = r.broker_us_per_message;
        stub_cpu[i] = r.stub_us_per_message;
        rss[i] = (double)r.peak_rss_kib;
        fprintf(stderr,
                "drain run %d: %.0f messages/s, %.1f us CPU/message (broker %.1f, stand-in %.1f), "
                "%ld KiB peak RSS\n",
                i + 1, r.rate, r.cpu_us_per_message, r.broker_us_per_message, r.stub_us_per_message,
                r.peak_rss_kib);
    }
    double drain_rate = median(samples, RUNS);
    double cpu_per_message = median(cpu, RUNS);
    /* The same drain with 16 calls, and adaptive with 64 as its bound: adaptive must carry 95% of
     * the better fixed one. */
    const char *drain16_args[] = {"--workers",     "16",    "--prefetch", "256",
                                  "--concurrency", "fixed", NULL};
    const char *drain_adaptive_args[] = {
        "--workers", "64", "--concurrency", "adaptive", "--prefetch", "256", NULL};
    double drain16_rate, drain_adaptive_rate;
    {
        double runs16[RUNS], runs_adaptive[RUNS];
        for (int i = 0; i < RUNS; i++) {
            runs16[i] = drain(drain16_args, "0", DRAIN_COUNT).rate;
            runs_adaptive[i] = drain(drain_adaptive_args, "0", DRAIN_COUNT).rate;
            fprintf(stderr, "drain run %d: 16 workers %.0f, adaptive (64) %.0f messages/s\n", i + 1,
                    runs16[i], runs_adaptive[i]);
        }
        drain16_rate = median(runs16, RUNS);
        drain_adaptive_rate = median(runs_adaptive, RUNS);
    }
    double best_fixed_drain = drain16_rate > drain_rate ? drain16_rate : drain_rate;
    double peak_rss = median(rss, RUNS);
    double drain_broker_cpu = median(broker_cpu, RUNS), drain_stub_cpu = median(stub_cpu, RUNS);
    if (getenv("JA_BENCH_ONLY") && !wanted("latency"))
        return 0;

    /* The same with Jube answering in 1 ms: answers spread out, so wake-ups dominate. */
    double slow_cpu[RUNS];
    for (int i = 0; i < RUNS; i++) {
        drain_result r = drain(drain_args, "1", DRAIN_COUNT);
        samples[i] = r.rate;
        slow_cpu[i] = r.cpu_us_per_message;
        fprintf(stderr, "drain with a 1 ms Jube, run %d: %.0f messages/s, %.1f us CPU/message\n",
                i + 1, r.rate, r.cpu_us_per_message);
    }
    double slow_drain_rate = median(samples, RUNS);
    double slow_cpu_per_message = median(slow_cpu, RUNS);

    /* Latency and CPU at 25, 50 and 80% of each drain rate: [0] Jube at once, [1] in 1 ms. */
    latency_result latency[2][3];
    for (int m = 0; m < 2; m++) {
        for (int f = 0; f < 3; f++) {
            double p50[RUNS], p99[RUNS], max[RUNS], used[RUNS], wakes[RUNS];
            double rate = (m ? slow_drain_rate : drain_rate) * fractions[f];
            for (int i = 0; i < RUNS; i++) {
                latency_result r = latency_at(rate, 5, m ? "1" : "0");
                p50[i] = r.p50, p99[i] = r.p99, max[i] = r.max, used[i] = r.cpu_us_per_message;
                wakes[i] = r.wake_ups_per_message;
            }
            latency[m][f] =
                (latency_result){median(p50, RUNS), median(p99, RUNS), median(max, RUNS),
                                 median(used, RUNS), median(wakes, RUNS)};
            fprintf(stderr,
                    "Jube %s ms, %.0f%% of the drain: p50 %.2f ms, p99 %.2f ms, max %.2f ms, "
                    "%.1f us CPU/message\n",
                    m ? "1" : "0", fractions[f] * 100, latency[m][f].p50, latency[m][f].p99,
                    latency[m][f].max, latency[m][f].cpu_us_per_message);
        }
    }

    /* A flat 20 ms Jube: fixed 16, 64 and 256 calls, and adaptive with a bound of 64 (the last
     * row), which must carry 95% of what fixed 64 does. */
    const int worker_counts[4] = {16, 64, 256, 64};
    double bound_rate[4], bound_ideal[4];
    for (int w = 0; w < 4; w++) {
        char workers[16], prefetch[16];
        snprintf(workers, sizeof workers, "%d", worker_counts[w]);
        snprintf(prefetch, sizeof prefetch, "%d", worker_counts[w] * 2);
        const char *args[] = {"--workers", workers,         "--prefetch",
                              prefetch,    "--concurrency", w == 3 ? "adaptive" : "fixed",
                              NULL};
        double ideal = worker_counts[w] / 0.020;
        bound_ideal[w] = ideal < limit ? ideal : limit;
        long count = (long)(bound_ideal[w] * 5);
        for (int i = 0; i < RUNS; i++)
            samples[i] = drain(args, "20", count).rate;
        bound_rate[w] = median(samples, RUNS);
        fprintf(stderr, "latency-bound, %s %d workers: %.0f messages/s of %.0f ideal\n",
                w == 3 ? "adaptive" : "fixed", worker_counts[w], bound_rate[w], bound_ideal[w]);
    }

    knee_result knee[KNEE_SETTINGS];
    for (int k = 0; k < KNEE_SETTINGS; k++) {
        knee_result runs[RUNS];
        for (int i = 0; i < RUNS; i++) {
            runs[i] =
                knee_run(knee_settings[k].workers, knee_settings[k].mode, knee_settings[k].count);
            samples[i] = runs[i].rate;
        }
        double rate = median(samples, RUNS);
        for (int i = 0; i < RUNS; i++)
            if (runs[i].rate == rate)
                knee[k] = runs[i];
    }

    /* Jube's capacity moving (5 calls, 40, 5) and Jube gone for 2 s: medians of the times the
     * limit took to follow. */
    double up[RUNS], down[RUNS], back[RUNS];
    for (int i = 0; i < RUNS; i++) {
        capacity_change c = capacity_change_run("bench_capacity");
        capacity_outage o = capacity_outage_run("bench_outage");
        up[i] = c.up_ms < 0 ? INFINITY : (double)c.up_ms;
        down[i] = c.down_ms < 0 ? INFINITY : (double)c.down_ms;
        back[i] = o.back_ms < 0 ? INFINITY : (double)o.back_ms;
    }
    double up_ms = median(up, RUNS), down_ms = median(down, RUNS), back_ms = median(back, RUNS);

    double idle = idle_cpu_percent(30);
    fprintf(stderr, "idle: %.3f%% of a core\n", idle);
    double ring[4];
    ring_rates(ring);

    printf("| measure | result | target | met |\n|---|---|---|---|\n");
    printf("| broker passthrough limit (prefetch 256, confirms) | %.0f msg/s | - | - |\n", limit);
    printf("| stand-in Jube alone (wrk, 64 connections) | %.0f req/s | not the bottleneck | %s |\n",
           stub, stub > drain_rate ? "yes" : "no");
    printf("| drain of %ld messages (64 workers, prefetch 256) | %.0f msg/s = %.0f%% of the limit "
           "| >= 85%% | %s |\n",
           DRAIN_COUNT, drain_rate, 100 * drain_rate / limit,
           drain_rate >= 0.85 * limit ? "yes" : "no");
    double floor_us = floor_amqp + floor_http;
    printf("| drain, 16 workers / adaptive with a bound of 64 | %.0f / %.0f msg/s = %.0f%% of the "
           "best "
           "fixed | adaptive >= 95%% | %s |\n",
           drain16_rate, drain_adaptive_rate, 100 * drain_adaptive_rate / best_fixed_drain,
           drain_adaptive_rate >= 0.95 * best_fixed_drain ? "yes" : "no");
    printf("| floor: the passthrough's own CPU (AMQP) + a libcurl multi client's (HTTP) | %.1f + "
           "%.1f = %.1f us/msg | - | - |\n",
           floor_amqp, floor_http, floor_us);
    printf("| floor at partial load: a libcurl client making one call at a time; one thread waking "
           "another (eventfd) | %.1f us/call; %.1f us/wake-up | - | - |\n",
           floor_http_one, floor_wake_up);
    printf("| CPU of jube-amqp at drain, Jube at once | %.1f us/msg = %.2f x the floor | <= 25 "
           "us/msg | %s |\n",
           cpu_per_message, cpu_per_message / floor_us, cpu_per_message <= 25 ? "yes" : "no");
    printf("| drain and CPU of jube-amqp, Jube in 1 ms | %.0f msg/s, %.1f us/msg = %.2f x the "
           "floor | <= 25 us/msg | %s |\n",
           slow_drain_rate, slow_cpu_per_message, slow_cpu_per_message / floor_us,
           slow_cpu_per_message <= 25 ? "yes" : "no");
    printf("| CPU of the broker: passthrough / drain | %.1f / %.1f us/msg | - | - |\n",
           limit_broker_cpu, drain_broker_cpu);
    printf("| CPU of the stand-in Jube at drain | %.1f us/msg | - | - |\n", drain_stub_cpu);
    printf("| peak RSS at drain | %.1f MiB | <= 32 MiB | %s |\n", peak_rss / 1024,
           peak_rss <= 32 * 1024 ? "yes" : "no");
    for (int m = 0; m < 2; m++)
        for (int f = 0; f < 3; f++) {
            const latency_result *l = &latency[m][f];
            bool p99_target = m == 0 && f == 1;
            bool met = l->cpu_us_per_message <= 35 && (!p99_target || l->p99 <= 5);
            printf(
                "| Jube %s, %.0f%% of drain (%.0f msg/s): p50 / p99 / max; CPU; wake-ups | %.2f / "
                "%.2f / %.2f ms; %.1f us/msg = %.2f x the floor; %.1f per msg | %s | %s |\n",
                m ? "in 1 ms" : "at once", fractions[f] * 100,
                (m ? slow_drain_rate : drain_rate) * fractions[f], l->p50, l->p99, l->max,
                l->cpu_us_per_message, l->cpu_us_per_message / floor_us, l->wake_ups_per_message,
                p99_target ? "p99 <= 5 ms; <= 35 us/msg" : "<= 35 us/msg", met ? "yes" : "no");
        }
    for (int w = 0; w < 3; w++)
        printf("| Jube at 20 ms, %d workers | %.0f msg/s = %.0f%% of %.0f ideal | >= 90%% | %s |\n",
               worker_counts[w], bound_rate[w], 100 * bound_rate[w] / bound_ideal[w],
               bound_ideal[w], bound_rate[w] >= 0.9 * bound_ideal[w] ? "yes" : "no");
    printf("| Jube at 20 ms, adaptive with a bound of 64 | %.0f msg/s = %.0f%% of fixed 64 | >= "
           "95%% of fixed 64 | %s |\n",
           bound_rate[3], 100 * bound_rate[3] / bound_rate[1],
           bound_rate[3] >= 0.95 * bound_rate[1] ? "yes" : "no");
    for (int k = 0; k < KNEE_SETTINGS; k++) {
        bool adaptive = k == KNEE_ADAPTIVE;
        const knee_result *r = &knee[k];
        bool met = r->rate >= 0.9 * 2000 && r->refused_per_message < 0.01 * r->calls_per_message;
        printf("| Jube with a knee (5 ms to 10 calls, +5 ms each beyond, 503 above 40), %s %s "
               "workers | %.0f msg/s = %.0f%% of the knee's 2000; %.2f calls inside Jube on "
               "average (%.2f ms each); %.2f calls, %.3f 503s per message; limit %.0f | %s | %s "
               "|\n",
               knee_settings[k].mode, knee_settings[k].workers, r->rate, 100 * r->rate / 2000,
               r->at_jube, r->jube_ms, r->calls_per_message, r->refused_per_message, r->limit,
               adaptive ? ">= 90% of the knee, 503s < 1% of calls" : "-",
               adaptive ? (met ? "yes" : "no") : "-");
    }
    printf(
        "| Jube's capacity 5 -> 40 calls (20 ms a call, +5 ms each beyond): the adaptive limit at "
        "32 or more after | %.0f ms | <= 2000 ms | %s |\n",
        up_ms, up_ms <= 2000 ? "yes" : "no");
    printf("| ... and back 40 -> 5: the limit back near 5 after | %.0f ms | <= 2000 ms | %s |\n",
           down_ms, down_ms <= 2000 ? "yes" : "no");
    printf(
        "| Jube gone for 2 s (knee 40): the limit at 80%% of before, after Jube's return | %.0f ms "
        "| <= 2000 ms | %s |\n",
        back_ms, back_ms <= 2000 ? "yes" : "no");
    printf("| idle CPU over 30 s | %.3f%% of a core | < 0.5%% | %s |\n", idle,
           idle < 0.5 ? "yes" : "no");
    printf("| ring 1 -> 64 (vs mutex + condvar) | %.2f M/s (%.2f M/s) | ring faster | %s |\n",
           ring[0] / 1e6, ring[1] / 1e6, ring[0] > ring[1] ? "yes" : "no");
    printf("| ring 64 -> 1 (vs mutex + condvar) | %.2f M/s (%.2f M/s) | ring faster | %s |\n",
           ring[2] / 1e6, ring[3] / 1e6, ring[2] > ring[3] ? "yes" : "no");

    FILE *json = fopen(json_path, "w");
    if (!json)
        FAIL("cannot write %s", json_path);
    fprintf(json,
            "{\"passthrough_msgs_per_s\":%.0f,\"stub_requests_per_s\":%.0f,"
            "\"drain_msgs_per_s\":%.0f,\"drain_fraction_of_limit\":%.3f,"
            "\"cpu_us_per_msg\":%.2f,\"broker_cpu_us_per_msg_passthrough\":%.2f,"
            "\"broker_cpu_us_per_msg_drain\":%.2f,\"stub_cpu_us_per_msg_drain\":%.2f,"
            "\"peak_rss_kib\":%.0f,\"floor_amqp_us\":%.2f,\"floor_http_us\":%.2f,"
            "\"floor_http_one_at_a_time_us\":%.2f,\"floor_wake_up_us\":%.2f,"
            "\"slow_drain_msgs_per_s\":%.0f,\"slow_cpu_us_per_msg\":%.2f,\"latency_ms\":[",
            limit, stub, drain_rate, drain_rate / limit, cpu_per_message, limit_broker_cpu,
            drain_broker_cpu, drain_stub_cpu, peak_rss, floor_amqp, floor_http, floor_http_one,
            floor_wake_up, slow_drain_rate, slow_cpu_per_message);
    for (int m = 0; m < 2; m++)
        for (int f = 0; f < 3; f++)
            fprintf(json,
                    "%s{\"jube_ms\":%d,\"fraction\":%.2f,\"p50\":%.3f,\"p99\":%.3f,"
                    "\"max\":%.3f,\"cpu_us_per_msg\":%.2f,\"wake_ups_per_msg\":%.2f}",
                    m || f ? "," : "", m, fractions[f], latency[m][f].p50, latency[m][f].p99,
                    latency[m][f].max, latency[m][f].cpu_us_per_message,
                    latency[m][f].wake_ups_per_message);
    fprintf(json, "],\"latency_bound\":[");
    for (int w = 0; w < 4; w++)
        fprintf(json, "%s{\"mode\":\"%s\",\"workers\":%d,\"msgs_per_s\":%.0f,\"ideal\":%.0f}",
                w ? "," : "", w == 3 ? "adaptive" : "fixed", worker_counts[w], bound_rate[w],
                bound_ideal[w]);
    fprintf(json, "],\"knee\":[");
    for (int k = 0; k < KNEE_SETTINGS; k++)
        fprintf(json,
                "%s{\"mode\":\"%s\",\"workers\":%s,\"msgs_per_s\":%.0f,"
                "\"calls_per_msg\":%.3f,\"refused_per_msg\":%.4f,\"limit\":%.0f,"
                "\"calls_inside_jube\":%.2f,\"jube_ms\":%.3f}",
                k ? "," : "", knee_settings[k].mode, knee_settings[k].workers, knee[k].rate,
                knee[k].calls_per_message, knee[k].refused_per_message, knee[k].limit,
                knee[k].at_jube, knee[k].jube_ms);
    fprintf(json,
            "],\"drain_16_msgs_per_s\":%.0f,\"drain_adaptive_msgs_per_s\":%.0f,"
            "\"capacity_up_ms\":%.0f,\"capacity_down_ms\":%.0f,\"outage_back_ms\":%.0f,",
            drain16_rate, drain_adaptive_rate, isfinite(up_ms) ? up_ms : -1,
            isfinite(down_ms) ? down_ms : -1, isfinite(back_ms) ? back_ms : -1);
    fprintf(json,
            "\"idle_cpu_percent\":%.4f,\"ring_1_to_64\":%.0f,\"mutex_1_to_64\":%.0f,"
            "\"ring_64_to_1\":%.0f,\"mutex_64_to_1\":%.0f}\n",
            idle, ring[0], ring[1], ring[2], ring[3]);
    fclose(json);
    return 0;
}
