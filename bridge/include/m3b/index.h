/*
 * index.h - the listener's index of managed objects: object key → what
 * this plane last applied to it (generation, manifest sha-256, uid,
 * resourceVersion), the memory behind the stale guard (DESIGN.md section
 * 6, point 4).
 *
 * The index is filled at start by m3b_index_load(), a labelled LIST
 * (app.kubernetes.io/managed-by=m3bridge, then filtered on the annotation
 * m3bridge.io/plane) over a default set of kinds plus every kind the index
 * has seen since it was created, and is kept current by the applier's own
 * writes (m3b_index_put) and by a WATCH of the managed objects
 * (m3b_index_watcher_new, m3b_index_observe): objects deleted or changed
 * by someone else mark their entry drifted, objects another replica of
 * the plane applied at a newer generation replace it. A key deleted by
 * the applier stays in the index as a deleted entry, so a redelivered
 * older APPLY cannot bring it back while the process lives.
 *
 * Threads: every call may be made from several threads at once (one mutex),
 * except m3b_index_load_reset (see there). Callers that read an entry,
 * decide and then write it must make sure no other thread works on the
 * same key meanwhile (the listener dispatches by key, so it does).
 *
 * A load lists several kinds at once (a few threads of its own) and asks
 * for metadata as protobuf, which the apiserver encodes about five times
 * faster than JSON; a caller that learns of more kinds while the defaults
 * load (a replay reading its topic) lists them with a second
 * m3b_index_load_kinds at the same time.
 */
#ifndef M3B_INDEX_H
#define M3B_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/err.h>
#include <m3b/kube.h>
#include <m3b/log.h>
#include <m3b/objkey.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most keys an index holds (M3B_ERR_LIMIT above it). */
#define M3B_INDEX_MAX_ENTRIES ((size_t)4 * 1024 * 1024)
/* Most kinds it remembers for m3b_index_load (more are not remembered). */
#define M3B_INDEX_MAX_KINDS 256
/* Longest apiVersion: group "/" version. */
#define M3B_INDEX_API_VERSION_MAX                                              \
  (M3B_OBJKEY_GROUP_MAX + 1 + M3B_OBJKEY_VERSION_MAX)

/* The label and annotations the listener writes on every object it
 * applies; m3b_index_load reads them back. */
#define M3B_LABEL_MANAGED_BY "app.kubernetes.io/managed-by"
#define M3B_MANAGED_BY_VALUE "m3bridge"
#define M3B_ANN_PLANE "m3bridge.io/plane"
#define M3B_ANN_KEY "m3bridge.io/key"
#define M3B_ANN_GENERATION "m3bridge.io/generation"
#define M3B_ANN_SHA256 "m3bridge.io/manifest-sha256"
#define M3B_ANN_RELEASE "m3bridge.io/release-id"

/* What the index knows of one key. Caller-owned, no heap. */
struct m3b_index_entry {
  int64_t generation;          /* generation of the last applied event */
  uint8_t manifest_sha256[32]; /* its manifest hash (all zero: unknown) */
  char uid[64];                /* metadata.uid after the write, or "" */
  char resource_version[64];   /* metadata.resourceVersion, or "" */
  int deleted;                 /* non-zero: the event was a DELETE */
  int64_t object_generation;   /* metadata.generation after the write, 0
                                  for kinds without one */
  int drifted; /* non-zero: since the write the live object was deleted,
                  re-created or changed by someone else (seen by the
                  WATCH, m3b_index_observe); the same event again is then
                  applied instead of skipped */
};

typedef struct m3b_index m3b_index_t;

/* Creates an empty index. NULL (with errstr) when memory is exhausted. */
m3b_index_t *m3b_index_new(char *errstr, size_t errstr_size);

/* Destroys the index; NULL is a no-op. */
void m3b_index_destroy(m3b_index_t *index);

