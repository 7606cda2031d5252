/*
 * test_kube_client.c - the Kubernetes client of libm3bridge against the
 * test bed's real kube-apiserver, as the listener's service account
 * (namespace m3-it) unless said otherwise:
 *
 *   - apply / get / apply-again is a no-op / delete / 404 on a ConfigMap;
 *   - apply of an apps/v1 Deployment and of a Gateway API HTTPRoute (a CRD,
 *     found by discovery); an unknown kind is KUBE_NOT_FOUND;
 *   - list with a label selector across several pages;
 *   - watch sees ADDED, MODIFIED and DELETED of the test's own objects;
 *   - 403 in namespace default, 422 with the server's message, a closed
 *     port is KUBE_TRANSPORT fast;
 *   - a rotated token file is picked up without a new client.
 *
 * Object names start with a per-run prefix; every test deletes what it
 * made.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <pthread.h>

#include <m3b/kube.h>

#include "testbed_env.h"

#define NS "m3-it"

static char prefix[64];
static m3b_log_t *test_log;

static m3b_kube_t *listener_client(void) {
  struct m3b_kube_config cfg;
  char errstr[512] = "";
  m3b_kube_t *kube;
  m3b_err_t err;

  m3b_kube_config_init(&cfg);
  err = m3b_kube_config_from_kubeconfig(
      &cfg, tb_require("M3B_TB_KUBE_LISTENER_KUBECONFIG"), NULL, errstr,
      sizeof(errstr));
  if (err)
    fail_msg("listener kubeconfig: %s", errstr);
  kube = m3b_kube_new(&cfg, test_log, errstr, sizeof(errstr));
  m3b_kube_config_cleanup(&cfg);
  if (!kube)
    fail_msg("m3b_kube_new: %s", errstr);
  return kube;
}

static json_t *configmap(const char *name, const char *value,
                         const char *label) {
  json_t *cm =
      json_pack("{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}}, s:{s:s}}", "apiVersion",
                "v1", "kind", "ConfigMap", "metadata", "name", name,
                "namespace", NS, "labels", "app.kubernetes.io/managed-by",
                "m3bridge", "m3-test", label, "data", "greeting", value);
  assert_non_null(cm);
  return cm;
}

static void expect_ok(m3b_err_t err, const struct m3b_kube_result *result,
                      const char *what) {
  if (err)
    fail_msg("%s: %s (%s) HTTP %ld: %s", what, m3b_err_name(err),
             m3b_err_str(err), result->http_status, result->errstr);
}

static void name_of(char *out, size_t size, const char *what) {
  snprintf(out, size, "%s-%s", prefix, what);
}

static void test_configmap_lifecycle(void **state) {
  m3b_kube_t *kube = listener_client();
  struct m3b_kube_result result;
  struct m3b_kube_meta meta1, meta2;
  struct m3b_kube_ref ref = {"v1", "ConfigMap", NS, NULL};
  char name[128];
  json_t *cm, *got = NULL, *stored = NULL;
  m3b_err_t err;
  (void)state;

  name_of(name, sizeof(name), "cm");
  ref.name = name;
  cm = configmap(name, "hello", "lifecycle");
  err = m3b_kube_apply(kube, cm, "m3bridge", &stored, &meta1, &result);
  expect_ok(err, &result, "apply");
  assert_true(meta1.uid[0] && meta1.resource_version[0]);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(stored, "data"), "greeting")),
                      "hello");
  json_decref(stored);

  err = m3b_kube_get(kube, &ref, &got, &result);
  expect_ok(err, &result, "get");
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(got, "metadata"), "resourceVersion")),
                      meta1.resource_version);
  json_decref(got);

  /* the same apply again changes nothing */
  err = m3b_kube_apply(kube, cm, "m3bridge", NULL, &meta2, &result);
  expect_ok(err, &result, "apply again");
  assert_string_equal(meta2.resource_version, meta1.resource_version);
  assert_string_equal(meta2.uid, meta1.uid);

  /* a precondition on another uid is a conflict, nothing is deleted */
  err = m3b_kube_delete(kube, &ref, "00000000-0000-0000-0000-000000000000",
                        NULL, &result);
  assert_int_equal(err, M3B_ERR_KUBE_CONFLICT);
  print_message("wrong uid: %s\n", result.errstr);

  err = m3b_kube_delete(kube, &ref, meta1.uid, meta1.resource_version, &result);
  expect_ok(err, &result, "delete");
  err = m3b_kube_get(kube, &ref, &got, &result);
  assert_int_equal(err, M3B_ERR_KUBE_NOT_FOUND);
  assert_null(got);
  assert_int_equal(result.http_status, 404);
  err = m3b_kube_delete(kube, &ref, NULL, NULL, &result);
  assert_int_equal(err, M3B_ERR_KUBE_NOT_FOUND);
  json_decref(cm);
  m3b_kube_destroy(kube);
}

