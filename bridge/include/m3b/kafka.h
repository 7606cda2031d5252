/*
 * kafka.h - the Kafka glue of libm3bridge: clients built from an
 * m3b_config, moving bytes and headers only. It knows nothing of events,
 * signatures or Kubernetes; librdkafka types and error codes never cross
 * this header (they are translated to m3b_err_t where they enter).
 *
 * Client settings: every kafka.* setting of the configuration passes to
 * librdkafka; secrets come from the *_file settings (see config.h). On top,
 * the glue sets what m3bridge's guarantees rest on and refuses overrides
 * that would break them:
 *
 *   producer  enable.idempotence=true, acks=all, partitioner=murmur2_random
 *             (the Java client's partitioner, so every client puts a key on
 *             the same partition)
 *   consumer  isolation.level=read_committed, enable.auto.offset.store=false,
 *             enable.auto.commit=false (unless a caller asks otherwise)
 */
#ifndef M3B_KAFKA_H
#define M3B_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/config.h>
#include <m3b/err.h>
#include <m3b/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A record header. In messages returned by a consumer the pointers are
 * borrowed from the message. */
struct m3b_kafka_header {
  const char *name;
  const void *value; /* NULL for a null header value */
  size_t size;
};

#define M3B_KAFKA_MAX_HEADERS 16

/* Topic names of a plane: <prefix>.<plane>.desired|status|dlq. */
m3b_err_t m3b_kafka_topic_name(const m3b_config_t *config, const char *suffix,
                               char *out, size_t out_size);

/* --- producer ---------------------------------------------------------------
 */

typedef struct m3b_producer m3b_producer_t;

/* Creates a producer. With transactional_id (borrowed) non-NULL the
 * producer is transactional and initialises its transactions here (this
 * fences any older producer with the same id). Returns NULL and fills
 * errstr on failure: a bad setting, an unreadable secret file, or a broker
 * that cannot be reached within publish.timeout_ms. */
m3b_producer_t *m3b_producer_new(const m3b_config_t *config,
                                 const char *transactional_id, m3b_log_t *log,
                                 char *errstr, size_t errstr_size);

/* Waits for outstanding deliveries (up to timeout), then frees. NULL: no-op. */
void m3b_producer_destroy(m3b_producer_t *producer);

/* Starts a transaction (transactional producers only). */
m3b_err_t m3b_producer_begin(m3b_producer_t *producer, char *errstr,
                             size_t errstr_size);

/* Queues one record (value NULL: a tombstone). The bytes are copied. tag is
 * a caller's index reported back by m3b_producer_each_delivery(). */
m3b_err_t m3b_producer_send(m3b_producer_t *producer, const char *topic,
                            const void *key, size_t key_len, const void *value,
                            size_t value_len,
                            const struct m3b_kafka_header *headers,
                            size_t header_count, size_t tag, char *errstr,
                            size_t errstr_size);

/* Transactional: commits (flushing first); on any failure the transaction
 * is aborted and nothing of it becomes visible to read_committed readers.
 * Non-transactional: flushes. Either way, fails unless every queued record
 * was acknowledged within timeout_ms. */
m3b_err_t m3b_producer_commit(m3b_producer_t *producer, int timeout_ms,
                              char *errstr, size_t errstr_size);

/* Aborts the open transaction. */
m3b_err_t m3b_producer_abort(m3b_producer_t *producer, int timeout_ms);

/* Reports each record sent since the last begin (or creation): its tag,
 * the partition and offset it got (-1 when not delivered) and its error. */
void m3b_producer_each_delivery(const m3b_producer_t *producer,
                                void (*fn)(size_t tag, int32_t partition,
                                           int64_t offset, m3b_err_t err,
                                           void *opaque),
                                void *opaque);

/* --- consumer ---------------------------------------------------------------
 */

typedef struct m3b_consumer m3b_consumer_t;

/* A consumed record; every pointer is borrowed from the consumer and valid
 * until the next m3b_consumer_poll() or m3b_consumer_destroy(). */
struct m3b_kafka_message {
  const char *topic;
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms; /* -1 when the record has none */
  const void *key;
  size_t key_len;
  const void *value; /* NULL for a tombstone */
  size_t value_len;
  struct m3b_kafka_header headers[M3B_KAFKA_MAX_HEADERS];
  size_t header_count;
  int headers_truncated; /* more than M3B_KAFKA_MAX_HEADERS */
};

/* Creates a consumer; group_id (borrowed) may be NULL for a consumer that
 * only reads assigned partitions and never commits. */
m3b_consumer_t *m3b_consumer_new(const m3b_config_t *config,
                                 const char *group_id, m3b_log_t *log,
                                 char *errstr, size_t errstr_size);

/* Closes (leaving the group) and frees. NULL: no-op. */
void m3b_consumer_destroy(m3b_consumer_t *consumer);

/* Assigns every partition of topic from its beginning and records the
 * high watermarks at this moment (the fence for m3b_consumer_at_fence). */
m3b_err_t m3b_consumer_assign_all(m3b_consumer_t *consumer, const char *topic,
                                  int timeout_ms, char *errstr,
                                  size_t errstr_size);

/* Assigns each partition of topic at most `tail` records before its end:
 * for reading the latest records only. Records the high watermarks. */
m3b_err_t m3b_consumer_assign_tail(m3b_consumer_t *consumer, const char *topic,
                                   int64_t tail, int timeout_ms, char *errstr,
                                   size_t errstr_size);

/* Waits up to timeout_ms for one record. M3B_OK with *message_out set, or
 * M3B_ERR_TIMEOUT when none arrived; other errors are fatal ones. */
m3b_err_t m3b_consumer_poll(m3b_consumer_t *consumer, int timeout_ms,
                            const struct m3b_kafka_message **message_out,
                            char *errstr, size_t errstr_size);

/* Non-zero once every assigned partition has been read up to the high
 * watermark recorded at assignment. */
int m3b_consumer_at_fence(const m3b_consumer_t *consumer);

/* --- admin ------------------------------------------------------------------
 */

struct m3b_topic_spec {
  const char *name;
  int partitions;
  int replication_factor;
  const char *configs[16][2]; /* name, value; ends at the first NULL name */
};

enum m3b_topic_outcome {
  M3B_TOPIC_CREATED,
  M3B_TOPIC_EXISTED,       /* existed with the wanted configs */
  M3B_TOPIC_CONFIG_DIFFERS /* existed; configs listed in the result differ */
};

struct m3b_topic_result {
  enum m3b_topic_outcome outcome;
  int partitions;    /* of the topic as it exists now */
  char differs[512]; /* "name=have (want X), ..." for CONFIG_DIFFERS */
};

/* Creates each missing topic with its configs; for existing ones compares
 * the configs and reports differences (it changes nothing that exists).
 * results has count entries. */
m3b_err_t m3b_kafka_ensure_topics(const m3b_config_t *config,
                                  const struct m3b_topic_spec *specs,
                                  size_t count,
                                  struct m3b_topic_result *results,
                                  int timeout_ms, m3b_log_t *log, char *errstr,
                                  size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif
