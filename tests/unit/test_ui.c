/* test_ui.c - the /ui state and routes: the JSON document (parsed back with
 * jansson) shows the latest lag sample per partition and its history, the
 * throughput, the totals and the newest outcomes first; strings from the
 * outside are escaped and invalid UTF-8 replaced; memory stays bounded; the
 * embedded page is ASCII, self-contained and served on /ui, /ui/ and its
 * data on /ui/data.json (libcurl over loopback). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include <m3b/buf.h>
#include <m3b/http.h>
#include <m3b/metrics.h>
#include <m3b/ui.h>

#define HOUR_MS 3600000LL

static m3b_ui_t *ui_new(int64_t interval_ms, size_t recent_max) {
  struct m3b_ui_options options = {"m3bridge-p", "m3.p.desired", "p-0",
                                   interval_ms,  HOUR_MS,        recent_max};
  char errstr[256] = "";
  m3b_ui_t *ui = m3b_ui_new(&options, errstr, sizeof(errstr));
  assert_non_null(ui);
  return ui;
}

/* Renders at now_ms and parses; the caller json_decref()s. */
static json_t *render(m3b_ui_t *ui, int64_t now_ms) {
  struct m3b_buf buf;
  json_error_t error;
  json_t *doc;
  m3b_buf_init(&buf, M3B_HTTP_BODY_MAX);
  assert_int_equal(m3b_ui_render_json(ui, now_ms, &buf), M3B_OK);
  doc = json_loadb((const char *)buf.data, buf.len, 0, &error);
  if (!doc)
    fail_msg("not JSON: %s: %s", error.text, (const char *)buf.data);
  m3b_buf_cleanup(&buf);
  return doc;
}

static void lag(m3b_ui_t *ui, int32_t partition, int64_t at_ms, int64_t msgs,
                double seconds, int verdict) {
  struct m3b_lag_point p = {at_ms, msgs, seconds, 10, 10 + msgs, verdict};
  assert_int_equal(m3b_ui_record_lag(ui, partition, &p), M3B_OK);
}

static void outcome(m3b_ui_t *ui, int64_t at_ms, const char *key,
                    const char *phase, const char *reason) {
  struct m3b_ui_outcome o = {at_ms, key, phase, reason, "detail", 7, 1, 42};
  m3b_ui_record_outcome(ui, &o);
}

static json_int_t int_at(const json_t *object, const char *name) {
  const json_t *v = json_object_get(object, name);
  assert_true(json_is_integer(v));
  return json_integer_value(v);
}

static const char *str_at(const json_t *object, const char *name) {
  const json_t *v = json_object_get(object, name);
  assert_true(json_is_string(v));
  return json_string_value(v);
}

static void test_empty_document(void **state) {
  m3b_ui_t *ui = ui_new(10000, 10);
  json_t *doc;
  (void)state;
  doc = render(ui, 1000);
  assert_string_equal(str_at(doc, "listener_id"), "p-0");
  assert_string_equal(str_at(doc, "group"), "m3bridge-p");
  assert_string_equal(str_at(doc, "topic"), "m3.p.desired");
  assert_int_equal(int_at(doc, "now_ms"), 1000);
  assert_int_equal(int_at(doc, "interval_ms"), 10000);
  assert_int_equal(int_at(doc, "span_ms"), HOUR_MS);
  assert_true(json_is_null(json_object_get(doc, "group_verdict")));
  assert_int_equal(json_array_size(json_object_get(doc, "partitions")), 0);
  assert_int_equal(json_array_size(json_object_get(doc, "throughput")), 0);
  assert_int_equal(json_array_size(json_object_get(doc, "totals")), 0);
  assert_int_equal(json_array_size(json_object_get(doc, "recent")), 0);
  assert_int_equal(int_at(doc, "applied_total"), 0);
  json_decref(doc);
  m3b_ui_destroy(ui);
}

/* The latest sample of each partition is its current value; the history
 * has one point per interval and leaves out points older than the span. */
