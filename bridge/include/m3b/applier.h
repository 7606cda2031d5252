/*
 * applier.h - the heart of the listener: one desired-topic record in, one
 * outcome out (DESIGN.md section 6, points 3-5 and 9; the steps are
 * docs/listener-pipeline.md).
 *
 *   verify signature → decode DesiredState → plane, key and hash checks →
 *   authorize (bound namespace, allowed cluster-scoped kind) → stale guard
 *   (index) → unseal Secret data → server-side apply, or delete of a
 *   managed object
 *
 * The applier knows nothing of Kafka: the caller hands it the parts of a
 * record and gets back what happened, whether to retry, whether to write a
 * status and a dlq record, and helpers to fill both. It never commits,
 * produces or sleeps.
 *
 * Threads: m3b_applier_process may run on several threads at once for
 * different keys; never for the same key at once (the caller dispatches by
 * key, so events of one key stay ordered).
 */
#ifndef M3B_APPLIER_H
#define M3B_APPLIER_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/codec.h>
#include <m3b/err.h>
#include <m3b/event.h>
#include <m3b/index.h>
#include <m3b/kube.h>
#include <m3b/log.h>
#include <m3b/objkey.h>
#include <m3b/seal.h>
#include <m3b/sign.h>

#ifdef __cplusplus
extern "C" {
#endif

#define M3B_FIELD_MANAGER "m3bridge"
/* Default largest manifest accepted (as publish.max_manifest_bytes). */
#define M3B_APPLIER_MAX_MANIFEST_DEFAULT ((size_t)1024 * 1024)
/* Most bound namespaces and allowed cluster-scoped kinds. */
#define M3B_APPLIER_MAX_SCOPE 256

/* Settings of an applier; every pointer is borrowed for m3b_applier_new,
 * which copies what it keeps. */
struct m3b_applier_config {
  const char *plane;                /* required */
  const char *listener_id;          /* required; goes into status and dlq */
  const char *const *namespaces;    /* bound namespaces */
  size_t namespace_count;           /* */
  const char *const *cluster_kinds; /* allowed cluster-scoped kinds: "Kind"
                                       for the core group ("Namespace"), else
                                       "group/Kind" ("apiextensions.k8s.io/
                                       CustomResourceDefinition") */
  size_t cluster_kind_count;        /* */
  size_t max_manifest_bytes;        /* 0: M3B_APPLIER_MAX_MANIFEST_DEFAULT */
  const char *field_manager;        /* NULL: M3B_FIELD_MANAGER */
  const m3b_codec_t *codec;         /* NULL: built-in schemas, default limits;
                                       else borrowed, must outlive the
                                       applier */
  unsigned flags;                   /* M3B_APPLIER_* below, 0 for run */
};

/* The index is complete for every kind its last load listed
 * (m3b_index_listed), because nothing else writes this plane's objects
 * meanwhile (a replay, with the listener stopped): an index miss for such
 * a kind then means there is no managed object, so the live object is not
 * read before the apply (one request less per new object). An object of
 * another plane is still refused, from what the load saw
 * (m3b_index_foreign). Without the flag every miss reads the live object,
 * as a listener sharing its plane with other replicas must. */
#define M3B_APPLIER_TRUST_INDEX 0x1u

/* One Kafka header of a record: name NUL-terminated, value may be NULL
 * (a header without value). Borrowed. */
struct m3b_record_header {
  const char *name;
  const void *value;
  size_t len;
};

/* One record of the desired topic, as the Kafka side received it. Every
 * pointer is borrowed for the call. value NULL is a tombstone. */
struct m3b_record {
  const char *topic;
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms;
  const void *key; /* may be NULL */
  size_t key_len;
  const void *value; /* NULL: tombstone */
  size_t value_len;
  const struct m3b_record_header *headers;
  size_t header_count;
};

/* What m3b_applier_process decided. Caller-owned, no heap. */
struct m3b_outcome {
  enum m3b_phase phase; /* APPLIED, DELETED, FAILED, REJECTED, STALE_SKIPPED */
  m3b_err_t err;        /* M3B_OK for APPLIED, DELETED and forget */
  const char *reason;   /* m3b_err_name(err) (static), NULL when err is OK */
  char message[512];    /* human detail; never secret data or a manifest */
  char key[M3B_OBJKEY_MAX + 1]; /* the record key when it is a valid object
                                   key, else "" */
  int64_t generation;           /* the event's, -1 when not decoded */
  char uid[64];                 /* observed metadata.uid, or "" */
  char resource_version[64];    /* observed resourceVersion, or "" */
  int retriable; /* transient failure: retry later with backoff, do not
                    store the offset, write no status and no dlq record */
  int dlq;       /* terminal failure: write the record to the dlq */
  int status;    /* a status event is due (see m3b_outcome_status) */
  int noop;      /* nothing was written to the apiserver */
  int forget;    /* a tombstone: nothing to do but store the offset */
  int64_t apply_latency_ms; /* time spent in apiserver writes, else 0 */
  int64_t finished_at_ms;   /* wall clock when processing ended */
  int64_t retry_after_ms;   /* the apiserver's Retry-After (429, 5xx) of a
                               retriable failure, else -1; see
                               m3b_outcome_retry_delay_ms */
};

typedef struct m3b_applier m3b_applier_t;

/* Creates an applier. kube, ring, seal_key and log are borrowed and must
 * outlive it; seal_key may be NULL (then Secrets with data are rejected),
 * log may be NULL. NULL with errstr when the config is incomplete (no
 * plane or listener id, a scope list over M3B_APPLIER_MAX_SCOPE, a
 * malformed allowed kind) or memory is exhausted. The index starts empty:
 * call m3b_applier_load_index before the first record. */
m3b_applier_t *m3b_applier_new(const struct m3b_applier_config *config,
                               m3b_kube_t *kube, const m3b_keyring_t *ring,
                               const m3b_seal_key_t *seal_key, m3b_log_t *log,
                               char *errstr, size_t errstr_size);

/* Destroys an applier; NULL is a no-op. No process call may be running. */
void m3b_applier_destroy(m3b_applier_t *applier);

/* Fills the index from the apiserver (m3b_index_load over the applier's
 * plane, namespaces and allowed kinds). Retriable errors mean "try again
 * later"; errstr says which request failed. */
m3b_err_t m3b_applier_load_index(m3b_applier_t *applier, size_t *loaded_out,
                                 char *errstr, size_t errstr_size);

/* Adds the kinds flags selects (M3B_INDEX_LOAD_DEFAULTS, _NOTED: see
 * m3b_index_load_kinds) to the index without forgetting what earlier loads
 * found; runs alongside another load (a replay lists the default kinds
 * while it reads its topic, then the kinds the topic named). Errors as
 * m3b_applier_load_index. */
m3b_err_t m3b_applier_load_index_kinds(m3b_applier_t *applier, unsigned flags,
                                       size_t *loaded_out, char *errstr,
                                       size_t errstr_size);

/* The index (returned-borrowed, lives as long as the applier), for a
 * watcher or metrics. */
m3b_index_t *m3b_applier_index(m3b_applier_t *applier);

/* Handles one record and fills *out (always, also on failure). Returns
 * out->err. See docs/listener-pipeline.md for each step and its reason. */
m3b_err_t m3b_applier_process(m3b_applier_t *applier,
                              const struct m3b_record *in,
                              struct m3b_outcome *out);

/* What m3b_applier_check (or m3b_applier_peek) learned of a record that
 * passed. Caller-owned. */
struct m3b_checked {
  int64_t generation;
  enum m3b_op op;
  uint8_t manifest_sha256[M3B_SHA256_SIZE];
  struct m3b_objkey objkey; /* the parsed record key */
  int verified; /* 1 from m3b_applier_check: the signature was verified */
  uint8_t record_sha256[M3B_SHA256_SIZE]; /* when verified: of the key and
                                             value that were verified */
};

/* Runs only the steps of m3b_applier_process that need no apiserver:
 * signature, decoding, plane, keys, size and hash, the manifest, and
 * authorization by key (steps 0-7 of docs/listener-pipeline.md). It never
 * reads or writes the apiserver and never changes the index. Returns
 * M3B_OK with *checked filled when the record passes; a tombstone is M3B_OK
 * with out->forget set and *checked untouched. Otherwise *out is exactly
 * what m3b_applier_process would have said of the record (REJECTED, with
 * dlq and status due) and out->err is returned. Threads as
 * m3b_applier_process. */
m3b_err_t m3b_applier_check(m3b_applier_t *applier, const struct m3b_record *in,
                            struct m3b_outcome *out,
                            struct m3b_checked *checked);

/* m3b_applier_check without the two costly steps: the signature is not
 * verified and an APPLY's manifest is hashed but not parsed, so what it
 * returns is only what the record CLAIMS (checked->verified is 0). It
 * exists for a replay, which folds many records and writes few: peek
 * every record, fold, and verify only the winners that will be written
 * (m3b_applier_check, then m3b_applier_process_checked). Never write
 * anything on the strength of a peek alone. A record the peek refuses is
 * checked in full, so *out and the result are then exactly
 * m3b_applier_check's (the signature's verdict first). */
m3b_err_t m3b_applier_peek(m3b_applier_t *applier, const struct m3b_record *in,
                           struct m3b_outcome *out,
                           struct m3b_checked *checked);

/* m3b_applier_process for a record m3b_applier_check passed: when
 * checked->verified and the record's key and value hash to
 * checked->record_sha256, the signature is not verified again (every
 * other step runs); otherwise exactly m3b_applier_process. checked may be
 * NULL. */
m3b_err_t m3b_applier_process_checked(m3b_applier_t *applier,
                                      const struct m3b_record *in,
                                      const struct m3b_checked *checked,
                                      struct m3b_outcome *out);

/* Fills *status (m3b_status_init'ed by the caller) for publishing the
 * outcome of record in: every pointer in it is borrowed from applier,
 * outcome or status itself, so do not m3b_status_cleanup it; it stays
 * valid while applier and outcome do. M3B_ERR_INVALID_ARG when the outcome
 * has no status due (out->status == 0). */
m3b_err_t m3b_outcome_status(const m3b_applier_t *applier,
                             const struct m3b_outcome *outcome,
                             const struct m3b_record *in,
                             struct m3b_status *status);

/* How long to wait before retrying a retriable outcome, in ms: the
 * apiserver's Retry-After when it sent one above 0 (outcome->retry_after_ms,
 * the server knows best when it will have room), else capped exponential
 * backoff initial_ms * 2^attempt with jitter: a delay drawn from
 * [d/2, d] by random, so replicas do not retry in step. Both are capped
 * at max_ms; attempt counts earlier retries of the same record (0 for the
 * first). initial_ms and max_ms must be above 0. */
long long m3b_outcome_retry_delay_ms(const struct m3b_outcome *outcome,
                                     unsigned attempt, long long initial_ms,
                                     long long max_ms, unsigned random);

#define M3B_DLQ_HEADER_COUNT 6
#define M3B_HDR_ERROR_REASON "m3-error-reason"
#define M3B_HDR_ERROR_MESSAGE "m3-error-message"
#define M3B_HDR_SOURCE_TOPIC "m3-source-topic"
#define M3B_HDR_SOURCE_PARTITION "m3-source-partition"
#define M3B_HDR_SOURCE_OFFSET "m3-source-offset"
#define M3B_HDR_LISTENER_ID "m3-listener-id"
/* Added by the listener when the dlq copy with its error headers is too
 * large for Kafka: the copy then has no value, and this header holds the
 * original value's length in ASCII decimal (the original stays at
 * m3-source-partition / m3-source-offset of the desired topic). */
#define M3B_HDR_VALUE_OMITTED "m3-dlq-value-omitted"

/* The error headers of a dlq record: name/value pairs whose values are
 * borrowed from applier, outcome, record and the numbers held here.
 * Caller-owned; valid while those live. */
struct m3b_dlq_headers {
  struct m3b_record_header headers[M3B_DLQ_HEADER_COUNT];
  size_t count;
  char partition[16];
  char offset[24];
};

/* Fills *headers with m3-error-reason, m3-error-message, m3-source-topic,
 * m3-source-partition, m3-source-offset and m3-listener-id (ASCII decimal
 * numbers). The dlq record itself is the original key, value and headers
 * plus these. */
void m3b_outcome_dlq_headers(const m3b_applier_t *applier,
                             const struct m3b_outcome *outcome,
                             const struct m3b_record *in,
                             struct m3b_dlq_headers *headers);

#ifdef __cplusplus
}
#endif

#endif