/* Copies the entry of key (borrowed, NUL-terminated) into *entry_out.
 * M3B_ERR_NOT_FOUND when the key is not in the index. */
m3b_err_t m3b_index_get(m3b_index_t *index, const char *key,
                        struct m3b_index_entry *entry_out);

/* Sets the entry of key (both borrowed, copied), replacing any.
 * M3B_ERR_LIMIT past M3B_INDEX_MAX_ENTRIES or for a key longer than
 * M3B_OBJKEY_MAX, M3B_ERR_NOMEM. */
m3b_err_t m3b_index_put(m3b_index_t *index, const char *key,
                        const struct m3b_index_entry *entry);

/* Drops the entry of key; M3B_ERR_NOT_FOUND when there is none. */
m3b_err_t m3b_index_remove(m3b_index_t *index, const char *key);

/* Number of keys in the index (deleted entries included). */
size_t m3b_index_count(m3b_index_t *index);

/* Calls fn for every entry (key and entry borrowed for the call), holding
 * the index lock: fn must not call back into the index. Stops at and
 * returns the first non-zero fn result. */
int m3b_index_each(m3b_index_t *index,
                   int (*fn)(const char *key,
                             const struct m3b_index_entry *entry, void *opaque),
                   void *opaque);

/* Remembers a kind (borrowed strings, copied) so later loads list it too.
 * Already known: no-op. M3B_ERR_LIMIT past M3B_INDEX_MAX_KINDS,
 * M3B_ERR_INVALID_ARG for strings that cannot be an apiVersion / kind. */
m3b_err_t m3b_index_note_kind(m3b_index_t *index, const char *api_version,
                              const char *kind);

/* What m3b_index_load lists. All borrowed for the call. */
struct m3b_index_scope {
  const char *plane;                /* only objects of this plane count */
  const char *const *namespaces;    /* bound namespaces */
  size_t namespace_count;           /* */
  const char *const *cluster_kinds; /* allowed cluster-scoped kinds, as
                                       "Kind" (core) or "group/Kind" */
  size_t cluster_kind_count;        /* */
};

/* Lists the managed objects of the default kinds (ConfigMap, Secret,
 * Service, ServiceAccount, Deployment, StatefulSet, DaemonSet, Job,
 * CronJob, Ingress, Role, RoleBinding, PersistentVolumeClaim, Gateway,
 * HTTPRoute, ReferenceGrant, Namespace) and of every noted kind: namespaced
 * kinds in each bound namespace, cluster-scoped kinds only when allowed.
 * Each object labelled managed-by=m3bridge whose plane annotation is
 * scope->plane and whose key, generation and hash annotations are valid
 * is put into the index (replacing what was there). Kinds the apiserver
 * does not serve (404) or does not let the listener list (403) are
 * skipped with a log line. *loaded_out (may be NULL) counts the entries
 * put. Stops at the first other failure (transport, 5xx: retry later) and
 * returns it with result (may be NULL) filled. Secret data read by the
 * LIST is wiped before it is freed. The same as m3b_index_load_reset
 * then m3b_index_load_kinds with M3B_INDEX_LOAD_DEFAULTS |
 * M3B_INDEX_LOAD_NOTED. */
m3b_err_t m3b_index_load(m3b_index_t *index, m3b_kube_t *kube,
                         const struct m3b_index_scope *scope, m3b_log_t *log,
                         size_t *loaded_out, struct m3b_kube_result *result);

/* Flags of m3b_index_load_kinds: which kinds, and how. */
#define M3B_INDEX_LOAD_DEFAULTS 0x1u /* the default kinds (above) */
#define M3B_INDEX_LOAD_NOTED 0x2u    /* every kind noted so far */
/* one request at a time, JSON metadata pages of 500: the load as it was,
 * which benchmarks compare against */
#define M3B_INDEX_LOAD_SERIAL 0x4u

/* Forgets what earlier loads found: the kinds listed completely
 * (m3b_index_listed) and the keys of other planes' objects
 * (m3b_index_foreign). Entries stay. m3b_index_load calls it first.
 * Thread contract: no load, m3b_index_listed or m3b_index_foreign may run
 * on the index meanwhile. */
void m3b_index_load_reset(m3b_index_t *index);

/* Lists the managed objects of the kinds flags selects
 * (M3B_INDEX_LOAD_DEFAULTS, M3B_INDEX_LOAD_NOTED: the noted kinds are
 * copied when the call starts) into the index as m3b_index_load does,
 * adding to what was found since the last m3b_index_load_reset, with no
 * reset of its own. Several kinds are listed at once (a few threads, one
 * request each, protobuf metadata pages), unless M3B_INDEX_LOAD_SERIAL.
 * Errors, *loaded_out and result as m3b_index_load; when several kinds
 * fail, the first failure is returned.
 *
 * Thread contract: calls may run at the same time as each other (say the
 * defaults on one thread while another reads Kafka, then the kinds that
 * reading noted) and as get / put / observe / each; the index ends up
 * with the union, and a kind listed by both simply has its entries put
 * twice. A key the applier puts while a load lists its kind may be
 * overwritten by the listed (older) state: load before applying. */
m3b_err_t m3b_index_load_kinds(m3b_index_t *index, m3b_kube_t *kube,
                               const struct m3b_index_scope *scope,
                               unsigned flags, m3b_log_t *log,
                               size_t *loaded_out,
                               struct m3b_kube_result *result);

/* Most key prefixes (m3b_index_prefix) an index remembers. */
#define M3B_INDEX_MAX_PREFIXES 1024
/* Longest prefix: "group/version/Kind/namespace/". */
#define M3B_INDEX_PREFIX_MAX                                                   \
  (M3B_OBJKEY_GROUP_MAX + M3B_OBJKEY_VERSION_MAX + M3B_OBJKEY_KIND_MAX +       \
   M3B_OBJKEY_NAMESPACE_MAX + 4)

/* Copies the i-th (from 0) key prefix "group/version/Kind/namespace/"
 * (namespace empty for cluster-scoped kinds) into out: the prefixes of
 * the keys that had a live (not deleted) entry put, in the order first
 * seen, never forgotten; at most M3B_INDEX_MAX_PREFIXES. They are what
 * the watcher watches. M3B_ERR_NOT_FOUND past the last, M3B_ERR_LIMIT
 * when out_size is too small. */
m3b_err_t m3b_index_prefix(m3b_index_t *index, size_t i, char *out,
                           size_t out_size);

/* Tells the index what the apiserver has now for key (borrowed): object
 * (borrowed; NULL: it is gone or no longer carries the managed-by label).
 *
 * - An object of this plane whose generation annotation is above the
 *   entry's (or with no entry) replaces the entry: another replica of the
 *   plane applied it. Not drifted.
 * - Otherwise, an entry that is not drifted yet becomes drifted when the
 *   object is gone while the entry is not a delete, exists while it is,
 *   is no longer this plane's, or differs from what the entry recorded:
 *   another uid or manifest hash, another metadata.generation (kinds
 *   with one: a spec change, not a status update), another
 *   resourceVersion (kinds without one).
 *
 * Only m3b_index_put (the applier's next write) clears drifted. A key not
 * in the index with an object that is not this plane's is left alone.
 * *drifted_out (may be NULL) is 1 when this call marked the entry
 * drifted. M3B_ERR_LIMIT or M3B_ERR_NOMEM as m3b_index_put. */
m3b_err_t m3b_index_observe(m3b_index_t *index, const char *plane,
                            const char *key, const json_t *object,
                            int *drifted_out);

/* Non-zero when the last m3b_index_load listed every object of
 * (api_version, kind) its scope allows (in each bound namespace, or
 * cluster-wide for an allowed cluster-scoped kind; a kind not served counts,
 * as it has no objects): a key of that kind missing from the index had no
 * object labelled managed-by=m3bridge for this plane then. Kinds it could
 * not list (403) or did not list (not noted, not allowed) give 0. */
