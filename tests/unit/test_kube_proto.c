/*
 * test_kube_proto.c - the bounded protobuf reader for PartialObjectMetadataList
 * (m3b_kube_meta_list_decode): real answers of the test bed's kube-apiserver
 * (tests/unit/data, NAME.meta.pb with the same list as NAME.meta.json)
 * decode to the same metadata; every truncation and each kind of malformed
 * body is an error, never a read past the buffer (the ASan build checks
 * that); unknown fields are skipped.
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

#include <m3b/kube.h>

#define DATA_DIR M3B_SOURCE_DIR "/tests/unit/data/"

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  uint8_t *data;
  long size;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  size = ftell(f);
  assert_true(size > 0);
  rewind(f);
  data = malloc((size_t)size);
  assert_non_null(data);
  assert_int_equal(fread(data, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  *len = (size_t)size;
  return data;
}

/* The JSON member name of an item's metadata, or an empty object. */
static json_t *member_or_empty(json_t *md, const char *name) {
  json_t *v = json_object_get(md, name);
  return v ? json_incref(v) : json_object();
}

/* The pb fixture decodes to the metadata of the JSON fixture. */
static void check_fixture(const char *base) {
  char path[512];
  struct m3b_kube_meta_list list;
  char errstr[256];
  uint8_t *pb;
  size_t len, i;
  json_t *doc, *items;
  json_error_t jerr;
  const char *rv, *cont;

  snprintf(path, sizeof(path), DATA_DIR "%s.meta.pb", base);
  pb = read_file(path, &len);
  snprintf(path, sizeof(path), DATA_DIR "%s.meta.json", base);
  doc = json_load_file(path, 0, &jerr);
  assert_non_null(doc);
  items = json_object_get(doc, "items");

  assert_int_equal(
      m3b_kube_meta_list_decode(pb, len, &list, errstr, sizeof(errstr)),
      M3B_OK);
  assert_int_equal(json_array_size(list.items), json_array_size(items));
  assert_true(json_array_size(items) > 0);
  rv = json_string_value(
      json_object_get(json_object_get(doc, "metadata"), "resourceVersion"));
  cont = json_string_value(
      json_object_get(json_object_get(doc, "metadata"), "continue"));
  assert_string_equal(list.resource_version, rv);
  assert_string_equal(list.continue_token, cont ? cont : "");
  for (i = 0; i < json_array_size(items); i++) {
    json_t *want = json_object_get(json_array_get(items, i), "metadata");
    json_t *got = json_object_get(json_array_get(list.items, i), "metadata");
    static const char *const strings[] = {"name", "namespace", "uid",
                                          "resourceVersion"};
    size_t s;
    json_t *a, *b;
    for (s = 0; s < sizeof(strings) / sizeof(strings[0]); s++)
      assert_string_equal(json_string_value(json_object_get(got, strings[s])),
                          json_string_value(json_object_get(want, strings[s])));
    assert_int_equal(json_integer_value(json_object_get(got, "generation")),
                     json_integer_value(json_object_get(want, "generation")));
    a = member_or_empty(got, "labels");
    b = member_or_empty(want, "labels");
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    a = member_or_empty(got, "annotations");
    b = member_or_empty(want, "annotations");
    assert_true(json_equal(a, b));
    assert_true(json_object_size(a) > 0);
    json_decref(a);
    json_decref(b);
    /* what the index never reads is not carried */
    assert_null(json_object_get(got, "managedFields"));
  }
  m3b_kube_meta_list_cleanup(&list);
  assert_null(list.items);
  json_decref(doc);
  free(pb);
}

static void decodes_apiserver_answers(void **state) {
  (void)state;
  check_fixture("configmaps-page"); /* a page with a continue token */
  check_fixture("deployments");     /* generation, non-ASCII annotation */
}

/* Every prefix of a real answer: an error, or (ending on a field boundary
 * of the envelope's trailing fields) the whole list; copied to a buffer
 * of exactly that size so ASan catches a read past it. */
static void truncations_fail(void **state) {
  static const char *const files[] = {DATA_DIR "configmaps-page.meta.pb",
                                      DATA_DIR "deployments.meta.pb"};
  size_t f;
  (void)state;
  for (f = 0; f < sizeof(files) / sizeof(files[0]); f++) {
    size_t len, cut, full_items;
    uint8_t *pb = read_file(files[f], &len);
    struct m3b_kube_meta_list list;
    assert_int_equal(m3b_kube_meta_list_decode(pb, len, &list, NULL, 0),
                     M3B_OK);
    full_items = json_array_size(list.items);
    m3b_kube_meta_list_cleanup(&list);
    for (cut = 0; cut < len; cut++) {
      uint8_t *copy = malloc(cut ? cut : 1);
      char errstr[256];
      m3b_err_t err;
      assert_non_null(copy);
      memcpy(copy, pb, cut);
      err = m3b_kube_meta_list_decode(copy, cut, &list, errstr, sizeof(errstr));
      /* the envelope ends with contentEncoding and contentType, both
       * empty (4 bytes): only cuts among them can be whole */
      if (cut < len - 4) {
        assert_int_equal(err, M3B_ERR_KUBE_HTTP);
        assert_non_null(strstr(errstr, "malformed PartialObjectMetadataList"));
        assert_null(list.items);
      } else if (err == M3B_OK) {
        assert_int_equal(json_array_size(list.items), full_items);
      }
      m3b_kube_meta_list_cleanup(&list);
      free(copy);
    }
    free(pb);
  }
}

/* --- a small encoder for hand-made bodies -------------------------------- */

struct enc {
  uint8_t data[16384];
  size_t len;
};

static void put_byte(struct enc *e, uint8_t b) {
  assert_true(e->len < sizeof(e->data));
  e->data[e->len++] = b;
}

static void put_varint(struct enc *e, uint64_t v) {
  while (v >= 0x80) {
    put_byte(e, (uint8_t)(v | 0x80));
    v >>= 7;
  }
  put_byte(e, (uint8_t)v);
}

static void put_bytes(struct enc *e, uint32_t field, const void *p,
                      size_t len) {
  put_varint(e, (uint64_t)field << 3 | 2);
  put_varint(e, len);
  assert_true(e->len + len <= sizeof(e->data));
  memcpy(e->data + e->len, p, len);
  e->len += len;
}

static void put_str(struct enc *e, uint32_t field, const char *s) {
  put_bytes(e, field, s, strlen(s));
}

static void put_msg(struct enc *e, uint32_t field, const struct enc *m) {
  put_bytes(e, field, m->data, m->len);
}

static void put_map_entry(struct enc *e, uint32_t field, const char *key,
                          const char *value) {
  struct enc m = {{0}, 0};
  put_str(&m, 1, key);
  put_str(&m, 2, value);
  put_msg(e, field, &m);
}

/* Unknown fields of all four wire types, as a newer apiserver might add. */
static void put_unknown(struct enc *e) {
  put_varint(e, (uint64_t)900 << 3 | 0);
  put_varint(e, 123456789);
  put_varint(e, (uint64_t)901 << 3 | 1);
  {
    int i;
    for (i = 0; i < 8; i++)
      put_byte(e, 0xff);
  }
  put_varint(e, (uint64_t)902 << 3 | 5);
  put_byte(e, 1);
  put_byte(e, 2);
  put_byte(e, 3);
  put_byte(e, 4);
  put_str(e, 903, "ignored");
}

/* What each test changes in an otherwise valid body. */
struct variant {
  const char *name;
  const char *kind;          /* the envelope's kind */
  const char *label_value;   /* of the one label */
  const char *ann_key;       /* of the one annotation */
  const char *rv;            /* the list's resourceVersion */
  const char *encoding;      /* contentEncoding */
  size_t continue_len;       /* a continue token of this many 'a' */
  int unknown_fields;        /* add unknown fields at every level */
  const uint8_t *raw_suffix; /* bytes appended to the list message */
  size_t raw_suffix_len;
  m3b_err_t want;
};

static void build(struct enc *out, const struct variant *v) {
  struct enc md = {{0}, 0}, item = {{0}, 0}, lm = {{0}, 0}, list = {{0}, 0},
             tm = {{0}, 0};
  static char cont[5000];
  memset(out, 0, sizeof(*out));
  put_str(&md, 1, "cm-1");
  put_str(&md, 3, "shop");
  put_str(&md, 5, "0b6c5d1e-1111-2222-3333-444455556666");
  put_str(&md, 6, "4242");
  put_varint(&md, 7 << 3 | 0);
  put_varint(&md, 3);
  put_map_entry(&md, 11, "app.kubernetes.io/managed-by",
                v->label_value ? v->label_value : "m3bridge");
  put_map_entry(&md, 12, v->ann_key ? v->ann_key : "m3bridge.io/plane", "eu");
  if (v->unknown_fields)
    put_unknown(&md);
  put_msg(&item, 1, &md);
  if (v->unknown_fields)
    put_unknown(&item);
  put_str(&lm, 2, v->rv ? v->rv : "4243");
  assert_true(v->continue_len < sizeof(cont));
  memset(cont, 'a', v->continue_len);
  cont[v->continue_len] = '\0';
  put_str(&lm, 3, cont);
  if (v->unknown_fields)
    put_unknown(&lm);
  put_msg(&list, 1, &lm);
  put_msg(&list, 2, &item);
  put_msg(&list, 2, &item);
  if (v->unknown_fields)
    put_unknown(&list);
  if (v->raw_suffix_len) {
    memcpy(list.data + list.len, v->raw_suffix, v->raw_suffix_len);
    list.len += v->raw_suffix_len;
  }
  put_str(&tm, 1, "meta.k8s.io/v1");
  put_str(&tm, 2, v->kind ? v->kind : "PartialObjectMetadataList");
  memcpy(out->data, "k8s", 4);
  out->len = 4;
  put_msg(out, 1, &tm);
  put_msg(out, 2, &list);
  put_str(out, 3, v->encoding ? v->encoding : "");
  put_str(out, 4, "application/vnd.kubernetes.protobuf");
  if (v->unknown_fields)
    put_unknown(out);
}

