/*
 * test_replay.c - the pure parts of replay (<m3b/replay.h>): the fold
 * (latest generation wins, ties keep the first, DELETE and tombstones,
 * revival by a newer event, record copies that outlive the caller's
 * buffers, growth, limits), the tier of each kind, and the parsers of
 * RFC 3339 times and "P:O,..." offsets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/replay.h>

/* A record of key with value and one header, in caller buffers that the
 * test overwrites after each offer (the fold must have copied them). */
struct rec {
  char key[128];
  char value[64];
  char sig[8];
  struct m3b_record_header header;
  struct m3b_record record;
};

static const struct m3b_record *make(struct rec *r, const char *key,
                                     const char *value, int32_t partition,
                                     int64_t offset) {
  memset(r, 0, sizeof(*r));
  snprintf(r->key, sizeof(r->key), "%s", key);
  snprintf(r->sig, sizeof(r->sig), "sig");
  r->header.name = "m3-sig";
  r->header.value = r->sig;
  r->header.len = 3;
  r->record.topic = "m3.dr.desired";
  r->record.partition = partition;
  r->record.offset = offset;
  r->record.key = r->key;
  r->record.key_len = strlen(r->key);
  if (value) {
    snprintf(r->value, sizeof(r->value), "%s", value);
    r->record.value = r->value;
    r->record.value_len = strlen(r->value);
    r->record.headers = &r->header;
    r->record.header_count = 1;
  }
  return &r->record;
}

static struct m3b_fold_event ev(int64_t generation, enum m3b_op op,
                                uint8_t sha) {
  struct m3b_fold_event e;
  memset(&e, 0, sizeof(e));
  e.generation = generation;
  e.op = op;
  e.manifest_sha256[0] = sha;
  return e;
}

#define KEY "/v1/ConfigMap/m3-dr-a/web"

static void test_fold_latest_generation_wins(void **state) {
  m3b_fold_t *fold = m3b_fold_new(NULL, 0);
  const struct m3b_fold_entry *e;
  struct m3b_fold_event event;
  struct rec r;
  int won;
  (void)state;

  assert_non_null(fold);
  event = ev(5, M3B_OP_APPLY, 0x55);
  assert_int_equal(
      m3b_fold_offer(fold, make(&r, KEY, "v5", 0, 10), &event, &won), M3B_OK);
  assert_int_equal(won, 1);
  memset(&r, 'x', sizeof(r)); /* the caller's buffers are gone */
  /* an older generation later in the topic loses */
  event = ev(3, M3B_OP_APPLY, 0x33);
  assert_int_equal(
      m3b_fold_offer(fold, make(&r, KEY, "v3", 0, 11), &event, &won), M3B_OK);
  assert_int_equal(won, 0);
  /* the same generation with another manifest: the first stays */
  event = ev(5, M3B_OP_APPLY, 0x99);
  assert_int_equal(
      m3b_fold_offer(fold, make(&r, KEY, "v5b", 0, 12), &event, &won), M3B_OK);
  assert_int_equal(won, 0);
  e = m3b_fold_get(fold, KEY);
  assert_non_null(e);
  assert_string_equal(e->key, KEY);
  assert_int_equal(e->state, M3B_FOLD_APPLY);
  assert_int_equal(e->generation, 5);
  assert_int_equal(e->manifest_sha256[0], 0x55);
  assert_int_equal(e->record.offset, 10);
  assert_int_equal(e->record.value_len, 2);
  assert_memory_equal(e->record.value, "v5", 2);
  assert_memory_equal(e->record.key, KEY, strlen(KEY));
  assert_string_equal(e->record.topic, "m3.dr.desired");
  assert_int_equal(e->record.header_count, 1);
  assert_string_equal(e->record.headers[0].name, "m3-sig");
  assert_memory_equal(e->record.headers[0].value, "sig", 3);
  assert_int_equal(e->verified, 0);
  /* a newer one wins, wherever it sits, with what its check said */
  event = ev(9, M3B_OP_APPLY, 0x99);
  event.verified = 1;
  event.record_sha256[0] = 0xab;
  assert_int_equal(
      m3b_fold_offer(fold, make(&r, KEY, "v9", 0, 13), &event, &won), M3B_OK);
  assert_int_equal(won, 1);
  e = m3b_fold_get(fold, KEY);
  assert_int_equal(e->generation, 9);
  assert_int_equal(e->verified, 1);
  assert_int_equal(e->record_sha256[0], 0xab);
  assert_memory_equal(e->record.value, "v9", 2);
  assert_int_equal(m3b_fold_count(fold), 1);
  assert_true(m3b_fold_bytes(fold) > strlen(KEY) + 2);
  m3b_fold_destroy(fold);
  m3b_fold_destroy(NULL);
}

