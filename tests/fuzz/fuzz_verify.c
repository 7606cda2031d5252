/* fuzz_verify.c - libFuzzer target for the listener's signature checks:
 * m3b_verify on arbitrary keys, values and header bytes, the key ring's PEM
 * parser, and the signing-key PEM parser. A record signed here must always
 * verify (a differential check of the success path).
 *
 * Input: byte 0 selects the mode and flags, bytes 1..3 are the lengths of
 * the record key, m3-sig and m3-kid; then those bytes; the rest is the
 * value (or, in the PEM modes, everything after byte 0 is PEM text). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <m3b/sign.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_TRUSTED_KID 0x01 /* replace m3-kid by the trusted key's id */
#define FLAG_NO_SIG 0x02
#define FLAG_NO_KID 0x04
#define FLAG_DUPLICATE 0x08
#define MODE_MASK 0x30
#define MODE_VERIFY 0x00
#define MODE_RING_PEM 0x10
#define MODE_SIGN_KEY_PEM 0x20
#define MODE_SIGN_VERIFY 0x30

/* The trusted signing key, made once per process (fuzzer state). */
static m3b_sign_key_t *fuzz_key;
static m3b_keyring_t *fuzz_ring;

static void fuzz_init(void) {
  if (fuzz_ring)
    return;
  fuzz_key = m3b_sign_key_generate(NULL, 0);
  fuzz_ring = m3b_keyring_new(NULL, 0);
  if (!fuzz_key || !fuzz_ring ||
      m3b_keyring_add_sign_key(fuzz_ring, fuzz_key) != M3B_OK)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct m3b_sig_headers headers;
  size_t key_len, sig_len, kid_len;
  const uint8_t *key, *sig, *kid, *value;
  size_t value_len;
  uint8_t flags;

  fuzz_init();
  if (size < 1)
    return 0;
  flags = data[0];
  if ((flags & MODE_MASK) == MODE_RING_PEM) {
    m3b_keyring_t *ring = m3b_keyring_new(NULL, 0);
    char kid_out[M3B_KID_LEN + 1];
    char errstr[128];
    if (!ring)
      abort();
    (void)m3b_keyring_add_pem(ring, data + 1, size - 1, kid_out, errstr,
                              sizeof(errstr));
    m3b_keyring_destroy(ring);
    return 0;
  }
  if ((flags & MODE_MASK) == MODE_SIGN_KEY_PEM) {
    m3b_sign_key_t *loaded = NULL;
    char errstr[128];
    (void)m3b_sign_key_from_pem(data + 1, size - 1, "fuzz", &loaded, errstr,
                                sizeof(errstr));
    m3b_sign_key_destroy(loaded);
    return 0;
  }
  if (size < 4)
    return 0;
  key_len = data[1];
  sig_len = data[2];
  kid_len = data[3];
  data += 4;
  size -= 4;
  if (key_len > size)
    key_len = size;
  key = data;
  data += key_len;
  size -= key_len;
  if (sig_len > size)
    sig_len = size;
  sig = data;
  data += sig_len;
  size -= sig_len;
  if (kid_len > size)
    kid_len = size;
  kid = data;
  data += kid_len;
  size -= kid_len;
  value = data;
  value_len = size;

  if ((flags & MODE_MASK) == MODE_SIGN_VERIFY) {
    struct m3b_signature signature;
    if (m3b_sign(fuzz_key, key, key_len, value, value_len, &signature) !=
        M3B_OK)
      abort();
    m3b_sig_headers_init(&headers);
    m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, signature.sig, M3B_SIG_LEN);
    m3b_sig_headers_feed(&headers, M3B_KID_HEADER, signature.kid, M3B_KID_LEN);
    if (m3b_verify(fuzz_ring, key, key_len, value, value_len, &headers) !=
        M3B_OK)
      abort();
    return 0;
  }

  if (flags & FLAG_TRUSTED_KID) {
    kid = (const uint8_t *)m3b_sign_key_id(fuzz_key);
    kid_len = M3B_KID_LEN;
  }
  m3b_sig_headers_init(&headers);
  if (!(flags & FLAG_NO_SIG))
    m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, sig, sig_len);
  if (!(flags & FLAG_NO_KID))
    m3b_sig_headers_feed(&headers, M3B_KID_HEADER, kid, kid_len);
  if (flags & FLAG_DUPLICATE)
    m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, sig, sig_len);
  /* no input may verify: nothing here holds the private key */
  if (m3b_verify(fuzz_ring, key, key_len, value, value_len, &headers) == M3B_OK)
    abort();
  return 0;
}
