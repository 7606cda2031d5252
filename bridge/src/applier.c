/*
 * applier.c - the applier handle and the order of its pipeline
 * (<m3b/applier.h>, docs/listener-pipeline.md).
 *
 * m3b_applier_process runs the checks (applier_checks.c), then the
 * apiserver steps (applier_kube.c), and finally classifies the outcome:
 * retriable failures ask for a retry and nothing else; other failures ask
 * for a dlq record and a status; successes and stale skips for a status.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <m3b/seal_manifest.h>

#include "applier_internal.h"

int64_t m3b__monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t m3b__wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

m3b_err_t m3b__outcome_fail(struct m3b_outcome *out, enum m3b_phase phase,
                            m3b_err_t err, const char *fmt, ...) {
  va_list ap;
  out->phase = phase;
  out->err = err;
  out->reason = err ? m3b_err_name(err) : NULL;
  va_start(ap, fmt);
  /* clang-analyzer 14's false positive, as in log.c: va_start is above */
  // NOLINTNEXTLINE(clang-analyzer-valist.*)
  (void)vsnprintf(out->message, sizeof(out->message), fmt, ap);
  va_end(ap);
  return err;
}

static void free_list(char **list, size_t count) {
  size_t i;
  if (!list)
    return;
  for (i = 0; i < count; i++)
    free(list[i]);
  free(list);
}

/* Copies count strings; NULL when memory is exhausted or one is NULL. */
static char **copy_list(const char *const *list, size_t count) {
  char **copy = calloc(count ? count : 1, sizeof(*copy));
  size_t i;
  if (!copy)
    return NULL;
  for (i = 0; i < count; i++) {
    copy[i] = list[i] ? strdup(list[i]) : NULL;
    if (!copy[i]) {
      free_list(copy, i);
      return NULL;
    }
  }
  return copy;
}

/* An allowed kind is "Kind" or "group/Kind" with a CamelCase kind. */
static int valid_cluster_kind(const char *text) {
  const char *kind = strrchr(text, '/');
  kind = kind ? kind + 1 : text;
  if (*kind < 'A' || *kind > 'Z' || strlen(kind) > M3B_OBJKEY_KIND_MAX)
    return 0;
  return (size_t)(kind - text) <= M3B_OBJKEY_GROUP_MAX + 1;
}

void m3b_applier_destroy(m3b_applier_t *applier) {
  if (!applier)
    return;
  free(applier->plane);
  free(applier->listener_id);
  free(applier->field_manager);
  free_list(applier->namespaces, applier->namespace_count);
  free_list(applier->cluster_kinds, applier->cluster_kind_count);
  m3b_index_destroy(applier->index);
  m3b_codec_destroy(applier->owned_codec);
  m3b_schema_registry_destroy(applier->registry);
  free(applier);
}

m3b_applier_t *m3b_applier_new(const struct m3b_applier_config *config,
                               m3b_kube_t *kube, const m3b_keyring_t *ring,
                               const m3b_seal_key_t *seal_key, m3b_log_t *log,
                               char *errstr, size_t errstr_size) {
  m3b_applier_t *applier = NULL;
  size_t i;

  if (!config || !kube || !ring || !config->plane || !*config->plane ||
      !config->listener_id || !*config->listener_id) {
    m3b__errstr(errstr, errstr_size,
                "applier: plane, listener id, kube client and key ring are "
                "required");
    return NULL;
  }
  if (config->namespace_count > M3B_APPLIER_MAX_SCOPE ||
      config->cluster_kind_count > M3B_APPLIER_MAX_SCOPE ||
      (config->namespace_count && !config->namespaces) ||
      (config->cluster_kind_count && !config->cluster_kinds)) {
    m3b__errstr(errstr, errstr_size,
                "applier: namespaces and cluster kinds: at most %d each",
                M3B_APPLIER_MAX_SCOPE);
    return NULL;
  }
  for (i = 0; i < config->cluster_kind_count; i++) {
    if (!config->cluster_kinds[i] ||
        !valid_cluster_kind(config->cluster_kinds[i])) {
      m3b__errstr(errstr, errstr_size,
                  "applier: allowed cluster kind \"%.100s\" is not Kind or "
                  "group/Kind",
                  config->cluster_kinds[i] ? config->cluster_kinds[i] : "");
      return NULL;
    }
  }
  applier = calloc(1, sizeof(*applier));
  if (!applier)
    goto nomem;
  applier->kube = kube;
  applier->flags = config->flags;
  applier->ring = ring;
  applier->seal_key = seal_key;
  applier->log = log;
  applier->max_manifest_bytes = config->max_manifest_bytes
                                    ? config->max_manifest_bytes
                                    : M3B_APPLIER_MAX_MANIFEST_DEFAULT;
  applier->plane = strdup(config->plane);
  applier->listener_id = strdup(config->listener_id);
  applier->field_manager =
      strdup(config->field_manager ? config->field_manager : M3B_FIELD_MANAGER);
  applier->namespaces = copy_list(config->namespaces, config->namespace_count);
  if (applier->namespaces)
    applier->namespace_count = config->namespace_count;
  applier->cluster_kinds =
      copy_list(config->cluster_kinds, config->cluster_kind_count);
  if (applier->cluster_kinds)
    applier->cluster_kind_count = config->cluster_kind_count;
  applier->index = m3b_index_new(errstr, errstr_size);
  if (!applier->plane || !applier->listener_id || !applier->field_manager ||
      !applier->namespaces || !applier->cluster_kinds || !applier->index)
    goto nomem;
  if (config->codec) {
    applier->codec = config->codec;
  } else {
    applier->registry = m3b_schema_registry_new_builtin(errstr, errstr_size);
    if (!applier->registry)
      goto fail;
    applier->owned_codec =
        m3b_codec_new(applier->registry, NULL, errstr, errstr_size);
    if (!applier->owned_codec)
      goto fail;
    applier->codec = applier->owned_codec;
  }
  return applier;
nomem:
  m3b__errstr(errstr, errstr_size, "applier: out of memory");
fail:
  m3b_applier_destroy(applier);
  return NULL;
}

m3b_index_t *m3b_applier_index(m3b_applier_t *applier) {
  return applier ? applier->index : NULL;
}

m3b_err_t m3b_applier_load_index_kinds(m3b_applier_t *applier, unsigned flags,
                                       size_t *loaded_out, char *errstr,
                                       size_t errstr_size) {
  struct m3b_index_scope scope;
  struct m3b_kube_result result;
  m3b_err_t err;

  if (!applier)
    return M3B_ERR_INVALID_ARG;
  scope.plane = applier->plane;
  scope.namespaces = (const char *const *)applier->namespaces;
  scope.namespace_count = applier->namespace_count;
  scope.cluster_kinds = (const char *const *)applier->cluster_kinds;
  scope.cluster_kind_count = applier->cluster_kind_count;
  memset(&result, 0, sizeof(result));
  /* a starting apiserver answers 403/404 for what it has not loaded yet,
   * and the load skips kinds that answer so: wait until it is ready */
  err = m3b__apiserver_settled(applier->kube, &result);
  if (err) {
    m3b__errstr(errstr, errstr_size, "loading the index: %s: %s",
                m3b_err_name(err), result.errstr);
    return err;
  }
  err = m3b_index_load_kinds(applier->index, applier->kube, &scope, flags,
                             applier->log, loaded_out, &result);
  if (err)
    m3b__errstr(errstr, errstr_size, "loading the index: %s: %s",
                m3b_err_name(err), result.errstr);
  return err;
}

m3b_err_t m3b_applier_load_index(m3b_applier_t *applier, size_t *loaded_out,
                                 char *errstr, size_t errstr_size) {
  if (!applier)
    return M3B_ERR_INVALID_ARG;
  m3b_index_load_reset(applier->index);
  return m3b_applier_load_index_kinds(
      applier, M3B_INDEX_LOAD_DEFAULTS | M3B_INDEX_LOAD_NOTED, loaded_out,
      errstr, errstr_size);
}

static void outcome_init(struct m3b_outcome *out) {
  memset(out, 0, sizeof(*out));
  out->phase = M3B_PHASE_REJECTED;
  out->generation = -1;
  out->retry_after_ms = -1;
}

/* Sets retriable / dlq / status from phase and err (see the header). */
static void classify(struct m3b_outcome *out) {
  if (out->forget)
    return;
  if (out->err && m3b_err_is_retriable(out->err)) {
    out->retriable = 1;
    return;
  }
  if (out->phase == M3B_PHASE_REJECTED || out->phase == M3B_PHASE_FAILED)
    out->dlq = 1;
  /* a status is keyed by object key: only for records that have one */
  out->status = out->key[0] != '\0';
}

