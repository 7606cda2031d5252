/*
 * kafka_admin.c - topic creation for the Kafka glue (<m3b/kafka.h>):
 * creates what is missing, compares what exists, changes nothing that
 * exists (an operator may have tuned it; differences are reported).
 */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errstr.h"

struct admin {
  rd_kafka_t *rk;
  m3b_log_t *log;
  rd_kafka_queue_t *queue;
  struct m3b__kafka_last_error last;
};

static void admin_error_cb(rd_kafka_t *rk, int err, const char *reason,
                           void *opaque) {
  struct admin *admin = opaque;
  m3b__kafka_error_cb(rk, err, reason, &admin->last);
}

static void admin_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf) {
  const struct admin *admin = rd_kafka_opaque(rk);
  m3b__kafka_log(admin->log, level, fac, buf);
}

static m3b_err_t admin_open(struct admin *admin, const m3b_config_t *config,
                            char *errstr, size_t errstr_size) {
  rd_kafka_conf_t *conf = NULL;
  char rderr[512];
  m3b_err_t err = m3b__kafka_conf_new(config, NULL, &conf, errstr, errstr_size);
  if (err)
    return err;
  rd_kafka_conf_set_error_cb(conf, admin_error_cb);
  rd_kafka_conf_set_log_cb(conf, admin_log_cb);
  rd_kafka_conf_set_opaque(conf, admin);
  admin->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
  if (!admin->rk) {
    rd_kafka_conf_destroy(conf);
    return m3b__errstr_set(M3B_ERR_CONFIG, errstr, errstr_size,
                           "Kafka admin client: %s", rderr);
  }
  admin->queue = rd_kafka_queue_new(admin->rk);
  return M3B_OK;
}

static void admin_close(struct admin *admin) {
  if (admin->queue)
    rd_kafka_queue_destroy(admin->queue);
  if (admin->rk)
    rd_kafka_destroy(admin->rk);
}

/* Waits for the result event of one admin request. */
static m3b_err_t await(struct admin *admin, int timeout_ms, const char *what,
                       rd_kafka_event_t **event_out, char *errstr,
                       size_t errstr_size) {
  char last[600];
  rd_kafka_event_t *event =
      rd_kafka_queue_poll(admin->queue, timeout_ms + 1000);
  rd_kafka_resp_err_t rerr;
  *event_out = NULL;
  if (!event) {
    m3b__kafka_last_error_describe(&admin->last, last, sizeof(last));
    return m3b__errstr_set(M3B_ERR_TIMEOUT, errstr, errstr_size,
                           "%s: no answer from Kafka within %d ms%s", what,
                           timeout_ms, last);
  }
  rerr = rd_kafka_event_error(event);
  if (rerr) {
    m3b__kafka_last_error_describe(&admin->last, last, sizeof(last));
    m3b__errstr(errstr, errstr_size, "%s: %s%s", what,
                rd_kafka_event_error_string(event), last);
    rd_kafka_event_destroy(event);
    return m3b__kafka_err(rerr) ? m3b__kafka_err(rerr) : M3B_ERR_KAFKA;
  }
  *event_out = event;
  return M3B_OK;
}

static m3b_err_t create_topics(struct admin *admin,
                               const struct m3b_topic_spec *specs, size_t count,
                               struct m3b_topic_result *results, int timeout_ms,
                               char *errstr, size_t errstr_size) {
  rd_kafka_NewTopic_t **topics = calloc(count, sizeof(rd_kafka_NewTopic_t *));
  rd_kafka_AdminOptions_t *options =
      rd_kafka_AdminOptions_new(admin->rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
  rd_kafka_event_t *event = NULL;
  const rd_kafka_topic_result_t **res;
  m3b_err_t err = M3B_OK;
  char rderr[256];
  size_t i, j, n = 0;

  if (!topics) {
    err = m3b__errstr_set(M3B_ERR_NOMEM, errstr, errstr_size, "out of memory");
    goto out;
  }
  rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, rderr,
                                            sizeof(rderr));
  for (i = 0; i < count; i++) {
    topics[i] = rd_kafka_NewTopic_new(specs[i].name, specs[i].partitions,
                                      specs[i].replication_factor, rderr,
                                      sizeof(rderr));
    if (!topics[i]) {
      err = m3b__errstr_set(M3B_ERR_INVALID_ARG, errstr, errstr_size,
                            "topic %s: %s", specs[i].name, rderr);
      goto out;
    }
    for (j = 0; j < 16 && specs[i].configs[j][0]; j++)
      rd_kafka_NewTopic_set_config(topics[i], specs[i].configs[j][0],
                                   specs[i].configs[j][1]);
  }
  rd_kafka_CreateTopics(admin->rk, topics, count, options, admin->queue);
  err =
      await(admin, timeout_ms, "creating topics", &event, errstr, errstr_size);
  if (err)
    goto out;
  res = rd_kafka_CreateTopics_result_topics(
      rd_kafka_event_CreateTopics_result(event), &n);
  for (i = 0; i < n && !err; i++) {
    rd_kafka_resp_err_t rerr = rd_kafka_topic_result_error(res[i]);
    const char *name = rd_kafka_topic_result_name(res[i]);
    for (j = 0; j < count; j++) {
      if (strcmp(specs[j].name, name) != 0)
        continue;
      if (rerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
        results[j].outcome = M3B_TOPIC_CREATED;
        results[j].partitions = specs[j].partitions;
      } else if (rerr == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
        results[j].outcome = M3B_TOPIC_EXISTED;
      } else {
        err = m3b__errstr_set(m3b__kafka_err(rerr) ? m3b__kafka_err(rerr)
                                                   : M3B_ERR_KAFKA,
                              errstr, errstr_size, "creating %s: %s", name,
                              rd_kafka_topic_result_error_string(res[i]));
      }
    }
  }

out:
  if (event)
    rd_kafka_event_destroy(event);
  for (i = 0; topics && i < count; i++)
    if (topics[i])
      rd_kafka_NewTopic_destroy(topics[i]);
  free(topics);
  rd_kafka_AdminOptions_destroy(options);
  return err;
}

