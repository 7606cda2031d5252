/*
 * lag_history.c - per-partition lag samples of <m3b/lag_history.h>: one
 * m3b_ring of m3b_lag_point per partition, taken on the first sample.
 */
#include <m3b/lag_history.h>

#include <assert.h>
#include <stdlib.h>

#include <m3b/ring.h>

struct m3b_lag_history {
  int64_t interval_ms;
  size_t capacity;
  m3b_ring_t *rings[M3B_LAG_HISTORY_MAX_PARTITIONS];
};

m3b_lag_history_t *m3b_lag_history_new(int64_t interval_ms, int64_t span_ms) {
  m3b_lag_history_t *history;
  int64_t points;

  if (interval_ms < 1 || span_ms < interval_ms)
    return NULL;
  points = span_ms / interval_ms + (span_ms % interval_ms ? 1 : 0);
  if (points > M3B_LAG_HISTORY_MAX_POINTS)
    points = M3B_LAG_HISTORY_MAX_POINTS;
  history = calloc(1, sizeof(*history));
  if (!history)
    return NULL;
  history->interval_ms = interval_ms;
  history->capacity = (size_t)points;
  return history;
}

void m3b_lag_history_destroy(m3b_lag_history_t *history) {
  size_t i;
  if (!history)
    return;
  for (i = 0; i < M3B_LAG_HISTORY_MAX_PARTITIONS; i++)
    m3b_ring_destroy(history->rings[i]);
  free(history);
}

size_t m3b_lag_history_capacity(const m3b_lag_history_t *history) {
  assert(history);
  return history->capacity;
}

static int in_range(int32_t partition) {
  return partition >= 0 && partition < M3B_LAG_HISTORY_MAX_PARTITIONS;
}

/* Floor division, so that negative times (never expected) still bucket
 * consistently. */
static int64_t bucket(const m3b_lag_history_t *history, int64_t at_ms) {
  int64_t q = at_ms / history->interval_ms;
  return at_ms % history->interval_ms < 0 ? q - 1 : q;
}

m3b_err_t m3b_lag_history_record(m3b_lag_history_t *history, int32_t partition,
                                 const struct m3b_lag_point *point) {
  m3b_ring_t *ring;
  struct m3b_lag_point *newest;

  assert(history && point);
  if (!in_range(partition))
    return M3B_ERR_INVALID_ARG;
  ring = history->rings[partition];
  if (!ring) {
    ring = m3b_ring_new(sizeof(struct m3b_lag_point), history->capacity);
    if (!ring)
      return M3B_ERR_NOMEM;
    history->rings[partition] = ring;
  }
  newest = m3b_ring_newest(ring);
  if (newest && bucket(history, point->at_ms) <= bucket(history, newest->at_ms))
    *newest = *point;
  else
    m3b_ring_push(ring, point);
  return M3B_OK;
}

void m3b_lag_history_forget(m3b_lag_history_t *history, int32_t partition) {
  assert(history);
  if (!in_range(partition))
    return;
  m3b_ring_destroy(history->rings[partition]);
  history->rings[partition] = NULL;
}

size_t m3b_lag_history_partitions(const m3b_lag_history_t *history,
                                  int32_t *out, size_t max) {
  size_t n = 0;
  int32_t p;

  assert(history && (out || max == 0));
  for (p = 0; p < M3B_LAG_HISTORY_MAX_PARTITIONS; p++) {
    if (!history->rings[p] || m3b_ring_count(history->rings[p]) == 0)
      continue;
    if (n < max)
      out[n] = p;
    n++;
  }
  return n;
}

size_t m3b_lag_history_count(const m3b_lag_history_t *history,
                             int32_t partition) {
  assert(history);
  if (!in_range(partition) || !history->rings[partition])
    return 0;
  return m3b_ring_count(history->rings[partition]);
}

const struct m3b_lag_point *m3b_lag_history_at(const m3b_lag_history_t *history,
                                               int32_t partition,
                                               size_t index) {
  assert(history);
  if (!in_range(partition) || !history->rings[partition])
    return NULL;
  return m3b_ring_at(history->rings[partition], index);
}
