/*
 * test_testbed_kafka.c - the test bed's Kafka broker is real and set up the
 * way the design needs it, checked with librdkafka itself:
 *
 *   - the protocol features m3bridge relies on are enabled (librdkafka's
 *     debug=feature log names IdempotentProducer and OffsetTime), and a real
 *     transaction and a real offsets-for-times lookup succeed;
 *   - keyed records produced over SASL_SSL (SCRAM-SHA-512, TLS verified
 *     against the test bed's CA) by the control-plane principal are consumed,
 *     in order per key, by the plane's listener principal in its group with
 *     read_committed;
 *   - the PLAINTEXT listener carries records too;
 *   - the ACLs hold: the listener principal cannot write its desired topic,
 *     a wrong password is refused, and a CA that did not sign the broker's
 *     certificate fails the TLS handshake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <librdkafka/rdkafka.h>

#include "testbed_env.h"

#define TOPIC "m3.smoke.desired"
#define GROUP "m3bridge-smoke"
#define NKEYS 12
#define PER_KEY 5

static char run_id[64];

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conf_set(rd_kafka_conf_t *conf, const char *name,
                     const char *value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
      RD_KAFKA_CONF_OK)
    fail_msg("config %s: %s", name, errstr);
}

/* A configuration for the SASL_SSL listener as user, password from file
 * (or the literal password when password_file is NULL). */
static rd_kafka_conf_t *sasl_conf(const char *user, const char *password_file,
                                  const char *password, const char *ca) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_set(conf, "bootstrap.servers",
           tb_require("M3B_TB_KAFKA_SASL_BOOTSTRAP"));
  conf_set(conf, "security.protocol", "SASL_SSL");
  conf_set(conf, "sasl.mechanisms", tb_require("M3B_TB_KAFKA_SASL_MECHANISM"));
  conf_set(conf, "sasl.username", user);
  conf_set(conf, "sasl.password",
           password_file ? tb_read_file(password_file) : password);
  conf_set(conf, "ssl.ca.location", ca);
  conf_set(conf, "enable.ssl.certificate.verification", "true");
  conf_set(conf, "ssl.endpoint.identification.algorithm", "https");
  return conf;
}

static rd_kafka_conf_t *plaintext_conf(void) {
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  conf_set(conf, "bootstrap.servers", tb_require("M3B_TB_KAFKA_BOOTSTRAP"));
  return conf;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf) {
  char errstr[512];
  rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
  if (!rk)
    fail_msg("rd_kafka_new: %s", errstr);
  return rk;
}

static int setup(void **state) {
  (void)state;
  snprintf(run_id, sizeof(run_id), "run-%ld-%d", (long)now_ms(), (int)getpid());
  tb_require_reachable("Kafka broker (PLAINTEXT)",
                       tb_require("M3B_TB_KAFKA_BOOTSTRAP"), 5000);
  tb_require_reachable("Kafka broker (SASL_SSL)",
                       tb_require("M3B_TB_KAFKA_SASL_BOOTSTRAP"), 5000);
  return 0;
}

/* Creates the test topic through the PLAINTEXT admin door; an existing
 * topic is fine (the test bed may be reused across runs). */
static void ensure_topic(const char *topic, int partitions) {
  rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, plaintext_conf());
  rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
  rd_kafka_NewTopic_t *nt;
  rd_kafka_event_t *ev;
  const rd_kafka_CreateTopics_result_t *res;
  const rd_kafka_topic_result_t **results;
  size_t n;
  char errstr[256];

  nt = rd_kafka_NewTopic_new(topic, partitions, 1, errstr, sizeof(errstr));
  assert_non_null(nt);
  rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
  ev = rd_kafka_queue_poll(q, 30000);
  if (!ev)
    fail_msg("CreateTopics %s timed out: is the broker up?", topic);
  res = rd_kafka_event_CreateTopics_result(ev);
  assert_non_null(res);
  results = rd_kafka_CreateTopics_result_topics(res, &n);
  assert_int_equal(n, 1);
  if (rd_kafka_topic_result_error(results[0]) != RD_KAFKA_RESP_ERR_NO_ERROR &&
      rd_kafka_topic_result_error(results[0]) !=
          RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
    fail_msg("CreateTopics %s: %s", topic,
             rd_kafka_topic_result_error_string(results[0]));
  rd_kafka_event_destroy(ev);
  rd_kafka_NewTopic_destroy(nt);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
}

/* --- features --------------------------------------------------------------
 */

struct feature_log {
  char features[1024];
};

/* With debug=feature, librdkafka logs "Enabling feature NAME" for every
 * protocol feature the broker's ApiVersions allow. */
static void feature_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                           const char *buf) {
  struct feature_log *fl = rd_kafka_opaque(rk);
  const char *p = strstr(buf, "Enabling feature ");
  size_t used = strlen(fl->features);
  (void)level;
  (void)fac;
  if (p)
    snprintf(fl->features + used, sizeof(fl->features) - used, "%s,", p + 17);
}

static void test_protocol_features(void **state) {
  struct feature_log fl;
  rd_kafka_conf_t *conf =
      sasl_conf(tb_require("M3B_TB_KAFKA_CONTROL_USER"),
                tb_require("M3B_TB_KAFKA_CONTROL_PASSWORD_FILE"), NULL,
                tb_require("M3B_TB_KAFKA_CA"));
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_t *rk;
  (void)state;

  memset(&fl, 0, sizeof(fl));
  conf_set(conf, "debug", "feature");
  rd_kafka_conf_set_log_cb(conf, feature_log_cb);
  rd_kafka_conf_set_opaque(conf, &fl);
  rk = new_client(RD_KAFKA_PRODUCER, conf);
  if (rd_kafka_metadata(rk, 1, NULL, &md, 15000) != RD_KAFKA_RESP_ERR_NO_ERROR)
    fail_msg("no metadata over SASL_SSL within 15s");
  rd_kafka_metadata_destroy(md);
  rd_kafka_destroy(rk);

  print_message("broker features: %s\n", fl.features);
  assert_non_null(strstr(fl.features, "IdempotentProducer"));
  assert_non_null(strstr(fl.features, "OffsetTime"));
  assert_non_null(strstr(fl.features, "MsgVer2"));
  assert_non_null(strstr(fl.features, "SaslAuthReq"));
}

/* --- produce (transaction) and consume over SASL_SSL
 * -------------------------- */

static void produce_keyed_in_transaction(int64_t *start_ms) {
  rd_kafka_conf_t *conf =
      sasl_conf(tb_require("M3B_TB_KAFKA_CONTROL_USER"),
                tb_require("M3B_TB_KAFKA_CONTROL_PASSWORD_FILE"), NULL,
                tb_require("M3B_TB_KAFKA_CA"));
  char txn_id[128];
  rd_kafka_t *rk;
  rd_kafka_error_t *error;
  int k, i;

  snprintf(txn_id, sizeof(txn_id), "m3bridge-publisher-smoke-%d",
           (int)getpid());
  conf_set(conf, "transactional.id", txn_id);
  conf_set(conf, "enable.idempotence", "true");
  conf_set(conf, "acks", "all");
  rk = new_client(RD_KAFKA_PRODUCER, conf);

  error = rd_kafka_init_transactions(rk, 30000);
  if (error)
    fail_msg("init_transactions: %s", rd_kafka_error_string(error));
  error = rd_kafka_begin_transaction(rk);
  assert_null(error);
  *start_ms = now_ms() - 1000;
  for (i = 0; i < PER_KEY; i++) {
    for (k = 0; k < NKEYS; k++) {
      char key[64], value[128];
      rd_kafka_resp_err_t err;
      snprintf(key, sizeof(key), "apps/v1/Deployment/smoke/web-%02d", k);
      snprintf(value, sizeof(value), "%s seq=%d", run_id, i);
      err = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_KEY(key, strlen(key)),
          RD_KAFKA_V_VALUE(value, strlen(value)),
          RD_KAFKA_V_HEADER("m3-test", run_id, -1),
          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      if (err)
        fail_msg("produce: %s", rd_kafka_err2str(err));
    }
  }
  error = rd_kafka_commit_transaction(rk, 30000);
  if (error)
    fail_msg("commit_transaction: %s", rd_kafka_error_string(error));
  rd_kafka_destroy(rk);
}

