/*
 * keyring.c - the listener's ring of trusted Ed25519 public keys and record
 * verification (<m3b/sign.h>).
 *
 * The ring is a small array (at most M3B_KEYRING_MAX keys) searched by key
 * id. Verification checks the headers' presence and shape before touching
 * any key, so each kind of bad record gets its own error, and it never
 * trusts the key id beyond using it to pick a key: the signature is always
 * checked against the key itself.
 */
#include <m3b/sign.h>

#include <assert.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "keyfile.h"
#include "sig_internal.h"

struct ring_key {
  char kid[M3B_KID_LEN + 1];
  uint8_t raw[M3B_SIG_PUBLIC_LEN];
  EVP_PKEY *pkey; /* public only */
};

struct m3b_keyring {
  struct ring_key keys[M3B_KEYRING_MAX];
  size_t count;
};

void m3b_sig_headers_init(struct m3b_sig_headers *headers) {
  memset(headers, 0, sizeof(*headers));
}

void m3b_sig_headers_feed(struct m3b_sig_headers *headers, const char *name,
                          const void *value, size_t len) {
  /* A repeated header is refused (SIG_MALFORMED) whatever the values, in
   * either order: a null value never shadows a real one or the reverse, so
   * the first real value is kept for the MISSING check. */
  if (strcmp(name, M3B_SIG_HEADER) == 0) {
    if (headers->sig_seen++)
      headers->duplicates = 1;
    if (!headers->sig) {
      headers->sig = value;
      headers->sig_len = value ? len : 0;
    }
  } else if (strcmp(name, M3B_KID_HEADER) == 0) {
    if (headers->kid_seen++)
      headers->duplicates = 1;
    if (!headers->kid) {
      headers->kid = value;
      headers->kid_len = value ? len : 0;
    }
  }
}

m3b_keyring_t *m3b_keyring_new(char *errstr, size_t errstr_size) {
  m3b_keyring_t *ring = calloc(1, sizeof(*ring));
  if (!ring)
    m3b__errstr(errstr, errstr_size, "out of memory");
  return ring;
}

void m3b_keyring_destroy(m3b_keyring_t *ring) {
  size_t i;
  if (!ring)
    return;
  for (i = 0; i < ring->count; i++)
    EVP_PKEY_free(ring->keys[i].pkey);
  free(ring);
}

/* Index of kid (a NUL-terminated string) in the ring, or -1. */
static long ring_find(const m3b_keyring_t *ring, const char *kid, size_t len) {
  size_t i;
  if (len != M3B_KID_LEN)
    return -1;
  for (i = 0; i < ring->count; i++)
    if (memcmp(ring->keys[i].kid, kid, M3B_KID_LEN) == 0)
      return (long)i;
  return -1;
}

/* Adds pkey (taken; public Ed25519). */
static m3b_err_t ring_add(m3b_keyring_t *ring, EVP_PKEY *pkey,
                          char kid_out[M3B_KID_LEN + 1], char *errstr,
                          size_t errstr_size) {
  struct ring_key entry;
  long at;
  m3b_err_t err;

  err = m3b__sig_key_id(pkey, entry.kid, entry.raw);
  if (err)
    goto fail;
  at = ring_find(ring, entry.kid, M3B_KID_LEN);
  if (at >= 0) {
    if (memcmp(ring->keys[at].raw, entry.raw, sizeof(entry.raw)) != 0) {
      /* two keys whose ids collide: refuse rather than guess */
      m3b__errstr(errstr, errstr_size,
                  "another key with id %s is already trusted", entry.kid);
      err = M3B_ERR_KEY_MALFORMED;
      goto fail;
    }
    EVP_PKEY_free(pkey);
    goto done;
  }
  if (ring->count == M3B_KEYRING_MAX) {
    m3b__errstr(errstr, errstr_size, "key ring is full (%d keys)",
                M3B_KEYRING_MAX);
    err = M3B_ERR_LIMIT;
    goto fail;
  }
  entry.pkey = pkey;
  ring->keys[ring->count++] = entry;
done:
  if (kid_out)
    memcpy(kid_out, entry.kid, M3B_KID_LEN + 1);
  return M3B_OK;
fail:
  EVP_PKEY_free(pkey);
  return err;
}

m3b_err_t m3b_keyring_add_pem(m3b_keyring_t *ring, const uint8_t *pem,
                              size_t len, char kid_out[M3B_KID_LEN + 1],
                              char *errstr, size_t errstr_size) {
  EVP_PKEY *pkey = NULL;
  m3b_err_t err;

  err = m3b__pem_public_decode(pem, len, "ED25519", &pkey, errstr, errstr_size);
  if (err)
    return err;
  return ring_add(ring, pkey, kid_out, errstr, errstr_size);
}

m3b_err_t m3b_keyring_add_file(m3b_keyring_t *ring, const char *path,
                               char kid_out[M3B_KID_LEN + 1], char *errstr,
                               size_t errstr_size) {
  struct m3b_buf pem;
  char detail[256] = "";
  m3b_err_t err;

  m3b_buf_init(&pem, M3B__KEYFILE_MAX);
  err = m3b__file_read(path, M3B__KEYFILE_MAX, &pem, errstr, errstr_size);
  if (err)
    goto out;
  err = m3b_keyring_add_pem(ring, pem.data, pem.len, kid_out, detail,
                            sizeof(detail));
  if (err)
    m3b__errstr(errstr, errstr_size, "%s: %s", path, detail);
out:
  m3b_buf_cleanup(&pem);
  return err;
}

