#ifndef JA_FAILURE_H
#define JA_FAILURE_H

/* What was wrong with a message, as written into its dead letter. */

/* The longest x-jube-error-detail: a sentence plus at most 1 KiB of Jube's answer. */
#define JA_ERROR_DETAIL_MAX 1400

typedef struct {
    char code[40];                    /* x-jube-error, e.g. "invalid_json", "http_404" */
    char detail[JA_ERROR_DETAIL_MAX]; /* x-jube-error-detail: a sentence for a person */
} ja_failure;

/* Sets failure to code and a printf-formatted detail (cut on a character boundary). */
void ja_failure_set(ja_failure *failure, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
