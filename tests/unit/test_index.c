/*
 * test_index.c - the managed-object index without an apiserver: put, get,
 * replace and remove across table growth, concurrent writers, the key
 * length limit, remembered kinds, and reading an entry back from an
 * object's label and annotations (ours, another plane's, malformed); what
 * the WATCH tells the index (m3b_index_observe: drifted or replaced) and
 * the key prefixes it watches.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <pthread.h>

#include <m3b/index.h>

static void test_put_get_remove_grow(void **state) {
  m3b_index_t *index = m3b_index_new(NULL, 0);
  struct m3b_index_entry entry, got;
  char key[64];
  int i;
  (void)state;

  assert_non_null(index);
  memset(&entry, 0, sizeof(entry));
  for (i = 0; i < 5000; i++) {
    snprintf(key, sizeof(key), "/v1/ConfigMap/shop/cm-%d", i);
    entry.generation = i;
    entry.manifest_sha256[0] = (uint8_t)i;
    assert_int_equal(m3b_index_put(index, key, &entry), M3B_OK);
  }
  assert_int_equal(m3b_index_count(index), 5000);
  for (i = 0; i < 5000; i += 7) {
    snprintf(key, sizeof(key), "/v1/ConfigMap/shop/cm-%d", i);
    assert_int_equal(m3b_index_get(index, key, &got), M3B_OK);
    assert_int_equal(got.generation, i);
    assert_int_equal(got.manifest_sha256[0], (uint8_t)i);
  }
  /* replace keeps the count */
  entry.generation = 99999;
  assert_int_equal(m3b_index_put(index, "/v1/ConfigMap/shop/cm-7", &entry),
                   M3B_OK);
  assert_int_equal(m3b_index_count(index), 5000);
  assert_int_equal(m3b_index_get(index, "/v1/ConfigMap/shop/cm-7", &got),
                   M3B_OK);
  assert_int_equal(got.generation, 99999);
  assert_int_equal(m3b_index_remove(index, "/v1/ConfigMap/shop/cm-7"), M3B_OK);
  assert_int_equal(m3b_index_remove(index, "/v1/ConfigMap/shop/cm-7"),
                   M3B_ERR_NOT_FOUND);
  assert_int_equal(m3b_index_get(index, "/v1/ConfigMap/shop/cm-7", &got),
                   M3B_ERR_NOT_FOUND);
  assert_int_equal(m3b_index_count(index), 4999);
  m3b_index_destroy(index);
  m3b_index_destroy(NULL);
}

static void test_key_limit(void **state) {
  m3b_index_t *index = m3b_index_new(NULL, 0);
  struct m3b_index_entry entry;
  char *key = malloc(M3B_OBJKEY_MAX + 2);
  (void)state;
  assert_non_null(key);
  memset(&entry, 0, sizeof(entry));
  memset(key, 'a', M3B_OBJKEY_MAX + 1);
  key[M3B_OBJKEY_MAX + 1] = '\0';
  assert_int_equal(m3b_index_put(index, key, &entry), M3B_ERR_LIMIT);
  key[M3B_OBJKEY_MAX] = '\0';
  assert_int_equal(m3b_index_put(index, key, &entry), M3B_OK);
  free(key);
  m3b_index_destroy(index);
}

struct writer {
  m3b_index_t *index;
  int id;
};

static void *write_many(void *arg) {
  struct writer *w = arg;
  struct m3b_index_entry entry, got;
  char key[64];
  int i;
  memset(&entry, 0, sizeof(entry));
  for (i = 0; i < 2000; i++) {
    snprintf(key, sizeof(key), "apps/v1/Deployment/t%d/d-%d", w->id, i);
    entry.generation = i;
    if (m3b_index_put(w->index, key, &entry) != M3B_OK ||
        m3b_index_get(w->index, key, &got) != M3B_OK || got.generation != i)
      return (void *)1;
  }
  return NULL;
}

