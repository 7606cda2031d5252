/*
 * err.h - the single error enum of libm3bridge.
 *
 * Every fallible function returns m3b_err_t (M3B_OK == 0). Errors from other
 * libraries (librdkafka, libcurl, HTTP status codes, avro-c, OpenSSL) are
 * translated into these codes where they enter the library; nothing above
 * that boundary sees a foreign error code.
 *
 * m3b_err_is_retriable() is the one place that decides whether a failure is
 * transient (retry with backoff, nothing committed past it) or terminal
 * (reject the event, write it to the dlq, move on).
 *
 * The table below is the only list of codes: the enum, the names and the
 * messages are all generated from it. Add new codes at the end of a group;
 * the numeric values are not part of any wire format.
 */
#ifndef M3B_ERR_H
#define M3B_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, retriable, "message") */
#define M3B_ERR_TABLE(X)                                                       \
  X(OK, 0, "success")                                                          \
  /* general */                                                                \
  X(NOMEM, 1, "out of memory")                                                 \
  X(INVALID_ARG, 0, "invalid argument")                                        \
  X(LIMIT, 0, "input exceeds a configured size limit")                         \
  X(IO, 0, "file or system I/O error")                                         \
  X(NOT_FOUND, 0, "not found")                                                 \
  X(CONFIG, 0, "invalid configuration")                                        \
  X(UNSUPPORTED, 0, "unsupported operation or version")                        \
  X(INTERNAL, 0, "internal error (a bug in m3bridge)")                         \
  X(TIMEOUT, 1, "operation timed out")                                         \
  X(INTERRUPTED, 0, "interrupted by a signal or shutdown")                     \
  /* codec: Avro single-object encoding */                                     \
  X(TRUNCATED, 0, "input ends before the encoding says it should")             \
  X(BAD_MAGIC, 0, "not Avro single-object encoding (bad magic bytes)")         \
  X(UNKNOWN_SCHEMA, 0, "writer schema fingerprint is not known")               \
  X(TRAILING_BYTES, 0, "bytes left over after the encoded record")             \
  X(SCHEMA, 0, "Avro schema is invalid or cannot be resolved")                 \
  X(ENCODE, 0, "record cannot be encoded")                                     \
  X(DECODE, 0, "record body is malformed")                                     \
  X(BAD_UTF8, 0, "string is not valid UTF-8")                                  \
  X(BAD_ENUM, 0, "unknown enum symbol")                                        \
  X(BAD_KEY, 0, "object key is malformed")                                     \
  X(BAD_MANIFEST, 0, "manifest is malformed or incomplete")                    \
  /* authenticity and sealing */                                               \
  X(SIG_MISSING, 0, "event is not signed (m3-sig or m3-kid header missing)")   \
  X(SIG_MALFORMED, 0, "signature header is malformed")                         \
  X(SIG_UNKNOWN_KEY, 0, "event is signed by a key that is not trusted")        \
  X(SIG_INVALID, 0, "signature does not verify")                               \
  X(KEY_MALFORMED, 0, "key material is malformed or of the wrong type")        \
  X(SEAL_MALFORMED, 0, "sealed value is malformed")                            \
  X(SEAL_VERSION, 0, "sealed value has an unsupported format version")         \
  X(SEAL_AUTH, 0, "sealed value does not open with this key")                  \
  X(CRYPTO, 0, "cryptographic library failure")                                \
  X(KEY_PASSPHRASE, 0, "private key passphrase is wrong or missing")           \
  /* event checks (listener) */                                                \
  X(PLANE_MISMATCH, 0, "event is addressed to another plane")                  \
  X(KEY_MISMATCH, 0, "record key does not match the event or manifest")        \
  X(HASH_MISMATCH, 0, "manifest does not match its sha-256")                   \
  X(NAMESPACE_NOT_BOUND, 0, "namespace is not bound to this listener")         \
  X(KIND_NOT_ALLOWED, 0, "cluster-scoped kind is not allowed")                 \
  X(STALE, 0, "generation is not newer than the applied one")                  \
  X(NOT_MANAGED, 0, "object is not managed by this plane (never touched)")     \
  /* Kafka */                                                                  \
  X(KAFKA_TRANSPORT, 1, "Kafka broker unreachable or connection lost")         \
  X(KAFKA_AUTH, 0, "Kafka authentication or authorization failed")             \
  X(KAFKA_FATAL, 0, "Kafka client hit a fatal error")                          \
  X(KAFKA, 0, "Kafka request failed")                                          \
  /* Kubernetes API */                                                         \
  X(KUBE_TRANSPORT, 1, "Kubernetes API server unreachable")                    \
  X(KUBE_THROTTLED, 1, "Kubernetes API server throttled the request (429)")    \
  X(KUBE_SERVER, 1, "Kubernetes API server error (5xx)")                       \
  X(KUBE_UNAUTHORIZED, 1, "Kubernetes API rejected the credentials (401)")     \
  X(KUBE_FORBIDDEN, 0, "Kubernetes API forbids the request (403)")             \
  X(KUBE_NOT_FOUND, 0, "Kubernetes object or API not found (404)")             \
  X(KUBE_CONFLICT, 0, "Kubernetes API reports a conflict (409)")               \
  X(KUBE_INVALID, 0, "Kubernetes API rejected the object (400/422)")           \
  X(KUBE_HTTP, 0, "Kubernetes API returned an unexpected status")              \
  X(KUBE_GONE, 0, "Kubernetes resourceVersion is too old (410): re-list")

typedef enum m3b_err {
#define M3B__ERR_ENUM(name, retriable, msg) M3B_ERR_##name,
  M3B_ERR_TABLE(M3B__ERR_ENUM)
#undef M3B__ERR_ENUM
      M3B_ERR__COUNT
} m3b_err_t;

#define M3B_OK M3B_ERR_OK

/* Human-readable message for err; never NULL, also for unknown values. */
const char *m3b_err_str(m3b_err_t err);

/* Stable symbolic name without prefix ("SIG_INVALID"), used in status events,
 * dlq headers, metrics labels and logs. Never NULL. */
const char *m3b_err_name(m3b_err_t err);

/* Non-zero when err is transient and the operation should be retried. */
int m3b_err_is_retriable(m3b_err_t err);

#ifdef __cplusplus
}
#endif

#endif