static void test_fold_delete_and_tombstone(void **state) {
  m3b_fold_t *fold = m3b_fold_new(NULL, 0);
  const struct m3b_fold_entry *e;
  struct m3b_fold_event event;
  struct rec r;
  int won;
  (void)state;

  event = ev(5, M3B_OP_APPLY, 1);
  assert_int_equal(m3b_fold_offer(fold, make(&r, KEY, "a", 0, 1), &event, NULL),
                   M3B_OK);
  event = ev(6, M3B_OP_DELETE, 2);
  event.verified = 1;
  assert_int_equal(m3b_fold_offer(fold, make(&r, KEY, "d", 0, 2), &event, NULL),
                   M3B_OK);
  e = m3b_fold_get(fold, KEY);
  assert_int_equal(e->state, M3B_FOLD_DELETE);
  assert_int_equal(e->generation, 6);
  assert_int_equal(e->verified, 1);
  /* the tombstone after the DELETE: forgotten, generation kept, no record */
  assert_int_equal(m3b_fold_offer(fold, make(&r, KEY, NULL, 0, 3), NULL, &won),
                   M3B_OK);
  assert_int_equal(won, 1);
  e = m3b_fold_get(fold, KEY);
  assert_int_equal(e->state, M3B_FOLD_FORGOTTEN);
  assert_int_equal(e->generation, 6);
  assert_int_equal(e->verified, 0); /* nothing left that was verified */
  assert_null(e->record.value);
  assert_int_equal(m3b_fold_bytes(fold), 0);
  /* a second tombstone changes nothing */
  assert_int_equal(m3b_fold_offer(fold, make(&r, KEY, NULL, 0, 4), NULL, &won),
                   M3B_OK);
  assert_int_equal(won, 0);
  /* an older APPLY cannot bring the key back ... */
  event = ev(4, M3B_OP_APPLY, 3);
  assert_int_equal(
      m3b_fold_offer(fold, make(&r, KEY, "old", 0, 5), &event, &won), M3B_OK);
  assert_int_equal(won, 0);
  assert_int_equal(m3b_fold_get(fold, KEY)->state, M3B_FOLD_FORGOTTEN);
  /* ... a newer one does (the object was created again) */
  event = ev(7, M3B_OP_APPLY, 4);
  assert_int_equal(
      m3b_fold_offer(fold, make(&r, KEY, "new", 0, 6), &event, &won), M3B_OK);
  assert_int_equal(won, 1);
  e = m3b_fold_get(fold, KEY);
  assert_int_equal(e->state, M3B_FOLD_APPLY);
  assert_memory_equal(e->record.value, "new", 3);

  /* a tombstone first (its events compacted away): any event revives */
  assert_int_equal(m3b_fold_offer(fold,
                                  make(&r, "/v1/Secret/m3-dr-a/s", NULL, 1, 1),
                                  NULL, &won),
                   M3B_OK);
  assert_int_equal(won, 1);
  e = m3b_fold_get(fold, "/v1/Secret/m3-dr-a/s");
  assert_int_equal(e->state, M3B_FOLD_FORGOTTEN);
  assert_int_equal(e->generation, -1);
  event = ev(1, M3B_OP_APPLY, 5);
  assert_int_equal(m3b_fold_offer(fold,
                                  make(&r, "/v1/Secret/m3-dr-a/s", "s", 1, 2),
                                  &event, &won),
                   M3B_OK);
  assert_int_equal(won, 1);
  assert_int_equal(m3b_fold_count(fold), 2);
  m3b_fold_destroy(fold);
}

