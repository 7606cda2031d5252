/* test_metrics.c - the Prometheus registry: declarations, updates, label
 * checks and escaping, the exact text exposition, the series limit and its
 * dropped counter, removal by label substring, and concurrent updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include <m3b/metrics.h>

#define RENDER_MAX (1u << 20)

/* Renders into a fresh string the caller frees. */
static char *render(const m3b_metrics_t *metrics) {
  struct m3b_buf buf;
  uint8_t *data = NULL;
  size_t len = 0;
  m3b_buf_init(&buf, RENDER_MAX);
  assert_int_equal(m3b_metrics_render(metrics, &buf), M3B_OK);
  assert_int_equal(m3b_buf_detach(&buf, &data, &len), M3B_OK);
  return (char *)data;
}

static double value_of(m3b_metrics_t *metrics, const char *name,
                       const char *labels) {
  double value = -1;
  assert_int_equal(m3b_metrics_value(metrics, name, labels, &value), M3B_OK);
  return value;
}

static void test_declare_and_update(void **state) {
  m3b_metrics_t *metrics = m3b_metrics_new();
  (void)state;
  assert_non_null(metrics);
  assert_int_equal(m3b_metrics_declare(metrics, "events_total",
                                       M3B_METRIC_COUNTER, "Events.", NULL, 0),
                   M3B_OK);
  /* re-declaring is a no-op; another type is refused */
  assert_int_equal(m3b_metrics_declare(metrics, "events_total",
                                       M3B_METRIC_COUNTER, "Other.", NULL, 0),
                   M3B_OK);
  assert_int_equal(m3b_metrics_declare(metrics, "events_total",
                                       M3B_METRIC_GAUGE, "Events.", NULL, 0),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(
      m3b_metrics_declare(metrics, "lag", M3B_METRIC_GAUGE, "Lag.", NULL, 0),
      M3B_OK);
  assert_int_equal(m3b_metrics_declare(metrics, "latency_seconds",
                                       M3B_METRIC_HISTOGRAM, "Latency.", NULL,
                                       0),
                   M3B_OK);

  assert_int_equal(
      m3b_metrics_counter_add(metrics, "events_total", "phase=\"A\"", 2),
      M3B_OK);
  assert_int_equal(
      m3b_metrics_counter_add(metrics, "events_total", "phase=\"A\"", 1.5),
      M3B_OK);
  assert_int_equal(m3b_metrics_counter_add(metrics, "events_total", NULL, 1),
                   M3B_OK);
  assert_true(value_of(metrics, "events_total", "phase=\"A\"") == 3.5);
  assert_true(value_of(metrics, "events_total", "") == 1);
  /* counters only go up */
  assert_int_equal(m3b_metrics_counter_add(metrics, "events_total", NULL, -1),
                   M3B_ERR_INVALID_ARG);

  assert_int_equal(m3b_metrics_gauge_set(metrics, "lag", NULL, 7), M3B_OK);
  assert_int_equal(m3b_metrics_gauge_add(metrics, "lag", NULL, -2), M3B_OK);
  assert_true(value_of(metrics, "lag", NULL) == 5);

  assert_int_equal(
      m3b_metrics_histogram_observe(metrics, "latency_seconds", NULL, 0.3),
      M3B_OK);
  assert_true(value_of(metrics, "latency_seconds", NULL) == 1);

  /* wrong type, unknown name, unknown series */
  assert_int_equal(m3b_metrics_gauge_set(metrics, "events_total", NULL, 1),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_metrics_counter_add(metrics, "nope_total", NULL, 1),
                   M3B_ERR_NOT_FOUND);
  {
    double value;
    assert_int_equal(
        m3b_metrics_value(metrics, "lag", "partition=\"9\"", &value),
        M3B_ERR_NOT_FOUND);
  }
  m3b_metrics_destroy(metrics);
  m3b_metrics_destroy(NULL);
}

static void test_invalid_names_labels_buckets(void **state) {
  static const char *const bad_labels[] = {
      "phase",          "phase=A",   "phase=\"A",    "phase=\"A\",", "1a=\"x\"",
      "a=\"x\"b=\"y\"", "__x=\"1\"", "a=\"bad\\q\"", "a=\"line\n\""};
  static const double descending[] = {1, 0.5};
  static const double with_inf[] = {1, 2, INFINITY};
  m3b_metrics_t *metrics = m3b_metrics_new();
  size_t i;
  (void)state;

  assert_int_equal(
      m3b_metrics_declare(metrics, "bad-name", M3B_METRIC_GAUGE, "x", NULL, 0),
      M3B_ERR_INVALID_ARG);
  assert_int_equal(
      m3b_metrics_declare(metrics, "", M3B_METRIC_GAUGE, "x", NULL, 0),
      M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_metrics_declare(metrics, "h", M3B_METRIC_HISTOGRAM, "x",
                                       descending, 2),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(
      m3b_metrics_declare(metrics, "h", M3B_METRIC_HISTOGRAM, "x", with_inf, 3),
      M3B_OK);
  assert_int_equal(
      m3b_metrics_declare(metrics, "g", M3B_METRIC_GAUGE, "x", NULL, 0),
      M3B_OK);
  for (i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++)
    assert_int_equal(m3b_metrics_gauge_set(metrics, "g", bad_labels[i], 1),
                     M3B_ERR_INVALID_ARG);
  assert_int_equal(
      m3b_metrics_gauge_set(metrics, "g", "a=\"q\\\"x\\\\y\\n\",b_2=\"\"", 1),
      M3B_OK);
  /* "le" belongs to the buckets */
  assert_int_equal(m3b_metrics_histogram_observe(metrics, "h", "le=\"1\"", 1),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_metrics_histogram_observe(metrics, "h", NULL, NAN),
                   M3B_ERR_INVALID_ARG);
  m3b_metrics_destroy(metrics);
}

static void test_escape(void **state) {
  char out[32];
  char tiny[4];
  (void)state;
  assert_int_equal(m3b_metrics_escape("a\\b\"c\nd", out, sizeof(out)), M3B_OK);
  assert_string_equal(out, "a\\\\b\\\"c\\nd");
  assert_int_equal(m3b_metrics_escape("", out, sizeof(out)), M3B_OK);
  assert_string_equal(out, "");
  assert_int_equal(m3b_metrics_escape("abc", tiny, sizeof(tiny)), M3B_OK);
  assert_string_equal(tiny, "abc");
  assert_int_equal(m3b_metrics_escape("abcd", tiny, sizeof(tiny)),
                   M3B_ERR_LIMIT);
  assert_string_equal(tiny, "");
  /* an escape sequence is never cut in half */
  assert_int_equal(m3b_metrics_escape("ab\"", tiny, sizeof(tiny)),
                   M3B_ERR_LIMIT);
  assert_int_equal(m3b_metrics_escape("", tiny, 0), M3B_ERR_LIMIT);
}

static void test_render_exact(void **state) {
  static const double buckets[] = {0.1, 1};
  static const char expected[] =
      "# HELP app_events_total Events by phase.\n"
      "# TYPE app_events_total counter\n"
      "app_events_total{phase=\"APPLIED\"} 3\n"
      "app_events_total{phase=\"REJECTED\",reason=\"a \\\"b\\\"\"} 1\n"
      "# HELP app_lag Lag with a \\\\ and a\\nnewline.\n"
      "# TYPE app_lag gauge\n"
      "app_lag 0.25\n"
      "# HELP app_latency_seconds Latency.\n"
      "# TYPE app_latency_seconds histogram\n"
      "app_latency_seconds_bucket{le=\"0.1\"} 1\n"
      "app_latency_seconds_bucket{le=\"1\"} 1\n"
      "app_latency_seconds_bucket{le=\"+Inf\"} 1\n"
      "app_latency_seconds_sum 0.01\n"
      "app_latency_seconds_count 1\n"
      "app_latency_seconds_bucket{op=\"apply\",le=\"0.1\"} 1\n"
      "app_latency_seconds_bucket{op=\"apply\",le=\"1\"} 2\n"
      "app_latency_seconds_bucket{op=\"apply\",le=\"+Inf\"} 3\n"
      "app_latency_seconds_sum{op=\"apply\"} 4.5625\n"
      "app_latency_seconds_count{op=\"apply\"} 3\n"
      "# HELP m3bridge_metrics_series_dropped_total Series refused because "
      "the registry reached its series limit.\n"
      "# TYPE m3bridge_metrics_series_dropped_total counter\n"
      "m3bridge_metrics_series_dropped_total 0\n";
  static const double observations[] = {0.0625, 0.5, 4};
  m3b_metrics_t *metrics = m3b_metrics_new();
  char reason[64];
  char labels[128];
  char *text;
  size_t i;
  (void)state;

  /* declared in another order than rendered; an empty family is left out */
  assert_int_equal(m3b_metrics_declare(metrics, "app_latency_seconds",
                                       M3B_METRIC_HISTOGRAM, "Latency.",
                                       buckets, 2),
                   M3B_OK);
  assert_int_equal(m3b_metrics_declare(metrics, "app_lag", M3B_METRIC_GAUGE,
                                       "Lag with a \\ and a\nnewline.", NULL,
                                       0),
                   M3B_OK);
  assert_int_equal(m3b_metrics_declare(metrics, "app_empty", M3B_METRIC_GAUGE,
                                       "Nothing yet.", NULL, 0),
                   M3B_OK);
  assert_int_equal(m3b_metrics_declare(metrics, "app_events_total",
                                       M3B_METRIC_COUNTER, "Events by phase.",
                                       NULL, 0),
                   M3B_OK);
  assert_int_equal(m3b_metrics_escape("a \"b\"", reason, sizeof(reason)),
                   M3B_OK);
  snprintf(labels, sizeof(labels), "phase=\"REJECTED\",reason=\"%s\"", reason);
  assert_int_equal(
      m3b_metrics_counter_add(metrics, "app_events_total", labels, 1), M3B_OK);
  assert_int_equal(m3b_metrics_counter_add(metrics, "app_events_total",
                                           "phase=\"APPLIED\"", 3),
                   M3B_OK);
  assert_int_equal(m3b_metrics_gauge_set(metrics, "app_lag", NULL, 0.25),
                   M3B_OK);
  for (i = 0; i < 3; i++)
    assert_int_equal(
        m3b_metrics_histogram_observe(metrics, "app_latency_seconds",
                                      "op=\"apply\"", observations[i]),
        M3B_OK);
  assert_int_equal(
      m3b_metrics_histogram_observe(metrics, "app_latency_seconds", NULL, 0.01),
      M3B_OK);
  text = render(metrics);
  assert_string_equal(text, expected);
  free(text);
  m3b_metrics_destroy(metrics);
}

static void test_render_special_values_and_limit(void **state) {
  m3b_metrics_t *metrics = m3b_metrics_new();
  struct m3b_buf small;
  char *text;
  (void)state;
  assert_int_equal(
      m3b_metrics_declare(metrics, "g", M3B_METRIC_GAUGE, "G.", NULL, 0),
      M3B_OK);
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "k=\"nan\"", NAN),
                   M3B_OK);
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "k=\"pinf\"", INFINITY),
                   M3B_OK);
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "k=\"ninf\"", -INFINITY),
                   M3B_OK);
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "k=\"tenth\"", 0.1),
                   M3B_OK);
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "k=\"big\"", 1e21),
                   M3B_OK);
  text = render(metrics);
  assert_non_null(strstr(text, "g{k=\"nan\"} NaN\n"));
  assert_non_null(strstr(text, "g{k=\"pinf\"} +Inf\n"));
  assert_non_null(strstr(text, "g{k=\"ninf\"} -Inf\n"));
  assert_non_null(strstr(text, "g{k=\"tenth\"} 0.1\n"));
  assert_non_null(strstr(text, "g{k=\"big\"} 1e+21\n"));
  free(text);
  /* a bounded output buffer refuses a text that does not fit */
  m3b_buf_init(&small, 16);
  assert_int_equal(m3b_metrics_render(metrics, &small), M3B_ERR_LIMIT);
  m3b_buf_cleanup(&small);
  m3b_metrics_destroy(metrics);
}

