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
 *   group     (m3b_consumer_new_group) as consumer, plus
 *             partition.assignment.strategy=cooperative-sticky,
 *             auto.offset.reset=earliest, enable.auto.commit=true: the
 *             caller stores an offset only once its record is finished
 *             (m3b_consumer_store_offset) and librdkafka commits the stored
 *             offsets every auto.commit.interval.ms; the caller commits
 *             synchronously on revoke and shutdown (m3b_consumer_commit)
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

/* A record that must not be lost on its way to the broker: the streaming
 * producer (m3b_producer_new_streaming) reports each one through this
 * callback once the broker acknowledged it (err M3B_OK) or it finally
 * failed. record_opaque is the caller's pointer given to
 * m3b_producer_produce (may be NULL). Runs on the thread that calls
 * m3b_producer_poll or m3b_producer_flush. */
typedef void (*m3b_delivery_fn)(void *record_opaque, m3b_err_t err,
                                void *opaque);

/* Creates an idempotent, non-transactional producer for a long-running
 * process: no delivery table, each delivery goes to fn (opaque borrowed).
 * message.timeout.ms is 0 (infinite): while the broker is unreachable
 * records wait in the queue instead of failing. Batching follows
 * status.linger_ms and status.batch_max_messages unless kafka.linger.ms
 * or kafka.batch.num.messages are set. NULL with errstr on a bad setting
 * or when the broker cannot be reached within timeout_ms. */
m3b_producer_t *m3b_producer_new_streaming(const m3b_config_t *config,
                                           m3b_delivery_fn fn, void *opaque,
                                           int timeout_ms, m3b_log_t *log,
                                           char *errstr, size_t errstr_size);

/* Queues one record (bytes copied) of a streaming producer; any thread.
 * When the local queue is full, waits up to timeout_ms for room
 * (M3B_ERR_TIMEOUT after). If it fails, fn is never called for it. */
m3b_err_t m3b_producer_produce(m3b_producer_t *producer, const char *topic,
                               const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               const struct m3b_kafka_header *headers,
                               size_t header_count, void *record_opaque,
                               int timeout_ms, char *errstr,
                               size_t errstr_size);

/* Serves delivery reports for up to timeout_ms; returns how many. */
int m3b_producer_poll(m3b_producer_t *producer, int timeout_ms);

/* Waits up to timeout_ms for every queued record to be reported.
 * M3B_ERR_TIMEOUT when some are still queued. */
m3b_err_t m3b_producer_flush(m3b_producer_t *producer, int timeout_ms);

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

/* --- replay: explicit ranges, times, and a group's offsets without joining
 * it. Partitions are numbered 0..count-1; arrays have count entries. */

/* The number of partitions of topic (borrowed). */
m3b_err_t m3b_consumer_partition_count(m3b_consumer_t *consumer,
                                       const char *topic, int timeout_ms,
                                       int32_t *count_out, char *errstr,
                                       size_t errstr_size);

/* Asks the broker for each partition's first offset (low[p]) and end
 * (high[p]). The end is what this read_committed consumer can read: the
 * last stable offset, so records of a transaction still open are past
 * it. Retries while a new topic's leaders are elected (up to timeout_ms
 * in all). */
m3b_err_t m3b_consumer_query_watermarks(m3b_consumer_t *consumer,
                                        const char *topic, int32_t count,
                                        int64_t *low, int64_t *high,
                                        int timeout_ms, char *errstr,
                                        size_t errstr_size);

/* offsets[p] = the first offset of partition p whose record timestamp is
 * at or after time_ms (Kafka's offsets-for-times), or -1 when every
 * record of p is older. */
m3b_err_t m3b_consumer_offsets_for_time(m3b_consumer_t *consumer,
                                        const char *topic, int32_t count,
                                        int64_t time_ms, int64_t *offsets,
                                        int timeout_ms, char *errstr,
                                        size_t errstr_size);

/* Assigns partitions 0..count-1 of topic, each read from start[p] up to
 * fence[p] (exclusive): m3b_consumer_poll never returns a record at or
 * past its partition's fence, and m3b_consumer_at_fence turns non-zero
 * once every partition reached its fence (a partition whose start is at or
 * past its fence is done from the start). Both arrays are copied. */
m3b_err_t m3b_consumer_assign_range(m3b_consumer_t *consumer, const char *topic,
                                    int32_t count, const int64_t *start,
                                    const int64_t *fence, char *errstr,
                                    size_t errstr_size);

/* offsets[p] = the committed offset of the consumer's group (its group_id)
 * for partition p of topic, -1 when it has none; read without joining. */
m3b_err_t m3b_consumer_group_committed(m3b_consumer_t *consumer,
                                       const char *topic, int32_t count,
                                       int64_t *offsets, int timeout_ms,
                                       char *errstr, size_t errstr_size);

/* The consumer's group as the broker sees it: *members_out live members
 * and its state ("Empty", "Stable", "Dead" for a group that never
 * existed, ...). */
m3b_err_t m3b_consumer_group_state(m3b_consumer_t *consumer, int *members_out,
                                   char *state_out, size_t state_size,
                                   int timeout_ms, char *errstr,
                                   size_t errstr_size);

/* Commits offsets[p] (partitions with -1 are left alone) for the
 * consumer's group without joining it, synchronously (bounded by the
 * client's socket.timeout.ms). The broker accepts such a commit only while
 * the group has no members: with a listener running it fails (errstr
 * names the broker's reason). */
m3b_err_t m3b_consumer_commit_group_offsets(m3b_consumer_t *consumer,
                                            const char *topic, int32_t count,
                                            const int64_t *offsets,
                                            char *errstr, size_t errstr_size);

/* Creates a member of consumer group group_id (borrowed), see the group
 * settings at the top. Subscribe with m3b_consumer_subscribe. */
m3b_consumer_t *m3b_consumer_new_group(const m3b_config_t *config,
                                       const char *group_id, m3b_log_t *log,
                                       char *errstr, size_t errstr_size);

enum m3b_rebalance {
  M3B_REBALANCE_ASSIGNED, /* partitions were added to this member */
  M3B_REBALANCE_REVOKED   /* partitions are being taken away (or lost) */
};

/* Called from inside m3b_consumer_poll (and m3b_consumer_destroy, which
 * leaves the group) on the polling thread. For REVOKED the partitions are
 * still assigned while fn runs: finish or abandon their in-flight work,
 * store their offsets and m3b_consumer_commit before returning; their
 * records are not returned by poll afterwards. partitions is borrowed. */
typedef void (*m3b_rebalance_fn)(m3b_consumer_t *consumer,
                                 enum m3b_rebalance event,
                                 const int32_t *partitions, size_t count,
                                 void *opaque);

/* Subscribes a group consumer to topic (borrowed) with cooperative-sticky
 * assignment; fn (may be NULL) hears of every assignment change. */
m3b_err_t m3b_consumer_subscribe(m3b_consumer_t *consumer, const char *topic,
                                 m3b_rebalance_fn fn, void *opaque,
                                 char *errstr, size_t errstr_size);

/* Stops fetching one partition of the subscribed topic / starts again at
 * the record after the last one poll returned. */
m3b_err_t m3b_consumer_pause(m3b_consumer_t *consumer, int32_t partition);
m3b_err_t m3b_consumer_resume(m3b_consumer_t *consumer, int32_t partition);

/* Records next_offset (the offset of the next record to read, i.e. the last
 * finished one + 1) as the partition's offset to commit. Fails
 * (M3B_ERR_INVALID_ARG) for a partition that is not assigned. */
m3b_err_t m3b_consumer_store_offset(m3b_consumer_t *consumer, int32_t partition,
                                    int64_t next_offset);

/* The offset of the next record poll would return for partition (past
 * transaction markers, which take offsets but are never returned), or -1
 * when unknown. A caller with nothing in flight for the partition may
 * store it, so a partition whose last record is a commit marker does not
 * show a lag of one forever. */
int64_t m3b_consumer_position(m3b_consumer_t *consumer, int32_t partition);

/* Commits the stored offsets now and waits for the broker's answer. */
m3b_err_t m3b_consumer_commit(m3b_consumer_t *consumer, char *errstr,
                              size_t errstr_size);

/* Offsets of one assigned partition. */
struct m3b_partition_offsets {
  int32_t partition;
  int64_t committed;      /* committed offset, -1 when none */
  int64_t high_watermark; /* last known end of the partition, -1 unknown */
};

/* Fills out[0..max) with the partitions assigned now (committed offsets
 * asked of the broker within timeout_ms, high watermarks from the last
 * fetch). When the broker does not answer in time, out and *count_out are
 * still filled (committed -1) and the error is returned (M3B_ERR_TIMEOUT,
 * M3B_ERR_KAFKA_TRANSPORT, ...) with errstr, so a caller can tell a
 * reachable broker from an unreachable one. */
