/* test_codec.c - single-object encoding: header bytes, round trips,
 * schema evolution in both directions (v0 <-> v1 <-> v2 of DesiredState,
 * test-only schemas in tests/unit/data), and a table of damaged inputs,
 * each of which must fail with its own error code and a message. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/codec.h>
#include <m3b/event.h>

#define DATA_DIR M3B_SOURCE_DIR "/tests/unit/data/"

/* A small schema that makes hand-written bodies easy; all-zero body bytes
 * are a valid record: "", "", A, [], null, false, 0. */
static const char test_schema[] =
    "{\"type\":\"record\",\"name\":\"T\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"s\",\"type\":\"string\"},"
    "{\"name\":\"b\",\"type\":\"bytes\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\",\"B\"]}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"u\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"f\",\"type\":\"boolean\"},"
    "{\"name\":\"i\",\"type\":\"int\"}]}";

static char *read_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  char *text;
  long n;
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  n = ftell(f);
  assert_true(n > 0);
  rewind(f);
  text = malloc((size_t)n + 1);
  assert_non_null(text);
  assert_int_equal(fread(text, 1, (size_t)n, f), (size_t)n);
  text[n] = 0;
  fclose(f);
  *len_out = (size_t)n;
  return text;
}

static void add_file(m3b_schema_registry_t *registry, const char *path,
                     int flags) {
  size_t len = 0;
  char *text = read_file(path, &len);
  char errstr[256] = "";
  if (m3b_schema_registry_add(registry, text, len, flags, NULL, errstr,
                              sizeof(errstr)))
    fail_msg("%s: %s", path, errstr);
  free(text);
}

/* builtin registry, plus extra schema files (not current) */
static m3b_schema_registry_t *registry_with(const char *current_file,
                                            const char *other_file) {
  char errstr[256] = "";
  m3b_schema_registry_t *registry =
      m3b_schema_registry_new_builtin(errstr, sizeof(errstr));
  if (!registry)
    fail_msg("%s", errstr);
  if (other_file)
    add_file(registry, other_file, 0);
  if (current_file)
    add_file(registry, current_file, M3B_SCHEMA_CURRENT);
  return registry;
}

static json_t *desired_json(void) {
  json_error_t jerr;
  json_t *value = json_loads(
      "{\"plane\":\"eu1\",\"key\":\"apps/v1/Deployment/shop/web\","
      "\"generation\":7,\"op\":\"APPLY\",\"manifest\":\"{\\\"a\\\":1}\","
      "\"manifest_sha256\":\"0123456789abcdef0123456789abcdef\","
      "\"release_id\":\"r-1\",\"issued_at\":1700000000000,"
      "\"correlation_id\":\"c-9\"}",
      0, &jerr);
  assert_non_null(value);
  return value;
}

static void encode_ok(const m3b_codec_t *codec, const char *name,
                      const json_t *value, struct m3b_buf *out) {
  char errstr[256] = "";
  if (m3b_codec_encode(codec, name, value, out, errstr, sizeof(errstr)))
    fail_msg("encode: %s", errstr);
}

static json_t *decode_ok(const m3b_codec_t *codec, const struct m3b_buf *in) {
  char errstr[256] = "";
  json_t *value = NULL;
  if (m3b_codec_decode(codec, in->data, in->len, NULL, &value, errstr,
                       sizeof(errstr)))
    fail_msg("decode: %s", errstr);
  return value;
}