static void test_series_limit(void **state) {
  m3b_metrics_t *metrics = m3b_metrics_new_limited(4);
  char labels[32];
  int i;
  (void)state;
  assert_int_equal(
      m3b_metrics_declare(metrics, "g", M3B_METRIC_GAUGE, "G.", NULL, 0),
      M3B_OK);
  /* the dropped counter is the first series */
  assert_int_equal(m3b_metrics_series_count(metrics), 1);
  for (i = 0; i < 3; i++) {
    snprintf(labels, sizeof(labels), "i=\"%d\"", i);
    assert_int_equal(m3b_metrics_gauge_set(metrics, "g", labels, i), M3B_OK);
  }
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "i=\"3\"", 3),
                   M3B_ERR_LIMIT);
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "i=\"4\"", 4),
                   M3B_ERR_LIMIT);
  /* existing series still update */
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "i=\"0\"", 10), M3B_OK);
  assert_true(value_of(metrics, M3B_METRICS_DROPPED_NAME, NULL) == 2);
  assert_int_equal(m3b_metrics_series_count(metrics), 4);
  /* removing frees room */
  m3b_metrics_remove_matching(metrics, "g", "i=\"1\"");
  assert_int_equal(m3b_metrics_gauge_set(metrics, "g", "i=\"3\"", 3), M3B_OK);
  m3b_metrics_destroy(metrics);
}