static void test_partitions_latest_and_history(void **state) {
  m3b_ui_t *ui = ui_new(10000, 10);
  int64_t t0 = 1700000000000LL;
  json_t *doc, *parts, *p, *history;
  (void)state;
  lag(ui, 2, t0, 5, 1.5, 0);
  lag(ui, 2, t0 + 10000, 7, 0.1 + 0.2, 1); /* not exact in binary */
  lag(ui, 2, t0 + 12000, 9, 12.25, 2);     /* same bucket: replaces */
  lag(ui, 0, t0 + 12000, 0, 0, 0);
  m3b_ui_set_group_verdict(ui, 2);
  doc = render(ui, t0 + 13000);
  assert_string_equal(str_at(doc, "group_verdict"), "STALL");
  parts = json_object_get(doc, "partitions");
  assert_int_equal(json_array_size(parts), 2);
  p = json_array_get(parts, 0);
  assert_int_equal(int_at(p, "partition"), 0);
  assert_string_equal(str_at(p, "verdict"), "OK");
  p = json_array_get(parts, 1);
  assert_int_equal(int_at(p, "partition"), 2);
  assert_int_equal(int_at(p, "lag"), 9);
  assert_true(json_real_value(json_object_get(p, "lag_seconds")) == 12.25);
  assert_int_equal(int_at(p, "committed"), 10);
  assert_int_equal(int_at(p, "high_watermark"), 19);
  assert_int_equal(int_at(p, "at_ms"), t0 + 12000);
  assert_string_equal(str_at(p, "verdict"), "STALL");
  history = json_object_get(p, "history");
  assert_int_equal(json_array_size(history), 2);
  assert_int_equal(
      json_integer_value(json_array_get(json_array_get(history, 0), 1)), 5);
  assert_int_equal(
      json_integer_value(json_array_get(json_array_get(history, 1), 0)),
      t0 + 12000);
  json_decref(doc);

  /* the value is written so that it reads back exactly, like /metrics */
  lag(ui, 2, t0 + 20000, 1, 0.1 + 0.2, -1);
  doc = render(ui, t0 + 21000);
  p = json_array_get(json_object_get(doc, "partitions"), 1);
  assert_true(json_real_value(json_object_get(p, "lag_seconds")) == 0.1 + 0.2);
  assert_true(json_is_null(json_object_get(p, "verdict")));
  json_decref(doc);

  /* an hour later, the first points are out of the window */
  doc = render(ui, t0 + HOUR_MS + 15000);
  p = json_array_get(json_object_get(doc, "partitions"), 1);
  assert_int_equal(json_array_size(json_object_get(p, "history")), 1);
  assert_int_equal(int_at(p, "lag"), 1); /* the current value stays */
  json_decref(doc);

  /* a revoked partition disappears */
  m3b_ui_forget_partition(ui, 2);
  doc = render(ui, t0 + 21000);
  assert_int_equal(json_array_size(json_object_get(doc, "partitions")), 1);
  json_decref(doc);
  m3b_ui_destroy(ui);
}

/* Rates are differences of counter samples over their time apart. */
static void test_throughput(void **state) {
  m3b_ui_t *ui = ui_new(1000, 10);
  json_t *doc, *tp, *point;
  int i;
  (void)state;
  m3b_ui_tick(ui, 10000);
  for (i = 0; i < 6; i++)
    outcome(ui, 10500, "/v1/ConfigMap/shop/a", "APPLIED", "OK");
  for (i = 0; i < 4; i++)
    outcome(ui, 10500, "/v1/ConfigMap/shop/b", "REJECTED", "SIG_MISSING");
  m3b_ui_tick(ui, 12000); /* two seconds later */
  m3b_ui_tick(ui, 12500); /* same bucket: replaces, nothing new counted */
  doc = render(ui, 13000);
  tp = json_object_get(doc, "throughput");
  assert_int_equal(json_array_size(tp), 1);
  point = json_array_get(tp, 0);
  assert_int_equal(json_integer_value(json_array_get(point, 0)), 12500);
  assert_true(json_number_value(json_array_get(point, 1)) == 6 / 2.5);
  assert_true(json_number_value(json_array_get(point, 2)) == 10 / 2.5);
  assert_int_equal(int_at(doc, "applied_total"), 6);
  assert_int_equal(int_at(doc, "finished_total"), 10);
  json_decref(doc);
  m3b_ui_destroy(ui);
}

/* Totals count every outcome by (phase, reason); recent keeps the newest
 * recent_max of them, newest first. */
