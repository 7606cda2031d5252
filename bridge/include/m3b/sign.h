/*
 * sign.h - Ed25519 signatures over Kafka records (DESIGN.md section 5,
 * "Authenticity"; the wire format is docs/PROTOCOL.md ("Signing" and "Sealed
 * secrets")).
 *
 * The control plane holds one signing key (m3b_sign_key_t) and signs every
 * DesiredState record: the signature covers the record key and the record
 * value, framed by m3b_sign_input(), so a signature cannot be moved to
 * another key or value. It travels in two Kafka headers: "m3-sig" (the raw
 * 64-byte signature) and "m3-kid" (the 16-character key id of the signer).
 *
 * The listener holds only public keys, in a key ring (m3b_keyring_t) indexed
 * by key id; several keys may be trusted at once for rotation. m3b_verify()
 * answers with a distinct error for each way a record can fail:
 * SIG_MISSING, SIG_MALFORMED, SIG_UNKNOWN_KEY or SIG_INVALID.
 *
 * Key id: the first 16 lowercase hex characters (8 bytes) of the SHA-256 of
 * the raw 32-byte Ed25519 public key.
 *
 * Threads: a signing key and a key ring may be used by several threads at
 * once for m3b_sign / m3b_verify; adding or removing keys must not overlap
 * with any other use of the ring.
 */
#ifndef M3B_SIGN_H
#define M3B_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/buf.h>
#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define M3B_SIG_HEADER "m3-sig" /* Kafka header: raw signature bytes */
#define M3B_KID_HEADER "m3-kid" /* Kafka header: key id, ASCII */
#define M3B_SIG_LEN 64          /* bytes of an Ed25519 signature */
#define M3B_KID_LEN 16          /* characters of a key id */
#define M3B_SIG_PUBLIC_LEN 32   /* bytes of a raw Ed25519 public key */
/* Largest record key plus value that is signed or verified (M3B_ERR_LIMIT
 * above it); far above Kafka's default 1 MiB message size. */
#define M3B_SIG_MAX_INPUT ((size_t)64 * 1024 * 1024)
/* Most keys a ring holds at once (M3B_ERR_LIMIT above it). */
#define M3B_KEYRING_MAX 64

typedef struct m3b_sign_key m3b_sign_key_t;
typedef struct m3b_keyring m3b_keyring_t;

/* A signature as it goes into the two headers. */
struct m3b_signature {
  uint8_t sig[M3B_SIG_LEN];  /* value of header m3-sig */
  char kid[M3B_KID_LEN + 1]; /* value of header m3-kid, plus a NUL that is
                                not part of the header value */
};

/* The signature headers of one received record, as borrowed pointers into
 * the record (filled by m3b_sig_headers_feed). A NULL pointer means the
 * header is absent. */
struct m3b_sig_headers {
  const uint8_t *sig;
  size_t sig_len;
  const uint8_t *kid;
  size_t kid_len;
  int duplicates; /* non-zero when either header occurred more than once,
                     with or without a value */
  int sig_seen, kid_seen; /* occurrences so far, null values included */
};

/* ---- signing key (control plane) ---- */

/* Generates a new Ed25519 signing key. NULL on failure (errstr filled). */
m3b_sign_key_t *m3b_sign_key_generate(char *errstr, size_t errstr_size);

/* Reads a signing key from PKCS#8 PEM text (pem borrowed, need not be NUL
 * terminated): "PRIVATE KEY", or "ENCRYPTED PRIVATE KEY" with passphrase
 * (NULL when none). M3B_ERR_KEY_MALFORMED for garbage, another PEM type or
 * another key type (RSA, X25519, ...); M3B_ERR_KEY_PASSPHRASE when the key
 * is encrypted and the passphrase is missing or wrong. *key_out is owned by
 * the caller. errstr may be NULL. */
m3b_err_t m3b_sign_key_from_pem(const uint8_t *pem, size_t len,
                                const char *passphrase,
                                m3b_sign_key_t **key_out, char *errstr,
                                size_t errstr_size);

/* Like m3b_sign_key_from_pem, from a file (M3B_ERR_IO when unreadable). */
m3b_err_t m3b_sign_key_load(const char *path, const char *passphrase,
                            m3b_sign_key_t **key_out, char *errstr,
                            size_t errstr_size);

/* Appends the key as PKCS#8 PEM to pem_out (which must be empty), encrypted
 * with passphrase when it is not NULL. pem_out then holds a secret: free it
 * with m3b_buf_cleanup_secret. */
m3b_err_t m3b_sign_key_to_pem(const m3b_sign_key_t *key, const char *passphrase,
                              struct m3b_buf *pem_out);

/* Writes the key as PKCS#8 PEM to a new file created with mode 0600; never
 * replaces an existing file (M3B_ERR_IO). */
m3b_err_t m3b_sign_key_save(const m3b_sign_key_t *key, const char *path,
                            const char *passphrase, char *errstr,
                            size_t errstr_size);

