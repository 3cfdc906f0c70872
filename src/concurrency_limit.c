#include "concurrency_limit.h"

#include <string.h>

#define DECREASE_RATIO 0.9  /* Vector's default */
#define QUEUE_SHARE    0.1  /* calls queued inside Jube tolerated, as a share of the limit */
#define QUEUE_MIN      2.0  /* ... and at least this many */
#define BASELINE_RISE  0.02 /* how fast an unrenewed baseline drifts towards the window mean */
#define SLACK_SHARE    0.2  /* round trips this share of the baseline above it are noise */

void ja_concurrency_limit_init(ja_concurrency_limit *l, bool adaptive, int floor, int ceiling,
                               uint64_t now_ms)
{
    memset(l, 0, sizeof *l);
    l->adaptive = adaptive;
    l->ceiling = ceiling < 1 ? 1 : ceiling;
    l->floor = floor < 1 ? 1 : floor > l->ceiling ? l->ceiling : floor;
    l->limit = adaptive ? l->floor : l->ceiling;
    l->slow_start = true;
    l->window_start_ms = now_ms;
}

void ja_concurrency_limit_sample(ja_concurrency_limit *l, uint64_t now_ms, uint64_t rtt_us,
                                 bool overload, int in_flight)
{
    if (!l->adaptive)
        return;
    uint64_t rtt_ms = rtt_us / 1000;
    if (l->last_change_ms && (now_ms < rtt_ms || now_ms - rtt_ms < l->last_change_ms))
        return; /* made before the limit last changed: it says nothing of the new limit */
    if (l->samples == 0 && !l->overloaded)
        l->window_start_ms = now_ms; /* a window starts with its first answer */
    l->samples++;
    l->rtt_sum_ms += (double)rtt_us / 1000.0;
    l->overloaded = l->overloaded || overload;
    if (in_flight > l->most_in_flight)
        l->most_in_flight = in_flight;
}

static void set_limit(ja_concurrency_limit *l, double limit)
{
    if (limit < l->floor)
        limit = l->floor;
    if (limit > l->ceiling)
        limit = l->ceiling;
    l->limit = limit;
}

/* Lowers the limit to `to` for `cause`, and remembers the level that was too much. */
static void cut(ja_concurrency_limit *l, ja_limit_cut cause, double to, uint64_t now_ms)
{
    int at = (int)l->limit;
    if (!l->in_outage) {
        /* The same knee again (a cut is noticed a window or so late): probe it less often. */
        bool same_knee = l->cut_at > 0 && at <= l->cut_at + 1 && at + 1 >= l->cut_at;
        l->hold_ms = same_knee ? l->hold_ms * 2 : JA_LIMIT_HOLD_MIN_MS;
        if (l->hold_ms > JA_LIMIT_HOLD_MAX_MS)
            l->hold_ms = JA_LIMIT_HOLD_MAX_MS;
        l->cut_at = same_knee && l->cut_at < at ? l->cut_at : at;
        l->good_at_cut = 0;
        l->hold_until_ms = now_ms + l->hold_ms;
    }
    set_limit(l, to);
    l->cuts[cause]++;
    l->last_change_ms = now_ms;
    l->last_good = 0; /* judged afresh at the new limit */
    l->good_here = 0;
    l->stepped = false;
    l->probe_step = 0;
    if (l->in_outage)
        return; /* the outage's failures say nothing of the capacity to return to */
    l->slow_start = false;
    l->recovery_target = 0;
}