static void test_header_and_round_trip(void **state) {
  m3b_schema_registry_t *registry = registry_with(NULL, NULL);
  m3b_codec_t *codec = m3b_codec_new(registry, NULL, NULL, 0);
  json_t *value = desired_json();
  json_t *back;
  struct m3b_buf out;
  uint64_t fp = 0;
  uint64_t peeked = 0;
  const char *name = NULL;
  size_t i;
  (void)state;

  m3b_buf_init(&out, 1 << 20);
  encode_ok(codec, M3B_RECORD_DESIRED_STATE, value, &out);
  assert_int_equal(
      m3b_schema_registry_current(registry, M3B_RECORD_DESIRED_STATE, &fp),
      M3B_OK);
  assert_int_equal(out.data[0], 0xC3);
  assert_int_equal(out.data[1], 0x01);
  for (i = 0; i < 8; i++)
    assert_int_equal(out.data[2 + i], (uint8_t)(fp >> (8 * i)));
  /* body starts with plane: zig-zag length 3 (6) then "eu1" */
  assert_int_equal(out.data[10], 6);
  assert_memory_equal(out.data + 11, "eu1", 3);

  assert_int_equal(
      m3b_codec_peek(codec, out.data, out.len, &peeked, &name, NULL, 0),
      M3B_OK);
  assert_true(peeked == fp);
  assert_string_equal(name, M3B_RECORD_DESIRED_STATE);
  back = decode_ok(codec, &out);
  assert_true(json_equal(back, value));

  json_decref(back);
  json_decref(value);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(codec);
  m3b_schema_registry_destroy(registry);
}

static void test_defaults_on_encode(void **state) {
  m3b_schema_registry_t *registry = registry_with(NULL, NULL);
  m3b_codec_t *codec = m3b_codec_new(registry, NULL, NULL, 0);
  json_t *value = desired_json();
  json_t *back;
  struct m3b_buf out;
  (void)state;
  m3b_buf_init(&out, 1 << 20);
  json_object_del(value, "correlation_id");
  encode_ok(codec, M3B_RECORD_DESIRED_STATE, value, &out);
  back = decode_ok(codec, &out);
  assert_string_equal(
      json_string_value(json_object_get(back, "correlation_id")), "");
  json_decref(back);
  json_decref(value);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(codec);
  m3b_schema_registry_destroy(registry);
}

/* v1 (this build) reads v2 (newer: an added optional field, an added enum
 * symbol), and v2 reads v1, getting the added field's default. */
static void test_evolution_v1_v2(void **state) {
  m3b_schema_registry_t *v1 =
      registry_with(NULL, DATA_DIR "DesiredState.v2.avsc");
  m3b_schema_registry_t *v2 =
      registry_with(DATA_DIR "DesiredState.v2.avsc", NULL);
  m3b_codec_t *c1 = m3b_codec_new(v1, NULL, NULL, 0);
  m3b_codec_t *c2 = m3b_codec_new(v2, NULL, NULL, 0);
  json_t *value = desired_json();
  json_t *back;
  struct m3b_buf out;
  char errstr[256] = "";
  (void)state;
  m3b_buf_init(&out, 1 << 20);

  /* newer writer, older reader: the unknown field is skipped */
  json_object_set_new(value, "requested_by", json_string("alice"));
  encode_ok(c2, M3B_RECORD_DESIRED_STATE, value, &out);
  back = decode_ok(c1, &out);
  assert_null(json_object_get(back, "requested_by"));
  json_object_del(value, "requested_by");
  assert_true(json_equal(back, value));
  json_decref(back);

  /* a symbol the older reader lacks, and Op has no default: BAD_ENUM */
  m3b_buf_reset(&out);
  json_object_set_new(value, "op", json_string("ADOPT"));
  encode_ok(c2, M3B_RECORD_DESIRED_STATE, value, &out);
  back = NULL;
  assert_int_equal(m3b_codec_decode(c1, out.data, out.len, NULL, &back, errstr,
                                    sizeof(errstr)),
                   M3B_ERR_BAD_ENUM);
  assert_null(back);
  assert_non_null(strstr(errstr, "ADOPT"));

  /* older writer, newer reader: the added field takes its default */
  m3b_buf_reset(&out);
  json_object_set_new(value, "op", json_string("DELETE"));
  encode_ok(c1, M3B_RECORD_DESIRED_STATE, value, &out);
  back = decode_ok(c2, &out);
  assert_true(json_is_null(json_object_get(back, "requested_by")));
  json_object_del(back, "requested_by");
  assert_true(json_equal(back, value));
  json_decref(back);

  json_decref(value);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(c1);
  m3b_codec_destroy(c2);
  m3b_schema_registry_destroy(v1);
  m3b_schema_registry_destroy(v2);
}

