/* test_sign.c - Ed25519 record signatures: round trips, key rotation, the
 * exact signing input, one distinct error for each kind of bad record, and
 * signing and public keys through PEM text and files (including garbage,
 * wrong key types and wrong passphrases). */
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

#include <openssl/evp.h>
#include <openssl/pem.h>

#include <m3b/sign.h>

static const char rec_key[] = "apps/v1/Deployment/shop/web";

/* A 2 KiB value like a small DesiredState. */
static void fill_value(uint8_t *value, size_t len) {
  size_t i;
  for (i = 0; i < len; i++)
    value[i] = (uint8_t)(i * 31 + 7);
}

struct keys {
  m3b_sign_key_t *a;
  m3b_sign_key_t *b;
  m3b_keyring_t *ring;
};

static int keys_setup(void **state) {
  struct keys *keys = calloc(1, sizeof(*keys));
  char errstr[128];
  assert_non_null(keys);
  keys->a = m3b_sign_key_generate(errstr, sizeof(errstr));
  keys->b = m3b_sign_key_generate(errstr, sizeof(errstr));
  keys->ring = m3b_keyring_new(errstr, sizeof(errstr));
  assert_non_null(keys->a);
  assert_non_null(keys->b);
  assert_non_null(keys->ring);
  assert_int_equal(m3b_keyring_add_sign_key(keys->ring, keys->a), M3B_OK);
  assert_int_equal(m3b_keyring_add_sign_key(keys->ring, keys->b), M3B_OK);
  *state = keys;
  return 0;
}

static int keys_teardown(void **state) {
  struct keys *keys = *state;
  m3b_keyring_destroy(keys->ring);
  m3b_sign_key_destroy(keys->a);
  m3b_sign_key_destroy(keys->b);
  free(keys);
  return 0;
}

static m3b_err_t verify_sig(const m3b_keyring_t *ring, const char *key,
                            const uint8_t *value, size_t value_len,
                            const struct m3b_signature *sig) {
  struct m3b_sig_headers headers;
  m3b_sig_headers_init(&headers);
  m3b_sig_headers_feed(&headers, "other", "x", 1);
  m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, sig->sig, M3B_SIG_LEN);
  m3b_sig_headers_feed(&headers, M3B_KID_HEADER, sig->kid, M3B_KID_LEN);
  return m3b_verify(ring, key, strlen(key), value, value_len, &headers);
}

static void test_round_trip_and_rotation(void **state) {
  struct keys *keys = *state;
  uint8_t value[2048];
  struct m3b_signature sig_a;
  struct m3b_signature sig_b;

  fill_value(value, sizeof(value));
  assert_int_equal(
      m3b_sign(keys->a, rec_key, strlen(rec_key), value, sizeof(value), &sig_a),
      M3B_OK);
  assert_int_equal(
      m3b_sign(keys->b, rec_key, strlen(rec_key), value, sizeof(value), &sig_b),
      M3B_OK);
  assert_string_equal(sig_a.kid, m3b_sign_key_id(keys->a));
  assert_string_not_equal(sig_a.kid, sig_b.kid);
  assert_int_equal(m3b_keyring_count(keys->ring), 2);
  /* both keys are trusted at once during a rotation */
  assert_int_equal(
      verify_sig(keys->ring, rec_key, value, sizeof(value), &sig_a), M3B_OK);
  assert_int_equal(
      verify_sig(keys->ring, rec_key, value, sizeof(value), &sig_b), M3B_OK);
  /* retiring the old key: its signatures are no longer accepted */
  assert_int_equal(m3b_keyring_remove(keys->ring, sig_a.kid), M3B_OK);
  assert_false(m3b_keyring_has(keys->ring, sig_a.kid));
  assert_int_equal(m3b_keyring_remove(keys->ring, sig_a.kid),
                   M3B_ERR_NOT_FOUND);
  assert_int_equal(
      verify_sig(keys->ring, rec_key, value, sizeof(value), &sig_a),
      M3B_ERR_SIG_UNKNOWN_KEY);
  assert_int_equal(
      verify_sig(keys->ring, rec_key, value, sizeof(value), &sig_b), M3B_OK);
  assert_int_equal(m3b_keyring_add_sign_key(keys->ring, keys->a), M3B_OK);
  /* adding a key twice is a no-op */
  assert_int_equal(m3b_keyring_add_sign_key(keys->ring, keys->a), M3B_OK);
  assert_int_equal(m3b_keyring_count(keys->ring), 2);
}