static void grow(ja_concurrency_limit *l, uint64_t now_ms)
{
    if (l->cut_at > 0 && (int)l->limit >= l->cut_at && ++l->good_at_cut >= 3) {
        /* Windows at the level of the last cut without another: the knee moved, maybe far
         * (Jube scaled out). Steps that double from one find it (BIC's probing past its old
         * maximum): a knee that only seemed to move costs one step of one. */
        l->cut_at = 0;
        l->hold_ms = 0;
        l->probe_step = 1;
    }
    if (l->slow_start) {
        double doubled = l->limit * 2;
        if (l->recovery_target > 0 && doubled >= l->recovery_target) {
            /* Back where it was before the outage: carry on additively from there. */
            doubled = l->recovery_target;
            l->slow_start = false;
            l->recovery_target = 0;
        }
        set_limit(l, doubled);
    } else if (l->probe_step > 0) {
        set_limit(l, (int)l->limit + l->probe_step);
        l->probe_step = (int)l->limit >= l->ceiling ? 0 : 2 * l->probe_step;
    } else {
        double next = l->limit + 1;
        int gap = l->cut_at - 1 - (int)l->limit;
        if (l->cut_at > 0 && gap > 1)
            next = (int)l->limit + gap / 2; /* halfway back to the level cut (BIC's binary step) */
        if (l->cut_at > 0 && now_ms < l->hold_until_ms && next >= l->cut_at)
            next = l->cut_at - 1 > l->limit ? l->cut_at - 1 : l->limit;
        else if (l->cut_at > 0 && next >= l->cut_at + 1)
            next = l->cut_at; /* probing the knee: one level at a time until it holds */
        set_limit(l, next);
    }
}

/* Where a window that queued takes the limit. Above the last level judged fine, the step up did
 * it: back to that level, at once (on a steep knee one call too many doubles the latency of the
 * calls beyond it; a 10% cut would leave the knee too, on the other side). At a level reached by
 * a step (up, or back down) and judged fine only once or twice, the knee is right there: one
 * down, as Vegas steps. Otherwise Jube got slower, or the last cut was not enough: down in
 * proportion, baseline over mean round trip (Gradient2's gradient), by half at most. */
static double latency_cut_to(const ja_concurrency_limit *l, double mean_ms)
{
    if (l->last_good > 0 && (int)l->limit > l->last_good)
        return l->last_good;
    if (l->stepped && l->good_here < 3)
        return l->limit - 1;
    double ratio = l->baseline_ms / mean_ms;
    ratio = ratio < 0.5 ? 0.5 : ratio > DECREASE_RATIO ? DECREASE_RATIO : ratio;
    return l->limit * ratio;
}

static void start_window(ja_concurrency_limit *l, uint64_t now_ms)
{
    l->window_start_ms = now_ms;
    l->samples = 0;
    l->rtt_sum_ms = 0;
    l->overloaded = false;
    l->most_in_flight = 0;
}

/* A window judges answers to calls made at the limit it judges (older ones are not sampled):
 * at least WINDOW_MIN_MS and two unloaded round trips long (one in slow start, which a wrong step
 * costs little; two exactly for a probe of a level cut before, which costs Jube), and an answer
 * for every call the limit allows. The first answers after a change are the fast ones; the calls
 * that queue inside Jube come later, and a window of the fast ones alone would see no queue. */
static bool window_complete(const ja_concurrency_limit *l, uint64_t now_ms)
{
    uint64_t length = JA_LIMIT_WINDOW_MIN_MS;
    double round_trips = l->slow_start ? 1 : 2;
    if (l->have_baseline && round_trips * l->baseline_ms > (double)length)
        length = (uint64_t)(round_trips * l->baseline_ms);
    if (l->have_baseline && l->cut_at > 0 && (int)l->limit >= l->cut_at)
        length = (uint64_t)(2 * l->baseline_ms);
    unsigned least = JA_LIMIT_MIN_SAMPLES;
    if ((unsigned)l->limit > least)
        least = (unsigned)l->limit;
    return now_ms >= l->window_start_ms + length && l->samples >= least;
}

/* Round trips a little above the baseline are noise whatever the ratio: the service's own
 * wake-ups on a busy machine add up to a millisecond or two. A fifth of the baseline between
 * those bounds, so that a 5 ms Jube's knee shows. */
static double noise_ms(const ja_concurrency_limit *l)
{
    double slack = SLACK_SHARE * l->baseline_ms;
    return slack < JA_LIMIT_SLACK_MIN_MS   ? JA_LIMIT_SLACK_MIN_MS
           : slack > JA_LIMIT_SLACK_MAX_MS ? JA_LIMIT_SLACK_MAX_MS
                                           : slack;
}

