/*
 * test_index.c - the managed-object index without an apiserver: put, get,
 * replace and remove across table growth, concurrent writers, the key
 * length limit, remembered kinds, and reading an entry back from an
 * object's label and annotations (ours, another plane's, malformed).
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
      cmocka_unit_test(test_listed_and_foreign_before_a_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
