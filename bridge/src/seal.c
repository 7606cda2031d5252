/*
 * seal.c - the listener's X25519 key and sealed secrets (<m3b/seal.h>).
 *
 * Version 1, per sealed value:
 *   shared = X25519(ephemeral private, listener public)
 *   key    = HKDF-SHA-256(ikm = shared,
 *                         salt = ephemeral public || listener public,
 *                         info = "m3bridge-seal-v1", length 32)
 *   out    = "m3s" 0x01 || ephemeral public || nonce ||
 *            AES-256-GCM(key, nonce, aad = object key, plaintext) || tag
 * The salt binds the AES key to both public keys; the info label binds it to
 * this format version. Every intermediate secret (shared secret, AES key,
 * ephemeral private key) is wiped before this file returns.
 */
#include <m3b/seal.h>

#include <assert.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>

#include "b64.h"
#include "keyfile.h"

#define SEAL_HEADER_LEN 4 /* magic (3) + version (1) */
#define SEAL_KEY_LEN 32
#define SEAL_INFO "m3bridge-seal-v1"
#define SEAL_TEXT_ANY "m3bridge:sealed:"

static const uint8_t seal_magic[3] = {'m', '3', 's'};

struct m3b_seal_key {
  EVP_PKEY *pkey;
  uint8_t pub[M3B_SEAL_PUBLIC_LEN];
};

/* ---- keys ---- */

static m3b_err_t seal_key_wrap(EVP_PKEY *pkey, m3b_seal_key_t **key_out) {
  m3b_seal_key_t *key = calloc(1, sizeof(*key));
  size_t pub_len = M3B_SEAL_PUBLIC_LEN;

  if (!key) {
    EVP_PKEY_free(pkey);
    return M3B_ERR_NOMEM;
  }
  key->pkey = pkey;
  if (EVP_PKEY_get_raw_public_key(pkey, key->pub, &pub_len) != 1 ||
      pub_len != M3B_SEAL_PUBLIC_LEN) {
    ERR_clear_error();
    m3b_seal_key_destroy(key);
    return M3B_ERR_CRYPTO;
  }
  *key_out = key;
  return M3B_OK;
}

m3b_seal_key_t *m3b_seal_key_generate(char *errstr, size_t errstr_size) {
  m3b_seal_key_t *key = NULL;
  EVP_PKEY *pkey = m3b__pkey_generate("X25519");
  m3b_err_t err;

  if (!pkey) {
    m3b__errstr(errstr, errstr_size, "cannot generate an X25519 key");
    return NULL;
  }
  err = seal_key_wrap(pkey, &key);
  if (err) {
    m3b__errstr(errstr, errstr_size, "%s", m3b_err_str(err));
    return NULL;
  }
  return key;
}

m3b_err_t m3b_seal_key_from_pem(const uint8_t *pem, size_t len,
                                const char *passphrase,
                                m3b_seal_key_t **key_out, char *errstr,
                                size_t errstr_size) {
  EVP_PKEY *pkey = NULL;
  m3b_err_t err;

  *key_out = NULL;
  err = m3b__pem_private_decode(pem, len, passphrase, "X25519", &pkey, errstr,
                                errstr_size);
  if (err)
    return err;
  return seal_key_wrap(pkey, key_out);
}

m3b_err_t m3b_seal_key_load(const char *path, const char *passphrase,
                            m3b_seal_key_t **key_out, char *errstr,
                            size_t errstr_size) {
  EVP_PKEY *pkey = NULL;
  m3b_err_t err;

  *key_out = NULL;
  err = m3b__pem_private_load(path, passphrase, "X25519", &pkey, errstr,
                              errstr_size);
  if (err)
    return err;
  return seal_key_wrap(pkey, key_out);
}

m3b_err_t m3b_seal_key_to_pem(const m3b_seal_key_t *key, const char *passphrase,
                              struct m3b_buf *pem_out) {
  return m3b__pem_private_encode(key->pkey, passphrase, pem_out);
}

m3b_err_t m3b_seal_key_save(const m3b_seal_key_t *key, const char *path,
                            const char *passphrase, char *errstr,
                            size_t errstr_size) {
  return m3b__pem_private_save(key->pkey, path, passphrase, errstr,
                               errstr_size);
}

void m3b_seal_key_public(const m3b_seal_key_t *key,
                         uint8_t pub_out[M3B_SEAL_PUBLIC_LEN]) {
  memcpy(pub_out, key->pub, M3B_SEAL_PUBLIC_LEN);
}

void m3b_seal_key_destroy(m3b_seal_key_t *key) {
  if (!key)
    return;
  EVP_PKEY_free(key->pkey); /* OpenSSL wipes the private key it frees */
  OPENSSL_cleanse(key, sizeof(*key));
  free(key);
}