static void test_concurrent_writers(void **state) {
  m3b_index_t *index = m3b_index_new(NULL, 0);
  pthread_t threads[4];
  struct writer writers[4];
  void *ret;
  int i;
  (void)state;
  for (i = 0; i < 4; i++) {
    writers[i].index = index;
    writers[i].id = i;
    assert_int_equal(pthread_create(&threads[i], NULL, write_many, &writers[i]),
                     0);
  }
  for (i = 0; i < 4; i++) {
    assert_int_equal(pthread_join(threads[i], &ret), 0);
    assert_null(ret);
  }
  assert_int_equal(m3b_index_count(index), 8000);
  m3b_index_destroy(index);
}

static void test_note_kind(void **state) {
  m3b_index_t *index = m3b_index_new(NULL, 0);
  char kind[32];
  int i;
  (void)state;
  assert_int_equal(m3b_index_note_kind(index, "v1", "ConfigMap"), M3B_OK);
  assert_int_equal(m3b_index_note_kind(index, "example.com/v1", "Widget"),
                   M3B_OK);
  assert_int_equal(m3b_index_note_kind(index, "example.com/v1", "Widget"),
                   M3B_OK);
  assert_int_equal(m3b_index_note_kind(index, "", "Widget"),
                   M3B_ERR_INVALID_ARG);
  for (i = 0; i < M3B_INDEX_MAX_KINDS - 1; i++) {
    snprintf(kind, sizeof(kind), "Kind%d", i);
    assert_int_equal(m3b_index_note_kind(index, "example.com/v1", kind),
                     M3B_OK);
  }
  assert_int_equal(m3b_index_note_kind(index, "example.com/v1", "OneTooMany"),
                   M3B_ERR_LIMIT);
  m3b_index_destroy(index);
}

#define SHA_HEX                                                                \
  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static json_t *object(const char *label, const char *plane, const char *gen,
                      const char *sha) {
  json_t *obj =
      json_pack("{s:{s:s, s:s, s:s, s:{}, s:{}}}", "metadata", "name", "web",
                "uid", "u-1", "resourceVersion", "17", "labels", "annotations");
  json_t *md = json_object_get(obj, "metadata");
  if (label)
    json_object_set_new(json_object_get(md, "labels"), M3B_LABEL_MANAGED_BY,
                        json_string(label));
  if (plane)
    json_object_set_new(json_object_get(md, "annotations"), M3B_ANN_PLANE,
                        json_string(plane));
  json_object_set_new(json_object_get(md, "annotations"), M3B_ANN_KEY,
                      json_string("/v1/ConfigMap/shop/web"));
  if (gen)
    json_object_set_new(json_object_get(md, "annotations"), M3B_ANN_GENERATION,
                        json_string(gen));
  if (sha)
    json_object_set_new(json_object_get(md, "annotations"), M3B_ANN_SHA256,
                        json_string(sha));
  return obj;
}

