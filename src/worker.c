#include "worker.h"

#include "backoff.h"
#include "clock.h"
#include "http_call.h"
#include "implicit_async.h"
#include "jube_gate.h"
#include "log.h"
#include "metrics.h"
#include "oom.h"
#include "outcome.h"
#include "run_delay.h"
#include "text.h"
#include "validate.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The longest a worker sleeps when nothing is due; its bell ends the sleep sooner. */
#define IDLE_WAIT_MS 10000

typedef enum {
    SLOT_FREE,
    SLOT_CALLING, /* its call to Jube is under way */
    SLOT_WAITING, /* its job waits for due_ms (a retry's backoff) to call again */
} slot_state;

/* One of the thread's calls: the job it holds, from the ring until the job goes on to the
 * publisher or back to the consumer. */
typedef struct {
    ja_http_call *http;
    ja_job *job;
    slot_state state;
    uint64_t due_ms;
    bool probe;             /* the one call testing whether an unavailable Jube is back */
    int in_flight_at_start; /* calls under way in the service when it started, itself included */
    uint64_t started_us;
} call_slot;

struct ja_worker {
    ja_service *svc;
    const ja_config *cfg;
    int index;
    CURLM *multi;
    call_slot *slots;
    int slot_count;
    uint64_t rng;
    ja_jube_gate gate; /* may a call start now (jube_gate.h) */
    /* Jobs for the publisher, handed on once the calls this pass starts are sent: waking the
     * publisher first would let it take the core before the next request to Jube is out. */
    ja_inbox_node *for_publisher, **for_publisher_tail;
    /* The round trips the adaptive limit hears: from a call's start to the pass that found its
     * answer, less the time the thread waited to run after the wake-up before that pass. */
    ja_run_delay run_delay;
    uint64_t pass_us;         /* when this pass began looking for answers */
    uint64_t noticed_late_us; /* the wait to run after the wake-up this pass follows; or 0 */
};

/* Queues a job for the publisher (for_publisher_flush hands them on). */
static void to_publisher(ja_worker *w, ja_job *job)
{
    job->node.next = NULL;
    *w->for_publisher_tail = &job->node;
    w->for_publisher_tail = &job->node.next;
}

static void for_publisher_flush(ja_worker *w)
{
    ja_inbox_node *node = w->for_publisher;
    w->for_publisher = NULL;
    w->for_publisher_tail = &w->for_publisher;
    while (node) {
        ja_inbox_node *next = node->next;
        ja_service_to_publisher(w->svc, ja_job_of(node));
        node = next;
    }
}

/* The log fields of an event about job. */
static ja_log_fields fields_of(const ja_job *job)
{
    return (ja_log_fields){.delivery_tag = job->envelope.delivery_tag,
                           .model_guid = job->model_guid,
                           .http_status = job->http_status,
                           .attempt = job->attempts};
}

static void note_jube_unavailable(ja_worker *w, const ja_job *job, const ja_http_result *result)
{
    if (atomic_exchange(&w->svc->jube_available, false)) {
        ja_log_fields fields = fields_of(job);
        if (result->transport_ok)
            ja_log_warn_about(&fields,
                              "Jube unavailable: it answered HTTP %ld; retrying with backoff (up "
                              "to %d ms apart)",
                              result->status, w->cfg->retry_max_ms);
        else
            ja_log_warn_about(&fields,
                              "Jube unavailable: %s; retrying with backoff (up to %d ms apart)",
                              result->error, w->cfg->retry_max_ms);
    }
}

static void note_jube_available(ja_worker *w)
{
    if (!atomic_load_explicit(&w->svc->jube_available, memory_order_relaxed) &&
        !atomic_exchange(&w->svc->jube_available, true))
        ja_log_info("Jube is answering again");
}

/* Records Jube's answer (at most 1 KiB of it) as the reason for a dead letter. */
static void fail_with_answer(ja_job *job, const char *sentence)
{
    char answer[1100];
    ja_text_escape(job->response.data, job->response.len, 1024, answer, sizeof answer);
    char code[40];
    snprintf(code, sizeof code, "http_%d", job->http_status);
    ja_failure_set(&job->failure, code, "%s (HTTP %d). Jube answered: \"%s\"", sentence,
                   job->http_status, answer);
}

static void free_slot(call_slot *slot)
{
    slot->job = NULL;
    slot->state = SLOT_FREE;
}

static void dead_letter_job(ja_worker *w, ja_job *job)
{
    job->state = JA_JOB_DEAD_LETTER;
    to_publisher(w, job);
}

static void dead_letter(ja_worker *w, call_slot *slot)
{
    dead_letter_job(w, slot->job);
    free_slot(slot);
}

/* Dead-letters a job whose Implicit Async answer could not be collected: why, the placeholder,
 * and where the answer may still be. */
static void callback_incomplete(ja_worker *w, ja_job *job, const char *why)
{
    ja_failure_set(&job->failure, "implicit_async_incomplete",
                   "Jube answered with an Implicit Async placeholder, and %s. The answer may still "
                   "be collected once from GET /api/invoke/EntityAnalysisModel/Callback/%s. "
                   "Placeholder: \"%s\"",
                   why, job->instance_guid, job->placeholder);
    dead_letter_job(w, job);
}

/* Returns a delivery the service will not finish now to the broker (or, when its channel is
 * gone, just lets it go: the broker redelivers it anyway). */
static void give_back(ja_worker *w, ja_job *job)
{
    ja_service *svc = w->svc;
    if (job->instance_guid[0] && ja_service_is_live(svc, job->generation) &&
        !atomic_load(&svc->threads_exit)) {
        /* Jube has the transaction already: a redelivery would post it again and Jube would
         * process it twice. */
        callback_incomplete(w, job,
                            "the service stopped waiting for the full answer (shutting down, or "
                            "--max-hold-ms passed) before it was ready");
        return;
    }
    ja_service_to_consumer(svc, job,
                           ja_service_is_live(svc, job->generation) ? JA_JOB_REQUEUE : JA_JOB_DROP);
}

/* True when holding the job another extra_ms would pass --max-hold-ms. */
static bool held_too_long(const ja_worker *w, const ja_job *job, uint64_t now, uint64_t extra_ms)
{
    return ja_job_held_too_long(job, now + extra_ms, (uint64_t)w->cfg->max_hold_ms);
}

/* The delay before calling Jube again for a job that got a server error. */
static uint64_t retry_delay(ja_worker *w, const ja_job *job, const ja_http_result *result)
{
    uint64_t delay = ja_backoff_ms((unsigned)job->attempts, (uint64_t)w->cfg->retry_base_ms,
                                   (uint64_t)w->cfg->retry_max_ms, &w->rng);
    return ja_backoff_with_retry_after(delay, result->retry_after_ms,
                                       (uint64_t)w->cfg->retry_max_ms);
}

static bool stopping(const ja_worker *w)
{
    return atomic_load(&w->svc->stopping);
}

/* Stopping, a job waiting for its Implicit Async answer keeps waiting while the shutdown leaves
 * time: giving it back would post the transaction to Jube again, so once that time is up it is
 * dead-lettered with where the answer may still be collected. */
static bool waits_for_its_answer_while_stopping(const ja_worker *w, const ja_job *job, uint64_t now)
{
    return job->instance_guid[0] && ja_service_is_live(w->svc, job->generation) &&
           now < atomic_load(&w->svc->settle_by_ms);
}

/* This thread's share of the calls to Jube that may be under way (concurrency_limit.h). */
static int share_of(const ja_worker *w)
{
    int limit = ja_jube_limit_current(&w->svc->jube);
    int share = ja_concurrency_limit_share(limit, w->index, w->cfg->worker_threads);
    return share < w->slot_count ? share : w->slot_count;
}

static bool may_start(const ja_worker *w, uint64_t now)
{
    return ja_jube_gate_may_start(&w->gate, share_of(w), now);
}

/* Whether to take jobs from the ring: to call Jube for them, or, while Jube is unavailable and
 * the service stops, to give them back. */
static bool takes_jobs(const ja_worker *w, uint64_t now)
{
    return may_start(w, now) || (stopping(w) && ja_jube_gate_closed(&w->gate));
}

/* Lets the slot's job wait until due_ms to call Jube again, unless that would hold it too long,
 * the service is stopping, or its channel is gone: then it goes back to the broker. */