/* v1 reads v0 (older: no correlation_id) and v0 reads v1. */
static void test_evolution_v0_v1(void **state) {
  m3b_schema_registry_t *v1 =
      registry_with(NULL, DATA_DIR "DesiredState.v0.avsc");
  m3b_schema_registry_t *v0 =
      registry_with(DATA_DIR "DesiredState.v0.avsc", NULL);
  m3b_codec_t *c1 = m3b_codec_new(v1, NULL, NULL, 0);
  m3b_codec_t *c0 = m3b_codec_new(v0, NULL, NULL, 0);
  json_t *value = desired_json();
  json_t *back;
  struct m3b_desired_state event;
  struct m3b_buf out;
  char errstr[256] = "";
  (void)state;
  m3b_buf_init(&out, 1 << 20);

  json_object_del(value, "correlation_id");
  encode_ok(c0, M3B_RECORD_DESIRED_STATE, value, &out);
  back = decode_ok(c1, &out);
  assert_string_equal(
      json_string_value(json_object_get(back, "correlation_id")), "");
  json_decref(back);
  /* the struct API sees the default too */
  m3b_desired_state_init(&event);
  if (m3b_desired_state_decode(c1, out.data, out.len, &event, errstr,
                               sizeof(errstr)))
    fail_msg("%s", errstr);
  assert_string_equal(event.correlation_id, "");
  assert_int_equal(event.generation, 7);
  m3b_desired_state_cleanup(&event);

  m3b_buf_reset(&out);
  json_object_set_new(value, "correlation_id", json_string("c-1"));
  encode_ok(c1, M3B_RECORD_DESIRED_STATE, value, &out);
  back = decode_ok(c0, &out);
  assert_null(json_object_get(back, "correlation_id"));
  json_decref(back);

  json_decref(value);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(c0);
  m3b_codec_destroy(c1);
  m3b_schema_registry_destroy(v0);
  m3b_schema_registry_destroy(v1);
}

/* A reader field without default that the writer lacks cannot resolve. */
static void test_evolution_missing_default(void **state) {
  const char *w = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}";
  const char *r = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
                  "\"x\",\"type\":\"int\"}]}";
  m3b_schema_registry_t *writer = m3b_schema_registry_new(NULL, 0);
  m3b_schema_registry_t *reader = m3b_schema_registry_new(NULL, 0);
  m3b_codec_t *cw = m3b_codec_new(writer, NULL, NULL, 0);
  m3b_codec_t *cr = m3b_codec_new(reader, NULL, NULL, 0);
  json_t *empty = json_object();
  json_t *back = NULL;
  struct m3b_buf out;
  char errstr[256] = "";
  (void)state;
  m3b_buf_init(&out, 64);
  assert_int_equal(m3b_schema_registry_add(writer, w, strlen(w),
                                           M3B_SCHEMA_CURRENT, NULL, NULL, 0),
                   M3B_OK);
  assert_int_equal(
      m3b_schema_registry_add(reader, w, strlen(w), 0, NULL, NULL, 0), M3B_OK);
  assert_int_equal(m3b_schema_registry_add(reader, r, strlen(r),
                                           M3B_SCHEMA_CURRENT, NULL, NULL, 0),
                   M3B_OK);
  encode_ok(cw, "R", empty, &out);
  assert_int_equal(m3b_codec_decode(cr, out.data, out.len, NULL, &back, errstr,
                                    sizeof(errstr)),
                   M3B_ERR_SCHEMA);
  assert_non_null(strstr(errstr, "no default"));
  json_decref(empty);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(cw);
  m3b_codec_destroy(cr);
  m3b_schema_registry_destroy(writer);
  m3b_schema_registry_destroy(reader);
}

