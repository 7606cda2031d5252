/*
 * test_index_load.c - the index load against the test bed's real
 * kube-apiserver:
 *
 *   - metadata LIST pages as protobuf (M3B_KUBE_LIST_COMPACT) carry the
 *     same objects, page by page and with continue tokens, as the JSON
 *     pages, without managedFields, for a built-in kind and a CRD kind;
 *   - the parallel protobuf load (m3b_index_load) finds exactly what the
 *     old serial JSON load (M3B_INDEX_LOAD_SERIAL) finds: the same
 *     entries, listed kinds and foreign keys; a malformed object stays out;
 *   - two m3b_index_load_kinds calls running at once (the defaults and the
 *     noted kinds, as a replay does) end with the same index;
 *   - the watcher's first LIST (metadata, protobuf) finds an object deleted
 *     and one changed before it started.
 *
 * Objects live in m3-it under a plane of their own, named per run.
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

#include <m3b/index.h>
#include <m3b/kube.h>

#include "testbed_env.h"

#define NS "m3-it"
#define CM_COUNT 7
#define ROUTE_API "gateway.networking.k8s.io/v1"

static char plane[64], other_plane[64], run_label[32];

struct fixture {
  m3b_log_t *log;
  m3b_kube_t *kube; /* the listener's identity */
};

static const char *const namespaces[] = {NS};

static void nap_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* m3b_index_load_kinds, retried for a while when the answer is retriable:
 * the test bed's apiserver now and then answers 429 "storage is
 * (re)initializing" for a CRD kind, which a listener retries too. */
static m3b_err_t load_retrying(m3b_index_t *index, m3b_kube_t *kube,
                               const struct m3b_index_scope *scope,
                               unsigned flags, m3b_log_t *log,
                               size_t *loaded_out,
                               struct m3b_kube_result *result) {
  m3b_err_t err = M3B_OK;
  int attempt;
  for (attempt = 0; attempt < 20; attempt++) {
    err = m3b_index_load_kinds(index, kube, scope, flags, log, loaded_out,
                               result);
    if (!err || !m3b_err_is_retriable(err))
      break;
    print_message("load (flags %u): %s, again\n", flags, result->errstr);
    nap_ms(500);
  }
  return err;
}

/* Applies one managed object: kind in NS named name, of plane p, with
 * generation and sha (64 hex) as annotations. */
static void apply(m3b_kube_t *kube, const char *api_version, const char *kind,
                  const char *name, const char *p, int generation,
                  const char *sha) {
  struct m3b_kube_result result;
  char key[300], gen[32];
  json_t *object;
  m3b_err_t err;
  const char *slash = strchr(api_version, '/');

  snprintf(key, sizeof(key), "%s%s/%s/%s/%s", slash ? "" : "/", api_version,
           kind, NS, name);
  snprintf(gen, sizeof(gen), "%d", generation);
  object = json_pack(
      "{s:s, s:s, s:{s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s, s:s, s:s}}}",
      "apiVersion", api_version, "kind", kind, "metadata", "name", name,
      "namespace", NS, "labels", M3B_LABEL_MANAGED_BY, M3B_MANAGED_BY_VALUE,
      "m3-index-test", run_label, "annotations", M3B_ANN_PLANE, p, M3B_ANN_KEY,
      key, M3B_ANN_GENERATION, gen, M3B_ANN_SHA256, sha);
  assert_non_null(object);
  if (strcmp(kind, "ConfigMap") == 0 || strcmp(kind, "Secret") == 0)
    json_object_set_new(object, "data",
                        json_pack("{s:s}", "k", "dmFsdWU=")); /* "value" */
  else
    json_object_set_new(object, "spec", json_object());
  err =
      m3b_kube_apply(kube, object, "m3bridge-index-test", NULL, NULL, &result);
  json_decref(object);
  if (err)
    fail_msg("apply %s %s: %s: %s", kind, name, m3b_err_name(err),
             result.errstr);
}

