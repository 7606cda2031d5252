/*
 * kafka_internal.h - what the producer, consumer and admin parts of the
 * Kafka glue share. Only bridge/src/kafka_*.c include librdkafka.
 */
#ifndef M3B_KAFKA_INTERNAL_H
#define M3B_KAFKA_INTERNAL_H

#include <pthread.h>

#include <librdkafka/rdkafka.h>

#include <m3b/kafka.h>

/* Translates a librdkafka error code into the library's enum. */
m3b_err_t m3b__kafka_err(rd_kafka_resp_err_t err);

/* Builds a librdkafka configuration: kafka.* passthrough, secrets from
 * their files, then the forced properties (a {NULL, NULL}-terminated list
 * of name/value pairs, may be NULL) which no setting can override. Checks
 * that kafka.bootstrap.servers is set. */
m3b_err_t m3b__kafka_conf_new(const m3b_config_t *config,
                              const char *const (*forced)[2],
                              rd_kafka_conf_t **conf_out, char *errstr,
                              size_t errstr_size);

/* The last client-level error, kept for messages. */
struct m3b__kafka_last_error {
  pthread_mutex_t lock;
  rd_kafka_resp_err_t err;
  char reason[512];
};

/* Forwards a librdkafka log line to log as one JSON line (module
 * "rdkafka"): syslog levels 0-3 become warn, 4-6 info, 7 debug. */
void m3b__kafka_log(m3b_log_t *log, int level, const char *fac,
                    const char *buf);

/* rd_kafka error callback; opaque is a struct m3b__kafka_last_error. */
void m3b__kafka_error_cb(rd_kafka_t *rk, int err, const char *reason,
                         void *opaque);

/* "; last client error: ..." or "" when there was none. */
void m3b__kafka_last_error_describe(struct m3b__kafka_last_error *last,
                                    char *out, size_t out_size);

/* The partition count of topic from a metadata request: an error that
 * says why (unknown topic, not authorized, no answer within timeout_ms;
 * last adds the client's last error) or M3B_ERR_LIMIT past max. */
m3b_err_t m3b__kafka_partition_count(rd_kafka_t *rk,
                                     struct m3b__kafka_last_error *last,
                                     const char *topic, int32_t max,
                                     int timeout_ms, int32_t *count_out,
                                     char *errstr, size_t errstr_size);

#endif
