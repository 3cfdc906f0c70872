#include "run_delay.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

void ja_run_delay_open(ja_run_delay *d)
{
    d->fd = open("/proc/thread-self/schedstat", O_RDONLY | O_CLOEXEC);
}

void ja_run_delay_close(ja_run_delay *d)
{
    if (d->fd >= 0)
        close(d->fd);
    d->fd = -1;
}

uint64_t ja_run_delay_us(const ja_run_delay *d)
{
    if (d->fd < 0)
        return 0;
    /* "<time on the CPU, ns> <time waiting to run, ns> <time slices>" */
    char text[96];
    ssize_t n = pread(d->fd, text, sizeof text - 1, 0);
    if (n <= 0)
        return 0;
    text[n] = '\0';
    char *end;
    strtoull(text, &end, 10);
    unsigned long long waited_ns = strtoull(end, NULL, 10);
    return waited_ns / 1000;
}
