/*
 * test_applier_checks.c - every way the applier refuses a record before it
 * talks to the apiserver, each with its own reason, REJECTED, a dlq record
 * and no retry; tombstones; the status and dlq-header helpers; the retry
 * delay (Retry-After or backoff); the constructor's checks. The kube client
 * points at a closed port and is never reached: a test that reached it would
 * fail with KUBE_TRANSPORT.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/applier.h>
#include <m3b/schema.h>

#include "../common/test_record.h"

#define CM_MANIFEST                                                            \
  "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"      \
  "\"web\",\"namespace\":\"shop\"},\"data\":{\"a\":\"b\"}}"
#define CM_KEY "/v1/ConfigMap/shop/web"

struct fixture {
  m3b_schema_registry_t *registry;
  m3b_codec_t *codec;
  m3b_sign_key_t *signer;
  m3b_sign_key_t *stranger; /* not in the ring */
  m3b_keyring_t *ring;
  m3b_kube_t *kube;
  m3b_log_t *log;
  m3b_applier_t *applier;
};

static const char *const namespaces[] = {"shop", "m3-it"};
static const char *const cluster_kinds[] = {
    "Namespace", "apiextensions.k8s.io/CustomResourceDefinition"};

static void applier_config(struct m3b_applier_config *cfg,
                           const m3b_codec_t *codec) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->plane = "it";
  cfg->listener_id = "listener-0";
  cfg->namespaces = namespaces;
  cfg->namespace_count = 2;
  cfg->cluster_kinds = cluster_kinds;
  cfg->cluster_kind_count = 2;
  cfg->max_manifest_bytes = 4096;
  cfg->codec = codec;
}

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  struct m3b_kube_config kcfg;
  struct m3b_applier_config cfg;
  char errstr[256] = "";

  assert_non_null(f);
  f->log = m3b_log_new(stderr, M3B_LOG_ERROR);
  f->registry = m3b_schema_registry_new_builtin(errstr, sizeof(errstr));
  assert_non_null(f->registry);
  f->codec = m3b_codec_new(f->registry, NULL, errstr, sizeof(errstr));
  assert_non_null(f->codec);
  f->signer = m3b_sign_key_generate(errstr, sizeof(errstr));
  f->stranger = m3b_sign_key_generate(errstr, sizeof(errstr));
  f->ring = m3b_keyring_new(errstr, sizeof(errstr));
  assert_non_null(f->signer);
  assert_non_null(f->stranger);
  assert_non_null(f->ring);
  assert_int_equal(m3b_keyring_add_sign_key(f->ring, f->signer), M3B_OK);
  m3b_kube_config_init(&kcfg);
  kcfg.server = strdup("https://127.0.0.1:1");
  f->kube = m3b_kube_new(&kcfg, f->log, errstr, sizeof(errstr));
  m3b_kube_config_cleanup(&kcfg);
  assert_non_null(f->kube);
  applier_config(&cfg, f->codec);
  f->applier = m3b_applier_new(&cfg, f->kube, f->ring, NULL, f->log, errstr,
                               sizeof(errstr));
  if (!f->applier)
    fail_msg("m3b_applier_new: %s", errstr);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  m3b_applier_destroy(f->applier);
  m3b_kube_destroy(f->kube);
  m3b_keyring_destroy(f->ring);
  m3b_sign_key_destroy(f->signer);
  m3b_sign_key_destroy(f->stranger);
  m3b_codec_destroy(f->codec);
  m3b_schema_registry_destroy(f->registry);
  m3b_log_destroy(f->log);
  free(f);
  return 0;
}