static void test_default_limit(void **state) {
  m3b_metrics_t *metrics = m3b_metrics_new();
  char labels[32];
  int i;
  (void)state;
  assert_int_equal(m3b_metrics_declare(metrics, "c_total", M3B_METRIC_COUNTER,
                                       "C.", NULL, 0),
                   M3B_OK);
  for (i = 0; i < M3B_METRICS_MAX_SERIES - 1; i++) {
    snprintf(labels, sizeof(labels), "i=\"%d\"", i);
    assert_int_equal(m3b_metrics_counter_add(metrics, "c_total", labels, 1),
                     M3B_OK);
  }
  assert_int_equal(m3b_metrics_counter_add(metrics, "c_total", "i=\"x\"", 1),
                   M3B_ERR_LIMIT);
  assert_int_equal(m3b_metrics_series_count(metrics), M3B_METRICS_MAX_SERIES);
  m3b_metrics_destroy(metrics);
}

static void test_remove_matching(void **state) {
  m3b_metrics_t *metrics = m3b_metrics_new();
  char *text;
  (void)state;
  assert_int_equal(
      m3b_metrics_declare(metrics, "lag", M3B_METRIC_GAUGE, "Lag.", NULL, 0),
      M3B_OK);
  assert_int_equal(
      m3b_metrics_declare(metrics, "other", M3B_METRIC_GAUGE, "O.", NULL, 0),
      M3B_OK);
  assert_int_equal(
      m3b_metrics_gauge_set(metrics, "lag", "topic=\"t\",partition=\"3\"", 1),
      M3B_OK);
  assert_int_equal(
      m3b_metrics_gauge_set(metrics, "lag", "topic=\"t\",partition=\"30\"", 2),
      M3B_OK);
  assert_int_equal(
      m3b_metrics_gauge_set(metrics, "lag", "topic=\"u\",partition=\"3\"", 3),
      M3B_OK);
  assert_int_equal(
      m3b_metrics_gauge_set(metrics, "other", "partition=\"3\"", 4), M3B_OK);
  m3b_metrics_remove_matching(metrics, "lag", "partition=\"3\"");
  text = render(metrics);
  assert_null(strstr(text, "lag{topic=\"t\",partition=\"3\"}"));
  assert_null(strstr(text, "lag{topic=\"u\",partition=\"3\"}"));
  assert_non_null(strstr(text, "lag{topic=\"t\",partition=\"30\"} 2\n"));
  /* other families are untouched */
  assert_non_null(strstr(text, "other{partition=\"3\"} 4\n"));
  free(text);
  m3b_metrics_remove_matching(metrics, "undeclared", "x");
  m3b_metrics_remove_matching(metrics, "lag", NULL);
  text = render(metrics);
  assert_null(strstr(text, "# TYPE lag "));
  free(text);
  assert_int_equal(m3b_metrics_series_count(metrics), 2);
  m3b_metrics_destroy(metrics);
}

