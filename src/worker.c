#include "worker.h"

#include "http_client.h"
#include "log.h"
#include "outcome.h"
#include "validate.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

typedef struct {
    ja_service *svc;
    const ja_config *cfg;
    ja_http_client *http;
    uint64_t rng;
    /* Consecutive calls that found Jube unavailable, whatever the message: while Jube is down
     * each worker probes it at most once per backoff step, even across messages. */
    unsigned unavailable_streak;
} worker;

static void dead_letter(worker *w, ja_job *job)
{
    job->state = JA_JOB_DEAD_LETTER;
    ja_service_to_publisher(w->svc, job);
}

static void note_jube_unavailable(worker *w, const ja_http_result *result)
{
    if (atomic_exchange(&w->svc->jube_available, false)) {
        if (result->transport_ok)
            ja_log_warn("Jube unavailable: it answered HTTP %ld; retrying with backoff (up to "
                        "%d ms apart)",
                        result->status, w->cfg->retry_max_ms);
        else
            ja_log_warn("Jube unavailable: %s; retrying with backoff (up to %d ms apart)",
                        result->error, w->cfg->retry_max_ms);
    }
}

static void note_jube_available(worker *w)
{
    if (!atomic_load_explicit(&w->svc->jube_available, memory_order_relaxed) &&
        !atomic_exchange(&w->svc->jube_available, true))
        ja_log_info("Jube is answering again");
}

/* Records Jube's answer (at most 1 KiB of it) as the reason for a dead letter. */
static void fail_with_answer(ja_job *job, const char *sentence)
{
    char answer[1100];
    ja_escape_for_text(job->response.data, job->response.len, 1024, answer, sizeof answer);
    char code[40];
    snprintf(code, sizeof code, "http_%d", job->http_status);
    ja_failure_set(&job->failure, code, "%s (HTTP %d). Jube answered: \"%s\"", sentence,
                   job->http_status, answer);
}

/* Returns a delivery the service will not finish now to the broker (or, when its channel is
 * gone, just lets it go: the broker redelivers it anyway). */
static void give_back(worker *w, ja_job *job)
{
    ja_service *svc = w->svc;
    ja_service_to_consumer(svc, job,
                           ja_service_is_live(svc, job->generation) ? JA_JOB_REQUEUE : JA_JOB_DROP);
}

/* True when holding the job another extra_ms would pass --max-hold-ms. RabbitMQ closes the
 * channel of a delivery unacked past its consumer_timeout, so a long outage must not get there. */
static bool held_too_long(const worker *w, const ja_job *job, uint64_t extra_ms)
{
    return ja_now_ms() + extra_ms - job->received_ms >= (uint64_t)w->cfg->max_hold_ms;
}

static uint64_t retry_delay(worker *w, const ja_job *job, ja_outcome outcome,
                            const ja_http_result *result)
{
    unsigned step =
        outcome == JA_OUTCOME_UNAVAILABLE ? w->unavailable_streak : (unsigned)job->attempts;
    uint64_t delay = ja_backoff_ms(step, (uint64_t)w->cfg->retry_base_ms,
                                   (uint64_t)w->cfg->retry_max_ms, &w->rng);
    uint64_t max = (uint64_t)w->cfg->retry_max_ms;
    if (result->retry_after_ms > 0 && (uint64_t)result->retry_after_ms > delay)
        delay = (uint64_t)result->retry_after_ms < max ? (uint64_t)result->retry_after_ms : max;
    return delay;
}