/* Processes rec and checks a terminal rejection with this reason. */
static void expect_rejected(struct fixture *f, const struct m3b_record *rec,
                            m3b_err_t want, int status_due) {
  struct m3b_outcome out;
  m3b_err_t err = m3b_applier_process(f->applier, rec, &out);
  if (err != want)
    fail_msg("want %s, got %s: %s", m3b_err_name(want), m3b_err_name(err),
             out.message);
  assert_int_equal(out.err, want);
  assert_int_equal(out.phase, M3B_PHASE_REJECTED);
  assert_string_equal(out.reason, m3b_err_name(want));
  assert_int_equal(out.dlq, 1);
  assert_int_equal(out.retriable, 0);
  assert_int_equal(out.status, status_due);
  assert_int_equal(out.forget, 0);
  assert_int_equal(out.apply_latency_ms, 0);
  assert_true(out.message[0] != '\0');
  print_message("%-20s %s\n", out.reason, out.message);
}

static void spec_default(struct tr_spec *spec) {
  memset(spec, 0, sizeof(*spec));
  spec->rec_key = CM_KEY;
  spec->generation = 5;
  spec->op = M3B_OP_APPLY;
  spec->manifest = CM_MANIFEST;
}

static void check_spec(struct fixture *f, const struct tr_spec *spec,
                       m3b_err_t want) {
  struct test_record tr;
  tr_build(&tr, f->codec, f->signer, spec);
  expect_rejected(f, &tr.rec, want, 1);
  tr_cleanup(&tr);
}

static void test_signature_missing(void **state) {
  struct fixture *f = *state;
  struct test_record tr;
  struct tr_spec spec;
  spec_default(&spec);
  tr_build(&tr, f->codec, f->signer, &spec);
  tr.rec.header_count = 0;
  expect_rejected(f, &tr.rec, M3B_ERR_SIG_MISSING, 1);
  tr.rec.header_count = 1; /* m3-sig without m3-kid */
  expect_rejected(f, &tr.rec, M3B_ERR_SIG_MISSING, 1);
  tr_cleanup(&tr);
}

static void test_signature_malformed(void **state) {
  struct fixture *f = *state;
  struct test_record tr;
  struct tr_spec spec;
  spec_default(&spec);
  tr_build(&tr, f->codec, f->signer, &spec);
  tr.headers[0].len = 63;
  expect_rejected(f, &tr.rec, M3B_ERR_SIG_MALFORMED, 1);
  tr_cleanup(&tr);
}

static void test_signature_unknown_key(void **state) {
  struct fixture *f = *state;
  struct test_record tr;
  struct tr_spec spec;
  spec_default(&spec);
  tr_build(&tr, f->codec, f->stranger, &spec);
  expect_rejected(f, &tr.rec, M3B_ERR_SIG_UNKNOWN_KEY, 1);
  tr_cleanup(&tr);
}

static void test_signature_invalid(void **state) {
  struct fixture *f = *state;
  struct test_record tr;
  struct tr_spec spec;
  spec_default(&spec);
  tr_build(&tr, f->codec, f->signer, &spec);
  tr.value.data[tr.value.len - 1] ^= 1; /* the value changed after signing */
  expect_rejected(f, &tr.rec, M3B_ERR_SIG_INVALID, 1);
  tr.value.data[tr.value.len - 1] ^= 1;
  tr.rec.key = "/v1/ConfigMap/shop/other"; /* moved to another key */
  tr.rec.key_len = strlen(tr.rec.key);
  expect_rejected(f, &tr.rec, M3B_ERR_SIG_INVALID, 1);
  tr_cleanup(&tr);
}

static void test_undecodable(void **state) {
  struct fixture *f = *state;
  static const char garbage[] = "{\"not\":\"avro\"}";
  struct m3b_signature sig;
  struct m3b_record_header headers[2];
  struct m3b_record rec;
  struct test_record tr;
  struct tr_spec spec;

  /* signed garbage: the signature is fine, the value is not Avro */
  assert_int_equal(m3b_sign(f->signer, CM_KEY, strlen(CM_KEY), garbage,
                            strlen(garbage), &sig),
                   M3B_OK);
  headers[0] = (struct m3b_record_header){M3B_SIG_HEADER, sig.sig, M3B_SIG_LEN};
  headers[1] = (struct m3b_record_header){M3B_KID_HEADER, sig.kid, M3B_KID_LEN};
  memset(&rec, 0, sizeof(rec));
  rec.key = CM_KEY;
  rec.key_len = strlen(CM_KEY);
  rec.value = garbage;
  rec.value_len = strlen(garbage);
  rec.headers = headers;
  rec.header_count = 2;
  expect_rejected(f, &rec, M3B_ERR_BAD_MAGIC, 1);

  /* a real DesiredState cut short, signed as cut */
  spec_default(&spec);
  tr_build(&tr, f->codec, f->signer, &spec);
  assert_int_equal(m3b_sign(f->signer, CM_KEY, strlen(CM_KEY), tr.value.data,
                            tr.value.len - 3, &tr.sig),
                   M3B_OK);
  tr.rec.value_len -= 3;
  expect_rejected(f, &tr.rec, M3B_ERR_TRUNCATED, 1);
  tr_cleanup(&tr);
}

static void test_plane_mismatch(void **state) {
  struct tr_spec spec;
  spec_default(&spec);
  spec.plane = "eu1";
  check_spec(*state, &spec, M3B_ERR_PLANE_MISMATCH);
}

static void test_key_mismatch(void **state) {
  struct tr_spec spec;
  /* event key differs from the record key */
  spec_default(&spec);
  spec.event_key = "/v1/ConfigMap/shop/other";
  check_spec(*state, &spec, M3B_ERR_KEY_MISMATCH);
  /* the manifest is another object than both keys say */
  spec_default(&spec);
  spec.rec_key = "/v1/ConfigMap/shop/api";
  check_spec(*state, &spec, M3B_ERR_KEY_MISMATCH);
  /* the DELETE's manifest, when present, must match too */
  spec_default(&spec);
  spec.rec_key = "/v1/ConfigMap/shop/api";
  spec.op = M3B_OP_DELETE;
  check_spec(*state, &spec, M3B_ERR_KEY_MISMATCH);
}

static void test_bad_record_key(void **state) {
  struct fixture *f = *state;
  struct test_record tr;
  struct tr_spec spec;
  spec_default(&spec);
  spec.rec_key = "not-a-key";
  spec.event_key = CM_KEY;
  tr_build(&tr, f->codec, f->signer, &spec);
  /* no valid key: no status (it is keyed by object key), only the dlq */
  expect_rejected(f, &tr.rec, M3B_ERR_BAD_KEY, 0);
  tr_cleanup(&tr);
}

static void test_hash_mismatch(void **state) {
  struct tr_spec spec;
  spec_default(&spec);
  spec.bad_hash = 1;
  check_spec(*state, &spec, M3B_ERR_HASH_MISMATCH);
}

static void test_manifest_limits(void **state) {
  struct fixture *f = *state;
  struct tr_spec spec;
  char *big = malloc(8192);
  assert_non_null(big);
  snprintf(
      big, 8192,
      "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{"
      "\"name\":\"web\",\"namespace\":\"shop\"},\"data\":{\"a\":\"%0*d\"}}",
      5000, 0);
  spec_default(&spec);
  spec.manifest = big;
  check_spec(f, &spec, M3B_ERR_LIMIT);
  free(big);
  spec_default(&spec);
  spec.manifest = "";
  check_spec(f, &spec, M3B_ERR_BAD_MANIFEST);
  spec_default(&spec);
  spec.manifest = "[1,2]";
  check_spec(f, &spec, M3B_ERR_BAD_MANIFEST);
}

static void test_namespace_not_bound(void **state) {
  struct tr_spec spec;
  spec_default(&spec);
  spec.rec_key = "/v1/ConfigMap/kube-system/web";
  spec.manifest = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\""
                  ":{\"name\":\"web\",\"namespace\":\"kube-system\"}}";
  check_spec(*state, &spec, M3B_ERR_NAMESPACE_NOT_BOUND);
  /* Namespace is an allowed kind, but only for bound namespaces */
  spec_default(&spec);
  spec.rec_key = "/v1/Namespace//kube-system";
  spec.manifest = "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\""
                  ":{\"name\":\"kube-system\"}}";
  check_spec(*state, &spec, M3B_ERR_NAMESPACE_NOT_BOUND);
  /* a DELETE is authorized the same way */
  spec_default(&spec);
  spec.rec_key = "/v1/ConfigMap/default/web";
  spec.op = M3B_OP_DELETE;
  spec.manifest = "";
  check_spec(*state, &spec, M3B_ERR_NAMESPACE_NOT_BOUND);
}

