/*
 * kafka_consumer.c - the read_committed consumer of the Kafka glue
 * (<m3b/kafka.h>): manual assignment from the beginning or the tail of a
 * topic, and a fence (the high watermarks at assignment) to know when
 * everything that existed at the start has been read.
 */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errstr.h"

#define MAX_PARTITIONS 4096

struct m3b_consumer {
  rd_kafka_t *rk;
  m3b_log_t *log;
  rd_kafka_message_t *current; /* returned by the last poll */
  struct m3b_kafka_message message;
  char topic[256];
  char group[256]; /* group.id, "" for a reader */
  int32_t partitions;
  int range;        /* assign_range: records at or past the fence are dropped */
  int64_t *fence;   /* high watermark per partition at assignment */
  int64_t *reached; /* next offset to read, as known from EOF/records */
  struct m3b__kafka_last_error last;
  /* the first reportable error since m3b_consumer_take_error, under
   * last.lock (see there) */
  m3b_err_t pending_err;
  char pending_reason[512];
  m3b_rebalance_fn rebalance_fn; /* group consumers */
  void *rebalance_opaque;
};

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
  const m3b_consumer_t *client = rd_kafka_opaque(rk);
  m3b__kafka_log(client->log, level, fac, buf);
}

/* What m3b_consumer_take_error reports of a client error: losing every
 * broker, authentication and fatal errors. One dropped connection
 * (__TRANSPORT) is not: librdkafka reconnects by itself, and when it was
 * the last broker __ALL_BROKERS_DOWN follows. */
static m3b_err_t reportable(rd_kafka_resp_err_t err) {
  m3b_err_t ours;
  if (err == RD_KAFKA_RESP_ERR__TRANSPORT)
    return M3B_OK;
  if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    return M3B_ERR_KAFKA_TRANSPORT;
  ours = m3b__kafka_err(err);
  return ours == M3B_ERR_KAFKA_AUTH || ours == M3B_ERR_KAFKA_FATAL ? ours
                                                                   : M3B_OK;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  m3b_consumer_t *consumer = opaque;
  m3b_err_t ours = reportable((rd_kafka_resp_err_t)err);
  m3b__kafka_error_cb(rk, err, reason, &consumer->last);
  if (!ours)
    return;
  pthread_mutex_lock(&consumer->last.lock);
  if (!consumer->pending_err) { /* the first one says what went wrong */
    consumer->pending_err = ours;
    snprintf(consumer->pending_reason, sizeof(consumer->pending_reason), "%s",
             reason);
  }
  pthread_mutex_unlock(&consumer->last.lock);
}

m3b_err_t m3b_consumer_take_error(m3b_consumer_t *consumer, char *errstr,
                                  size_t errstr_size) {
  m3b_err_t err;
  pthread_mutex_lock(&consumer->last.lock);
  err = consumer->pending_err;
  if (err)
    m3b__errstr(errstr, errstr_size, "%s", consumer->pending_reason);
  consumer->pending_err = M3B_OK;
  pthread_mutex_unlock(&consumer->last.lock);
  return err;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);

static m3b_consumer_t *consumer_new(const m3b_config_t *config,
                                    const char *group_id,
                                    const char *const (*forced)[2],
                                    m3b_log_t *log, char *errstr,
                                    size_t errstr_size);

m3b_consumer_t *m3b_consumer_new(const m3b_config_t *config,
                                 const char *group_id, m3b_log_t *log,
                                 char *errstr, size_t errstr_size) {
  /* A reader of assigned partitions reads up to an end (a fence, or what
   * it waits for) and learns it is there from the empty fetch that brings
   * the partition EOF: the broker holds that fetch for fetch.wait.max.ms,
   * 500 ms by default, which was most of a replay's read of 3,000
   * records (515 ms; 44 ms at 20). 50 ms keeps an idle reader at 20
   * fetches a second per broker. */
  static const char *const forced[][2] = {{"isolation.level", "read_committed"},
                                          {"enable.auto.offset.store", "false"},
                                          {"enable.auto.commit", "false"},
                                          {"enable.partition.eof", "true"},
                                          {"fetch.wait.max.ms", "50"},
                                          {NULL, NULL}};
  return consumer_new(config, group_id, forced, log, errstr, errstr_size);
}

m3b_consumer_t *m3b_consumer_new_group(const m3b_config_t *config,
                                       const char *group_id, m3b_log_t *log,
                                       char *errstr, size_t errstr_size) {
  static const char *const forced[][2] = {
      {"isolation.level", "read_committed"},
      {"enable.auto.offset.store", "false"},
      {"enable.auto.commit", "true"},
      {"enable.partition.eof", "false"},
      {"auto.offset.reset", "earliest"},
      {"partition.assignment.strategy", "cooperative-sticky"},
      {NULL, NULL}};
  if (!group_id) {
    m3b__errstr(errstr, errstr_size, "a group consumer needs a group id");
    return NULL;
  }
  return consumer_new(config, group_id, forced, log, errstr, errstr_size);
}

static m3b_consumer_t *consumer_new(const m3b_config_t *config,
                                    const char *group_id,
                                    const char *const (*forced)[2],
                                    m3b_log_t *log, char *errstr,
                                    size_t errstr_size) {
  m3b_consumer_t *consumer = calloc(1, sizeof(*consumer));
  rd_kafka_conf_t *conf = NULL;
  char rderr[512];

  if (!consumer) {
    m3b__errstr(errstr, errstr_size, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&consumer->last.lock, NULL);
  consumer->log = log;
  if (group_id)
    snprintf(consumer->group, sizeof(consumer->group), "%s", group_id);
  if (m3b__kafka_conf_new(config, forced, &conf, errstr, errstr_size))
    goto fail;
  /* librdkafka needs a group id even for assign(); a reader that never
   * commits may name any group its principal can read */
  if (rd_kafka_conf_set(conf, "group.id",
                        group_id ? group_id : "m3bridge-reader", rderr,
                        sizeof(rderr)) != RD_KAFKA_CONF_OK) {
    m3b__errstr(errstr, errstr_size, "group.id: %s", rderr);
    goto fail;
  }
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
  rd_kafka_conf_set_opaque(conf, consumer);
  consumer->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
  if (!consumer->rk) {
    m3b__errstr(errstr, errstr_size, "Kafka consumer: %s", rderr);
    goto fail;
  }
  conf = NULL;
  rd_kafka_poll_set_consumer(consumer->rk);
  return consumer;

fail:
  if (conf)
    rd_kafka_conf_destroy(conf);
  m3b_consumer_destroy(consumer);
  return NULL;
}

void m3b_consumer_destroy(m3b_consumer_t *consumer) {
  if (!consumer)
    return;
  if (consumer->current)
    rd_kafka_message_destroy(consumer->current);
  if (consumer->rk) {
    rd_kafka_consumer_close(consumer->rk);
    rd_kafka_destroy(consumer->rk);
  }
  free(consumer->fence);
  free(consumer->reached);
  pthread_mutex_destroy(&consumer->last.lock);
  free(consumer);
}

/* Starts tracking count partitions of topic: fence and reached sized anew
 * (zero), range says whether the fence bounds what poll returns. */
static m3b_err_t track_positions(m3b_consumer_t *consumer, const char *topic,
                                 int32_t count, int range, char *errstr,
                                 size_t errstr_size) {
  free(consumer->fence);
  free(consumer->reached);
  consumer->fence = calloc((size_t)count, sizeof(int64_t));
  consumer->reached = calloc((size_t)count, sizeof(int64_t));
  if (!consumer->fence || !consumer->reached)
    return m3b__errstr_set(M3B_ERR_NOMEM, errstr, errstr_size, "out of memory");
  snprintf(consumer->topic, sizeof(consumer->topic), "%s", topic);
  consumer->partitions = count;
  consumer->range = range;
  return M3B_OK;
}

static m3b_err_t assign(m3b_consumer_t *consumer, const char *topic,
                        int64_t tail, int timeout_ms, char *errstr,
                        size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list = NULL;
  rd_kafka_resp_err_t rerr;
  m3b_err_t err;
  int32_t p, count = 0;

  err = m3b__kafka_partition_count(consumer->rk, &consumer->last, topic,
                                   MAX_PARTITIONS, timeout_ms, &count, errstr,
                                   errstr_size);
  if (err)
    return err;
  if (count <= 0)
    return m3b__errstr_set(M3B_ERR_NOT_FOUND, errstr, errstr_size,
                           "topic %s has no partitions", topic);
  err = track_positions(consumer, topic, count, 0, errstr, errstr_size);
  if (err)
    return err;
  list = rd_kafka_topic_partition_list_new(count);
  for (p = 0; p < count; p++) {
    int64_t lo = 0, hi = 0;
    rerr = rd_kafka_query_watermark_offsets(consumer->rk, topic, p, &lo, &hi,
                                            timeout_ms);
    if (rerr) {
      rd_kafka_topic_partition_list_destroy(list);
      return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                             "watermarks of %s [%d]: %s", topic, (int)p,
                             rd_kafka_err2str(rerr));
    }
    consumer->fence[p] = hi;
    consumer->reached[p] = lo;
    rd_kafka_topic_partition_list_add(list, topic, p)->offset =
        tail < 0 ? RD_KAFKA_OFFSET_BEGINNING
                 : (hi - tail > lo ? hi - tail : lo);
  }
  rerr = rd_kafka_assign(consumer->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (rerr)
    return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                           "assigning %s: %s", topic, rd_kafka_err2str(rerr));
  return M3B_OK;
}

m3b_err_t m3b_consumer_assign_all(m3b_consumer_t *consumer, const char *topic,
                                  int timeout_ms, char *errstr,
                                  size_t errstr_size) {
  return assign(consumer, topic, -1, timeout_ms, errstr, errstr_size);
}

m3b_err_t m3b_consumer_assign_tail(m3b_consumer_t *consumer, const char *topic,
                                   int64_t tail, int timeout_ms, char *errstr,
                                   size_t errstr_size) {
  if (tail < 0)
    return M3B_ERR_INVALID_ARG;
  return assign(consumer, topic, tail, timeout_ms, errstr, errstr_size);
}

static void note_position(m3b_consumer_t *consumer, int32_t partition,
                          int64_t next) {
  if (partition >= 0 && partition < consumer->partitions &&
      next > consumer->reached[partition])
    consumer->reached[partition] = next;
}

/* A record at or past its partition's fence (range assignments): the
 * partition is done; it is paused so nothing more is fetched for it. */
static int past_fence(m3b_consumer_t *consumer, const rd_kafka_message_t *msg) {
  rd_kafka_topic_partition_list_t *list;
  if (msg->partition < 0 || msg->partition >= consumer->partitions ||
      msg->offset < consumer->fence[msg->partition])
    return 0;
  note_position(consumer, msg->partition, msg->offset + 1);
  list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(list, consumer->topic, msg->partition);
  (void)rd_kafka_pause_partitions(consumer->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  return 1;
}

m3b_err_t m3b_consumer_poll(m3b_consumer_t *consumer, int timeout_ms,
                            const struct m3b_kafka_message **message_out,
                            char *errstr, size_t errstr_size) {
  struct m3b_kafka_message *m = &consumer->message;
  rd_kafka_message_t *msg;
  rd_kafka_headers_t *hdrs = NULL;
  rd_kafka_timestamp_type_t tstype;
  size_t i;

  *message_out = NULL;
  if (consumer->current) {
    rd_kafka_message_destroy(consumer->current);
    consumer->current = NULL;
  }
  for (;;) {
    msg = rd_kafka_consumer_poll(consumer->rk, timeout_ms);
    if (!msg)
      return M3B_ERR_TIMEOUT;
    if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      note_position(consumer, msg->partition, msg->offset);
      rd_kafka_message_destroy(msg);
      if (m3b_consumer_at_fence(consumer))
        return M3B_ERR_TIMEOUT; /* nothing more that existed at the start */
      continue;
    }
    if (!msg->err && consumer->range && past_fence(consumer, msg)) {
      rd_kafka_message_destroy(msg);
      if (m3b_consumer_at_fence(consumer))
        return M3B_ERR_TIMEOUT;
      continue;
    }
    if (msg->err) {
      m3b_err_t err = m3b__kafka_err(msg->err);
      m3b__errstr(errstr, errstr_size, "consuming: %s",
                  rd_kafka_message_errstr(msg));
      rd_kafka_message_destroy(msg);
      return err ? err : M3B_ERR_KAFKA;
    }
    break;
  }
  consumer->current = msg;
  note_position(consumer, msg->partition, msg->offset + 1);
  memset(m, 0, sizeof(*m));
  m->topic = rd_kafka_topic_name(msg->rkt);
  m->partition = msg->partition;
  m->offset = msg->offset;
  m->timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
  m->key = msg->key;
  m->key_len = msg->key_len;
  m->value = msg->payload;
  m->value_len = msg->len;
  if (rd_kafka_message_headers(msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char *name;
    const void *value;
    size_t size;
    for (i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
      if (m->header_count == M3B_KAFKA_MAX_HEADERS) {
        m->headers_truncated = 1;
        break;
      }
      m->headers[m->header_count].name = name;
      m->headers[m->header_count].value = value;
      m->headers[m->header_count].size = size;
      m->header_count++;
    }
  }
  *message_out = m;
  return M3B_OK;
}

int m3b_consumer_at_fence(const m3b_consumer_t *consumer) {
  int32_t p;
  if (!consumer->fence)
    return 0;
  for (p = 0; p < consumer->partitions; p++)
    if (consumer->reached[p] < consumer->fence[p])
      return 0;
  return 1;
}

/* Hands the partitions of the subscribed topic to the caller, then
 * (un)assigns them: incrementally under the cooperative protocol. */
static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
  m3b_consumer_t *consumer = opaque;
  int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  int32_t ids[MAX_PARTITIONS];
  size_t count = 0;
  rd_kafka_error_t *error = NULL;
  rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;
  int i;

  for (i = 0; i < parts->cnt && count < MAX_PARTITIONS; i++)
    ids[count++] = parts->elems[i].partition;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    M3B_LOG(consumer->log, M3B_LOG_INFO, "kafka",
            "assigned %d partition(s) (%s)", parts->cnt,
            cooperative ? "cooperative" : "eager");
    if (cooperative)
      error = rd_kafka_incremental_assign(rk, parts);
    else
      rerr = rd_kafka_assign(rk, parts);
    if (consumer->rebalance_fn && count)
      consumer->rebalance_fn(consumer, M3B_REBALANCE_ASSIGNED, ids, count,
                             consumer->rebalance_opaque);
  } else {
    M3B_LOG(consumer->log, M3B_LOG_INFO, "kafka", "%d partition(s) revoked%s",
            parts->cnt, rd_kafka_assignment_lost(rk) ? " (lost)" : "");
    if (consumer->rebalance_fn && count)
      consumer->rebalance_fn(consumer, M3B_REBALANCE_REVOKED, ids, count,
                             consumer->rebalance_opaque);
    if (cooperative)
      error = rd_kafka_incremental_unassign(rk, parts);
    else
      rerr = rd_kafka_assign(rk, NULL);
  }
  if (error) {
    M3B_LOG(consumer->log, M3B_LOG_WARN, "kafka", "rebalance: %s",
            rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
  } else if (rerr) {
    M3B_LOG(consumer->log, M3B_LOG_WARN, "kafka", "rebalance: %s",
            rd_kafka_err2str(rerr));
  }
}

m3b_err_t m3b_consumer_subscribe(m3b_consumer_t *consumer, const char *topic,
                                 m3b_rebalance_fn fn, void *opaque,
                                 char *errstr, size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_resp_err_t rerr;

  snprintf(consumer->topic, sizeof(consumer->topic), "%s", topic);
  consumer->rebalance_fn = fn;
  consumer->rebalance_opaque = opaque;
  rd_kafka_topic_partition_list_add(list, topic, RD_KAFKA_PARTITION_UA);
  rerr = rd_kafka_subscribe(consumer->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (rerr)
    return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                           "subscribing to %s: %s", topic,
                           rd_kafka_err2str(rerr));
  return M3B_OK;
}

static m3b_err_t pause_resume(m3b_consumer_t *consumer, int32_t partition,
                              int pause) {
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_resp_err_t rerr;
  rd_kafka_topic_partition_list_add(list, consumer->topic, partition);
  rerr = pause ? rd_kafka_pause_partitions(consumer->rk, list)
               : rd_kafka_resume_partitions(consumer->rk, list);
  if (!rerr)
    rerr = list->elems[0].err;
  rd_kafka_topic_partition_list_destroy(list);
  return rerr ? m3b__kafka_err(rerr) : M3B_OK;
}

m3b_err_t m3b_consumer_pause(m3b_consumer_t *consumer, int32_t partition) {
  return pause_resume(consumer, partition, 1);
}

m3b_err_t m3b_consumer_resume(m3b_consumer_t *consumer, int32_t partition) {
  return pause_resume(consumer, partition, 0);
}

m3b_err_t m3b_consumer_store_offset(m3b_consumer_t *consumer, int32_t partition,
                                    int64_t next_offset) {
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  rd_kafka_resp_err_t rerr;
  rd_kafka_topic_partition_list_add(list, consumer->topic, partition)->offset =
      next_offset;
  rerr = rd_kafka_offsets_store(consumer->rk, list);
  if (!rerr)
    rerr = list->elems[0].err;
  rd_kafka_topic_partition_list_destroy(list);
  if (rerr == RD_KAFKA_RESP_ERR__STATE ||
      rerr == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
    return M3B_ERR_INVALID_ARG;
  return rerr ? m3b__kafka_err(rerr) : M3B_OK;
}

int64_t m3b_consumer_position(m3b_consumer_t *consumer, int32_t partition) {
  rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
  int64_t offset = -1;
  rd_kafka_topic_partition_list_add(list, consumer->topic, partition);
  if (rd_kafka_position(consumer->rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR &&
      !list->elems[0].err && list->elems[0].offset >= 0)
    offset = list->elems[0].offset;
  rd_kafka_topic_partition_list_destroy(list);
  return offset;
}

m3b_err_t m3b_consumer_commit(m3b_consumer_t *consumer, char *errstr,
                              size_t errstr_size) {
  rd_kafka_resp_err_t rerr = rd_kafka_commit(consumer->rk, NULL, 0);
  if (rerr == RD_KAFKA_RESP_ERR__NO_OFFSET)
    return M3B_OK; /* nothing stored since the last commit */
  if (rerr)
    return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                           "committing offsets: %s", rd_kafka_err2str(rerr));
  return M3B_OK;
}

m3b_err_t m3b_consumer_offsets(m3b_consumer_t *consumer,
                               struct m3b_partition_offsets *out, size_t max,
                               size_t *count_out, int timeout_ms, char *errstr,
                               size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list = NULL;
  rd_kafka_resp_err_t rerr;
  size_t n = 0;
  int i;

  *count_out = 0;
  rerr = rd_kafka_assignment(consumer->rk, &list);
  if (rerr)
    return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                           "assignment: %s", rd_kafka_err2str(rerr));
  if (list->cnt > 0)
    rerr = rd_kafka_committed(consumer->rk, list, timeout_ms);
  if (rerr) /* the broker did not answer: committed offsets stay -1 */
    m3b__errstr(errstr, errstr_size, "committed offsets: %s",
                rd_kafka_err2str(rerr));
  for (i = 0; i < list->cnt && n < max; i++) {
    const rd_kafka_topic_partition_t *tp = &list->elems[i];
    int64_t lo = -1, hi = -1;
    if (rd_kafka_get_watermark_offsets(consumer->rk, tp->topic, tp->partition,
                                       &lo, &hi) != RD_KAFKA_RESP_ERR_NO_ERROR)
      hi = -1;
    out[n].partition = tp->partition;
    out[n].committed = !rerr && !tp->err && tp->offset >= 0 ? tp->offset : -1;
    out[n].high_watermark = hi;
    n++;
  }
  rd_kafka_topic_partition_list_destroy(list);
  *count_out = n;
  return m3b__kafka_err(rerr);
}

