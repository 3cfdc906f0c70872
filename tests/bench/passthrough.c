/* passthrough: what the broker alone can carry on this machine, for the benchmark to measure
 * jube-amqp against. One thread, one connection: consume a queue with a prefetch limit, publish
 * each body to an exchange in confirm mode, ack each delivery after its publish is confirmed.
 * No HTTP, no parsing. It stops after --count messages and prints how long they took.
 *
 *   passthrough --port P --queue Q --exchange E --prefetch N --count N */

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CONSUME_CHANNEL 1
#define PUBLISH_CHANNEL 2

static void die(const char *what)
{
    fprintf(stderr, "passthrough: %s\n", what);
    exit(1);
}

static void check(amqp_connection_state_t conn, const char *what)
{
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL)
        die(what);
}

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    int port = 5672, prefetch = 256;
    long count = 0;
    const char *queue = NULL, *exchange = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--queue") == 0)
            queue = argv[i + 1];
        else if (strcmp(argv[i], "--exchange") == 0)
            exchange = argv[i + 1];
        else if (strcmp(argv[i], "--prefetch") == 0)
            prefetch = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--count") == 0)
            count = atol(argv[i + 1]);
    }
    if (!queue || !exchange || count <= 0)
        die("usage: passthrough --port P --queue Q --exchange E --prefetch N --count N");

    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (amqp_socket_open(socket, "127.0.0.1", port) != AMQP_STATUS_OK)
        die("cannot connect");
    if (amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest").reply_type !=
        AMQP_RESPONSE_NORMAL)
        die("cannot log in");
    amqp_channel_open(conn, CONSUME_CHANNEL);
    check(conn, "channel.open");
    amqp_channel_open(conn, PUBLISH_CHANNEL);
    check(conn, "channel.open");
    amqp_confirm_select(conn, PUBLISH_CHANNEL);
    check(conn, "confirm.select");
    amqp_basic_qos(conn, CONSUME_CHANNEL, 0, (uint16_t)prefetch, 0);
    check(conn, "basic.qos");
    amqp_basic_consume(conn, CONSUME_CHANNEL, amqp_cstring_bytes(queue), amqp_empty_bytes, 0, 0, 0,
                       amqp_empty_table);
    check(conn, "basic.consume");

    /* Publish sequence number n carries delivery tags[n % size]; both only grow, so when
     * publish n is confirmed every delivery up to tags[n] can be acked with one "multiple". */
    size_t size = 1;
    while (size < (size_t)prefetch * 2)
        size <<= 1;
    uint64_t *tags = calloc(size, sizeof *tags);
    uint64_t published = 0, confirmed = 0;
    long done = 0;
    double start = seconds_now();
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG |
                                               AMQP_BASIC_CONTENT_TYPE_FLAG,
                                     .delivery_mode = AMQP_DELIVERY_PERSISTENT,
                                     .content_type = amqp_cstring_bytes("application/json")};
    while (done < count) {
        amqp_maybe_release_buffers(conn);
        amqp_envelope_t envelope;
        amqp_rpc_reply_t r = amqp_consume_message(conn, &envelope, NULL, 0);
        if (r.reply_type == AMQP_RESPONSE_NORMAL) {
            if (amqp_basic_publish(conn, PUBLISH_CHANNEL, amqp_cstring_bytes(exchange),
                                   amqp_empty_bytes, 0, 0, &props,
                                   envelope.message.body) != AMQP_STATUS_OK)
                die("publish failed");
            published++;
            tags[published % size] = envelope.delivery_tag;
            amqp_destroy_envelope(&envelope);
            continue;
        }
        if (r.reply_type != AMQP_RESPONSE_LIBRARY_EXCEPTION ||
            r.library_error != AMQP_STATUS_UNEXPECTED_STATE)
            die("consume failed");
        amqp_frame_t frame;
        if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK)
            die("connection failed");
        if (frame.frame_type != AMQP_FRAME_METHOD)
            continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            if (ack->delivery_tag > confirmed) {
                done += (long)(ack->delivery_tag - confirmed);
                confirmed = ack->delivery_tag;
                amqp_basic_ack(conn, CONSUME_CHANNEL, tags[confirmed % size], 1);
            }
        } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            die("the broker refused a publish");
        } else if (frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
                   frame.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD) {
            die("the broker closed the channel");
        }
    }
    double elapsed = seconds_now() - start;
    printf("%ld messages in %.3f s: %.0f messages/s\n", done, elapsed, (double)done / elapsed);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    free(tags);
    return 0;
}