static void test_kind_not_allowed(void **state) {
  struct tr_spec spec;
  spec_default(&spec);
  spec.rec_key = "rbac.authorization.k8s.io/v1/ClusterRole//admin2";
  spec.manifest = "{\"apiVersion\":\"rbac.authorization.k8s.io/v1\",\"kind\":"
                  "\"ClusterRole\",\"metadata\":{\"name\":\"admin2\"}}";
  check_spec(*state, &spec, M3B_ERR_KIND_NOT_ALLOWED);
  /* a namespaced kind without a namespace looks cluster-scoped: refused */
  spec_default(&spec);
  spec.rec_key = "/v1/ConfigMap//web";
  spec.manifest = "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\""
                  ":{\"name\":\"web\"}}";
  check_spec(*state, &spec, M3B_ERR_KIND_NOT_ALLOWED);
}

static void test_tombstone(void **state) {
  struct fixture *f = *state;
  struct m3b_record rec;
  struct m3b_outcome out;
  struct m3b_index_entry entry;

  memset(&rec, 0, sizeof(rec));
  rec.key = CM_KEY;
  rec.key_len = strlen(CM_KEY);
  /* a deleted entry goes with the tombstone; a live one stays */
  memset(&entry, 0, sizeof(entry));
  entry.generation = 3;
  entry.deleted = 1;
  assert_int_equal(m3b_index_put(m3b_applier_index(f->applier), CM_KEY, &entry),
                   M3B_OK);
  assert_int_equal(m3b_applier_process(f->applier, &rec, &out), M3B_OK);
  assert_int_equal(out.forget, 1);
  assert_int_equal(out.noop, 1);
  assert_int_equal(out.dlq, 0);
  assert_int_equal(out.retriable, 0);
  assert_int_equal(out.status, 0);
  assert_null(out.reason);
  assert_int_equal(m3b_index_get(m3b_applier_index(f->applier), CM_KEY, &entry),
                   M3B_ERR_NOT_FOUND);
  entry.deleted = 0;
  assert_int_equal(m3b_index_put(m3b_applier_index(f->applier), CM_KEY, &entry),
                   M3B_OK);
  assert_int_equal(m3b_applier_process(f->applier, &rec, &out), M3B_OK);
  assert_int_equal(out.forget, 1);
  assert_int_equal(m3b_index_get(m3b_applier_index(f->applier), CM_KEY, &entry),
                   M3B_OK);
  assert_int_equal(m3b_index_remove(m3b_applier_index(f->applier), CM_KEY),
                   M3B_OK);
  /* a tombstone without a key is just as harmless */
  rec.key = NULL;
  rec.key_len = 0;
  assert_int_equal(m3b_applier_process(f->applier, &rec, &out), M3B_OK);
  assert_int_equal(out.forget, 1);
  assert_int_equal(out.status, 0);
}

/* m3b_applier_peek: what a record claims, without the signature; every
 * refusal exactly as m3b_applier_check says it (the signature first). */