static void test_empty_value_and_tombstone(void **state) {
  struct keys *keys = *state;
  struct m3b_signature sig;
  assert_int_equal(m3b_sign(keys->a, rec_key, strlen(rec_key), NULL, 0, &sig),
                   M3B_OK);
  assert_int_equal(
      verify_sig(keys->ring, rec_key, (const uint8_t *)"", 0, &sig), M3B_OK);
  assert_int_equal(
      verify_sig(keys->ring, rec_key, (const uint8_t *)"x", 1, &sig),
      M3B_ERR_SIG_INVALID);
}

static void test_sign_input_bytes(void **state) {
  static const uint8_t expected[] = {
      'm', '3', 'b', 'r', 'i', 'd', 'g', 'e', '-', 's', 'i',
      'g', '-', 'v', '1', 0,   0,   0,   0,   3,   'k', '/',
      'x', 0,   0,   0,   0,   0,   0,   0,   2,   'v', 'w'};
  struct m3b_buf input;
  (void)state;
  m3b_buf_init(&input, 1024);
  assert_int_equal(m3b_sign_input("k/x", 3, "vw", 2, &input), M3B_OK);
  assert_int_equal(input.len, sizeof(expected));
  assert_memory_equal(input.data, expected, sizeof(expected));
  m3b_buf_cleanup(&input);
  m3b_buf_init(&input, 1024);
  assert_int_equal(
      m3b_sign_input("k", 1, NULL, (size_t)M3B_SIG_MAX_INPUT, &input),
      M3B_ERR_LIMIT);
  m3b_buf_cleanup(&input);
}

/* Ways to spoil a record or its headers. */
enum spoil {
  NO_HEADERS,
  NO_SIG,
  NO_KID,
  SIG_NULL_VALUE,
  SIG_EMPTY,
  SIG_SHORT,
  SIG_LONG,
  SIG_GARBAGE,
  SIG_BIT_FLIP,
  SIG_DUPLICATE,
  KID_DUPLICATE,
  KID_UPPERCASE,
  KID_SHORT,
  KID_LONG,
  KID_NOT_HEX,
  KID_UNKNOWN,
  KID_OTHER_TRUSTED,
  OTHER_KEY,
  OTHER_VALUE,
  VALUE_BYTE_FLIP,
  VALUE_TRUNCATED,
  BOUNDARY_SHIFT
};

