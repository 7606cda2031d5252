/* test_lag_history.c - one point per interval bucket per partition, the
 * newest always the latest sample, the oldest dropped past the span, and
 * partitions forgotten on revoke. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include <m3b/lag_history.h>

static struct m3b_lag_point point(int64_t at_ms, int64_t lag) {
  struct m3b_lag_point p = {at_ms, lag, (double)lag / 10.0, 100, 100 + lag, -1};
  return p;
}

static void record(m3b_lag_history_t *history, int32_t partition, int64_t at_ms,
                   int64_t lag) {
  struct m3b_lag_point p = point(at_ms, lag);
  assert_int_equal(m3b_lag_history_record(history, partition, &p), M3B_OK);
}

static void test_capacity_is_span_over_interval(void **state) {
  m3b_lag_history_t *history;
  (void)state;
  history = m3b_lag_history_new(10000, 3600000);
  assert_int_equal(m3b_lag_history_capacity(history), 360);
  m3b_lag_history_destroy(history);
  history = m3b_lag_history_new(7000, 3600000); /* rounds up */
  assert_int_equal(m3b_lag_history_capacity(history), 515);
  m3b_lag_history_destroy(history);
  history = m3b_lag_history_new(1, 3600000); /* capped */
  assert_int_equal(m3b_lag_history_capacity(history),
                   M3B_LAG_HISTORY_MAX_POINTS);
  m3b_lag_history_destroy(history);
  assert_null(m3b_lag_history_new(0, 1000));
  assert_null(m3b_lag_history_new(1000, 999));
  m3b_lag_history_destroy(NULL);
}

/* Samples in one bucket replace each other; the next bucket adds a point. */
static void test_one_point_per_bucket(void **state) {
  m3b_lag_history_t *history = m3b_lag_history_new(1000, 10000);
  const struct m3b_lag_point *p;
  (void)state;
  record(history, 0, 5000, 1);
  record(history, 0, 5400, 2);
  record(history, 0, 5999, 3);
  assert_int_equal(m3b_lag_history_count(history, 0), 1);
  p = m3b_lag_history_at(history, 0, 0);
  assert_int_equal(p->at_ms, 5999);
  assert_int_equal(p->lag_messages, 3);
  assert_int_equal(p->high_watermark, 103);
  record(history, 0, 6000, 4);
  assert_int_equal(m3b_lag_history_count(history, 0), 2);
  assert_int_equal(m3b_lag_history_at(history, 0, 0)->lag_messages, 3);
  assert_int_equal(m3b_lag_history_at(history, 0, 1)->lag_messages, 4);
  /* a wall clock that stepped back replaces the newest, never inserts */
  record(history, 0, 2000, 5);
  assert_int_equal(m3b_lag_history_count(history, 0), 2);
  assert_int_equal(m3b_lag_history_at(history, 0, 1)->lag_messages, 5);
  assert_null(m3b_lag_history_at(history, 0, 2));
  m3b_lag_history_destroy(history);
}

/* A span of 5 intervals keeps the newest 5 points, oldest first. */
static void test_oldest_dropped_past_span(void **state) {
  m3b_lag_history_t *history = m3b_lag_history_new(1000, 5000);
  int64_t t;
  size_t i;
  (void)state;
  for (t = 0; t < 12; t++)
    record(history, 2, t * 1000 + 10, t);
  assert_int_equal(m3b_lag_history_count(history, 2), 5);
  for (i = 0; i < 5; i++)
    assert_int_equal(m3b_lag_history_at(history, 2, i)->lag_messages,
                     7 + (int64_t)i);
  m3b_lag_history_destroy(history);
}

static void test_partitions_and_forget(void **state) {
  m3b_lag_history_t *history = m3b_lag_history_new(1000, 60000);
  int32_t parts[4] = {-1, -1, -1, -1};
  struct m3b_lag_point p = point(1, 1);
  (void)state;
  assert_int_equal(m3b_lag_history_partitions(history, parts, 4), 0);
  record(history, 7, 1000, 1);
  record(history, 0, 1000, 1);
  record(history, M3B_LAG_HISTORY_MAX_PARTITIONS - 1, 1000, 1);
  assert_int_equal(m3b_lag_history_partitions(history, parts, 4), 3);
  assert_int_equal(parts[0], 0);
  assert_int_equal(parts[1], 7);
  assert_int_equal(parts[2], M3B_LAG_HISTORY_MAX_PARTITIONS - 1);
  /* a short out array still gets the total */
  assert_int_equal(m3b_lag_history_partitions(history, parts, 1), 3);
  m3b_lag_history_forget(history, 7);
  m3b_lag_history_forget(history, 9);  /* never recorded: no-op */
  m3b_lag_history_forget(history, -1); /* out of range: no-op */
  assert_int_equal(m3b_lag_history_count(history, 7), 0);
  assert_null(m3b_lag_history_at(history, 7, 0));
  assert_int_equal(m3b_lag_history_partitions(history, parts, 4), 2);
  assert_int_equal(parts[1], M3B_LAG_HISTORY_MAX_PARTITIONS - 1);
  /* out of range partitions are refused, not recorded */
  assert_int_equal(m3b_lag_history_record(history, -1, &p),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(
      m3b_lag_history_record(history, M3B_LAG_HISTORY_MAX_PARTITIONS, &p),
      M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_lag_history_count(history, -1), 0);
  m3b_lag_history_destroy(history);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_capacity_is_span_over_interval),
      cmocka_unit_test(test_one_point_per_bucket),
      cmocka_unit_test(test_oldest_dropped_past_span),
      cmocka_unit_test(test_partitions_and_forget),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
