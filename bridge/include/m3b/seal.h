/*
 * seal.h - sealed secrets: a value encrypted to one listener's X25519 public
 * key and bound to one object key (DESIGN.md section 5, "Secret delivery";
 * the byte format is docs/PROTOCOL.md ("Signing" and "Sealed secrets")).
 *
 * Sealing (control plane) needs only the listener's raw 32-byte public key:
 * a fresh ephemeral X25519 key pair, ECDH with the listener's key,
 * HKDF-SHA-256 to an AES-256 key, AES-256-GCM with a random 12-byte nonce
 * and the object key as additional authenticated data. The result is
 *
 *   "m3s" 0x01 | ephemeral public key (32) | nonce (12) | ciphertext | tag (16)
 *
 * and its text form, for JSON manifests, is M3B_SEAL_TEXT_PREFIX followed by
 * the standard base64 (with padding) of those bytes.
 *
 * Unsealing (listener) needs the listener's private key (m3b_seal_key_t) and
 * the same object key. Plaintext is written into a caller-owned m3b_buf that
 * the caller must free with m3b_buf_cleanup_secret(), which wipes it.
 *
 * Errors: SEAL_MALFORMED (not a sealed value, or cut short), SEAL_VERSION (a
 * sealed value of another format version), SEAL_AUTH (wrong listener key,
 * wrong object key, or any byte changed), KEY_MALFORMED (bad key material),
 * LIMIT (plaintext above M3B_SEAL_MAX_PLAINTEXT).
 *
 * Threads: a key may be used by several threads at once.
 */
#ifndef M3B_SEAL_H
#define M3B_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/buf.h>
#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define M3B_SEAL_PUBLIC_LEN 32 /* bytes of a raw X25519 public key */
#define M3B_SEAL_VERSION 1     /* format version written and read */
#define M3B_SEAL_NONCE_LEN 12
#define M3B_SEAL_TAG_LEN 16
/* Bytes a sealed value adds to its plaintext: 4 + 32 + 12 + 16. */
#define M3B_SEAL_OVERHEAD 64
/* Largest plaintext sealed or unsealed: Kubernetes' own limit on a Secret. */
#define M3B_SEAL_MAX_PLAINTEXT ((size_t)1024 * 1024)
/* Text form of version 1; any other "m3bridge:sealed:" prefix is another
 * version (M3B_ERR_SEAL_VERSION). */
#define M3B_SEAL_TEXT_PREFIX "m3bridge:sealed:v1:"

/* A listener's X25519 private key. */
typedef struct m3b_seal_key m3b_seal_key_t;

/* ---- listener key (private) ---- */

/* Generates a new X25519 key. NULL on failure (errstr filled). */
m3b_seal_key_t *m3b_seal_key_generate(char *errstr, size_t errstr_size);

/* Reads an X25519 private key from PKCS#8 PEM (pem borrowed): "PRIVATE
 * KEY", or "ENCRYPTED PRIVATE KEY" with passphrase (NULL when none).
 * M3B_ERR_KEY_MALFORMED for garbage or another key type,
 * M3B_ERR_KEY_PASSPHRASE for a missing or wrong passphrase. */
m3b_err_t m3b_seal_key_from_pem(const uint8_t *pem, size_t len,
                                const char *passphrase,
                                m3b_seal_key_t **key_out, char *errstr,
                                size_t errstr_size);

/* Like m3b_seal_key_from_pem, from a file (M3B_ERR_IO when unreadable). */
m3b_err_t m3b_seal_key_load(const char *path, const char *passphrase,
                            m3b_seal_key_t **key_out, char *errstr,
                            size_t errstr_size);

/* Appends the key as PKCS#8 PEM to pem_out (which must be empty), encrypted
 * when passphrase is not NULL; free pem_out with m3b_buf_cleanup_secret. */
m3b_err_t m3b_seal_key_to_pem(const m3b_seal_key_t *key, const char *passphrase,
                              struct m3b_buf *pem_out);

/* Writes the key as PKCS#8 PEM to a new file created with mode 0600; never
 * replaces an existing file (M3B_ERR_IO). */
m3b_err_t m3b_seal_key_save(const m3b_seal_key_t *key, const char *path,
                            const char *passphrase, char *errstr,
                            size_t errstr_size);

/* Copies the key's raw public key (what a Registration carries). */
void m3b_seal_key_public(const m3b_seal_key_t *key,
                         uint8_t pub_out[M3B_SEAL_PUBLIC_LEN]);

/* Destroys the key, wiping it; NULL is a no-op. */
void m3b_seal_key_destroy(m3b_seal_key_t *key);

/* ---- listener public key ---- */

/* Reads an X25519 "PUBLIC KEY" PEM into raw bytes; M3B_ERR_KEY_MALFORMED
 * for anything else. */
m3b_err_t m3b_seal_public_from_pem(const uint8_t *pem, size_t len,
                                   uint8_t pub_out[M3B_SEAL_PUBLIC_LEN],
                                   char *errstr, size_t errstr_size);

/* Like m3b_seal_public_from_pem, from a file. */
m3b_err_t m3b_seal_public_load(const char *path,
                               uint8_t pub_out[M3B_SEAL_PUBLIC_LEN],
                               char *errstr, size_t errstr_size);

/* Appends a raw public key as "PUBLIC KEY" PEM to pem_out. */
m3b_err_t m3b_seal_public_to_pem(const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                                 struct m3b_buf *pem_out);

/* Writes a raw public key as PEM to path (created or replaced, mode 0644). */
m3b_err_t m3b_seal_public_save(const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                               const char *path, char *errstr,
                               size_t errstr_size);

/* ---- sealing and unsealing ---- */

/* Seals plain[0..plain_len) to the listener key pub for the object key
 * aad[0..aad_len) (plain and aad may be NULL when their length is 0) and
 * appends the sealed bytes (plain_len + M3B_SEAL_OVERHEAD) to sealed_out.
 * M3B_ERR_KEY_MALFORMED when pub is not a usable X25519 key (a low-order
 * point); M3B_ERR_LIMIT past M3B_SEAL_MAX_PLAINTEXT. */
m3b_err_t m3b_seal(const uint8_t pub[M3B_SEAL_PUBLIC_LEN], const void *plain,
                   size_t plain_len, const void *aad, size_t aad_len,
                   struct m3b_buf *sealed_out);

/* Opens sealed[0..sealed_len) for the object key aad and writes the
 * plaintext to plain_out, which must be empty (len 0); on any error
 * plain_out stays empty and nothing of the plaintext remains in memory.
 * Free plain_out with m3b_buf_cleanup_secret. */
m3b_err_t m3b_unseal(const m3b_seal_key_t *key, const uint8_t *sealed,
                     size_t sealed_len, const void *aad, size_t aad_len,
                     struct m3b_buf *plain_out);

/* Like m3b_seal, appending the text form (prefix + base64) to text_out. */
m3b_err_t m3b_seal_text(const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                        const void *plain, size_t plain_len, const void *aad,
                        size_t aad_len, struct m3b_buf *text_out);

/* Like m3b_unseal, from the text form (not NUL-terminated necessarily). */
m3b_err_t m3b_unseal_text(const m3b_seal_key_t *key, const char *text,
                          size_t text_len, const void *aad, size_t aad_len,
                          struct m3b_buf *plain_out);

/* Non-zero when text starts with "m3bridge:sealed:" (of any version). */
int m3b_seal_is_text(const char *text, size_t text_len);

#ifdef __cplusplus
}
#endif

#endif