static const struct {
  const char *name;
  enum spoil spoil;
  m3b_err_t want;
} spoil_cases[] = {
    {"no headers at all", NO_HEADERS, M3B_ERR_SIG_MISSING},
    {"no m3-sig", NO_SIG, M3B_ERR_SIG_MISSING},
    {"no m3-kid", NO_KID, M3B_ERR_SIG_MISSING},
    {"m3-sig without value", SIG_NULL_VALUE, M3B_ERR_SIG_MISSING},
    {"empty m3-sig", SIG_EMPTY, M3B_ERR_SIG_MALFORMED},
    {"63-byte m3-sig", SIG_SHORT, M3B_ERR_SIG_MALFORMED},
    {"65-byte m3-sig", SIG_LONG, M3B_ERR_SIG_MALFORMED},
    {"garbage m3-sig", SIG_GARBAGE, M3B_ERR_SIG_INVALID},
    {"one bit of m3-sig flipped", SIG_BIT_FLIP, M3B_ERR_SIG_INVALID},
    {"m3-sig twice", SIG_DUPLICATE, M3B_ERR_SIG_MALFORMED},
    {"m3-kid twice", KID_DUPLICATE, M3B_ERR_SIG_MALFORMED},
    {"m3-kid in upper case", KID_UPPERCASE, M3B_ERR_SIG_MALFORMED},
    {"15-char m3-kid", KID_SHORT, M3B_ERR_SIG_MALFORMED},
    {"17-char m3-kid", KID_LONG, M3B_ERR_SIG_MALFORMED},
    {"m3-kid not hex", KID_NOT_HEX, M3B_ERR_SIG_MALFORMED},
    {"unknown m3-kid", KID_UNKNOWN, M3B_ERR_SIG_UNKNOWN_KEY},
    {"m3-kid of another trusted key", KID_OTHER_TRUSTED, M3B_ERR_SIG_INVALID},
    {"signature moved to another record key", OTHER_KEY, M3B_ERR_SIG_INVALID},
    {"signature moved to another value", OTHER_VALUE, M3B_ERR_SIG_INVALID},
    {"value tampered", VALUE_BYTE_FLIP, M3B_ERR_SIG_INVALID},
    {"value truncated", VALUE_TRUNCATED, M3B_ERR_SIG_INVALID},
    {"key/value boundary shifted", BOUNDARY_SHIFT, M3B_ERR_SIG_INVALID},
};

static void test_bad_records(void **state) {
  struct keys *keys = *state;
  uint8_t value[2048];
  struct m3b_signature sig;
  struct m3b_signature sig_b;
  size_t i;

  fill_value(value, sizeof(value));
  assert_int_equal(
      m3b_sign(keys->a, rec_key, strlen(rec_key), value, sizeof(value), &sig),
      M3B_OK);
  assert_int_equal(
      m3b_sign(keys->b, rec_key, strlen(rec_key), value, sizeof(value), &sig_b),
      M3B_OK);
  for (i = 0; i < sizeof(spoil_cases) / sizeof(spoil_cases[0]); i++) {
    struct m3b_sig_headers headers;
    const struct m3b_sig_headers *headers_arg = &headers;
    uint8_t sig_bytes[M3B_SIG_LEN + 1];
    char kid[M3B_KID_LEN + 2];
    uint8_t val[sizeof(value)];
    const char *key = rec_key;
    size_t key_len = strlen(rec_key);
    size_t val_len = sizeof(val);
    size_t sig_len = M3B_SIG_LEN;
    size_t kid_len = M3B_KID_LEN;
    int feed_sig = 1;
    int feed_kid = 1;
    m3b_err_t got;

    memcpy(sig_bytes, sig.sig, M3B_SIG_LEN);
    sig_bytes[M3B_SIG_LEN] = 0;
    memcpy(kid, sig.kid, M3B_KID_LEN + 1);
    memcpy(val, value, sizeof(val));
    m3b_sig_headers_init(&headers);
    switch (spoil_cases[i].spoil) {
    case NO_HEADERS: headers_arg = NULL; break;
    case NO_SIG: feed_sig = 0; break;
    case NO_KID: feed_kid = 0; break;
    case SIG_NULL_VALUE:
      feed_sig = 0;
      m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, NULL, 0);
      break;
    case SIG_EMPTY: sig_len = 0; break;
    case SIG_SHORT: sig_len = M3B_SIG_LEN - 1; break;
    case SIG_LONG: sig_len = M3B_SIG_LEN + 1; break;
    case SIG_GARBAGE: memset(sig_bytes, 0x5a, M3B_SIG_LEN); break;
    case SIG_BIT_FLIP: sig_bytes[10] ^= 0x01; break;
    case SIG_DUPLICATE:
      m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, sig.sig, M3B_SIG_LEN);
      break;
    case KID_DUPLICATE:
      m3b_sig_headers_feed(&headers, M3B_KID_HEADER, sig.kid, M3B_KID_LEN);
      break;
    case KID_UPPERCASE: memcpy(kid, "ABCDEF0123456789", 16); break;
    case KID_SHORT: kid_len = M3B_KID_LEN - 1; break;
    case KID_LONG:
      kid[M3B_KID_LEN] = '0';
      kid_len = M3B_KID_LEN + 1;
      break;
    case KID_NOT_HEX: kid[3] = 'g'; break;
    case KID_UNKNOWN: memcpy(kid, "0000000000000000", 16); break;
    case KID_OTHER_TRUSTED: memcpy(kid, sig_b.kid, 16); break;
    case OTHER_KEY: key = "apps/v1/Deployment/shop/api"; break;
    case OTHER_VALUE: fill_value(val, 100); break;
    case VALUE_BYTE_FLIP: val[1000] ^= 0x80; break;
    case VALUE_TRUNCATED: val_len--; break;
    case BOUNDARY_SHIFT: key_len--; break;
    }
    if (spoil_cases[i].spoil == OTHER_VALUE)
      val_len = 100;
    if (spoil_cases[i].spoil == BOUNDARY_SHIFT) {
      /* the same bytes, one moved from the key into the value */
      memmove(val + 1, val, sizeof(val) - 1);
      val[0] = (uint8_t)rec_key[key_len];
    }
    if (feed_sig)
      m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, sig_bytes, sig_len);
    if (feed_kid)
      m3b_sig_headers_feed(&headers, M3B_KID_HEADER, kid, kid_len);
    got = m3b_verify(keys->ring, key, key_len, val, val_len, headers_arg);
    if (got != spoil_cases[i].want)
      fail_msg("%s: got %s, want %s", spoil_cases[i].name, m3b_err_name(got),
               m3b_err_name(spoil_cases[i].want));
  }
}

