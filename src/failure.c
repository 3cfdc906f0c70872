#include "failure.h"

#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ja_failure_set(ja_failure *failure, const char *code, const char *fmt, ...)
{
    snprintf(failure->code, sizeof failure->code, "%s", code);
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(failure->detail, sizeof failure->detail, fmt, args);
    va_end(args);
    /* A detail cut short must not end inside a character: the header is a UTF-8 string. */
    if (n >= (int)sizeof failure->detail) {
        size_t len = strlen(failure->detail);
        failure->detail[ja_text_utf8_cut(failure->detail, len)] = '\0';
    }
}