static void test_deployment_and_httproute(void **state) {
  m3b_kube_t *kube = listener_client();
  struct m3b_kube_result result;
  struct m3b_kube_meta meta;
  char name[128], resource[64];
  int namespaced = -1;
  json_t *deploy, *route;
  m3b_err_t err;
  (void)state;

  name_of(name, sizeof(name), "web");
  deploy = json_pack(
      "{s:s, s:s, s:{s:s, s:s}, s:{s:i, s:{s:{s:s}}, s:{s:{s:{s:s}}, "
      "s:{s:[{s:s, s:s}]}}}}",
      "apiVersion", "apps/v1", "kind", "Deployment", "metadata", "name", name,
      "namespace", NS, "spec", "replicas", 1, "selector", "matchLabels", "app",
      name, "template", "metadata", "labels", "app", name, "spec", "containers",
      "name", "web", "image", "nginx:1.27");
  assert_non_null(deploy);
  err = m3b_kube_apply(kube, deploy, "m3bridge", NULL, &meta, &result);
  expect_ok(err, &result, "apply Deployment");
  assert_int_equal(meta.generation, 1);

  err = m3b_kube_resolve(kube, "gateway.networking.k8s.io/v1", "HTTPRoute",
                         resource, sizeof(resource), &namespaced, &result);
  expect_ok(err, &result, "resolve HTTPRoute");
  assert_string_equal(resource, "httproutes");
  assert_int_equal(namespaced, 1);

  route =
      json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:[{s:s}], s:[s]}}", "apiVersion",
                "gateway.networking.k8s.io/v1", "kind", "HTTPRoute", "metadata",
                "name", name, "namespace", NS, "spec", "parentRefs", "name",
                "gw", "hostnames", "shop.example.com");
  assert_non_null(route);
  err = m3b_kube_apply(kube, route, "m3bridge", NULL, &meta, &result);
  expect_ok(err, &result, "apply HTTPRoute");
  assert_true(meta.uid[0]);

  {
    struct m3b_kube_ref ref = {"apps/v1", "Deployment", NS, name};
    expect_ok(m3b_kube_delete(kube, &ref, NULL, NULL, &result), &result,
              "delete Deployment");
    ref.api_version = "gateway.networking.k8s.io/v1";
    ref.kind = "HTTPRoute";
    expect_ok(m3b_kube_delete(kube, &ref, NULL, NULL, &result), &result,
              "delete HTTPRoute");
  }

  /* unknown kind: discovery refreshes once, then says so */
  err = m3b_kube_resolve(kube, "apps/v1", "NoSuchKind", resource,
                         sizeof(resource), &namespaced, &result);
  assert_int_equal(err, M3B_ERR_KUBE_NOT_FOUND);
  assert_non_null(strstr(result.errstr, "NoSuchKind"));
  err = m3b_kube_resolve(kube, "nosuch.example.com/v1", "Thing", resource,
                         sizeof(resource), &namespaced, &result);
  assert_int_equal(err, M3B_ERR_KUBE_NOT_FOUND);
  print_message("unknown group: %s\n", result.errstr);
  json_decref(deploy);
  json_decref(route);
  m3b_kube_destroy(kube);
}

#define LIST_OBJECTS 7

/* Records what m3b_kube_list_pages hands over, page by page. */
struct pages {
  size_t count, items, largest;
  size_t stop_at;    /* non-zero: fail this page */
  int metadata_only; /* count items with data and with labels */
  size_t with_data, labelled;
};

static m3b_err_t on_page(json_t *items, void *opaque) {
  struct pages *pages = opaque;
  size_t n = json_array_size(items);
  pages->count++;
  pages->items += n;
  if (n > pages->largest)
    pages->largest = n;
  if (pages->metadata_only) {
    size_t i;
    for (i = 0; i < n; i++) {
      json_t *item = json_array_get(items, i);
      pages->with_data += json_object_get(item, "data") != NULL;
      pages->labelled +=
          json_object_get(
              json_object_get(json_object_get(item, "metadata"), "labels"),
              "m3-test") != NULL;
    }
  }
  json_decref(items); /* ConfigMaps: nothing to wipe */
  return pages->count == pages->stop_at ? M3B_ERR_LIMIT : M3B_OK;
}

