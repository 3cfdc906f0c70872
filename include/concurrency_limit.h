#ifndef JA_CONCURRENCY_LIMIT_H
#define JA_CONCURRENCY_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

/* How many calls to Jube may be under way at once (--concurrency adaptive, the default): the point
 * where more calls stop bringing more throughput, found from Jube's answers.
 *
 * Pure bookkeeping, driven by a clock the caller passes in. Each answer is one sample: how long
 * Jube took (the caller takes its own waits out), whether it was a sign of overload (429, 503,
 * 502, 504, 408, no answer), and how many calls were under way. Only answers to calls made since
 * the limit last changed are samples, judged a window at a time (at least WINDOW_MIN_MS and two
 * baseline round trips, and an answer per call the limit allows):
 * - overload in the window: the limit shrinks by the decrease ratio (0.9) at once;
 * - calls queueing inside Jube: calls x (mean round trip - baseline) / mean round trip of them
 *   were waiting rather than served (Little's law); more than 2, or 10% of the limit, with the
 *   round trip over a fifth of the baseline (1 to 2 ms) above it. Right after a step up: back to
 *   the last level that did not queue. At a level a step reached and judged fine once or twice:
 *   one down. Otherwise in proportion to the round trip (by half at most), and only once a second
 *   window says the same when the first queued by less than the round trip again. The baseline
 *   is the lowest recent window mean, what Jube answers in unloaded;
 * - otherwise, if the calls under way reached the limit, it grows: doubling (slow start) until
 *   the first cut, then back under the level cut in halving steps, that level itself probed after
 *   a hold, and steps that double from one once it held three windows (the knee moved).
 * After an outage, slow start climbs straight back to the limit before it; a floor and a least
 * number of samples per judgement keep a few slow answers from starving the service. Where the
 * rules come from, and why, is in docs/DESIGN.md ("Adaptive concurrency").
 *
 * With --concurrency fixed the limit is the upper bound, always. */

typedef enum {
    JA_LIMIT_CUT_OVERLOAD, /* 429, 503, 502, 504, 408 or no answer */
    JA_LIMIT_CUT_LATENCY,  /* round trips well above the baseline */
    JA_LIMIT_CUT_CAUSES
} ja_limit_cut;

typedef struct {
    bool adaptive;
    int floor, ceiling; /* the limit stays within [floor, ceiling] */
    double limit;
    bool slow_start;
    int recovery_target; /* slow start stops here after an outage; 0 when not recovering */
    bool in_outage;      /* Jube is unavailable: cuts do not end the recovery's slow start */

    int last_good;           /* the last limit a window reached without queueing; 0 after a cut */
    int good_here;           /* windows at the limit now without queueing */
    bool stepped;            /* it got where it is by a step up, or by undoing one */
    bool doubted;            /* the last window queued, not enough to cut on its own */
    uint64_t last_change_ms; /* calls made before it say nothing of the limit now */

    /* After a cut at limit C the limit grows back under C in halving steps but stays below C
     * for hold_ms; a cut near C again doubles the hold (up to JA_LIMIT_HOLD_MAX_MS), windows at C
     * without one end it and start steps that double (the knee moved, maybe far). So a steep knee
     * is probed rarely instead of once per sawtooth. */
    int cut_at;
    int good_at_cut; /* windows at or above cut_at without a cut */
    int probe_step;  /* past a knee that moved: the next step up (doubling); 0 otherwise */
    uint64_t hold_until_ms;
    uint64_t hold_ms;

    /* The window being gathered. */
    uint64_t window_start_ms;
    unsigned samples;
    double rtt_sum_ms;
    bool overloaded;
    int most_in_flight;

    /* What earlier windows said. */
    bool have_baseline;
    double baseline_ms; /* the lowest recent window mean, rising slowly when not renewed */
    double last_rtt_ms; /* the last window's mean */
    unsigned long cuts[JA_LIMIT_CUT_CAUSES];
} ja_concurrency_limit;

/* The least length of a window, and the least number of samples judged (fewer wait for more). */
#define JA_LIMIT_WINDOW_MIN_MS 20
#define JA_LIMIT_MIN_SAMPLES   8
#define JA_LIMIT_HOLD_MIN_MS   100
/* Round trips above the baseline by a fifth of it, within these bounds, are noise. */
#define JA_LIMIT_SLACK_MIN_MS 1.0
#define JA_LIMIT_SLACK_MAX_MS 2.0
#define JA_LIMIT_HOLD_MAX_MS  1600

void ja_concurrency_limit_init(ja_concurrency_limit *l, bool adaptive, int floor, int ceiling,
                               uint64_t now_ms);

/* One answer: its round trip, whether it signalled overload, and the calls under way when it was
 * made (itself included). */
void ja_concurrency_limit_sample(ja_concurrency_limit *l, uint64_t now_ms, uint64_t rtt_us,
                                 bool overload, int in_flight);

/* Judges the window once it is complete. Returns true when the limit changed. */
bool ja_concurrency_limit_update(ja_concurrency_limit *l, uint64_t now_ms);

/* Jube became unavailable: remember the limit to return to quickly once it answers again. */
void ja_concurrency_limit_outage(ja_concurrency_limit *l);
/* Jube answers again: slow start back to that limit (a cut from now on ends the recovery). */
void ja_concurrency_limit_recovered(ja_concurrency_limit *l);

/* The number of calls that may be under way now. */
int ja_concurrency_limit_current(const ja_concurrency_limit *l);

/* The share of the limit of worker thread `index` of `threads`: the limit split as evenly as
 * whole calls allow, the first threads taking the remainder. */
int ja_concurrency_limit_share(int limit, int index, int threads);

#endif
