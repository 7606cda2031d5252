/*
 * applier_kube.c - the steps of the applier that talk to the apiserver:
 * the kind's real scope (discovery), the stale guard (index, or the live
 * object's annotations on an index miss), unsealing plus server-side
 * apply, and the guarded delete.
 *
 * Every object read from the apiserver may be a Secret: it is wiped
 * (m3b_seal_manifest_wipe) before it is released. Apiserver failures are
 * FAILED with the client's error; retriable ones are classified by the
 * caller (applier.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include <m3b/seal_manifest.h>

#include "applier_internal.h"

/* Attempts of get + delete when the object changes in between (409). */
#define DELETE_ATTEMPTS 3

/* Is err an answer of the apiserver that ends the record (not retried)? */
static int terminal_answer(m3b_err_t err) {
  return err == M3B_ERR_KUBE_FORBIDDEN || err == M3B_ERR_KUBE_NOT_FOUND ||
         err == M3B_ERR_KUBE_CONFLICT || err == M3B_ERR_KUBE_INVALID ||
         err == M3B_ERR_KUBE_HTTP || err == M3B_ERR_KUBE_GONE;
}

/* How long after the apiserver was last unreachable a terminal answer is
 * not trusted when /readyz cannot tell (refused to us as well): a
 * starting apiserver is ready well within it, and a genuine refusal is
 * then retried for this long at most. */
#define SETTLE_MS 60000

m3b_err_t m3b__apiserver_settled(m3b_kube_t *kube,
                                 struct m3b_kube_result *result) {
  int64_t since;
  m3b_err_t state = m3b_kube_ready(kube, result);
  if (state == M3B_OK)
    return M3B_OK;
  if (state == M3B_ERR_KUBE_SERVER || state == M3B_ERR_KUBE_TRANSPORT)
    return state;
  /* /readyz itself refused (403 while RBAC loads, or never allowed) */
  since = m3b_kube_ms_since_unreachable(kube);
  if (since >= 0 && since < SETTLE_MS)
    return M3B_ERR_KUBE_SERVER;
  return M3B_OK;
}

/* An apiserver that is starting answers before it is ready: its RBAC
 * caches are empty, so everything is 403, and the kinds of CRDs are not
 * served yet (404). A terminal answer is trusted only from an apiserver
 * that is settled (m3b__apiserver_settled); otherwise it becomes a
 * retriable M3B_ERR_KUBE_SERVER (or KUBE_TRANSPORT) in out. */
static m3b_err_t trust(m3b_applier_t *applier, struct m3b_outcome *out,
                       m3b_err_t err, const char *what) {
  struct m3b_kube_result ready;
  m3b_err_t state;
  if (!terminal_answer(err))
    return err;
  memset(&ready, 0, sizeof(ready));
  state = m3b__apiserver_settled(applier->kube, &ready);
  if (!state)
    return err;
  return m3b__outcome_fail(
      out, M3B_PHASE_FAILED, state,
      "%s: answered %s, but the apiserver is not ready "
      "(/readyz: HTTP %ld, unreachable %lld ms ago): "
      "not trusted, retrying",
      what, m3b_err_name(err), ready.http_status,
      (long long)m3b_kube_ms_since_unreachable(applier->kube));
}

static m3b_err_t kube_fail(m3b_applier_t *applier, struct m3b_outcome *out,
                           m3b_err_t err, const struct m3b_kube_result *result,
                           const char *what) {
  m3b_err_t trusted = trust(applier, out, err, what);
  if (trusted != err)
    return trusted;
  /* the server's own hint of when to come back (429, 503); only these
   * errors come from an HTTP answer, so only then is result filled */
  if ((err == M3B_ERR_KUBE_THROTTLED || err == M3B_ERR_KUBE_SERVER) &&
      result->retry_after_s >= 0)
    out->retry_after_ms = (int64_t)result->retry_after_s * 1000;
  return m3b__outcome_fail(out, M3B_PHASE_FAILED, err, "%s: %s (HTTP %ld)%s%s",
                           what, m3b_err_str(err), result->http_status,
                           result->errstr[0] ? ": " : "", result->errstr);
}