/* For a topic that existed: its partition count and config differences. */
static m3b_err_t compare_existing(struct admin *admin,
                                  const struct m3b_topic_spec *spec,
                                  struct m3b_topic_result *result,
                                  int timeout_ms, char *errstr,
                                  size_t errstr_size) {
  rd_kafka_ConfigResource_t *resource =
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, spec->name);
  const rd_kafka_ConfigResource_t **resources;
  const rd_kafka_ConfigEntry_t **entries;
  const struct rd_kafka_metadata *md = NULL;
  rd_kafka_topic_t *rkt;
  rd_kafka_event_t *event = NULL;
  size_t nres = 0, nentries = 0, i, j, used = 0;
  m3b_err_t err;

  rd_kafka_DescribeConfigs(admin->rk, &resource, 1, NULL, admin->queue);
  rd_kafka_ConfigResource_destroy(resource);
  err = await(admin, timeout_ms, "describing topic configs", &event, errstr,
              errstr_size);
  if (err)
    return err;
  resources = rd_kafka_DescribeConfigs_result_resources(
      rd_kafka_event_DescribeConfigs_result(event), &nres);
  entries = nres == 1 ? rd_kafka_ConfigResource_configs(resources[0], &nentries)
                      : NULL;
  result->differs[0] = '\0';
  for (i = 0; i < 16 && spec->configs[i][0]; i++) {
    const char *have = NULL;
    for (j = 0; j < nentries; j++)
      if (strcmp(rd_kafka_ConfigEntry_name(entries[j]), spec->configs[i][0]) ==
          0)
        have = rd_kafka_ConfigEntry_value(entries[j]);
    if (!have || strcmp(have, spec->configs[i][1]) != 0) {
      int n =
          snprintf(result->differs + used, sizeof(result->differs) - used,
                   "%s%s=%s (want %s)", used ? ", " : "", spec->configs[i][0],
                   have ? have : "?", spec->configs[i][1]);
      if (n > 0 && (size_t)n < sizeof(result->differs) - used)
        used += (size_t)n;
      result->outcome = M3B_TOPIC_CONFIG_DIFFERS;
    }
  }
  rd_kafka_event_destroy(event);

  rkt = rd_kafka_topic_new(admin->rk, spec->name, NULL);
  if (rkt &&
      rd_kafka_metadata(admin->rk, 0, rkt, &md, timeout_ms) ==
          RD_KAFKA_RESP_ERR_NO_ERROR &&
      md->topic_cnt == 1)
    result->partitions = md->topics[0].partition_cnt;
  if (md)
    rd_kafka_metadata_destroy(md);
  if (rkt)
    rd_kafka_topic_destroy(rkt);
  return M3B_OK;
}

m3b_err_t m3b_kafka_ensure_topics(const m3b_config_t *config,
                                  const struct m3b_topic_spec *specs,
                                  size_t count,
                                  struct m3b_topic_result *results,
                                  int timeout_ms, m3b_log_t *log, char *errstr,
                                  size_t errstr_size) {
  struct admin admin;
  m3b_err_t err;
  size_t i;

  memset(&admin, 0, sizeof(admin));
  admin.log = log;
  memset(results, 0, count * sizeof(*results));
  pthread_mutex_init(&admin.last.lock, NULL);
  err = admin_open(&admin, config, errstr, errstr_size);
  if (!err)
    err = create_topics(&admin, specs, count, results, timeout_ms, errstr,
                        errstr_size);
  for (i = 0; !err && i < count; i++) {
    if (results[i].outcome != M3B_TOPIC_EXISTED)
      continue;
    err = compare_existing(&admin, &specs[i], &results[i], timeout_ms, errstr,
                           errstr_size);
    if (!err && results[i].outcome == M3B_TOPIC_CONFIG_DIFFERS)
      M3B_LOG(log, M3B_LOG_WARN, "kafka",
              "topic %s exists with other configs: %s", specs[i].name,
              results[i].differs);
  }
  admin_close(&admin);
  pthread_mutex_destroy(&admin.last.lock);
  return err;
}