int m3b_index_listed(m3b_index_t *index, const char *api_version,
                     const char *kind);

/* Non-zero when the last m3b_index_load saw an object labelled
 * managed-by=m3bridge for another plane whose key (as this plane would
 * name it) is key (borrowed). Such objects are never put in the index. */
int m3b_index_foreign(m3b_index_t *index, const char *key);

/* Reads the index entry an object carries (its annotations, uid,
 * resourceVersion and metadata.generation) if it is managed by plane:
 * M3B_OK with *entry_out and key_out (size at least M3B_OBJKEY_MAX + 1)
 * filled; M3B_ERR_NOT_MANAGED when the managed-by label or the plane
 * annotation is missing or names someone else; M3B_ERR_BAD_MANIFEST when
 * ours but an annotation is malformed. object is borrowed. */
m3b_err_t m3b_index_entry_from_object(const json_t *object, const char *plane,
                                      struct m3b_index_entry *entry_out,
                                      char *key_out, size_t key_size);

/* --- the WATCH that keeps the index current ------------------------------
 *
 * A watcher watches, for each key prefix the index holds (m3b_index_prefix:
 * one kind in one namespace, or a cluster-scoped kind), the objects
 * labelled managed-by=m3bridge: one thread per prefix runs a LIST (whose
 * answer is compared with the index: every listed object and every
 * indexed key of the prefix that was not listed goes through
 * m3b_index_observe) and then a WATCH from the list's resourceVersion,
 * feeding each event to m3b_index_observe. A watch the server ends is
 * resumed from the last resourceVersion; one that fails (apiserver
 * unreachable, 410 Gone) is re-listed, after a backoff when it failed. So
 * changes made while a watch was down are found by the next LIST. A
 * supervisor thread looks for new prefixes every scan_ms. */

/* Most prefixes watched at once; more are logged and left unwatched. */
#define M3B_INDEX_MAX_WATCHES 64

typedef struct m3b_index_watcher m3b_index_watcher_t;

/* Told the outcome of each LIST and of each WATCH that ended: M3B_OK (the
 * apiserver answered) or the call's error (M3B_ERR_KUBE_TRANSPORT: not
 * reachable). Runs on a watcher thread. */
typedef void (*m3b_index_watch_fn)(m3b_err_t err, void *opaque);

/* Settings of a watcher; pointers borrowed for m3b_index_watcher_new. */
struct m3b_index_watch_config {
  const char *plane;            /* required: only this plane's objects */
  long long initial_backoff_ms; /* first wait after a failure; 0: 200 */
  long long max_backoff_ms;     /* waits double up to this; 0: 30000 */
  long watch_timeout_s;         /* per WATCH request; 0: 300 */
  long scan_ms;                 /* new prefixes looked for; 0: 1000 */
  m3b_index_watch_fn on_result; /* may be NULL */
  void *opaque;                 /* for on_result */
};

/* Starts watching for index (kube, log borrowed: they must outlive the
 * watcher). NULL with errstr when the config lacks a plane or a thread
 * cannot be started. */
m3b_index_watcher_t *
m3b_index_watcher_new(m3b_index_t *index, m3b_kube_t *kube,
                      const struct m3b_index_watch_config *config,
                      m3b_log_t *log, char *errstr, size_t errstr_size);

/* Number of prefixes being watched now. */
size_t m3b_index_watcher_count(m3b_index_watcher_t *watcher);

/* Stops every thread (a WATCH within about a second; a LIST in flight
 * within the kube client's request timeout) and frees the watcher. NULL
 * is a no-op. */
void m3b_index_watcher_destroy(m3b_index_watcher_t *watcher);

#ifdef __cplusplus
}
#endif

#endif