static void wait_or_give_back(ja_worker *w, call_slot *slot, uint64_t now, uint64_t due_ms)
{
    ja_job *job = slot->job;
    if (stopping(w) && waits_for_its_answer_while_stopping(w, job, now)) {
        uint64_t settle_by = atomic_load(&w->svc->settle_by_ms);
        slot->state = SLOT_WAITING;
        slot->due_ms = due_ms < settle_by ? due_ms : settle_by;
        return;
    }
    if (stopping(w) || !ja_service_is_live(w->svc, job->generation)) {
        give_back(w, job);
        free_slot(slot);
        return;
    }
    if (held_too_long(w, job, now, due_ms > now ? due_ms - now : 0)) {
        ja_log_fields fields = fields_of(job);
        ja_log_debug_about(&fields,
                           "returning the delivery to the queue: held %llu ms, "
                           "--max-hold-ms %d",
                           (unsigned long long)(now - job->received_ms), w->cfg->max_hold_ms);
        give_back(w, job);
        free_slot(slot);
        return;
    }
    slot->state = SLOT_WAITING;
    slot->due_ms = due_ms;
}

/* The gate closed (or stays closed a step longer): every job waiting on Jube then waits for it,
 * or goes back if that is too long to hold it. */
static void wait_for_gate(ja_worker *w, uint64_t now)
{
    for (int i = 0; i < w->slot_count; i++) {
        call_slot *slot = &w->slots[i];
        if (slot->state == SLOT_WAITING && slot->due_ms < ja_jube_gate_due(&w->gate, 0))
            wait_or_give_back(w, slot, now, ja_jube_gate_due(&w->gate, slot->due_ms));
    }
}

static void start_call(ja_worker *w, call_slot *slot)
{
    ja_job *job = slot->job;
    const amqp_message_t *msg = &job->envelope.message;
    bool callback = job->instance_guid[0] != '\0';
    CURL *easy = callback ? ja_http_call_prepare_callback(slot->http, job->instance_guid,
                                                          job->traceparent, &job->response)
                          : ja_http_call_prepare(slot->http, job->model_guid, job->traceparent,
                                                 msg->body.bytes, msg->body.len, &job->response);
    if (curl_multi_add_handle(w->multi, easy) != CURLM_OK)
        ja_oom("starting a call to Jube"); /* libcurl's only failure here, the handle being ours */
    if (callback) {
        job->callback_polls++;
    } else {
        if (job->attempts > 0)
            ja_metrics_count(&ja_stats.retries);
        job->attempts++;
    }
    slot->state = SLOT_CALLING;
    /* Polls for an Implicit Async answer never probe an unavailable Jube: they wait for the gate
     * like any call, and their answers do not move it. */
    slot->probe = ja_jube_gate_started(&w->gate, !callback);
    slot->in_flight_at_start = ja_jube_limit_call_started(&w->svc->jube);
    slot->started_us = ja_clock_us();
}

/* A call is over, answered or not. */
static void call_ended(ja_worker *w)
{
    ja_jube_limit_call_ended(&w->svc->jube);
}

/* Checks a job fresh from the ring. Returns true when it is to be sent to Jube; otherwise it has
 * gone on already (dead letter, or back to the consumer). */
static bool accept_job(ja_worker *w, ja_job *job, uint64_t now)
{
    ja_service *svc = w->svc;
    if (!ja_service_is_live(svc, job->generation)) {
        /* Its channel is gone: the broker will deliver it again, so do not call Jube. */
        ja_service_to_consumer(svc, job, JA_JOB_DROP);
        return false;
    }
    const amqp_message_t *msg = &job->envelope.message;
    if (!ja_validate_body_size(job->body_size, msg->body.len, (size_t)w->cfg->max_body_bytes,
                               &job->failure) ||
        !ja_validate_model_header(&msg->properties, job->model_guid, &job->failure) ||
        !ja_validate_body(msg->body.bytes, msg->body.len, &job->failure)) {
        ja_log_fields fields = fields_of(job);
        ja_log_debug_about(&fields, "dead-lettered: %s", job->failure.detail);
        job->state = JA_JOB_DEAD_LETTER;
        to_publisher(w, job);
        return false;
    }
    if (job->order_key_status != JA_KEY_FOUND && w->cfg->order_key_missing) {
        static const char *const why[JA_KEY_STATUSES] = {
            [JA_KEY_MISSING] = "is missing from it",
            [JA_KEY_NOT_SCALAR] = "is not a string or number",
            [JA_KEY_TOO_LONG] = "is longer than 256 bytes"};
        ja_failure_set(&job->failure, "order_key_missing",
                       "The message has no usable order key: --order-by '%s' %s, and "
                       "--order-key-missing is dead-letter.",
                       w->cfg->order_by, why[job->order_key_status]);
        dead_letter_job(w, job);
        return false;
    }
    ja_validate_traceparent(&msg->properties, job->traceparent);
    if (held_too_long(w, job, now, 0) ||
        (ja_jube_gate_closed(&w->gate) && !ja_jube_gate_may_start(&w->gate, 1, now))) {
        /* It waited in the ring through an outage, or Jube is unavailable while the service
         * stops: let the broker keep it. */
        give_back(w, job);
        return false;
    }
    return true;
}