static void test_list_paginated(void **state) {
  m3b_kube_t *kube = listener_client();
  struct m3b_kube_result result;
  struct m3b_kube_ref ref = {"v1", "ConfigMap", NS, NULL};
  char name[128], selector[128], rv[64] = "";
  json_t *items = NULL;
  int i;
  (void)state;

  for (i = 0; i < LIST_OBJECTS; i++) {
    char what[32];
    json_t *cm;
    snprintf(what, sizeof(what), "list-%d", i);
    name_of(name, sizeof(name), what);
    cm = configmap(name, "x", prefix);
    expect_ok(m3b_kube_apply(kube, cm, "m3bridge", NULL, NULL, &result),
              &result, "apply for list");
    json_decref(cm);
  }
  /* one unlabelled object that must not show up */
  {
    json_t *cm = configmap("", "x", "other");
    name_of(name, sizeof(name), "list-other");
    json_object_set_new(json_object_get(cm, "metadata"), "name",
                        json_string(name));
    expect_ok(m3b_kube_apply(kube, cm, "m3bridge", NULL, NULL, &result),
              &result, "apply other");
    json_decref(cm);
  }
  snprintf(selector, sizeof(selector), "m3-test=%s", prefix);
  expect_ok(
      m3b_kube_list(kube, &ref, selector, 2, &items, rv, sizeof(rv), &result),
      &result, "list");
  assert_int_equal(json_array_size(items), LIST_OBJECTS);
  assert_true(rv[0]);
  json_decref(items);

  /* the same, a page at a time: never more than the page limit at once */
  {
    struct pages pages;
    memset(&pages, 0, sizeof(pages));
    rv[0] = '\0';
    expect_ok(m3b_kube_list_pages(kube, &ref, selector, 2, 0, on_page, &pages,
                                  rv, sizeof(rv), &result),
              &result, "list pages");
    assert_int_equal(pages.items, LIST_OBJECTS);
    assert_int_equal(pages.count, (LIST_OBJECTS + 1) / 2);
    assert_int_equal(pages.largest, 2);
    assert_true(rv[0]);
    /* a callback's error stops the list there and is returned */
    memset(&pages, 0, sizeof(pages));
    pages.stop_at = 2;
    assert_int_equal(m3b_kube_list_pages(kube, &ref, selector, 2, 0, on_page,
                                         &pages, NULL, 0, &result),
                     M3B_ERR_LIMIT);
    assert_int_equal(pages.count, 2);
    /* metadata only: labels and names, no data */
    memset(&pages, 0, sizeof(pages));
    pages.metadata_only = 1;
    expect_ok(m3b_kube_list_pages(kube, &ref, selector, 0,
                                  M3B_KUBE_LIST_METADATA, on_page, &pages, NULL,
                                  0, &result),
              &result, "list metadata");
    assert_int_equal(pages.items, LIST_OBJECTS);
    assert_int_equal(pages.with_data, 0);
    assert_int_equal(pages.labelled, LIST_OBJECTS);
  }

  for (i = 0; i < LIST_OBJECTS; i++) {
    char what[32];
    snprintf(what, sizeof(what), "list-%d", i);
    name_of(name, sizeof(name), what);
    ref.name = name;
    expect_ok(m3b_kube_delete(kube, &ref, NULL, NULL, &result), &result,
              "delete");
  }
  name_of(name, sizeof(name), "list-other");
  ref.name = name;
  expect_ok(m3b_kube_delete(kube, &ref, NULL, NULL, &result), &result,
            "delete");
  m3b_kube_destroy(kube);
}

/* ---- watch ---- */

struct seen {
  char name[128];
  int added, modified, deleted;
};

static int on_event(m3b_kube_event_type_t type, json_t *object, void *opaque) {
  struct seen *seen = opaque;
  const char *name = json_string_value(
      json_object_get(json_object_get(object, "metadata"), "name"));
  if (!name || strcmp(name, seen->name) != 0)
    return 0;
  if (type == M3B_KUBE_ADDED)
    seen->added++;
  else if (type == M3B_KUBE_MODIFIED)
    seen->modified++;
  else if (type == M3B_KUBE_DELETED)
    seen->deleted++;
  return seen->deleted > 0; /* done */
}

struct writer {
  char name[128];
  m3b_kube_t *kube;
};