static void test_totals_and_recent(void **state) {
  m3b_ui_t *ui = ui_new(10000, 3);
  json_t *doc, *totals, *recent, *r;
  char key[64];
  size_t i;
  (void)state;
  for (i = 0; i < 5; i++) {
    snprintf(key, sizeof(key), "/v1/ConfigMap/shop/cm-%zu", i);
    outcome(ui, 1000 + (int64_t)i, key, "APPLIED", "OK");
  }
  outcome(ui, 2000, "", "REJECTED", "SIG_MISSING");
  outcome(ui, 2001, "", "REJECTED", "SIG_MISSING");
  doc = render(ui, 3000);
  totals = json_object_get(doc, "totals");
  assert_int_equal(json_array_size(totals), 2);
  assert_string_equal(str_at(json_array_get(totals, 0), "phase"), "APPLIED");
  assert_int_equal(int_at(json_array_get(totals, 0), "count"), 5);
  assert_string_equal(str_at(json_array_get(totals, 1), "reason"),
                      "SIG_MISSING");
  assert_int_equal(int_at(json_array_get(totals, 1), "count"), 2);
  recent = json_object_get(doc, "recent");
  assert_int_equal(json_array_size(recent), 3);
  r = json_array_get(recent, 0);
  assert_int_equal(int_at(r, "at_ms"), 2001);
  assert_string_equal(str_at(r, "phase"), "REJECTED");
  assert_string_equal(str_at(r, "message"), "detail");
  assert_int_equal(int_at(r, "generation"), 7);
  assert_int_equal(int_at(r, "partition"), 1);
  assert_int_equal(int_at(r, "offset"), 42);
  r = json_array_get(recent, 2);
  assert_string_equal(str_at(r, "key"), "/v1/ConfigMap/shop/cm-4");
  json_decref(doc);
  m3b_ui_destroy(ui);
}

/* Quotes, backslashes, control characters and invalid UTF-8 in keys and
 * messages still give a valid document; overlong strings are cut at a
 * character boundary. */
static void test_escaping_and_cutting(void **state) {
  m3b_ui_t *ui = ui_new(10000, 4);
  struct m3b_ui_outcome o = {1,
                             "a\"b\\c\n\x01<script>",
                             "REJECTED",
                             "BAD_KEY",
                             "bad \xff\xfe byte",
                             -1,
                             0,
                             0};
  char long_key[M3B_UI_KEY_MAX + 16];
  json_t *doc, *r;
  size_t i;
  (void)state;
  m3b_ui_record_outcome(ui, &o);
  /* 2-byte characters (U+00E9) across the cut */
  for (i = 0; i + 1 < sizeof(long_key); i += 2) {
    long_key[i] = (char)0xC3;
    long_key[i + 1] = (char)0xA9;
  }
  long_key[sizeof(long_key) - 1] = 0;
  o.key = long_key;
  o.message = NULL;
  m3b_ui_record_outcome(ui, &o);
  doc = render(ui, 2);
  r = json_array_get(json_object_get(doc, "recent"), 1);
  assert_string_equal(str_at(r, "key"), "a\"b\\c\n\x01<script>");
  assert_string_equal(str_at(r, "message"),
                      "bad \xEF\xBF\xBD\xEF\xBF\xBD byte");
  r = json_array_get(json_object_get(doc, "recent"), 0);
  assert_true(strlen(str_at(r, "key")) <= M3B_UI_KEY_MAX);
  assert_true(strlen(str_at(r, "key")) >= M3B_UI_KEY_MAX - 1);
  assert_null(strstr(str_at(r, "key"), "\xEF\xBF\xBD")); /* cut cleanly */
  assert_string_equal(str_at(r, "message"), "");
  json_decref(doc);
  m3b_ui_destroy(ui);
}

static void test_bad_options_and_limits(void **state) {
  struct m3b_ui_options options = {"g", "t", "id", 0, HOUR_MS, 10};
  char errstr[256] = "";
  struct m3b_buf small;
  m3b_ui_t *ui;
  (void)state;
  assert_null(m3b_ui_new(&options, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "out of range"));
  options.interval_ms = 1000;
  options.recent_max = 0;
  assert_null(m3b_ui_new(&options, errstr, sizeof(errstr)));
  options.recent_max = M3B_UI_RECENT_MAX + 1;
  assert_null(m3b_ui_new(&options, errstr, sizeof(errstr)));
  options.recent_max = 1;
  options.span_ms = 999;
  assert_null(m3b_ui_new(&options, errstr, sizeof(errstr)));
  m3b_ui_destroy(NULL);

  /* a full output buffer is an error, never a truncated document */
  ui = ui_new(1000, 1);
  lag(ui, 0, 1, 1, 1, 0);
  m3b_buf_init(&small, 64);
  assert_int_equal(m3b_ui_render_json(ui, 2, &small), M3B_ERR_LIMIT);
  m3b_buf_cleanup(&small);
  {
    struct m3b_lag_point p = {1, 1, 1, 1, 1, 0};
    assert_int_equal(m3b_ui_record_lag(ui, -1, &p), M3B_ERR_INVALID_ARG);
  }
  m3b_ui_destroy(ui);
}

