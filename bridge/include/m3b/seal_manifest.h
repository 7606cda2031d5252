/*
 * seal_manifest.h - sealing and unsealing the values of a Kubernetes Secret
 * manifest (a jansson json_t), so secret values never cross Kafka in
 * plaintext (DESIGN.md section 5, "Secret delivery").
 *
 * Control plane: m3b_seal_manifest() replaces every `data` value (base64 of
 * the secret bytes, as Kubernetes writes it) with the text form of those
 * bytes sealed to the listener's public key, and moves every `stringData`
 * value into `data` the same way (a stringData key wins over the same data
 * key, as in Kubernetes). The additional authenticated data is the object
 * key, so a sealed value opens only for the object it was sealed for.
 *
 * Listener: m3b_unseal_manifest() turns every `data` value back into
 * Kubernetes' base64 of the plaintext. From then on the manifest holds
 * secrets: call m3b_seal_manifest_wipe() before json_decref() on it, and
 * wipe every serialisation made from it.
 *
 * Both walks are all-or-nothing: on error the manifest is unchanged, every
 * intermediate plaintext has been wiped, and errstr names the data key at
 * fault (never its value).
 */
#ifndef M3B_SEAL_MANIFEST_H
#define M3B_SEAL_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <m3b/err.h>
#include <m3b/seal.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Seals the Secret manifest (borrowed, modified in place) to the listener
 * public key pub for object_key. Values that are already sealed text are
 * kept as they are. M3B_ERR_BAD_MANIFEST when the manifest is not a Secret
 * object, data or stringData is not an object of strings, or a data value
 * is not canonical base64; M3B_ERR_LIMIT for a value above
 * M3B_SEAL_MAX_PLAINTEXT; M3B_ERR_KEY_MALFORMED for an unusable pub. */
m3b_err_t m3b_seal_manifest(json_t *manifest,
                            const uint8_t pub[M3B_SEAL_PUBLIC_LEN],
                            const char *object_key, char *errstr,
                            size_t errstr_size);

/* Unseals the Secret manifest (borrowed, modified in place) with the
 * listener key for object_key. Every data value must be sealed text:
 * M3B_ERR_SEAL_MALFORMED for a plaintext value or any stringData (both
 * would mean plaintext crossed Kafka), plus the errors of m3b_unseal_text
 * (SEAL_VERSION, SEAL_AUTH, ...). M3B_ERR_BAD_MANIFEST as for sealing. */
m3b_err_t m3b_unseal_manifest(json_t *manifest, const m3b_seal_key_t *key,
                              const char *object_key, char *errstr,
                              size_t errstr_size);

/* Overwrites every string value of the manifest's data and stringData with
 * zero bytes, in place (the strings keep their length). Call it before the
 * last json_decref of an unsealed manifest; NULL is a no-op. The strings
 * must not be shared with another json_t the caller still needs. */
void m3b_seal_manifest_wipe(json_t *manifest);

#ifdef __cplusplus
}
#endif

#endif