/* Puts a job fresh from the ring into a free slot and calls Jube for it, unless accept_job sent
 * it on already. Returns whether the slot was taken. */
static bool take_job(ja_worker *w, call_slot *slot, ja_job *job, uint64_t now)
{
    if (!accept_job(w, job, now))
        return false;
    slot->job = job;
    start_call(w, slot);
    return true;
}

/* Starts what may start now: jobs whose retry is due first (they have waited longest), then new
 * jobs from the ring while there is room. */
static void start_calls(ja_worker *w, uint64_t now)
{
    for (int i = 0; i < w->slot_count && may_start(w, now); i++) {
        call_slot *slot = &w->slots[i];
        if (slot->state == SLOT_WAITING && slot->due_ms <= now)
            start_call(w, slot);
    }
    for (int i = 0; i < w->slot_count; i++) {
        call_slot *slot = &w->slots[i];
        if (slot->state != SLOT_FREE)
            continue;
        if (!takes_jobs(w, now))
            return;
        ja_job *job;
        while ((job = ja_ring_pop(w->svc->work)) && !take_job(w, slot, job, now))
            ;
        if (!job)
            return;
    }
}

/* Waiting jobs go back to the broker when the service stops or their channel is gone; stopping,
 * one waiting for its Implicit Async answer is polled until the shutdown's settle-by time. */
static void release_waiting(ja_worker *w)
{
    bool stop = stopping(w);
    uint64_t now = ja_clock_ms();
    uint64_t settle_by = atomic_load(&w->svc->settle_by_ms);
    for (int i = 0; i < w->slot_count; i++) {
        call_slot *slot = &w->slots[i];
        if (slot->state != SLOT_WAITING ||
            (!stop && ja_service_is_live(w->svc, slot->job->generation)))
            continue;
        if (stop && waits_for_its_answer_while_stopping(w, slot->job, now)) {
            if (slot->due_ms > settle_by)
                slot->due_ms = settle_by;
            continue;
        }
        give_back(w, slot->job);
        free_slot(slot);
    }
}

/* Jube answered with an Implicit Async placeholder: the full answer is collected from the
 * Callback endpoint, at once and then with backoff, never by posting the transaction again.
 * Returns false when the answer is the real one. */
static bool awaits_callback(ja_worker *w, call_slot *slot, uint64_t now)
{
    ja_job *job = slot->job;
    char guid[JA_GUID_LEN + 1];
    ja_answer_kind kind = ja_implicit_async_kind_of(job->response.data, job->response.len, guid);
    if (kind == JA_ANSWER_COMPLETE)
        return false;
    ja_metrics_count(&ja_stats.placeholders);
    ja_text_escape(job->response.data, job->response.len, 400, job->placeholder,
                   sizeof job->placeholder);
    if (kind == JA_ANSWER_PLACEHOLDER_NO_GUID) {
        ja_failure_set(&job->failure, "implicit_async_incomplete",
                       "Jube answered with an Implicit Async placeholder without an "
                       "EntityAnalysisModelInstanceEntryGuid to collect the answer by. "
                       "Placeholder: \"%s\"",
                       job->placeholder);
        dead_letter(w, slot);
        return true;
    }
    memcpy(job->instance_guid, guid, sizeof guid);
    job->callback_deadline_ms = now + (uint64_t)w->cfg->implicit_async_timeout_ms;
    job->callback_polls = 0;
    if (ja_log_threshold >= JA_LOG_DEBUG) {
        ja_log_fields fields = fields_of(job);
        ja_log_debug_about(&fields,
                           "Implicit Async placeholder: collecting %s from the Callback "
                           "endpoint",
                           guid);
    }
    start_call(w, slot);
    return true;
}

