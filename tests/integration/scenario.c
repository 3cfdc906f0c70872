#include "scenario.h"

#include "test.h"

#include <signal.h>
#include <stdint.h>

/* FNV-1a: tells one answer from another. */
static uint64_t body_hash(const amqp_envelope_t *msg)
{
    uint64_t h = 14695981039346656037ULL;
    const unsigned char *bytes = msg->message.body.bytes;
    for (size_t i = 0; i < msg->message.body.len; i++)
        h = (h ^ bytes[i]) * 1099511628211ULL;
    return h;
}

arrivals check_every_id_arrived(const scenario *s, long count)
{
    amqp_connection_state_t conn = test_connect();
    long depth = queue_depth(conn, s->t.outbound_queue);
    ASSERT_GE(depth, count);
    unsigned char *seen = calloc((size_t)count, 1);
    uint64_t *first_answer = calloc((size_t)count, sizeof *first_answer);
    arrivals a = {0};
    size_t prefix_len = strlen(s->name);
    /* Until the queue reads as empty: a quorum queue's count can lag behind what it holds. */
    while (depth > 0) {
        message_list got = collect_messages(conn, s->t.outbound_queue, (size_t)depth, 60000);
        ASSERT_EQ(got.count, depth);
        for (size_t i = 0; i < got.count; i++) {
            char *id = response_entry_id(&got.items[i]);
            ASSERT(id && strncmp(id, s->name, prefix_len) == 0 && id[prefix_len] == '-');
            long index = strtol(id + prefix_len + 1, NULL, 10);
            ASSERT(index >= 0 && index < count);
            uint64_t answer = body_hash(&got.items[i]);
            if (seen[index]++ == 0)
                first_answer[index] = answer;
            else if (answer == first_answer[index])
                a.stored_again++;
            else
                a.answered_again++;
            free(id);
        }
        free_messages(&got);
        depth = queue_depth(conn, s->t.outbound_queue);
    }
    for (long i = 0; i < count; i++)
        if (!seen[i])
            FAIL("%s-%ld never reached %s (lost)", s->name, i, s->t.outbound_queue);
    free(seen);
    free(first_answer);
    ASSERT_EQ(queue_depth(conn, s->t.dead_letter_queue), 0);
    ASSERT_EQ(queue_depth(conn, s->t.inbound), 0);
    test_disconnect(conn);
    a.duplicates = a.answered_again + a.stored_again;
    return a;
}

static service_process launch_instance(scenario *s, const scenario_options *o, bool first)
{
    if (!first || !o->with_metrics)
        return service_launch(s->name, &s->t, &s->stub, o->service_args);
    s->metrics_port = free_port();
    static char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", s->metrics_port);
    const char *args[40] = {"--metrics-listen", listen};
    int n = 2;
    for (int i = 0; o->service_args && o->service_args[i] && n < 39; i++)
        args[n++] = o->service_args[i];
    args[n] = NULL;
    return service_launch(s->name, &s->t, &s->stub, args);
}

void run_scenario_with(const char *name, const scenario_options *o, fault_fn fault)
{
    scenario s = {.name = name, .service_args = o->service_args};
    s.instances = o->instances > 0 ? o->instances : 1;
    s.t = test_begin(name);
    if (o->prepare)
        o->prepare(&s);
    s.stub = stub_start(o->stub_args);
    /* All copies start at once, racing to declare the topology, as replicas do. */
    service_process started[MAX_INSTANCES];
    for (int i = 0; i < s.instances; i++)
        started[i] = launch_instance(&s, o, i == 0);
    service_wait_consuming(started, s.instances, &s.t);
    s.svc = started[0];
    for (int i = 1; i < s.instances; i++)
        s.others[i - 1] = started[i];
    long long start = now_ms();
    publish_range(s.t.inbound, name, 0, STREAM);

    /* The fault strikes once a quarter of the stream has been answered. */
    wait_depth_at_least(s.t.outbound_queue, STREAM / 4, 120000);
    long depth_at_fault = queue_depth_now(s.t.outbound_queue);
    long long fault_at = now_ms();
    fault(&s);
    long long fault_over = now_ms();
    /* A quorum queue reads as empty after its broker restarts until it has recovered its log
     * (seen here: up to 15 s): look again meanwhile. */
    long waiting = queue_depth_now(s.t.inbound);
    for (long long until = now_ms() + 60000; waiting <= 0 && now_ms() < until; pause_ms(50))
        waiting = queue_depth_now(s.t.inbound);
    if (waiting <= 0 && !o->fault_may_outlast_stream)
        FAIL("the stream was over before the fault ended (%ld waiting): slow it down", waiting);
    /* Consuming again: answers beyond whatever was in flight (at most the prefetch) arrive; if
     * the stream was nearly over when the fault struck (allowed by fault_may_outlast_stream),
     * the rest of it. */
    long resumed_depth = depth_at_fault + PREFETCH + 50;
    if (o->fault_may_outlast_stream && resumed_depth > STREAM)
        resumed_depth = STREAM;
    wait_depth_at_least(s.t.outbound_queue, resumed_depth, 180000);
    long long resumed = now_ms();

    wait_depth_zero(s.t.inbound, 180000);
    wait_depth_at_least(s.t.outbound_queue, STREAM, 180000);
    /* Duplicates can fill the outbound queue to STREAM before the last deliveries are answered:
     * the stream is done once the inbound queue holds nothing, unacknowledged included. */
    wait_queue_empty_and_acked(s.t.inbound, 180000);
    long long done = now_ms();
    if (s.svc.pid) /* settles what is still in flight */
        ASSERT_EQ(service_stop(&s.svc, SIGTERM), 0);
    for (int i = 1; i < s.instances; i++)
        if (s.others[i - 1].pid)
            ASSERT_EQ(service_stop(&s.others[i - 1], SIGTERM), 0);
    arrivals a = check_every_id_arrived(&s, STREAM);
    fprintf(stderr,
            "fault %s: %d messages, fault injected at %lld ms and over after %lld ms; consuming "
            "again %lld ms after the fault began; stream done %lld ms after the fault; %ld "
            "duplicates (%ld answered again, %ld the same answer stored again), 0 lost\n",
            name, STREAM, fault_at - start, fault_over - fault_at, resumed - fault_at,
            done - fault_over, a.duplicates, a.answered_again, a.stored_again);
    long allowed = PREFETCH * s.instances * (o->windows > 0 ? o->windows : 1);
    if (o->stored_again_max > allowed) {
        ASSERT_LE(a.answered_again, allowed);
        ASSERT_LE(a.stored_again, o->stored_again_max);
    } else {
        ASSERT_LE(a.duplicates, allowed);
    }
    stub_stop(&s.stub);
}

void run_scenario(const char *name, const char *const *stub_args, const char *const *service_args,
                  fault_fn fault)
{
    scenario_options o = {.stub_args = stub_args, .service_args = service_args};
    run_scenario_with(name, &o, fault);
}