static int count_states(const struct m3b_fold_entry *entry, void *opaque) {
  size_t *counts = opaque;
  counts[entry->state]++;
  return 0;
}

static int stop_at_first(const struct m3b_fold_entry *entry, void *opaque) {
  (void)entry;
  (*(int *)opaque)++;
  return 7;
}

static void test_fold_many_keys(void **state) {
  m3b_fold_t *fold = m3b_fold_new(NULL, 0);
  struct m3b_fold_event event;
  size_t counts[3] = {0, 0, 0};
  char key[64];
  struct rec r;
  int i, calls = 0;
  (void)state;

  for (i = 0; i < 20000; i++) {
    snprintf(key, sizeof(key), "/v1/ConfigMap/m3-dr-b/cm-%d", i);
    event = ev(i, i % 10 == 0 ? M3B_OP_DELETE : M3B_OP_APPLY, (uint8_t)i);
    assert_int_equal(m3b_fold_offer(fold, make(&r, key, "x", i % 3, i),
                                    i % 7 == 0 ? NULL : &event, NULL),
                     M3B_OK);
  }
  assert_int_equal(m3b_fold_count(fold), 20000);
  assert_int_equal(m3b_fold_each(fold, count_states, counts), 0);
  assert_int_equal(counts[M3B_FOLD_FORGOTTEN], 2858);    /* i % 7 == 0 */
  assert_int_equal(counts[M3B_FOLD_DELETE], 2000 - 286); /* i % 10, not % 7 */
  assert_int_equal(counts[M3B_FOLD_APPLY], 20000 - 2858 - (2000 - 286));
  assert_int_equal(m3b_fold_each(fold, stop_at_first, &calls), 7);
  assert_int_equal(calls, 1);
  snprintf(key, sizeof(key), "/v1/ConfigMap/m3-dr-b/cm-%d", 12345);
  assert_non_null(m3b_fold_get(fold, key));
  assert_int_equal(m3b_fold_get(fold, key)->generation, 12345);
  assert_null(m3b_fold_get(fold, "/v1/ConfigMap/m3-dr-b/absent"));
  m3b_fold_destroy(fold);
}

static void test_fold_bad_input(void **state) {
  m3b_fold_t *fold = m3b_fold_new(NULL, 0);
  struct m3b_fold_event event = ev(1, M3B_OP_APPLY, 1);
  char long_key[M3B_OBJKEY_MAX + 10];
  struct rec r;
  (void)state;

  assert_int_equal(m3b_fold_offer(NULL, make(&r, KEY, "a", 0, 0), &event, NULL),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_fold_offer(fold, NULL, &event, NULL),
                   M3B_ERR_INVALID_ARG);
  /* an event needs a value; a key is required */
  assert_int_equal(
      m3b_fold_offer(fold, make(&r, KEY, NULL, 0, 0), &event, NULL),
      M3B_ERR_INVALID_ARG);
  make(&r, KEY, "a", 0, 0);
  r.record.key = NULL;
  assert_int_equal(m3b_fold_offer(fold, &r.record, &event, NULL),
                   M3B_ERR_INVALID_ARG);
  /* a NUL inside the key */
  make(&r, KEY, "a", 0, 0);
  r.key[3] = '\0';
  assert_int_equal(m3b_fold_offer(fold, &r.record, &event, NULL),
                   M3B_ERR_INVALID_ARG);
  memset(long_key, 'k', sizeof(long_key) - 1);
  long_key[sizeof(long_key) - 1] = '\0';
  make(&r, "x", "a", 0, 0);
  r.record.key = long_key;
  r.record.key_len = strlen(long_key);
  assert_int_equal(m3b_fold_offer(fold, &r.record, &event, NULL),
                   M3B_ERR_LIMIT);
  assert_int_equal(m3b_fold_count(fold), 0);
  assert_null(m3b_fold_get(NULL, KEY));
  assert_int_equal(m3b_fold_count(NULL), 0);
  m3b_fold_destroy(fold);
}

static void test_tiers(void **state) {
  static const struct {
    const char *group, *kind;
    enum m3b_tier tier;
  } cases[] = {
      {"", "Namespace", M3B_TIER_NAMESPACES},
      {"apiextensions.k8s.io", "CustomResourceDefinition", M3B_TIER_NAMESPACES},
      {"", "ServiceAccount", M3B_TIER_RBAC},
      {"rbac.authorization.k8s.io", "Role", M3B_TIER_RBAC},
      {"rbac.authorization.k8s.io", "ClusterRoleBinding", M3B_TIER_RBAC},
      {"", "ResourceQuota", M3B_TIER_RBAC},
      {"", "ConfigMap", M3B_TIER_CONFIG},
      {"", "Secret", M3B_TIER_CONFIG},
      {"", "PersistentVolumeClaim", M3B_TIER_STORAGE},
      {"storage.k8s.io", "StorageClass", M3B_TIER_STORAGE},
      {"", "Service", M3B_TIER_SERVICES},
      {"apps", "Deployment", M3B_TIER_WORKLOADS},
      {"apps", "StatefulSet", M3B_TIER_WORKLOADS},
      {"batch", "CronJob", M3B_TIER_WORKLOADS},
      {"", "Pod", M3B_TIER_WORKLOADS},
      {"gateway.networking.k8s.io", "Gateway", M3B_TIER_GATEWAYS},
      {"gateway.networking.k8s.io", "GatewayClass", M3B_TIER_GATEWAYS},
      {"gateway.networking.k8s.io", "HTTPRoute", M3B_TIER_ROUTES},
      {"gateway.networking.k8s.io", "ReferenceGrant", M3B_TIER_ROUTES},
      {"networking.k8s.io", "Ingress", M3B_TIER_ROUTES},
      {"networking.k8s.io", "NetworkPolicy", M3B_TIER_OTHER},
      {"example.com", "Widget", M3B_TIER_OTHER},
      /* a kind name alone is not enough: the group must match too */
      {"example.com", "Namespace", M3B_TIER_OTHER},
      {"", "Deployment", M3B_TIER_OTHER},
      {"", "", M3B_TIER_OTHER},
  };
  size_t i;
  (void)state;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    enum m3b_tier got = m3b_tier_of(cases[i].group, cases[i].kind);
    if (got != cases[i].tier)
      fail_msg("%s/%s: tier %s, want %s", cases[i].group, cases[i].kind,
               m3b_tier_name(got), m3b_tier_name(cases[i].tier));
  }
  assert_int_equal(m3b_tier_of(NULL, "Namespace"), M3B_TIER_OTHER);
  /* the order the issue asks for */
  assert_true(M3B_TIER_NAMESPACES < M3B_TIER_RBAC);
  assert_true(M3B_TIER_RBAC < M3B_TIER_CONFIG);
  assert_true(M3B_TIER_CONFIG < M3B_TIER_STORAGE);
  assert_true(M3B_TIER_STORAGE < M3B_TIER_SERVICES);
  assert_true(M3B_TIER_SERVICES < M3B_TIER_WORKLOADS);
  assert_true(M3B_TIER_WORKLOADS < M3B_TIER_GATEWAYS);
  assert_true(M3B_TIER_GATEWAYS < M3B_TIER_ROUTES);
  assert_true(M3B_TIER_ROUTES < M3B_TIER_OTHER);
  assert_string_equal(m3b_tier_name(M3B_TIER_NAMESPACES), "namespaces");
  assert_string_equal(m3b_tier_name(M3B_TIER_OTHER), "other");
  assert_string_equal(m3b_tier_name(M3B_TIER__COUNT), "?");
}

static void test_rfc3339(void **state) {
  static const struct {
    const char *text;
    int64_t ms;
  } good[] = {
      {"1970-01-01T00:00:00Z", 0},
      {"1970-01-01T00:00:01.5Z", 1500},
      {"2026-11-27T04:41:09Z", 1795754469000LL},
      {"2026-11-27t04:41:09z", 1795754469000LL},
      {"2026-11-27T06:41:09.250+02:00", 1795754469250LL},
      {"2026-11-26T23:41:09.123456-05:00", 1795754469123LL},
      {"2000-02-29T12:00:00Z", 951825600000LL},
      {"1969-12-31T23:59:59Z", -1000},
      {"2016-12-31T23:59:60Z", 1483228799000LL},
  };
  static const char *const bad[] = {
      "",
      "2026-11-27",
      "2026-11-27 04:41:09Z",
      "2026-11-27T04:41:09",
      "2026-11-27T04:41Z",
      "2026-13-01T00:00:00Z",
      "2026-02-29T00:00:00Z",
      "2026-11-27T24:00:00Z",
      "2026-11-27T04:41:09.Z",
      "2026-11-27T04:41:09+0200",
      "2026-11-27T04:41:09Zjunk",
      "1795754469",
  };
  char errstr[256];
  int64_t ms;
  size_t i;
  (void)state;

  for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    errstr[0] = '\0';
    if (m3b_parse_rfc3339(good[i].text, &ms, errstr, sizeof(errstr)) != M3B_OK)
      fail_msg("%s: %s", good[i].text, errstr);
    if (ms != good[i].ms)
      fail_msg("%s: %lld, want %lld", good[i].text, (long long)ms,
               (long long)good[i].ms);
  }
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errstr[0] = '\0';
    if (m3b_parse_rfc3339(bad[i], &ms, errstr, sizeof(errstr)) !=
        M3B_ERR_INVALID_ARG)
      fail_msg("\"%s\" was accepted", bad[i]);
    assert_true(errstr[0] != '\0');
  }
}

static void test_partition_offsets(void **state) {
  int64_t offsets[8];
  char errstr[256];
  int32_t highest;
  size_t i;
  static const char *const bad[] = {
      "",        "0",   "0:",      ":5",  "0:-1", "0:1,",
      "0:1;1:2", "8:0", "0:1,0:2", "a:1", "0:1 ", "0:1234567890123456789"};
  (void)state;

  assert_int_equal(m3b_parse_partition_offsets("0:120,2:0,1:95", offsets, 8,
                                               &highest, errstr,
                                               sizeof(errstr)),
                   M3B_OK);
  assert_int_equal(offsets[0], 120);
  assert_int_equal(offsets[1], 95);
  assert_int_equal(offsets[2], 0);
  for (i = 3; i < 8; i++)
    assert_int_equal(offsets[i], -1);
  assert_int_equal(highest, 2);
  assert_int_equal(
      m3b_parse_partition_offsets("7:5", offsets, 8, NULL, errstr, 256),
      M3B_OK);
  assert_int_equal(offsets[7], 5);
  assert_int_equal(offsets[0], -1);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    errstr[0] = '\0';
    if (m3b_parse_partition_offsets(bad[i], offsets, 8, NULL, errstr,
                                    sizeof(errstr)) != M3B_ERR_INVALID_ARG)
      fail_msg("\"%s\" was accepted", bad[i]);
    assert_true(errstr[0] != '\0');
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fold_latest_generation_wins),
      cmocka_unit_test(test_fold_delete_and_tombstone),
      cmocka_unit_test(test_fold_many_keys),
      cmocka_unit_test(test_fold_bad_input),
      cmocka_unit_test(test_tiers),
      cmocka_unit_test(test_rfc3339),
      cmocka_unit_test(test_partition_offsets),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
