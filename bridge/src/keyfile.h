/*
 * keyfile.h - key files and PEM for the signing and sealing modules,
 * internal to libm3bridge.
 *
 * One place that reads and writes key files (private files are created
 * 0600 with O_EXCL, never world-readable even briefly, and never replace an
 * existing file), turns PEM text into an EVP_PKEY of one expected type and
 * back, and translates OpenSSL failures into m3b_err_t. Every buffer that
 * held private key material is wiped before it is freed.
 */
#ifndef M3B_KEYFILE_H
#define M3B_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include <m3b/buf.h>
#include <m3b/err.h>

#include "errstr.h"

/* Largest key file read (a PEM Ed25519 or X25519 key is < 300 bytes). */
#define M3B__KEYFILE_MAX ((size_t)64 * 1024)

/* Reads the whole file into out (which must be empty), at most max bytes:
 * M3B_ERR_IO when it cannot be read, M3B_ERR_LIMIT when it is larger. The
 * buffer is sized once, so call m3b_buf_cleanup_secret on it for secrets. */
m3b_err_t m3b__file_read(const char *path, size_t max, struct m3b_buf *out,
                         char *errstr, size_t errstr_size);

#define M3B__FILE_PRIVATE 0x1 /* mode 0600, refuse to replace a file */

/* Writes data to a new file: with M3B__FILE_PRIVATE it is created with
 * O_EXCL and mode 0600 (M3B_ERR_IO if path exists), else it is created or
 * truncated with mode 0644. A partly written file is removed. */
m3b_err_t m3b__file_write(const char *path, const void *data, size_t n,
                          int flags, char *errstr, size_t errstr_size);

/* Generates a key of an OpenSSL key type ("ED25519", "X25519"). */
EVP_PKEY *m3b__pkey_generate(const char *type);

/* Decodes the first PEM block of pem as a PKCS#8 private key ("PRIVATE
 * KEY", or "ENCRYPTED PRIVATE KEY" with passphrase) of OpenSSL key type
 * type. M3B_ERR_KEY_MALFORMED for anything that is not such a key (garbage,
 * another PEM type, another key type), M3B_ERR_KEY_PASSPHRASE when the key
 * is encrypted and passphrase is NULL or wrong. *pkey_out is owned by the
 * caller. */
m3b_err_t m3b__pem_private_decode(const uint8_t *pem, size_t len,
                                  const char *passphrase, const char *type,
                                  EVP_PKEY **pkey_out, char *errstr,
                                  size_t errstr_size);

/* Appends pkey as PKCS#8 PEM to out (which must be empty): "PRIVATE KEY",
 * or "ENCRYPTED PRIVATE KEY" (PBES2, PBKDF2-HMAC-SHA256, AES-256-CBC) when
 * passphrase is not NULL. out holds a secret: m3b_buf_cleanup_secret it. */
m3b_err_t m3b__pem_private_encode(EVP_PKEY *pkey, const char *passphrase,
                                  struct m3b_buf *out);

/* Decodes the first PEM block of pem as a "PUBLIC KEY" (SubjectPublicKeyInfo)
 * of OpenSSL key type type; M3B_ERR_KEY_MALFORMED otherwise. */
m3b_err_t m3b__pem_public_decode(const uint8_t *pem, size_t len,
                                 const char *type, EVP_PKEY **pkey_out,
                                 char *errstr, size_t errstr_size);

/* Appends pkey's public half as "PUBLIC KEY" PEM to out. */
m3b_err_t m3b__pem_public_encode(EVP_PKEY *pkey, struct m3b_buf *out);

/* Reads a private key file (at most M3B__KEYFILE_MAX bytes) and decodes it
 * as m3b__pem_private_decode does; the file's bytes are wiped after. */
m3b_err_t m3b__pem_private_load(const char *path, const char *passphrase,
                                const char *type, EVP_PKEY **pkey_out,
                                char *errstr, size_t errstr_size);

/* Writes pkey as m3b__pem_private_encode PEM to a new private file
 * (M3B__FILE_PRIVATE: 0600, never replacing one); the PEM is wiped after. */
m3b_err_t m3b__pem_private_save(EVP_PKEY *pkey, const char *path,
                                const char *passphrase, char *errstr,
                                size_t errstr_size);

#endif
