/* test_seal.c - sealed secrets: round trips of the byte and text forms,
 * one specific error for every bad envelope (truncated, oversized, garbage,
 * other version, wrong listener key, wrong object key, any byte changed),
 * listener keys through PEM and files, and the Secret manifest walks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <jansson.h>

#include <m3b/seal.h>
#include <m3b/seal_manifest.h>
#include <m3b/sign.h>

static const char object_key[] = "/v1/Secret/shop/db";

struct keys {
  m3b_seal_key_t *listener;
  m3b_seal_key_t *other;
  uint8_t pub[M3B_SEAL_PUBLIC_LEN];
};

static int keys_setup(void **state) {
  struct keys *keys = calloc(1, sizeof(*keys));
  assert_non_null(keys);
  keys->listener = m3b_seal_key_generate(NULL, 0);
  keys->other = m3b_seal_key_generate(NULL, 0);
  assert_non_null(keys->listener);
  assert_non_null(keys->other);
  m3b_seal_key_public(keys->listener, keys->pub);
  *state = keys;
  return 0;
}

static int keys_teardown(void **state) {
  struct keys *keys = *state;
  m3b_seal_key_destroy(keys->listener);
  m3b_seal_key_destroy(keys->other);
  free(keys);
  return 0;
}

static void fill(uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    p[i] = (uint8_t)(i * 13 + 1);
}

static void test_round_trip_sizes(void **state) {
  static const size_t sizes[] = {0, 1, 64, 4096, M3B_SEAL_MAX_PLAINTEXT};
  struct keys *keys = *state;
  size_t i;
  uint8_t *plain = malloc(M3B_SEAL_MAX_PLAINTEXT);

  assert_non_null(plain);
  fill(plain, M3B_SEAL_MAX_PLAINTEXT);
  for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    struct m3b_buf sealed;
    struct m3b_buf text;
    struct m3b_buf opened;

    m3b_buf_init(&sealed, 2 * M3B_SEAL_MAX_PLAINTEXT);
    m3b_buf_init(&text, 2 * M3B_SEAL_MAX_PLAINTEXT);
    m3b_buf_init(&opened, M3B_SEAL_MAX_PLAINTEXT);
    assert_int_equal(m3b_seal(keys->pub, plain, sizes[i], object_key,
                              strlen(object_key), &sealed),
                     M3B_OK);
    assert_int_equal(sealed.len, sizes[i] + M3B_SEAL_OVERHEAD);
    assert_memory_equal(sealed.data, "m3s\x01", 4);
    assert_int_equal(m3b_unseal(keys->listener, sealed.data, sealed.len,
                                object_key, strlen(object_key), &opened),
                     M3B_OK);
    assert_int_equal(opened.len, sizes[i]);
    if (sizes[i])
      assert_memory_equal(opened.data, plain, sizes[i]);
    m3b_buf_cleanup_secret(&opened);

    assert_int_equal(m3b_seal_text(keys->pub, plain, sizes[i], object_key,
                                   strlen(object_key), &text),
                     M3B_OK);
    assert_true(m3b_seal_is_text((char *)text.data, text.len));
    assert_memory_equal(text.data, M3B_SEAL_TEXT_PREFIX,
                        strlen(M3B_SEAL_TEXT_PREFIX));
    m3b_buf_init(&opened, M3B_SEAL_MAX_PLAINTEXT);
    assert_int_equal(m3b_unseal_text(keys->listener, (char *)text.data,
                                     text.len, object_key, strlen(object_key),
                                     &opened),
                     M3B_OK);
    assert_int_equal(opened.len, sizes[i]);
    if (sizes[i])
      assert_memory_equal(opened.data, plain, sizes[i]);
    m3b_buf_cleanup_secret(&opened);
    m3b_buf_cleanup(&sealed);
    m3b_buf_cleanup(&text);
  }
  free(plain);
}

static void test_two_seals_differ(void **state) {
  struct keys *keys = *state;
  struct m3b_buf a;
  struct m3b_buf b;
  m3b_buf_init(&a, 1024);
  m3b_buf_init(&b, 1024);
  assert_int_equal(m3b_seal(keys->pub, "pw", 2, "k", 1, &a), M3B_OK);
  assert_int_equal(m3b_seal(keys->pub, "pw", 2, "k", 1, &b), M3B_OK);
  /* fresh ephemeral key and nonce every time */
  assert_memory_not_equal(a.data + 4, b.data + 4, 44);
  m3b_buf_cleanup(&a);
  m3b_buf_cleanup(&b);
}