/* ---- PEM ---- */

/* PEM text of a freshly generated key of another type. */
static char *other_key_pem(const char *type, int public_only, int legacy) {
  EVP_PKEY *pkey;
  BIO *bio = BIO_new(BIO_s_mem());
  char *text;
  char *copy;
  long len;
  int ok;

  if (strcmp(type, "RSA") == 0)
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  else if (strcmp(type, "EC") == 0)
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  else
    pkey = EVP_PKEY_Q_keygen(NULL, NULL, type);
  assert_non_null(pkey);
  assert_non_null(bio);
  if (public_only)
    ok = PEM_write_bio_PUBKEY(bio, pkey);
  else if (legacy)
    ok = PEM_write_bio_PrivateKey_traditional(bio, pkey, NULL, NULL, 0, NULL,
                                              NULL);
  else
    ok = PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
  assert_int_equal(ok, 1);
  len = BIO_get_mem_data(bio, &text);
  copy = calloc(1, (size_t)len + 1);
  assert_non_null(copy);
  memcpy(copy, text, (size_t)len);
  BIO_free(bio);
  EVP_PKEY_free(pkey);
  return copy;
}

static void test_pem_round_trip_and_passphrase(void **state) {
  struct keys *keys = *state;
  struct m3b_buf pem;
  m3b_sign_key_t *loaded = NULL;
  char errstr[256];

  m3b_buf_init(&pem, 65536);
  assert_int_equal(m3b_sign_key_to_pem(keys->a, NULL, &pem), M3B_OK);
  assert_non_null(strstr((char *)pem.data, "-----BEGIN PRIVATE KEY-----"));
  assert_int_equal(m3b_sign_key_from_pem(pem.data, pem.len, NULL, &loaded,
                                         errstr, sizeof(errstr)),
                   M3B_OK);
  assert_string_equal(m3b_sign_key_id(loaded), m3b_sign_key_id(keys->a));
  m3b_sign_key_destroy(loaded);
  m3b_buf_cleanup_secret(&pem);

  m3b_buf_init(&pem, 65536);
  assert_int_equal(m3b_sign_key_to_pem(keys->a, "correct horse", &pem), M3B_OK);
  assert_non_null(
      strstr((char *)pem.data, "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  assert_int_equal(m3b_sign_key_from_pem(pem.data, pem.len, "correct horse",
                                         &loaded, errstr, sizeof(errstr)),
                   M3B_OK);
  assert_string_equal(m3b_sign_key_id(loaded), m3b_sign_key_id(keys->a));
  m3b_sign_key_destroy(loaded);
  assert_int_equal(m3b_sign_key_from_pem(pem.data, pem.len, "wrong horse",
                                         &loaded, errstr, sizeof(errstr)),
                   M3B_ERR_KEY_PASSPHRASE);
  assert_null(loaded);
  assert_non_null(strstr(errstr, "wrong passphrase"));
  assert_int_equal(m3b_sign_key_from_pem(pem.data, pem.len, NULL, &loaded,
                                         errstr, sizeof(errstr)),
                   M3B_ERR_KEY_PASSPHRASE);
  assert_int_equal(m3b_sign_key_from_pem(pem.data, pem.len, "", &loaded, errstr,
                                         sizeof(errstr)),
                   M3B_ERR_KEY_PASSPHRASE);
  m3b_buf_cleanup_secret(&pem);
}