static void release(json_t *object) {
  if (object) {
    m3b_seal_manifest_wipe(object);
    json_decref(object);
  }
}

static void copy_text(char *out, size_t size, const char *text) {
  size_t n = text ? strnlen(text, size - 1) : 0;
  if (n)
    memcpy(out, text, n);
  out[n] = '\0';
}

static void job_ref(const struct m3b__job *job, struct m3b_kube_ref *ref) {
  ref->api_version = job->api_version;
  ref->kind = job->objkey.kind;
  ref->ns = job->objkey.ns[0] ? job->objkey.ns : NULL;
  ref->name = job->objkey.name;
}

/* The key cannot tell a namespaced kind from a cluster-scoped one;
 * discovery can. A namespace on a cluster-scoped kind would otherwise slip
 * past the namespace check. *absent_out: the kind is not served. */
static m3b_err_t check_scope(m3b_applier_t *applier, struct m3b__job *job,
                             int *absent_out) {
  const struct m3b_objkey *key = &job->objkey;
  struct m3b_kube_result result;
  char resource[128];
  int namespaced = 0;
  m3b_err_t err;

  *absent_out = 0;
  err = m3b_kube_resolve(applier->kube, job->api_version, key->kind, resource,
                         sizeof(resource), &namespaced, &result);
  if (err == M3B_ERR_KUBE_NOT_FOUND && job->event.op == M3B_OP_DELETE) {
    /* no such kind, so no such object: unless the apiserver is starting
     * and does not serve its CRDs yet */
    m3b_err_t trusted = trust(applier, job->out, err, "resolving the kind");
    if (trusted != err)
      return trusted;
    *absent_out = 1;
    return M3B_OK;
  }
  if (err)
    return kube_fail(applier, job->out, err, &result, "resolving the kind");
  if (namespaced && !key->ns[0])
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, M3B_ERR_BAD_KEY,
                             "%s is namespaced: the manifest needs "
                             "metadata.namespace",
                             key->kind);
  if (!namespaced && key->ns[0]) {
    if (!m3b__applier_cluster_kind_allowed(applier, key->group, key->kind))
      return m3b__outcome_fail(
          job->out, M3B_PHASE_REJECTED, M3B_ERR_KIND_NOT_ALLOWED,
          "%s is cluster-scoped and not allowed", key->kind);
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, M3B_ERR_BAD_KEY,
                             "%s is cluster-scoped: the key and manifest "
                             "must have no namespace",
                             key->kind);
  }
  return M3B_OK;
}

/* Finds what was applied to the key: the index, else the live object's
 * annotations (then cached in the index). *known_out 0: nothing of ours. */
static m3b_err_t lookup(m3b_applier_t *applier, struct m3b__job *job,
                        struct m3b_index_entry *entry, int *known_out) {
  struct m3b_kube_result result;
  struct m3b_kube_ref ref;
  char key[M3B_OBJKEY_MAX + 1];
  json_t *live = NULL;
  const char *managed;
  m3b_err_t err, found;

  *known_out = 0;
  if (m3b_index_get(applier->index, job->out->key, entry) == M3B_OK) {
    *known_out = 1;
    return M3B_OK;
  }
  if ((applier->flags & M3B_APPLIER_TRUST_INDEX) &&
      m3b_index_listed(applier->index, job->api_version, job->objkey.kind)) {
    if (m3b_index_foreign(applier->index, job->out->key))
      return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED,
                               M3B_ERR_NOT_MANAGED,
                               "the live object is managed by m3bridge for "
                               "another plane");
    return M3B_OK; /* listed and not there: nothing of ours */
  }
  job_ref(job, &ref);
  err = m3b_kube_get(applier->kube, &ref, &live, &result);
  if (err == M3B_ERR_KUBE_NOT_FOUND)
    return M3B_OK;
  if (err)
    return kube_fail(applier, job->out, err, &result,
                     "reading the live object");
  found = m3b_index_entry_from_object(live, applier->plane, entry, key,
                                      sizeof(key));
  managed = json_string_value(json_object_get(
      json_object_get(json_object_get(live, "metadata"), "labels"),
      M3B_LABEL_MANAGED_BY));
  if (found == M3B_OK && strcmp(key, job->out->key) == 0) {
    *known_out = 1;
    (void)m3b_index_put(applier->index, job->out->key, entry);
  } else if (found == M3B_ERR_NOT_MANAGED && managed &&
             strcmp(managed, M3B_MANAGED_BY_VALUE) == 0) {
    /* another plane's object: never take it over */
    err = m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, M3B_ERR_NOT_MANAGED,
                            "the live object is managed by m3bridge for "
                            "another plane");
  }
  release(live);
  return err;
}