enum spoil {
  EMPTY,
  THREE_BYTES,
  HEADER_ONLY,
  ONE_SHORT_OF_MINIMUM,
  BAD_MAGIC,
  VERSION_0,
  VERSION_2,
  FLIP_EPHEMERAL,
  ZERO_EPHEMERAL,
  FLIP_NONCE,
  FLIP_CIPHERTEXT,
  FLIP_TAG,
  DROP_LAST_BYTE,
  EXTRA_BYTE,
  WRONG_AAD,
  EMPTY_AAD,
  WRONG_LISTENER,
  OVERSIZED,
  GARBAGE
};

static const struct {
  const char *name;
  enum spoil spoil;
  m3b_err_t want;
} spoil_cases[] = {
    {"empty", EMPTY, M3B_ERR_SEAL_MALFORMED},
    {"3 bytes", THREE_BYTES, M3B_ERR_SEAL_MALFORMED},
    {"header only", HEADER_ONLY, M3B_ERR_SEAL_MALFORMED},
    {"63 bytes", ONE_SHORT_OF_MINIMUM, M3B_ERR_SEAL_MALFORMED},
    {"bad magic", BAD_MAGIC, M3B_ERR_SEAL_MALFORMED},
    {"version 0", VERSION_0, M3B_ERR_SEAL_VERSION},
    {"version 2", VERSION_2, M3B_ERR_SEAL_VERSION},
    {"ephemeral key changed", FLIP_EPHEMERAL, M3B_ERR_SEAL_AUTH},
    {"ephemeral key all zero", ZERO_EPHEMERAL, M3B_ERR_SEAL_MALFORMED},
    {"nonce changed", FLIP_NONCE, M3B_ERR_SEAL_AUTH},
    {"ciphertext changed", FLIP_CIPHERTEXT, M3B_ERR_SEAL_AUTH},
    {"tag changed", FLIP_TAG, M3B_ERR_SEAL_AUTH},
    {"truncated by one byte", DROP_LAST_BYTE, M3B_ERR_SEAL_AUTH},
    {"one byte appended", EXTRA_BYTE, M3B_ERR_SEAL_AUTH},
    {"other object key", WRONG_AAD, M3B_ERR_SEAL_AUTH},
    {"no object key", EMPTY_AAD, M3B_ERR_SEAL_AUTH},
    {"other listener's key", WRONG_LISTENER, M3B_ERR_SEAL_AUTH},
    {"over the size limit", OVERSIZED, M3B_ERR_LIMIT},
    {"garbage", GARBAGE, M3B_ERR_SEAL_MALFORMED},
};

static void test_bad_envelopes(void **state) {
  struct keys *keys = *state;
  struct m3b_buf sealed;
  uint8_t plain[100];
  size_t i;

  fill(plain, sizeof(plain));
  m3b_buf_init(&sealed, 1024);
  assert_int_equal(m3b_seal(keys->pub, plain, sizeof(plain), object_key,
                            strlen(object_key), &sealed),
                   M3B_OK);
  for (i = 0; i < sizeof(spoil_cases) / sizeof(spoil_cases[0]); i++) {
    size_t cap = M3B_SEAL_MAX_PLAINTEXT + M3B_SEAL_OVERHEAD + 1;
    uint8_t *env = calloc(1, cap);
    size_t len = sealed.len;
    const char *aad = object_key;
    const m3b_seal_key_t *key = keys->listener;
    struct m3b_buf opened;
    m3b_err_t got;

    assert_non_null(env);
    memcpy(env, sealed.data, sealed.len);
    switch (spoil_cases[i].spoil) {
    case EMPTY: len = 0; break;
    case THREE_BYTES: len = 3; break;
    case HEADER_ONLY: len = 4; break;
    case ONE_SHORT_OF_MINIMUM: len = M3B_SEAL_OVERHEAD - 1; break;
    case BAD_MAGIC: env[0] = 'M'; break;
    case VERSION_0: env[3] = 0; break;
    case VERSION_2: env[3] = 2; break;
    case FLIP_EPHEMERAL: env[4 + 5] ^= 0x10; break;
    case ZERO_EPHEMERAL: memset(env + 4, 0, 32); break;
    case FLIP_NONCE: env[36 + 3] ^= 0x01; break;
    case FLIP_CIPHERTEXT: env[48 + 50] ^= 0x01; break;
    case FLIP_TAG: env[len - 1] ^= 0x01; break;
    case DROP_LAST_BYTE: len--; break;
    case EXTRA_BYTE: env[len++] = 0; break;
    case WRONG_AAD: aad = "/v1/Secret/shop/other"; break;
    case EMPTY_AAD: aad = ""; break;
    case WRONG_LISTENER: key = keys->other; break;
    case OVERSIZED: len = cap; break;
    case GARBAGE: memset(env, 0xa5, len); break;
    }
    m3b_buf_init(&opened, M3B_SEAL_MAX_PLAINTEXT);
    got = m3b_unseal(key, env, len, aad, strlen(aad), &opened);
    if (got != spoil_cases[i].want)
      fail_msg("%s: got %s, want %s", spoil_cases[i].name, m3b_err_name(got),
               m3b_err_name(spoil_cases[i].want));
    assert_int_equal(opened.len, 0);
    m3b_buf_cleanup_secret(&opened);
    free(env);
  }
  m3b_buf_cleanup(&sealed);
}

static void test_bad_text(void **state) {
  static const struct {
    const char *name;
    const char *text;
    m3b_err_t want;
  } cases[] = {
      {"empty", "", M3B_ERR_SEAL_MALFORMED},
      {"plain base64", "aGVsbG8=", M3B_ERR_SEAL_MALFORMED},
      {"other version", "m3bridge:sealed:v2:AAAA", M3B_ERR_SEAL_VERSION},
      {"no version", "m3bridge:sealed:", M3B_ERR_SEAL_VERSION},
      {"no payload", "m3bridge:sealed:v1:", M3B_ERR_SEAL_MALFORMED},
      {"bad base64 char",
       "m3bridge:sealed:v1:bTNzAQ*=", M3B_ERR_SEAL_MALFORMED},
      {"base64 length", "m3bridge:sealed:v1:bTNzAQ", M3B_ERR_SEAL_MALFORMED},
      {"base64 whitespace",
       "m3bridge:sealed:v1:bTNz AQ==", M3B_ERR_SEAL_MALFORMED},
      {"non-canonical base64",
       "m3bridge:sealed:v1:bTNzAR==", M3B_ERR_SEAL_MALFORMED},
      {"version byte 2 inside",
       "m3bridge:sealed:v1:bTNzAg==", M3B_ERR_SEAL_VERSION},
  };
  struct keys *keys = *state;
  size_t i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct m3b_buf opened;
    m3b_err_t got;
    m3b_buf_init(&opened, 1024);
    got = m3b_unseal_text(keys->listener, cases[i].text, strlen(cases[i].text),
                          object_key, strlen(object_key), &opened);
    if (got != cases[i].want)
      fail_msg("%s: got %s, want %s", cases[i].name, m3b_err_name(got),
               m3b_err_name(cases[i].want));
    m3b_buf_cleanup_secret(&opened);
  }
}

static void test_seal_to_bad_public_key(void **state) {
  static const uint8_t zero[M3B_SEAL_PUBLIC_LEN] = {0};
  struct m3b_buf sealed;
  uint8_t big[1];
  (void)state;
  m3b_buf_init(&sealed, 1024);
  /* the all-zero point has low order: X25519 must refuse it */
  assert_int_equal(m3b_seal(zero, "x", 1, "k", 1, &sealed),
                   M3B_ERR_KEY_MALFORMED);
  assert_int_equal(sealed.len, 0);
  assert_int_equal(
      m3b_seal(zero, big, (size_t)M3B_SEAL_MAX_PLAINTEXT + 1, "k", 1, &sealed),
      M3B_ERR_LIMIT);
  m3b_buf_cleanup(&sealed);
}