/* What the Callback endpoint answered for a job awaiting its Implicit Async answer. */
static void handle_callback_answer(ja_worker *w, call_slot *slot, const ja_http_result *result,
                                   uint64_t now)
{
    ja_job *job = slot->job;
    long status = result->transport_ok ? result->status : 0;
    bool answered = job->response.len > 0 && !result->response_too_large;
    uint64_t backoff = ja_backoff_ms(job->callback_polls, (uint64_t)w->cfg->retry_base_ms,
                                     (uint64_t)w->cfg->retry_max_ms, &w->rng);
    ja_poll_step step =
        ja_implicit_async_step(status, answered, now, job->callback_deadline_ms, backoff);
    switch (step.action) {
    case JA_POLL_PUBLISH:
        ja_metrics_count(&ja_stats.callbacks[JA_CALLBACK_ANSWERED]);
        job->state = JA_JOB_RESPOND;
        to_publisher(w, job);
        free_slot(slot);
        return;
    case JA_POLL_GONE:
        ja_metrics_count(&ja_stats.callbacks[JA_CALLBACK_NOT_FOUND]);
        callback_incomplete(w, job,
                            "its Callback endpoint answered 404 (callbacks are off for the "
                            "model, the answer expired, or it was collected already)");
        free_slot(slot);
        return;
    case JA_POLL_TOO_LATE:
    case JA_POLL_AGAIN:
        break;
    }
    ja_metrics_count(
        &ja_stats.callbacks[status == 408 ? JA_CALLBACK_NOT_READY : JA_CALLBACK_FAILED]);
    if (step.action == JA_POLL_TOO_LATE) {
        char why[600];
        ja_implicit_async_too_late(why, sizeof why, w->cfg->implicit_async_timeout_ms,
                                   job->callback_polls, status, result->error);
        callback_incomplete(w, job, why);
        free_slot(slot);
        return;
    }
    wait_or_give_back(w, slot, now, step.next_poll_ms);
}

/* Tells the shared concurrency limit what one invoke's answer says of Jube's load: how long
 * Jube took, as near as the thread can tell (not how long the thread took to notice). */
static void sample_for_limit(ja_worker *w, const call_slot *slot, const ja_http_result *result)
{
    long status = result->status;
    bool overload = !result->transport_ok || status == 408 || status == 429 || status == 502 ||
                    status == 503 || status == 504;
    uint64_t round_trip_us = w->pass_us > slot->started_us ? w->pass_us - slot->started_us : 0;
    if (w->noticed_late_us < round_trip_us)
        round_trip_us -= w->noticed_late_us;
    if (ja_jube_limit_sample(&w->svc->jube, round_trip_us, overload, slot->in_flight_at_start))
        ja_worker_bells_ring_all(&w->svc->bells); /* every thread's share grew */
}