/* Non-zero when name ends in ".pem" and does not start with '.'. */
static int is_pem_name(const char *name) {
  size_t len = strlen(name);
  return name[0] != '.' && len > 4 && strcmp(name + len - 4, ".pem") == 0;
}

m3b_err_t m3b_keyring_load_dir(m3b_keyring_t *ring, const char *dir,
                               size_t *added_out, char *errstr,
                               size_t errstr_size) {
  struct m3b_buf path;
  DIR *dh;
  struct dirent *entry;
  size_t added = 0;
  m3b_err_t err = M3B_OK;

  if (added_out)
    *added_out = 0;
  dh = opendir(dir);
  if (!dh) {
    m3b__errstr(errstr, errstr_size, "%s: cannot open directory", dir);
    return M3B_ERR_IO;
  }
  m3b_buf_init(&path, 4096);
  for (;;) {
    entry = readdir(dh);
    if (!entry)
      break;
    if (!is_pem_name(entry->d_name))
      continue;
    m3b_buf_reset(&path);
    err = m3b_buf_appendf(&path, "%s/%s", dir, entry->d_name);
    if (err)
      goto out;
    err = m3b_keyring_add_file(ring, (const char *)path.data, NULL, errstr,
                               errstr_size);
    if (err)
      goto out;
    added++;
  }
  if (!added) {
    m3b__errstr(errstr, errstr_size, "%s: no .pem files", dir);
    err = M3B_ERR_NOT_FOUND;
  }
out:
  if (added_out)
    *added_out = added;
  m3b_buf_cleanup(&path);
  closedir(dh);
  return err;
}

m3b_err_t m3b_keyring_add_sign_key(m3b_keyring_t *ring,
                                   const m3b_sign_key_t *key) {
  EVP_PKEY *priv = m3b__sign_key_pkey(key);
  uint8_t raw[M3B_SIG_PUBLIC_LEN];
  size_t raw_len = sizeof(raw);
  EVP_PKEY *pub;

  if (EVP_PKEY_get_raw_public_key(priv, raw, &raw_len) != 1) {
    ERR_clear_error();
    return M3B_ERR_CRYPTO;
  }
  pub = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, raw, raw_len);
  if (!pub) {
    ERR_clear_error();
    return M3B_ERR_CRYPTO;
  }
  return ring_add(ring, pub, NULL, NULL, 0);
}

m3b_err_t m3b_keyring_remove(m3b_keyring_t *ring, const char *kid) {
  long at = ring_find(ring, kid, strlen(kid));
  if (at < 0)
    return M3B_ERR_NOT_FOUND;
  EVP_PKEY_free(ring->keys[at].pkey);
  ring->keys[at] = ring->keys[ring->count - 1];
  ring->count--;
  return M3B_OK;
}

size_t m3b_keyring_count(const m3b_keyring_t *ring) {
  return ring->count;
}

int m3b_keyring_has(const m3b_keyring_t *ring, const char *kid) {
  return ring_find(ring, kid, strlen(kid)) >= 0;
}

/* Non-zero when kid[0..len) is a well-formed key id. */
static int kid_well_formed(const uint8_t *kid, size_t len) {
  size_t i;
  if (len != M3B_KID_LEN)
    return 0;
  for (i = 0; i < len; i++)
    if (!((kid[i] >= '0' && kid[i] <= '9') || (kid[i] >= 'a' && kid[i] <= 'f')))
      return 0;
  return 1;
}

m3b_err_t m3b_verify(const m3b_keyring_t *ring, const void *rec_key,
                     size_t key_len, const void *value, size_t value_len,
                     const struct m3b_sig_headers *headers) {
  struct m3b_buf input;
  EVP_MD_CTX *md_ctx = NULL;
  long at;
  m3b_err_t err;

  assert(ring);
  if (!headers || !headers->sig || !headers->kid)
    return M3B_ERR_SIG_MISSING;
  if (headers->duplicates || headers->sig_len != M3B_SIG_LEN ||
      !kid_well_formed(headers->kid, headers->kid_len))
    return M3B_ERR_SIG_MALFORMED;
  at = ring_find(ring, (const char *)headers->kid, headers->kid_len);
  if (at < 0)
    return M3B_ERR_SIG_UNKNOWN_KEY;

  m3b_buf_init(&input, (size_t)M3B_SIG_MAX_INPUT + 64);
  err = m3b_sign_input(rec_key, key_len, value, value_len, &input);
  if (err)
    goto out;
  md_ctx = EVP_MD_CTX_new();
  if (!md_ctx) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (EVP_DigestVerifyInit_ex(md_ctx, NULL, NULL, NULL, NULL,
                              ring->keys[at].pkey, NULL) != 1) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  if (EVP_DigestVerify(md_ctx, headers->sig, M3B_SIG_LEN, input.data,
                       input.len) != 1)
    err = M3B_ERR_SIG_INVALID;
out:
  EVP_MD_CTX_free(md_ctx);
  m3b_buf_cleanup(&input);
  ERR_clear_error();
  return err;
}
