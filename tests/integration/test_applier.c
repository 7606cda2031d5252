/*
 * test_applier.c - the listener's applier against the test bed's real
 * kube-apiserver, as the listener identity (bound namespaces shop and
 * m3-it), plane "it", in namespace m3-it with per-run names:
 *
 *   - apply creates the object with the managed-by label and the
 *     m3bridge.io annotations; the same event again writes nothing
 *     (resourceVersion unchanged); a higher generation updates it; a lower
 *     or equal one is STALE_SKIPPED and leaves it as it was;
 *   - a higher generation with the manifest already applied still moves
 *     the generation annotation, so a restarted listener refuses an older
 *     event published after it;
 *   - the index: a new applier loads it by LIST, and one that did not load
 *     finds the applied generation on the live object;
 *   - DELETE removes a managed object, refuses an unmanaged one of the same
 *     name (REJECTED NOT_MANAGED, still there), and counts a missing one
 *     as DELETED;
 *   - a Secret with sealed data arrives with its plaintext value, and no
 *     sealed text reaches the apiserver;
 *   - an invalid object (422) is FAILED with a dlq record, no retry;
 *   - an unreachable apiserver is retriable, without status or dlq.
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

#include <m3b/applier.h>
#include <m3b/schema.h>
#include <m3b/seal_manifest.h>

#include "../common/test_record.h"
#include "testbed_env.h"

#define NS "m3-it"
#define PLANE "it"

static char prefix[64];

struct fixture {
  m3b_log_t *log;
  m3b_schema_registry_t *registry;
  m3b_codec_t *codec;
  m3b_sign_key_t *signer;
  m3b_keyring_t *ring;
  m3b_seal_key_t *seal_key;
  m3b_kube_t *kube;  /* listener identity */
  m3b_kube_t *admin; /* for reading back */
};

static const char *const namespaces[] = {"shop", NS};
static const char *const cluster_kinds[] = {"Namespace"};

static m3b_applier_t *new_applier(struct fixture *f, m3b_kube_t *kube) {
  struct m3b_applier_config cfg;
  char errstr[512] = "";
  m3b_applier_t *applier;

  memset(&cfg, 0, sizeof(cfg));
  cfg.plane = PLANE;
  cfg.listener_id = "it-listener-0";
  cfg.namespaces = namespaces;
  cfg.namespace_count = 2;
  cfg.cluster_kinds = cluster_kinds;
  cfg.cluster_kind_count = 1;
  cfg.codec = f->codec;
  applier = m3b_applier_new(&cfg, kube, f->ring, f->seal_key, f->log, errstr,
                            sizeof(errstr));
  if (!applier)
    fail_msg("m3b_applier_new: %s", errstr);
  return applier;
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  const char *server = tb_require("M3B_TB_KUBE_SERVER");
  char errstr[256] = "";

  tb_require_reachable("kube-apiserver", server + strlen("https://"), 5000);
  snprintf(prefix, sizeof(prefix), "m3-it-ap-%ld-%d", (long)time(NULL) % 100000,
           (int)getpid() % 10000);
  assert_non_null(f);
  f->log = m3b_log_new(stderr, M3B_LOG_WARN);
  f->registry = m3b_schema_registry_new_builtin(errstr, sizeof(errstr));
  f->codec = m3b_codec_new(f->registry, NULL, errstr, sizeof(errstr));
  f->signer = m3b_sign_key_generate(errstr, sizeof(errstr));
  f->ring = m3b_keyring_new(errstr, sizeof(errstr));
  f->seal_key = m3b_seal_key_generate(errstr, sizeof(errstr));
  assert_non_null(f->codec);
  assert_non_null(f->signer);
  assert_non_null(f->ring);
  assert_non_null(f->seal_key);
  assert_int_equal(m3b_keyring_add_sign_key(f->ring, f->signer), M3B_OK);
  f->kube = tb_kube_client("M3B_TB_KUBE_LISTENER_KUBECONFIG", f->log);
  f->admin = tb_kube_client("M3B_TB_KUBE_ADMIN_KUBECONFIG", f->log);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  m3b_kube_destroy(f->kube);
  m3b_kube_destroy(f->admin);
  m3b_seal_key_destroy(f->seal_key);
  m3b_keyring_destroy(f->ring);
  m3b_sign_key_destroy(f->signer);
  m3b_codec_destroy(f->codec);
  m3b_schema_registry_destroy(f->registry);
  m3b_log_destroy(f->log);
  free(f);
  return 0;
}

static void configmap(char *out, size_t size, const char *name,
                      const char *value) {
  snprintf(out, size,
           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
           "\"name\":\"%s\",\"namespace\":\"" NS "\",\"labels\":{\"app\":"
           "\"web\"}},\"data\":{\"greeting\":\"%s\"}}",
           name, value);
}

/* Builds, signs and processes one event; returns the outcome in *out. */
static m3b_err_t run(struct fixture *f, m3b_applier_t *applier, const char *key,
                     int64_t generation, enum m3b_op op, const char *manifest,
                     struct m3b_outcome *out) {
  struct test_record tr;
  struct tr_spec spec;
  m3b_err_t err;

  memset(&spec, 0, sizeof(spec));
  spec.plane = PLANE;
  spec.rec_key = key;
  spec.generation = generation;
  spec.op = op;
  spec.manifest = manifest;
  tr_build(&tr, f->codec, f->signer, &spec);
  err = m3b_applier_process(applier, &tr.rec, out);
  print_message("gen %lld %s: %s %s %s\n", (long long)generation,
                m3b_op_name(op), m3b_phase_name(out->phase),
                out->reason ? out->reason : "", out->message);
  tr_cleanup(&tr);
  return err;
}

static void expect_phase(const struct m3b_outcome *out, enum m3b_phase phase) {
  if (out->phase != phase || (phase != M3B_PHASE_STALE_SKIPPED && out->err))
    fail_msg("want %s, got %s %s: %s", m3b_phase_name(phase),
             m3b_phase_name(out->phase), m3b_err_name(out->err), out->message);
  assert_int_equal(out->retriable, 0);
  assert_int_equal(out->dlq, 0);
  assert_int_equal(out->status, 1);
}

static json_t *get_object(m3b_kube_t *kube, const char *api_version,
                          const char *kind, const char *name) {
  struct m3b_kube_ref ref = {api_version, kind, NS, name};
  struct m3b_kube_result result;
  json_t *obj = NULL;
  m3b_err_t err = m3b_kube_get(kube, &ref, &obj, &result);
  if (err == M3B_ERR_KUBE_NOT_FOUND)
    return NULL;
  if (err)
    fail_msg("get %s: %s", name, result.errstr);
  return obj;
}

static const char *meta_str(const json_t *obj, const char *field) {
  return json_string_value(
      json_object_get(json_object_get(obj, "metadata"), field));
}

static const char *annotation(const json_t *obj, const char *name) {
  return json_string_value(json_object_get(
      json_object_get(json_object_get(obj, "metadata"), "annotations"), name));
}

static const char *greeting(const json_t *obj) {
  return json_string_value(
      json_object_get(json_object_get(obj, "data"), "greeting"));
}

static void delete_quietly(m3b_kube_t *kube, const char *kind,
                           const char *name) {
  struct m3b_kube_ref ref = {"v1", kind, NS, name};
  struct m3b_kube_result result;
  (void)m3b_kube_delete(kube, &ref, NULL, NULL, &result);
}

