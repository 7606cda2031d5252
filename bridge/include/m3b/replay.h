/*
 * replay.h - the pure parts of disaster recovery by replay (DESIGN.md
 * section 7), used by `m3bridge-listener replay`:
 *
 *   the fold    object key → the event that decides its final desired
 *               state (the latest generation wins; a DELETE or a tombstone
 *               removes the key), with a copy of the winning record;
 *   the tiers   the order in which kinds are restored (Namespaces and CRDs
 *               first, routes late, anything unknown last);
 *   arguments   RFC 3339 times and "P:O,..." partition offsets.
 *
 * Nothing here talks to Kafka or Kubernetes: the caller reads the topic,
 * checks each record with m3b_applier_check (signature, decoding,
 * addressing, authorization) and offers what passed to the fold.
 *
 * Threads: a fold is not thread-safe; give each thread its own (the caller
 * dispatches records by key, so the folds hold disjoint keys).
 */
#ifndef M3B_REPLAY_H
#define M3B_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/applier.h>
#include <m3b/err.h>
#include <m3b/event.h>
#include <m3b/objkey.h>

#ifdef __cplusplus
extern "C" {
#endif

/* --- tiers ------------------------------------------------------------------
 */

/* Restore order: every object of a tier is applied before any of the
 * next; deletes run in the reverse order. */
enum m3b_tier {
  M3B_TIER_NAMESPACES, /* Namespace, CustomResourceDefinition */
  M3B_TIER_RBAC,       /* ServiceAccount, RBAC, and what admits workloads:
                          ResourceQuota, LimitRange, PriorityClass */
  M3B_TIER_CONFIG,     /* ConfigMap, Secret */
  M3B_TIER_STORAGE,    /* StorageClass, PersistentVolume(Claim), ... */
  M3B_TIER_SERVICES,   /* Service */
  M3B_TIER_WORKLOADS,  /* Deployment, StatefulSet, DaemonSet, Job, Pod, ... */
  M3B_TIER_GATEWAYS,   /* GatewayClass, Gateway, IngressClass */
  M3B_TIER_ROUTES,     /* HTTPRoute and the other routes, ReferenceGrant,
                          Ingress */
  M3B_TIER_OTHER,      /* everything else, custom resources included */
  M3B_TIER__COUNT
};

/* The tier of a kind by API group ("" for the core group) and kind. */
enum m3b_tier m3b_tier_of(const char *group, const char *kind);

/* A short stable name: "namespaces", "rbac", "config", "storage",
 * "services", "workloads", "gateways", "routes", "other"; "?" out of
 * range. */
const char *m3b_tier_name(enum m3b_tier tier);

/* --- fold -------------------------------------------------------------------
 */

/* Most keys a fold holds (M3B_ERR_LIMIT past it). */
#define M3B_FOLD_MAX_ENTRIES ((size_t)4 * 1024 * 1024)

enum m3b_fold_state {
  M3B_FOLD_APPLY,    /* the winner is a signed APPLY */
  M3B_FOLD_DELETE,   /* the winner is a signed DELETE */
  M3B_FOLD_FORGOTTEN /* a tombstone came last: no event, no record */
};

/* What decides a key's place in the fold: the parts of a checked (or only
 * peeked) event, and whether its signature was verified. */
struct m3b_fold_event {
  int64_t generation;
  enum m3b_op op;
  uint8_t manifest_sha256[M3B_SHA256_SIZE];
  int verified; /* m3b_checked.verified: carried into the entry */
  uint8_t record_sha256[M3B_SHA256_SIZE]; /* m3b_checked.record_sha256 */
};

/* One key of the fold. Every pointer is owned by the fold and valid until
 * the key is offered again or the fold is destroyed. */
struct m3b_fold_entry {
  const char *key; /* NUL-terminated object key */
  enum m3b_fold_state state;
  int64_t generation; /* of the winner; for FORGOTTEN the last winner's,
                         -1 when a tombstone came first */
  uint8_t manifest_sha256[M3B_SHA256_SIZE]; /* all zero for FORGOTTEN */
  int verified; /* the winner's signature was verified (see m3b_checked) */
  uint8_t record_sha256[M3B_SHA256_SIZE]; /* when verified */
  struct m3b_record record; /* copy of the winning record (topic, key,
                               value, headers); value NULL for FORGOTTEN */
};

typedef struct m3b_fold m3b_fold_t;

/* An empty fold; NULL with errstr when memory is exhausted. */
m3b_fold_t *m3b_fold_new(char *errstr, size_t errstr_size);

/* Frees the fold and every record copy it holds; NULL is a no-op. */
void m3b_fold_destroy(m3b_fold_t *fold);

/* Offers one record of key (the record's key, which must be a valid
 * object key: the caller checked it). event NULL means a tombstone.
 *
 *   no entry yet          → the record wins (a tombstone leaves a FORGOTTEN
 *                           entry of generation -1)
 *   event, generation >   → the record wins
 *   event, generation ≤   → ignored: an equal generation keeps the first
 *                           (as the listener's stale guard does)
 *   tombstone             → the entry becomes FORGOTTEN and keeps its
 *                           generation, so only a newer event revives it
 *
 * The record's bytes are copied when it wins. *won_out (may be NULL) is 1
 * when the entry changed. M3B_ERR_INVALID_ARG for a record without a key
 * or an event without a value, M3B_ERR_LIMIT past M3B_FOLD_MAX_ENTRIES or
 * for a key longer than M3B_OBJKEY_MAX, M3B_ERR_NOMEM. */
m3b_err_t m3b_fold_offer(m3b_fold_t *fold, const struct m3b_record *record,
                         const struct m3b_fold_event *event, int *won_out);

/* The entry of key (borrowed), or NULL. Returned-borrowed. */
const struct m3b_fold_entry *m3b_fold_get(const m3b_fold_t *fold,
                                          const char *key);

/* Number of keys (FORGOTTEN included). */
size_t m3b_fold_count(const m3b_fold_t *fold);

/* Bytes of record copies held, for progress and memory reports. */
size_t m3b_fold_bytes(const m3b_fold_t *fold);

/* Calls fn for every entry (borrowed for the call) in no particular order;
 * stops at and returns the first non-zero fn result. fn must not offer. */
int m3b_fold_each(const m3b_fold_t *fold,
                  int (*fn)(const struct m3b_fold_entry *entry, void *opaque),
                  void *opaque);

/* --- arguments --------------------------------------------------------------
 */

/* Parses an RFC 3339 date-time ("2026-11-27T04:41:09Z",
 * "2026-11-27T06:41:09.250+02:00"; 't' and 'z' too) into milliseconds
 * since the epoch (fractions past milliseconds are dropped).
 * M3B_ERR_INVALID_ARG with errstr naming the problem. */
m3b_err_t m3b_parse_rfc3339(const char *text, int64_t *ms_out, char *errstr,
                            size_t errstr_size);

/* Most partitions "P:O,..." may name. */
#define M3B_OFFSETS_MAX 4096

/* Parses "P:O[,P:O]..." (partition and offset, decimal, each partition at
 * most once) into offsets[partition] for partition < max; partitions not
 * named are set to -1. *highest_out (may be NULL) gets the highest
 * partition named. M3B_ERR_INVALID_ARG with errstr on a malformed list, a
 * repeated partition, a negative offset or a partition ≥ max. */
m3b_err_t m3b_parse_partition_offsets(const char *text, int64_t *offsets,
                                      size_t max, int32_t *highest_out,
                                      char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif
