#ifndef JA_IMPLICIT_ASYNC_H
#define JA_IMPLICIT_ASYNC_H

#include "job.h"

#include <stddef.h>

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

#endif
