/* The properties and headers of responses and dead letters. */

#include "outbound_message.h"
#include "test.h"
#include "validate.h"

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

static amqp_table_entry_t inbound_headers[4];

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
    amqp_basic_properties_t *p = &job.envelope.message.properties;
    p->_flags = AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
                AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_REPLY_TO_FLAG |
                AMQP_BASIC_CONTENT_TYPE_FLAG;
    p->headers.num_entries = 3;
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
    ASSERT_EQ(ja_response_properties(&job, &scratch, &props), 0);
    ASSERT(props._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
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
    ASSERT(find(&props.headers, "x-jube-error") == NULL); /* a forged one is not passed on */
    ja_header_scratch_free(&scratch);
}

TEST(dead_letter_properties)
{
    ja_job job = inbound_job();
    job.http_status = 404;
    ja_failure_set(&job.failure, "http_404", "Jube does not know this model (HTTP %d).", 404);
    ja_header_scratch scratch = {0};
    amqp_basic_properties_t props;
    ASSERT_EQ(ja_dead_letter_properties(&job, &scratch, &props), 0);
    ASSERT_EQ(props.delivery_mode, AMQP_DELIVERY_PERSISTENT);
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
    ja_header_scratch_free(&scratch);
}

TEST(no_inbound_headers)
{
    ja_job job;
    memset(&job, 0, sizeof job);
    strcpy(job.model_guid, "90c425fd-101a-420b-91d1-cb7a24a969cc");
    ja_failure_set(&job.failure, "missing_model_guid", "none");
    ja_header_scratch scratch = {0};
    amqp_basic_properties_t props;
    ASSERT_EQ(ja_dead_letter_properties(&job, &scratch, &props), 0);
    ASSERT_EQ(props.headers.num_entries, 4);
    ASSERT_EQ(ja_response_properties(&job, &scratch, &props), 0);
    ASSERT_EQ(props.headers.num_entries, 2);
    ASSERT(!(props._flags & AMQP_BASIC_CORRELATION_ID_FLAG));
    ja_header_scratch_free(&scratch);
}

int main(int argc, char **argv)
{
    static const test_case tests[] = {
        TEST_ENTRY(response_properties),
        TEST_ENTRY(dead_letter_properties),
        TEST_ENTRY(no_inbound_headers),
    };
    return RUN_TESTS(tests);
}
