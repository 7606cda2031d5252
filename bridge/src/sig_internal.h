/*
 * sig_internal.h - what sign.c shares with keyring.c inside libm3bridge:
 * the key id derivation and access to a signing key's EVP_PKEY.
 */
#ifndef M3B_SIG_INTERNAL_H
#define M3B_SIG_INTERNAL_H

#include <openssl/evp.h>

#include <m3b/sign.h>

/* Writes the key id of an Ed25519 key (private or public) to kid_out:
 * lowercase hex of the first 8 bytes of SHA-256(raw 32-byte public key).
 * raw_out (may be NULL) receives the raw public key. */
m3b_err_t m3b__sig_key_id(EVP_PKEY *pkey, char kid_out[M3B_KID_LEN + 1],
                          uint8_t raw_out[M3B_SIG_PUBLIC_LEN]);

/* The key's EVP_PKEY; returned-borrowed. */
EVP_PKEY *m3b__sign_key_pkey(const m3b_sign_key_t *key);

#endif
