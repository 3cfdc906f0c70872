/* The service's own framing of basic.publish sends exactly the bytes rabbitmq-c's
 * amqp_basic_publish sends, for any properties and body sizes. */

#include "publish_frames.h"
#include "test.h"

#include <errno.h>

#include <amqp_tcp_socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

/* A listening socket on localhost; its port in *port. */
static int listen_locally(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ASSERT_EQ(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    ASSERT_EQ(listen(fd, 1), 0);
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    *port = ntohs(addr.sin_port);
    return fd;
}

/* Reads exactly len bytes, or fails the test within 10 s. */
static void read_exactly(int fd, uint8_t *into, size_t len)
{
    size_t got = 0;
    while (got < len) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        ASSERT_EQ(poll(&pfd, 1, 10000), 1);
        ssize_t n = read(fd, into + got, len - got);
        ASSERT_GT(n, 0);
        got += (size_t)n;
    }
}

typedef struct {
    amqp_connection_state_t conn;
    int peer; /* the accepted end: what rabbitmq-c sent arrives here */
} wire;

/* A rabbitmq-c connection whose socket is open (no AMQP handshake: only its sending is used;
 * its frame_max is then its initial one, 65536). */
static wire open_wire(void)
{
    int port;
    int listener = listen_locally(&port);
    wire w = {.conn = amqp_new_connection()};
    amqp_socket_t *socket = amqp_tcp_socket_new(w.conn);
    ASSERT_NOT_NULL(socket);
    ASSERT_EQ(amqp_socket_open(socket, "127.0.0.1", port), AMQP_STATUS_OK);
    w.peer = accept(listener, NULL, NULL);
    ASSERT_GE(w.peer, 0);
    close(listener);
    return w;
}

static void close_wire(wire *w)
{
    close(w->peer);
    amqp_destroy_connection(w->conn);
}

static void fill(uint8_t *bytes, size_t len, uint64_t *rng)
{
    for (size_t i = 0; i < len; i++) {
        *rng ^= *rng << 13, *rng ^= *rng >> 7, *rng ^= *rng << 17;
        bytes[i] = (uint8_t)*rng;
    }
}

/* Compares one publish framed both ways. */
static void same_bytes(wire *w, uint32_t frame_max, const char *exchange, const char *key,
                       bool mandatory, const amqp_basic_properties_t *props, amqp_bytes_t body)
{
    ja_buffer ours = {0};
    ASSERT_EQ(ja_publish_frames_append(&ours, 1, frame_max, amqp_cstring_bytes(exchange),
                                       amqp_cstring_bytes(key), mandatory, props, body),
              0);
    ASSERT_EQ(amqp_basic_publish(w->conn, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key),
                                 mandatory, 0, props, body),
              AMQP_STATUS_OK);
    uint8_t *theirs = malloc(ours.len + 1);
    read_exactly(w->peer, theirs, ours.len);
    ASSERT_MEM_EQ(theirs, ours.data, ours.len);
    /* and nothing more came */
    struct pollfd pfd = {.fd = w->peer, .events = POLLIN};
    ASSERT_EQ(poll(&pfd, 1, 0), 0);
    free(theirs);
    ja_buffer_free(&ours);
}

TEST(a_response_with_headers_is_framed_as_rabbitmq_c_frames_it)
{
    wire w = open_wire();
    amqp_table_entry_t entries[2] = {
        {.key = amqp_cstring_bytes("EntityAnalysisModelGuid"),
         .value = {.kind = AMQP_FIELD_KIND_UTF8,
                   .value.bytes = amqp_cstring_bytes("6d9a4a4a-1d5f-4c9b-8d5c-2b1a3f4e5d6c")}},
        {.key = amqp_cstring_bytes("x-jube-amqp-seq"),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 12345}},
    };
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                  AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG,
        .content_type = amqp_cstring_bytes("application/json"),
        .delivery_mode = 2,
        .headers = {.num_entries = 2, .entries = entries},
        .correlation_id = amqp_cstring_bytes("abc"),
    };
    const char *body = "{\"EntityAnalysisModelInstanceEntryGuid\":\"x\"}";
    same_bytes(&w, (uint32_t)amqp_get_frame_max(w.conn), "jubeOutbound", "", true, &props,
               amqp_cstring_bytes((char *)body));
    close_wire(&w);
}

TEST(bodies_of_every_size_split_at_frame_max_as_rabbitmq_c_splits_them)
{
    wire w = open_wire();
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    uint64_t rng = 0x243F6A8885A308D3ull;
    static uint8_t body[300000];
    fill(body, sizeof body, &rng);
    /* Body frames carry frame_max - 8 bytes at most. */
    size_t most = (size_t)amqp_get_frame_max(w.conn) - 8;
    ASSERT_LT(3 * most + 1, sizeof body);
    const size_t sizes[] = {0,        1,        4088,         most - 1,    most,
                            most + 1, 2 * most, 2 * most + 1, 3 * most + 1};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        same_bytes(&w, (uint32_t)amqp_get_frame_max(w.conn), "jubeDeadLetter", "jubeInbound", false,
                   &props, (amqp_bytes_t){.len = sizes[i], .bytes = body});
    close_wire(&w);
}