m3b_err_t m3b_consumer_offsets(m3b_consumer_t *consumer,
                               struct m3b_partition_offsets *out, size_t max,
                               size_t *count_out, int timeout_ms, char *errstr,
                               size_t errstr_size);

/* Waits up to timeout_ms for one record. M3B_OK with *message_out set, or
 * M3B_ERR_TIMEOUT when none arrived; other errors are fatal ones. */
m3b_err_t m3b_consumer_poll(m3b_consumer_t *consumer, int timeout_ms,
                            const struct m3b_kafka_message **message_out,
                            char *errstr, size_t errstr_size);

/* The first error librdkafka reported outside of records since the last
 * call (its error callback runs inside m3b_consumer_poll): every broker
 * down (M3B_ERR_KAFKA_TRANSPORT), authentication or authorization
 * (M3B_ERR_KAFKA_AUTH) or a fatal error (M3B_ERR_KAFKA_FATAL), with
 * librdkafka's reason in errstr; M3B_OK when there was none. Taking it
 * clears it. One dropped broker connection is not reported: librdkafka
 * reconnects by itself. */
m3b_err_t m3b_consumer_take_error(m3b_consumer_t *consumer, char *errstr,
                                  size_t errstr_size);

/* Non-zero once every assigned partition has been read up to the high
 * watermark recorded at assignment. */
int m3b_consumer_at_fence(const m3b_consumer_t *consumer);

/* --- group observer ---------------------------------------------------------
 */

/* Reads one consumer group's progress on one topic from outside the group,
 * for `m3bridge-listener lag`: its own client has no group.id, so it never
 * joins the observed group and never commits for it, and it works for any
 * group while its members run. What it asks and the ACL each request needs:
 *
 *   committed offsets   OffsetFetch      Describe on the group and the topic
 *   members and owners  DescribeGroups   Describe on the group
 *   partitions, ends    Metadata, ListOffsets   Describe on the topic
 *   record timestamps   Fetch            Read on the topic (only with
 *                                        M3B_OBSERVE_TIMESTAMPS)
 *
 * Reads are read_committed, so the high watermark it reports is the last
 * stable offset, as the listener sees it. */
typedef struct m3b_group_observer m3b_group_observer_t;

struct m3b_observed_partition {
  int32_t partition;
  int64_t committed;      /* the group's committed offset, -1 when none */
  int64_t low_watermark;  /* first offset still in the log */
  int64_t high_watermark; /* end offset for read_committed readers */
  int owned;              /* a member of the group is assigned it */
  /* Kafka timestamp (ms since the epoch) of the first record at or after
   * the committed offset (the oldest record the group has not consumed);
   * -1 when not asked, when there is none, or when it could not be read:
   * timestamp_err then says why (M3B_ERR_KAFKA_AUTH without Read). */
  int64_t next_timestamp_ms;
  m3b_err_t timestamp_err;
};

struct m3b_observed_group {
  char state[32]; /* "Stable", "Empty", "Dead" (unknown group), ... */
  size_t members;
  size_t partition_count;
  const struct m3b_observed_partition *partitions; /* by partition id */
};

/* Creates an observer of group on topic (both copied). Connects lazily:
 * NULL with errstr only for a bad setting or out of memory. */
m3b_group_observer_t *m3b_group_observer_new(const m3b_config_t *config,
                                             const char *group,
                                             const char *topic, m3b_log_t *log,
                                             char *errstr, size_t errstr_size);

/* Frees. NULL: no-op. */
void m3b_group_observer_destroy(m3b_group_observer_t *observer);

/* Ask for next_timestamp_ms: fetches one record per partition behind,
 * only when its committed offset changed since the last observation. */
#define M3B_OBSERVE_TIMESTAMPS 0x1u

/* Takes one observation: the group's state and, for every partition of
 * the topic, committed offset, watermarks and owner (M3B_OBSERVE_* flags).
 * *group_out is returned-borrowed from the observer and valid until the
 * next call or destroy. Each request waits at most timeout_ms. Errors:
 * M3B_ERR_NOT_FOUND (no such topic), M3B_ERR_KAFKA_AUTH (with the ACL
 * that is missing in errstr), M3B_ERR_TIMEOUT, M3B_ERR_KAFKA_TRANSPORT. */
m3b_err_t m3b_group_observe(m3b_group_observer_t *observer, unsigned flags,
                            int timeout_ms,
                            const struct m3b_observed_group **group_out,
                            char *errstr, size_t errstr_size);

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
