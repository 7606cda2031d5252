/*
 * applier_checks.c - the steps of the applier that need no apiserver:
 * signature, decoding, addressing (plane, record key = event key = the
 * manifest's key, size, sha-256) and authorization (bound namespace,
 * allowed cluster-scoped kind). Each refusal is REJECTED with its own
 * m3b_err_t; messages name keys and fields, never manifest content.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "applier_internal.h"

/* Verifies the m3-sig / m3-kid headers over key and value. */
static m3b_err_t check_signature(const m3b_applier_t *applier,
                                 struct m3b__job *job) {
  const struct m3b_record *in = job->in;
  struct m3b_sig_headers sig;
  size_t i;
  m3b_err_t err;

  m3b_sig_headers_init(&sig);
  for (i = 0; i < in->header_count; i++)
    if (in->headers[i].name)
      m3b_sig_headers_feed(&sig, in->headers[i].name, in->headers[i].value,
                           in->headers[i].len);
  err = m3b_verify(applier->ring, in->key, in->key_len, in->value,
                   in->value_len, &sig);
  if (err)
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, err,
                             "signature check failed: %s", m3b_err_str(err));
  return M3B_OK;
}

/* Plane, record key and event key. */
static m3b_err_t check_address(const m3b_applier_t *applier,
                               struct m3b__job *job) {
  const struct m3b_desired_state *ev = &job->event;
  const struct m3b_record *in = job->in;
  char errstr[256] = "";

  if (strcmp(ev->plane, applier->plane) != 0)
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED,
                             M3B_ERR_PLANE_MISMATCH,
                             "event is for plane \"%.63s\", this listener "
                             "serves \"%s\"",
                             ev->plane, applier->plane);
  if (!job->key_ok) {
    if (in->key && in->key_len <= M3B_OBJKEY_MAX)
      (void)m3b_objkey_parse(in->key, in->key_len, &job->objkey, errstr,
                             sizeof(errstr));
    else
      m3b__errstr(errstr, sizeof(errstr), "absent or longer than %d bytes",
                  M3B_OBJKEY_MAX);
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, M3B_ERR_BAD_KEY,
                             "record key is not an object key: %s", errstr);
  }
  if (strlen(ev->key) != in->key_len ||
      memcmp(ev->key, in->key, in->key_len) != 0)
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, M3B_ERR_KEY_MISMATCH,
                             "event key \"%.300s\" differs from the record "
                             "key",
                             ev->key);
  return M3B_OK;
}

/* Size and sha-256; with M3B__CHECK_MANIFEST in steps also the key
 * derived from the manifest, and parses the manifest of an APPLY into
 * job->manifest. */
static m3b_err_t check_manifest(const m3b_applier_t *applier,
                                struct m3b__job *job, unsigned steps) {
  const struct m3b_desired_state *ev = &job->event;
  struct m3b_outcome *out = job->out;
  uint8_t digest[M3B_SHA256_SIZE];
  struct m3b_objkey derived;
  char derived_text[M3B_OBJKEY_MAX + 1];
  char errstr[256] = "";
  json_error_t jerr;
  m3b_err_t err;

  if (ev->manifest_len > applier->max_manifest_bytes)
    return m3b__outcome_fail(out, M3B_PHASE_REJECTED, M3B_ERR_LIMIT,
                             "manifest of %zu bytes exceeds the limit of "
                             "%zu",
                             ev->manifest_len, applier->max_manifest_bytes);
  err = m3b_manifest_sha256(ev->manifest, ev->manifest_len, digest);
  if (err)
    return m3b__outcome_fail(out, M3B_PHASE_REJECTED, err,
                             "cannot hash the manifest");
  if (CRYPTO_memcmp(digest, ev->manifest_sha256, sizeof(digest)) != 0)
    return m3b__outcome_fail(out, M3B_PHASE_REJECTED, M3B_ERR_HASH_MISMATCH,
                             "sha-256 of the %zu-byte manifest differs from "
                             "manifest_sha256",
                             ev->manifest_len);
  if (ev->manifest_len == 0) {
    if (ev->op == M3B_OP_APPLY)
      return m3b__outcome_fail(out, M3B_PHASE_REJECTED, M3B_ERR_BAD_MANIFEST,
                               "APPLY without a manifest");
    return M3B_OK; /* a DELETE needs only its key */
  }
  if (!(steps & M3B__CHECK_MANIFEST))
    return M3B_OK;
  err = m3b_objkey_from_manifest(ev->manifest, ev->manifest_len, &derived,
                                 errstr, sizeof(errstr));
  if (!err)
    err = m3b_objkey_format(&derived, derived_text, sizeof(derived_text),
                            errstr, sizeof(errstr));
  if (err)
    return m3b__outcome_fail(out, M3B_PHASE_REJECTED, err,
                             "manifest is unusable: %s", errstr);
  if (strcmp(derived_text, ev->key) != 0)
    return m3b__outcome_fail(out, M3B_PHASE_REJECTED, M3B_ERR_KEY_MISMATCH,
                             "manifest is the object \"%.300s\", not the "
                             "event key",
                             derived_text);
  if (ev->op != M3B_OP_APPLY)
    return M3B_OK;
  job->manifest = json_loadb((const char *)ev->manifest, ev->manifest_len,
                             JSON_REJECT_DUPLICATES, &jerr);
  if (!json_is_object(job->manifest))
    return m3b__outcome_fail(out, M3B_PHASE_REJECTED, M3B_ERR_BAD_MANIFEST,
                             "manifest is not a JSON object (line %d)",
                             jerr.line);
  return M3B_OK;
}