/* STALE_SKIPPED, the no-op of a redelivered event, or go on (*go_on). */
static m3b_err_t stale_guard(struct m3b__job *job,
                             const struct m3b_index_entry *entry, int *go_on) {
  const struct m3b_desired_state *ev = &job->event;
  struct m3b_outcome *out = job->out;
  int is_delete = ev->op == M3B_OP_DELETE;

  *go_on = 0;
  if (ev->generation > entry->generation) {
    *go_on = 1;
    return M3B_OK;
  }
  if (ev->generation == entry->generation && !entry->deleted == !is_delete &&
      memcmp(ev->manifest_sha256, entry->manifest_sha256,
             sizeof(entry->manifest_sha256)) == 0) {
    if (entry->drifted) {
      /* the same event again, but the WATCH saw the object deleted or
       * changed by someone else since: write it again */
      *go_on = 1;
      return M3B_OK;
    }
    /* the same event again (redelivery): nothing to write */
    out->phase = is_delete ? M3B_PHASE_DELETED : M3B_PHASE_APPLIED;
    out->noop = 1;
    copy_text(out->uid, sizeof(out->uid), entry->uid);
    copy_text(out->resource_version, sizeof(out->resource_version),
              entry->resource_version);
    snprintf(out->message, sizeof(out->message),
             "generation %" PRId64 " is already %s", ev->generation,
             is_delete ? "deleted" : "applied");
    return M3B_OK;
  }
  return m3b__outcome_fail(
      out, M3B_PHASE_STALE_SKIPPED, M3B_ERR_STALE,
      "generation %" PRId64 " is not above the applied generation %" PRId64
      "%s",
      ev->generation, entry->generation,
      ev->generation == entry->generation ? " (with another manifest)" : "");
}

static m3b_err_t set_string(json_t *obj, const char *name, const char *value) {
  json_t *str = json_string(value);
  if (!str || json_object_set_new(obj, name, str) != 0)
    return M3B_ERR_NOMEM;
  return M3B_OK;
}

/* metadata.<field>, created when absent; NULL when it is not an object. */
static json_t *metadata_map(json_t *md, const char *field) {
  json_t *map = json_object_get(md, field);
  if (!map) {
    map = json_object();
    if (!map || json_object_set_new(md, field, map) != 0)
      return NULL;
  }
  return json_is_object(map) ? map : NULL;
}

/* Adds the managed-by label and the m3bridge.io annotations. */
static m3b_err_t mark_managed(const m3b_applier_t *applier,
                              struct m3b__job *job) {
  const struct m3b_desired_state *ev = &job->event;
  json_t *md = json_object_get(job->manifest, "metadata");
  json_t *labels = metadata_map(md, "labels");
  json_t *ann = metadata_map(md, "annotations");
  char generation[24], sha[2 * M3B_SHA256_SIZE + 1];
  size_t i;
  m3b_err_t err;

  if (!labels || !ann)
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, M3B_ERR_BAD_MANIFEST,
                             "metadata.labels and metadata.annotations must "
                             "be objects");
  snprintf(generation, sizeof(generation), "%" PRId64, ev->generation);
  for (i = 0; i < M3B_SHA256_SIZE; i++)
    snprintf(sha + 2 * i, 3, "%02x", ev->manifest_sha256[i]);
  err = set_string(labels, M3B_LABEL_MANAGED_BY, M3B_MANAGED_BY_VALUE);
  if (!err)
    err = set_string(ann, M3B_ANN_PLANE, applier->plane);
  if (!err)
    err = set_string(ann, M3B_ANN_KEY, ev->key);
  if (!err)
    err = set_string(ann, M3B_ANN_GENERATION, generation);
  if (!err)
    err = set_string(ann, M3B_ANN_SHA256, sha);
  if (!err && ev->release_id)
    err = set_string(ann, M3B_ANN_RELEASE, ev->release_id);
  if (err)
    return m3b__outcome_fail(job->out, M3B_PHASE_FAILED, err,
                             "cannot add the m3bridge metadata");
  return M3B_OK;
}

static int is_secret(const struct m3b_objkey *key) {
  return !key->group[0] && strcmp(key->kind, "Secret") == 0;
}

/* Opens sealed Secret data in place; plaintext then lives only in
 * job->manifest, which applier.c wipes on every path. */
static m3b_err_t unseal(const m3b_applier_t *applier, struct m3b__job *job) {
  char errstr[256] = "";
  json_t *data = json_object_get(job->manifest, "data");
  m3b_err_t err;

  if (!is_secret(&job->objkey))
    return M3B_OK;
  if (!applier->seal_key) {
    if (json_object_size(data) == 0 &&
        !json_object_get(job->manifest, "stringData"))
      return M3B_OK;
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, M3B_ERR_CONFIG,
                             "Secret data is sealed but this listener has no "
                             "sealing key");
  }
  err = m3b_unseal_manifest(job->manifest, applier->seal_key, job->out->key,
                            errstr, sizeof(errstr));
  if (err)
    return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED, err,
                             "cannot unseal the Secret: %s", errstr);
  return M3B_OK;
}

static void remember(m3b_applier_t *applier, struct m3b__job *job,
                     int deleted) {
  struct m3b_index_entry entry;
  m3b_err_t err;

  memset(&entry, 0, sizeof(entry));
  entry.generation = job->event.generation;
  memcpy(entry.manifest_sha256, job->event.manifest_sha256,
         sizeof(entry.manifest_sha256));
  copy_text(entry.uid, sizeof(entry.uid), job->out->uid);
  copy_text(entry.resource_version, sizeof(entry.resource_version),
            job->out->resource_version);
  entry.object_generation = deleted ? 0 : job->object_generation;
  entry.deleted = deleted; /* drifted 0: this write is the cluster's state */
  err = m3b_index_put(applier->index, job->out->key, &entry);
  if (!err && !deleted)
    err =
        m3b_index_note_kind(applier->index, job->api_version, job->objkey.kind);
  if (err)
    M3B_LOG(applier->log, M3B_LOG_WARN, "applier",
            "index not updated for %.300s: %s", job->out->key,
            m3b_err_name(err));
}

static m3b_err_t do_apply(m3b_applier_t *applier, struct m3b__job *job) {
  struct m3b_kube_result result;
  struct m3b_kube_meta meta;
  json_t *stored = NULL;
  int64_t start;
  m3b_err_t err;

  err = unseal(applier, job);
  if (err)
    return err;
  err = mark_managed(applier, job);
  if (err)
    return err;
  start = m3b__monotonic_ms();
  err = m3b_kube_apply(applier->kube, job->manifest, applier->field_manager,
                       &stored, &meta, &result);
  job->out->apply_latency_ms = m3b__monotonic_ms() - start;
  release(stored); /* a Secret comes back with its data */
  if (err)
    return kube_fail(applier, job->out, err, &result, "server-side apply");
  job->out->phase = M3B_PHASE_APPLIED;
  copy_text(job->out->uid, sizeof(job->out->uid), meta.uid);
  copy_text(job->out->resource_version, sizeof(job->out->resource_version),
            meta.resource_version);
  job->object_generation = meta.generation;
  snprintf(job->out->message, sizeof(job->out->message),
           "applied generation %" PRId64 "%s", job->event.generation,
           job->redo ? " again: the object had been deleted or changed by "
                       "someone else"
                     : "");
  remember(applier, job, 0);
  return M3B_OK;
}

