/*
 * lag_verdict.c - the per-partition lag verdict (<m3b/lag_verdict.h>).
 *
 * The window is a fixed ring of samples, oldest first. Samples that fall
 * out of the window relative to the newest one are dropped on add; the
 * verdict looks only at the samples inside [now - window_ms, now], so a
 * caller that asks later than its last sample sees an emptier window.
 *
 * The rules follow Burrow's consumer evaluation (zero lag anywhere in the
 * window means OK; offsets going back, not moving, or moving without the
 * lag ever going down are the bad cases), adapted to sampling instead of
 * to commit events: librdkafka commits only changed offsets, so "no
 * commits" cannot tell a stuck consumer from a dead one, and the sampler's
 * OWNED flag (a live member holds the partition) draws that line.
 */
#include <m3b/lag_verdict.h>

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

struct m3b_lag_window {
  int64_t window_ms;
  size_t min_samples;
  size_t head;  /* index of the oldest sample */
  size_t count; /* samples held */
  struct m3b_lag_sample samples[M3B_LAG_WINDOW_MAX_SAMPLES];
};

const char *m3b_verdict_name(m3b_verdict_t verdict) {
  switch (verdict) {
  case M3B_VERDICT_OK: return "OK";
  case M3B_VERDICT_WARN: return "WARN";
  case M3B_VERDICT_STALL: return "STALL";
  case M3B_VERDICT_STOP: return "STOP";
  case M3B_VERDICT_REWIND: return "REWIND";
  }
  return "UNKNOWN";
}

m3b_lag_window_t *m3b_lag_window_new(int64_t window_ms, size_t min_samples,
                                     char *errstr, size_t errstr_size) {
  m3b_lag_window_t *window;

  if (window_ms <= 0) {
    snprintf(errstr, errstr_size, "lag window must be > 0 ms (got %lld)",
             (long long)window_ms);
    return NULL;
  }
  if (min_samples < 2 || min_samples > M3B_LAG_WINDOW_MAX_SAMPLES) {
    snprintf(errstr, errstr_size,
             "lag window needs between 2 and %d samples (got %zu)",
             M3B_LAG_WINDOW_MAX_SAMPLES, min_samples);
    return NULL;
  }
  window = calloc(1, sizeof(*window));
  if (!window) {
    snprintf(errstr, errstr_size, "out of memory");
    return NULL;
  }
  window->window_ms = window_ms;
  window->min_samples = min_samples;
  return window;
}

void m3b_lag_window_destroy(m3b_lag_window_t *window) {
  free(window);
}

void m3b_lag_window_reset(m3b_lag_window_t *window) {
  assert(window);
  window->head = 0;
  window->count = 0;
}

/* The i-th sample held, oldest first. */
static const struct m3b_lag_sample *at(const m3b_lag_window_t *window,
                                       size_t i) {
  return &window->samples[(window->head + i) % M3B_LAG_WINDOW_MAX_SAMPLES];
}

static void drop_oldest(m3b_lag_window_t *window) {
  window->head = (window->head + 1) % M3B_LAG_WINDOW_MAX_SAMPLES;
  window->count--;
}

m3b_err_t m3b_lag_window_add(m3b_lag_window_t *window,
                             const struct m3b_lag_sample *sample) {
  const struct m3b_lag_sample *newest;

  assert(window && sample);
  if (sample->high_watermark < 0)
    return M3B_ERR_INVALID_ARG;
  if (window->count > 0) {
    newest = at(window, window->count - 1);
    if (sample->time_ms < newest->time_ms)
      return M3B_ERR_INVALID_ARG;
    if (sample->high_watermark < newest->high_watermark)
      m3b_lag_window_reset(window);
  }
  if (window->count == M3B_LAG_WINDOW_MAX_SAMPLES)
    drop_oldest(window);
  window->samples[(window->head + window->count) % M3B_LAG_WINDOW_MAX_SAMPLES] =
      *sample;
  window->count++;
  while (window->count > 1 &&
         at(window, 0)->time_ms < sample->time_ms - window->window_ms)
    drop_oldest(window);
  return M3B_OK;
}

static int64_t sample_lag(const struct m3b_lag_sample *sample) {
  int64_t lag = sample->committed < 0
                    ? sample->high_watermark
                    : sample->high_watermark - sample->committed;
  return lag > 0 ? lag : 0;
}