m3b_err_t m3b__applier_check(const m3b_applier_t *applier, struct m3b__job *job,
                             unsigned steps) {
  const struct m3b_record *in = job->in;
  char errstr[256] = "";
  m3b_err_t err;

  if (steps & M3B__CHECK_SIGNATURE) {
    err = check_signature(applier, job);
    if (err)
      return err;
  }
  err = m3b_desired_state_decode(applier->codec, in->value, in->value_len,
                                 &job->event, errstr, sizeof(errstr));
  if (err)
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, err,
                             "value is not a DesiredState: %s", errstr);
  job->out->generation = job->event.generation;
  err = check_address(applier, job);
  if (err)
    return err;
  return check_manifest(applier, job, steps);
}

int m3b__applier_cluster_kind_allowed(const m3b_applier_t *applier,
                                      const char *group, const char *kind) {
  size_t group_len = strlen(group), i;
  for (i = 0; i < applier->cluster_kind_count; i++) {
    const char *allowed = applier->cluster_kinds[i];
    const char *slash = strrchr(allowed, '/');
    size_t allowed_group_len = slash ? (size_t)(slash - allowed) : 0;
    const char *allowed_kind = slash ? slash + 1 : allowed;
    if (allowed_group_len == group_len &&
        strncmp(allowed, group, group_len) == 0 &&
        strcmp(allowed_kind, kind) == 0)
      return 1;
  }
  return 0;
}

static int namespace_bound(const m3b_applier_t *applier, const char *ns) {
  size_t i;
  for (i = 0; i < applier->namespace_count; i++)
    if (strcmp(applier->namespaces[i], ns) == 0)
      return 1;
  return 0;
}

m3b_err_t m3b__applier_authorize(const m3b_applier_t *applier,
                                 const struct m3b_objkey *key,
                                 struct m3b_outcome *out) {
  if (key->ns[0]) {
    if (!namespace_bound(applier, key->ns))
      return m3b__outcome_fail(out, M3B_PHASE_REJECTED,
                               M3B_ERR_NAMESPACE_NOT_BOUND,
                               "namespace \"%s\" is not bound to this "
                               "listener",
                               key->ns);
    return M3B_OK;
  }
  if (!m3b__applier_cluster_kind_allowed(applier, key->group, key->kind))
    return m3b__outcome_fail(out, M3B_PHASE_REJECTED, M3B_ERR_KIND_NOT_ALLOWED,
                             "cluster-scoped kind %s%s%s is not allowed",
                             key->group, key->group[0] ? "/" : "", key->kind);
  /* a Namespace object is the namespace itself: only bound ones */
  if (!key->group[0] && strcmp(key->kind, "Namespace") == 0 &&
      !namespace_bound(applier, key->name))
    return m3b__outcome_fail(
        out, M3B_PHASE_REJECTED, M3B_ERR_NAMESPACE_NOT_BOUND,
        "Namespace \"%s\" is not bound to this listener", key->name);
  return M3B_OK;
}