static void handle_answer(ja_worker *w, call_slot *slot, const ja_http_result *result, uint64_t now)
{
    ja_job *job = slot->job;
    bool was_probe = slot->probe;
    slot->probe = false;
    call_ended(w);
    job->http_status = result->transport_ok ? (int)result->status : 0;
    ja_metrics_count(
        &ja_stats.http_responses[ja_metrics_http_class(result->status, result->transport_ok)]);
    ja_metrics_observe(&ja_stats.jube_seconds, result->duration_us);
    if (job->instance_guid[0]) {
        ja_jube_gate_abandoned(&w->gate, was_probe); /* a poll says nothing of the gate */
        handle_callback_answer(w, slot, result, now);
        return;
    }
    sample_for_limit(w, slot, result);
    ja_outcome outcome =
        result->response_too_large
            ? JA_OUTCOME_SERVER_ERROR
            : ja_outcome_classify(result->transport_ok, result->status, job->response.len);
    if (ja_log_threshold >= JA_LOG_DEBUG) {
        ja_log_fields fields = fields_of(job);
        ja_log_debug_about(&fields, "Jube answered: %s", ja_outcome_name(outcome));
    }
    bool unavailable = outcome == JA_OUTCOME_UNAVAILABLE;
    ja_gate_event gate =
        ja_jube_gate_answered(&w->gate, was_probe, unavailable, result->retry_after_ms, now);
    if (unavailable)
        note_jube_unavailable(w, job, result);
    else
        note_jube_available(w);
    if (gate == JA_GATE_CLOSED || gate == JA_GATE_OUTAGE)
        wait_for_gate(w, now);
    if (gate == JA_GATE_OUTAGE)
        ja_jube_limit_outage(&w->svc->jube);
    else if (gate == JA_GATE_RECOVERED)
        ja_jube_limit_recovered(&w->svc->jube);

    switch (outcome) {
    case JA_OUTCOME_SUCCESS:
        if (awaits_callback(w, slot, now))
            return;
        job->state = JA_JOB_RESPOND;
        to_publisher(w, job);
        free_slot(slot);
        return;
    case JA_OUTCOME_MESSAGE_FAULT:
        fail_with_answer(job, job->http_status == 404
                                  ? "Jube does not know this model, or found nothing to do"
                                  : "Jube rejected the message");
        dead_letter(w, slot);
        return;
    case JA_OUTCOME_SERVER_ERROR:
        if (job->attempts >= w->cfg->max_attempts) {
            if (result->response_too_large)
                ja_failure_set(&job->failure, "response_too_large",
                               "Jube's answer was larger than %u bytes on all %d attempts.",
                               JA_HTTP_MAX_RESPONSE_BYTES, job->attempts);
            else
                fail_with_answer(job, "Jube failed on every attempt");
            dead_letter(w, slot);
            return;
        }
        wait_or_give_back(w, slot, now, now + retry_delay(w, job, result));
        return;
    case JA_OUTCOME_UNAVAILABLE:
        wait_or_give_back(w, slot, now, ja_jube_gate_due(&w->gate, now));
        return;
    }
}

/* Handles every call libcurl has finished. Returns true when there were any. */
static bool collect_answers(ja_worker *w)
{
    bool any = false;
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        call_slot *slot = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&slot);
        curl_multi_remove_handle(w->multi, easy);
        ja_http_result result;
        ja_http_call_finish(slot->http, rc, &result);
        handle_answer(w, slot, &result, ja_clock_ms());
        any = true;
    }
    return any;
}

static call_slot *free_slot_of(ja_worker *w)
{
    for (int i = 0; i < w->slot_count; i++)
        if (w->slots[i].state == SLOT_FREE)
            return &w->slots[i];
    return NULL;
}

/* How long poll() may sleep before a waiting job is due (libcurl shortens it further for its
 * own time-outs). A job whose time has come but for which the share has no room waits for an
 * answer, which wakes the thread anyway; so does one waiting for the probe's answer. */
static int wait_timeout_ms(const ja_worker *w, uint64_t now)
{
    uint64_t soonest = now + IDLE_WAIT_MS;
    bool room = ja_jube_gate_has_room(&w->gate, share_of(w));
    for (int i = 0; room && i < w->slot_count; i++) {
        const call_slot *slot = &w->slots[i];
        if (slot->state != SLOT_WAITING)
            continue;
        uint64_t due = ja_jube_gate_due(&w->gate, slot->due_ms);
        if (due < soonest)
            soonest = due;
    }
    /* Stopping: what still waits for its Implicit Async answer is settled at this time. */
    uint64_t settle_by = atomic_load(&w->svc->settle_by_ms);
    if (stopping(w) && settle_by > now && settle_by < soonest)
        soonest = settle_by;
    return soonest <= now ? 0 : (int)(soonest - now);
}

/* Sleeps until an answer arrives, a waiting job is due, or the bell rings. With room for more
 * calls it arms the bell first and looks at the ring once more, so no push is missed. */