struct seen {
  int next_seq[NKEYS];
  int32_t partition[NKEYS];
  int total;
};

static void consume_and_check(struct seen *seen) {
  rd_kafka_conf_t *conf =
      sasl_conf(tb_require("M3B_TB_KAFKA_LISTENER_USER_SMOKE"),
                tb_require("M3B_TB_KAFKA_LISTENER_PASSWORD_FILE_SMOKE"), NULL,
                tb_require("M3B_TB_KAFKA_CA"));
  rd_kafka_topic_partition_list_t *topics;
  rd_kafka_t *rk;
  int64_t deadline = now_ms() + 60000;
  int k;

  conf_set(conf, "group.id", GROUP);
  conf_set(conf, "isolation.level", "read_committed");
  conf_set(conf, "auto.offset.reset", "earliest");
  conf_set(conf, "enable.auto.offset.store", "false");
  rk = new_client(RD_KAFKA_CONSUMER, conf);
  rd_kafka_poll_set_consumer(rk);
  topics = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(topics, TOPIC, RD_KAFKA_PARTITION_UA);
  assert_int_equal(rd_kafka_subscribe(rk, topics), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(topics);

  for (k = 0; k < NKEYS; k++)
    seen->partition[k] = -1;
  while (seen->total < NKEYS * PER_KEY && now_ms() < deadline) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 500);
    char value[256];
    int seq = -1;
    size_t n;
    if (!msg)
      continue;
    if (msg->err) {
      if (msg->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        fail_msg("consume: %s", rd_kafka_message_errstr(msg));
      rd_kafka_message_destroy(msg);
      continue;
    }
    n = msg->len < sizeof(value) - 1 ? msg->len : sizeof(value) - 1;
    memcpy(value, msg->payload, n);
    value[n] = 0;
    if (strncmp(value, run_id, strlen(run_id)) == 0) {
      char key[128];
      size_t kn =
          msg->key_len < sizeof(key) - 1 ? msg->key_len : sizeof(key) - 1;
      memcpy(key, msg->key, kn);
      key[kn] = 0;
      k = (int)strtol(strrchr(key, '-') + 1, NULL, 10);
      assert_true(k >= 0 && k < NKEYS);
      sscanf(value + strlen(run_id), " seq=%d", &seq);
      /* ordered per key, and every record of a key on one partition */
      assert_int_equal(seq, seen->next_seq[k]);
      if (seen->partition[k] < 0)
        seen->partition[k] = msg->partition;
      assert_int_equal(msg->partition, seen->partition[k]);
      seen->next_seq[k]++;
      seen->total++;
    }
    rd_kafka_offset_store(msg->rkt, msg->partition, msg->offset);
    rd_kafka_message_destroy(msg);
  }
  rd_kafka_commit(rk, NULL, 0);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
}

static void test_sasl_ssl_transaction_round_trip(void **state) {
  struct seen seen;
  int64_t start_ms;
  int k, distinct = 0;
  int32_t first = -1;
  (void)state;

  ensure_topic(TOPIC, 3);
  produce_keyed_in_transaction(&start_ms);
  memset(&seen, 0, sizeof(seen));
  consume_and_check(&seen);
  if (seen.total != NKEYS * PER_KEY)
    fail_msg("consumed %d of %d committed records within 60s", seen.total,
             NKEYS * PER_KEY);
  for (k = 0; k < NKEYS; k++) {
    assert_int_equal(seen.next_seq[k], PER_KEY);
    if (first < 0)
      first = seen.partition[k];
    else if (seen.partition[k] != first)
      distinct = 1;
  }
  assert_true(distinct); /* 12 keys over 3 partitions use more than one */
}

