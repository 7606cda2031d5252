/*
 * event.h - the event records of the wire contract (schemas/) as C structs,
 * and their encoding through the codec (<m3b/codec.h>).
 *
 * Structs are caller-owned: *_init() before use, *_cleanup() after (also
 * after a failed decode). Pointers inside are owned by the struct once it
 * was filled by a decode; for encoding the caller fills them and they are
 * only borrowed. Strings are NUL-terminated UTF-8; optional strings are
 * NULL when absent. Times are milliseconds since the Unix epoch (UTC).
 *
 * Decoding checks the record name (a Status is not a DesiredState:
 * M3B_ERR_SCHEMA) and refuses strings with an embedded NUL byte
 * (M3B_ERR_DECODE), on top of everything m3b_codec_decode() checks.
 */
#ifndef M3B_EVENT_H
#define M3B_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/buf.h>
#include <m3b/codec.h>
#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define M3B_RECORD_DESIRED_STATE "io.m3bridge.v1.DesiredState"
#define M3B_RECORD_STATUS "io.m3bridge.v1.Status"
#define M3B_RECORD_HEARTBEAT "io.m3bridge.v1.Heartbeat"
#define M3B_RECORD_REGISTRATION "io.m3bridge.v1.Registration"

#define M3B_SHA256_SIZE 32

/* Enums follow the symbol order of the schemas; the wire carries the
 * symbol names, so reordering here is harmless but confusing: don't. */
enum m3b_op { M3B_OP_APPLY, M3B_OP_DELETE };

enum m3b_phase {
  M3B_PHASE_APPLIED,
  M3B_PHASE_DELETED,
  M3B_PHASE_FAILED,
  M3B_PHASE_REJECTED,
  M3B_PHASE_STALE_SKIPPED,
  M3B_PHASE_DRIFTED,
  M3B_PHASE_PRUNED
};

enum m3b_readiness {
  M3B_READINESS_UNKNOWN,
  M3B_READINESS_READY,
  M3B_READINESS_PROGRESSING,
  M3B_READINESS_NOT_READY
};

enum m3b_listener_state {
  M3B_LISTENER_STARTING,
  M3B_LISTENER_RUNNING,
  M3B_LISTENER_DEGRADED,
  M3B_LISTENER_STOPPING
};

/* Symbol names ("APPLY", "STALE_SKIPPED", ...); never NULL. */
const char *m3b_op_name(enum m3b_op op);
const char *m3b_phase_name(enum m3b_phase phase);
const char *m3b_readiness_name(enum m3b_readiness readiness);
const char *m3b_listener_state_name(enum m3b_listener_state state);

struct m3b_desired_state {
  char *plane;
  char *key; /* object key, see <m3b/objkey.h> */
  int64_t generation;
  enum m3b_op op;
  uint8_t *manifest; /* JSON bytes, not NUL-terminated; may be NULL if 0 */
  size_t manifest_len;
  uint8_t manifest_sha256[M3B_SHA256_SIZE];
  char *release_id;
  int64_t issued_at_ms;
  char *correlation_id; /* "" or NULL when none */
};

struct m3b_status {
  char *plane;
  char *key;
  int64_t generation;
  enum m3b_phase phase;
  char *reason;                    /* optional: m3b_err_name() of the cause */
  char *message;                   /* optional */
  char *observed_uid;              /* optional */
  char *observed_resource_version; /* optional */
  enum m3b_readiness readiness;
  char *readiness_detail;   /* optional */
  int32_t source_partition; /* -1: not the answer to one record */
  int64_t source_offset;    /* -1: not applicable */
  char *listener_id;
  int64_t applied_at_ms;
  int64_t apply_latency_ms;
};

struct m3b_partition_lag {
  char *topic;
  int32_t partition;
  int64_t committed_offset;
  int64_t high_watermark;
  int64_t lag_messages;
  int64_t lag_ms;
};

struct m3b_heartbeat {
  char *plane;
  char *listener_id;
  char *version;
  enum m3b_listener_state state;
  int64_t sent_at_ms;
  struct m3b_partition_lag *partitions;
  size_t partition_count;
};

struct m3b_registration {
  char *plane;
  char *listener_id;
  char *public_key_alg; /* NULL encodes the default, "X25519" */
  uint8_t *public_key;
  size_t public_key_len;
  char **namespaces;
  size_t namespace_count;
  char **capabilities;
  size_t capability_count;
  char *version;
  int64_t registered_at_ms;
};

/* Zero a struct (all pointers NULL, numbers 0, enums their first value). */
void m3b_desired_state_init(struct m3b_desired_state *event);
void m3b_status_init(struct m3b_status *event);
void m3b_heartbeat_init(struct m3b_heartbeat *event);
void m3b_registration_init(struct m3b_registration *event);

/* Free what a decode filled in and re-init; safe on an init'ed struct.
 * Only for structs filled by a decode (encoding borrows the caller's
 * pointers and never takes them). */
void m3b_desired_state_cleanup(struct m3b_desired_state *event);
void m3b_status_cleanup(struct m3b_status *event);
void m3b_heartbeat_cleanup(struct m3b_heartbeat *event);
void m3b_registration_cleanup(struct m3b_registration *event);

/* Appends the single-object encoding of event (borrowed) to out.
 * M3B_ERR_ENCODE when a required string is NULL, plus the errors of
 * m3b_codec_encode(). */
m3b_err_t m3b_desired_state_encode(const m3b_codec_t *codec,
                                   const struct m3b_desired_state *event,
                                   struct m3b_buf *out, char *errstr,
                                   size_t errstr_size);
m3b_err_t m3b_status_encode(const m3b_codec_t *codec,
                            const struct m3b_status *event, struct m3b_buf *out,
                            char *errstr, size_t errstr_size);
m3b_err_t m3b_heartbeat_encode(const m3b_codec_t *codec,
                               const struct m3b_heartbeat *event,
                               struct m3b_buf *out, char *errstr,
                               size_t errstr_size);
m3b_err_t m3b_registration_encode(const m3b_codec_t *codec,
                                  const struct m3b_registration *event,
                                  struct m3b_buf *out, char *errstr,
                                  size_t errstr_size);

/* Decodes data[0..len) (borrowed) into *event, which must be init'ed and
 * is cleaned up first. On error *event is left init'ed (empty). */
m3b_err_t m3b_desired_state_decode(const m3b_codec_t *codec,
                                   const uint8_t *data, size_t len,
                                   struct m3b_desired_state *event,
                                   char *errstr, size_t errstr_size);
m3b_err_t m3b_status_decode(const m3b_codec_t *codec, const uint8_t *data,
                            size_t len, struct m3b_status *event, char *errstr,
                            size_t errstr_size);
m3b_err_t m3b_heartbeat_decode(const m3b_codec_t *codec, const uint8_t *data,
                               size_t len, struct m3b_heartbeat *event,
                               char *errstr, size_t errstr_size);
m3b_err_t m3b_registration_decode(const m3b_codec_t *codec, const uint8_t *data,
                                  size_t len, struct m3b_registration *event,
                                  char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif
