/* test_lag_verdict.c - each verdict from the sample history that should
 * produce it, window eviction, and the edge cases (no samples, an empty
 * partition, zero lag, unknown committed offsets, bad samples). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/lag_verdict.h>

#define C M3B_LAG_SAMPLE_COMMITTED
#define O M3B_LAG_SAMPLE_OWNED
#define END                                                                    \
  { -1, 0, 0, 0 }

struct verdict_case {
  const char *name;
  int64_t window_ms;
  size_t min_samples;
  struct m3b_lag_sample samples[16]; /* ends at time_ms == -1 */
  int64_t now_ms;
  m3b_verdict_t want;
  int want_complete;
};

/* Window 10 s, 3 samples, unless a case says otherwise. Samples are
 * {time_ms, committed, high_watermark, flags}. */
static const struct verdict_case cases[] = {
    {"no samples", 10000, 3, {END}, 5000, M3B_VERDICT_OK, 0},
    {"empty partition (hwm 0, nothing committed), nobody owns it",
     10000,
     3,
     {{0, -1, 0, 0}, {5000, -1, 0, 0}, {10000, -1, 0, 0}, END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"caught up: lag 0 throughout",
     10000,
     3,
     {{0, 50, 50, O}, {5000, 60, 60, O}, {10000, 70, 70, O}, END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"lag 0 once in the window outweighs a stuck offset",
     10000,
     3,
     {{0, 50, 50, 0}, {5000, 50, 60, 0}, {10000, 50, 70, 0}, END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"committed beyond the watermark counts as lag 0",
     10000,
     3,
     {{0, 80, 70, 0}, {5000, 80, 75, 0}, {10000, 80, 78, 0}, END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"catching up: lag goes down",
     10000,
     3,
     {{0, 10, 100, O}, {5000, 40, 100, O}, {10000, 70, 100, O}, END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"WARN: offsets move but lag keeps growing",
     10000,
     3,
     {{0, 10, 100, O}, {5000, 20, 120, O}, {10000, 30, 140, O}, END},
     10000,
     M3B_VERDICT_WARN,
     1},
    {"steady lag while moving is keeping pace: OK",
     10000,
     3,
     {{0, 10, 30, O}, {5000, 20, 40, O}, {10000, 30, 50, O}, END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"WARN across commit steps (lag flat between commits)",
     10000,
     3,
     {{0, 10, 100, O},
      {2000, 10, 110, O},
      {4000, 20, 120, O},
      {6000, 20, 130, O},
      {8000, 20, 140, O},
      {10000, 30, 150, O},
      END},
     10000,
     M3B_VERDICT_WARN,
     1},
    {"a saw-tooth at a steady level is OK",
     10000,
     3,
     {{0, 50, 100, O},
      {2000, 50, 130, O},
      {4000, 80, 130, O},
      {6000, 80, 160, O},
      {8000, 110, 160, O},
      {10000, 110, 190, O},
      END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"a saw-tooth whose floor and ceiling rise is WARN",
     10000,
     3,
     {{0, 50, 100, O},
      {2000, 50, 150, O},
      {4000, 90, 150, O},
      {6000, 90, 200, O},
      {8000, 130, 200, O},
      {10000, 130, 250, O},
      END},
     10000,
     M3B_VERDICT_WARN,
     1},
    {"a floor rising under a steady ceiling is OK",
     10000,
     3,
     {{0, 50, 100, O},
      {2000, 50, 150, O},
      {4000, 90, 150, O},
      {6000, 90, 190, O},
      {8000, 120, 190, O},
      {10000, 120, 210, O},
      END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"a staircase (bursts of records, no commit between) is WARN",
     10000,
     3,
     {{0, 50, 100, O},
      {2000, 51, 100, O},
      {4000, 52, 140, O},
      {6000, 53, 140, O},
      {8000, 54, 180, O},
      {10000, 55, 180, O},
      END},
     10000,
     M3B_VERDICT_WARN,
     1},
    {"growth larger than the saw-tooth is WARN",
     10000,
     3,
     {{0, 50, 100, O},
      {2000, 50, 150, O},
      {4000, 60, 150, O},
      {6000, 60, 250, O},
      {8000, 70, 250, O},
      {10000, 70, 300, O},
      END},
     10000,
     M3B_VERDICT_WARN,
     1},
    {"lag that came down in the newer half is OK",
     10000,
     3,
     {{0, 10, 100, O},
      {3000, 20, 120, O},
      {6000, 60, 125, O},
      {10000, 70, 150, O},
      END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"STALL: an owner, offset not moving, lag > 0",
     10000,
     3,
     {{0, 40, 100, O}, {5000, 40, 100, O}, {10000, 40, 110, O}, END},
     10000,
     M3B_VERDICT_STALL,
     1},
    {"STALL: commits of an unchanged offset, no owner known",
     10000,
     3,
     {{0, 40, 100, 0}, {5000, 40, 100, C}, {10000, 40, 100, 0}, END},
     10000,
     M3B_VERDICT_STALL,
     1},
    {"STOP: no owner, no commits, offset not moving, lag > 0",
     10000,
     3,
     {{0, 40, 100, 0}, {5000, 40, 100, 0}, {10000, 40, 120, 0}, END},
     10000,
     M3B_VERDICT_STOP,
     1},
    {"STOP: data but never committed and nobody consumes it",
     10000,
     3,
     {{0, -1, 5, 0}, {5000, -1, 5, 0}, {10000, -1, 5, 0}, END},
     10000,
     M3B_VERDICT_STOP,
     1},
    {"REWIND: committed went back and is still below",
     10000,
     3,
     {{0, 90, 100, O}, {5000, 20, 100, O}, {10000, 50, 100, O}, END},
     10000,
     M3B_VERDICT_REWIND,
     1},
    {"REWIND needs only two samples (no complete window)",
     10000,
     3,
     {{0, 90, 100, 0}, {1000, 0, 100, 0}, END},
     1000,
     M3B_VERDICT_REWIND,
     0},
    {"REWIND wins over lag 0 elsewhere in the window",
     10000,
     3,
     {{0, 100, 100, O}, {5000, 30, 100, O}, {10000, 30, 100, O}, END},
     10000,
     M3B_VERDICT_REWIND,
     1},
    {"a rewind made up for is no longer REWIND",
     10000,
     3,
     {{0, 90, 100, O},
      {3000, 20, 100, O},
      {6000, 95, 100, O},
      {10000, 100, 100, O},
      END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"offsets deleted (-1) are not a rewind",
     10000,
     3,
     {{0, 90, 100, O}, {5000, -1, 100, O}, {10000, 90, 100, O}, END},
     10000,
     M3B_VERDICT_OK,
     1},
    {"too few samples: OK, incomplete",
     10000,
     3,
     {{0, 40, 100, 0}, {9000, 40, 100, 0}, END},
     9000,
     M3B_VERDICT_OK,
     0},
    {"samples spanning less than half the window: OK, incomplete",
     10000,
     3,
     {{0, 40, 100, 0}, {2000, 40, 100, 0}, {4000, 40, 100, 0}, END},
     4000,
     M3B_VERDICT_OK,
     0},
    {"eviction: the old lag-0 sample left the window, STOP remains",
     10000,
     3,
     {{0, 40, 40, 0},
      {4000, 40, 60, 0},
      {8000, 40, 60, 0},
      {12000, 40, 60, 0},
      END},
     12000,
     M3B_VERDICT_STOP,
     1},
    {"eviction by asking later: everything aged out is OK, incomplete",
     10000,
     3,
     {{0, 40, 100, 0}, {5000, 40, 100, 0}, {10000, 40, 100, 0}, END},
     30000,
     M3B_VERDICT_OK,
     0},
    {"eviction: a rewind that left the window no longer counts",
     10000,
     3,
     {{0, 90, 100, O},
      {1000, 20, 100, O},
      {6000, 30, 100, O},
      {9000, 40, 100, O},
      {12000, 50, 100, O},
      END},
     12000,
     M3B_VERDICT_OK,
     1},
    {"a watermark going down restarts the window (topic recreated)",
     10000,
     3,
     {{0, 90, 100, 0}, {5000, 90, 100, 0}, {10000, 3, 10, 0}, END},
     10000,
     M3B_VERDICT_OK,
     0},
    {"min_samples 2 with a short window",
     2000,
     2,
     {{0, 7, 9, 0}, {1000, 7, 9, 0}, END},
     1000,
     M3B_VERDICT_STOP,
     1},
};

static void test_cases(void **state) {
  size_t c;
  (void)state;
  for (c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
    const struct verdict_case *vc = &cases[c];
    char errstr[128];
    m3b_lag_window_t *window = m3b_lag_window_new(
        vc->window_ms, vc->min_samples, errstr, sizeof(errstr));
    size_t i;
    m3b_verdict_t got;
    assert_non_null(window);
    for (i = 0; vc->samples[i].time_ms >= 0; i++)
      assert_int_equal(m3b_lag_window_add(window, &vc->samples[i]), M3B_OK);
    got = m3b_lag_window_verdict(window, vc->now_ms);
    if (got != vc->want ||
        !m3b_lag_window_complete(window, vc->now_ms) != !vc->want_complete)
      fail_msg("case \"%s\": got %s (complete %d), want %s (complete %d)",
               vc->name, m3b_verdict_name(got),
               m3b_lag_window_complete(window, vc->now_ms),
               m3b_verdict_name(vc->want), vc->want_complete);
    m3b_lag_window_destroy(window);
  }
}

static void test_names_and_order(void **state) {
  (void)state;
  assert_string_equal(m3b_verdict_name(M3B_VERDICT_OK), "OK");
  assert_string_equal(m3b_verdict_name(M3B_VERDICT_WARN), "WARN");
  assert_string_equal(m3b_verdict_name(M3B_VERDICT_STALL), "STALL");
  assert_string_equal(m3b_verdict_name(M3B_VERDICT_STOP), "STOP");
  assert_string_equal(m3b_verdict_name(M3B_VERDICT_REWIND), "REWIND");
  assert_string_equal(m3b_verdict_name((m3b_verdict_t)42), "UNKNOWN");
  /* the worst of several is their maximum */
  assert_true(M3B_VERDICT_OK < M3B_VERDICT_WARN);
  assert_true(M3B_VERDICT_WARN < M3B_VERDICT_STALL);
  assert_true(M3B_VERDICT_STALL < M3B_VERDICT_STOP);
  assert_true(M3B_VERDICT_STOP < M3B_VERDICT_REWIND);
}

static void test_bad_arguments(void **state) {
  char errstr[128];
  (void)state;
  errstr[0] = 0;
  assert_null(m3b_lag_window_new(0, 3, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "> 0 ms"));
  assert_null(m3b_lag_window_new(1000, 1, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "between 2 and"));
  assert_null(m3b_lag_window_new(1000, M3B_LAG_WINDOW_MAX_SAMPLES + 1, errstr,
                                 sizeof(errstr)));
  m3b_lag_window_destroy(NULL);
}

static void test_bad_samples_leave_window_unchanged(void **state) {
  char errstr[128];
  m3b_lag_window_t *window =
      m3b_lag_window_new(10000, 3, errstr, sizeof(errstr));
  struct m3b_lag_sample sample = {5000, 10, 20, 0};
  (void)state;
  assert_non_null(window);
  assert_int_equal(m3b_lag_window_add(window, &sample), M3B_OK);
  sample.time_ms = 4999; /* time going back */
  assert_int_equal(m3b_lag_window_add(window, &sample), M3B_ERR_INVALID_ARG);
  sample.time_ms = 6000;
  sample.high_watermark = -1; /* unknown watermark */
  assert_int_equal(m3b_lag_window_add(window, &sample), M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_lag_window_count(window, 6000), 1);
  /* same time twice is fine */
  sample.time_ms = 5000;
  sample.high_watermark = 20;
  assert_int_equal(m3b_lag_window_add(window, &sample), M3B_OK);
  assert_int_equal(m3b_lag_window_count(window, 5000), 2);
  m3b_lag_window_reset(window);
  assert_int_equal(m3b_lag_window_count(window, 5000), 0);
  assert_int_equal(m3b_lag_window_verdict(window, 5000), M3B_VERDICT_OK);
  m3b_lag_window_destroy(window);
}

/* More samples than the ring holds: the oldest are dropped and the
 * verdict is taken from the newest ones. */
static void test_ring_overflow(void **state) {
  char errstr[128];
  m3b_lag_window_t *window =
      m3b_lag_window_new(300000, 3, errstr, sizeof(errstr));
  struct m3b_lag_sample sample = {0, 0, 0, 0};
  int64_t i;
  (void)state;
  assert_non_null(window);
  /* lag 0 in the first samples only: once they are pushed out of the ring,
   * the stuck offset with no owner is STOP */
  for (i = 0; i < 2 * M3B_LAG_WINDOW_MAX_SAMPLES; i++) {
    sample.time_ms = i * 1000;
    sample.committed = 5;
    sample.high_watermark = i < 10 ? 5 : 9;
    assert_int_equal(m3b_lag_window_add(window, &sample), M3B_OK);
  }
  assert_int_equal(m3b_lag_window_count(window, sample.time_ms),
                   M3B_LAG_WINDOW_MAX_SAMPLES);
  assert_int_equal(m3b_lag_window_verdict(window, sample.time_ms),
                   M3B_VERDICT_STOP);
  m3b_lag_window_destroy(window);
}

/* Adding evicts: samples older than window_ms before the newest are gone
 * even when the verdict is asked at an earlier time. */
static void test_add_evicts(void **state) {
  char errstr[128];
  m3b_lag_window_t *window =
      m3b_lag_window_new(1000, 2, errstr, sizeof(errstr));
  struct m3b_lag_sample sample = {0, 1, 2, 0};
  (void)state;
  assert_non_null(window);
  assert_int_equal(m3b_lag_window_add(window, &sample), M3B_OK);
  sample.time_ms = 500;
  assert_int_equal(m3b_lag_window_add(window, &sample), M3B_OK);
  sample.time_ms = 1200;
  assert_int_equal(m3b_lag_window_add(window, &sample), M3B_OK);
  /* 0 was dropped by the add at 1200 (older than 1200 - 1000) */
  assert_int_equal(m3b_lag_window_count(window, 1000), 2);
  m3b_lag_window_destroy(window);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_cases),
      cmocka_unit_test(test_names_and_order),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_bad_samples_leave_window_unchanged),
      cmocka_unit_test(test_ring_overflow),
      cmocka_unit_test(test_add_evicts),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