static void test_peek(void **state) {
  struct fixture *f = *state;
  struct m3b_checked peeked, checked;
  struct m3b_outcome out;
  struct test_record tr;
  struct tr_spec spec;
  static const uint8_t zero[M3B_SHA256_SIZE];

  spec_default(&spec);
  tr_build(&tr, f->codec, f->signer, &spec);
  assert_int_equal(m3b_applier_peek(f->applier, &tr.rec, &out, &peeked),
                   M3B_OK);
  assert_int_equal(peeked.generation, 5);
  assert_int_equal(peeked.op, M3B_OP_APPLY);
  assert_int_equal(peeked.verified, 0);
  assert_int_equal(m3b_applier_check(f->applier, &tr.rec, &out, &checked),
                   M3B_OK);
  assert_int_equal(checked.verified, 1);
  assert_memory_equal(peeked.manifest_sha256, checked.manifest_sha256,
                      M3B_SHA256_SIZE);
  assert_memory_not_equal(checked.record_sha256, zero, M3B_SHA256_SIZE);

  /* a damaged signature passes a peek (that is what a peek is) ... */
  tr.sig.sig[10] ^= 1;
  assert_int_equal(m3b_applier_peek(f->applier, &tr.rec, &out, &peeked),
                   M3B_OK);
  /* ... and never a check */
  assert_int_equal(m3b_applier_check(f->applier, &tr.rec, &out, &checked),
                   M3B_ERR_SIG_INVALID);
  tr.sig.sig[10] ^= 1;

  /* a record moved to another key: the peek sees the key mismatch and
   * answers as the check does, with the signature's verdict */
  tr.rec.key = "/v1/ConfigMap/shop/other";
  tr.rec.key_len = strlen(tr.rec.key);
  assert_int_equal(m3b_applier_peek(f->applier, &tr.rec, &out, &peeked),
                   M3B_ERR_SIG_INVALID);
  assert_int_equal(out.phase, M3B_PHASE_REJECTED);
  assert_string_equal(out.reason, "SIG_INVALID");
  assert_int_equal(out.dlq, 1);
  tr_cleanup(&tr);

  /* unsigned: SIG_MISSING, not the decoding error behind it */
  spec_default(&spec);
  tr_build(&tr, f->codec, f->signer, &spec);
  tr.rec.header_count = 0;
  tr.value.data[0] ^= 0xff;
  assert_int_equal(m3b_applier_peek(f->applier, &tr.rec, &out, &peeked),
                   M3B_ERR_SIG_MISSING);
  tr_cleanup(&tr);

  /* signed, but for another plane or with a wrong hash: refused */
  spec_default(&spec);
  spec.plane = "eu1";
  tr_build(&tr, f->codec, f->signer, &spec);
  assert_int_equal(m3b_applier_peek(f->applier, &tr.rec, &out, &peeked),
                   M3B_ERR_PLANE_MISMATCH);
  tr_cleanup(&tr);
  spec_default(&spec);
  spec.bad_hash = 1;
  tr_build(&tr, f->codec, f->signer, &spec);
  assert_int_equal(m3b_applier_peek(f->applier, &tr.rec, &out, &peeked),
                   M3B_ERR_HASH_MISMATCH);
  tr_cleanup(&tr);
}

/* m3b_applier_process_checked skips only the signature, and only for the
 * bytes that were verified. The kube client points at a closed port, so a
 * record that passes every check ends in KUBE_TRANSPORT. */
static void test_process_checked(void **state) {
  struct fixture *f = *state;
  struct m3b_checked checked, forged;
  struct m3b_outcome out;
  struct test_record tr;
  struct tr_spec spec;

  spec_default(&spec);
  tr_build(&tr, f->codec, f->signer, &spec);
  assert_int_equal(m3b_applier_check(f->applier, &tr.rec, &out, &checked),
                   M3B_OK);
  /* the signature header damaged after the check: the bytes are the ones
   * verified, so the apiserver is reached */
  tr.sig.sig[3] ^= 1;
  assert_int_equal(
      m3b_applier_process_checked(f->applier, &tr.rec, &checked, &out),
      M3B_ERR_KUBE_TRANSPORT);
  /* without the voucher, or with one that does not say verified, it is
   * verified again and refused */
  assert_int_equal(m3b_applier_process_checked(f->applier, &tr.rec, NULL, &out),
                   M3B_ERR_SIG_INVALID);
  forged = checked;
  forged.verified = 0;
  assert_int_equal(
      m3b_applier_process_checked(f->applier, &tr.rec, &forged, &out),
      M3B_ERR_SIG_INVALID);
  tr.sig.sig[3] ^= 1;
  /* other bytes than the ones verified: verified again */
  tr.value.data[tr.value.len - 1] ^= 1;
  assert_int_equal(
      m3b_applier_process_checked(f->applier, &tr.rec, &checked, &out),
      M3B_ERR_SIG_INVALID);
  tr_cleanup(&tr);
}