static void remove_object(m3b_kube_t *kube, const char *api_version,
                          const char *kind, const char *name) {
  struct m3b_kube_ref ref = {api_version, kind, NS, name};
  struct m3b_kube_result result;
  (void)m3b_kube_delete(kube, &ref, NULL, NULL, &result);
}

static const char sha_a[] =
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  const char *server = tb_require("M3B_TB_KUBE_SERVER");
  char name[96];
  int i;

  tb_require_reachable("kube-apiserver", server + strlen("https://"), 5000);
  assert_non_null(f);
  snprintf(run_label, sizeof(run_label), "il-%ld-%d", (long)time(NULL) % 100000,
           (int)getpid() % 10000);
  snprintf(plane, sizeof(plane), "%s-p", run_label);
  snprintf(other_plane, sizeof(other_plane), "%s-q", run_label);
  f->log = m3b_log_new(stderr, M3B_LOG_WARN);
  f->kube = tb_kube_client("M3B_TB_KUBE_LISTENER_KUBECONFIG", f->log);
  for (i = 0; i < CM_COUNT; i++) {
    snprintf(name, sizeof(name), "%s-cm-%d", run_label, i);
    apply(f->kube, "v1", "ConfigMap", name, plane, i + 1, sha_a);
  }
  snprintf(name, sizeof(name), "%s-bad", run_label);
  apply(f->kube, "v1", "ConfigMap", name, plane, 1, "not-a-sha");
  snprintf(name, sizeof(name), "%s-foreign", run_label);
  apply(f->kube, "v1", "ConfigMap", name, other_plane, 1, sha_a);
  snprintf(name, sizeof(name), "%s-secret", run_label);
  apply(f->kube, "v1", "Secret", name, plane, 4, sha_a);
  snprintf(name, sizeof(name), "%s-route", run_label);
  apply(f->kube, ROUTE_API, "HTTPRoute", name, plane, 9, sha_a);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  char name[96];
  int i;
  for (i = 0; i < CM_COUNT; i++) {
    snprintf(name, sizeof(name), "%s-cm-%d", run_label, i);
    remove_object(f->kube, "v1", "ConfigMap", name);
  }
  snprintf(name, sizeof(name), "%s-bad", run_label);
  remove_object(f->kube, "v1", "ConfigMap", name);
  snprintf(name, sizeof(name), "%s-foreign", run_label);
  remove_object(f->kube, "v1", "ConfigMap", name);
  snprintf(name, sizeof(name), "%s-secret", run_label);
  remove_object(f->kube, "v1", "Secret", name);
  snprintf(name, sizeof(name), "%s-route", run_label);
  remove_object(f->kube, ROUTE_API, "HTTPRoute", name);
  m3b_kube_destroy(f->kube);
  m3b_log_destroy(f->log);
  free(f);
  return 0;
}

/* Pages of one list: every item's metadata, in order, and the count. */
struct pages {
  json_t *metas; /* array of metadata objects */
  size_t count, largest, managed_fields;
};

static m3b_err_t on_page(json_t *items, void *opaque) {
  struct pages *p = opaque;
  size_t i;
  p->count++;
  if (json_array_size(items) > p->largest)
    p->largest = json_array_size(items);
  for (i = 0; i < json_array_size(items); i++) {
    json_t *md = json_object_get(json_array_get(items, i), "metadata");
    if (json_object_get(md, "managedFields"))
      p->managed_fields++;
    json_array_append(p->metas, md);
  }
  json_decref(items);
  return M3B_OK;
}

