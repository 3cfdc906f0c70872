#ifndef JA_OOM_H
#define JA_OOM_H

/* The service's one rule for running out of memory. Everything a thread needs to start is
 * allocated before any thread starts, so a machine without the memory fails at start-up with a
 * clear message and exit status 1. What grows afterwards (a burst of publishes to track, a large
 * answer to hold) calls ja_oom when it cannot: it logs through the logger, so the line keeps
 * --log-format, and aborts. A process short of memory cannot keep its promises half-way; a
 * restart loses nothing, since every unacked delivery goes back to the queue. */

/* Logs "out of memory <while>" as an error and aborts. */
_Noreturn void ja_oom(const char *while_doing);

#endif
