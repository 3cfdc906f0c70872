/* The properties and headers of responses and dead letters. */

#include "outbound_message.h"
#include "validate.h"
#include "test.h"

static const amqp_table_entry_t *find(const amqp_table_t *t, const char *key)
{
    const amqp_table_entry_t *found = NULL;
    int count = 0;
    for (int i = 0; i < t->num_entries; i++) {
        if (t->entries[i].key.len == strlen(key) &&
            memcmp(t->entries[i].key.bytes, key, t->entries[i].key.len) == 0) {
            found = &t->entries[i];
            count++;
        }
    }
    if (count > 1)
        FAIL("header %s appears %d times", key, count);
    return found;
}

static bool bytes_are(amqp_bytes_t b, const char *s)
{
    return b.len == strlen(s) && memcmp(b.bytes, s, b.len) == 0;
}

static amqp_table_entry_t inbound_headers[6];
static amqp_field_value_t cc_routes[1];

static ja_job inbound_job(void)
{
    ja_job job;
    memset(&job, 0, sizeof job);
    inbound_headers[0] = (amqp_table_entry_t){.key = amqp_cstring_bytes(JA_MODEL_HEADER)};
    inbound_headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
    inbound_headers[0].value.value.bytes =
        amqp_cstring_bytes("90C425FD-101A-420B-91D1-CB7A24A969CC");
    inbound_headers[1] = (amqp_table_entry_t){.key = amqp_cstring_bytes("tenant")};
    inbound_headers[1].value.kind = AMQP_FIELD_KIND_UTF8;
    inbound_headers[1].value.value.bytes = amqp_cstring_bytes("acme");
    inbound_headers[2] = (amqp_table_entry_t){.key = amqp_cstring_bytes("x-jube-error")};
    inbound_headers[2].value.kind = AMQP_FIELD_KIND_UTF8;
    inbound_headers[2].value.value.bytes = amqp_cstring_bytes("forged");
    /* Sender-selected distribution: would route copies into any queue. */
    cc_routes[0].kind = AMQP_FIELD_KIND_UTF8;
    cc_routes[0].value.bytes = amqp_cstring_bytes("someone-elses-queue");
    inbound_headers[3] = (amqp_table_entry_t){.key = amqp_cstring_bytes("CC")};
    inbound_headers[3].value.kind = AMQP_FIELD_KIND_ARRAY;
    inbound_headers[3].value.value.array = (amqp_array_t){.num_entries = 1, .entries = cc_routes};
    inbound_headers[4] = inbound_headers[3];
    inbound_headers[4].key = amqp_cstring_bytes("BCC");
    amqp_basic_properties_t *p = &job.envelope.message.properties;
    p->_flags = AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_REPLY_TO_FLAG |
                AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_USER_ID_FLAG;
    p->user_id = amqp_cstring_bytes("other");
    p->headers.num_entries = 5;
    p->headers.entries = inbound_headers;
    p->correlation_id = amqp_cstring_bytes("corr-1");
    p->message_id = amqp_cstring_bytes("msg-1");
    p->expiration = amqp_cstring_bytes("60000");
    p->reply_to = amqp_cstring_bytes("replies");
    p->content_type = amqp_cstring_bytes("text/plain");
    strcpy(job.model_guid, "90c425fd-101a-420b-91d1-cb7a24a969cc");
    job.http_status = 200;
    job.attempts = 2;
    return job;
}