static void list_both(m3b_kube_t *kube, const char *api_version,
                      const char *kind, size_t want) {
  struct m3b_kube_ref ref = {api_version, kind, NS, NULL};
  struct m3b_kube_result result;
  struct pages json_pages = {json_array(), 0, 0, 0};
  struct pages proto_pages = {json_array(), 0, 0, 0};
  char selector[128], rv_json[64] = "", rv_proto[64] = "";
  static const char *const fields[] = {"name", "namespace", "uid",
                                       "resourceVersion"};
  size_t i, f;
  m3b_err_t err;

  snprintf(selector, sizeof(selector), "m3-index-test=%s", run_label);
  err = m3b_kube_list_pages(kube, &ref, selector, 2, M3B_KUBE_LIST_METADATA,
                            on_page, &json_pages, rv_json, sizeof(rv_json),
                            &result);
  if (err)
    fail_msg("json list: %s: %s", m3b_err_name(err), result.errstr);
  err = m3b_kube_list_pages(
      kube, &ref, selector, 2, M3B_KUBE_LIST_METADATA | M3B_KUBE_LIST_COMPACT,
      on_page, &proto_pages, rv_proto, sizeof(rv_proto), &result);
  if (err)
    fail_msg("compact list: %s: %s", m3b_err_name(err), result.errstr);
  print_message("%s: %zu objects, %zu pages\n", kind,
                json_array_size(proto_pages.metas), proto_pages.count);
  assert_int_equal(json_array_size(json_pages.metas), want);
  assert_int_equal(json_array_size(proto_pages.metas), want);
  assert_int_equal(proto_pages.count, (want + 1) / 2);
  assert_int_equal(proto_pages.largest, want < 2 ? want : 2);
  assert_true(rv_proto[0] != '\0');
  assert_int_equal(json_pages.managed_fields, want); /* JSON carries them */
  assert_int_equal(proto_pages.managed_fields, 0);
  for (i = 0; i < want; i++) {
    json_t *a = json_array_get(json_pages.metas, i);
    json_t *b = json_array_get(proto_pages.metas, i);
    for (f = 0; f < sizeof(fields) / sizeof(fields[0]); f++)
      assert_string_equal(json_string_value(json_object_get(b, fields[f])),
                          json_string_value(json_object_get(a, fields[f])));
    assert_int_equal(json_integer_value(json_object_get(b, "generation")),
                     json_integer_value(json_object_get(a, "generation")));
    assert_true(
        json_equal(json_object_get(b, "labels"), json_object_get(a, "labels")));
    assert_true(json_equal(json_object_get(b, "annotations"),
                           json_object_get(a, "annotations")));
  }
  json_decref(json_pages.metas);
  json_decref(proto_pages.metas);
}

static void test_compact_pages_match_json(void **state) {
  struct fixture *f = *state;
  /* 7 of the plane, the malformed one and the foreign one */
  list_both(f->kube, "v1", "ConfigMap", CM_COUNT + 2);
  list_both(f->kube, ROUTE_API, "HTTPRoute", 1);
}

static struct m3b_index_scope scope_of(void) {
  struct m3b_index_scope scope = {plane, namespaces, 1, NULL, 0};
  return scope;
}

/* Loads a fresh index with flags (after a reset); fails the test on error. */
static m3b_index_t *load(struct fixture *f, unsigned flags) {
  struct m3b_index_scope scope = scope_of();
  struct m3b_kube_result result;
  m3b_index_t *index = m3b_index_new(NULL, 0);
  size_t loaded = 0;
  m3b_err_t err;
  assert_non_null(index);
  m3b_index_load_reset(index);
  err = load_retrying(index, f->kube, &scope, flags, f->log, &loaded, &result);
  if (err)
    fail_msg("load (flags %u): %s: %s", flags, m3b_err_name(err),
             result.errstr);
  assert_int_equal(loaded, m3b_index_count(index));
  return index;
}

struct compare {
  m3b_index_t *other;
  size_t checked;
};

static int same_entry(const char *key, const struct m3b_index_entry *entry,
                      void *opaque) {
  struct compare *c = opaque;
  struct m3b_index_entry there;
  if (m3b_index_get(c->other, key, &there) != M3B_OK)
    fail_msg("%s is in one index only", key);
  assert_int_equal(there.generation, entry->generation);
  assert_memory_equal(there.manifest_sha256, entry->manifest_sha256, 32);
  assert_string_equal(there.uid, entry->uid);
  assert_string_equal(there.resource_version, entry->resource_version);
  assert_int_equal(there.object_generation, entry->object_generation);
  c->checked++;
  return 0;
}

/* a and b hold the same entries, listed kinds and foreign keys, and what
 * this run created is there. */
