/*
 * lag_verdict.h - a Burrow-style verdict on a consumer group's progress,
 * per partition, from samples of its committed offset and the partition's
 * high watermark taken over a sliding time window.
 *
 * Pure and thread-compatible: no Kafka, no clock, no I/O. The caller takes
 * samples (the listener at each lag refresh, `m3bridge-listener lag` at
 * each sampling interval), feeds them to one window per partition and asks
 * for a verdict at a time of its choosing (a monotonic clock in ms). One
 * window must not be used from two threads at once.
 *
 * The rules (docs/metrics.md, "Lag verdicts", is the user-facing copy):
 *
 *   lag of a sample = high_watermark - committed (committed < 0, none yet:
 *   high_watermark), never below 0. The samples considered at time now are
 *   those taken in [now - window_ms, now] ("the window").
 *
 *   0. REWIND  the committed offset went down between two samples of the
 *              window and has not since come back to where it was.
 *   1. (not enough evidence) fewer than min_samples samples, or they span
 *              less than half the window: OK.
 *   2. OK      the lag was 0 at some sample of the window.
 *   3. STALL   the committed offset did not move in the window, lag > 0
 *              throughout, and the partition was alive: some sample says a
 *              commit was acknowledged or a live group member owned it
 *              (librdkafka commits only offsets that changed, so a live
 *              consumer stuck on a record produces no commits at all).
 *   4. STOP    as STALL, but no sample shows a commit or an owner: nobody
 *              is consuming the partition.
 *   5. WARN    the committed offset moved, but both the lowest and the
 *              highest lag of the newer half of the samples' time span are
 *              above those of the older half (the lag's floor and ceiling
 *              rose: the consumer is falling behind).
 *   6. OK      otherwise.
 *
 * Rules are checked in this order and the first that matches decides.
 */
#ifndef M3B_LAG_VERDICT_H
#define M3B_LAG_VERDICT_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Ordered by severity: the worst of several verdicts is their maximum. The
 * numeric values are exported as the m3bridge_lag_verdict gauge and are
 * part of the metrics contract. */
typedef enum {
  M3B_VERDICT_OK = 0,
  M3B_VERDICT_WARN = 1,
  M3B_VERDICT_STALL = 2,
  M3B_VERDICT_STOP = 3,
  M3B_VERDICT_REWIND = 4
} m3b_verdict_t;

/* "OK", "WARN", "STALL", "STOP", "REWIND"; "UNKNOWN" for other values.
 * Never NULL (a static string). */
const char *m3b_verdict_name(m3b_verdict_t verdict);

/* Sample flags: what the sampler knew of the consumer at this sample. */
/* a commit for the partition was acknowledged since the previous sample
 * (also one of an unchanged offset) */
#define M3B_LAG_SAMPLE_COMMITTED 0x1u
/* a live member of the group was assigned the partition */
#define M3B_LAG_SAMPLE_OWNED 0x2u

struct m3b_lag_sample {
  int64_t time_ms;        /* when it was taken; monotonic, never decreasing */
  int64_t committed;      /* the group's committed offset, -1 when none */
  int64_t high_watermark; /* the partition's end offset, >= 0 */
  unsigned flags;         /* M3B_LAG_SAMPLE_* */
};

/* The most samples a window keeps: when more arrive within window_ms the
 * oldest are dropped (sample at most every window_ms / 256). */
#define M3B_LAG_WINDOW_MAX_SAMPLES 256

/* Defaults used by the listener and `m3bridge-listener lag`. */
#define M3B_LAG_WINDOW_DEFAULT_MIN_SAMPLES 3

typedef struct m3b_lag_window m3b_lag_window_t;

/* Creates an empty window of window_ms (> 0) that needs min_samples (2 ..
 * M3B_LAG_WINDOW_MAX_SAMPLES) samples before rules 3-5 may apply. Returns
 * NULL and fills errstr on a bad argument or out of memory. */
m3b_lag_window_t *m3b_lag_window_new(int64_t window_ms, size_t min_samples,
                                     char *errstr, size_t errstr_size);

/* Frees. NULL: no-op. */
void m3b_lag_window_destroy(m3b_lag_window_t *window);

/* Forgets every sample (after a partition is revoked and assigned again,
 * the old history says nothing about the new owner). */
void m3b_lag_window_reset(m3b_lag_window_t *window);

/* Adds a sample (copied) and drops samples that fell out of the window
 * relative to it. M3B_ERR_INVALID_ARG, and the window is unchanged, when
 * the sample is older than the newest one or its high watermark is < 0.
 * A high watermark below the newest sample's means the partition was
 * deleted and created again: the window restarts from this sample. */
m3b_err_t m3b_lag_window_add(m3b_lag_window_t *window,
                             const struct m3b_lag_sample *sample);

/* The verdict at now_ms by the rules at the top of this file. An empty
 * window is OK. */
m3b_verdict_t m3b_lag_window_verdict(const m3b_lag_window_t *window,
                                     int64_t now_ms);

/* Non-zero when the window at now_ms holds enough evidence for every rule
 * (min_samples samples spanning at least half the window). A verdict of
 * OK from an incomplete window means "nothing seen yet", not "healthy". */
int m3b_lag_window_complete(const m3b_lag_window_t *window, int64_t now_ms);

/* Samples of the window at now_ms. */
size_t m3b_lag_window_count(const m3b_lag_window_t *window, int64_t now_ms);

#ifdef __cplusplus
}
#endif

#endif