static void wait_for_something(ja_worker *w, uint64_t now)
{
    ja_worker_bells *bells = &w->svc->bells;
    call_slot *room = free_slot_of(w);
    bool hungry = room && takes_jobs(w, now);
    if (hungry)
        ja_worker_bells_arm(bells, w->index);
    ja_worker_bells_falling_asleep(bells);
    if (hungry) {
        ja_job *job = ja_ring_pop(w->svc->work);
        if (job) {
            ja_worker_bells_woke(bells);
            ja_worker_bells_disarm(bells, w->index);
            take_job(w, room, job, now);
            return;
        }
    } else if (ja_ring_depth(w->svc->work) > 0) {
        ja_worker_bells_ring_one(bells); /* jobs this thread has no room for */
    }
    struct curl_waitfd bell = {.fd = ja_worker_bells_fd(bells, w->index),
                               .events = CURL_WAIT_POLLIN};
    uint64_t waited_before = ja_run_delay_us(&w->run_delay);
    curl_multi_poll(w->multi, &bell, 1, wait_timeout_ms(w, now), NULL);
    w->noticed_late_us = ja_run_delay_us(&w->run_delay) - waited_before;
    ja_worker_bells_woke(bells);
    if (hungry)
        ja_worker_bells_disarm(bells, w->index);
    if (bell.revents)
        ja_worker_bells_clear(bells, w->index);
}

/* Only once the consumer has finished (or given up): whatever is still held goes back. */
static void abandon_all(ja_worker *w)
{
    for (int i = 0; i < w->slot_count; i++) {
        call_slot *slot = &w->slots[i];
        if (slot->state == SLOT_CALLING) {
            curl_multi_remove_handle(w->multi, ja_http_call_handle(slot->http));
            ja_jube_gate_abandoned(&w->gate, slot->probe);
            call_ended(w);
        }
        if (slot->state != SLOT_FREE) {
            give_back(w, slot->job);
            free_slot(slot);
        }
    }
}

static bool worker_init(ja_worker *w, ja_service *svc, int index, int calls)
{
    w->svc = svc;
    w->cfg = svc->cfg;
    w->index = index;
    w->for_publisher_tail = &w->for_publisher;
    w->rng = ((uint64_t)time(NULL) << 16) ^ (uint64_t)(index + 1) * 0x9E3779B97F4A7C15ull;
    if (w->rng == 0)
        w->rng = 1;
    ja_jube_gate_init(&w->gate, (uint64_t)w->cfg->retry_base_ms, (uint64_t)w->cfg->retry_max_ms,
                      w->rng ^ 0xD1B54A32D192ED03ull);
    w->multi = curl_multi_init();
    w->slots = calloc((size_t)calls, sizeof *w->slots);
    if (!w->multi || !w->slots)
        return false;
    /* Keep one idle connection per call, not libcurl's default that shrinks with the number of
     * calls under way at the moment. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)calls);
    for (int i = 0; i < calls; i++) {
        w->slots[i].http = ja_http_call_new(w->cfg, &w->slots[i]);
        if (!w->slots[i].http)
            return false;
        w->slot_count++;
    }
    return true;
}

static void worker_free(ja_worker *w)
{
    for (int i = 0; i < w->slot_count; i++)
        ja_http_call_free(w->slots[i].http);
    free(w->slots);
    if (w->multi)
        curl_multi_cleanup(w->multi);
}

ja_worker *ja_worker_new(ja_service *svc, int index, int calls)
{
    ja_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (!worker_init(w, svc, index, calls)) {
        ja_worker_free(w);
        return NULL;
    }
    return w;
}

void ja_worker_free(ja_worker *w)
{
    if (!w)
        return;
    worker_free(w);
    free(w);
}

void *ja_worker_run(void *arg)
{
    ja_worker *w = arg;
    char name[24];
    snprintf(name, sizeof name, "worker-%d", w->index);
    ja_log_set_thread_name(name);
    /* Only the adaptive limit needs the wait (a read of /proc per sleep). */
    w->run_delay.fd = -1;
    if (w->cfg->concurrency == JA_CONCURRENCY_ADAPTIVE)
        ja_run_delay_open(&w->run_delay);
    while (!atomic_load(&w->svc->threads_exit)) {
        release_waiting(w);
        start_calls(w, ja_clock_ms());
        w->pass_us = ja_clock_us();
        int running;
        curl_multi_perform(w->multi, &running);
        for_publisher_flush(w);
        bool answered = collect_answers(w);
        w->noticed_late_us = 0; /* the next pass follows no wake-up */
        /* Answers free slots: fill them before sleeping. */
        if (answered)
            continue;
        wait_for_something(w, ja_clock_ms());
    }
    abandon_all(w);
    for_publisher_flush(w);
    ja_run_delay_close(&w->run_delay);
    return NULL;
}
