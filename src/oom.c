#include "oom.h"

#include "log.h"

#include <stdlib.h>

void ja_oom(const char *while_doing)
{
    ja_log_error("out of memory %s: stopping; every unacknowledged delivery returns to the queue",
                 while_doing);
    abort();
}