/* Non-zero when the live object carries our label and plane annotation. */
static int managed_here(const m3b_applier_t *applier, const json_t *live) {
  const json_t *md = json_object_get(live, "metadata");
  const char *label = json_string_value(
      json_object_get(json_object_get(md, "labels"), M3B_LABEL_MANAGED_BY));
  const char *plane = json_string_value(
      json_object_get(json_object_get(md, "annotations"), M3B_ANN_PLANE));
  return label && strcmp(label, M3B_MANAGED_BY_VALUE) == 0 && plane &&
         strcmp(plane, applier->plane) == 0;
}

static m3b_err_t deleted(m3b_applier_t *applier, struct m3b__job *job,
                         const char *how) {
  job->out->phase = M3B_PHASE_DELETED;
  job->out->err = M3B_OK;
  job->out->reason = NULL;
  snprintf(job->out->message, sizeof(job->out->message), "%s", how);
  remember(applier, job, 1);
  return M3B_OK;
}

static m3b_err_t do_delete(m3b_applier_t *applier, struct m3b__job *job) {
  struct m3b_kube_result result;
  struct m3b_kube_ref ref;
  char resource_version[64];
  json_t *live = NULL;
  int attempt, managed;
  int64_t start = m3b__monotonic_ms();
  m3b_err_t err = M3B_OK;

  job_ref(job, &ref);
  for (attempt = 0; attempt < DELETE_ATTEMPTS; attempt++) {
    err = m3b_kube_get(applier->kube, &ref, &live, &result);
    if (err == M3B_ERR_KUBE_NOT_FOUND) {
      m3b_err_t trusted =
          trust(applier, job->out, err, "reading the live object");
      return trusted != err ? trusted : deleted(applier, job, "already absent");
    }
    if (err)
      return kube_fail(applier, job->out, err, &result,
                       "reading the live object");
    managed = managed_here(applier, live);
    copy_text(job->out->uid, sizeof(job->out->uid),
              json_string_value(
                  json_object_get(json_object_get(live, "metadata"), "uid")));
    copy_text(resource_version, sizeof(resource_version),
              json_string_value(json_object_get(
                  json_object_get(live, "metadata"), "resourceVersion")));
    release(live);
    live = NULL;
    if (!managed)
      return m3b__outcome_fail(job->out, M3B_PHASE_REJECTED,
                               M3B_ERR_NOT_MANAGED,
                               "the live object lacks %s=%s or %s=%s; not "
                               "deleted",
                               M3B_LABEL_MANAGED_BY, M3B_MANAGED_BY_VALUE,
                               M3B_ANN_PLANE, applier->plane);
    /* preconditions: delete exactly the object just checked */
    err = m3b_kube_delete(applier->kube, &ref, job->out->uid, resource_version,
                          &result);
    job->out->apply_latency_ms = m3b__monotonic_ms() - start;
    if (err == M3B_OK || err == M3B_ERR_KUBE_NOT_FOUND)
      return deleted(applier, job, err ? "already absent" : "deleted");
    if (err != M3B_ERR_KUBE_CONFLICT)
      break;
  }
  return kube_fail(applier, job->out, err, &result, "delete");
}

m3b_err_t m3b__applier_execute(m3b_applier_t *applier, struct m3b__job *job) {
  const struct m3b_objkey *key = &job->objkey;
  struct m3b_index_entry entry;
  int absent = 0, known = 0, go_on = 1;
  m3b_err_t err;

  if (key->group[0])
    snprintf(job->api_version, sizeof(job->api_version), "%s/%s", key->group,
             key->version);
  else
    snprintf(job->api_version, sizeof(job->api_version), "%s", key->version);
  err = check_scope(applier, job, &absent);
  if (err)
    return err;
  if (absent)
    return deleted(applier, job, "kind not served: nothing to delete");
  err = lookup(applier, job, &entry, &known);
  if (err)
    return err;
  if (known) {
    err = stale_guard(job, &entry, &go_on);
    if (err || !go_on)
      return err;
    job->redo = job->event.generation == entry.generation;
  }
  if (job->event.op == M3B_OP_DELETE)
    return do_delete(applier, job);
  return do_apply(applier, job);
}