static void test_private_pem_garbage_and_wrong_types(void **state) {
  static const struct {
    const char *name;
    const char *type; /* NULL: use text */
    int public_only;
    int legacy;
    const char *text;
  } cases[] = {
      {"empty", NULL, 0, 0, ""},
      {"garbage", NULL, 0, 0, "not a key at all\n"},
      {"bad base64", NULL, 0, 0,
       "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n"},
      {"truncated DER", NULL, 0, 0,
       "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n"
       "-----END PRIVATE KEY-----\n"},
      {"no END line", NULL, 0, 0, "-----BEGIN PRIVATE KEY-----\nMC4CAQA=\n"},
      {"RSA PKCS#8", "RSA", 0, 0, NULL},
      {"RSA traditional", "RSA", 0, 1, NULL},
      {"EC P-256", "EC", 0, 0, NULL},
      {"X25519", "X25519", 0, 0, NULL},
      {"Ed448", "ED448", 0, 0, NULL},
      {"Ed25519 public key", "ED25519", 1, 0, NULL},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *owned = NULL;
    const char *text = cases[i].text;
    m3b_sign_key_t *key = NULL;
    char errstr[256] = "";
    m3b_err_t got;

    if (cases[i].type) {
      owned =
          other_key_pem(cases[i].type, cases[i].public_only, cases[i].legacy);
      text = owned;
    }
    got = m3b_sign_key_from_pem((const uint8_t *)text, strlen(text), NULL, &key,
                                errstr, sizeof(errstr));
    if (got != M3B_ERR_KEY_MALFORMED || key || !errstr[0])
      fail_msg("%s: got %s (%s)", cases[i].name, m3b_err_name(got), errstr);
    free(owned);
  }
}

static void test_keyring_pem_wrong_types(void **state) {
  static const struct {
    const char *name;
    const char *type;
    int public_only;
  } cases[] = {
      {"Ed25519 private key", "ED25519", 0},
      {"X25519 public key", "X25519", 1},
      {"RSA public key", "RSA", 1},
      {"EC public key", "EC", 1},
  };
  m3b_keyring_t *ring = m3b_keyring_new(NULL, 0);
  size_t i;
  (void)state;
  assert_non_null(ring);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *text = other_key_pem(cases[i].type, cases[i].public_only, 0);
    char errstr[256] = "";
    m3b_err_t got =
        m3b_keyring_add_pem(ring, (const uint8_t *)text, strlen(text), NULL,
                            errstr, sizeof(errstr));
    if (got != M3B_ERR_KEY_MALFORMED)
      fail_msg("%s: got %s", cases[i].name, m3b_err_name(got));
    free(text);
  }
  assert_int_equal(
      m3b_keyring_add_pem(ring, (const uint8_t *)"junk", 4, NULL, NULL, 0),
      M3B_ERR_KEY_MALFORMED);
  assert_int_equal(m3b_keyring_count(ring), 0);
  m3b_keyring_destroy(ring);
}