TEST(response_properties)
{
    ja_job job = inbound_job();
    ja_header_scratch scratch = {0};
    amqp_basic_properties_t props;
    ASSERT_EQ(ja_outbound_message_response(&job, &scratch, 17, &props), 0);
    ASSERT(props._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
    ASSERT(!(props._flags & AMQP_BASIC_USER_ID_FLAG));
    ASSERT_NULL(find(&props.headers, "CC"));
    ASSERT_NULL(find(&props.headers, "BCC"));
    const amqp_table_entry_t *seq = find(&props.headers, JA_PUBLISH_SEQ_HEADER);
    ASSERT(seq && seq->value.kind == AMQP_FIELD_KIND_I64);
    ASSERT_EQ(seq->value.value.i64, 17);
    ASSERT(bytes_are(props.content_type, "application/json"));
    ASSERT_EQ(props.delivery_mode, AMQP_DELIVERY_PERSISTENT);
    ASSERT(bytes_are(props.correlation_id, "corr-1"));
    ASSERT(bytes_are(props.message_id, "msg-1"));
    ASSERT(!(props._flags & AMQP_BASIC_EXPIRATION_FLAG));
    ASSERT(!(props._flags & AMQP_BASIC_REPLY_TO_FLAG));
    const amqp_table_entry_t *guid = find(&props.headers, JA_MODEL_HEADER);
    ASSERT(guid && bytes_are(guid->value.value.bytes, "90c425fd-101a-420b-91d1-cb7a24a969cc"));
    const amqp_table_entry_t *tenant = find(&props.headers, "tenant");
    ASSERT(tenant && bytes_are(tenant->value.value.bytes, "acme"));
    const amqp_table_entry_t *status = find(&props.headers, "x-jube-http-status");
    ASSERT(status);
    ASSERT_EQ(status->value.kind, AMQP_FIELD_KIND_I32);
    ASSERT_EQ(status->value.value.i32, 200);
    ASSERT_NULL(find(&props.headers, "x-jube-error")); /* a forged one is not passed on */
    ASSERT_NULL(find(&props.headers, "x-jube-implicit-async"));
    strcpy(job.instance_guid, "6f1d2a0e-3c1b-4e0a-9a51-0d2c9e4b7f10");
    ASSERT_EQ(ja_outbound_message_response(&job, &scratch, 18, &props), 0);
    const amqp_table_entry_t *via = find(&props.headers, "x-jube-implicit-async");
    ASSERT(via && bytes_are(via->value.value.bytes, "callback"));
    ja_outbound_message_scratch_free(&scratch);
}

TEST(dead_letter_properties)
{
    ja_job job = inbound_job();
    job.http_status = 404;
    ja_failure_set(&job.failure, "http_404", "Jube does not know this model (HTTP %d).", 404);
    ja_header_scratch scratch = {0};
    amqp_basic_properties_t props;
    ASSERT_EQ(ja_outbound_message_dead_letter(&job, &scratch, 9, &props), 0);
    ASSERT_EQ(props.delivery_mode, AMQP_DELIVERY_PERSISTENT);
    /* The broker would refuse the producer's user_id from the service's login. */
    ASSERT(!(props._flags & AMQP_BASIC_USER_ID_FLAG));
    ASSERT_NULL(find(&props.headers, "CC"));
    ASSERT_NULL(find(&props.headers, "BCC"));
    ASSERT_EQ(find(&props.headers, JA_PUBLISH_SEQ_HEADER)->value.value.i64, 9);
    ASSERT_NULL(find(&props.headers, "x-jube-body-size"));
    ASSERT(!(props._flags & AMQP_BASIC_EXPIRATION_FLAG)); /* it must not expire in the queue */
    ASSERT(bytes_are(props.content_type, "text/plain"));  /* the original properties stay */
    ASSERT(bytes_are(props.reply_to, "replies"));
    ASSERT(bytes_are(props.correlation_id, "corr-1"));
    const amqp_table_entry_t *e = find(&props.headers, "x-jube-error");
    ASSERT(e && bytes_are(e->value.value.bytes, "http_404"));
    e = find(&props.headers, "x-jube-error-detail");
    ASSERT(e && bytes_are(e->value.value.bytes, "Jube does not know this model (HTTP 404)."));
    e = find(&props.headers, "x-jube-http-status");
    ASSERT(e && e->value.value.i32 == 404);
    e = find(&props.headers, "x-jube-attempts");
    ASSERT(e && e->value.value.i32 == 2);
    e = find(&props.headers, JA_MODEL_HEADER); /* the inbound header is kept as it came */
    ASSERT(e && bytes_are(e->value.value.bytes, "90C425FD-101A-420B-91D1-CB7A24A969CC"));
    ASSERT(find(&props.headers, "tenant"));
    ja_outbound_message_scratch_free(&scratch);
}

/* A renewal is the producer's message again, with a fresh count. */
TEST(renewal_properties)
{
    ja_job job = inbound_job();
    amqp_basic_properties_t *in = &job.envelope.message.properties;
    amqp_table_entry_t counted[8];
    memcpy(counted, inbound_headers, 5 * sizeof *counted);
    counted[5] = (amqp_table_entry_t){.key = amqp_cstring_bytes("x-delivery-count"),
                                      .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 15}};
    counted[6] = (amqp_table_entry_t){.key = amqp_cstring_bytes("x-acquired-count"),
                                      .value = {.kind = AMQP_FIELD_KIND_I64, .value.i64 = 30}};
    in->headers = (amqp_table_t){.num_entries = 7, .entries = counted};
    job.renewals = 2;
    ja_header_scratch scratch = {0};
    amqp_basic_properties_t props;
    ASSERT_EQ(ja_outbound_message_renewal(&job, &scratch, 5, &props), 0);
    ASSERT_NULL(find(&props.headers, "x-delivery-count"));
    ASSERT_NULL(find(&props.headers, "x-acquired-count"));
    ASSERT_NULL(find(&props.headers, "CC"));
    ASSERT_NULL(find(&props.headers, "BCC"));
    ASSERT_NULL(find(&props.headers, "x-jube-error"));
    const amqp_table_entry_t *e = find(&props.headers, "x-jube-renewals");
    ASSERT(e && e->value.kind == AMQP_FIELD_KIND_I32);
    ASSERT_EQ(e->value.value.i32, 3);
    ASSERT_EQ(find(&props.headers, JA_PUBLISH_SEQ_HEADER)->value.value.i64, 5);
    e = find(&props.headers, JA_MODEL_HEADER); /* as the producer sent it */
    ASSERT(e && bytes_are(e->value.value.bytes, "90C425FD-101A-420B-91D1-CB7A24A969CC"));
    ASSERT(find(&props.headers, "tenant"));
    ASSERT(!(props._flags & AMQP_BASIC_USER_ID_FLAG));
    ASSERT_EQ(props.delivery_mode, AMQP_DELIVERY_PERSISTENT);
    ASSERT(bytes_are(props.content_type, "text/plain"));
    ASSERT(bytes_are(props.message_id, "msg-1"));
    ASSERT(bytes_are(props.reply_to, "replies"));
    ASSERT(bytes_are(props.expiration, "60000"));
    ja_outbound_message_scratch_free(&scratch);
}

