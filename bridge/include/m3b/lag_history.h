/*
 * lag_history.h - the last hour of lag samples per partition, for /ui.
 *
 * The listener records each partition's lag whenever it refreshes its lag
 * metrics (every heartbeat and after a rebalance). The history keeps at
 * most one point per sampling interval: time is cut into buckets of
 * interval_ms, and a sample that falls into the bucket of the partition's
 * newest point replaces it. So the newest point is always the value last
 * exported on /metrics, and a partition holds at most span_ms /
 * interval_ms points (a ring per partition: the oldest point is dropped),
 * whatever the heartbeat rate.
 *
 * Thread-compatible: no lock inside; the owner (m3b/ui.h) serialises.
 */
#ifndef M3B_LAG_HISTORY_H
#define M3B_LAG_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Partitions 0 .. M3B_LAG_HISTORY_MAX_PARTITIONS-1 may be recorded (the
 * listener's own limit), each with at most M3B_LAG_HISTORY_MAX_POINTS. */
#define M3B_LAG_HISTORY_MAX_PARTITIONS 1024
#define M3B_LAG_HISTORY_MAX_POINTS 3600

/* One sample of one partition. */
struct m3b_lag_point {
  int64_t at_ms;            /* wall clock (ms since the epoch) */
  int64_t lag_messages;     /* high watermark - committed offset, >= 0 */
  double lag_seconds;       /* now - timestamp of the oldest unfinished */
  int64_t committed_offset; /* -1: nothing committed yet */
  int64_t high_watermark;   /* -1: unknown */
  int verdict;              /* m3b_verdict_t, or -1 when not evaluated */
};

typedef struct m3b_lag_history m3b_lag_history_t;

/* A history with one point per interval_ms (>= 1) covering span_ms
 * (>= interval_ms): ceil(span_ms / interval_ms) points per partition, at
 * most M3B_LAG_HISTORY_MAX_POINTS. NULL on bad arguments or OOM. Memory
 * for a partition is taken on its first sample. */
m3b_lag_history_t *m3b_lag_history_new(int64_t interval_ms, int64_t span_ms);

/* Frees; NULL is a no-op. */
void m3b_lag_history_destroy(m3b_lag_history_t *history);

/* Points kept per partition. */
size_t m3b_lag_history_capacity(const m3b_lag_history_t *history);

/* Records a sample (copied) of partition. A sample in the same interval
 * bucket as the partition's newest point, or older than it (a wall clock
 * that stepped back), replaces that point. M3B_ERR_INVALID_ARG for a
 * partition out of range, M3B_ERR_NOMEM. */
m3b_err_t m3b_lag_history_record(m3b_lag_history_t *history, int32_t partition,
                                 const struct m3b_lag_point *point);

/* Drops a partition's points (revoked: its new owner shows it now). */
void m3b_lag_history_forget(m3b_lag_history_t *history, int32_t partition);

/* Writes the partitions that have points, ascending, into out (at most
 * max of them) and returns how many there are in all. */
size_t m3b_lag_history_partitions(const m3b_lag_history_t *history,
                                  int32_t *out, size_t max);

/* Points of a partition (0 when none or out of range), and the point at
 * index (0 = oldest), NULL past the end. Returned-borrowed: valid until
 * the next record, forget or destroy. */
size_t m3b_lag_history_count(const m3b_lag_history_t *history,
                             int32_t partition);
const struct m3b_lag_point *m3b_lag_history_at(const m3b_lag_history_t *history,
                                               int32_t partition, size_t index);

#ifdef __cplusplus
}
#endif

#endif