/* --- offsets for times
 * --------------------------------------------------------- */

static void test_offsets_for_times(void **state) {
  rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, plaintext_conf());
  rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(3);
  rd_kafka_resp_err_t err;
  int p, found = 0;
  (void)state;

  ensure_topic(TOPIC, 3);
  for (p = 0; p < 3; p++)
    rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset = 0; /* epoch */
  err = rd_kafka_offsets_for_times(rk, parts, 15000);
  if (err)
    fail_msg("offsets_for_times: %s", rd_kafka_err2str(err));
  for (p = 0; p < parts->cnt; p++) {
    assert_int_equal(parts->elems[p].err, RD_KAFKA_RESP_ERR_NO_ERROR);
    /* timestamp 0 resolves to the first offset of a non-empty partition */
    if (parts->elems[p].offset >= 0)
      found++;
  }
  assert_true(found > 0);
  rd_kafka_topic_partition_list_destroy(parts);
  rd_kafka_destroy(rk);
}

/* --- PLAINTEXT listener
 * ---------------------------------------------------------- */

static void test_plaintext_produce_consume(void **state) {
  const char *topic = "m3bridge.testbed.plaintext";
  rd_kafka_conf_t *conf = plaintext_conf();
  rd_kafka_t *rk;
  rd_kafka_topic_partition_list_t *parts;
  int64_t lo = 0, hi = 0;
  char value[128];
  int got = 0;
  int64_t deadline;
  (void)state;

  ensure_topic(topic, 1);
  conf_set(conf, "enable.idempotence", "true");
  rk = new_client(RD_KAFKA_PRODUCER, conf);
  snprintf(value, sizeof(value), "%s plaintext", run_id);
  assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                                     RD_KAFKA_V_KEY("k", 1),
                                     RD_KAFKA_V_VALUE(value, strlen(value)),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END),
                   RD_KAFKA_RESP_ERR_NO_ERROR);
  assert_int_equal(rd_kafka_flush(rk, 15000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);

  conf = plaintext_conf();
  conf_set(conf, "group.id", "m3bridge-testbed-plaintext");
  rk = new_client(RD_KAFKA_CONSUMER, conf);
  assert_int_equal(
      rd_kafka_query_watermark_offsets(rk, topic, 0, &lo, &hi, 10000),
      RD_KAFKA_RESP_ERR_NO_ERROR);
  assert_true(hi >= 1);
  parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = hi - 1;
  assert_int_equal(rd_kafka_assign(rk, parts), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_topic_partition_list_destroy(parts);
  deadline = now_ms() + 15000;
  while (!got && now_ms() < deadline) {
    rd_kafka_message_t *msg = rd_kafka_consumer_poll(rk, 500);
    if (!msg)
      continue;
    if (!msg->err && msg->len == strlen(value) &&
        memcmp(msg->payload, value, msg->len) == 0)
      got = 1;
    rd_kafka_message_destroy(msg);
  }
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  assert_true(got);
}

/* --- refusals
 * -------------------------------------------------------------------- */

struct dr_result {
  rd_kafka_resp_err_t err;
  int done;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque) {
  struct dr_result *res = rd_kafka_opaque(rk);
  (void)opaque;
  res->err = msg->err;
  res->done = 1;
}

static void test_listener_cannot_write_desired(void **state) {
  rd_kafka_conf_t *conf =
      sasl_conf(tb_require("M3B_TB_KAFKA_LISTENER_USER_SMOKE"),
                tb_require("M3B_TB_KAFKA_LISTENER_PASSWORD_FILE_SMOKE"), NULL,
                tb_require("M3B_TB_KAFKA_CA"));
  struct dr_result res = {RD_KAFKA_RESP_ERR_NO_ERROR, 0};
  rd_kafka_t *rk;
  (void)state;

  ensure_topic(TOPIC, 3);
  conf_set(conf, "message.timeout.ms", "15000");
  rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
  rd_kafka_conf_set_opaque(conf, &res);
  rk = new_client(RD_KAFKA_PRODUCER, conf);
  assert_int_equal(rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC),
                                     RD_KAFKA_V_KEY("x", 1),
                                     RD_KAFKA_V_VALUE("forged", 6),
                                     RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                     RD_KAFKA_V_END),
                   RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_flush(rk, 20000);
  rd_kafka_destroy(rk);
  assert_true(res.done);
  print_message("listener writing its desired topic: %s\n",
                rd_kafka_err2name(res.err));
  assert_int_equal(res.err, RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
}

struct error_seen {
  rd_kafka_resp_err_t err;
  char reason[512];
};

static void error_cb(rd_kafka_t *rk, int err, const char *reason,
                     void *opaque) {
  struct error_seen *es = opaque;
  (void)rk;
  if (es->err == RD_KAFKA_RESP_ERR_NO_ERROR ||
      es->err == RD_KAFKA_RESP_ERR__TRANSPORT ||
      es->err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
    es->err = (rd_kafka_resp_err_t)err;
    snprintf(es->reason, sizeof(es->reason), "%s", reason);
  }
}

/* Connects with conf and returns the first definite error the client
 * reports; metadata must not succeed. */
static rd_kafka_resp_err_t connect_expect_error(rd_kafka_conf_t *conf,
                                                struct error_seen *es) {
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_t *rk;
  rd_kafka_resp_err_t err;

  memset(es, 0, sizeof(*es));
  conf_set(conf, "log_level", "0");
  rd_kafka_conf_set_error_cb(conf, error_cb);
  rd_kafka_conf_set_opaque(conf, es);
  rk = new_client(RD_KAFKA_PRODUCER, conf);
  err = rd_kafka_metadata(rk, 1, NULL, &md, 8000);
  if (md)
    rd_kafka_metadata_destroy(md);
  rd_kafka_poll(rk, 100);
  rd_kafka_destroy(rk);
  assert_int_not_equal(err, RD_KAFKA_RESP_ERR_NO_ERROR);
  return es->err;
}

static void test_wrong_password_refused(void **state) {
  struct error_seen es;
  (void)state;
  connect_expect_error(sasl_conf(tb_require("M3B_TB_KAFKA_CONTROL_USER"), NULL,
                                 "not-the-password",
                                 tb_require("M3B_TB_KAFKA_CA")),
                       &es);
  print_message("wrong password: %s: %s\n", rd_kafka_err2name(es.err),
                es.reason);
  assert_int_equal(es.err, RD_KAFKA_RESP_ERR__AUTHENTICATION);
}

static void test_tls_verifies_broker_certificate(void **state) {
  struct error_seen es;
  (void)state;
  /* the system trust store did not sign the test bed's broker certificate */
  connect_expect_error(
      sasl_conf(tb_require("M3B_TB_KAFKA_CONTROL_USER"),
                tb_require("M3B_TB_KAFKA_CONTROL_PASSWORD_FILE"), NULL,
                "/etc/ssl/certs/ca-certificates.crt"),
      &es);
  print_message("foreign CA: %s: %s\n", rd_kafka_err2name(es.err), es.reason);
  assert_non_null(strstr(es.reason, "SSL handshake failed"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_protocol_features),
      cmocka_unit_test(test_sasl_ssl_transaction_round_trip),
      cmocka_unit_test(test_offsets_for_times),
      cmocka_unit_test(test_plaintext_produce_consume),
      cmocka_unit_test(test_listener_cannot_write_desired),
      cmocka_unit_test(test_wrong_password_refused),
      cmocka_unit_test(test_tls_verifies_broker_certificate),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
