/* The delivery-limit rule and the counts a delivery carries. */

#include "delivery_limit.h"
#include "test.h"

#include <string.h>

static amqp_basic_properties_t with_headers(amqp_table_entry_t *entries, int count)
{
    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_HEADERS_FLAG;
    props.headers = (amqp_table_t){.num_entries = count, .entries = entries};
    return props;
}

TEST(counts_are_read_from_the_brokers_headers)
{
    amqp_table_entry_t entries[] = {
        {.key = amqp_cstring_bytes("other"),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 99}},
        {.key = amqp_cstring_bytes(JA_DELIVERY_COUNT_HEADER),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 7}},
        {.key = amqp_cstring_bytes(JA_ACQUIRED_COUNT_HEADER),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 12}},
        {.key = amqp_cstring_bytes(JA_RENEWALS_HEADER),
         .value = {.kind = AMQP_FIELD_KIND_I32, .value.i32 = 2}},
    };
    amqp_basic_properties_t props = with_headers(entries, 4);
    ja_delivery_counts c = ja_delivery_limit_counts(&props);
    ASSERT_EQ(c.delivery_count, 7);
    ASSERT_EQ(c.acquired_count, 12);
    ASSERT_EQ(c.renewals, 2);
}

TEST(missing_or_odd_headers_count_zero)
{
    amqp_basic_properties_t none;
    memset(&none, 0, sizeof none);
    ja_delivery_counts c = ja_delivery_limit_counts(&none);
    ASSERT_EQ(c.delivery_count, 0);
    ASSERT_EQ(c.acquired_count, 0);
    ASSERT_EQ(c.renewals, 0);

    amqp_table_entry_t odd[] = {
        {.key = amqp_cstring_bytes(JA_DELIVERY_COUNT_HEADER),
         .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes("19")}},
        {.key = amqp_cstring_bytes(JA_ACQUIRED_COUNT_HEADER),
         .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = -4}},
        {.key = amqp_cstring_bytes(JA_RENEWALS_HEADER),
         .value = {.kind = AMQP_FIELD_KIND_U64, .value.u64 = UINT64_MAX}},
    };
    amqp_basic_properties_t props = with_headers(odd, 3);
    c = ja_delivery_limit_counts(&props);
    ASSERT_EQ(c.delivery_count, 0);
    ASSERT_EQ(c.acquired_count, 0);
    ASSERT_EQ(c.renewals, UINT32_MAX);
}

TEST(renewal_point_leaves_a_quarter_of_the_limit)
{
    ASSERT_EQ(ja_delivery_limit_renew_at(0), 0);
    ASSERT_EQ(ja_delivery_limit_renew_at(20), 15); /* RabbitMQ 4.x's default limit */
    ASSERT_EQ(ja_delivery_limit_renew_at(2), 1);
    for (int limit = 2; limit <= 100000; limit++) {
        uint32_t at = ja_delivery_limit_renew_at(limit);
        /* A fresh message (count 0) is never renewed, or renewals would never end. */
        if (at < 1 || at >= (uint32_t)limit || (uint32_t)limit - at < ((uint32_t)limit + 3) / 4)
            FAIL("limit %d: renewed at %u", limit, at);
    }
    ASSERT(!ja_delivery_limit_must_renew(0, 1000000));
    ASSERT(!ja_delivery_limit_must_renew(20, 14));
    ASSERT(ja_delivery_limit_must_renew(20, 15));
    ASSERT(ja_delivery_limit_must_renew(20, 21));
}

/* A model of one message in a quorum queue with a delivery limit: the broker removes it on the
 * return that takes its count past the limit. The service holds it and gives it back (a hold
 * past --max-hold-ms), or loses its connection (which it cannot prevent); on arrival at the
 * renewal point it publishes a fresh copy, and while that is being confirmed further connection
 * losses may still return the old one. However the losses fall, as long as no more than the
 * margin come between an arrival and its renewal's confirm, the message is never removed. */
TEST(no_message_reaches_the_limit_in_a_random_model)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int limit = 2; limit <= 40; limit++) {
        /* What the service promises to absorb: a quarter of the limit, rounded up. */
        uint32_t margin = ((uint32_t)limit + 3) / 4;
        for (int run = 0; run < 2000; run++) {
            uint32_t count = 0; /* the broker's count of the copy in the queue */
            int renewals = 0;
            for (int step = 0; step < 400; step++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                if (ja_delivery_limit_must_renew(limit, count)) {
                    /* Up to `margin` losses before the renewal is confirmed, each a return. */
                    uint32_t losses = (uint32_t)(rng % (margin + 1));
                    if (count + losses > (uint32_t)limit)
                        FAIL("limit %d: renewed at %u, removed after %u losses", limit, count,
                             losses);
                    count = 0; /* the fresh copy; the old one is acked */
                    renewals++;
                    continue;
                }
                /* Held and given back, or the connection was lost: one return either way. */
                count++;
                if (count > (uint32_t)limit)
                    FAIL("limit %d: removed at count %u without a renewal", limit, count);
            }
            ASSERT_GT(renewals, 0);
        }
    }
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(counts_are_read_from_the_brokers_headers),
        TEST_ENTRY(missing_or_odd_headers_count_zero),
        TEST_ENTRY(renewal_point_leaves_a_quarter_of_the_limit),
        TEST_ENTRY(no_message_reaches_the_limit_in_a_random_model),
    };
    return RUN_TESTS(tests);
}
