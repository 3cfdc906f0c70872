#ifndef JA_TEST_CAPACITY_H
#define JA_TEST_CAPACITY_H

/* Jube's capacity changing under a backlog, against --concurrency adaptive: the scenarios the
 * concurrency test asserts on and the benchmark measures. The stand-in answers in 20 ms, 5 ms
 * more per call past its knee; the service is adaptive with a bound of 256. */

/* The knee moves from 5 calls to 40 (Jube scaled out; PUT /knee on the stand-in) and back. */
typedef struct {
    int at_5;     /* the limit after a while at a knee of 5 */
    long up_ms;   /* from the move to 40 until the limit is 32 or more; -1: not within 10 s */
    int at_40;    /* the limit 2 s (4,000 answers) later */
    int down_to;  /* the limit counts as back at the knee of 5 at or below this */
    long down_ms; /* from the move back until the limit is down_to or less; -1: not in 10 s */
    long refused; /* invocations the stand-in answered 503 */
} capacity_change;
capacity_change capacity_change_run(const char *name);

/* Jube is gone for 2 s (stopped; connection refused) and comes back on the same port. */
typedef struct {
    int before;   /* the limit before the outage, at a knee of 40 */
    long back_ms; /* from Jube's return until the limit is 80% of before; -1: not within 10 s */
} capacity_outage;
capacity_outage capacity_outage_run(const char *name);

#endif
