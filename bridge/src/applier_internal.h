/*
 * applier_internal.h - what the files of the applier share: the handle,
 * the per-record job and the outcome helpers. Not part of the public API.
 *
 *   applier.c         handle, pipeline order, outcome classification
 *   applier_checks.c  steps that need no apiserver: signature, decoding,
 *                     addressing, authorization
 *   applier_kube.c    steps that do: scope by discovery, stale guard,
 *                     unseal + apply, delete
 *   applier_outcome.c status event and dlq headers from an outcome
 */
#ifndef M3B_APPLIER_INTERNAL_H
#define M3B_APPLIER_INTERNAL_H

#include <jansson.h>

#include <m3b/applier.h>
#include <m3b/schema.h>

#include "errstr.h"

struct m3b_applier {
  char *plane;
  char *listener_id;
  char *field_manager;
  char **namespaces;
  size_t namespace_count;
  char **cluster_kinds;
  size_t cluster_kind_count;
  size_t max_manifest_bytes;
  unsigned flags;                  /* M3B_APPLIER_* */
  m3b_kube_t *kube;                /* borrowed */
  const m3b_keyring_t *ring;       /* borrowed */
  const m3b_seal_key_t *seal_key;  /* borrowed, may be NULL */
  m3b_log_t *log;                  /* borrowed, may be NULL */
  m3b_schema_registry_t *registry; /* owned when the codec is */
  m3b_codec_t *owned_codec;
  const m3b_codec_t *codec;
  m3b_index_t *index;
};

/* One record on its way through the pipeline. */
struct m3b__job {
  const struct m3b_record *in;
  struct m3b_outcome *out;
  int key_ok;                     /* in->key is a valid object key */
  struct m3b_objkey objkey;       /* parsed in->key when key_ok */
  struct m3b_desired_state event; /* decoded value */
  json_t *manifest;               /* parsed manifest (APPLY), or NULL */
  char api_version[M3B_INDEX_API_VERSION_MAX + 1];
  int64_t object_generation; /* metadata.generation the apply returned */
  int redo;  /* the same generation again over a drifted entry */
  int quiet; /* do not log the outcome (a peek that will be redone) */
};

/* Steps of m3b__applier_check beyond decoding, plane, keys, size and
 * hash, which always run. */
#define M3B__CHECK_SIGNATURE 0x1u /* verify m3-sig over key and value */
#define M3B__CHECK_MANIFEST                                                    \
  0x2u /* derive the key from the manifest and                                 \
          parse an APPLY's manifest */
#define M3B__CHECK_ALL (M3B__CHECK_SIGNATURE | M3B__CHECK_MANIFEST)

/* Records a failure in out (phase, err, reason, message) and returns err.
 * The message must never carry secret data or a whole manifest. */
m3b_err_t m3b__outcome_fail(struct m3b_outcome *out, enum m3b_phase phase,
                            m3b_err_t err, const char *fmt, ...)
    M3B__PRINTF(4, 5);

/* Signature, decoding and addressing (plane, keys, size, hash, manifest
 * parse), as steps (M3B__CHECK_*) say. Fills job->event and, for APPLY
 * with M3B__CHECK_MANIFEST, job->manifest. */
m3b_err_t m3b__applier_check(const m3b_applier_t *applier, struct m3b__job *job,
                             unsigned steps);

/* Bound namespace and allowed cluster-scoped kind, from the key alone. */
m3b_err_t m3b__applier_authorize(const m3b_applier_t *applier,
                                 const struct m3b_objkey *key,
                                 struct m3b_outcome *out);

/* Non-zero when (group, kind) is an allowed cluster-scoped kind. */
int m3b__applier_cluster_kind_allowed(const m3b_applier_t *applier,
                                      const char *group, const char *kind);

/* Scope by discovery, stale guard, then apply or delete. */
m3b_err_t m3b__applier_execute(m3b_applier_t *applier, struct m3b__job *job);

/* Is the apiserver settled enough to trust a terminal answer? M3B_OK when
 * /readyz says 200, or cannot tell and the apiserver has been reachable
 * for a minute; else M3B_ERR_KUBE_SERVER or M3B_ERR_KUBE_TRANSPORT
 * (retriable), with result filled. */
m3b_err_t m3b__apiserver_settled(m3b_kube_t *kube,
                                 struct m3b_kube_result *result);

/* Milliseconds of the monotonic and the wall clock. */
int64_t m3b__monotonic_ms(void);
int64_t m3b__wall_ms(void);

#endif
