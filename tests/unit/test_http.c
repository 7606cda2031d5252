/* test_http.c - the HTTP endpoints over loopback with libcurl as the
 * client: /healthz, /readyz ready and not ready, /metrics content type and
 * body, 404, 405, added routes, and a clear error for a port in use or a
 * malformed address. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include <m3b/http.h>
#include <m3b/metrics.h>

struct reply {
  long status;
  char content_type[128];
  char body[4096];
  size_t len;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque) {
  struct reply *reply = opaque;
  size_t n = size * nmemb;
  if (n >= sizeof(reply->body) - reply->len)
    return 0; /* a test body never gets this big */
  memcpy(reply->body + reply->len, data, n);
  reply->len += n;
  reply->body[reply->len] = 0;
  return n;
}

/* method NULL = GET. */
static void fetch(int port, const char *method, const char *path,
                  struct reply *reply) {
  CURL *curl = curl_easy_init();
  char url[256];
  char *content_type = NULL;
  assert_non_null(curl);
  memset(reply, 0, sizeof(*reply));
  snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, reply);
  if (method && strcmp(method, "POST") == 0)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "x=1");
  else if (method)
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  assert_int_equal(curl_easy_perform(curl), CURLE_OK);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &reply->status);
  curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &content_type);
  if (content_type)
    snprintf(reply->content_type, sizeof(reply->content_type), "%s",
             content_type);
  curl_easy_cleanup(curl);
}

struct readiness {
  int ready;
  const char *reason;
};

static int ready_cb(void *opaque, char *detail, size_t detail_size) {
  const struct readiness *readiness = opaque;
  if (!readiness->ready)
    snprintf(detail, detail_size, "%s", readiness->reason);
  return readiness->ready;
}

struct fixture {
  m3b_metrics_t *metrics;
  m3b_http_t *http;
  struct readiness readiness;
  int port;
};

static int setup(void **state) {
  struct fixture *fixture = calloc(1, sizeof(*fixture));
  char errstr[256] = "";
  if (!fixture)
    return -1;
  fixture->metrics = m3b_metrics_new();
  fixture->readiness.ready = 1;
  fixture->http =
      m3b_http_start("127.0.0.1:0", fixture->metrics, ready_cb,
                     &fixture->readiness, NULL, errstr, sizeof(errstr));
  if (!fixture->http) {
    fprintf(stderr, "m3b_http_start: %s\n", errstr);
    m3b_metrics_destroy(fixture->metrics);
    free(fixture);
    return -1;
  }
  fixture->port = m3b_http_port(fixture->http);
  *state = fixture;
  return 0;
}

static int teardown(void **state) {
  struct fixture *fixture = *state;
  m3b_http_stop(fixture->http);
  m3b_metrics_destroy(fixture->metrics);
  free(fixture);
  return 0;
}

static void test_healthz(void **state) {
  struct fixture *fixture = *state;
  struct reply reply;
  assert_true(fixture->port > 0);
  fetch(fixture->port, NULL, "/healthz", &reply);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.body, "ok");
  assert_non_null(strstr(reply.content_type, "text/plain"));
}

static void test_readyz(void **state) {
  struct fixture *fixture = *state;
  struct reply reply;
  fetch(fixture->port, NULL, "/readyz", &reply);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.body, "ready");

  fixture->readiness.ready = 0;
  fixture->readiness.reason = "partitions not assigned yet\nsecond line";
  fetch(fixture->port, NULL, "/readyz", &reply);
  assert_int_equal(reply.status, 503);
  assert_string_equal(reply.body, "partitions not assigned yet");

  fixture->readiness.reason = "";
  fetch(fixture->port, NULL, "/readyz", &reply);
  assert_int_equal(reply.status, 503);
  assert_string_equal(reply.body, "not ready");
  fixture->readiness.ready = 1;
}

static void test_metrics_endpoint(void **state) {
  struct fixture *fixture = *state;
  struct reply reply;
  assert_int_equal(m3b_metrics_declare(fixture->metrics, "m3b_test_lag",
                                       M3B_METRIC_GAUGE, "Lag.", NULL, 0),
                   M3B_OK);
  assert_int_equal(m3b_metrics_gauge_set(fixture->metrics, "m3b_test_lag",
                                         "partition=\"0\"", 42),
                   M3B_OK);
  fetch(fixture->port, NULL, "/metrics", &reply);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.content_type,
                      "text/plain; version=0.0.4; charset=utf-8");
  assert_non_null(strstr(reply.body, "# TYPE m3b_test_lag gauge\n"
                                     "m3b_test_lag{partition=\"0\"} 42\n"));
  assert_non_null(strstr(reply.body, M3B_METRICS_DROPPED_NAME " 0\n"));
}