#define THREADS 4
#define ADDS 10000

static void *adder(void *arg) {
  m3b_metrics_t *metrics = arg;
  char labels[32];
  int i;
  for (i = 0; i < ADDS; i++) {
    snprintf(labels, sizeof(labels), "slot=\"%d\"", i % 8);
    if (m3b_metrics_counter_add(metrics, "hits_total", labels, 1) ||
        m3b_metrics_counter_add(metrics, "hits_total", NULL, 1) ||
        m3b_metrics_histogram_observe(metrics, "work_seconds", NULL, 0.01))
      return arg; /* failure */
  }
  return NULL;
}

static void test_concurrent_adds(void **state) {
  m3b_metrics_t *metrics = m3b_metrics_new();
  pthread_t threads[THREADS];
  double per_slot = 0;
  char labels[32];
  char *text;
  int i;
  (void)state;
  assert_int_equal(m3b_metrics_declare(metrics, "hits_total",
                                       M3B_METRIC_COUNTER, "Hits.", NULL, 0),
                   M3B_OK);
  assert_int_equal(m3b_metrics_declare(metrics, "work_seconds",
                                       M3B_METRIC_HISTOGRAM, "Work.", NULL, 0),
                   M3B_OK);
  for (i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, adder, metrics), 0);
  /* rendering while the writers run sees consistent text */
  text = render(metrics);
  free(text);
  for (i = 0; i < THREADS; i++) {
    void *result = metrics;
    assert_int_equal(pthread_join(threads[i], &result), 0);
    assert_null(result);
  }
  assert_true(value_of(metrics, "hits_total", NULL) == THREADS * ADDS);
  assert_true(value_of(metrics, "work_seconds", NULL) == THREADS * ADDS);
  for (i = 0; i < 8; i++) {
    snprintf(labels, sizeof(labels), "slot=\"%d\"", i);
    per_slot += value_of(metrics, "hits_total", labels);
  }
  assert_true(per_slot == THREADS * ADDS);
  text = render(metrics);
  assert_non_null(strstr(text, "work_seconds_bucket{le=\"0.01\"} 40000\n"));
  assert_non_null(strstr(text, "work_seconds_count 40000\n"));
  free(text);
  m3b_metrics_destroy(metrics);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_declare_and_update),
      cmocka_unit_test(test_invalid_names_labels_buckets),
      cmocka_unit_test(test_escape),
      cmocka_unit_test(test_render_exact),
      cmocka_unit_test(test_render_special_values_and_limit),
      cmocka_unit_test(test_series_limit),
      cmocka_unit_test(test_default_limit),
      cmocka_unit_test(test_remove_matching),
      cmocka_unit_test(test_concurrent_adds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