bool ja_concurrency_limit_update(ja_concurrency_limit *l, uint64_t now_ms)
{
    if (!l->adaptive)
        return false;
    /* Overload is acted on at once. */
    bool overloaded = l->overloaded && l->samples > 0;
    if (!overloaded && !window_complete(l, now_ms))
        return false;
    double before = l->limit;
    if (overloaded) {
        /* Slow start doubled past the point: the window before was fine at half the limit. */
        double ratio = l->slow_start && !l->in_outage ? 0.5 : DECREASE_RATIO;
        cut(l, JA_LIMIT_CUT_OVERLOAD, l->limit * ratio, now_ms);
        start_window(l, now_ms);
        return (int)before != (int)l->limit;
    }
    double mean = l->rtt_sum_ms / l->samples;
    l->last_rtt_ms = mean;
    if (!l->have_baseline) {
        l->have_baseline = true;
        l->baseline_ms = mean;
    }
    /* Little's law, as Netflix's Vegas limit reads it: of the calls under way, this many were
     * waiting inside Jube rather than being served. A few are noise; more mean the extra calls
     * only queue up. */
    double excess = mean - l->baseline_ms;
    double queued = excess > 0 ? l->most_in_flight * excess / mean : 0;
    double too_many = l->limit * QUEUE_SHARE > QUEUE_MIN ? l->limit * QUEUE_SHARE : QUEUE_MIN;
    double slack = noise_ms(l);
    bool queueing = excess > slack && queued > too_many;
    bool room = excess <= slack || queued < too_many / 2;
    if (mean < l->baseline_ms) {
        l->baseline_ms = mean;
    } else if (!queueing) {
        /* Unloaded Jube may get slower (a heavier model): a good window moves it up a little. */
        l->baseline_ms += BASELINE_RISE * (mean - l->baseline_ms);
    } else if ((int)l->limit <= l->floor) {
        /* As few calls as allowed and still this slow: that is Jube's unloaded latency now. */
        l->baseline_ms = mean;
        queueing = false;
    }
    bool undo = l->last_good > 0 && (int)l->limit > l->last_good;
    bool doubted = l->doubted;
    l->doubted = false;
    if (queueing && (!undo || l->slow_start) && !doubted && mean < 2 * l->baseline_ms) {
        /* One window queued, by less than the round trip again, at a level not just stepped to
         * by one (or in slow start, whose first steps come with the start's own burst): the
         * machine's own bursts (the broker, the service and Jube may share a few cores) look the
         * same as Jube slowing for a window, and the calls a step just undone slowed may still
         * weigh on Jube. The next window says which. A knee a doubling passed shows at once. */
        l->doubted = true;
    } else if (queueing) {
        cut(l, JA_LIMIT_CUT_LATENCY, latency_cut_to(l, mean), now_ms);
        l->stepped = undo;
    } else if (room && l->most_in_flight >= (int)l->limit) {
        l->last_good = (int)l->limit;
        l->good_here++;
        grow(l, now_ms);
        if ((int)l->limit != (int)before) {
            l->last_change_ms = now_ms;
            l->good_here = 0;
            l->stepped = true;
        }
    }
    start_window(l, now_ms);
    return (int)before != (int)l->limit;
}

void ja_concurrency_limit_outage(ja_concurrency_limit *l)
{
    if (!l->adaptive)
        return;
    if (!l->in_outage && (int)l->limit > l->recovery_target)
        l->recovery_target = (int)l->limit;
    l->in_outage = true;
    l->slow_start = true;
}

void ja_concurrency_limit_recovered(ja_concurrency_limit *l)
{
    l->in_outage = false;
}

int ja_concurrency_limit_current(const ja_concurrency_limit *l)
{
    return (int)l->limit;
}

int ja_concurrency_limit_share(int limit, int index, int threads)
{
    if (threads < 1)
        return limit;
    return limit / threads + (index < limit % threads ? 1 : 0);
}