/* Index of the first sample inside the window at now_ms. */
static size_t first_in_window(const m3b_lag_window_t *window, int64_t now_ms) {
  size_t i = 0;
  while (i < window->count &&
         at(window, i)->time_ms < now_ms - window->window_ms)
    i++;
  return i;
}

size_t m3b_lag_window_count(const m3b_lag_window_t *window, int64_t now_ms) {
  assert(window);
  return window->count - first_in_window(window, now_ms);
}

int m3b_lag_window_complete(const m3b_lag_window_t *window, int64_t now_ms) {
  size_t first;
  int64_t span;

  assert(window);
  first = first_in_window(window, now_ms);
  if (window->count - first < window->min_samples)
    return 0;
  span = at(window, window->count - 1)->time_ms - at(window, first)->time_ms;
  return span >= window->window_ms / 2;
}

/* Rule 0: a committed offset below one seen earlier in the window that the
 * newest sample has not made up for. Unknown offsets (-1) are skipped: a
 * group whose offsets were deleted has no position to compare. */
static int rewound(const m3b_lag_window_t *window, size_t first) {
  int64_t highest = -1;
  int64_t before_rewind = -1;
  int64_t newest = -1;
  size_t i;

  for (i = first; i < window->count; i++) {
    int64_t committed = at(window, i)->committed;
    if (committed < 0)
      continue;
    if (committed < highest && highest > before_rewind)
      before_rewind = highest;
    if (committed > highest)
      highest = committed;
    newest = committed;
  }
  return before_rewind >= 0 && newest < before_rewind;
}

/* Rule 5: the lag's floor and ceiling both rose, from the older half of
 * the samples' time span to the newer half. Lag saw-tooths (it jumps with
 * each transaction the producer commits and drops with each commit of the
 * consumer, every auto.commit.interval.ms), so comparing neighbouring
 * samples, as Burrow does with its commit-by-commit history, calls a
 * consumer healthy whenever one sample falls after a commit; comparing the
 * halves' lowest and highest values follows the trend instead, and a
 * steady saw-tooth rises in neither. */
static int growing(const m3b_lag_window_t *window, size_t first) {
  int64_t t_first = at(window, first)->time_ms;
  int64_t middle =
      t_first + (at(window, window->count - 1)->time_ms - t_first) / 2;
  int64_t older_min = -1, older_max = -1, newer_min = -1, newer_max = -1;
  size_t i;

  for (i = first; i < window->count; i++) {
    const struct m3b_lag_sample *sample = at(window, i);
    int64_t lag = sample_lag(sample);
    int64_t *lo = sample->time_ms < middle ? &older_min : &newer_min;
    int64_t *hi = sample->time_ms < middle ? &older_max : &newer_max;
    if (*lo < 0 || lag < *lo)
      *lo = lag;
    if (lag > *hi)
      *hi = lag;
  }
  return older_min >= 0 && newer_min > older_min && newer_max > older_max;
}

m3b_verdict_t m3b_lag_window_verdict(const m3b_lag_window_t *window,
                                     int64_t now_ms) {
  size_t first;
  size_t i;
  int64_t committed;
  unsigned flags = 0;
  int moved = 0;

  assert(window);
  first = first_in_window(window, now_ms);
  if (window->count - first < 2)
    return M3B_VERDICT_OK;
  if (rewound(window, first))
    return M3B_VERDICT_REWIND;
  if (!m3b_lag_window_complete(window, now_ms))
    return M3B_VERDICT_OK;

  committed = at(window, first)->committed;
  for (i = first; i < window->count; i++) {
    const struct m3b_lag_sample *sample = at(window, i);
    if (sample_lag(sample) == 0)
      return M3B_VERDICT_OK;
    if (sample->committed != committed)
      moved = 1;
    flags |= sample->flags;
  }
  if (!moved)
    return (flags & (M3B_LAG_SAMPLE_COMMITTED | M3B_LAG_SAMPLE_OWNED))
               ? M3B_VERDICT_STALL
               : M3B_VERDICT_STOP;

  return growing(window, first) ? M3B_VERDICT_WARN : M3B_VERDICT_OK;
}
