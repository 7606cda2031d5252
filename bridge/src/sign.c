/*
 * sign.c - the control plane's Ed25519 signing key and record signatures
 * (<m3b/sign.h>).
 *
 * The signing input frames the record key and value with explicit lengths
 * behind a domain-separation label, so no (key, value) pair has the same
 * input as another and a signature made here means nothing in any other
 * protocol. Ed25519 is used in its pure form (EVP_DigestSign with no
 * digest), which signs the whole input in one call.
 */
#include <m3b/sign.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "keyfile.h"
#include "sig_internal.h"

/* 15 characters and a NUL byte: 16 bytes that open every signing input. */
static const uint8_t sig_label[16] = "m3bridge-sig-v1";

struct m3b_sign_key {
  EVP_PKEY *pkey;
  char kid[M3B_KID_LEN + 1];
};

m3b_err_t m3b__sig_key_id(EVP_PKEY *pkey, char kid_out[M3B_KID_LEN + 1],
                          uint8_t raw_out[M3B_SIG_PUBLIC_LEN]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t raw[M3B_SIG_PUBLIC_LEN];
  uint8_t md[EVP_MAX_MD_SIZE];
  size_t raw_len = sizeof(raw);
  unsigned int md_len = 0;
  size_t i;

  if (EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) != 1 ||
      raw_len != sizeof(raw) ||
      EVP_Digest(raw, raw_len, md, &md_len, EVP_sha256(), NULL) != 1) {
    ERR_clear_error();
    return M3B_ERR_CRYPTO;
  }
  for (i = 0; i < M3B_KID_LEN / 2; i++) {
    kid_out[2 * i] = hex[md[i] >> 4];
    kid_out[2 * i + 1] = hex[md[i] & 15];
  }
  kid_out[M3B_KID_LEN] = 0;
  if (raw_out)
    memcpy(raw_out, raw, sizeof(raw));
  return M3B_OK;
}

EVP_PKEY *m3b__sign_key_pkey(const m3b_sign_key_t *key) {
  return key->pkey;
}

/* Wraps pkey (taken) into a signing key. */
static m3b_err_t sign_key_wrap(EVP_PKEY *pkey, m3b_sign_key_t **key_out) {
  m3b_sign_key_t *key = calloc(1, sizeof(*key));
  m3b_err_t err;

  if (!key) {
    EVP_PKEY_free(pkey);
    return M3B_ERR_NOMEM;
  }
  key->pkey = pkey;
  err = m3b__sig_key_id(pkey, key->kid, NULL);
  if (err) {
    m3b_sign_key_destroy(key);
    return err;
  }
  *key_out = key;
  return M3B_OK;
}

m3b_sign_key_t *m3b_sign_key_generate(char *errstr, size_t errstr_size) {
  m3b_sign_key_t *key = NULL;
  EVP_PKEY *pkey = m3b__pkey_generate("ED25519");
  m3b_err_t err;

  if (!pkey) {
    m3b__errstr(errstr, errstr_size, "cannot generate an Ed25519 key");
    return NULL;
  }
  err = sign_key_wrap(pkey, &key);
  if (err) {
    m3b__errstr(errstr, errstr_size, "%s", m3b_err_str(err));
    return NULL;
  }
  return key;
}

m3b_err_t m3b_sign_key_from_pem(const uint8_t *pem, size_t len,
                                const char *passphrase,
                                m3b_sign_key_t **key_out, char *errstr,
                                size_t errstr_size) {
  EVP_PKEY *pkey = NULL;
  m3b_err_t err;

  *key_out = NULL;
  err = m3b__pem_private_decode(pem, len, passphrase, "ED25519", &pkey, errstr,
                                errstr_size);
  if (err)
    return err;
  return sign_key_wrap(pkey, key_out);
}

m3b_err_t m3b_sign_key_load(const char *path, const char *passphrase,
                            m3b_sign_key_t **key_out, char *errstr,
                            size_t errstr_size) {
  EVP_PKEY *pkey = NULL;
  m3b_err_t err;

  *key_out = NULL;
  err = m3b__pem_private_load(path, passphrase, "ED25519", &pkey, errstr,
                              errstr_size);
  if (err)
    return err;
  return sign_key_wrap(pkey, key_out);
}