static void test_status_and_dlq_headers(void **state) {
  struct fixture *f = *state;
  struct test_record tr;
  struct tr_spec spec;
  struct m3b_outcome out;
  struct m3b_status status;
  struct m3b_dlq_headers dlq;
  struct m3b_buf encoded;
  char errstr[256] = "";
  size_t i;

  spec_default(&spec);
  spec.plane = "eu1";
  spec.generation = 9;
  tr_build(&tr, f->codec, f->signer, &spec);
  assert_int_equal(m3b_applier_process(f->applier, &tr.rec, &out),
                   M3B_ERR_PLANE_MISMATCH);
  m3b_status_init(&status);
  assert_int_equal(m3b_outcome_status(f->applier, &out, &tr.rec, &status),
                   M3B_OK);
  assert_string_equal(status.plane, "it");
  assert_string_equal(status.key, CM_KEY);
  assert_int_equal(status.generation, 9);
  assert_int_equal(status.phase, M3B_PHASE_REJECTED);
  assert_string_equal(status.reason, "PLANE_MISMATCH");
  assert_non_null(status.message);
  assert_null(status.observed_uid);
  assert_int_equal(status.source_partition, 3);
  assert_int_equal(status.source_offset, 42);
  assert_string_equal(status.listener_id, "listener-0");
  assert_true(status.applied_at_ms > 1600000000000LL);
  /* it encodes as a Status */
  m3b_buf_init(&encoded, 65536);
  if (m3b_status_encode(f->codec, &status, &encoded, errstr, sizeof(errstr)))
    fail_msg("status encode: %s", errstr);
  m3b_buf_cleanup(&encoded);

  m3b_outcome_dlq_headers(f->applier, &out, &tr.rec, &dlq);
  assert_int_equal(dlq.count, M3B_DLQ_HEADER_COUNT);
  {
    static const char *const names[] = {
        M3B_HDR_ERROR_REASON,     M3B_HDR_ERROR_MESSAGE, M3B_HDR_SOURCE_TOPIC,
        M3B_HDR_SOURCE_PARTITION, M3B_HDR_SOURCE_OFFSET, M3B_HDR_LISTENER_ID};
    const char *values[] = {
        "PLANE_MISMATCH", out.message, "m3.it.desired", "3", "42",
        "listener-0"};
    for (i = 0; i < M3B_DLQ_HEADER_COUNT; i++) {
      assert_string_equal(dlq.headers[i].name, names[i]);
      assert_int_equal(dlq.headers[i].len, strlen(values[i]));
      assert_memory_equal(dlq.headers[i].value, values[i], strlen(values[i]));
    }
  }
  /* a tombstone has no status to write */
  tr.rec.value = NULL;
  m3b_applier_process(f->applier, &tr.rec, &out);
  assert_int_equal(m3b_outcome_status(f->applier, &out, &tr.rec, &status),
                   M3B_ERR_INVALID_ARG);
  tr_cleanup(&tr);
}

