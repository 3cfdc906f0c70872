#include "capacity.h"

#include "harness.h"
#include "test.h"

#include <signal.h>
#include <stdio.h>

#define LIMIT_SERIES "jube_amqp_jube_concurrency_limit"

/* Reads the service's limit every 20 ms until it is within [low, high]; returns the milliseconds
 * that took, or -1 when it did not within timeout_ms. */
static long ms_until_limit_within(int port, int low, int high, long timeout_ms)
{
    long long start = now_ms();
    while (now_ms() - start <= timeout_ms) {
        double limit = scrape_metric(port, LIMIT_SERIES);
        if (limit >= low && limit <= high)
            return (long)(now_ms() - start);
        pause_ms(20);
    }
    return -1;
}

static void stub_args_for(const char *knee, const char *port, const char *args[12])
{
    const char *list[] = {"--latency-ms",     "20",  "--knee", knee, "--knee-step-ms", "5",
                          "--overload-above", "200", NULL};
    int n = 0;
    for (; list[n]; n++)
        args[n] = list[n];
    if (port) {
        args[n++] = "--port";
        args[n++] = port;
    }
    args[n] = NULL;
}

/* A backlog of 20,000 and the service on it, adaptive with a bound of 256. Returns the port of its
 * metrics. */
static int start_with_backlog(fixture *f, const char *name, const char *knee)
{
    f->t = test_begin(name);
    amqp_connection_state_t conn = test_connect();
    declare_queue(conn, f->t.inbound, true);
    test_disconnect(conn);
    publish_range(f->t.inbound, name, 0, 20000);
    const char *stub_args[12];
    stub_args_for(knee, NULL, stub_args);
    f->stub = stub_start(stub_args);
    int port = free_port();
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
    const char *args[] = {"--workers", "256", "--concurrency", "adaptive", "--metrics-listen",
                          listen,      NULL};
    f->svc = service_start(name, &f->t, &f->stub, args);
    return port;
}

/* The service stops cleanly with the rest of the backlog still queued, and nothing was
 * dead-lettered. */
static long stop_with_backlog(fixture *f)
{
    ASSERT_EQ(service_stop(&f->svc, SIGTERM), 0);
    long refused = stub_stat(&f->stub, "overloaded");
    stub_stop(&f->stub);
    amqp_connection_state_t conn = test_connect();
    ASSERT_EQ(queue_depth(conn, f->t.dead_letter_queue), 0);
    test_disconnect(conn);
    delete_topology(&f->t);
    return refused;
}

capacity_change capacity_change_run(const char *name)
{
    fixture f;
    int port = start_with_backlog(&f, name, "5");
    capacity_change r;
    /* At the knee of 5 (about 250 transactions a second) for a while. */
    wait_depth_at_least(f.t.outbound_queue, 600, 30000);
    r.at_5 = (int)scrape_metric(port, LIMIT_SERIES);

    stub_set_knee(&f.stub, 40);
    r.up_ms = ms_until_limit_within(port, 32, 256, 10000);
    long answered = stub_stat(&f.stub, "invocations");
    wait_depth_at_least(f.t.outbound_queue, answered + 4000, 30000); /* 2 s at the knee */
    r.at_40 = (int)scrape_metric(port, LIMIT_SERIES);

    stub_set_knee(&f.stub, 5);
    r.down_to = r.at_5 * 5 / 4 + 1;
    r.down_ms = ms_until_limit_within(port, 1, r.down_to, 10000);
    r.refused = stop_with_backlog(&f);
    fprintf(stderr,
            "  limit %d at a knee of 5; knee 5 -> 40: limit >= 32 after %ld ms (%d 2 s later); "
            "40 -> 5: limit <= %d after %ld ms\n",
            r.at_5, r.up_ms, r.at_40, r.down_to, r.down_ms);
    return r;
}

capacity_outage capacity_outage_run(const char *name)
{
    fixture f;
    int port = start_with_backlog(&f, name, "40");
    capacity_outage r;
    ASSERT_GE(ms_until_limit_within(port, 32, 256, 10000), 0);
    long answered = stub_stat(&f.stub, "invocations");
    wait_depth_at_least(f.t.outbound_queue, answered + 2000, 30000);
    r.before = (int)scrape_metric(port, LIMIT_SERIES);

    char stub_port[16];
    snprintf(stub_port, sizeof stub_port, "%d", f.stub.port);
    stub_stop(&f.stub);
    /* The service finds it gone (connection refused). */
    ASSERT(wait_metric_at_least(port, "jube_amqp_jube_responses_total{class=\"error\"}", 1, 10000));
    pause_ms(2000); /* the outage itself */
    const char *again[12];
    stub_args_for("40", stub_port, again);
    f.stub = stub_start(again);
    r.back_ms = ms_until_limit_within(port, r.before * 8 / 10, 256, 10000);
    stop_with_backlog(&f);
    fprintf(stderr, "  limit %d before a 2 s outage; back to %d or more %ld ms after Jube was\n",
            r.before, r.before * 8 / 10, r.back_ms);
    return r;
}