static void test_entry_from_object(void **state) {
  struct m3b_index_entry entry;
  char key[M3B_OBJKEY_MAX + 1];
  json_t *obj;
  (void)state;

  obj = object("m3bridge", "it", "12", SHA_HEX);
  assert_int_equal(
      m3b_index_entry_from_object(obj, "it", &entry, key, sizeof(key)), M3B_OK);
  assert_string_equal(key, "/v1/ConfigMap/shop/web");
  assert_int_equal(entry.generation, 12);
  assert_int_equal(entry.manifest_sha256[1], 0x11);
  assert_int_equal(entry.manifest_sha256[31], 0xff);
  assert_string_equal(entry.uid, "u-1");
  assert_string_equal(entry.resource_version, "17");
  assert_int_equal(entry.deleted, 0);
  /* another plane's object is not ours */
  assert_int_equal(
      m3b_index_entry_from_object(obj, "eu1", &entry, key, sizeof(key)),
      M3B_ERR_NOT_MANAGED);
  json_decref(obj);

  obj = object("helm", "it", "12", SHA_HEX);
  assert_int_equal(
      m3b_index_entry_from_object(obj, "it", &entry, key, sizeof(key)),
      M3B_ERR_NOT_MANAGED);
  json_decref(obj);
  obj = object("m3bridge", NULL, "12", SHA_HEX);
  assert_int_equal(
      m3b_index_entry_from_object(obj, "it", &entry, key, sizeof(key)),
      M3B_ERR_NOT_MANAGED);
  json_decref(obj);

  obj = object("m3bridge", "it", "-1", SHA_HEX);
  assert_int_equal(
      m3b_index_entry_from_object(obj, "it", &entry, key, sizeof(key)),
      M3B_ERR_BAD_MANIFEST);
  json_decref(obj);
  obj = object("m3bridge", "it", "12x", SHA_HEX);
  assert_int_equal(
      m3b_index_entry_from_object(obj, "it", &entry, key, sizeof(key)),
      M3B_ERR_BAD_MANIFEST);
  json_decref(obj);
  obj = object("m3bridge", "it", "12", "ABCD");
  assert_int_equal(
      m3b_index_entry_from_object(obj, "it", &entry, key, sizeof(key)),
      M3B_ERR_BAD_MANIFEST);
  json_decref(obj);
}

/* The live object of a case: object() changed by a few fields. */
static json_t *live(const char *label, const char *gen, const char *sha,
                    const char *uid, const char *rv, json_int_t generation) {
  json_t *obj = object(label, "it", gen, sha);
  json_t *md = json_object_get(obj, "metadata");
  if (uid)
    json_object_set_new(md, "uid", json_string(uid));
  if (rv)
    json_object_set_new(md, "resourceVersion", json_string(rv));
  if (generation)
    json_object_set_new(md, "generation", json_integer(generation));
  return obj;
}

#define OTHER_SHA                                                              \
  "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"

static void test_observe(void **state) {
  /* what the index recorded after our write of generation 12: uid u-1,
   * resourceVersion 17, metadata.generation object_generation */
  static const struct {
    const char *name;
    int deleted;
    int64_t object_generation;
    int gone; /* the WATCH says DELETED (object NULL) */
    const char *label, *gen, *sha, *uid, *rv;
    json_int_t generation;
    int drifted;            /* afterwards */
    int64_t generation_out; /* of the entry afterwards */
  } cases[] = {
      {"unchanged", 0, 0, 0, "m3bridge", "12", SHA_HEX, NULL, NULL, 0, 0, 12},
      {"deleted by hand", 0, 0, 1, NULL, NULL, NULL, NULL, NULL, 0, 1, 12},
      {"edited (no metadata.generation)", 0, 0, 0, "m3bridge", "12", SHA_HEX,
       NULL, "18", 0, 1, 12},
      {"re-created", 0, 0, 0, "m3bridge", "12", SHA_HEX, "u-2", NULL, 0, 1, 12},
      {"other manifest at the same generation", 0, 0, 0, "m3bridge", "12",
       OTHER_SHA, NULL, NULL, 0, 1, 12},
      {"label taken away", 0, 0, 0, "helm", "12", SHA_HEX, NULL, NULL, 0, 1,
       12},
      {"an older event of ours written over it", 0, 0, 0, "m3bridge", "11",
       OTHER_SHA, NULL, "18", 0, 1, 12},
      {"another replica applied 13", 0, 0, 0, "m3bridge", "13", OTHER_SHA, NULL,
       "18", 0, 0, 13},
      {"status update of a workload", 0, 3, 0, "m3bridge", "12", SHA_HEX, NULL,
       "18", 3, 0, 12},
      {"spec edited on a workload", 0, 3, 0, "m3bridge", "12", SHA_HEX, NULL,
       "18", 4, 1, 12},
      {"our DELETE, then the DELETED event", 1, 0, 1, NULL, NULL, NULL, NULL,
       NULL, 0, 0, 12},
      {"our DELETE, yet it exists", 1, 0, 0, "m3bridge", "12", SHA_HEX, NULL,
       NULL, 0, 1, 12},
      {"our DELETE, then a newer APPLY by a replica", 1, 0, 0, "m3bridge", "14",
       SHA_HEX, NULL, NULL, 0, 0, 14},
  };
  const char *key = "/v1/ConfigMap/shop/web";
  size_t i;
  (void)state;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    m3b_index_t *index = m3b_index_new(NULL, 0);
    struct m3b_index_entry entry, got;
    json_t *obj = NULL;
    int drifted = -1;

    char base_key[M3B_OBJKEY_MAX + 1];
    json_t *base = object("m3bridge", "it", "12", SHA_HEX);
    assert_int_equal(m3b_index_entry_from_object(base, "it", &entry, base_key,
                                                 sizeof(base_key)),
                     M3B_OK);
    json_decref(base);
    entry.deleted = cases[i].deleted;
    entry.object_generation = cases[i].object_generation;
    assert_int_equal(m3b_index_put(index, key, &entry), M3B_OK);
    if (!cases[i].gone)
      obj = live(cases[i].label, cases[i].gen, cases[i].sha, cases[i].uid,
                 cases[i].rv, cases[i].generation);
    assert_int_equal(m3b_index_observe(index, "it", key, obj, &drifted),
                     M3B_OK);
    assert_int_equal(m3b_index_get(index, key, &got), M3B_OK);
    if (got.drifted != cases[i].drifted || drifted != cases[i].drifted ||
        got.generation != cases[i].generation_out)
      fail_msg("%s: drifted %d (reported %d) generation %lld", cases[i].name,
               got.drifted, drifted, (long long)got.generation);
    /* once drifted it stays so, whatever comes, until our next write */
    if (got.drifted) {
      json_t *same = object("m3bridge", "it", "12", SHA_HEX);
      assert_int_equal(m3b_index_observe(index, "it", key, same, &drifted),
                       M3B_OK);
      assert_int_equal(drifted, 0);
      assert_int_equal(m3b_index_get(index, key, &got), M3B_OK);
      assert_true(got.drifted);
      entry.deleted = 0;
      assert_int_equal(m3b_index_put(index, key, &entry), M3B_OK);
      assert_int_equal(m3b_index_get(index, key, &got), M3B_OK);
      assert_false(got.drifted);
      json_decref(same);
    }
    json_decref(obj);
    m3b_index_destroy(index);
  }
}

static void test_observe_unknown_keys(void **state) {
  m3b_index_t *index = m3b_index_new(NULL, 0);
  struct m3b_index_entry got;
  json_t *obj;
  int drifted = -1;
  (void)state;

  /* another replica's object the index has not seen: taken in */
  obj = object("m3bridge", "it", "12", SHA_HEX);
  assert_int_equal(
      m3b_index_observe(index, "it", "/v1/ConfigMap/shop/web", obj, &drifted),
      M3B_OK);
  assert_int_equal(drifted, 0);
  assert_int_equal(m3b_index_get(index, "/v1/ConfigMap/shop/web", &got),
                   M3B_OK);
  assert_int_equal(got.generation, 12);
  /* under another key than its annotation says, or another plane's: no */
  assert_int_equal(
      m3b_index_observe(index, "it", "/v1/ConfigMap/shop/copy", obj, NULL),
      M3B_OK);
  assert_int_equal(
      m3b_index_observe(index, "eu1", "/v1/ConfigMap/shop/x", obj, NULL),
      M3B_OK);
  assert_int_equal(
      m3b_index_observe(index, "it", "/v1/ConfigMap/shop/gone", NULL, &drifted),
      M3B_OK);
  assert_int_equal(drifted, 0);
  assert_int_equal(m3b_index_count(index), 1);
  assert_int_equal(m3b_index_observe(NULL, "it", "k", obj, NULL),
                   M3B_ERR_INVALID_ARG);
  json_decref(obj);
  m3b_index_destroy(index);
}

static void test_prefixes(void **state) {
  static const char *const keys[] = {
      "/v1/ConfigMap/shop/a",      "/v1/ConfigMap/shop/b",
      "apps/v1/Deployment/shop/w", "/v1/ConfigMap/m3-it/a",
      "/v1/Namespace//shop",
  };
  static const char *const want[] = {
      "/v1/ConfigMap/shop/",
      "apps/v1/Deployment/shop/",
      "/v1/ConfigMap/m3-it/",
      "/v1/Namespace//",
  };
  m3b_index_t *index = m3b_index_new(NULL, 0);
  struct m3b_index_entry entry;
  char prefix[M3B_INDEX_PREFIX_MAX + 1], key[64];
  size_t i;
  (void)state;

  memset(&entry, 0, sizeof(entry));
  /* a deleted entry names no prefix: nothing of it is left to watch */
  entry.deleted = 1;
  assert_int_equal(m3b_index_put(index, "batch/v1/Job/shop/j", &entry), M3B_OK);
  entry.deleted = 0;
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
    assert_int_equal(m3b_index_put(index, keys[i], &entry), M3B_OK);
  for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    assert_int_equal(m3b_index_prefix(index, i, prefix, sizeof(prefix)),
                     M3B_OK);
    assert_string_equal(prefix, want[i]);
  }
  assert_int_equal(m3b_index_prefix(index, i, prefix, sizeof(prefix)),
                   M3B_ERR_NOT_FOUND);
  assert_int_equal(m3b_index_prefix(index, 0, prefix, 5), M3B_ERR_LIMIT);
  /* bounded: past M3B_INDEX_MAX_PREFIXES namespaces they are not kept */
  for (i = 0; i < M3B_INDEX_MAX_PREFIXES + 10; i++) {
    snprintf(key, sizeof(key), "/v1/ConfigMap/ns-%zu/a", i);
    assert_int_equal(m3b_index_put(index, key, &entry), M3B_OK);
  }
  assert_int_equal(m3b_index_prefix(index, M3B_INDEX_MAX_PREFIXES - 1, prefix,
                                    sizeof(prefix)),
                   M3B_OK);
  assert_int_equal(
      m3b_index_prefix(index, M3B_INDEX_MAX_PREFIXES, prefix, sizeof(prefix)),
      M3B_ERR_NOT_FOUND);
  m3b_index_destroy(index);
}

/* What a load finds (listed kinds, other planes' objects) is only known
 * after a load: an index that has not loaded trusts nothing. */
static void test_listed_and_foreign_before_a_load(void **state) {
  m3b_index_t *index = m3b_index_new(NULL, 0);
  (void)state;
  assert_non_null(index);
  assert_int_equal(m3b_index_listed(index, "v1", "ConfigMap"), 0);
  assert_int_equal(m3b_index_note_kind(index, "example.com/v1", "Widget"),
                   M3B_OK);
  assert_int_equal(m3b_index_listed(index, "example.com/v1", "Widget"), 0);
  assert_int_equal(m3b_index_foreign(index, "/v1/ConfigMap/shop/a"), 0);
  assert_int_equal(m3b_index_listed(NULL, "v1", "ConfigMap"), 0);
  assert_int_equal(m3b_index_listed(index, NULL, "ConfigMap"), 0);
  assert_int_equal(m3b_index_foreign(NULL, "/v1/ConfigMap/shop/a"), 0);
  assert_int_equal(m3b_index_foreign(index, NULL), 0);
  m3b_index_destroy(index);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_put_get_remove_grow),
      cmocka_unit_test(test_key_limit),
      cmocka_unit_test(test_concurrent_writers),
      cmocka_unit_test(test_note_kind),
      cmocka_unit_test(test_entry_from_object),
      cmocka_unit_test(test_observe),
      cmocka_unit_test(test_observe_unknown_keys),
      cmocka_unit_test(test_prefixes),
      cmocka_unit_test(test_listed_and_foreign_before_a_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