static void expect_same(m3b_index_t *a, m3b_index_t *b) {
  struct compare c = {b, 0};
  struct m3b_index_entry entry;
  char key[300];
  int i;

  assert_int_equal(m3b_index_count(a), m3b_index_count(b));
  m3b_index_each(a, same_entry, &c);
  assert_int_equal(c.checked, m3b_index_count(a));
  for (i = 0; i < CM_COUNT; i++) {
    snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s-cm-%d", run_label, i);
    assert_int_equal(m3b_index_get(b, key, &entry), M3B_OK);
    assert_int_equal(entry.generation, i + 1);
    assert_true(entry.uid[0] && entry.resource_version[0]);
  }
  snprintf(key, sizeof(key), "/v1/Secret/" NS "/%s-secret", run_label);
  assert_int_equal(m3b_index_get(b, key, &entry), M3B_OK);
  assert_int_equal(entry.generation, 4);
  snprintf(key, sizeof(key), ROUTE_API "/HTTPRoute/" NS "/%s-route", run_label);
  assert_int_equal(m3b_index_get(b, key, &entry), M3B_OK);
  assert_int_equal(entry.generation, 9);
  assert_int_equal(entry.object_generation, 1); /* a CRD kind's metadata */
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s-bad", run_label);
  assert_int_equal(m3b_index_get(b, key, &entry), M3B_ERR_NOT_FOUND);
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s-foreign", run_label);
  assert_int_equal(m3b_index_get(b, key, &entry), M3B_ERR_NOT_FOUND);
  assert_true(m3b_index_foreign(a, key));
  assert_true(m3b_index_foreign(b, key));
  assert_true(m3b_index_listed(a, "v1", "ConfigMap"));
  assert_true(m3b_index_listed(b, "v1", "ConfigMap"));
  assert_true(m3b_index_listed(a, ROUTE_API, "HTTPRoute"));
  assert_true(m3b_index_listed(b, ROUTE_API, "HTTPRoute"));
}

static void test_parallel_load_equals_serial(void **state) {
  struct fixture *f = *state;
  m3b_index_t *serial =
      load(f, M3B_INDEX_LOAD_DEFAULTS | M3B_INDEX_LOAD_SERIAL);
  m3b_index_t *parallel = m3b_index_new(NULL, 0);
  struct m3b_index_scope scope = scope_of();
  struct m3b_kube_result result;
  size_t loaded = 0;
  m3b_err_t err;

  assert_non_null(parallel);
  err = load_retrying(parallel, f->kube, &scope,
                      M3B_INDEX_LOAD_DEFAULTS | M3B_INDEX_LOAD_NOTED, f->log,
                      &loaded, &result);
  if (err)
    fail_msg("parallel load: %s: %s", m3b_err_name(err), result.errstr);
  print_message("loaded %zu entries serially and in parallel\n", loaded);
  expect_same(serial, parallel);
  expect_same(parallel, serial);
  m3b_index_destroy(serial);
  m3b_index_destroy(parallel);
}

struct load_thread {
  struct fixture *f;
  m3b_index_t *index;
  unsigned flags;
  m3b_err_t err;
  struct m3b_kube_result result;
};

static void *load_thread(void *opaque) {
  struct load_thread *t = opaque;
  struct m3b_index_scope scope = scope_of();
  t->err = load_retrying(t->index, t->f->kube, &scope, t->flags, t->f->log,
                         NULL, &t->result);
  return NULL;
}

/* What a replay does: the defaults on one thread while it reads, the kinds
 * its records named on another. A noted default kind is no extra kind, so
 * a kind outside the defaults is noted too: one this cluster does not
 * serve, which counts as listed. */
static void test_concurrent_loads(void **state) {
  struct fixture *f = *state;
  m3b_index_t *serial =
      load(f, M3B_INDEX_LOAD_DEFAULTS | M3B_INDEX_LOAD_SERIAL);
  m3b_index_t *index = m3b_index_new(NULL, 0);
  struct load_thread defaults, noted;
  pthread_t a, b;

  assert_non_null(index);
  assert_int_equal(
      m3b_index_note_kind(index, "nothere.m3bridge.test/v1", "Gadget"), M3B_OK);
  m3b_index_load_reset(index);
  memset(&defaults, 0, sizeof(defaults));
  memset(&noted, 0, sizeof(noted));
  defaults.f = noted.f = f;
  defaults.index = noted.index = index;
  defaults.flags = M3B_INDEX_LOAD_DEFAULTS;
  noted.flags = M3B_INDEX_LOAD_NOTED;
  assert_int_equal(pthread_create(&a, NULL, load_thread, &defaults), 0);
  assert_int_equal(pthread_create(&b, NULL, load_thread, &noted), 0);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  if (defaults.err || noted.err)
    fail_msg("concurrent loads: %s (%s), %s (%s)", m3b_err_name(defaults.err),
             defaults.result.errstr, m3b_err_name(noted.err),
             noted.result.errstr);
  expect_same(serial, index);
  expect_same(index, serial);
  assert_true(m3b_index_listed(index, "nothere.m3bridge.test/v1", "Gadget"));
  assert_false(m3b_index_listed(serial, "nothere.m3bridge.test/v1", "Gadget"));
  /* a reset forgets what the loads found, not the entries */
  m3b_index_load_reset(index);
  assert_false(m3b_index_listed(index, "v1", "ConfigMap"));
  assert_int_equal(m3b_index_count(index), m3b_index_count(serial));
  m3b_index_destroy(serial);
  m3b_index_destroy(index);
}

/* Polls until key's entry is drifted (1) or 10 s passed (0). */
static int becomes_drifted(m3b_index_t *index, const char *key) {
  int i;
  for (i = 0; i < 200; i++) {
    struct m3b_index_entry entry;
    if (m3b_index_get(index, key, &entry) == M3B_OK && entry.drifted)
      return 1;
    nap_ms(50);
  }
  return 0;
}

/* The watcher's first LIST (metadata pages as protobuf) compares the
 * cluster with the index: changes made before it started, which no WATCH
 * event will ever tell, are found by it alone. Runs last: it deletes and
 * changes objects the other tests count. */
static void test_watcher_relist_finds_changes(void **state) {
  struct fixture *f = *state;
  m3b_index_t *index = load(f, M3B_INDEX_LOAD_DEFAULTS);
  struct m3b_index_watch_config cfg;
  struct m3b_index_entry entry;
  m3b_index_watcher_t *watcher;
  char name[96], gone[300], changed[300], same[300], errstr[256] = "";
  static const char sha_b[] =
      "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

  snprintf(gone, sizeof(gone), "/v1/ConfigMap/" NS "/%s-cm-5", run_label);
  snprintf(changed, sizeof(changed), "/v1/ConfigMap/" NS "/%s-cm-6", run_label);
  snprintf(same, sizeof(same), "/v1/ConfigMap/" NS "/%s-cm-0", run_label);
  snprintf(name, sizeof(name), "%s-cm-5", run_label);
  remove_object(f->kube, "v1", "ConfigMap", name);
  snprintf(name, sizeof(name), "%s-cm-6", run_label);
  apply(f->kube, "v1", "ConfigMap", name, plane, 7, sha_b); /* same gen */

  memset(&cfg, 0, sizeof(cfg));
  cfg.plane = plane;
  cfg.scan_ms = 100;
  watcher = m3b_index_watcher_new(index, f->kube, &cfg, f->log, errstr,
                                  sizeof(errstr));
  if (!watcher)
    fail_msg("m3b_index_watcher_new: %s", errstr);
  assert_true(becomes_drifted(index, gone));
  assert_true(becomes_drifted(index, changed));
  assert_int_equal(m3b_index_get(index, same, &entry), M3B_OK);
  assert_false(entry.drifted);
  m3b_index_watcher_destroy(watcher);
  m3b_index_destroy(index);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_compact_pages_match_json),
      cmocka_unit_test(test_parallel_load_equals_serial),
      cmocka_unit_test(test_concurrent_loads),
      cmocka_unit_test(test_watcher_relist_finds_changes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