static void test_not_found_and_method(void **state) {
  struct fixture *fixture = *state;
  struct reply reply;
  fetch(fixture->port, NULL, "/nope", &reply);
  assert_int_equal(reply.status, 404);
  fetch(fixture->port, NULL, "/healthz/", &reply);
  assert_int_equal(reply.status, 404);
  fetch(fixture->port, "POST", "/metrics", &reply);
  assert_int_equal(reply.status, 405);
  fetch(fixture->port, "DELETE", "/healthz", &reply);
  assert_int_equal(reply.status, 405);
  fetch(fixture->port, "PUT", "/nope", &reply);
  assert_int_equal(reply.status, 405);
}

static int ui_handler(void *opaque, const m3b_http_request_t *request,
                      struct m3b_buf *body, char *content_type,
                      size_t content_type_size) {
  const char *since = m3b_http_request_query(request, "since");
  (void)opaque;
  snprintf(content_type, content_type_size, "text/html; charset=utf-8");
  if (m3b_buf_appendf(body, "<p>%s since=%s</p>",
                      m3b_http_request_path(request), since ? since : "-"))
    return 500;
  return 200;
}

static int teapot_handler(void *opaque, const m3b_http_request_t *request,
                          struct m3b_buf *body, char *content_type,
                          size_t content_type_size) {
  (void)opaque;
  (void)request;
  (void)content_type;
  (void)content_type_size;
  return m3b_buf_append_str(body, "short and stout") ? 500 : 418;
}

static int broken_handler(void *opaque, const m3b_http_request_t *request,
                          struct m3b_buf *body, char *content_type,
                          size_t content_type_size) {
  (void)opaque;
  (void)request;
  (void)body;
  (void)content_type;
  (void)content_type_size;
  return 42;
}

static void test_routes(void **state) {
  struct fixture *fixture = *state;
  struct reply reply;
  m3b_http_t *http = fixture->http;

  assert_int_equal(m3b_http_route(http, "/ui", ui_handler, NULL), M3B_OK);
  assert_int_equal(m3b_http_route(http, "/ui/", ui_handler, NULL), M3B_OK);
  assert_int_equal(m3b_http_route(http, "/ui/teapot", teapot_handler, NULL),
                   M3B_OK);
  assert_int_equal(m3b_http_route(http, "/broken", broken_handler, NULL),
                   M3B_OK);
  assert_int_equal(m3b_http_route(http, "/ui", ui_handler, NULL),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_http_route(http, "/metrics", ui_handler, NULL),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_http_route(http, "ui", ui_handler, NULL),
                   M3B_ERR_INVALID_ARG);

  fetch(fixture->port, NULL, "/ui?since=60", &reply);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.content_type, "text/html; charset=utf-8");
  assert_string_equal(reply.body, "<p>/ui since=60</p>");
  fetch(fixture->port, NULL, "/ui/app.js", &reply);
  assert_int_equal(reply.status, 200);
  assert_string_equal(reply.body, "<p>/ui/app.js since=-</p>");
  fetch(fixture->port, NULL, "/ui/teapot", &reply);
  assert_int_equal(reply.status, 418);
  assert_string_equal(reply.body, "short and stout");
  assert_string_equal(reply.content_type, "text/plain; charset=utf-8");
  fetch(fixture->port, NULL, "/broken", &reply);
  assert_int_equal(reply.status, 500);
  fetch(fixture->port, NULL, "/uix", &reply);
  assert_int_equal(reply.status, 404);
}

static void test_port_in_use(void **state) {
  struct fixture *fixture = *state;
  char address[64];
  char errstr[256] = "";
  m3b_http_t *second;
  snprintf(address, sizeof(address), "127.0.0.1:%d", fixture->port);
  second = m3b_http_start(address, fixture->metrics, NULL, NULL, NULL, errstr,
                          sizeof(errstr));
  assert_null(second);
  assert_non_null(strstr(errstr, address));
  assert_non_null(strstr(errstr, "in use"));
}

static void test_bad_addresses(void **state) {
  static const char *const bad[] = {
      "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http",
      "::1:80",    "[::1:80",    "127.0.0.1:-1"};
  struct fixture *fixture = *state;
  char errstr[256];
  size_t i;
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errstr[0] = 0;
    assert_null(m3b_http_start(bad[i], fixture->metrics, NULL, NULL, NULL,
                               errstr, sizeof(errstr)));
    assert_true(errstr[0] != 0);
  }
  m3b_http_stop(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_healthz),
      cmocka_unit_test(test_readyz),
      cmocka_unit_test(test_metrics_endpoint),
      cmocka_unit_test(test_not_found_and_method),
      cmocka_unit_test(test_routes),
      cmocka_unit_test(test_port_in_use),
      cmocka_unit_test(test_bad_addresses),
  };
  int failed;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  failed = cmocka_run_group_tests(tests, setup, teardown);
  curl_global_cleanup();
  return failed;
}
