/*
 * keyfile.c - key files and PEM encoding for sign.c, keyring.c and seal.c
 * (keyfile.h).
 *
 * PEM is parsed block by block with PEM_read_bio rather than with
 * PEM_read_bio_PrivateKey so that the outcome never depends on guessing from
 * OpenSSL's error queue: the block name says whether the key is encrypted,
 * and a failing PKCS8_decrypt of a well-formed encrypted key can only mean a
 * wrong passphrase. The OpenSSL error queue is cleared at every exit.
 */
#include "keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errstr.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>

m3b_err_t m3b__file_read(const char *path, size_t max, struct m3b_buf *out,
                         char *errstr, size_t errstr_size) {
  m3b_err_t err = M3B_OK;
  struct stat st;
  size_t size;
  size_t got = 0;
  int fd;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    m3b__errstr(errstr, errstr_size, "%s: %s", path, strerror(errno));
    return M3B_ERR_IO;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    m3b__errstr(errstr, errstr_size, "%s: not a regular file", path);
    err = M3B_ERR_IO;
    goto out;
  }
  if ((uintmax_t)st.st_size > max) {
    m3b__errstr(errstr, errstr_size, "%s: larger than %zu bytes", path, max);
    err = M3B_ERR_LIMIT;
    goto out;
  }
  size = (size_t)st.st_size;
  err = m3b_buf_reserve(out, size);
  if (err)
    goto out;
  while (got < size) {
    ssize_t n = read(fd, out->data + out->len + got, size - got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      m3b__errstr(errstr, errstr_size, "%s: %s", path, strerror(errno));
      err = M3B_ERR_IO;
      goto out;
    }
    if (n == 0)
      break;
    got += (size_t)n;
  }
  out->len += got;
  out->data[out->len] = 0;
out:
  close(fd);
  return err;
}

m3b_err_t m3b__file_write(const char *path, const void *data, size_t n,
                          int flags, char *errstr, size_t errstr_size) {
  const uint8_t *p = data;
  size_t done = 0;
  int fd;

  if (flags & M3B__FILE_PRIVATE)
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
              S_IRUSR | S_IWUSR);
  else
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
              S_IRUSR | S_IWUSR | S_IRGRP | S_IROTH);
  if (fd < 0) {
    m3b__errstr(errstr, errstr_size, "%s: %s", path, strerror(errno));
    return M3B_ERR_IO;
  }
  /* the umask can only remove permission bits; this makes 0600 explicit */
  if ((flags & M3B__FILE_PRIVATE) && fchmod(fd, S_IRUSR | S_IWUSR) != 0)
    goto fail;
  while (done < n) {
    ssize_t w = write(fd, p + done, n - done);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      goto fail;
    done += (size_t)w;
  }
  if (fsync(fd) != 0)
    goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  return M3B_OK;

fail:
  m3b__errstr(errstr, errstr_size, "%s: %s", path, strerror(errno));
  if (fd >= 0)
    close(fd);
  unlink(path);
  return M3B_ERR_IO;
}

EVP_PKEY *m3b__pkey_generate(const char *type) {
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, type);
  ERR_clear_error();
  return pkey;
}

/* OpenSSL's name of a key's type, never NULL. */
static const char *pkey_type_name(const EVP_PKEY *pkey) {
  const char *name = EVP_PKEY_get0_type_name(pkey);
  return name ? name : "an unknown key type";
}

/* Reads the first PEM block of pem[0..len): its name and DER body. */
static m3b_err_t pem_block(const uint8_t *pem, size_t len, char **name_out,
                           unsigned char **der_out, long *der_len_out) {
  BIO *bio = NULL;
  char *header = NULL;
  m3b_err_t err = M3B_OK;

  if (len > INT_MAX)
    return M3B_ERR_KEY_MALFORMED;
  bio = BIO_new_mem_buf(pem, (int)len);
  if (!bio)
    return M3B_ERR_NOMEM;
  if (PEM_read_bio(bio, name_out, &header, der_out, der_len_out) != 1)
    err = M3B_ERR_KEY_MALFORMED;
  OPENSSL_free(header);
  BIO_free(bio);
  return err;
}

m3b_err_t m3b__pem_private_decode(const uint8_t *pem, size_t len,
                                  const char *passphrase, const char *type,
                                  EVP_PKEY **pkey_out, char *errstr,
                                  size_t errstr_size) {
  char *name = NULL;
  unsigned char *der = NULL;
  long der_len = 0;
  const unsigned char *p;
  X509_SIG *encrypted = NULL;
  PKCS8_PRIV_KEY_INFO *info = NULL;
  EVP_PKEY *pkey = NULL;
  m3b_err_t err;

  *pkey_out = NULL;
  err = pem_block(pem, len, &name, &der, &der_len);
  if (err) {
    m3b__errstr(errstr, errstr_size, "not PEM: no readable PEM block");
    goto out;
  }
  p = der;
  if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0) {
    encrypted = d2i_X509_SIG(NULL, &p, der_len);
    if (!encrypted || p != der + der_len) {
      m3b__errstr(errstr, errstr_size, "malformed encrypted PKCS#8 key");
      err = M3B_ERR_KEY_MALFORMED;
      goto out;
    }
    if (!passphrase) {
      m3b__errstr(errstr, errstr_size,
                  "private key is encrypted: a passphrase is needed");
      err = M3B_ERR_KEY_PASSPHRASE;
      goto out;
    }
    if (strlen(passphrase) > INT_MAX) {
      err = M3B_ERR_INVALID_ARG;
      goto out;
    }
    info = PKCS8_decrypt(encrypted, passphrase, (int)strlen(passphrase));
    if (!info) {
      m3b__errstr(errstr, errstr_size,
                  "wrong passphrase for the encrypted private key");
      err = M3B_ERR_KEY_PASSPHRASE;
      goto out;
    }
  } else if (strcmp(name, "PRIVATE KEY") == 0) {
    info = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, der_len);
    if (!info || p != der + der_len) {
      m3b__errstr(errstr, errstr_size, "malformed PKCS#8 private key");
      err = M3B_ERR_KEY_MALFORMED;
      goto out;
    }
  } else {
    m3b__errstr(errstr, errstr_size,
                "PEM block is \"%.40s\", expected a PKCS#8 \"PRIVATE KEY\"",
                name);
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  pkey = EVP_PKCS82PKEY(info);
  if (!pkey) {
    m3b__errstr(errstr, errstr_size, "unreadable PKCS#8 private key");
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  if (!EVP_PKEY_is_a(pkey, type)) {
    m3b__errstr(errstr, errstr_size, "private key is %s, expected %s",
                pkey_type_name(pkey), type);
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  *pkey_out = pkey;
  pkey = NULL;
out:
  EVP_PKEY_free(pkey);
  PKCS8_PRIV_KEY_INFO_free(info);
  X509_SIG_free(encrypted);
  if (der)
    OPENSSL_clear_free(der, (size_t)der_len);
  OPENSSL_free(name);
  ERR_clear_error();
  return err;
}

m3b_err_t m3b__pem_private_encode(EVP_PKEY *pkey, const char *passphrase,
                                  struct m3b_buf *out) {
  BIO *bio = NULL;
  char *text = NULL;
  long text_len;
  int ok;
  m3b_err_t err = M3B_OK;

  if (passphrase && strlen(passphrase) > INT_MAX)
    return M3B_ERR_INVALID_ARG;
  /* a secure-memory BIO wipes its buffer when freed */
  bio = BIO_new(BIO_s_secmem());
  if (!bio) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (passphrase)
    ok = PEM_write_bio_PKCS8PrivateKey(bio, pkey, EVP_aes_256_cbc(), passphrase,
                                       (int)strlen(passphrase), NULL, NULL);
  else
    ok = PEM_write_bio_PKCS8PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL);
  if (ok != 1) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  text_len = BIO_get_mem_data(bio, &text);
  if (text_len <= 0) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  err = m3b_buf_append(out, text, (size_t)text_len);
out:
  BIO_free(bio);
  ERR_clear_error();
  return err;
}

m3b_err_t m3b__pem_public_decode(const uint8_t *pem, size_t len,
                                 const char *type, EVP_PKEY **pkey_out,
                                 char *errstr, size_t errstr_size) {
  char *name = NULL;
  unsigned char *der = NULL;
  long der_len = 0;
  const unsigned char *p;
  EVP_PKEY *pkey = NULL;
  m3b_err_t err;

  *pkey_out = NULL;
  err = pem_block(pem, len, &name, &der, &der_len);
  if (err) {
    m3b__errstr(errstr, errstr_size, "not PEM: no readable PEM block");
    goto out;
  }
  if (strcmp(name, "PUBLIC KEY") != 0) {
    m3b__errstr(errstr, errstr_size,
                "PEM block is \"%.40s\", expected \"PUBLIC KEY\"", name);
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  p = der;
  pkey = d2i_PUBKEY(NULL, &p, der_len);
  if (!pkey || p != der + der_len) {
    m3b__errstr(errstr, errstr_size, "malformed public key");
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  if (!EVP_PKEY_is_a(pkey, type)) {
    m3b__errstr(errstr, errstr_size, "public key is %s, expected %s",
                pkey_type_name(pkey), type);
    err = M3B_ERR_KEY_MALFORMED;
    goto out;
  }
  *pkey_out = pkey;
  pkey = NULL;
out:
  EVP_PKEY_free(pkey);
  OPENSSL_free(der);
  OPENSSL_free(name);
  ERR_clear_error();
  return err;
}

m3b_err_t m3b__pem_public_encode(EVP_PKEY *pkey, struct m3b_buf *out) {
  BIO *bio = BIO_new(BIO_s_mem());
  char *text = NULL;
  long text_len;
  m3b_err_t err = M3B_OK;

  if (!bio)
    return M3B_ERR_NOMEM;
  if (PEM_write_bio_PUBKEY(bio, pkey) != 1) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  text_len = BIO_get_mem_data(bio, &text);
  if (text_len <= 0) {
    err = M3B_ERR_CRYPTO;
    goto out;
  }
  err = m3b_buf_append(out, text, (size_t)text_len);
out:
  BIO_free(bio);
  ERR_clear_error();
  return err;
}

m3b_err_t m3b__pem_private_load(const char *path, const char *passphrase,
                                const char *type, EVP_PKEY **pkey_out,
                                char *errstr, size_t errstr_size) {
  struct m3b_buf pem;
  m3b_err_t err;

  *pkey_out = NULL;
  m3b_buf_init(&pem, M3B__KEYFILE_MAX);
  err = m3b__file_read(path, M3B__KEYFILE_MAX, &pem, errstr, errstr_size);
  if (!err)
    err = m3b__pem_private_decode(pem.data, pem.len, passphrase, type, pkey_out,
                                  errstr, errstr_size);
  m3b_buf_cleanup_secret(&pem);
  return err;
}

m3b_err_t m3b__pem_private_save(EVP_PKEY *pkey, const char *path,
                                const char *passphrase, char *errstr,
                                size_t errstr_size) {
  struct m3b_buf pem;
  m3b_err_t err;

  m3b_buf_init(&pem, M3B__KEYFILE_MAX);
  err = m3b__pem_private_encode(pkey, passphrase, &pem);
  if (!err)
    err = m3b__file_write(path, pem.data, pem.len, M3B__FILE_PRIVATE, errstr,
                          errstr_size);
  m3b_buf_cleanup_secret(&pem);
  return err;
}