static void hand_made_bodies(void **state) {
  static const uint8_t overlong_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  static const uint8_t past_end[] = {0x12, 0x7f, 0x0a};
  static const uint8_t group[] = {0x1b};
  static const uint8_t field_zero[] = {0x02, 0x00};
  static const uint8_t bad_item[] = {0x12, 0x02, 0x0a, 0x05};
  char long_key[M3B_KUBE_META_KEY_MAX + 2];
  struct variant cases[] = {
      {.name = "valid", .want = M3B_OK},
      {.name = "unknown fields everywhere",
       .unknown_fields = 1,
       .want = M3B_OK},
      {.name = "longest continue token", .continue_len = 4095, .want = M3B_OK},
      {.name = "another kind of list",
       .kind = "ConfigMapList",
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "gzip", .encoding = "gzip", .want = M3B_ERR_KUBE_HTTP},
      {.name = "label not UTF-8",
       .label_value = "m3\xff",
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "key too long", .ann_key = long_key, .want = M3B_ERR_KUBE_HTTP},
      {.name = "continue token too long",
       .continue_len = 4096,
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "resourceVersion too long",
       .rv = "1234567890123456789012345678901234567890123456789012345678901234",
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "varint of 11 bytes",
       .raw_suffix = overlong_varint,
       .raw_suffix_len = sizeof(overlong_varint),
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "length past the end",
       .raw_suffix = past_end,
       .raw_suffix_len = sizeof(past_end),
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "group wire type",
       .raw_suffix = group,
       .raw_suffix_len = sizeof(group),
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "field number 0",
       .raw_suffix = field_zero,
       .raw_suffix_len = sizeof(field_zero),
       .want = M3B_ERR_KUBE_HTTP},
      {.name = "item whose metadata overruns it",
       .raw_suffix = bad_item,
       .raw_suffix_len = sizeof(bad_item),
       .want = M3B_ERR_KUBE_HTTP},
  };
  size_t i;
  (void)state;
  memset(long_key, 'k', sizeof(long_key) - 1);
  long_key[sizeof(long_key) - 1] = '\0';
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    static struct enc body;
    struct m3b_kube_meta_list list;
    char errstr[256];
    m3b_err_t err;
    build(&body, &cases[i]);
    err = m3b_kube_meta_list_decode(body.data, body.len, &list, errstr,
                                    sizeof(errstr));
    if (err != cases[i].want)
      fail_msg("%s: got %s (%s), want %s", cases[i].name, m3b_err_name(err),
               errstr, m3b_err_name(cases[i].want));
    if (err == M3B_OK) {
      json_t *md = json_object_get(json_array_get(list.items, 0), "metadata");
      assert_int_equal(json_array_size(list.items), 2);
      assert_string_equal(json_string_value(json_object_get(md, "name")),
                          "cm-1");
      assert_string_equal(json_string_value(json_object_get(md, "namespace")),
                          "shop");
      assert_string_equal(
          json_string_value(json_object_get(md, "resourceVersion")), "4242");
      assert_int_equal(json_integer_value(json_object_get(md, "generation")),
                       3);
      assert_string_equal(
          json_string_value(json_object_get(json_object_get(md, "labels"),
                                            "app.kubernetes.io/managed-by")),
          "m3bridge");
      assert_string_equal(
          json_string_value(json_object_get(json_object_get(md, "annotations"),
                                            "m3bridge.io/plane")),
          "eu");
      assert_string_equal(list.resource_version, "4243");
      assert_int_equal(strlen(list.continue_token), cases[i].continue_len);
      /* only the known members */
      assert_int_equal(json_object_size(md), 7);
    } else {
      assert_null(list.items);
      assert_true(errstr[0] != '\0');
    }
    m3b_kube_meta_list_cleanup(&list);
  }
}

static void bad_arguments(void **state) {
  static const uint8_t json_body[] = "{\"kind\":\"Status\"}";
  struct m3b_kube_meta_list list;
  (void)state;
  assert_int_equal(m3b_kube_meta_list_decode(NULL, 4, &list, NULL, 0),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(m3b_kube_meta_list_decode(json_body, 4, NULL, NULL, 0),
                   M3B_ERR_INVALID_ARG);
  /* a JSON answer is not protobuf */
  assert_int_equal(m3b_kube_meta_list_decode(json_body, sizeof(json_body) - 1,
                                             &list, NULL, 0),
                   M3B_ERR_KUBE_HTTP);
  assert_int_equal(m3b_kube_meta_list_decode(NULL, 0, &list, NULL, 0),
                   M3B_ERR_KUBE_HTTP);
  m3b_kube_meta_list_cleanup(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(decodes_apiserver_answers),
      cmocka_unit_test(truncations_fail),
      cmocka_unit_test(hand_made_bodies),
      cmocka_unit_test(bad_arguments),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