static void test_unseal_needs_empty_buffer(void **state) {
  struct keys *keys = *state;
  struct m3b_buf sealed;
  struct m3b_buf opened;
  m3b_buf_init(&sealed, 1024);
  m3b_buf_init(&opened, 1024);
  assert_int_equal(m3b_seal(keys->pub, "x", 1, "k", 1, &sealed), M3B_OK);
  assert_int_equal(m3b_buf_append(&opened, "old", 3), M3B_OK);
  assert_int_equal(
      m3b_unseal(keys->listener, sealed.data, sealed.len, "k", 1, &opened),
      M3B_ERR_INVALID_ARG);
  m3b_buf_cleanup_secret(&opened);
  m3b_buf_cleanup(&sealed);
}

/* ---- keys ---- */

static void test_key_pem(void **state) {
  struct keys *keys = *state;
  struct m3b_buf pem;
  struct m3b_buf pub_pem;
  m3b_seal_key_t *loaded = NULL;
  uint8_t pub[M3B_SEAL_PUBLIC_LEN];
  uint8_t pub2[M3B_SEAL_PUBLIC_LEN];
  m3b_sign_key_t *ed = m3b_sign_key_generate(NULL, 0);
  char errstr[256];

  m3b_buf_init(&pem, 65536);
  assert_int_equal(m3b_seal_key_to_pem(keys->listener, "s3cret", &pem), M3B_OK);
  assert_int_equal(m3b_seal_key_from_pem(pem.data, pem.len, "s3cret", &loaded,
                                         errstr, sizeof(errstr)),
                   M3B_OK);
  m3b_seal_key_public(loaded, pub);
  assert_memory_equal(pub, keys->pub, sizeof(pub));
  m3b_seal_key_destroy(loaded);
  assert_int_equal(m3b_seal_key_from_pem(pem.data, pem.len, "wrong", &loaded,
                                         errstr, sizeof(errstr)),
                   M3B_ERR_KEY_PASSPHRASE);
  assert_null(loaded);
  m3b_buf_cleanup_secret(&pem);

  /* public key PEM round trip */
  m3b_buf_init(&pub_pem, 4096);
  assert_int_equal(m3b_seal_public_to_pem(keys->pub, &pub_pem), M3B_OK);
  assert_int_equal(m3b_seal_public_from_pem(pub_pem.data, pub_pem.len, pub2,
                                            errstr, sizeof(errstr)),
                   M3B_OK);
  assert_memory_equal(pub2, keys->pub, sizeof(pub2));
  m3b_buf_cleanup(&pub_pem);

  /* an Ed25519 key is not a listener key, private or public */
  assert_non_null(ed);
  m3b_buf_init(&pem, 65536);
  assert_int_equal(m3b_sign_key_to_pem(ed, NULL, &pem), M3B_OK);
  assert_int_equal(m3b_seal_key_from_pem(pem.data, pem.len, NULL, &loaded,
                                         errstr, sizeof(errstr)),
                   M3B_ERR_KEY_MALFORMED);
  m3b_buf_cleanup_secret(&pem);
  m3b_buf_init(&pub_pem, 4096);
  assert_int_equal(m3b_sign_key_public_pem(ed, &pub_pem), M3B_OK);
  assert_int_equal(m3b_seal_public_from_pem(pub_pem.data, pub_pem.len, pub2,
                                            errstr, sizeof(errstr)),
                   M3B_ERR_KEY_MALFORMED);
  m3b_buf_cleanup(&pub_pem);
  m3b_sign_key_destroy(ed);

  assert_int_equal(m3b_seal_key_from_pem((const uint8_t *)"garbage", 7, NULL,
                                         &loaded, errstr, sizeof(errstr)),
                   M3B_ERR_KEY_MALFORMED);
  assert_int_equal(m3b_seal_public_from_pem((const uint8_t *)"garbage", 7, pub2,
                                            errstr, sizeof(errstr)),
                   M3B_ERR_KEY_MALFORMED);
}