static void test_apply_stale_and_delete(void **state) {
  struct fixture *f = *state;
  m3b_applier_t *applier = new_applier(f, f->kube);
  struct m3b_outcome out;
  char name[128], key[256], manifest[1024], rv[64];
  json_t *obj;

  snprintf(name, sizeof(name), "%s-cm", prefix);
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s", name);

  /* apply creates it, labelled and annotated */
  configmap(manifest, sizeof(manifest), name, "one");
  run(f, applier, key, 10, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);
  assert_int_equal(out.noop, 0);
  assert_true(out.uid[0] && out.resource_version[0]);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_non_null(obj);
  assert_string_equal(greeting(obj), "one");
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(obj, "metadata"), "labels"),
          M3B_LABEL_MANAGED_BY)),
      "m3bridge");
  assert_string_equal(annotation(obj, M3B_ANN_PLANE), PLANE);
  assert_string_equal(annotation(obj, M3B_ANN_KEY), key);
  assert_string_equal(annotation(obj, M3B_ANN_GENERATION), "10");
  assert_int_equal(strlen(annotation(obj, M3B_ANN_SHA256)), 64);
  assert_string_equal(annotation(obj, M3B_ANN_RELEASE), "rel-1");
  assert_string_equal(meta_str(obj, "uid"), out.uid);
  snprintf(rv, sizeof(rv), "%s", meta_str(obj, "resourceVersion"));
  json_decref(obj);

  /* the same event again: no write */
  run(f, applier, key, 10, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);
  assert_int_equal(out.noop, 1);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_string_equal(meta_str(obj, "resourceVersion"), rv);
  json_decref(obj);

  /* a higher generation with a changed manifest updates it */
  configmap(manifest, sizeof(manifest), name, "two");
  run(f, applier, key, 11, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);
  assert_int_equal(out.noop, 0);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_string_equal(greeting(obj), "two");
  assert_string_equal(annotation(obj, M3B_ANN_GENERATION), "11");
  snprintf(rv, sizeof(rv), "%s", meta_str(obj, "resourceVersion"));
  json_decref(obj);

  /* lower, and equal with another manifest: skipped, object unchanged */
  configmap(manifest, sizeof(manifest), name, "old");
  run(f, applier, key, 9, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_STALE_SKIPPED);
  assert_int_equal(out.err, M3B_ERR_STALE);
  run(f, applier, key, 11, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_STALE_SKIPPED);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_string_equal(greeting(obj), "two");
  assert_string_equal(meta_str(obj, "resourceVersion"), rv);
  json_decref(obj);

  /* a stale DELETE deletes nothing */
  run(f, applier, key, 11, M3B_OP_DELETE, "", &out);
  expect_phase(&out, M3B_PHASE_STALE_SKIPPED);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_non_null(obj);
  json_decref(obj);

  /* DELETE removes it; again is a no-op; an older APPLY cannot revive it */
  run(f, applier, key, 12, M3B_OP_DELETE, "", &out);
  expect_phase(&out, M3B_PHASE_DELETED);
  assert_true(out.uid[0]);
  assert_null(get_object(f->kube, "v1", "ConfigMap", name));
  run(f, applier, key, 12, M3B_OP_DELETE, "", &out);
  expect_phase(&out, M3B_PHASE_DELETED);
  assert_int_equal(out.noop, 1);
  configmap(manifest, sizeof(manifest), name, "two");
  run(f, applier, key, 11, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_STALE_SKIPPED);
  assert_null(get_object(f->kube, "v1", "ConfigMap", name));

  m3b_applier_destroy(applier);
}

/* A higher generation with the manifest already applied is written (only
 * the generation annotation changes): the object is the listener's only
 * memory across restarts, and without it an older event published after
 * the newer one would pass the stale guard of a restarted listener. */