static void process(worker *w, ja_job *job)
{
    ja_service *svc = w->svc;
    if (!ja_service_is_live(svc, job->generation)) {
        /* Its channel is gone: the broker will deliver it again, so do not call Jube. */
        ja_service_to_consumer(svc, job, JA_JOB_DROP);
        return;
    }
    const amqp_message_t *msg = &job->envelope.message;
    if (!ja_validate_model_header(&msg->properties, job->model_guid, &job->failure) ||
        !ja_validate_body(msg->body.bytes, msg->body.len, (size_t)w->cfg->max_body_bytes,
                          &job->failure)) {
        ja_log_debug("delivery %llu dead-lettered: %s",
                     (unsigned long long)job->envelope.delivery_tag, job->failure.detail);
        dead_letter(w, job);
        return;
    }

    if (held_too_long(w, job, 0)) {
        /* It waited in the ring through an outage: let the broker keep it a while. */
        give_back(w, job);
        return;
    }

    for (;;) {
        ja_http_result result;
        job->attempts++;
        ja_http_invoke(w->http, job->model_guid, msg->body.bytes, msg->body.len, &job->response,
                       &result);
        job->http_status = result.transport_ok ? (int)result.status : 0;
        ja_outcome outcome =
            result.response_too_large
                ? JA_OUTCOME_SERVER_ERROR
                : ja_outcome_classify(result.transport_ok, result.status, job->response.len);
        ja_log_debug("model %s attempt %d: HTTP %d (%s)", job->model_guid, job->attempts,
                     job->http_status, ja_outcome_name(outcome));
        if (outcome == JA_OUTCOME_UNAVAILABLE) {
            w->unavailable_streak++;
            note_jube_unavailable(w, &result);
        } else {
            w->unavailable_streak = 0;
            note_jube_available(w);
        }
        switch (outcome) {
        case JA_OUTCOME_SUCCESS:
            job->state = JA_JOB_RESPOND;
            ja_service_to_publisher(svc, job);
            return;
        case JA_OUTCOME_MESSAGE_FAULT:
            fail_with_answer(job, job->http_status == 404
                                      ? "Jube does not know this model, or found nothing to do"
                                      : "Jube rejected the message");
            dead_letter(w, job);
            return;
        case JA_OUTCOME_SERVER_ERROR:
            if (job->attempts >= w->cfg->max_attempts) {
                if (result.response_too_large)
                    ja_failure_set(&job->failure, "response_too_large",
                                   "Jube's answer was larger than %u bytes on all %d attempts.",
                                   JA_HTTP_MAX_RESPONSE_BYTES, job->attempts);
                else
                    fail_with_answer(job, "Jube failed on every attempt");
                dead_letter(w, job);
                return;
            }
            break;
        case JA_OUTCOME_UNAVAILABLE:
            break;
        }

        uint64_t delay = retry_delay(w, job, outcome, &result);
        if (held_too_long(w, job, delay)) {
            ja_log_debug("returning delivery %llu to the queue: held %llu ms, --max-hold-ms %d",
                         (unsigned long long)job->envelope.delivery_tag,
                         (unsigned long long)(ja_now_ms() - job->received_ms), w->cfg->max_hold_ms);
            give_back(w, job);
            /* Still wait out the step: the next message must not probe Jube early. */
            ja_service_sleep(svc, delay, JA_WAKE_ON_STOP, 0);
            return;
        }
        if (!ja_service_sleep(svc, delay, JA_WAKE_ON_STOP, job->generation)) {
            /* Shutting down, or the delivery's channel is gone: the broker keeps the message. */
            give_back(w, job);
            return;
        }
    }
}

void *ja_worker_run(void *arg)
{
    ja_worker_args *args = arg;
    char name[24];
    snprintf(name, sizeof name, "worker-%d", args->index);
    ja_log_set_thread_name(name);

    worker w = {.svc = args->svc, .cfg = args->svc->cfg};
    w.rng = ((uint64_t)time(NULL) << 16) ^ (uint64_t)(args->index + 1) * 0x9E3779B97F4A7C15ull;
    if (w.rng == 0)
        w.rng = 1;
    w.http = ja_http_client_new(w.cfg);
    if (!w.http) {
        ja_log_error("out of memory creating the HTTP client");
        return NULL;
    }
    for (;;) {
        while (sem_wait(&w.svc->work_ready) != 0 && errno == EINTR)
            ;
        ja_job *job = ja_ring_pop(w.svc->work);
        if (job)
            process(&w, job);
        else if (atomic_load(&w.svc->threads_exit))
            break;
    }
    ja_http_client_free(w.http);
    return NULL;
}