static void test_key_files(void **state) {
  struct keys *keys = *state;
  char dir[] = "/tmp/m3b-test-seal-XXXXXX";
  char priv_path[256];
  char pub_path[256];
  char errstr[256];
  struct stat st;
  m3b_seal_key_t *loaded = NULL;
  uint8_t pub[M3B_SEAL_PUBLIC_LEN];

  assert_non_null(mkdtemp(dir));
  snprintf(priv_path, sizeof(priv_path), "%s/listener.key", dir);
  snprintf(pub_path, sizeof(pub_path), "%s/listener.pub", dir);
  assert_int_equal(m3b_seal_key_save(keys->listener, priv_path, NULL, errstr,
                                     sizeof(errstr)),
                   M3B_OK);
  assert_int_equal(stat(priv_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(m3b_seal_key_save(keys->listener, priv_path, NULL, errstr,
                                     sizeof(errstr)),
                   M3B_ERR_IO);
  assert_int_equal(
      m3b_seal_key_load(priv_path, NULL, &loaded, errstr, sizeof(errstr)),
      M3B_OK);
  m3b_seal_key_public(loaded, pub);
  assert_memory_equal(pub, keys->pub, sizeof(pub));
  m3b_seal_key_destroy(loaded);
  assert_int_equal(
      m3b_seal_public_save(keys->pub, pub_path, errstr, sizeof(errstr)),
      M3B_OK);
  memset(pub, 0, sizeof(pub));
  assert_int_equal(m3b_seal_public_load(pub_path, pub, errstr, sizeof(errstr)),
                   M3B_OK);
  assert_memory_equal(pub, keys->pub, sizeof(pub));
  unlink(priv_path);
  unlink(pub_path);
  assert_int_equal(rmdir(dir), 0);
}

/* ---- Secret manifests ---- */

static json_t *parse(const char *text) {
  json_error_t error;
  json_t *json = json_loads(text, 0, &error);
  if (!json)
    fail_msg("bad test JSON: %s", error.text);
  return json;
}

static const char secret_json[] =
    "{\"apiVersion\":\"v1\",\"kind\":\"Secret\","
    "\"metadata\":{\"name\":\"db\",\"namespace\":\"shop\"},"
    "\"type\":\"Opaque\","
    "\"data\":{\"password\":\"aHVudGVyMg==\",\"empty\":\"\"},"
    "\"stringData\":{\"user\":\"admin\",\"password\":\"wins\"}}";

static void test_manifest_round_trip(void **state) {
  struct keys *keys = *state;
  json_t *manifest = parse(secret_json);
  json_t *data;
  char errstr[256] = "";
  const char *name;
  json_t *value;

  assert_int_equal(m3b_seal_manifest(manifest, keys->pub, object_key, errstr,
                                     sizeof(errstr)),
                   M3B_OK);
  assert_null(json_object_get(manifest, "stringData"));
  data = json_object_get(manifest, "data");
  assert_int_equal(json_object_size(data), 3);
  json_object_foreach(data, name, value) {
    assert_true(
        m3b_seal_is_text(json_string_value(value), json_string_length(value)));
  }
  /* sealing again keeps already-sealed values */
  assert_int_equal(m3b_seal_manifest(manifest, keys->pub, object_key, errstr,
                                     sizeof(errstr)),
                   M3B_OK);
  data = json_object_get(manifest, "data");

  /* the wrong listener or object cannot open it; nothing changes */
  assert_int_equal(m3b_unseal_manifest(manifest, keys->other, object_key,
                                       errstr, sizeof(errstr)),
                   M3B_ERR_SEAL_AUTH);
  assert_int_equal(m3b_unseal_manifest(manifest, keys->listener,
                                       "/v1/Secret/shop/web", errstr,
                                       sizeof(errstr)),
                   M3B_ERR_SEAL_AUTH);
  assert_true(
      m3b_seal_is_text(json_string_value(json_object_get(data, "user")),
                       json_string_length(json_object_get(data, "user"))));

  assert_int_equal(m3b_unseal_manifest(manifest, keys->listener, object_key,
                                       errstr, sizeof(errstr)),
                   M3B_OK);
  data = json_object_get(manifest, "data");
  assert_string_equal(json_string_value(json_object_get(data, "user")),
                      "YWRtaW4=");
  /* stringData wins over data, as in Kubernetes */
  assert_string_equal(json_string_value(json_object_get(data, "password")),
                      "d2lucw==");
  assert_string_equal(json_string_value(json_object_get(data, "empty")), "");
  m3b_seal_manifest_wipe(manifest);
  assert_int_equal(json_string_value(json_object_get(data, "user"))[0], 0);
  json_decref(manifest);
}

static void test_manifest_bad(void **state) {
  static const struct {
    const char *name;
    int unseal;
    const char *json;
    m3b_err_t want;
  } cases[] = {
      {"not a Secret", 0, "{\"kind\":\"ConfigMap\",\"data\":{\"a\":\"b\"}}",
       M3B_ERR_BAD_MANIFEST},
      {"no kind", 0, "{\"data\":{}}", M3B_ERR_BAD_MANIFEST},
      {"data not an object", 0, "{\"kind\":\"Secret\",\"data\":[]}",
       M3B_ERR_BAD_MANIFEST},
      {"data value a number", 0, "{\"kind\":\"Secret\",\"data\":{\"a\":1}}",
       M3B_ERR_BAD_MANIFEST},
      {"data value not base64", 0,
       "{\"kind\":\"Secret\",\"data\":{\"ok\":\"YQ==\",\"a\":\"hunter2\"}}",
       M3B_ERR_BAD_MANIFEST},
      {"stringData value null", 0,
       "{\"kind\":\"Secret\",\"stringData\":{\"a\":null}}",
       M3B_ERR_BAD_MANIFEST},
      {"unseal: plaintext data", 1,
       "{\"kind\":\"Secret\",\"data\":{\"a\":\"aHVudGVyMg==\"}}",
       M3B_ERR_SEAL_MALFORMED},
      {"unseal: stringData", 1,
       "{\"kind\":\"Secret\",\"stringData\":{\"a\":\"hunter2\"}}",
       M3B_ERR_SEAL_MALFORMED},
      {"unseal: other version", 1,
       "{\"kind\":\"Secret\",\"data\":{\"a\":\"m3bridge:sealed:v9:AAAA\"}}",
       M3B_ERR_SEAL_VERSION},
      {"unseal: garbage sealed", 1,
       "{\"kind\":\"Secret\",\"data\":{\"a\":\"m3bridge:sealed:v1:AAAA\"}}",
       M3B_ERR_SEAL_MALFORMED},
  };
  struct keys *keys = *state;
  size_t i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    json_t *manifest = parse(cases[i].json);
    char *before = json_dumps(manifest, JSON_SORT_KEYS);
    char *after;
    char errstr[256] = "";
    m3b_err_t got;

    if (cases[i].unseal)
      got = m3b_unseal_manifest(manifest, keys->listener, object_key, errstr,
                                sizeof(errstr));
    else
      got = m3b_seal_manifest(manifest, keys->pub, object_key, errstr,
                              sizeof(errstr));
    if (got != cases[i].want || !errstr[0])
      fail_msg("%s: got %s, want %s (%s)", cases[i].name, m3b_err_name(got),
               m3b_err_name(cases[i].want), errstr);
    /* all or nothing: a failed walk leaves the manifest as it was */
    after = json_dumps(manifest, JSON_SORT_KEYS);
    assert_string_equal(before, after);
    /* errors name the key, never the value */
    assert_null(strstr(errstr, "hunter2"));
    free(before);
    free(after);
    json_decref(manifest);
  }
}

static void test_destroy_null(void **state) {
  (void)state;
  m3b_seal_key_destroy(NULL);
  m3b_seal_manifest_wipe(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_sizes),
      cmocka_unit_test(test_two_seals_differ),
      cmocka_unit_test(test_bad_envelopes),
      cmocka_unit_test(test_bad_text),
      cmocka_unit_test(test_seal_to_bad_public_key),
      cmocka_unit_test(test_unseal_needs_empty_buffer),
      cmocka_unit_test(test_key_pem),
      cmocka_unit_test(test_key_files),
      cmocka_unit_test(test_manifest_round_trip),
      cmocka_unit_test(test_manifest_bad),
      cmocka_unit_test(test_destroy_null),
  };
  return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