static void log_outcome(const m3b_applier_t *applier,
                        const struct m3b_record *in,
                        const struct m3b_outcome *out) {
  m3b_log_level_t level = M3B_LOG_DEBUG;
  if (out->retriable || out->dlq)
    level = M3B_LOG_WARN;
  M3B_LOG(applier->log, level, "applier",
          "%s partition %d offset %lld key %.300s generation %lld: %s%s%s%s",
          in->topic ? in->topic : "-", (int)in->partition,
          (long long)in->offset, out->key[0] ? out->key : "-",
          (long long)out->generation,
          out->forget ? "tombstone" : m3b_phase_name(out->phase),
          out->reason ? " " : "", out->reason ? out->reason : "",
          out->retriable ? " (will retry)" : "");
}

/* Starts job for record in: the outcome's defaults and the parsed key. */
static void job_start(struct m3b__job *job, const struct m3b_record *in,
                      struct m3b_outcome *out) {
  memset(job, 0, sizeof(*job));
  job->in = in;
  job->out = out;
  m3b_desired_state_init(&job->event);
  if (in->key && in->key_len <= M3B_OBJKEY_MAX &&
      m3b_objkey_parse(in->key, in->key_len, &job->objkey, NULL, 0) == M3B_OK) {
    job->key_ok = 1;
    memcpy(out->key, in->key, in->key_len);
    out->key[in->key_len] = '\0';
  }
}

/* Ends job: classifies and logs the outcome, wipes and frees. */
static void job_end(const m3b_applier_t *applier, struct m3b__job *job) {
  job->out->finished_at_ms = m3b__wall_ms();
  classify(job->out);
  if (!job->quiet)
    log_outcome(applier, job->in, job->out);
  if (job->manifest) {
    m3b_seal_manifest_wipe(job->manifest); /* may hold unsealed data */
    json_decref(job->manifest);
  }
  m3b_desired_state_cleanup(&job->event);
}

/* SHA-256 over the key's length (8 bytes, little endian), the key and the
 * value: what m3b_checked.record_sha256 binds a verified signature to. */
static m3b_err_t record_digest(const struct m3b_record *in,
                               uint8_t digest[M3B_SHA256_SIZE]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  uint8_t len[8];
  unsigned int size = 0;
  size_t i;
  int ok;
  if (!ctx)
    return M3B_ERR_NOMEM;
  for (i = 0; i < sizeof(len); i++)
    len[i] = (uint8_t)((uint64_t)in->key_len >> (8 * i));
  ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
       EVP_DigestUpdate(ctx, len, sizeof(len)) &&
       (!in->key_len || EVP_DigestUpdate(ctx, in->key, in->key_len)) &&
       (!in->value_len || EVP_DigestUpdate(ctx, in->value, in->value_len)) &&
       EVP_DigestFinal_ex(ctx, digest, &size) && size == M3B_SHA256_SIZE;
  EVP_MD_CTX_free(ctx);
  return ok ? M3B_OK : M3B_ERR_CRYPTO;
}

/* m3b_applier_check with the checks steps asks for; quiet: no log. */
static m3b_err_t check_record(m3b_applier_t *applier,
                              const struct m3b_record *in,
                              struct m3b_outcome *out,
                              struct m3b_checked *checked, unsigned steps,
                              int quiet) {
  struct m3b__job job;
  m3b_err_t err;

  if (!out)
    return M3B_ERR_INVALID_ARG;
  outcome_init(out);
  if (!applier || !in || !checked)
    return m3b__outcome_fail(out, M3B_PHASE_FAILED, M3B_ERR_INVALID_ARG,
                             "no applier, record or result");
  job_start(&job, in, out);
  job.quiet = quiet;
  if (!in->value) {
    out->forget = 1;
    out->noop = 1;
    out->phase = M3B_PHASE_DELETED;
    snprintf(out->message, sizeof(out->message), "tombstone: nothing to do");
    err = M3B_OK;
    goto out;
  }
  err = m3b__applier_check(applier, &job, steps);
  if (!err)
    err = m3b__applier_authorize(applier, &job.objkey, out);
  if (err)
    goto out;
  /* passed: what process would do next needs the apiserver */
  out->phase =
      job.event.op == M3B_OP_DELETE ? M3B_PHASE_DELETED : M3B_PHASE_APPLIED;
  out->noop = 1;
  snprintf(out->message, sizeof(out->message),
           (steps & M3B__CHECK_SIGNATURE) ? "checked" : "peeked");
  memset(checked, 0, sizeof(*checked));
  checked->generation = job.event.generation;
  checked->op = job.event.op;
  memcpy(checked->manifest_sha256, job.event.manifest_sha256,
         sizeof(checked->manifest_sha256));
  checked->objkey = job.objkey;
  if (steps == M3B__CHECK_ALL) {
    err = record_digest(in, checked->record_sha256);
    if (err) {
      (void)m3b__outcome_fail(out, M3B_PHASE_FAILED, err,
                              "cannot hash the record");
      goto out;
    }
    checked->verified = 1;
  }
out:
  job_end(applier, &job);
  return err;
}

