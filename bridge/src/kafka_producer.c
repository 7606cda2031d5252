/*
 * kafka_producer.c - the idempotent, optionally transactional producer of
 * the Kafka glue (<m3b/kafka.h>).
 *
 * Every queued record gets a slot in a delivery table (its caller tag,
 * partition, offset, error) that the delivery-report callback fills; commit
 * fails unless every slot reports success, so a caller can always say which
 * records were not published.
 */
#include "kafka_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errstr.h"

#define MAX_IN_FLIGHT ((size_t)4 << 20) /* records per transaction */

struct delivery {
  size_t tag;
  int32_t partition;
  int64_t offset;
  rd_kafka_resp_err_t err;
  int done;
};

struct m3b_producer {
  rd_kafka_t *rk;
  m3b_log_t *log;
  int transactional;
  long long timeout_ms;
  struct delivery *deliveries;
  size_t count, cap;
  struct m3b__kafka_last_error last;
  m3b_delivery_fn delivery_fn; /* streaming producers only */
  void *delivery_opaque;
};

/* Runs on the thread that serves the producer (poll/flush/commit). */
static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
  m3b_producer_t *producer = opaque;
  size_t slot = (size_t)(uintptr_t)msg->_private;
  (void)rk;
  if (producer->delivery_fn) {
    producer->delivery_fn(msg->_private, m3b__kafka_err(msg->err),
                          producer->delivery_opaque);
    return;
  }
  if (slot >= producer->count)
    return;
  producer->deliveries[slot].partition = msg->partition;
  producer->deliveries[slot].offset = msg->err ? -1 : msg->offset;
  producer->deliveries[slot].err = msg->err;
  producer->deliveries[slot].done = 1;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf) {
  const m3b_producer_t *client = rd_kafka_opaque(rk);
  m3b__kafka_log(client->log, level, fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  m3b_producer_t *producer = opaque;
  m3b__kafka_error_cb(rk, err, reason, &producer->last);
}

static void describe_error(m3b_producer_t *producer, const char *what,
                           const char *detail, char *errstr,
                           size_t errstr_size) {
  char last[600];
  m3b__kafka_last_error_describe(&producer->last, last, sizeof(last));
  m3b__errstr(errstr, errstr_size, "%s: %s%s", what, detail, last);
}

m3b_producer_t *m3b_producer_new(const m3b_config_t *config,
                                 const char *transactional_id, m3b_log_t *log,
                                 char *errstr, size_t errstr_size) {
  static const char *const forced[][2] = {{"enable.idempotence", "true"},
                                          {"acks", "all"},
                                          {"partitioner", "murmur2_random"},
                                          {NULL, NULL}};
  m3b_producer_t *producer = calloc(1, sizeof(*producer));
  rd_kafka_conf_t *conf = NULL;
  char rderr[512], timeout[32], txn_timeout[32];
  long long timeout_ms = 30000;

  if (!producer) {
    m3b__errstr(errstr, errstr_size, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&producer->last.lock, NULL);
  producer->log = log;
  m3b_config_get_int(config, "publish.timeout_ms", &timeout_ms);
  producer->timeout_ms = timeout_ms;
  if (m3b__kafka_conf_new(config, forced, &conf, errstr, errstr_size))
    goto fail;
  snprintf(timeout, sizeof(timeout), "%lld", timeout_ms);
  /* librdkafka wants message.timeout.ms <= transaction.timeout.ms; the
   * broker caps the latter (transaction.max.timeout.ms, 15 min) */
  snprintf(txn_timeout, sizeof(txn_timeout), "%lld",
           timeout_ms + 5000 > 60000 ? timeout_ms + 5000 : 60000);
  if (transactional_id) {
    if (rd_kafka_conf_set(conf, "transactional.id", transactional_id, rderr,
                          sizeof(rderr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "transaction.timeout.ms", txn_timeout, rderr,
                          sizeof(rderr)) != RD_KAFKA_CONF_OK) {
      m3b__errstr(errstr, errstr_size, "transactional.id: %s", rderr);
      goto fail;
    }
    producer->transactional = 1;
  }
  rd_kafka_conf_set(conf, "message.timeout.ms", timeout, rderr, sizeof(rderr));
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_opaque(conf, producer);
  producer->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
  if (!producer->rk) {
    m3b__errstr(errstr, errstr_size, "Kafka producer: %s", rderr);
    goto fail;
  }
  conf = NULL; /* owned by the client now */
  if (producer->transactional) {
    rd_kafka_error_t *error =
        rd_kafka_init_transactions(producer->rk, (int)timeout_ms);
    if (error) {
      describe_error(producer, "initialising Kafka transactions",
                     rd_kafka_error_string(error), errstr, errstr_size);
      rd_kafka_error_destroy(error);
      goto fail;
    }
  } else {
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err =
        rd_kafka_metadata(producer->rk, 0, NULL, &md, (int)timeout_ms);
    if (err) {
      describe_error(producer, "reaching Kafka", rd_kafka_err2str(err), errstr,
                     errstr_size);
      goto fail;
    }
    rd_kafka_metadata_destroy(md);
  }
  return producer;

fail:
  if (conf)
    rd_kafka_conf_destroy(conf);
  m3b_producer_destroy(producer);
  return NULL;
}

void m3b_producer_destroy(m3b_producer_t *producer) {
  if (!producer)
    return;
  if (producer->rk) {
    rd_kafka_flush(producer->rk, 5000);
    rd_kafka_destroy(producer->rk);
  }
  free(producer->deliveries);
  pthread_mutex_destroy(&producer->last.lock);
  free(producer);
}

m3b_err_t m3b_producer_begin(m3b_producer_t *producer, char *errstr,
                             size_t errstr_size) {
  rd_kafka_error_t *error;
  producer->count = 0;
  if (!producer->transactional)
    return M3B_OK;
  error = rd_kafka_begin_transaction(producer->rk);
  if (error) {
    m3b_err_t err = m3b__kafka_err(rd_kafka_error_code(error));
    m3b__errstr(errstr, errstr_size, "begin transaction: %s",
                rd_kafka_error_string(error));
    rd_kafka_error_destroy(error);
    return err ? err : M3B_ERR_KAFKA;
  }
  return M3B_OK;
}

static m3b_err_t grow(m3b_producer_t *producer) {
  size_t cap;
  struct delivery *d;
  if (producer->count < producer->cap)
    return M3B_OK;
  if (producer->cap >= MAX_IN_FLIGHT)
    return M3B_ERR_LIMIT;
  cap = producer->cap ? producer->cap * 2 : 256;
  d = realloc(producer->deliveries, cap * sizeof(*d));
  if (!d)
    return M3B_ERR_NOMEM;
  producer->deliveries = d;
  producer->cap = cap;
  return M3B_OK;
}

m3b_err_t m3b_producer_send(m3b_producer_t *producer, const char *topic,
                            const void *key, size_t key_len, const void *value,
                            size_t value_len,
                            const struct m3b_kafka_header *headers,
                            size_t header_count, size_t tag, char *errstr,
                            size_t errstr_size) {
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new(header_count);
  rd_kafka_resp_err_t rerr;
  size_t slot, i;
  m3b_err_t err = grow(producer);

  if (err) {
    rd_kafka_headers_destroy(hdrs);
    return m3b__errstr_set(err, errstr, errstr_size,
                           "too many records in one transaction");
  }
  for (i = 0; i < header_count; i++)
    rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                        (ssize_t)headers[i].size);
  slot = producer->count++;
  producer->deliveries[slot].tag = tag;
  producer->deliveries[slot].partition = -1;
  producer->deliveries[slot].offset = -1;
  producer->deliveries[slot].err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
  producer->deliveries[slot].done = 0;
  for (;;) {
    rerr = rd_kafka_producev(
        producer->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE((void *)(uintptr_t)slot), RD_KAFKA_V_END);
    if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL)
      break;
    rd_kafka_poll(producer->rk, 100); /* wait for room, serving reports */
  }
  if (rerr) {
    rd_kafka_headers_destroy(hdrs); /* not taken on failure */
    producer->deliveries[slot].err = rerr;
    producer->deliveries[slot].done = 1;
    return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                           "queueing a record for %s: %s", topic,
                           rd_kafka_err2str(rerr));
  }
  rd_kafka_poll(producer->rk, 0);
  return M3B_OK;
}