/* The page is ASCII (the embedding needs it), self-contained (nothing to
 * fetch but its own data.json) and fetches its data relative to itself. */
static void test_page_is_self_contained(void **state) {
  size_t len = 0, i;
  const char *page = m3b_ui_page(&len);
  const char *banned[] = {"src=",    "href=", "url(",
                          "@import", "//cdn", "https://"};
  const char *ns = "http://www.w3.org/2000/svg";
  const char *at;
  (void)state;
  assert_true(len > 1000);
  assert_int_equal(strlen(page), len);
  for (i = 0; i < len; i++)
    assert_true((unsigned char)page[i] < 0x80);
  for (i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
    if (strstr(page, banned[i]))
      fail_msg("the page references something external: %s", banned[i]);
  /* the only URL is the SVG namespace name, which is never fetched */
  for (at = strstr(page, "http://"); at; at = strstr(at + 1, "http://"))
    assert_int_equal(strncmp(at, ns, strlen(ns)), 0);
  assert_non_null(strstr(page, "Content-Security-Policy"));
  assert_non_null(strstr(page, "\"data.json\""));
}

struct reply {
  long status;
  char content_type[128];
  struct m3b_buf body;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
  struct reply *reply = opaque;
  return m3b_buf_append(&reply->body, data, size * nmemb) ? 0 : size * nmemb;
}

static void fetch(int port, const char *path, struct reply *reply) {
  CURL *curl = curl_easy_init();
  char url[256];
  char *content_type = NULL;
  assert_non_null(curl);
  reply->status = 0;
  reply->content_type[0] = 0;
  m3b_buf_init(&reply->body, M3B_HTTP_BODY_MAX);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, reply);
  assert_int_equal(curl_easy_perform(curl), CURLE_OK);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  if (content_type)
    snprintf(reply->content_type, sizeof(reply->content_type), "%s",
             content_type);
  curl_easy_cleanup(curl);
}

static void test_routes(void **state) {
  m3b_metrics_t *metrics = m3b_metrics_new();
  m3b_ui_t *ui = ui_new(1000, 4);
  char errstr[256] = "";
  m3b_http_t *http;
  struct reply reply;
  size_t page_len;
  json_t *doc;
  (void)state;
  http = m3b_http_start("127.0.0.1:0", metrics, NULL, NULL, NULL, errstr,
                        sizeof(errstr));
  assert_non_null(http);
  assert_int_equal(m3b_ui_route(ui, http), M3B_OK);
  assert_int_equal(m3b_ui_route(ui, http), M3B_ERR_INVALID_ARG); /* twice */
  lag(ui, 3, 1000, 4, 2.5, 1);

  fetch(m3b_http_port(http), "/ui", &reply);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.content_type, "text/html; charset=utf-8");
  assert_int_equal(reply.body.len, strlen(m3b_ui_page(&page_len)));
  assert_memory_equal(reply.body.data, m3b_ui_page(NULL), page_len);
  m3b_buf_cleanup(&reply.body);

  fetch(m3b_http_port(http), "/ui/", &reply);
  assert_int_equal(reply.status, 200);
  m3b_buf_cleanup(&reply.body);

  fetch(m3b_http_port(http), "/ui/data.json", &reply);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.content_type, "application/json; charset=utf-8");
  doc = json_loadb((const char *)reply.body.data, reply.body.len, 0, NULL);
  assert_non_null(doc);
  assert_int_equal(
      int_at(json_array_get(json_object_get(doc, "partitions"), 0), "lag"), 4);
  json_decref(doc);
  m3b_buf_cleanup(&reply.body);

  fetch(m3b_http_port(http), "/ui/other.js", &reply);
  assert_int_equal(reply.status, 404);
  m3b_buf_cleanup(&reply.body);

  m3b_http_stop(http);
  m3b_ui_destroy(ui);
  m3b_metrics_destroy(metrics);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_empty_document),
      cmocka_unit_test(test_partitions_latest_and_history),
      cmocka_unit_test(test_throughput),
      cmocka_unit_test(test_totals_and_recent),
      cmocka_unit_test(test_escaping_and_cutting),
      cmocka_unit_test(test_bad_options_and_limits),
      cmocka_unit_test(test_page_is_self_contained),
      cmocka_unit_test(test_routes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