m3b_err_t m3b_seal_public_from_pem(const uint8_t *pem, size_t len,
                                   uint8_t pub_out[M3B_SEAL_PUBLIC_LEN],
                                   char *errstr, size_t errstr_size) {
  EVP_PKEY *pkey = NULL;
  size_t pub_len = M3B_SEAL_PUBLIC_LEN;
  m3b_err_t err;

  err = m3b__pem_public_decode(pem, len, "X25519", &pkey, errstr, errstr_size);
  if (err)
    return err;
  if (EVP_PKEY_get_raw_public_key(pkey, pub_out, &pub_len) != 1 ||
      pub_len != M3B_SEAL_PUBLIC_LEN) {
    ERR_clear_error();
    err = M3B_ERR_KEY_MALFORMED;
  }
  EVP_PKEY_free(pkey);
  return err;
}

m3b_err_t m3b_seal_public_load(const char *path,
                               uint8_t pub_out[M3B_SEAL_PUBLIC_LEN],
                               char *errstr, size_t errstr_size) {
  struct m3b_buf pem;
  m3b_err_t err;

  m3b_buf_init(&pem, M3B__KEYFILE_MAX);
  err = m3b__file_read(path, M3B__KEYFILE_MAX, &pem, errstr, errstr_size);
  if (err)
    goto out;
  err =
      m3b_seal_public_from_pem(pem.data, pem.len, pub_out, errstr, errstr_size);
out:
  m3b_buf_cleanup(&pem);
  return err;
}

m3b_err_t m3b_seal_public_to_pem(const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                                 struct m3b_buf *pem_out) {
  EVP_PKEY *pkey;
  m3b_err_t err;

  pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, pub,
                                        M3B_SEAL_PUBLIC_LEN);
  if (!pkey) {
    ERR_clear_error();
    return M3B_ERR_KEY_MALFORMED;
  }
  err = m3b__pem_public_encode(pkey, pem_out);
  EVP_PKEY_free(pkey);
  return err;
}

m3b_err_t m3b_seal_public_save(const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                               const char *path, char *errstr,
                               size_t errstr_size) {
  struct m3b_buf pem;
  m3b_err_t err;

  m3b_buf_init(&pem, M3B__KEYFILE_MAX);
  err = m3b_seal_public_to_pem(pub, &pem);
  if (err)
    goto out;
  err = m3b__file_write(path, pem.data, pem.len, 0, errstr, errstr_size);
out:
  m3b_buf_cleanup(&pem);
  return err;
}

/* ---- key agreement ---- */

/* Derives the AES key from our private key priv and the peer's raw public
 * key, with both public keys in the HKDF salt (ephemeral first).
 * M3B_ERR_KEY_MALFORMED when the peer key cannot be used (X25519 refuses
 * low-order points, whose shared secret is all zeros). */
static m3b_err_t seal_derive(EVP_PKEY *priv, const uint8_t *peer_pub,
                             const uint8_t *eph_pub,
                             const uint8_t *listener_pub,
                             uint8_t aes_key[SEAL_KEY_LEN]) {
  EVP_PKEY *peer = NULL;
  EVP_PKEY_CTX *dh_ctx = NULL;
  EVP_KDF *kdf = NULL;
  EVP_KDF_CTX *kdf_ctx = NULL;
  uint8_t shared[32];
  size_t shared_len = sizeof(shared);
  uint8_t salt[2 * M3B_SEAL_PUBLIC_LEN];
  char digest[] = "SHA256";
  char info[] = SEAL_INFO;
  OSSL_PARAM params[5];
  m3b_err_t err = M3B_OK;

  peer = EVP_PKEY_new_raw_public_key_ex(NULL, "X25519", NULL, peer_pub,
                                        M3B_SEAL_PUBLIC_LEN);
  if (!peer) {
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  dh_ctx = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
  if (!dh_ctx) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (EVP_PKEY_derive_init(dh_ctx) != 1 ||
      EVP_PKEY_derive_set_peer(dh_ctx, peer) != 1 ||
      EVP_PKEY_derive(dh_ctx, shared, &shared_len) != 1 ||
      shared_len != sizeof(shared)) {
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  memcpy(salt, eph_pub, M3B_SEAL_PUBLIC_LEN);
  memcpy(salt + M3B_SEAL_PUBLIC_LEN, listener_pub, M3B_SEAL_PUBLIC_LEN);
  kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
  kdf_ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
  if (!kdf_ctx) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  params[0] =
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0);
  params[1] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, shared,
                                                sizeof(shared));
  params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt,
                                                sizeof(salt));
  params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info,
                                                sizeof(info) - 1);
  params[4] = OSSL_PARAM_construct_end();
  if (EVP_KDF_derive(kdf_ctx, aes_key, SEAL_KEY_LEN, params) != 1)
    err = M3B_ERR_CRYPTO;
