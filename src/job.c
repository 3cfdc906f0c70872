#include "job.h"

#include "oom.h"
#include "order_key.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int ja_job_pool_init(ja_job_pool *pool, size_t capacity)
{
    memset(pool, 0, sizeof *pool);
    pool->spare = calloc(capacity, sizeof *pool->spare);
    if (!pool->spare)
        return -ENOMEM;
    pool->capacity = capacity;
    return 0;
}

void ja_job_pool_destroy(ja_job_pool *pool)
{
    for (size_t i = 0; i < pool->count; i++)
        ja_job_free(pool->spare[i]);
    free(pool->spare);
    memset(pool, 0, sizeof *pool);
}

ja_job *ja_job_new(ja_job_pool *pool, const amqp_envelope_t *envelope, uint64_t body_size,
                   uint64_t generation, uint64_t now_ms)
{
    ja_job *job = pool->count > 0 ? pool->spare[--pool->count] : calloc(1, sizeof(ja_job));
    if (!job)
        ja_oom("taking a delivery");
    /* Field by field, not a memset of the whole job: its 2.8 KB were last written by the worker
     * and the publisher on other cores, and taking every cache line back cost the consumer 5 us
     * a message (the benchmark's drain). What is not reset here is written before it is read:
     * the publishing state when the publisher takes the job, the delivery counts by the
     * consumer, the Implicit Async fields once instance_guid is set, the traceparent by the
     * worker's check. */
    job->envelope = *envelope;
    job->body_size = body_size;
    job->generation = generation;
    job->received_ms = now_ms;
    job->state = JA_JOB_NEW;
    job->http_status = 0;
    job->attempts = 0;
    job->failure.code[0] = '\0';
    job->failure.detail[0] = '\0';
    job->model_guid[0] = '\0';
    job->instance_guid[0] = '\0';
    job->response.len = 0;
    job->ordered = false;
    job->order_key_status = JA_KEY_FOUND;
    job->order_key_len = 0;
    return job;
}

void ja_job_recycle(ja_job_pool *pool, ja_job *job)
{
    amqp_destroy_envelope(&job->envelope);
    memset(&job->envelope, 0, sizeof job->envelope);
    if (pool->count < pool->capacity) {
        pool->spare[pool->count++] = job;
        return;
    }
    ja_job_free(job);
}

bool ja_job_held_too_long(const ja_job *job, uint64_t at_ms, uint64_t max_hold_ms)
{
    /* A clock read just before the consumer stamped the job means age 0, not an age of 2^64 ms
     * (which gave fresh deliveries back to the queue). */
    uint64_t age = at_ms > job->received_ms ? at_ms - job->received_ms : 0;
    return age >= max_hold_ms;
}

void ja_job_free(ja_job *job)
{
    amqp_destroy_envelope(&job->envelope);
    ja_buffer_free(&job->response);
    free(job);
}