struct bad_case {
  const char *what;
  const uint8_t *body;
  size_t len;
  m3b_err_t err;
};

#define BODY(...)                                                              \
  (const uint8_t[]){__VA_ARGS__}, sizeof((uint8_t[]){__VA_ARGS__})

static void test_bad_bodies(void **state) {
  const struct bad_case cases[] = {
      {"valid", BODY(0, 0, 0, 0, 0, 0, 0), M3B_OK},
      {"empty body", BODY(0), M3B_ERR_TRUNCATED}, /* 1 byte, needs 7 */
      {"short body", BODY(0, 0, 0, 0, 0, 0), M3B_ERR_TRUNCATED},
      {"trailing byte", BODY(0, 0, 0, 0, 0, 0, 0, 0), M3B_ERR_TRAILING_BYTES},
      {"negative length", BODY(1, 0, 0, 0, 0, 0, 0), M3B_ERR_DECODE},
      {"huge length", BODY(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
       M3B_ERR_LIMIT},
      {"length past end", BODY(10, 'a', 'b'), M3B_ERR_TRUNCATED},
      {"bad utf-8", BODY(4, 0xC3, 0x28, 0, 0, 0, 0, 0, 0, 0), M3B_ERR_BAD_UTF8},
      {"surrogate", BODY(6, 0xED, 0xA0, 0x80, 0, 0, 0, 0, 0, 0),
       M3B_ERR_BAD_UTF8},
      {"overlong", BODY(4, 0xC0, 0xAF, 0, 0, 0, 0, 0, 0, 0), M3B_ERR_BAD_UTF8},
      {"bytes may hold anything", BODY(0, 4, 0xC3, 0x28, 0, 0, 0, 0, 0),
       M3B_OK},
      {"enum index 2", BODY(0, 0, 4, 0, 0, 0, 0), M3B_ERR_BAD_ENUM},
      {"enum index -1", BODY(0, 0, 1, 0, 0, 0, 0), M3B_ERR_BAD_ENUM},
      {"array too long", BODY(0, 0, 0, 0xfe, 0xff, 0xff, 0xff, 0x0f),
       M3B_ERR_LIMIT},
      {"array block", BODY(0, 0, 0, 4, 2, 2, 0, 0, 0, 0), M3B_OK},
      {"array negative count", BODY(0, 0, 0, 1, 2, 4, 0, 0, 0, 0), M3B_OK},
      {"array negative block size", BODY(0, 0, 0, 1, 1, 4, 0, 0, 0, 0),
       M3B_ERR_DECODE},
      {"array items missing", BODY(0, 0, 0, 6, 2), M3B_ERR_TRUNCATED},
      {"union index 2", BODY(0, 0, 0, 0, 4, 0, 0), M3B_ERR_DECODE},
      {"union index -1", BODY(0, 0, 0, 0, 1, 0, 0), M3B_ERR_DECODE},
      {"union string", BODY(0, 0, 0, 0, 2, 2, 'x', 0, 0), M3B_OK},
      {"boolean 2", BODY(0, 0, 0, 0, 0, 2, 0), M3B_ERR_DECODE},
      {"int too big", BODY(0, 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x10),
       M3B_ERR_DECODE},
      {"varint over 64 bits",
       BODY(0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0x7f),
       M3B_ERR_DECODE},
      {"varint never ends", BODY(0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff),
       M3B_ERR_TRUNCATED},
  };
  m3b_schema_registry_t *registry = m3b_schema_registry_new(NULL, 0);
  struct m3b_codec_limits limits;
  m3b_codec_t *codec;
  uint64_t fp = 0;
  size_t i;
  size_t k;
  (void)state;

  m3b_codec_limits_default(&limits);
  limits.max_items = 1000;
  codec = m3b_codec_new(registry, &limits, NULL, 0);
  assert_int_equal(m3b_schema_registry_add(registry, test_schema,
                                           strlen(test_schema),
                                           M3B_SCHEMA_CURRENT, &fp, NULL, 0),
                   M3B_OK);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uint8_t msg[64];
    char errstr[256] = "";
    json_t *value = NULL;
    m3b_err_t err;
    size_t len = M3B_CODEC_HEADER_SIZE + cases[i].len;
    /* "empty body": no body bytes at all */
    if (strcmp(cases[i].what, "empty body") == 0)
      len = M3B_CODEC_HEADER_SIZE;
    assert_true(len <= sizeof(msg));
    msg[0] = 0xC3;
    msg[1] = 0x01;
    for (k = 0; k < 8; k++)
      msg[2 + k] = (uint8_t)(fp >> (8 * k));
    memcpy(msg + M3B_CODEC_HEADER_SIZE, cases[i].body,
           len - M3B_CODEC_HEADER_SIZE);
    err =
        m3b_codec_decode(codec, msg, len, NULL, &value, errstr, sizeof(errstr));
    if (err != cases[i].err)
      fail_msg("%s: got %s (%s), want %s", cases[i].what, m3b_err_name(err),
               errstr, m3b_err_name(cases[i].err));
    if (err) {
      assert_null(value);
      assert_true(errstr[0] != 0);
    }
    json_decref(value);
  }
  m3b_codec_destroy(codec);
  m3b_schema_registry_destroy(registry);
}

static void test_bad_headers(void **state) {
  m3b_schema_registry_t *registry = registry_with(NULL, NULL);
  m3b_codec_t *codec = m3b_codec_new(registry, NULL, NULL, 0);
  json_t *value = desired_json();
  json_t *back = NULL;
  struct m3b_buf out;
  char errstr[256];
  uint8_t copy[512];
  size_t cut;
  (void)state;

  m3b_buf_init(&out, 1 << 20);
  encode_ok(codec, M3B_RECORD_DESIRED_STATE, value, &out);
  assert_true(out.len + 1 <= sizeof(copy));

  assert_int_equal(m3b_codec_decode(codec, NULL, 0, NULL, &back, NULL, 0),
                   M3B_ERR_TRUNCATED);
  /* every prefix is truncated; none is taken for a record */
  for (cut = 0; cut < out.len; cut++) {
    m3b_err_t err;
    memcpy(copy, out.data, cut);
    err =
        m3b_codec_decode(codec, copy, cut, NULL, &back, errstr, sizeof(errstr));
    if (err != M3B_ERR_TRUNCATED)
      fail_msg("cut at %zu: %s (%s)", cut, m3b_err_name(err), errstr);
    assert_null(back);
  }
  memcpy(copy, out.data, out.len);
  copy[out.len] = 0;
  assert_int_equal(
      m3b_codec_decode(codec, copy, out.len + 1, NULL, &back, NULL, 0),
      M3B_ERR_TRAILING_BYTES);
  copy[1] = 0x02;
  assert_int_equal(m3b_codec_decode(codec, copy, out.len, NULL, &back, errstr,
                                    sizeof(errstr)),
                   M3B_ERR_BAD_MAGIC);
  assert_non_null(strstr(errstr, "C3 01"));
  copy[0] = '{';
  assert_int_equal(m3b_codec_decode(codec, copy, 1, NULL, &back, NULL, 0),
                   M3B_ERR_TRUNCATED);
  assert_int_equal(m3b_codec_decode(codec, copy, out.len, NULL, &back, NULL, 0),
                   M3B_ERR_BAD_MAGIC);
  memcpy(copy, out.data, out.len);
  copy[5] ^= 0x40;
  assert_int_equal(m3b_codec_decode(codec, copy, out.len, NULL, &back, errstr,
                                    sizeof(errstr)),
                   M3B_ERR_UNKNOWN_SCHEMA);
  assert_non_null(strstr(errstr, "fingerprint"));
  assert_int_equal(m3b_codec_peek(codec, copy, out.len, NULL, NULL, NULL, 0),
                   M3B_ERR_UNKNOWN_SCHEMA);

  json_decref(value);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(codec);
  m3b_schema_registry_destroy(registry);
}

static void test_limits(void **state) {
  m3b_schema_registry_t *registry = registry_with(NULL, NULL);
  struct m3b_codec_limits limits;
  m3b_codec_t *big = m3b_codec_new(registry, NULL, NULL, 0);
  m3b_codec_t *small;
  json_t *value = desired_json();
  json_t *back = NULL;
  struct m3b_buf out;
  char errstr[256] = "";
  size_t before;
  char *manifest;
  (void)state;

  m3b_codec_limits_default(&limits);
  limits.max_field_bytes = 100;
  limits.max_record_bytes = 400;
  small = m3b_codec_new(registry, &limits, errstr, sizeof(errstr));
  assert_non_null(small);
  m3b_buf_init(&out, 1 << 20);

  manifest = calloc(1, 201);
  assert_non_null(manifest);
  memset(manifest, 'x', 200);
  json_object_set_new(value, "manifest", json_string(manifest));
  encode_ok(big, M3B_RECORD_DESIRED_STATE, value, &out);
  assert_int_equal(m3b_codec_decode(small, out.data, out.len, NULL, &back,
                                    errstr, sizeof(errstr)),
                   M3B_ERR_LIMIT);
  assert_non_null(strstr(errstr, "max_field_bytes"));
  before = out.len;
  assert_int_equal(m3b_codec_encode(small, M3B_RECORD_DESIRED_STATE, value,
                                    &out, errstr, sizeof(errstr)),
                   M3B_ERR_LIMIT);
  assert_int_equal(out.len, before); /* out untouched on error */

  /* the whole record over max_record_bytes */
  memset(manifest, 'x', 200);
  json_object_set_new(value, "manifest", json_string(manifest + 150));
  json_object_set_new(value, "release_id", json_string(manifest + 110));
  json_object_set_new(value, "plane", json_string(manifest + 110));
  json_object_set_new(value, "correlation_id", json_string(manifest + 110));
  json_object_set_new(value, "key", json_string(manifest + 110));
  m3b_buf_reset(&out);
  encode_ok(big, M3B_RECORD_DESIRED_STATE, value, &out);
  assert_true(out.len > 400);
  assert_int_equal(m3b_codec_decode(small, out.data, out.len, NULL, &back,
                                    errstr, sizeof(errstr)),
                   M3B_ERR_LIMIT);
  assert_non_null(strstr(errstr, "max_record_bytes"));
  assert_int_equal(m3b_codec_encode(small, M3B_RECORD_DESIRED_STATE, value,
                                    &out, errstr, sizeof(errstr)),
                   M3B_ERR_LIMIT);
  assert_non_null(strstr(errstr, "max_record_bytes"));

  /* limits must be usable */
  limits.max_items = 0;
  assert_null(m3b_codec_new(registry, &limits, errstr, sizeof(errstr)));
  assert_null(m3b_codec_new(NULL, NULL, errstr, sizeof(errstr)));

  free(manifest);
  json_decref(value);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(small);
  m3b_codec_destroy(big);
  m3b_codec_destroy(NULL);
  m3b_schema_registry_destroy(registry);
}