TEST(direct_reply_to_is_recognised)
{
    ASSERT(ja_outbound_message_is_direct_reply_to(amqp_cstring_bytes("amq.rabbitmq.reply-to")));
    ASSERT(ja_outbound_message_is_direct_reply_to(
        amqp_cstring_bytes("amq.rabbitmq.reply-to.g1h2AA==")));
    ASSERT(!ja_outbound_message_is_direct_reply_to(amqp_cstring_bytes("amq.rabbitmq.reply")));
    ASSERT(!ja_outbound_message_is_direct_reply_to(amqp_cstring_bytes("replies")));
}

TEST(no_inbound_headers)
{
    ja_job job;
    memset(&job, 0, sizeof job);
    strcpy(job.model_guid, "90c425fd-101a-420b-91d1-cb7a24a969cc");
    ja_failure_set(&job.failure, "missing_model_guid", "none");
    ja_header_scratch scratch = {0};
    amqp_basic_properties_t props;
    ASSERT_EQ(ja_outbound_message_dead_letter(&job, &scratch, 1, &props), 0);
    ASSERT_EQ(props.headers.num_entries, 5);
    ASSERT_EQ(ja_outbound_message_response(&job, &scratch, 1, &props), 0);
    ASSERT_EQ(props.headers.num_entries, 3);
    ASSERT(!(props._flags & AMQP_BASIC_CORRELATION_ID_FLAG));
    ja_outbound_message_scratch_free(&scratch);
}

TEST(bare_dead_letter_keeps_only_the_services_headers)
{
    ja_job job = inbound_job();
    job.publishing.bare = true;
    job.body_size = 5000;
    job.envelope.message.body = amqp_cstring_bytes("{\"a\":1}");
    ja_failure_set(&job.failure, "body_too_large", "big");
    ja_header_scratch scratch = {0};
    amqp_basic_properties_t props;
    ASSERT_EQ(ja_outbound_message_dead_letter(&job, &scratch, 3, &props), 0);
    ASSERT_NULL(find(&props.headers, "tenant"));
    ASSERT_NULL(find(&props.headers, JA_MODEL_HEADER));
    ASSERT(find(&props.headers, "x-jube-error"));
    ASSERT_EQ(find(&props.headers, "x-jube-body-size")->value.value.i64, 5000);
    ASSERT(bytes_are(props.correlation_id, "corr-1"));
    ja_outbound_message_scratch_free(&scratch);
}

/* rabbitmq-c would send the publish method before finding that the header does not fit a frame;
 * the check comes first. */
TEST(properties_that_do_not_fit_a_frame_are_found)
{
    static char big[140000];
    memset(big, 'h', sizeof big - 1);
    amqp_table_entry_t entry = {.key = amqp_cstring_bytes("huge")};
    entry.value.kind = AMQP_FIELD_KIND_UTF8;
    entry.value.value.bytes = amqp_cstring_bytes(big);
    amqp_basic_properties_t props = {._flags = AMQP_BASIC_HEADERS_FLAG};
    props.headers = (amqp_table_t){.num_entries = 1, .entries = &entry};
    static char scratch[131072];
    amqp_bytes_t into = {.len = sizeof scratch, .bytes = scratch};
    ASSERT(!ja_outbound_message_fits(&props, 131072, into));
    big[131072 - 20 - 40] = '\0'; /* fits with the table's own bytes */
    entry.value.value.bytes = amqp_cstring_bytes(big);
    ASSERT(ja_outbound_message_fits(&props, 131072, into));
    ASSERT(!ja_outbound_message_fits(&props, 4096, into));
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(response_properties),
        TEST_ENTRY(dead_letter_properties),
        TEST_ENTRY(renewal_properties),
        TEST_ENTRY(direct_reply_to_is_recognised),
        TEST_ENTRY(no_inbound_headers),
        TEST_ENTRY(bare_dead_letter_keeps_only_the_services_headers),
        TEST_ENTRY(properties_that_do_not_fit_a_frame_are_found),
    };
    return RUN_TESTS(tests);
}
