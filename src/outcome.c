#include "outcome.h"

ja_outcome ja_outcome_classify(bool transport_ok, long http_status, size_t body_len)
{
    if (!transport_ok)
        return JA_OUTCOME_UNAVAILABLE;
    if (http_status >= 200 && http_status < 300) {
        /* Jube answers 204 with no body while a model is not started: try again later. */
        return body_len > 0 ? JA_OUTCOME_SUCCESS : JA_OUTCOME_UNAVAILABLE;
    }
    switch (http_status) {
    case 401: /* our credentials are wrong or missing: the operator must fix the service, */
    case 403: /* and the message stays safe in the broker meanwhile */
    case 408:
    case 429:
    case 502:
    case 503:
    case 504:
        return JA_OUTCOME_UNAVAILABLE;
    default:
        break;
    }
    if (http_status >= 400 && http_status < 500)
        return JA_OUTCOME_MESSAGE_FAULT;
    /* Other 5xx, and statuses Jube never sends (1xx, 3xx). */
    return JA_OUTCOME_SERVER_ERROR;
}

const char *ja_outcome_name(ja_outcome outcome)
{
    switch (outcome) {
    case JA_OUTCOME_SUCCESS:
        return "success";
    case JA_OUTCOME_MESSAGE_FAULT:
        return "message fault";
    case JA_OUTCOME_UNAVAILABLE:
        return "unavailable";
    case JA_OUTCOME_SERVER_ERROR:
        return "server error";
    }
    return "unknown";
}