m3b_err_t m3b_consumer_partition_count(m3b_consumer_t *consumer,
                                       const char *topic, int timeout_ms,
                                       int32_t *count_out, char *errstr,
                                       size_t errstr_size) {
  if (!consumer || !topic || !count_out)
    return M3B_ERR_INVALID_ARG;
  return m3b__kafka_partition_count(consumer->rk, &consumer->last, topic,
                                    MAX_PARTITIONS, timeout_ms, count_out,
                                    errstr, errstr_size);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Errors of a just-created topic whose leaders are being elected. */
static int electing(rd_kafka_resp_err_t rerr) {
  return rerr == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE ||
         rerr == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION ||
         rerr == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
         rerr == RD_KAFKA_RESP_ERR__TRANSPORT ||
         rerr == RD_KAFKA_RESP_ERR__TIMED_OUT;
}

m3b_err_t m3b_consumer_query_watermarks(m3b_consumer_t *consumer,
                                        const char *topic, int32_t count,
                                        int64_t *low, int64_t *high,
                                        int timeout_ms, char *errstr,
                                        size_t errstr_size) {
  int64_t deadline = mono_ms() + timeout_ms;
  int32_t p;

  if (!consumer || !topic || count <= 0 || !low || !high)
    return M3B_ERR_INVALID_ARG;
  for (p = 0; p < count; p++) {
    for (;;) {
      int64_t left = deadline - mono_ms();
      rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(
          consumer->rk, topic, p, &low[p], &high[p],
          left > 1000 ? (int)left : 1000);
      if (!rerr)
        break;
      if (!electing(rerr) || mono_ms() >= deadline)
        return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                               "watermarks of %s [%d]: %s", topic, (int)p,
                               rd_kafka_err2str(rerr));
      nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
    }
  }
  return M3B_OK;
}

/* A list of partitions 0..count-1 of topic, each with offset. */
static rd_kafka_topic_partition_list_t *partition_list(const char *topic,
                                                       int32_t count,
                                                       const int64_t *offsets,
                                                       int64_t same) {
  rd_kafka_topic_partition_list_t *list =
      rd_kafka_topic_partition_list_new(count);
  int32_t p;
  for (p = 0; p < count; p++)
    rd_kafka_topic_partition_list_add(list, topic, p)->offset =
        offsets ? offsets[p] : same;
  return list;
}

m3b_err_t m3b_consumer_offsets_for_time(m3b_consumer_t *consumer,
                                        const char *topic, int32_t count,
                                        int64_t time_ms, int64_t *offsets,
                                        int timeout_ms, char *errstr,
                                        size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list;
  rd_kafka_resp_err_t rerr;
  m3b_err_t err = M3B_OK;
  int i;

  if (!consumer || !topic || count <= 0 || !offsets)
    return M3B_ERR_INVALID_ARG;
  list = partition_list(topic, count, NULL, time_ms);
  rerr = rd_kafka_offsets_for_times(consumer->rk, list, timeout_ms);
  if (rerr) {
    err = m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                          "offsets of %s for a time: %s", topic,
                          rd_kafka_err2str(rerr));
    goto out;
  }
  for (i = 0; i < list->cnt; i++) {
    const rd_kafka_topic_partition_t *tp = &list->elems[i];
    if (tp->err) {
      err = m3b__errstr_set(m3b__kafka_err(tp->err), errstr, errstr_size,
                            "offset of %s [%d] for a time: %s", topic,
                            (int)tp->partition, rd_kafka_err2str(tp->err));
      goto out;
    }
    if (tp->partition >= 0 && tp->partition < count)
      offsets[tp->partition] = tp->offset >= 0 ? tp->offset : -1;
  }
out:
  rd_kafka_topic_partition_list_destroy(list);
  return err;
}

m3b_err_t m3b_consumer_assign_range(m3b_consumer_t *consumer, const char *topic,
                                    int32_t count, const int64_t *start,
                                    const int64_t *fence, char *errstr,
                                    size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list;
  rd_kafka_resp_err_t rerr;
  m3b_err_t err;
  int32_t p;

  if (!consumer || !topic || count <= 0 || count > MAX_PARTITIONS || !start ||
      !fence)
    return M3B_ERR_INVALID_ARG;
  err = track_positions(consumer, topic, count, 1, errstr, errstr_size);
  if (err)
    return err;
  list = rd_kafka_topic_partition_list_new(count);
  for (p = 0; p < count; p++) {
    consumer->fence[p] = fence[p];
    consumer->reached[p] = start[p];
    if (start[p] < fence[p]) /* the others are done already */
      rd_kafka_topic_partition_list_add(list, topic, p)->offset = start[p];
  }
  rerr = rd_kafka_assign(consumer->rk, list);
  rd_kafka_topic_partition_list_destroy(list);
  if (rerr)
    return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                           "assigning %s: %s", topic, rd_kafka_err2str(rerr));
  return M3B_OK;
}

m3b_err_t m3b_consumer_group_committed(m3b_consumer_t *consumer,
                                       const char *topic, int32_t count,
                                       int64_t *offsets, int timeout_ms,
                                       char *errstr, size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list;
  rd_kafka_resp_err_t rerr;
  m3b_err_t err = M3B_OK;
  int i;

  if (!consumer || !topic || count <= 0 || !offsets || !consumer->group[0])
    return M3B_ERR_INVALID_ARG;
  list = partition_list(topic, count, NULL, RD_KAFKA_OFFSET_INVALID);
  rerr = rd_kafka_committed(consumer->rk, list, timeout_ms);
  if (rerr) {
    err = m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                          "committed offsets of group %s: %s", consumer->group,
                          rd_kafka_err2str(rerr));
    goto out;
  }
  for (i = 0; i < list->cnt; i++) {
    const rd_kafka_topic_partition_t *tp = &list->elems[i];
    if (tp->partition >= 0 && tp->partition < count)
      offsets[tp->partition] = !tp->err && tp->offset >= 0 ? tp->offset : -1;
  }
out:
  rd_kafka_topic_partition_list_destroy(list);
  return err;
}

m3b_err_t m3b_consumer_group_state(m3b_consumer_t *consumer, int *members_out,
                                   char *state_out, size_t state_size,
                                   int timeout_ms, char *errstr,
                                   size_t errstr_size) {
  const struct rd_kafka_group_list *groups = NULL;
  rd_kafka_resp_err_t rerr;
  m3b_err_t err = M3B_OK;

  if (!consumer || !members_out || !state_out || !state_size ||
      !consumer->group[0])
    return M3B_ERR_INVALID_ARG;
  *members_out = 0;
  snprintf(state_out, state_size, "Dead");
  rerr =
      rd_kafka_list_groups(consumer->rk, consumer->group, &groups, timeout_ms);
  if (rerr)
    return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                           "describing group %s: %s", consumer->group,
                           rd_kafka_err2str(rerr));
  if (groups->group_cnt > 0) {
    const struct rd_kafka_group_info *g = &groups->groups[0];
    if (g->err && g->err != RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND) {
      err = m3b__errstr_set(m3b__kafka_err(g->err), errstr, errstr_size,
                            "describing group %s: %s", consumer->group,
                            rd_kafka_err2str(g->err));
    } else if (!g->err) {
      *members_out = g->member_cnt;
      snprintf(state_out, state_size, "%s", g->state ? g->state : "");
    }
  }
  rd_kafka_group_list_destroy(groups);
  return err;
}

m3b_err_t m3b_consumer_commit_group_offsets(m3b_consumer_t *consumer,
                                            const char *topic, int32_t count,
                                            const int64_t *offsets,
                                            char *errstr, size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list;
  rd_kafka_resp_err_t rerr;
  m3b_err_t err = M3B_OK;
  int32_t p;
  int i;

  if (!consumer || !topic || count <= 0 || !offsets || !consumer->group[0])
    return M3B_ERR_INVALID_ARG;
  list = rd_kafka_topic_partition_list_new(count);
  for (p = 0; p < count; p++)
    if (offsets[p] >= 0)
      rd_kafka_topic_partition_list_add(list, topic, p)->offset = offsets[p];
  if (list->cnt == 0)
    goto out;
  rerr = rd_kafka_commit(consumer->rk, list, 0);
  if (rerr) {
    err = m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                          "committing offsets for group %s: %s",
                          consumer->group, rd_kafka_err2str(rerr));
    goto out;
  }
  for (i = 0; i < list->cnt; i++) {
    if (list->elems[i].err) {
      err =
          m3b__errstr_set(m3b__kafka_err(list->elems[i].err), errstr,
                          errstr_size, "committing %s [%d] for group %s: %s",
                          topic, (int)list->elems[i].partition, consumer->group,
                          rd_kafka_err2str(list->elems[i].err));
      break;
    }
  }
out:
  rd_kafka_topic_partition_list_destroy(list);
  return err;
}
