/*
 * kafka_conf.c - librdkafka configuration from an m3b_config, librdkafka
 * error translation, the topic names of a plane and partition counts.
 * Shared by the producer, consumer, admin and observer parts of the Kafka
 * glue.
 */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "errstr.h"

m3b_err_t m3b__kafka_err(rd_kafka_resp_err_t err) {
  switch (err) {
  case RD_KAFKA_RESP_ERR_NO_ERROR: return M3B_OK;
  case RD_KAFKA_RESP_ERR__TRANSPORT:
  case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
  case RD_KAFKA_RESP_ERR__RESOLVE:
  case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
  case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
  case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS:
  case RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
  case RD_KAFKA_RESP_ERR_NOT_COORDINATOR:
  case RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE:
  case RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
  case RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION: return M3B_ERR_KAFKA_TRANSPORT;
  case RD_KAFKA_RESP_ERR__TIMED_OUT:
  case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
  case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
  case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE: return M3B_ERR_TIMEOUT;
  case RD_KAFKA_RESP_ERR__AUTHENTICATION:
  case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
  case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
  case RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED:
    return M3B_ERR_KAFKA_AUTH;
  case RD_KAFKA_RESP_ERR__FATAL:
  case RD_KAFKA_RESP_ERR__FENCED:
  case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
  case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH: return M3B_ERR_KAFKA_FATAL;
  case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE: return M3B_ERR_LIMIT;
  case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
  case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
  case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: return M3B_ERR_NOT_FOUND;
  default: return M3B_ERR_KAFKA;
  }
}

m3b_err_t m3b_kafka_topic_name(const m3b_config_t *config, const char *suffix,
                               char *out, size_t out_size) {
  const char *prefix = m3b_config_get(config, "topic.prefix");
  const char *plane = m3b_config_get(config, "plane");
  int n;
  if (!plane)
    return M3B_ERR_CONFIG;
  n = snprintf(out, out_size, "%s.%s.%s", prefix ? prefix : "m3", plane,
               suffix);
  return n < 0 || (size_t)n >= out_size ? M3B_ERR_LIMIT : M3B_OK;
}

struct conf_ctx {
  rd_kafka_conf_t *conf;
  char *errstr;
  size_t errstr_size;
};

static int set_passthrough(const char *property, const char *value,
                           void *opaque) {
  struct conf_ctx *ctx = opaque;
  char rderr[256];
  if (rd_kafka_conf_set(ctx->conf, property, value, rderr, sizeof(rderr)) !=
      RD_KAFKA_CONF_OK) {
    m3b__errstr(ctx->errstr, ctx->errstr_size, "kafka.%s: %s", property, rderr);
    return 1;
  }
  return 0;
}

/* kafka.<x>_file settings -> librdkafka property <x>, read from the file. */
static const struct {
  const char *setting;
  const char *property;
} secret_files[] = {
    {"kafka.sasl.password_file", "sasl.password"},
    {"kafka.ssl.key.password_file", "ssl.key.password"},
    {"kafka.ssl.keystore.password_file", "ssl.keystore.password"},
};

m3b_err_t m3b__kafka_conf_new(const m3b_config_t *config,
                              const char *const (*forced)[2],
                              rd_kafka_conf_t **conf_out, char *errstr,
                              size_t errstr_size) {
  struct conf_ctx ctx;
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  m3b_err_t err = M3B_OK;
  size_t i;

  *conf_out = NULL;
  ctx.conf = conf;
  ctx.errstr = errstr;
  ctx.errstr_size = errstr_size;
  if (m3b_config_each_kafka(config, set_passthrough, &ctx)) {
    rd_kafka_conf_destroy(conf);
    return M3B_ERR_CONFIG;
  }
  for (i = 0; i < sizeof(secret_files) / sizeof(secret_files[0]); i++) {
    char *secret = NULL;
    char rderr[256];
    rd_kafka_conf_res_t res;
    err = m3b_config_read_secret(config, secret_files[i].setting, &secret,
                                 errstr, errstr_size);
    if (err == M3B_ERR_NOT_FOUND) {
      err = M3B_OK;
      continue;
    }
    if (err)
      break;
    res = rd_kafka_conf_set(conf, secret_files[i].property, secret, rderr,
                            sizeof(rderr));
    OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
    if (res != RD_KAFKA_CONF_OK) {
      err = m3b__errstr_set(M3B_ERR_CONFIG, errstr, errstr_size, "%s: %s",
                            secret_files[i].setting, rderr);
      break;
    }
  }
  for (i = 0; !err && forced && forced[i][0]; i++) {
    char rderr[256];
    if (rd_kafka_conf_set(conf, forced[i][0], forced[i][1], rderr,
                          sizeof(rderr)) != RD_KAFKA_CONF_OK)
      err = m3b__errstr_set(M3B_ERR_INTERNAL, errstr, errstr_size, "%s: %s",
                            forced[i][0], rderr);
  }
  if (!err && !m3b_config_get(config, "kafka.bootstrap.servers"))
    err = m3b__errstr_set(M3B_ERR_CONFIG, errstr, errstr_size,
                          "kafka.bootstrap.servers is not set (config file "
                          "kafka: {bootstrap.servers: HOST:PORT}, or "
                          "M3B_KAFKA_BOOTSTRAP_SERVERS)");
  if (err) {
    rd_kafka_conf_destroy(conf);
    return err;
  }
  *conf_out = conf;
  return M3B_OK;
}

/* Remembers the last client-level error (for messages like "unreachable:
 * last error ..."); rd_kafka error callbacks run on librdkafka threads. */
void m3b__kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                         void *opaque) {
  struct m3b__kafka_last_error *last = opaque;
  (void)rk;
  pthread_mutex_lock(&last->lock);
  last->err = (rd_kafka_resp_err_t)err;
  snprintf(last->reason, sizeof(last->reason), "%s", reason);
  pthread_mutex_unlock(&last->lock);
}

void m3b__kafka_last_error_describe(struct m3b__kafka_last_error *last,
                                    char *out, size_t out_size) {
  pthread_mutex_lock(&last->lock);
  if (last->err)
    snprintf(out, out_size, "; last client error: %s", last->reason);
  else if (out_size)
    out[0] = '\0';
  pthread_mutex_unlock(&last->lock);
}

void m3b__kafka_log(m3b_log_t *log, int level, const char *fac,
                    const char *buf) {
  m3b_log_level_t ours = level <= 3   ? M3B_LOG_WARN
                         : level <= 6 ? M3B_LOG_INFO
                                      : M3B_LOG_DEBUG;
  M3B_LOG(log, ours, "rdkafka", "%s: %s", fac, buf);
}

m3b_err_t m3b__kafka_partition_count(rd_kafka_t *rk,
                                     struct m3b__kafka_last_error *last,
                                     const char *topic, int32_t max,
                                     int timeout_ms, int32_t *count_out,
                                     char *errstr, size_t errstr_size) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
  rd_kafka_resp_err_t rerr;
  m3b_err_t err = M3B_OK;
  char described[600];

  if (!rkt)
    return m3b__errstr_set(M3B_ERR_NOMEM, errstr, errstr_size, "out of memory");
  rerr = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
  if (rerr) {
    m3b__kafka_last_error_describe(last, described, sizeof(described));
    err = m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                          "metadata of %s: %s%s", topic, rd_kafka_err2str(rerr),
                          described);
  } else if (md->topic_cnt != 1 || md->topics[0].err) {
    rerr = md->topic_cnt == 1 ? md->topics[0].err
                              : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART;
    err = m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                          "topic %s: %s", topic, rd_kafka_err2str(rerr));
  } else if (md->topics[0].partition_cnt <= 0 ||
             md->topics[0].partition_cnt > max) {
    err = m3b__errstr_set(M3B_ERR_LIMIT, errstr, errstr_size,
                          "topic %s has %d partitions", topic,
                          md->topics[0].partition_cnt);
  } else {
    *count_out = md->topics[0].partition_cnt;
  }
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  return err;
}