static void *write_objects(void *arg) {
  struct writer *w = arg;
  struct m3b_kube_result result;
  struct m3b_kube_ref ref = {"v1", "ConfigMap", NS, w->name};
  json_t *cm;
  {
    struct timespec pause = {0, 300 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  cm = configmap(w->name, "one", prefix);
  m3b_kube_apply(w->kube, cm, "m3bridge", NULL, NULL, &result);
  json_decref(cm);
  cm = configmap(w->name, "two", prefix);
  m3b_kube_apply(w->kube, cm, "m3bridge", NULL, NULL, &result);
  json_decref(cm);
  m3b_kube_delete(w->kube, &ref, NULL, NULL, &result);
  return NULL;
}

static void test_watch_sees_changes(void **state) {
  m3b_kube_t *kube = listener_client();
  struct m3b_kube_result result;
  struct m3b_kube_ref ref = {"v1", "ConfigMap", NS, NULL};
  struct seen seen;
  struct writer w;
  char selector[128], rv[64] = "";
  json_t *items = NULL;
  pthread_t thread;
  m3b_err_t err;
  (void)state;

  memset(&seen, 0, sizeof(seen));
  name_of(seen.name, sizeof(seen.name), "watched");
  snprintf(w.name, sizeof(w.name), "%s", seen.name);
  w.kube = kube; /* the same client from another thread */
  snprintf(selector, sizeof(selector), "m3-test=%s", prefix);
  expect_ok(
      m3b_kube_list(kube, &ref, selector, 0, &items, rv, sizeof(rv), &result),
      &result, "list before watch");
  json_decref(items);
  assert_int_equal(pthread_create(&thread, NULL, write_objects, &w), 0);
  err = m3b_kube_watch(kube, &ref, selector, rv, 20, NULL, on_event, &seen,
                       &result);
  pthread_join(thread, NULL);
  expect_ok(err, &result, "watch");
  assert_int_equal(seen.added, 1);
  assert_true(seen.modified >= 1);
  assert_int_equal(seen.deleted, 1);

  /* the stop flag ends a quiet watch */
  {
    atomic_int stop;
    time_t t0 = time(NULL);
    atomic_init(&stop, 1);
    err = m3b_kube_watch(kube, &ref, selector, NULL, 30, &stop, on_event, &seen,
                         &result);
    assert_int_equal(err, M3B_OK);
    assert_true(time(NULL) - t0 < 10);
  }
  m3b_kube_destroy(kube);
}

/* ---- errors ---- */

static void test_forbidden_outside_bound_namespaces(void **state) {
  m3b_kube_t *kube = listener_client();
  struct m3b_kube_result result;
  char name[128];
  json_t *cm;
  m3b_err_t err;
  (void)state;

  name_of(name, sizeof(name), "forbidden");
  cm = configmap(name, "x", "forbidden");
  json_object_set_new(json_object_get(cm, "metadata"), "namespace",
                      json_string("default"));
  err = m3b_kube_apply(kube, cm, "m3bridge", NULL, NULL, &result);
  assert_int_equal(err, M3B_ERR_KUBE_FORBIDDEN);
  assert_int_equal(result.http_status, 403);
  assert_non_null(strstr(result.errstr, "forbidden"));
  print_message("403: %s\n", result.errstr);
  json_decref(cm);
  m3b_kube_destroy(kube);
}

static void test_invalid_object(void **state) {
  m3b_kube_t *kube = listener_client();
  struct m3b_kube_result result;
  char name[128];
  json_t *cm;
  m3b_err_t err;
  (void)state;

  name_of(name, sizeof(name), "invalid");
  cm = configmap(name, "x", "invalid");
  json_object_set_new(cm, "data", json_integer(42));
  err = m3b_kube_apply(kube, cm, "m3bridge", NULL, NULL, &result);
  print_message("invalid: %s HTTP %ld: %s\n", m3b_err_name(err),
                result.http_status, result.errstr);
  assert_int_equal(err, M3B_ERR_KUBE_INVALID);
  assert_int_equal(result.http_status, 500); /* kubernetes#139253 */
  assert_non_null(strstr(result.errstr, ".data"));
  json_decref(cm);

  /* a schema-valid but invalid object: the validation's 422 */
  cm = configmap(name, "x", "invalid");
  json_object_set_new(json_object_get(cm, "data"), "not a valid key!",
                      json_string("x"));
  err = m3b_kube_apply(kube, cm, "m3bridge", NULL, NULL, &result);
  print_message("invalid key: %s HTTP %ld: %s\n", m3b_err_name(err),
                result.http_status, result.errstr);
  assert_int_equal(err, M3B_ERR_KUBE_INVALID);
  assert_int_equal(result.http_status, 422);
  assert_non_null(strstr(result.errstr, "not a valid key!"));
  json_decref(cm);
  m3b_kube_destroy(kube);
}

static void test_unreachable_is_transport(void **state) {
  struct m3b_kube_config cfg;
  struct m3b_kube_result result;
  struct m3b_kube_ref ref = {"v1", "ConfigMap", NS, "x"};
  char errstr[256];
  json_t *got = NULL;
  m3b_kube_t *kube;
  struct timespec t0, t1;
  m3b_err_t err;
  (void)state;

  m3b_kube_config_init(&cfg);
  cfg.server = strdup("https://127.0.0.1:1"); /* nothing listens there */
  cfg.token = strdup("unused");
  cfg.connect_timeout_ms = 2000;
  kube = m3b_kube_new(&cfg, test_log, errstr, sizeof(errstr));
  m3b_kube_config_cleanup(&cfg);
  assert_non_null(kube);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  err = m3b_kube_get(kube, &ref, &got, &result);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  print_message("closed port: %s\n", result.errstr);
  assert_int_equal(err, M3B_ERR_KUBE_TRANSPORT);
  assert_true(m3b_err_is_retriable(err));
  assert_int_equal(result.http_status, 0);
  assert_true(t1.tv_sec - t0.tv_sec < 3);
  m3b_kube_destroy(kube);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  assert_int_equal(fclose(f), 0);
}

static void test_token_rotation(void **state) {
  struct m3b_kube_config cfg;
  struct m3b_kube_result result;
  struct m3b_kube_ref ref = {"v1", "ConfigMap", NS, NULL};
  char errstr[512], token_path[256], rv[64];
  char *good;
  json_t *items = NULL;
  m3b_kube_t *kube;
  m3b_err_t err;
  (void)state;

  good = strdup(tb_read_file(tb_require("M3B_TB_KUBE_LISTENER_TOKEN_FILE")));
  assert_non_null(good);
  snprintf(token_path, sizeof(token_path), "/tmp/%s.token", prefix);
  write_file(token_path, "not-a-valid-token\n");

  m3b_kube_config_init(&cfg);
  err = m3b_kube_config_from_kubeconfig(
      &cfg, tb_require("M3B_TB_KUBE_LISTENER_KUBECONFIG"), NULL, errstr,
      sizeof(errstr));
  assert_int_equal(err, M3B_OK);
  free(cfg.token_file);
  cfg.token_file = strdup(token_path);
  kube = m3b_kube_new(&cfg, test_log, errstr, sizeof(errstr));
  m3b_kube_config_cleanup(&cfg);
  assert_non_null(kube);

  err = m3b_kube_list(kube, &ref, "m3-test=none", 0, &items, rv, sizeof(rv),
                      &result);
  print_message("bad token: %s: %s\n", m3b_err_name(err), result.errstr);
  assert_int_equal(err, M3B_ERR_KUBE_UNAUTHORIZED);
  assert_null(items);

  write_file(token_path, good);
  err = m3b_kube_list(kube, &ref, "m3-test=none", 0, &items, rv, sizeof(rv),
                      &result);
  expect_ok(err, &result, "list after rotation");
  json_decref(items);
  unlink(token_path);
  free(good);
  m3b_kube_destroy(kube);
}

static int setup(void **state) {
  const char *server = tb_require("M3B_TB_KUBE_SERVER");
  (void)state;
  tb_require_reachable("kube-apiserver", server + strlen("https://"), 5000);
  snprintf(prefix, sizeof(prefix), "m3-it-kc-%ld-%d", (long)time(NULL) % 100000,
           (int)getpid() % 10000);
  test_log = m3b_log_new(stderr, M3B_LOG_WARN);
  return test_log ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  m3b_log_destroy(test_log);
  return 0;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_configmap_lifecycle),
      cmocka_unit_test(test_deployment_and_httproute),
      cmocka_unit_test(test_list_paginated),
      cmocka_unit_test(test_watch_sees_changes),
      cmocka_unit_test(test_forbidden_outside_bound_namespaces),
      cmocka_unit_test(test_invalid_object),
      cmocka_unit_test(test_unreachable_is_transport),
      cmocka_unit_test(test_token_rotation),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