TEST(properties_too_large_for_a_frame_append_nothing)
{
    static char big[5000];
    memset(big, 'h', sizeof big - 1);
    amqp_table_entry_t entry = {
        .key = amqp_cstring_bytes("big"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(big)}};
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_HEADERS_FLAG,
                                     .headers = {.num_entries = 1, .entries = &entry}};
    ja_buffer b = {0};
    ASSERT_EQ(ja_publish_frames_append(&b, 1, 131072, amqp_cstring_bytes("x"), amqp_empty_bytes,
                                       false, &props, amqp_cstring_bytes("{}")),
              0);
    size_t one = b.len;
    ASSERT_EQ(ja_publish_frames_append(&b, 1, 4096, amqp_cstring_bytes("x"), amqp_empty_bytes,
                                       false, &props, amqp_cstring_bytes("{}")),
              -EMSGSIZE);
    ASSERT_EQ(b.len, one);
    ja_buffer_free(&b);
}

TEST(several_publishes_follow_each_other_in_one_buffer)
{
    wire w = open_wire();
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_DELIVERY_MODE_FLAG, .delivery_mode = 2};
    ja_buffer ours = {0};
    for (int i = 0; i < 50; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        ASSERT_EQ(ja_publish_frames_append(&ours, 1, 131072, amqp_cstring_bytes("jubeOutbound"),
                                           amqp_empty_bytes, true, &props,
                                           amqp_cstring_bytes(body)),
                  0);
        ASSERT_EQ(amqp_basic_publish(w.conn, 1, amqp_cstring_bytes("jubeOutbound"),
                                     amqp_empty_bytes, 1, 0, &props, amqp_cstring_bytes(body)),
                  AMQP_STATUS_OK);
    }
    uint8_t *theirs = malloc(ours.len);
    read_exactly(w.peer, theirs, ours.len);
    ASSERT_MEM_EQ(theirs, ours.data, ours.len);
    free(theirs);
    ja_buffer_free(&ours);
    close_wire(&w);
}

/* connection.blocked with a reason, and connection.unblocked, as RabbitMQ frames them. */
static size_t blocked_frame(uint8_t *out, const char *reason)
{
    size_t r = strlen(reason);
    uint32_t size = (uint32_t)(4 + 1 + r);
    uint8_t head[] = {1,
                      0,
                      0,
                      (uint8_t)(size >> 24),
                      (uint8_t)(size >> 16),
                      (uint8_t)(size >> 8),
                      (uint8_t)size,
                      0,
                      10,
                      0,
                      60,
                      (uint8_t)r};
    memcpy(out, head, sizeof head);
    memcpy(out + sizeof head, reason, r);
    out[sizeof head + r] = AMQP_FRAME_END;
    return sizeof head + r + 1;
}

static const uint8_t unblocked[] = {1, 0, 0, 0, 0, 0, 4, 0, 10, 0, 61, AMQP_FRAME_END};
/* The end of a basic.ack (channel 1) whose beginning rabbitmq-c already read, then a heartbeat. */
static const uint8_t ack_tail[] = {
    0, 0, 0, 0, 0, 0, 0, 7, 0, AMQP_FRAME_END, 8, 0, 0, 0, 0, 0, 0, AMQP_FRAME_END};

TEST(blocking_is_found_in_unread_input_wherever_it_starts)
{
    uint8_t in[512] = {0};
    size_t n = 0;
    ASSERT_EQ(ja_publish_frames_peek_blocking(in, 0), JA_PEEK_NOTHING);
    memcpy(in, ack_tail, sizeof ack_tail);
    n = sizeof ack_tail;
    ASSERT_EQ(ja_publish_frames_peek_blocking(in, n), JA_PEEK_NOTHING);
    n += blocked_frame(in + n, "low on memory");
    ASSERT_EQ(ja_publish_frames_peek_blocking(in, n), JA_PEEK_BLOCKED);
    memcpy(in + n, unblocked, sizeof unblocked);
    /* Not whole yet: the frame end has not arrived. */
    ASSERT_EQ(ja_publish_frames_peek_blocking(in, n + sizeof unblocked - 1), JA_PEEK_BLOCKED);
    n += sizeof unblocked;
    ASSERT_EQ(ja_publish_frames_peek_blocking(in, n), JA_PEEK_UNBLOCKED);
    n += blocked_frame(in + n, "low on disk");
    ASSERT_EQ(ja_publish_frames_peek_blocking(in, n), JA_PEEK_BLOCKED);
    /* The same methods on another channel are not the connection's. */
    uint8_t other[sizeof unblocked];
    memcpy(other, unblocked, sizeof other);
    other[2] = 1;
    ASSERT_EQ(ja_publish_frames_peek_blocking(other, sizeof other), JA_PEEK_NOTHING);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(a_response_with_headers_is_framed_as_rabbitmq_c_frames_it),
        TEST_ENTRY(bodies_of_every_size_split_at_frame_max_as_rabbitmq_c_splits_them),
        TEST_ENTRY(properties_too_large_for_a_frame_append_nothing),
        TEST_ENTRY(several_publishes_follow_each_other_in_one_buffer),
        TEST_ENTRY(blocking_is_found_in_unread_input_wherever_it_starts),
    };
    return RUN_TESTS(tests);
}
