/* Security: amqps:// against the test broker's TLS listener (certificates made by
 * scripts/tls-certs.sh; the listener's certificate is for "localhost" and it requires a client
 * certificate), https:// Jube verified the same way, an API key Jube requires, and secrets that
 * never reach the log. */

#include "harness.h"
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

static const char *tls_uri(const char *host, int port)
{
    static char uri[128];
    snprintf(uri, sizeof uri, "amqps://guest:guest@%s:%d/", host, port);
    return uri;
}

static void wait_for_log(const service_process *svc, const char *text)
{
    long long deadline = now_ms() + 20000;
    while (!service_log_contains(svc, text)) {
        if (now_ms() > deadline)
            FAIL("the service never logged \"%s\" within 20 s; see %s", text, svc->log_path);
        pause_ms(50);
    }
}

/* Starts the service against a broker it cannot (or must not) reach, with just enough flags to
 * run: it keeps retrying and logging why. */
static service_process spawn_unconnectable(const char *name, const char *uri,
                                           const char *const *extra)
{
    test_begin(name); /* a clean log, so only this run's lines count */
    const char *args[32] = {
        "--amqp-uri",          uri,   "--jube-url",         "http://127.0.0.1:1",
        "--reconnect-base-ms", "100", "--reconnect-max-ms", "500"};
    int argc = 8;
    for (int i = 0; extra && extra[i] && argc < 31; i++)
        args[argc++] = extra[i];
    args[argc] = NULL;
    return service_spawn(name, args);
}

static void expect_refused(const char *name, const char *uri, const char *const *extra,
                           const char *reason)
{
    service_process svc = spawn_unconnectable(name, uri, extra);
    wait_for_log(&svc, reason);
    ASSERT(!service_log_contains(&svc, "consumer connected"));
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
}

TEST(right_ca_and_client_certificate_messages_flow)
{
    topology_names t = test_begin("tls_ok");
    stub_process stub = stub_start(NULL);
    const char *args[] = {"--amqp-uri", tls_uri("localhost", broker_tls_port()),
                          "--tls-ca",   broker_tls_file("ca.pem"),
                          "--tls-cert", broker_tls_file("client.pem"),
                          "--tls-key",  broker_tls_file("client.key"),
                          NULL};
    service_process svc = service_start("tls_ok", &t, &stub, args);
    ASSERT(service_log_contains(&svc, "consumer connected to node localhost"));
    publish_range(t.inbound, "tls_ok", 0, 50);
    amqp_connection_state_t conn = test_connect();
    message_list out = collect_messages(conn, t.outbound_queue, 50, 20000);
    ASSERT_EQ(out.count, 50);
    free_messages(&out);
    test_disconnect(conn);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    stub_stop(&stub);
}

TEST(wrong_ca_is_refused)
{
    const char *extra[] = {
        "--tls-ca",  broker_tls_file("other-ca.pem"), "--tls-cert", broker_tls_file("client.pem"),
        "--tls-key", broker_tls_file("client.key"),   NULL};
    expect_refused("tls_wrong_ca", tls_uri("localhost", broker_tls_port()), extra,
                   "the broker's TLS certificate was refused: self-signed certificate in "
                   "certificate chain");
}

TEST(host_name_mismatch_is_refused)
{
    /* The listener's certificate is for localhost; 127.0.0.1 is the same listener by another
     * name. */
    const char *extra[] = {
        "--tls-ca",  broker_tls_file("ca.pem"),     "--tls-cert", broker_tls_file("client.pem"),
        "--tls-key", broker_tls_file("client.key"), NULL};
    expect_refused("tls_host_mismatch", tls_uri("127.0.0.1", broker_tls_port()), extra,
                   "the broker's TLS certificate is not for the host name '127.0.0.1'");
}

/* A TLS server presenting the given certificate: stands in for a broker or a Jube whose
 * certificate is under test (the handshake fails before either protocol starts). */
static pid_t tls_server(int port, const char *cert, const char *key)
{
    char accept[32];
    snprintf(accept, sizeof accept, "127.0.0.1:%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execlp("openssl", "openssl", "s_server", "-quiet", "-accept", accept, "-cert", cert, "-key",
               key, (char *)NULL);
        _exit(127);
    }
    long long deadline = now_ms() + 10000;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in addr = {.sin_family = AF_INET,
                                   .sin_port = htons((uint16_t)port),
                                   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        bool up = connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0;
        close(fd);
        if (up)
            return pid;
        if (now_ms() > deadline)
            FAIL("openssl s_server did not listen on %d within 10 s", port);
        pause_ms(20);
    }
}