/* Appends the public half as "PUBLIC KEY" PEM (SubjectPublicKeyInfo). */
m3b_err_t m3b_sign_key_public_pem(const m3b_sign_key_t *key,
                                  struct m3b_buf *pem_out);

/* Writes the public half as PEM to path (created or replaced, mode 0644). */
m3b_err_t m3b_sign_key_save_public(const m3b_sign_key_t *key, const char *path,
                                   char *errstr, size_t errstr_size);

/* The key id (16 lowercase hex characters); returned-borrowed, valid as long
 * as the key. */
const char *m3b_sign_key_id(const m3b_sign_key_t *key);

/* Destroys the key, wiping it; NULL is a no-op. */
void m3b_sign_key_destroy(m3b_sign_key_t *key);

/* ---- signing ---- */

/* Appends the signing input of a record to out:
 *   "m3bridge-sig-v1" 0x00 | u32be key_len | key | u64be value_len | value
 * (value may be NULL when value_len is 0; a null Kafka value and an empty one
 * have the same input). M3B_ERR_LIMIT past M3B_SIG_MAX_INPUT. */
m3b_err_t m3b_sign_input(const void *rec_key, size_t key_len, const void *value,
                         size_t value_len, struct m3b_buf *out);

/* Signs a record's key and value; *sig_out receives both header values. */
m3b_err_t m3b_sign(const m3b_sign_key_t *key, const void *rec_key,
                   size_t key_len, const void *value, size_t value_len,
                   struct m3b_signature *sig_out);

/* ---- verifying (listener) ---- */

/* Empties headers: both absent, no duplicates. */
void m3b_sig_headers_init(struct m3b_sig_headers *headers);

/* Offers one record header (name NUL-terminated, value borrowed, NULL for a
 * header without value); m3-sig and m3-kid are kept, others ignored. */
void m3b_sig_headers_feed(struct m3b_sig_headers *headers, const char *name,
                          const void *value, size_t len);

/* Creates an empty key ring. NULL on failure (errstr filled). */
m3b_keyring_t *m3b_keyring_new(char *errstr, size_t errstr_size);

/* Destroys the ring and its keys; NULL is a no-op. */
void m3b_keyring_destroy(m3b_keyring_t *ring);

/* Trusts an Ed25519 public key given as "PUBLIC KEY" PEM (borrowed). Adding
 * a key already in the ring is a no-op. kid_out (may be NULL) receives its
 * key id. M3B_ERR_KEY_MALFORMED for anything else (a private key, another
 * key type, garbage); M3B_ERR_LIMIT past M3B_KEYRING_MAX keys. */
m3b_err_t m3b_keyring_add_pem(m3b_keyring_t *ring, const uint8_t *pem,
                              size_t len, char kid_out[M3B_KID_LEN + 1],
                              char *errstr, size_t errstr_size);

/* Like m3b_keyring_add_pem, from a file. */
m3b_err_t m3b_keyring_add_file(m3b_keyring_t *ring, const char *path,
                               char kid_out[M3B_KID_LEN + 1], char *errstr,
                               size_t errstr_size);

/* Trusts every file of dir whose name ends in ".pem" (names starting with '.'
 * are skipped, so the
 * "..data" links of a mounted Kubernetes Secret are not read twice). Fails
 * on the first file that is not a valid public key, naming it in errstr (the
 * keys added before it stay); M3B_ERR_NOT_FOUND when there is no such
 * file. *added_out (may be NULL) counts the files read. */
m3b_err_t m3b_keyring_load_dir(m3b_keyring_t *ring, const char *dir,
                               size_t *added_out, char *errstr,
                               size_t errstr_size);

/* Trusts the public half of a signing key (tests and single-process use). */
m3b_err_t m3b_keyring_add_sign_key(m3b_keyring_t *ring,
                                   const m3b_sign_key_t *key);

/* Stops trusting the key with this id; M3B_ERR_NOT_FOUND if absent. */
m3b_err_t m3b_keyring_remove(m3b_keyring_t *ring, const char *kid);

/* Number of trusted keys. */
size_t m3b_keyring_count(const m3b_keyring_t *ring);

/* Non-zero when a key with this id is trusted. */
int m3b_keyring_has(const m3b_keyring_t *ring, const char *kid);

/* Verifies a record against the ring: M3B_OK, or
 *   M3B_ERR_SIG_MISSING     m3-sig or m3-kid absent (headers may be NULL),
 *   M3B_ERR_SIG_MALFORMED   a header repeated, m3-sig not 64 bytes, or m3-kid
 *                           not 16 lowercase hex characters,
 *   M3B_ERR_SIG_UNKNOWN_KEY m3-kid names no key in the ring,
 *   M3B_ERR_SIG_INVALID     the signature does not verify for this key and
 *                           value under that key,
 *   M3B_ERR_LIMIT           key plus value past M3B_SIG_MAX_INPUT.
 * Checks happen in that order. */
m3b_err_t m3b_verify(const m3b_keyring_t *ring, const void *rec_key,
                     size_t key_len, const void *value, size_t value_len,
                     const struct m3b_sig_headers *headers);

#ifdef __cplusplus
}
#endif

#endif