static void test_unchanged_manifest_moves_generation(void **state) {
  struct fixture *f = *state;
  m3b_applier_t *applier = new_applier(f, f->kube);
  m3b_applier_t *restarted = new_applier(f, f->kube);
  struct m3b_outcome out;
  char name[128], key[256], manifest[1024], older[1024];
  json_t *obj;

  snprintf(name, sizeof(name), "%s-same", prefix);
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s", name);
  configmap(manifest, sizeof(manifest), name, "same");
  run(f, applier, key, 20, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);
  run(f, applier, key, 22, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_string_equal(annotation(obj, M3B_ANN_GENERATION), "22");
  json_decref(obj);

  /* a restarted listener (nothing in its index) still refuses 21 */
  configmap(older, sizeof(older), name, "older");
  run(f, restarted, key, 21, M3B_OP_APPLY, older, &out);
  expect_phase(&out, M3B_PHASE_STALE_SKIPPED);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_string_equal(greeting(obj), "same");
  json_decref(obj);

  run(f, applier, key, 23, M3B_OP_DELETE, "", &out);
  expect_phase(&out, M3B_PHASE_DELETED);
  m3b_applier_destroy(applier);
  m3b_applier_destroy(restarted);
}

static void test_index_load_and_live_fallback(void **state) {
  struct fixture *f = *state;
  m3b_applier_t *first = new_applier(f, f->kube);
  m3b_applier_t *loaded = new_applier(f, f->kube);
  m3b_applier_t *fresh = new_applier(f, f->kube);
  struct m3b_index_entry entry;
  struct m3b_outcome out;
  char name[128], key[256], manifest[1024], errstr[512] = "";
  size_t count = 0;
  int attempt;
  m3b_err_t err;

  snprintf(name, sizeof(name), "%s-idx", prefix);
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s", name);
  configmap(manifest, sizeof(manifest), name, "indexed");
  run(f, first, key, 7, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);

  /* a restarted listener finds it by LIST */
  /* as the listener would: retry transient failures (a CRD's storage
   * may be re-initializing: 429) */
  for (attempt = 0;; attempt++) {
    err = m3b_applier_load_index(loaded, &count, errstr, sizeof(errstr));
    if (!err || !m3b_err_is_retriable(err) || attempt == 20)
      break;
    nanosleep(&(struct timespec){0, 500 * 1000 * 1000}, NULL);
  }
  if (err)
    fail_msg("load: %s", errstr);
  print_message("index loaded %zu entries\n", count);
  assert_true(count >= 1);
  assert_int_equal(m3b_index_get(m3b_applier_index(loaded), key, &entry),
                   M3B_OK);
  assert_int_equal(entry.generation, 7);
  assert_string_equal(entry.uid, out.uid);
  run(f, loaded, key, 7, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);
  assert_int_equal(out.noop, 1);

  /* one that never loaded reads the live object's annotations */
  run(f, fresh, key, 6, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_STALE_SKIPPED);

  run(f, first, key, 8, M3B_OP_DELETE, "", &out);
  expect_phase(&out, M3B_PHASE_DELETED);
  m3b_applier_destroy(first);
  m3b_applier_destroy(loaded);
  m3b_applier_destroy(fresh);
}

static void test_delete_unmanaged_and_missing(void **state) {
  struct fixture *f = *state;
  m3b_applier_t *applier = new_applier(f, f->kube);
  struct m3b_kube_result result;
  struct m3b_outcome out;
  char name[128], key[256];
  json_t *cm, *obj;
  m3b_err_t err;

  snprintf(name, sizeof(name), "%s-unmanaged", prefix);
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s", name);
  cm = json_pack("{s:s, s:s, s:{s:s, s:s}, s:{s:s}}", "apiVersion", "v1",
                 "kind", "ConfigMap", "metadata", "name", name, "namespace", NS,
                 "data", "owner", "someone else");
  err = m3b_kube_apply(f->kube, cm, "m3-test", NULL, NULL, &result);
  if (err)
    fail_msg("apply unmanaged: %s", result.errstr);
  json_decref(cm);

  err = run(f, applier, key, 1, M3B_OP_DELETE, "", &out);
  assert_int_equal(err, M3B_ERR_NOT_MANAGED);
  assert_int_equal(out.phase, M3B_PHASE_REJECTED);
  assert_string_equal(out.reason, "NOT_MANAGED");
  assert_int_equal(out.dlq, 1);
  assert_int_equal(out.retriable, 0);
  obj = get_object(f->kube, "v1", "ConfigMap", name);
  assert_non_null(obj);
  json_decref(obj);
  delete_quietly(f->kube, "ConfigMap", name);

  /* a missing object is deleted already */
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s-never", prefix);
  run(f, applier, key, 1, M3B_OP_DELETE, "", &out);
  expect_phase(&out, M3B_PHASE_DELETED);
  m3b_applier_destroy(applier);
}

static void test_sealed_secret(void **state) {
  struct fixture *f = *state;
  m3b_applier_t *applier = new_applier(f, f->kube);
  uint8_t pub[M3B_SEAL_PUBLIC_LEN];
  struct m3b_outcome out;
  char name[128], key[256], errstr[256] = "";
  char *manifest, *dump;
  json_t *secret, *obj;

  snprintf(name, sizeof(name), "%s-secret", prefix);
  snprintf(key, sizeof(key), "/v1/Secret/" NS "/%s", name);
  /* "czNjcmV0IQ==" is base64 of "s3cret!" */
  secret =
      json_pack("{s:s, s:s, s:{s:s, s:s}, s:s, s:{s:s}}", "apiVersion", "v1",
                "kind", "Secret", "metadata", "name", name, "namespace", NS,
                "type", "Opaque", "data", "password", "czNjcmV0IQ==");
  m3b_seal_key_public(f->seal_key, pub);
  if (m3b_seal_manifest(secret, pub, key, errstr, sizeof(errstr)))
    fail_msg("seal: %s", errstr);
  manifest = json_dumps(secret, JSON_COMPACT);
  assert_non_null(strstr(manifest, M3B_SEAL_TEXT_PREFIX));
  assert_null(strstr(manifest, "czNjcmV0IQ=="));

  run(f, applier, key, 1, M3B_OP_APPLY, manifest, &out);
  expect_phase(&out, M3B_PHASE_APPLIED);

  obj = get_object(f->admin, "v1", "Secret", name);
  assert_non_null(obj);
  assert_string_equal(json_string_value(json_object_get(
                          json_object_get(obj, "data"), "password")),
                      "czNjcmV0IQ==");
  dump = json_dumps(obj, JSON_COMPACT);
  assert_null(strstr(dump, "m3bridge:sealed")); /* not in data, annotations
                                                   or managedFields */
  free(dump);
  json_decref(obj);

  /* the same sealed data moved to another object does not open */
  {
    char other[256];
    char *moved;
    snprintf(other, sizeof(other), "%s-moved", name);
    json_object_set_new(json_object_get(secret, "metadata"), "name",
                        json_string(other));
    moved = json_dumps(secret, JSON_COMPACT);
    snprintf(other, sizeof(other), "/v1/Secret/" NS "/%s-moved", name);
    run(f, applier, other, 1, M3B_OP_APPLY, moved, &out);
    assert_int_equal(out.err, M3B_ERR_SEAL_AUTH);
    assert_int_equal(out.phase, M3B_PHASE_REJECTED);
    assert_int_equal(out.dlq, 1);
    assert_null(strstr(out.message, "czNjcmV0IQ=="));
    free(moved);
  }

  run(f, applier, key, 2, M3B_OP_DELETE, "", &out);
  expect_phase(&out, M3B_PHASE_DELETED);
  free(manifest);
  json_decref(secret);
  m3b_applier_destroy(applier);
}

static void test_invalid_object_is_terminal(void **state) {
  struct fixture *f = *state;
  m3b_applier_t *applier = new_applier(f, f->kube);
  struct m3b_outcome out;
  char name[128], key[256], manifest[1024];
  m3b_err_t err;

  snprintf(name, sizeof(name), "%s-invalid", prefix);
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s", name);
  snprintf(manifest, sizeof(manifest),
           "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
           "\"name\":\"%s\",\"namespace\":\"" NS "\"},\"data\":{\"not a "
           "valid key!\":\"x\"}}",
           name);
  err = run(f, applier, key, 1, M3B_OP_APPLY, manifest, &out);
  assert_int_equal(err, M3B_ERR_KUBE_INVALID);
  assert_int_equal(out.phase, M3B_PHASE_FAILED);
  assert_string_equal(out.reason, "KUBE_INVALID");
  assert_int_equal(out.dlq, 1);
  assert_int_equal(out.retriable, 0);
  assert_int_equal(out.status, 1);
  assert_null(get_object(f->kube, "v1", "ConfigMap", name));
  m3b_applier_destroy(applier);
}

static void test_unreachable_is_retriable(void **state) {
  struct fixture *f = *state;
  struct m3b_kube_config cfg;
  struct m3b_outcome out;
  char key[256], manifest[1024], errstr[256] = "";
  m3b_applier_t *applier;
  m3b_kube_t *kube;
  m3b_err_t err;

  m3b_kube_config_init(&cfg);
  cfg.server = strdup("https://127.0.0.1:1"); /* nothing listens there */
  cfg.token = strdup("unused");
  cfg.connect_timeout_ms = 2000;
  kube = m3b_kube_new(&cfg, f->log, errstr, sizeof(errstr));
  m3b_kube_config_cleanup(&cfg);
  assert_non_null(kube);
  applier = new_applier(f, kube);
  snprintf(key, sizeof(key), "/v1/ConfigMap/" NS "/%s-down", prefix);
  configmap(manifest, sizeof(manifest), key + strlen("/v1/ConfigMap/" NS "/"),
            "x");
  err = run(f, applier, key, 1, M3B_OP_APPLY, manifest, &out);
  assert_int_equal(err, M3B_ERR_KUBE_TRANSPORT);
  assert_int_equal(out.retriable, 1);
  assert_int_equal(out.dlq, 0);
  assert_int_equal(out.status, 0);
  m3b_applier_destroy(applier);
  m3b_kube_destroy(kube);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_apply_stale_and_delete),
      cmocka_unit_test(test_unchanged_manifest_moves_generation),
      cmocka_unit_test(test_index_load_and_live_fallback),
      cmocka_unit_test(test_delete_unmanaged_and_missing),
      cmocka_unit_test(test_sealed_secret),
      cmocka_unit_test(test_invalid_object_is_terminal),
      cmocka_unit_test(test_unreachable_is_retriable),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