out:
  OPENSSL_cleanse(shared, sizeof(shared));
  EVP_KDF_CTX_free(kdf_ctx);
  EVP_KDF_free(kdf);
  EVP_PKEY_CTX_free(dh_ctx);
  EVP_PKEY_free(peer);
  ERR_clear_error();
  return err;
}

/* ---- seal ---- */

m3b_err_t m3b_seal(const uint8_t pub[M3B_SEAL_PUBLIC_LEN], const void *plain,
                   size_t plain_len, const void *aad, size_t aad_len,
                   struct m3b_buf *sealed_out) {
  EVP_PKEY *eph = NULL;
  EVP_CIPHER_CTX *cipher_ctx = NULL;
  uint8_t eph_pub[M3B_SEAL_PUBLIC_LEN];
  size_t eph_pub_len = sizeof(eph_pub);
  uint8_t aes_key[SEAL_KEY_LEN];
  uint8_t *dst;
  int n;
  m3b_err_t err;

  if (plain_len > M3B_SEAL_MAX_PLAINTEXT)
    return M3B_ERR_LIMIT;
  if (aad_len > INT_MAX)
    return M3B_ERR_LIMIT;
  err = m3b_buf_reserve(sealed_out, plain_len + M3B_SEAL_OVERHEAD);
  if (err)
    return err;
  eph = m3b__pkey_generate("X25519");
  if (!eph) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  if (EVP_PKEY_get_raw_public_key(eph, eph_pub, &eph_pub_len) != 1) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  err = seal_derive(eph, pub, eph_pub, pub, aes_key);
  if (err)
    goto out;

  dst = sealed_out->data + sealed_out->len;
  memcpy(dst, seal_magic, sizeof(seal_magic));
  dst[3] = M3B_SEAL_VERSION;
  memcpy(dst + SEAL_HEADER_LEN, eph_pub, M3B_SEAL_PUBLIC_LEN);
  dst += SEAL_HEADER_LEN + M3B_SEAL_PUBLIC_LEN;
  if (RAND_bytes(dst, M3B_SEAL_NONCE_LEN) != 1) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  cipher_ctx = EVP_CIPHER_CTX_new();
  if (!cipher_ctx) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (EVP_EncryptInit_ex2(cipher_ctx, EVP_aes_256_gcm(), aes_key, dst, NULL) !=
          1 ||
      (aad_len &&
       EVP_EncryptUpdate(cipher_ctx, NULL, &n, aad, (int)aad_len) != 1)) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  dst += M3B_SEAL_NONCE_LEN;
  if ((plain_len &&
       EVP_EncryptUpdate(cipher_ctx, dst, &n, plain, (int)plain_len) != 1) ||
      EVP_EncryptFinal_ex(cipher_ctx, dst + plain_len, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(cipher_ctx, EVP_CTRL_GCM_GET_TAG, M3B_SEAL_TAG_LEN,
                          dst + plain_len) != 1) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  sealed_out->len += plain_len + M3B_SEAL_OVERHEAD;
  sealed_out->data[sealed_out->len] = 0;
out:
  OPENSSL_cleanse(aes_key, sizeof(aes_key));
  EVP_CIPHER_CTX_free(cipher_ctx);
  EVP_PKEY_free(eph);
  ERR_clear_error();
  return err;
}

m3b_err_t m3b_seal_text(const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                        const void *plain, size_t plain_len, const void *aad,
                        size_t aad_len, struct m3b_buf *text_out) {
  struct m3b_buf sealed;
  size_t start = text_out->len;
  m3b_err_t err;

  m3b_buf_init(&sealed, M3B_SEAL_MAX_PLAINTEXT + M3B_SEAL_OVERHEAD);
  err = m3b_seal(pub, plain, plain_len, aad, aad_len, &sealed);
  if (err)
    goto out;
  err = m3b_buf_append_str(text_out, M3B_SEAL_TEXT_PREFIX);
  if (err)
    goto out;
  err = m3b__b64_encode(sealed.data, sealed.len, text_out);
  if (err) {
    text_out->len = start;
    if (text_out->data)
      text_out->data[start] = 0;
  }
out:
  m3b_buf_cleanup(&sealed);
  return err;
}

/* ---- unseal ---- */

m3b_err_t m3b_unseal(const m3b_seal_key_t *key, const uint8_t *sealed,
                     size_t sealed_len, const void *aad, size_t aad_len,
                     struct m3b_buf *plain_out) {
  EVP_CIPHER_CTX *cipher_ctx = NULL;
  uint8_t aes_key[SEAL_KEY_LEN];
  const uint8_t *eph_pub;
  const uint8_t *nonce;
  const uint8_t *ciphertext;
  uint8_t tag[M3B_SEAL_TAG_LEN];
  size_t plain_len;
  uint8_t *dst = NULL;
  int n;
  m3b_err_t err;

  assert(key && plain_out);
  if (plain_out->len != 0)
    return M3B_ERR_INVALID_ARG;
  if (sealed_len < SEAL_HEADER_LEN ||
      memcmp(sealed, seal_magic, sizeof(seal_magic)) != 0)
    return M3B_ERR_SEAL_MALFORMED;
  if (sealed[3] != M3B_SEAL_VERSION)
    return M3B_ERR_SEAL_VERSION;
  if (sealed_len < M3B_SEAL_OVERHEAD)
    return M3B_ERR_SEAL_MALFORMED;
  plain_len = sealed_len - M3B_SEAL_OVERHEAD;
  if (plain_len > M3B_SEAL_MAX_PLAINTEXT || aad_len > INT_MAX)
    return M3B_ERR_LIMIT;
  eph_pub = sealed + SEAL_HEADER_LEN;
  nonce = eph_pub + M3B_SEAL_PUBLIC_LEN;
  ciphertext = nonce + M3B_SEAL_NONCE_LEN;
  memcpy(tag, ciphertext + plain_len, sizeof(tag));

  err = seal_derive(key->pkey, eph_pub, eph_pub, key->pub, aes_key);
  if (err == M3B_ERR_KEY_MALFORMED)
    err = M3B_ERR_SEAL_MALFORMED; /* the ephemeral key is part of the input */
  if (err)
    goto out;
  err = m3b_buf_reserve(plain_out, plain_len);
  if (err)
    goto out;
  dst = plain_out->data;
  cipher_ctx = EVP_CIPHER_CTX_new();
  if (!cipher_ctx) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (EVP_DecryptInit_ex2(cipher_ctx, EVP_aes_256_gcm(), aes_key, nonce,
                          NULL) != 1 ||
      EVP_CIPHER_CTX_ctrl(cipher_ctx, EVP_CTRL_GCM_SET_TAG, M3B_SEAL_TAG_LEN,
                          tag) != 1 ||
      (aad_len &&
       EVP_DecryptUpdate(cipher_ctx, NULL, &n, aad, (int)aad_len) != 1) ||
      (plain_len && EVP_DecryptUpdate(cipher_ctx, dst, &n, ciphertext,
                                      (int)plain_len) != 1)) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  if (EVP_DecryptFinal_ex(cipher_ctx, dst + plain_len, &n) != 1) {
    err = M3B_ERR_SEAL_AUTH;
    goto out;
  }
  plain_out->len = plain_len;
  plain_out->data[plain_len] = 0;
out:
  if (err && dst)
    OPENSSL_cleanse(dst, plain_len + 1);
  OPENSSL_cleanse(aes_key, sizeof(aes_key));
  EVP_CIPHER_CTX_free(cipher_ctx);
  ERR_clear_error();
  return err;
}

int m3b_seal_is_text(const char *text, size_t text_len) {
  size_t prefix_len = sizeof(SEAL_TEXT_ANY) - 1;
  return text_len >= prefix_len && memcmp(text, SEAL_TEXT_ANY, prefix_len) == 0;
}

m3b_err_t m3b_unseal_text(const m3b_seal_key_t *key, const char *text,
                          size_t text_len, const void *aad, size_t aad_len,
                          struct m3b_buf *plain_out) {
  size_t prefix_len = sizeof(M3B_SEAL_TEXT_PREFIX) - 1;
  size_t max_text = prefix_len + m3b__b64_encoded_len(M3B_SEAL_MAX_PLAINTEXT +
                                                      M3B_SEAL_OVERHEAD);
  struct m3b_buf sealed;
  m3b_err_t err;

  if (!m3b_seal_is_text(text, text_len))
    return M3B_ERR_SEAL_MALFORMED;
  if (text_len < prefix_len ||
      memcmp(text, M3B_SEAL_TEXT_PREFIX, prefix_len) != 0)
    return M3B_ERR_SEAL_VERSION;
  if (text_len > max_text)
    return M3B_ERR_LIMIT;
  m3b_buf_init(&sealed, max_text);
  err = m3b__b64_decode(text + prefix_len, text_len - prefix_len, &sealed);
  if (err == M3B_ERR_DECODE)
    err = M3B_ERR_SEAL_MALFORMED;
  if (err)
    goto out;
  err = m3b_unseal(key, sealed.data, sealed.len, aad, aad_len, plain_out);
out:
  m3b_buf_cleanup(&sealed);
  return err;
}