static void test_depth_limit(void **state) {
  const char *pig = "{\"name\":\"P\",\"type\":\"record\",\"fields\":"
                    "[{\"name\":\"next\",\"type\":[\"null\",\"P\"]}]}";
  m3b_schema_registry_t *registry = m3b_schema_registry_new(NULL, 0);
  struct m3b_codec_limits limits;
  m3b_codec_t *deep;
  m3b_codec_t *shallow;
  json_t *value = json_pack("{s:n}", "next");
  json_t *back = NULL;
  struct m3b_buf out;
  char errstr[256] = "";
  int i;
  (void)state;

  m3b_codec_limits_default(&limits);
  limits.max_depth = 200;
  deep = m3b_codec_new(registry, &limits, NULL, 0);
  shallow = m3b_codec_new(registry, NULL, NULL, 0);
  assert_int_equal(m3b_schema_registry_add(registry, pig, strlen(pig),
                                           M3B_SCHEMA_CURRENT, NULL, NULL, 0),
                   M3B_OK);
  for (i = 0; i < 40; i++)
    value = json_pack("{s:o}", "next", value);
  m3b_buf_init(&out, 1 << 20);
  encode_ok(deep, "P", value, &out);
  back = decode_ok(deep, &out);
  assert_true(json_equal(back, value));
  json_decref(back);
  back = NULL;
  assert_int_equal(m3b_codec_decode(shallow, out.data, out.len, NULL, &back,
                                    errstr, sizeof(errstr)),
                   M3B_ERR_LIMIT);
  assert_non_null(strstr(errstr, "max_depth"));
  m3b_buf_reset(&out);
  assert_int_equal(m3b_codec_encode(shallow, "P", value, &out, NULL, 0),
                   M3B_ERR_LIMIT);
  json_decref(value);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(deep);
  m3b_codec_destroy(shallow);
  m3b_schema_registry_destroy(registry);
}

static void test_encode_errors(void **state) {
  static const struct {
    const char *what;
    const char *field;
    const char *json; /* NULL: delete the field */
    m3b_err_t err;
  } cases[] = {
      {"missing required field", "plane", NULL, M3B_ERR_ENCODE},
      {"unknown field", "colour", "\"red\"", M3B_ERR_ENCODE},
      {"unknown enum symbol", "op", "\"PATCH\"", M3B_ERR_BAD_ENUM},
      {"wrong type", "generation", "\"7\"", M3B_ERR_ENCODE},
      {"fixed of the wrong size", "manifest_sha256", "\"abc\"", M3B_ERR_ENCODE},
      {"bytes above U+00FF", "manifest", "\"\\u0100\"", M3B_ERR_ENCODE},
  };
  m3b_schema_registry_t *registry = registry_with(NULL, NULL);
  m3b_codec_t *codec = m3b_codec_new(registry, NULL, NULL, 0);
  struct m3b_buf out;
  size_t i;
  (void)state;
  m3b_buf_init(&out, 1 << 20);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    json_t *value = desired_json();
    char errstr[256] = "";
    m3b_err_t err;
    if (cases[i].json)
      json_object_set_new(value, cases[i].field,
                          json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
    else
      json_object_del(value, cases[i].field);
    err = m3b_codec_encode(codec, M3B_RECORD_DESIRED_STATE, value, &out, errstr,
                           sizeof(errstr));
    if (err != cases[i].err)
      fail_msg("%s: got %s (%s)", cases[i].what, m3b_err_name(err), errstr);
    assert_non_null(strstr(errstr, cases[i].field));
    assert_int_equal(out.len, 0);
    json_decref(value);
  }
  assert_int_equal(
      m3b_codec_encode(codec, "io.m3bridge.v1.Nope", NULL, &out, NULL, 0),
      M3B_ERR_NOT_FOUND);
  m3b_buf_cleanup(&out);
  m3b_codec_destroy(codec);
  m3b_schema_registry_destroy(registry);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_header_and_round_trip),
      cmocka_unit_test(test_defaults_on_encode),
      cmocka_unit_test(test_evolution_v1_v2),
      cmocka_unit_test(test_evolution_v0_v1),
      cmocka_unit_test(test_evolution_missing_default),
      cmocka_unit_test(test_bad_bodies),
      cmocka_unit_test(test_bad_headers),
      cmocka_unit_test(test_limits),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_encode_errors),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