/* The key id is the first 8 bytes of SHA-256(raw public key), in hex. */
static void test_key_id_derivation(void **state) {
  struct keys *keys = *state;
  struct m3b_buf pem;
  BIO *bio;
  EVP_PKEY *pub;
  uint8_t raw[32];
  size_t raw_len = sizeof(raw);
  uint8_t md[32];
  char hex[17];
  char kid[M3B_KID_LEN + 1];
  m3b_keyring_t *ring = m3b_keyring_new(NULL, 0);
  int i;

  m3b_buf_init(&pem, 4096);
  assert_int_equal(m3b_sign_key_public_pem(keys->a, &pem), M3B_OK);
  bio = BIO_new_mem_buf(pem.data, (int)pem.len);
  pub = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  assert_non_null(pub);
  assert_int_equal(EVP_PKEY_get_raw_public_key(pub, raw, &raw_len), 1);
  assert_int_equal(EVP_Digest(raw, 32, md, NULL, EVP_sha256(), NULL), 1);
  for (i = 0; i < 8; i++)
    snprintf(hex + 2 * i, 3, "%02x", md[i]);
  assert_string_equal(hex, m3b_sign_key_id(keys->a));
  assert_int_equal(m3b_keyring_add_pem(ring, pem.data, pem.len, kid, NULL, 0),
                   M3B_OK);
  assert_string_equal(kid, hex);
  m3b_keyring_destroy(ring);
  EVP_PKEY_free(pub);
  BIO_free(bio);
  m3b_buf_cleanup(&pem);
}

/* ---- files ---- */

static void test_files_and_directory(void **state) {
  struct keys *keys = *state;
  char dir[] = "/tmp/m3b-test-sign-XXXXXX";
  char path[256];
  char path_pub_a[256];
  char path_pub_b[256];
  char path_hidden[256];
  char path_bad[256];
  char errstr[256];
  struct stat st;
  m3b_sign_key_t *loaded = NULL;
  m3b_keyring_t *ring;
  size_t added = 0;
  FILE *f;

  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof(path), "%s/signing.key", dir);
  snprintf(path_pub_a, sizeof(path_pub_a), "%s/a.pem", dir);
  snprintf(path_pub_b, sizeof(path_pub_b), "%s/b.pem", dir);
  snprintf(path_hidden, sizeof(path_hidden), "%s/.hidden.pem", dir);
  snprintf(path_bad, sizeof(path_bad), "%s/zz-bad.pem", dir);

  assert_int_equal(
      m3b_sign_key_save(keys->a, path, "pw", errstr, sizeof(errstr)), M3B_OK);
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  /* never replaces an existing key */
  assert_int_equal(
      m3b_sign_key_save(keys->b, path, NULL, errstr, sizeof(errstr)),
      M3B_ERR_IO);
  assert_int_equal(
      m3b_sign_key_load(path, "pw", &loaded, errstr, sizeof(errstr)), M3B_OK);
  assert_string_equal(m3b_sign_key_id(loaded), m3b_sign_key_id(keys->a));
  m3b_sign_key_destroy(loaded);
  assert_int_equal(
      m3b_sign_key_load(path, "nope", &loaded, errstr, sizeof(errstr)),
      M3B_ERR_KEY_PASSPHRASE);
  assert_int_equal(m3b_sign_key_load("/nonexistent/key.pem", NULL, &loaded,
                                     errstr, sizeof(errstr)),
                   M3B_ERR_IO);

  /* a directory of trusted public keys, for rotation */
  ring = m3b_keyring_new(NULL, 0);
  assert_non_null(ring);
  assert_int_equal(
      m3b_keyring_load_dir(ring, dir, &added, errstr, sizeof(errstr)),
      M3B_ERR_NOT_FOUND);
  assert_int_equal(
      m3b_sign_key_save_public(keys->a, path_pub_a, errstr, sizeof(errstr)),
      M3B_OK);
  assert_int_equal(
      m3b_sign_key_save_public(keys->b, path_pub_b, errstr, sizeof(errstr)),
      M3B_OK);
  f = fopen(path_hidden, "w");
  assert_non_null(f);
  fputs("ignored: starts with a dot\n", f);
  fclose(f);
  assert_int_equal(
      m3b_keyring_load_dir(ring, dir, &added, errstr, sizeof(errstr)), M3B_OK);
  assert_int_equal(added, 2);
  assert_int_equal(m3b_keyring_count(ring), 2);
  assert_true(m3b_keyring_has(ring, m3b_sign_key_id(keys->a)));
  assert_true(m3b_keyring_has(ring, m3b_sign_key_id(keys->b)));

  /* a private key in the trusted directory is an error, named */
  rename(path, path_bad);
  assert_int_equal(
      m3b_keyring_load_dir(ring, dir, &added, errstr, sizeof(errstr)),
      M3B_ERR_KEY_MALFORMED);
  assert_non_null(strstr(errstr, "zz-bad.pem"));
  m3b_keyring_destroy(ring);

  unlink(path_bad);
  unlink(path_pub_a);
  unlink(path_pub_b);
  unlink(path_hidden);
  assert_int_equal(rmdir(dir), 0);
}

