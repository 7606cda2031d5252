/* fuzz_unseal.c - libFuzzer target for the listener's unsealing: the byte
 * form, the text form, the Secret manifest walk (input parsed as JSON) and
 * the X25519 key PEM parser; and a seal-then-unseal round trip that must
 * always give the plaintext back.
 *
 * Input: byte 0 selects the mode, byte 1 is the length of the object key
 * (AAD) that follows; the rest is the sealed value, text or manifest. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <m3b/buf.h>
#include <m3b/seal.h>
#include <m3b/seal_manifest.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { MODE_BYTES, MODE_TEXT, MODE_MANIFEST, MODE_KEY_PEM, MODE_ROUND_TRIP };

/* The listener key, made once per process (fuzzer state). */
static m3b_seal_key_t *fuzz_key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char aad[256];
  size_t aad_len;
  uint8_t mode;
  struct m3b_buf out;

  if (!fuzz_key) {
    fuzz_key = m3b_seal_key_generate(NULL, 0);
    if (!fuzz_key)
      abort();
  }
  if (size < 2)
    return 0;
  mode = data[0] % 5;
  aad_len = data[1];
  data += 2;
  size -= 2;
  if (aad_len > size)
    aad_len = size;
  memcpy(aad, data, aad_len);
  aad[aad_len] = 0;
  data += aad_len;
  size -= aad_len;

  m3b_buf_init(&out, 2 * M3B_SEAL_MAX_PLAINTEXT);
  switch (mode) {
  case MODE_BYTES:
    (void)m3b_unseal(fuzz_key, data, size, aad, aad_len, &out);
    break;
  case MODE_TEXT:
    (void)m3b_unseal_text(fuzz_key, (const char *)data, size, aad, aad_len,
                          &out);
    break;
  case MODE_MANIFEST: {
    json_t *manifest = json_loadb((const char *)data, size, 0, NULL);
    char errstr[128];
    if (manifest) {
      /* strlen: an object key is a C string in this API */
      (void)m3b_unseal_manifest(manifest, fuzz_key, aad, errstr,
                                sizeof(errstr));
      m3b_seal_manifest_wipe(manifest);
      json_decref(manifest);
    }
    break;
  }
  case MODE_KEY_PEM: {
    m3b_seal_key_t *loaded = NULL;
    (void)m3b_seal_key_from_pem(data, size, "fuzz", &loaded, NULL, 0);
    m3b_seal_key_destroy(loaded);
    break;
  }
  default: {
    uint8_t pub[M3B_SEAL_PUBLIC_LEN];
    struct m3b_buf text;
    m3b_seal_key_public(fuzz_key, pub);
    m3b_buf_init(&text, 4 * M3B_SEAL_MAX_PLAINTEXT);
    if (m3b_seal_text(pub, data, size, aad, aad_len, &text) != M3B_OK ||
        m3b_unseal_text(fuzz_key, (const char *)text.data, text.len, aad,
                        aad_len, &out) != M3B_OK ||
        out.len != size || (size && memcmp(out.data, data, size) != 0))
      abort();
    m3b_buf_cleanup(&text);
    break;
  }
  }
  m3b_buf_cleanup_secret(&out);
  return 0;
}
