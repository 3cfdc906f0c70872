#ifndef JA_OUTCOME_H
#define JA_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* What a worker does with the answer Jube gave (or did not give) for one message. */
typedef enum {
    JA_OUTCOME_SUCCESS,       /* 2xx with a body: publish it */
    JA_OUTCOME_MESSAGE_FAULT, /* Jube rejected this message: dead-letter it now */
    JA_OUTCOME_UNAVAILABLE,   /* Jube cannot answer now: retry without limit, backing off */
    JA_OUTCOME_SERVER_ERROR,  /* Jube failed on this message: retry up to --max-attempts */
} ja_outcome;

/* transport_ok is false when no HTTP answer arrived (refused, reset, timed out). */
ja_outcome ja_outcome_classify(bool transport_ok, long http_status, size_t body_len);

const char *ja_outcome_name(ja_outcome outcome);

#endif