/* Regression: a null-valued m3-sig before a real one used to verify OK,
 * while the reverse order was refused; both orders must be refused alike. */
static void test_null_header_never_shadowed(void **state) {
  struct keys *keys = *state;
  uint8_t value[64];
  struct m3b_signature sig;
  struct m3b_sig_headers first_null, first_real;

  fill_value(value, sizeof(value));
  assert_int_equal(
      m3b_sign(keys->a, rec_key, strlen(rec_key), value, sizeof(value), &sig),
      M3B_OK);
  m3b_sig_headers_init(&first_null);
  m3b_sig_headers_feed(&first_null, M3B_SIG_HEADER, NULL, 0);
  m3b_sig_headers_feed(&first_null, M3B_SIG_HEADER, sig.sig, M3B_SIG_LEN);
  m3b_sig_headers_feed(&first_null, M3B_KID_HEADER, sig.kid, M3B_KID_LEN);
  m3b_sig_headers_init(&first_real);
  m3b_sig_headers_feed(&first_real, M3B_SIG_HEADER, sig.sig, M3B_SIG_LEN);
  m3b_sig_headers_feed(&first_real, M3B_SIG_HEADER, NULL, 0);
  m3b_sig_headers_feed(&first_real, M3B_KID_HEADER, sig.kid, M3B_KID_LEN);
  assert_int_equal(m3b_verify(keys->ring, rec_key, strlen(rec_key), value,
                              sizeof(value), &first_null),
                   M3B_ERR_SIG_MALFORMED);
  assert_int_equal(m3b_verify(keys->ring, rec_key, strlen(rec_key), value,
                              sizeof(value), &first_real),
                   M3B_ERR_SIG_MALFORMED);
}

static void test_destroy_null(void **state) {
  (void)state;
  m3b_sign_key_destroy(NULL);
  m3b_keyring_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_and_rotation),
      cmocka_unit_test(test_empty_value_and_tombstone),
      cmocka_unit_test(test_sign_input_bytes),
      cmocka_unit_test(test_bad_records),
      cmocka_unit_test(test_pem_round_trip_and_passphrase),
      cmocka_unit_test(test_private_pem_garbage_and_wrong_types),
      cmocka_unit_test(test_keyring_pem_wrong_types),
      cmocka_unit_test(test_key_id_derivation),
      cmocka_unit_test(test_files_and_directory),
      cmocka_unit_test(test_destroy_null),
      cmocka_unit_test(test_null_header_never_shadowed),
  };
  return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