/* First failed delivery, or NULL when all succeeded. */
static const struct delivery *first_failure(const m3b_producer_t *producer) {
  size_t i;
  for (i = 0; i < producer->count; i++)
    if (!producer->deliveries[i].done || producer->deliveries[i].err)
      return &producer->deliveries[i];
  return NULL;
}

m3b_err_t m3b_producer_commit(m3b_producer_t *producer, int timeout_ms,
                              char *errstr, size_t errstr_size) {
  const struct delivery *failed;
  rd_kafka_error_t *error;
  m3b_err_t err;

  if (!producer->transactional) {
    rd_kafka_flush(producer->rk, timeout_ms);
    failed = first_failure(producer);
    if (!failed)
      return M3B_OK;
    describe_error(producer, "publishing",
                   failed->done ? rd_kafka_err2str(failed->err)
                                : "not acknowledged in time",
                   errstr, errstr_size);
    return failed->done ? m3b__kafka_err(failed->err) : M3B_ERR_TIMEOUT;
  }

  error = rd_kafka_commit_transaction(producer->rk, timeout_ms);
  if (!error) {
    failed = first_failure(producer);
    if (!failed)
      return M3B_OK;
    /* committed but a record failed: cannot happen with idempotence, but
     * never claim success for a record without an acknowledgement */
    m3b__errstr(errstr, errstr_size,
                "transaction committed but a record was not acknowledged");
    return M3B_ERR_INTERNAL;
  }
  err = m3b__kafka_err(rd_kafka_error_code(error));
  describe_error(producer, "committing the transaction",
                 rd_kafka_error_string(error), errstr, errstr_size);
  if (rd_kafka_error_txn_requires_abort(error) ||
      !rd_kafka_error_is_fatal(error))
    m3b_producer_abort(producer, timeout_ms);
  rd_kafka_error_destroy(error);
  return err ? err : M3B_ERR_KAFKA;
}

m3b_err_t m3b_producer_abort(m3b_producer_t *producer, int timeout_ms) {
  rd_kafka_error_t *error;
  m3b_err_t err;
  if (!producer->transactional)
    return M3B_ERR_INVALID_ARG;
  error = rd_kafka_abort_transaction(producer->rk, timeout_ms);
  if (!error)
    return M3B_OK;
  err = m3b__kafka_err(rd_kafka_error_code(error));
  M3B_LOG(producer->log, M3B_LOG_WARN, "kafka", "aborting the transaction: %s",
          rd_kafka_error_string(error));
  rd_kafka_error_destroy(error);
  return err ? err : M3B_ERR_KAFKA;
}

void m3b_producer_each_delivery(const m3b_producer_t *producer,
                                void (*fn)(size_t tag, int32_t partition,
                                           int64_t offset, m3b_err_t err,
                                           void *opaque),
                                void *opaque) {
  size_t i;
  for (i = 0; i < producer->count; i++) {
    const struct delivery *d = &producer->deliveries[i];
    m3b_err_t err = !d->done ? M3B_ERR_TIMEOUT : m3b__kafka_err(d->err);
    if (d->done && d->err && !err)
      err = M3B_ERR_KAFKA;
    fn(d->tag, d->partition, d->offset, err, opaque);
  }
}

/* The listener's batching settings and the librdkafka property each one
 * sets, unless the configuration sets that property itself (kafka.<x>,
 * or its alias): an operator who tunes librdkafka directly keeps the
 * last word. */
static const struct {
  const char *setting;
  const char *property;
  const char *own[2]; /* kafka.* names of the property and its alias */
} batching[] = {
    {"status.linger_ms",
     "linger.ms",
     {"kafka.linger.ms", "kafka.queue.buffering.max.ms"}},
    {"status.batch_max_messages",
     "batch.num.messages",
     {"kafka.batch.num.messages", NULL}},
};

static m3b_err_t set_batching(rd_kafka_conf_t *conf, const m3b_config_t *config,
                              char *errstr, size_t errstr_size) {
  size_t i, j;
  for (i = 0; i < sizeof(batching) / sizeof(batching[0]); i++) {
    const char *value = m3b_config_get(config, batching[i].setting);
    char rderr[256];
    int own = 0;
    for (j = 0; j < 2 && batching[i].own[j]; j++)
      own |= m3b_config_get(config, batching[i].own[j]) != NULL;
    if (!value || own) /* unknown to this program's table, or overridden */
      continue;
    if (rd_kafka_conf_set(conf, batching[i].property, value, rderr,
                          sizeof(rderr)) != RD_KAFKA_CONF_OK)
      return m3b__errstr_set(M3B_ERR_CONFIG, errstr, errstr_size, "%s: %s",
                             batching[i].setting, rderr);
  }
  return M3B_OK;
}

m3b_producer_t *m3b_producer_new_streaming(const m3b_config_t *config,
                                           m3b_delivery_fn fn, void *opaque,
                                           int timeout_ms, m3b_log_t *log,
                                           char *errstr, size_t errstr_size) {
  static const char *const forced[][2] = {{"enable.idempotence", "true"},
                                          {"acks", "all"},
                                          {"partitioner", "murmur2_random"},
                                          {"message.timeout.ms", "0"},
                                          {NULL, NULL}};
  m3b_producer_t *producer = calloc(1, sizeof(*producer));
  rd_kafka_conf_t *conf = NULL;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_resp_err_t rerr;
  char rderr[512];

  if (!producer || !fn) {
    m3b__errstr(errstr, errstr_size, fn ? "out of memory" : "no callback");
    free(producer);
    return NULL;
  }
  pthread_mutex_init(&producer->last.lock, NULL);
  producer->log = log;
  producer->timeout_ms = timeout_ms;
  producer->delivery_fn = fn;
  producer->delivery_opaque = opaque;
  if (m3b__kafka_conf_new(config, forced, &conf, errstr, errstr_size) ||
      set_batching(conf, config, errstr, errstr_size))
    goto fail;
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_log_cb(conf, log_cb);
  rd_kafka_conf_set_opaque(conf, producer);
  producer->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
  if (!producer->rk) {
    m3b__errstr(errstr, errstr_size, "Kafka producer: %s", rderr);
    goto fail;
  }
  conf = NULL;
  rerr = rd_kafka_metadata(producer->rk, 0, NULL, &md, timeout_ms);
  if (rerr) {
    describe_error(producer, "reaching Kafka", rd_kafka_err2str(rerr), errstr,
                   errstr_size);
    goto fail;
  }
  rd_kafka_metadata_destroy(md);
  return producer;

fail:
  if (conf)
    rd_kafka_conf_destroy(conf);
  m3b_producer_destroy(producer);
  return NULL;
}

m3b_err_t m3b_producer_produce(m3b_producer_t *producer, const char *topic,
                               const void *key, size_t key_len,
                               const void *value, size_t value_len,
                               const struct m3b_kafka_header *headers,
                               size_t header_count, void *record_opaque,
                               int timeout_ms, char *errstr,
                               size_t errstr_size) {
  rd_kafka_headers_t *hdrs = rd_kafka_headers_new(header_count);
  rd_kafka_resp_err_t rerr;
  int waited_ms = 0;
  size_t i;

  for (i = 0; i < header_count; i++)
    rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                        (ssize_t)headers[i].size);
  for (;;) {
    rerr = rd_kafka_producev(
        producer->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key_len),
        RD_KAFKA_V_VALUE((void *)value, value_len), RD_KAFKA_V_HEADERS(hdrs),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(record_opaque), RD_KAFKA_V_END);
    if (rerr != RD_KAFKA_RESP_ERR__QUEUE_FULL || waited_ms >= timeout_ms)
      break;
    /* another thread serves the reports; just wait for room */
    nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    waited_ms += 10;
  }
  if (rerr) {
    rd_kafka_headers_destroy(hdrs); /* not taken on failure */
    return m3b__errstr_set(rerr == RD_KAFKA_RESP_ERR__QUEUE_FULL
                               ? M3B_ERR_TIMEOUT
                               : m3b__kafka_err(rerr),
                           errstr, errstr_size, "queueing a record for %s: %s",
                           topic, rd_kafka_err2str(rerr));
  }
  return M3B_OK;
}

int m3b_producer_poll(m3b_producer_t *producer, int timeout_ms) {
  return rd_kafka_poll(producer->rk, timeout_ms);
}

m3b_err_t m3b_producer_flush(m3b_producer_t *producer, int timeout_ms) {
  return rd_kafka_flush(producer->rk, timeout_ms) ? M3B_ERR_TIMEOUT : M3B_OK;
}
