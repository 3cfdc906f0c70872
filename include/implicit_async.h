#ifndef JA_IMPLICIT_ASYNC_H
#define JA_IMPLICIT_ASYNC_H

#include "job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Jube's Implicit Async (newest Jube): when a model takes longer than its
 * ImplicitAsyncTimeoutMilliseconds, the synchronous invoke still answers 200, but with a
 * placeholder carrying only identity and timing fields and "ImplicitAsyncTimedOut": true. The
 * full answer is collected once from GET /api/invoke/EntityAnalysisModel/Callback/{the
 * placeholder's EntityAnalysisModelInstanceEntryGuid}. */

typedef enum {
    JA_ANSWER_COMPLETE,            /* no top-level ImplicitAsyncTimedOut true: the answer */
    JA_ANSWER_PLACEHOLDER,         /* a placeholder, with the instance GUID to collect it by */
    JA_ANSWER_PLACEHOLDER_NO_GUID, /* a placeholder without a usable instance GUID */
} ja_answer_kind;

/* Looks at the top-level members of a JSON object (keys matched without regard to case, as
 * Jube's formats differ in case) without allocating. guid receives the instance GUID, lower
 * case, for JA_ANSWER_PLACEHOLDER. Anything that is not a JSON object is JA_ANSWER_COMPLETE:
 * this only tells placeholders apart. */
ja_answer_kind ja_implicit_async_kind_of(const char *body, size_t len, char guid[JA_GUID_LEN + 1]);

/* What one answer of the Callback endpoint means for a message awaiting its full answer. */
typedef enum {
    JA_POLL_PUBLISH,  /* 200 with a body within the limit: the answer, to be published */
    JA_POLL_GONE,     /* 404: callbacks are off for the model, the answer expired, or it was
                         collected already; dead-letter (posting again would process it twice) */
    JA_POLL_TOO_LATE, /* not ready (408), failed or unanswered, and the deadline passed */
    JA_POLL_AGAIN,    /* not ready, failed or unanswered: poll again at next_poll_ms */
} ja_poll_action;

typedef struct {
    ja_poll_action action;
    uint64_t next_poll_ms; /* JA_POLL_AGAIN: the backoff's time, never past the deadline */
} ja_poll_step;

/* The poll policy. status is the endpoint's HTTP status, 0 when nothing answered; answered is
 * true when a body arrived whole (not empty, not too large); backoff_ms is the caller's backoff
 * for this poll (backoff.h, with its own jitter). */
ja_poll_step ja_implicit_async_step(long status, bool answered, uint64_t now_ms,
                                    uint64_t deadline_ms, uint64_t backoff_ms);

/* The sentence of a JA_POLL_TOO_LATE dead letter: how long was waited, how often polled, and the
 * last answer (status, or the transport's error when status is 0). */
void ja_implicit_async_too_late(char *out, size_t size, int timeout_ms, unsigned polls, long status,
                                const char *error);

#endif