m3b_err_t m3b_applier_check(m3b_applier_t *applier, const struct m3b_record *in,
                            struct m3b_outcome *out,
                            struct m3b_checked *checked) {
  return check_record(applier, in, out, checked, M3B__CHECK_ALL, 0);
}

m3b_err_t m3b_applier_peek(m3b_applier_t *applier, const struct m3b_record *in,
                           struct m3b_outcome *out,
                           struct m3b_checked *checked) {
  m3b_err_t err = check_record(applier, in, out, checked, 0, 1);
  if (err && err != M3B_ERR_INVALID_ARG)
    /* refused: say exactly what the full check says, signature first */
    err = check_record(applier, in, out, checked, M3B__CHECK_ALL, 0);
  return err;
}

/* Non-zero when verified vouches for in's signature: it came from
 * m3b_applier_check of a record with the same key and value. */
static int signature_vouched(const struct m3b_record *in,
                             const struct m3b_checked *verified) {
  uint8_t digest[M3B_SHA256_SIZE];
  return verified && verified->verified &&
         record_digest(in, digest) == M3B_OK &&
         CRYPTO_memcmp(digest, verified->record_sha256, sizeof(digest)) == 0;
}

static m3b_err_t process_record(m3b_applier_t *applier,
                                const struct m3b_record *in,
                                const struct m3b_checked *verified,
                                struct m3b_outcome *out) {
  struct m3b__job job;
  m3b_err_t err;

  if (!out)
    return M3B_ERR_INVALID_ARG;
  outcome_init(out);
  if (!applier || !in)
    return m3b__outcome_fail(out, M3B_PHASE_FAILED, M3B_ERR_INVALID_ARG,
                             "no applier or record");
  job_start(&job, in, out);

  if (!in->value) {
    /* a tombstone only lets compaction forget the key; a deleted entry
     * of the index may go with it (the object is gone anyway) */
    struct m3b_index_entry entry;
    out->forget = 1;
    out->noop = 1;
    out->phase = M3B_PHASE_DELETED;
    if (job.key_ok &&
        m3b_index_get(applier->index, out->key, &entry) == M3B_OK &&
        entry.deleted)
      (void)m3b_index_remove(applier->index, out->key);
    snprintf(out->message, sizeof(out->message), "tombstone: nothing to do");
    err = M3B_OK;
    goto out;
  }
  err = m3b__applier_check(applier, &job,
                           signature_vouched(in, verified)
                               ? M3B__CHECK_ALL & ~M3B__CHECK_SIGNATURE
                               : M3B__CHECK_ALL);
  if (err)
    goto out;
  err = m3b__applier_authorize(applier, &job.objkey, out);
  if (err)
    goto out;
  err = m3b__applier_execute(applier, &job);
out:
  job_end(applier, &job);
  return err;
}

m3b_err_t m3b_applier_process(m3b_applier_t *applier,
                              const struct m3b_record *in,
                              struct m3b_outcome *out) {
  return process_record(applier, in, NULL, out);
}

m3b_err_t m3b_applier_process_checked(m3b_applier_t *applier,
                                      const struct m3b_record *in,
                                      const struct m3b_checked *checked,
                                      struct m3b_outcome *out) {
  return process_record(applier, in, checked, out);
}
