/*
 * objkey.h - object keys: the identity of one Kubernetes object on the
 * wire, used as Kafka record key (so every event of one object lands in
 * one partition, in order) and inside DesiredState and Status.
 *
 *   <group>/<version>/<kind>/<namespace>/<name>
 *
 * The core group and the namespace of cluster-scoped objects are empty:
 * "/v1/Namespace//shop", "apps/v1/Deployment/shop/web". Parts follow the
 * rules Kubernetes applies (see docs/PROTOCOL.md, "Object keys"); each
 * violation is refused with M3B_ERR_BAD_KEY and a message naming it.
 */
#ifndef M3B_OBJKEY_H
#define M3B_OBJKEY_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define M3B_OBJKEY_GROUP_MAX 253    /* DNS-1123 subdomain */
#define M3B_OBJKEY_VERSION_MAX 63   /* v1, v1beta1, v2alpha3 */
#define M3B_OBJKEY_KIND_MAX 63      /* CamelCase identifier */
#define M3B_OBJKEY_NAMESPACE_MAX 63 /* DNS-1123 label */
#define M3B_OBJKEY_NAME_MAX 253     /* DNS-1123 subdomain (RBAC: segment) */
/* Longest key text, without the terminating NUL. */
#define M3B_OBJKEY_MAX                                                         \
  (M3B_OBJKEY_GROUP_MAX + M3B_OBJKEY_VERSION_MAX + M3B_OBJKEY_KIND_MAX +       \
   M3B_OBJKEY_NAMESPACE_MAX + M3B_OBJKEY_NAME_MAX + 4)

/* A parsed key; every part is NUL-terminated. Caller-owned, no heap. */
struct m3b_objkey {
  char group[M3B_OBJKEY_GROUP_MAX + 1];
  char version[M3B_OBJKEY_VERSION_MAX + 1];
  char kind[M3B_OBJKEY_KIND_MAX + 1];
  char ns[M3B_OBJKEY_NAMESPACE_MAX + 1]; /* "" for cluster-scoped */
  char name[M3B_OBJKEY_NAME_MAX + 1];
};

/* Parses and validates key[0..len) (borrowed; need not be NUL-terminated)
 * into *key_out. M3B_ERR_BAD_KEY with a message naming the violation. */
m3b_err_t m3b_objkey_parse(const char *key, size_t len,
                           struct m3b_objkey *key_out, char *errstr,
                           size_t errstr_size);

/* Validates the parts of a key. M3B_ERR_BAD_KEY as above. */
m3b_err_t m3b_objkey_validate(const struct m3b_objkey *key, char *errstr,
                              size_t errstr_size);

/* Writes the canonical text of a valid key into out[0..out_size)
 * (NUL-terminated; M3B_OBJKEY_MAX + 1 always suffices). M3B_ERR_BAD_KEY
 * when the key is invalid, M3B_ERR_LIMIT when out is too small. */
m3b_err_t m3b_objkey_format(const struct m3b_objkey *key, char *out,
                            size_t out_size, char *errstr, size_t errstr_size);

/* Builds the key of a Kubernetes manifest (JSON text json[0..len),
 * borrowed) from apiVersion, kind, metadata.name and metadata.namespace
 * (absent = cluster-scoped). M3B_ERR_BAD_MANIFEST when the manifest is not
 * a JSON object, lacks one of them, or one of them breaks the key rules;
 * the message says which. */
m3b_err_t m3b_objkey_from_manifest(const uint8_t *json, size_t len,
                                   struct m3b_objkey *key_out, char *errstr,
                                   size_t errstr_size);

/* SHA-256 of data[0..len), for DesiredState.manifest_sha256.
 * M3B_ERR_CRYPTO only if OpenSSL fails. */
m3b_err_t m3b_manifest_sha256(const void *data, size_t len,
                              uint8_t digest_out[32]);

#ifdef __cplusplus
}
#endif

#endif