m3b_err_t m3b_sign_key_to_pem(const m3b_sign_key_t *key, const char *passphrase,
                              struct m3b_buf *pem_out) {
  return m3b__pem_private_encode(key->pkey, passphrase, pem_out);
}

m3b_err_t m3b_sign_key_save(const m3b_sign_key_t *key, const char *path,
                            const char *passphrase, char *errstr,
                            size_t errstr_size) {
  return m3b__pem_private_save(key->pkey, path, passphrase, errstr,
                               errstr_size);
}

m3b_err_t m3b_sign_key_public_pem(const m3b_sign_key_t *key,
                                  struct m3b_buf *pem_out) {
  return m3b__pem_public_encode(key->pkey, pem_out);
}

m3b_err_t m3b_sign_key_save_public(const m3b_sign_key_t *key, const char *path,
                                   char *errstr, size_t errstr_size) {
  struct m3b_buf pem;
  m3b_err_t err;

  m3b_buf_init(&pem, M3B__KEYFILE_MAX);
  err = m3b_sign_key_public_pem(key, &pem);
  if (err)
    goto out;
  err = m3b__file_write(path, pem.data, pem.len, 0, errstr, errstr_size);
out:
  m3b_buf_cleanup(&pem);
  return err;
}

const char *m3b_sign_key_id(const m3b_sign_key_t *key) {
  return key->kid;
}

void m3b_sign_key_destroy(m3b_sign_key_t *key) {
  if (!key)
    return;
  EVP_PKEY_free(key->pkey); /* OpenSSL wipes the private key it frees */
  OPENSSL_cleanse(key, sizeof(*key));
  free(key);
}

m3b_err_t m3b_sign_input(const void *rec_key, size_t key_len, const void *value,
                         size_t value_len, struct m3b_buf *out) {
  uint8_t len_be[8];
  size_t total;
  int i;
  m3b_err_t err;

  if (key_len > M3B_SIG_MAX_INPUT || value_len > M3B_SIG_MAX_INPUT ||
      key_len + value_len > M3B_SIG_MAX_INPUT)
    return M3B_ERR_LIMIT;
  total = sizeof(sig_label) + 4 + key_len + 8 + value_len;
  err = m3b_buf_reserve(out, total);
  if (err)
    return err;
  err = m3b_buf_append(out, sig_label, sizeof(sig_label));
  if (err)
    return err;
  for (i = 0; i < 4; i++)
    len_be[i] = (uint8_t)((uint64_t)key_len >> (24 - 8 * i));
  err = m3b_buf_append(out, len_be, 4);
  if (err)
    return err;
  err = m3b_buf_append(out, rec_key, key_len);
  if (err)
    return err;
  for (i = 0; i < 8; i++)
    len_be[i] = (uint8_t)((uint64_t)value_len >> (56 - 8 * i));
  err = m3b_buf_append(out, len_be, 8);
  if (err)
    return err;
  return m3b_buf_append(out, value, value_len);
}

m3b_err_t m3b_sign(const m3b_sign_key_t *key, const void *rec_key,
                   size_t key_len, const void *value, size_t value_len,
                   struct m3b_signature *sig_out) {
  struct m3b_buf input;
  EVP_MD_CTX *md_ctx = NULL;
  size_t sig_len = M3B_SIG_LEN;
  m3b_err_t err;

  assert(key && sig_out);
  m3b_buf_init(&input, (size_t)M3B_SIG_MAX_INPUT + 64);
  err = m3b_sign_input(rec_key, key_len, value, value_len, &input);
  if (err)
    goto out;
  md_ctx = EVP_MD_CTX_new();
  if (!md_ctx) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (EVP_DigestSignInit_ex(md_ctx, NULL, NULL, NULL, NULL, key->pkey, NULL) !=
          1 ||
      EVP_DigestSign(md_ctx, sig_out->sig, &sig_len, input.data, input.len) !=
          1 ||
      sig_len != M3B_SIG_LEN) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  memcpy(sig_out->kid, key->kid, sizeof(sig_out->kid));
out:
  EVP_MD_CTX_free(md_ctx);
  m3b_buf_cleanup(&input);
  ERR_clear_error();
  return err;
}