static void stop_tls_server(pid_t pid)
{
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

TEST(expired_certificate_is_refused)
{
    int port = free_port();
    pid_t server = tls_server(port, broker_tls_file("expired.pem"), broker_tls_file("expired.key"));
    const char *extra[] = {"--tls-ca", broker_tls_file("ca.pem"), NULL};
    expect_refused("tls_expired", tls_uri("localhost", port), extra,
                   "the broker's TLS certificate was refused: certificate has expired");
    stop_tls_server(server);
}

TEST(client_certificate_is_required_by_the_broker)
{
    const char *extra[] = {"--tls-ca", broker_tls_file("ca.pem"), NULL};
    expect_refused("tls_no_client_cert", tls_uri("localhost", broker_tls_port()), extra,
                   "the broker may require a client certificate (--tls-cert and --tls-key)");
}

/* An https:// Jube whose certificate does not chain to --tls-ca is never sent a message: the
 * worker reports Jube unavailable with libcurl's reason and keeps the message. */
TEST(https_jube_with_untrusted_certificate_is_refused)
{
    topology_names t = test_begin("tls_jube");
    int port = free_port();
    pid_t server = tls_server(port, broker_tls_file("server.pem"), broker_tls_file("server.key"));
    char url[64];
    snprintf(url, sizeof url, "https://localhost:%d", port);
    const char *args[] = {"--jube-url", url, "--tls-ca", broker_tls_file("other-ca.pem"), NULL};
    service_process svc = service_start("tls_jube", &t, NULL, args);
    publish_range(t.inbound, "tls_jube", 0, 1);
    wait_for_log(&svc, "Jube unavailable: SSL certificate problem: unable to get local issuer "
                       "certificate");
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    amqp_connection_state_t conn = test_connect();
    ASSERT_EQ(queue_depth(conn, t.inbound), 1); /* given back, not lost or dead-lettered */
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    test_disconnect(conn);
    stop_tls_server(server);
}

/* Jube requiring an API key: with the key (read from a file) messages flow and the key is never
 * logged; without it every call gets 401, which holds messages rather than dead-lettering them. */
TEST(api_key_required_by_jube)
{
    const char *key = "k3y-only-jube-knows";
    const char *stub_args[] = {"--api-key", key, NULL};
    stub_process stub = stub_start(stub_args);
    char key_file[] = "/tmp/jube-amqp-api-key-XXXXXX";
    int fd = mkstemp(key_file);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, key, strlen(key)), (ssize_t)strlen(key));
    close(fd);

    topology_names t = test_begin("api_key");
    const char *with_key[] = {"--jube-api-key-file", key_file, "--log-level", "debug", NULL};
    service_process svc = service_start("api_key", &t, &stub, with_key);
    publish_range(t.inbound, "api_key", 0, 10);
    amqp_connection_state_t conn = test_connect();
    message_list out = collect_messages(conn, t.outbound_queue, 10, 20000);
    ASSERT_EQ(out.count, 10);
    free_messages(&out);
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    ASSERT(!service_log_contains(&svc, key));
    ASSERT(!service_log_contains(&svc, ":guest@")); /* the URI's password is redacted too */
    unlink(key_file);

    t = test_begin("no_api_key");
    svc = service_start("no_api_key", &t, &stub, NULL);
    publish_range(t.inbound, "no_api_key", 0, 3);
    wait_for_log(&svc, "Jube unavailable: it answered HTTP 401");
    ASSERT_EQ(service_stop(&svc, SIGTERM), 0);
    ASSERT_EQ(queue_depth(conn, t.inbound), 3);
    ASSERT_EQ(queue_depth(conn, t.dead_letter_queue), 0);
    /* Jube refused the calls made without the key (the first 401 closes the gate: the others
     * wait for a probe). */
    ASSERT_GE(stub_stat(&stub, "rejections"), 1);
    test_disconnect(conn);
    stub_stop(&stub);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(right_ca_and_client_certificate_messages_flow),
        TEST_ENTRY(wrong_ca_is_refused),
        TEST_ENTRY(host_name_mismatch_is_refused),
        TEST_ENTRY(expired_certificate_is_refused),
        TEST_ENTRY(client_certificate_is_required_by_the_broker),
        TEST_ENTRY(https_jube_with_untrusted_certificate_is_refused),
        TEST_ENTRY(api_key_required_by_jube),
    };
    return RUN_TESTS(tests);
}