static void test_new_refuses_bad_config(void **state) {
  struct fixture *f = *state;
  struct m3b_applier_config cfg;
  static const char *const bad_kinds[] = {"clusterrole"};
  char errstr[256] = "";

  applier_config(&cfg, f->codec);
  cfg.plane = NULL;
  assert_null(m3b_applier_new(&cfg, f->kube, f->ring, NULL, NULL, errstr,
                              sizeof(errstr)));
  assert_true(errstr[0] != '\0');
  applier_config(&cfg, f->codec);
  cfg.cluster_kinds = bad_kinds;
  cfg.cluster_kind_count = 1;
  errstr[0] = '\0';
  assert_null(m3b_applier_new(&cfg, f->kube, f->ring, NULL, NULL, errstr,
                              sizeof(errstr)));
  assert_non_null(strstr(errstr, "clusterrole"));
  /* without a codec it builds its own from the built-in schemas */
  applier_config(&cfg, NULL);
  m3b_applier_destroy(m3b_applier_new(&cfg, f->kube, f->ring, NULL, NULL,
                                      errstr, sizeof(errstr)));
  m3b_applier_destroy(NULL);
}

/* The apiserver's Retry-After wins over backoff, capped; without one the
 * delay doubles per attempt up to the cap, jittered within [d/2, d]. */
static void test_retry_delay(void **state) {
  static const struct {
    int64_t retry_after_ms;
    unsigned attempt;
    long long lo, hi; /* with initial 200 ms and max 30 s */
  } cases[] = {
      {3000, 0, 3000, 3000},     /* Retry-After: 3 */
      {3000, 7, 3000, 3000},     /* whatever the attempt */
      {120000, 0, 30000, 30000}, /* capped by max */
      {-1, 0, 100, 200},
      {-1, 1, 200, 400},
      {-1, 3, 800, 1600},
      {0, 2, 400, 800},       /* Retry-After: 0 is no hint: backoff */
      {-1, 8, 15000, 30000},  /* 51.2 s capped */
      {-1, 63, 15000, 30000}, /* no overflow on long outages */
      {-1, 4000000000u, 15000, 30000},
  };
  static const unsigned randoms[] = {1, 77, 65535, 4294967295u};
  struct m3b_outcome out;
  size_t i, r;
  (void)state;

  memset(&out, 0, sizeof(out));
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    unsigned span = (unsigned)(cases[i].hi - cases[i].lo);
    out.retry_after_ms = cases[i].retry_after_ms;
    for (r = 0; r < sizeof(randoms) / sizeof(randoms[0]); r++) {
      long long d = m3b_outcome_retry_delay_ms(&out, cases[i].attempt, 200,
                                               30000, randoms[r]);
      if (d < cases[i].lo || d > cases[i].hi)
        fail_msg("case %zu: delay %lld outside [%lld, %lld]", i, d, cases[i].lo,
                 cases[i].hi);
    }
    /* the jitter reaches both ends of its range */
    assert_true(m3b_outcome_retry_delay_ms(&out, cases[i].attempt, 200, 30000,
                                           0) == cases[i].lo);
    assert_true(m3b_outcome_retry_delay_ms(&out, cases[i].attempt, 200, 30000,
                                           span) == cases[i].hi);
  }
  /* an outcome of the real applier: a transport failure carries no hint */
  out.retry_after_ms = -1;
  assert_true(m3b_outcome_retry_delay_ms(&out, 0, 1000, 1000, 0) == 500);
  assert_true(m3b_outcome_retry_delay_ms(NULL, 0, 100, 50, 0) == 25);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_signature_missing),
      cmocka_unit_test(test_signature_malformed),
      cmocka_unit_test(test_signature_unknown_key),
      cmocka_unit_test(test_signature_invalid),
      cmocka_unit_test(test_undecodable),
      cmocka_unit_test(test_plane_mismatch),
      cmocka_unit_test(test_key_mismatch),
      cmocka_unit_test(test_bad_record_key),
      cmocka_unit_test(test_hash_mismatch),
      cmocka_unit_test(test_manifest_limits),
      cmocka_unit_test(test_namespace_not_bound),
      cmocka_unit_test(test_kind_not_allowed),
      cmocka_unit_test(test_tombstone),
      cmocka_unit_test(test_peek),
      cmocka_unit_test(test_process_checked),
      cmocka_unit_test(test_status_and_dlq_headers),
      cmocka_unit_test(test_retry_delay),
      cmocka_unit_test(test_new_refuses_bad_config),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
