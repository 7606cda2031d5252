/*
 * kafka_observer.c - a consumer group's progress read from outside the
 * group (<m3b/kafka.h>, "group observer"): committed offsets through the
 * ListConsumerGroupOffsets admin call, members and their assignments
 * through DescribeConsumerGroups, watermarks through ListOffsets, and the
 * timestamp of the oldest record the group has not consumed by fetching
 * that one record.
 *
 * Why fetch one record rather than bisect with offsets_for_times: the
 * broker maps a time to an offset, not the reverse, and record timestamps
 * (CreateTime) need not grow with the offset, so a bisection would take
 * several round trips and could still land on the wrong record. One fetch
 * at the committed offset is exact, and since the timestamp of a given
 * offset never changes it is fetched again only when the committed offset
 * moves.
 *
 * The client is a consumer without a group.id: it never joins or commits
 * for anyone. Records are read with the simple consumer API
 * (consume_start/consume_stop; assign() needs a group.id), each partition
 * stopped at its first record.
 */
#include "kafka_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errstr.h"

#define MAX_PARTITIONS 4096

struct m3b_group_observer {
  rd_kafka_t *rk;
  rd_kafka_queue_t *queue; /* admin results */
  m3b_log_t *log;
  char group[256];
  char topic[256];
  struct m3b__kafka_last_error last;
  struct m3b_observed_group observed;
  struct m3b_observed_partition *partitions;
  int32_t partition_count;
  int64_t *cached_offset; /* offset whose timestamp is cached, -2 none */
  int64_t *cached_timestamp;
};

static void observer_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                            const char *buf) {
  const m3b_group_observer_t *observer = rd_kafka_opaque(rk);
  m3b__kafka_log(observer->log, level, fac, buf);
}

static void observer_error_cb(rd_kafka_t *rk, int err, const char *reason,
                              void *opaque) {
  m3b_group_observer_t *observer = opaque;
  m3b__kafka_error_cb(rk, err, reason, &observer->last);
}

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

m3b_group_observer_t *m3b_group_observer_new(const m3b_config_t *config,
                                             const char *group,
                                             const char *topic, m3b_log_t *log,
                                             char *errstr, size_t errstr_size) {
  /* no group.id: nothing is ever committed */
  static const char *const forced[][2] = {
      {"isolation.level", "read_committed"},  {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},  {"enable.partition.eof", "true"},
      {"auto.offset.reset", "earliest"},      {"fetch.wait.max.ms", "100"},
      {"queued.max.messages.kbytes", "1024"}, {NULL, NULL}};
  m3b_group_observer_t *observer;
  rd_kafka_conf_t *conf = NULL;
  char rderr[512];

  if (!group || !*group || strlen(group) >= sizeof(observer->group) || !topic ||
      !*topic || strlen(topic) >= sizeof(observer->topic)) {
    m3b__errstr(errstr, errstr_size,
                "a group and a topic name (1 to 255 bytes) are needed");
    return NULL;
  }
  observer = calloc(1, sizeof(*observer));
  if (!observer) {
    m3b__errstr(errstr, errstr_size, "out of memory");
    return NULL;
  }
  pthread_mutex_init(&observer->last.lock, NULL);
  observer->log = log;
  snprintf(observer->group, sizeof(observer->group), "%s", group);
  snprintf(observer->topic, sizeof(observer->topic), "%s", topic);
  if (m3b__kafka_conf_new(config, forced, &conf, errstr, errstr_size))
    goto fail;
  rd_kafka_conf_set_error_cb(conf, observer_error_cb);
  rd_kafka_conf_set_log_cb(conf, observer_log_cb);
  rd_kafka_conf_set_opaque(conf, observer);
  observer->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
  if (!observer->rk) {
    m3b__errstr(errstr, errstr_size, "Kafka client: %s", rderr);
    goto fail;
  }
  conf = NULL;
  observer->queue = rd_kafka_queue_new(observer->rk);
  if (!observer->queue) {
    m3b__errstr(errstr, errstr_size, "out of memory");
    goto fail;
  }
  return observer;

fail:
  if (conf)
    rd_kafka_conf_destroy(conf);
  m3b_group_observer_destroy(observer);
  return NULL;
}

void m3b_group_observer_destroy(m3b_group_observer_t *observer) {
  if (!observer)
    return;
  if (observer->queue)
    rd_kafka_queue_destroy(observer->queue);
  if (observer->rk) {
    rd_kafka_consumer_close(observer->rk);
    rd_kafka_destroy(observer->rk);
  }
  free(observer->partitions);
  free(observer->cached_offset);
  free(observer->cached_timestamp);
  pthread_mutex_destroy(&observer->last.lock);
  free(observer);
}

/* (Re)sizes the per-partition arrays for count partitions. */
static m3b_err_t size_partitions(m3b_group_observer_t *observer, int32_t count,
                                 char *errstr, size_t errstr_size) {
  int32_t p;
  if (count == observer->partition_count && observer->partitions)
    return M3B_OK;
  free(observer->partitions);
  free(observer->cached_offset);
  free(observer->cached_timestamp);
  observer->partitions = calloc((size_t)count, sizeof(*observer->partitions));
  observer->cached_offset = calloc((size_t)count, sizeof(int64_t));
  observer->cached_timestamp = calloc((size_t)count, sizeof(int64_t));
  observer->partition_count = 0;
  if (!observer->partitions || !observer->cached_offset ||
      !observer->cached_timestamp)
    return m3b__errstr_set(M3B_ERR_NOMEM, errstr, errstr_size, "out of memory");
  for (p = 0; p < count; p++)
    observer->cached_offset[p] = -2;
  observer->partition_count = count;
  return M3B_OK;
}

/* Waits for the result event of one admin request; its top-level error
 * becomes an m3b error with what (and the client's last error) in errstr. */
static m3b_err_t await_event(m3b_group_observer_t *observer, int timeout_ms,
                             const char *what, rd_kafka_event_t **event_out,
                             char *errstr, size_t errstr_size) {
  char last[600];
  rd_kafka_event_t *event =
      rd_kafka_queue_poll(observer->queue, timeout_ms + 1000);
  rd_kafka_resp_err_t rerr;

  *event_out = NULL;
  (void)rd_kafka_poll(observer->rk, 0); /* serves error_cb: the last error */
  if (!event) {
    m3b__kafka_last_error_describe(&observer->last, last, sizeof(last));
    return m3b__errstr_set(M3B_ERR_TIMEOUT, errstr, errstr_size,
                           "%s: no answer from Kafka within %d ms%s", what,
                           timeout_ms, last);
  }
  rerr = rd_kafka_event_error(event);
  if (rerr) {
    m3b_err_t err = m3b__kafka_err(rerr) ? m3b__kafka_err(rerr) : M3B_ERR_KAFKA;
    m3b__kafka_last_error_describe(&observer->last, last, sizeof(last));
    m3b__errstr(errstr, errstr_size, "%s: %s%s", what,
                rd_kafka_event_error_string(event), last);
    rd_kafka_event_destroy(event);
    return err;
  }
  *event_out = event;
  return M3B_OK;
}

static m3b_err_t auth_error(const m3b_group_observer_t *observer,
                            rd_kafka_resp_err_t rerr, const char *what,
                            const char *acl, char *errstr, size_t errstr_size) {
  return m3b__errstr_set(M3B_ERR_KAFKA_AUTH, errstr, errstr_size,
                         "%s of group %s on %s: %s (the principal needs %s)",
                         what, observer->group, observer->topic,
                         rd_kafka_err2str(rerr), acl);
}

/* Committed offsets of every partition (ListConsumerGroupOffsets). */
static m3b_err_t fetch_committed(m3b_group_observer_t *observer, int timeout_ms,
                                 char *errstr, size_t errstr_size) {
  rd_kafka_topic_partition_list_t *list =
      rd_kafka_topic_partition_list_new(observer->partition_count);
  rd_kafka_ListConsumerGroupOffsets_t *request;
  rd_kafka_AdminOptions_t *options = NULL;
  rd_kafka_event_t *event = NULL;
  const rd_kafka_group_result_t **groups;
  const rd_kafka_topic_partition_list_t *offsets;
  const rd_kafka_error_t *group_error;
  size_t n = 0;
  char rderr[256];
  m3b_err_t err;
  int32_t p;
  int i;

  for (p = 0; p < observer->partition_count; p++)
    rd_kafka_topic_partition_list_add(list, observer->topic, p);
  request = rd_kafka_ListConsumerGroupOffsets_new(observer->group, list);
  rd_kafka_topic_partition_list_destroy(list);
  options = rd_kafka_AdminOptions_new(
      observer->rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS);
  rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, rderr,
                                            sizeof(rderr));
  rd_kafka_ListConsumerGroupOffsets(observer->rk, &request, 1, options,
                                    observer->queue);
  rd_kafka_ListConsumerGroupOffsets_destroy(request);
  rd_kafka_AdminOptions_destroy(options);
  err = await_event(observer, timeout_ms, "committed offsets", &event, errstr,
                    errstr_size);
  if (err)
    return err;
  groups = rd_kafka_ListConsumerGroupOffsets_result_groups(
      rd_kafka_event_ListConsumerGroupOffsets_result(event), &n);
  if (n != 1) {
    err = m3b__errstr_set(M3B_ERR_KAFKA, errstr, errstr_size,
                          "committed offsets: %zu results for one group", n);
    goto out;
  }
  group_error = rd_kafka_group_result_error(groups[0]);
  if (group_error) {
    rd_kafka_resp_err_t rerr = rd_kafka_error_code(group_error);
    if (m3b__kafka_err(rerr) == M3B_ERR_KAFKA_AUTH)
      err = auth_error(observer, rerr, "committed offsets",
                       "Describe on the group and the topic", errstr,
                       errstr_size);
    else
      err = m3b__errstr_set(
          m3b__kafka_err(rerr) ? m3b__kafka_err(rerr) : M3B_ERR_KAFKA, errstr,
          errstr_size, "committed offsets of group %s: %s", observer->group,
          rd_kafka_error_string(group_error));
    goto out;
  }
  offsets = rd_kafka_group_result_partitions(groups[0]);
  for (i = 0; offsets && i < offsets->cnt; i++) {
    const rd_kafka_topic_partition_t *tp = &offsets->elems[i];
    if (tp->partition < 0 || tp->partition >= observer->partition_count ||
        strcmp(tp->topic, observer->topic) != 0)
      continue;
    if (m3b__kafka_err(tp->err) == M3B_ERR_KAFKA_AUTH) {
      err = auth_error(observer, tp->err, "committed offsets",
                       "Describe on the group and the topic", errstr,
                       errstr_size);
      goto out;
    }
    observer->partitions[tp->partition].committed =
        !tp->err && tp->offset >= 0 ? tp->offset : -1;
  }

out:
  rd_kafka_event_destroy(event);
  return err;
}

/* The group's state, member count and which partitions a member holds
 * (DescribeConsumerGroups). */
static m3b_err_t fetch_members(m3b_group_observer_t *observer, int timeout_ms,
                               char *errstr, size_t errstr_size) {
  const char *groups[1];
  rd_kafka_AdminOptions_t *options;
  rd_kafka_event_t *event = NULL;
  const rd_kafka_ConsumerGroupDescription_t **descs;
  const rd_kafka_error_t *group_error;
  size_t n = 0, m, members;
  char rderr[256];
  m3b_err_t err;

  groups[0] = observer->group;
  options = rd_kafka_AdminOptions_new(observer->rk,
                                      RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS);
  rd_kafka_AdminOptions_set_request_timeout(options, timeout_ms, rderr,
                                            sizeof(rderr));
  rd_kafka_DescribeConsumerGroups(observer->rk, groups, 1, options,
                                  observer->queue);
  rd_kafka_AdminOptions_destroy(options);
  err = await_event(observer, timeout_ms, "group members", &event, errstr,
                    errstr_size);
  if (err)
    return err;
  descs = rd_kafka_DescribeConsumerGroups_result_groups(
      rd_kafka_event_DescribeConsumerGroups_result(event), &n);
  if (n != 1) {
    err = m3b__errstr_set(M3B_ERR_KAFKA, errstr, errstr_size,
                          "group members: %zu results for one group", n);
    goto out;
  }
  group_error = rd_kafka_ConsumerGroupDescription_error(descs[0]);
  if (group_error) {
    rd_kafka_resp_err_t rerr = rd_kafka_error_code(group_error);
    if (m3b__kafka_err(rerr) == M3B_ERR_KAFKA_AUTH)
      err = auth_error(observer, rerr, "members", "Describe on the group",
                       errstr, errstr_size);
    else
      err = m3b__errstr_set(
          m3b__kafka_err(rerr) ? m3b__kafka_err(rerr) : M3B_ERR_KAFKA, errstr,
          errstr_size, "describing group %s: %s", observer->group,
          rd_kafka_error_string(group_error));
    goto out;
  }
  snprintf(observer->observed.state, sizeof(observer->observed.state), "%s",
           rd_kafka_consumer_group_state_name(
               rd_kafka_ConsumerGroupDescription_state(descs[0])));
  members = rd_kafka_ConsumerGroupDescription_member_count(descs[0]);
  observer->observed.members = members;
  for (m = 0; m < members; m++) {
    const rd_kafka_MemberDescription_t *member =
        rd_kafka_ConsumerGroupDescription_member(descs[0], m);
    const rd_kafka_MemberAssignment_t *assignment =
        member ? rd_kafka_MemberDescription_assignment(member) : NULL;
    const rd_kafka_topic_partition_list_t *parts =
        assignment ? rd_kafka_MemberAssignment_partitions(assignment) : NULL;
    int i;
    for (i = 0; parts && i < parts->cnt; i++) {
      const rd_kafka_topic_partition_t *tp = &parts->elems[i];
      if (tp->partition >= 0 && tp->partition < observer->partition_count &&
          strcmp(tp->topic, observer->topic) == 0)
        observer->partitions[tp->partition].owned = 1;
    }
  }

out:
  rd_kafka_event_destroy(event);
  return err;
}

static m3b_err_t fetch_watermarks(m3b_group_observer_t *observer,
                                  int timeout_ms, char *errstr,
                                  size_t errstr_size) {
  int32_t p;
  for (p = 0; p < observer->partition_count; p++) {
    int64_t lo = -1, hi = -1;
    rd_kafka_resp_err_t rerr = rd_kafka_query_watermark_offsets(
        observer->rk, observer->topic, p, &lo, &hi, timeout_ms);
    if (m3b__kafka_err(rerr) == M3B_ERR_KAFKA_AUTH)
      return auth_error(observer, rerr, "watermarks", "Describe on the topic",
                        errstr, errstr_size);
    if (rerr)
      return m3b__errstr_set(m3b__kafka_err(rerr), errstr, errstr_size,
                             "watermarks of %s [%d]: %s", observer->topic,
                             (int)p, rd_kafka_err2str(rerr));
    observer->partitions[p].low_watermark = lo;
    observer->partitions[p].high_watermark = hi;
  }
  return M3B_OK;
}

/* Where the group's next record is: the committed offset, or (nothing
 * committed) the start of the log. */
static int64_t next_offset(const struct m3b_observed_partition *op) {
  return op->committed >= 0 ? op->committed : op->low_watermark;
}

static int behind(const struct m3b_observed_partition *op) {
  return op->high_watermark > next_offset(op);
}

/* Marks partitions still waiting for their timestamp as failed with err. */
static void fail_waiting(m3b_group_observer_t *observer, m3b_err_t err) {
  int32_t p;
  for (p = 0; p < observer->partition_count; p++)
    if (observer->partitions[p].timestamp_err == M3B_ERR_TIMEOUT)
      observer->partitions[p].timestamp_err = err;
}

/* Records the answer for one partition: a record (its timestamp, cached
 * for its offset) or an end of partition (only transaction markers were
 * left) or an error. */
static void note_timestamp(m3b_group_observer_t *observer,
                           const rd_kafka_message_t *msg,
                           const int64_t *asked) {
  struct m3b_observed_partition *op = &observer->partitions[msg->partition];
  if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    op->timestamp_err = M3B_OK;
  } else if (msg->err) {
    op->timestamp_err =
        m3b__kafka_err(msg->err) ? m3b__kafka_err(msg->err) : M3B_ERR_KAFKA;
  } else {
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(msg, &tstype);
    op->timestamp_err = M3B_OK;
    op->next_timestamp_ms = ts >= 0 ? ts : -1;
    observer->cached_offset[msg->partition] = asked[msg->partition];
    observer->cached_timestamp[msg->partition] = op->next_timestamp_ms;
  }
}

/* Reads the record at each lagging partition's next offset whose
 * timestamp is not cached, with the simple consumer API (no group: assign()
 * would need a group.id), stopping each partition at its first answer,
 * until every one answered or timeout_ms passed. */
static void fetch_timestamps(m3b_group_observer_t *observer, int timeout_ms) {
  int64_t deadline = monotonic_ms() + timeout_ms;
  int64_t *asked = calloc((size_t)observer->partition_count, sizeof(int64_t));
  unsigned char *started = calloc((size_t)observer->partition_count, 1);
  rd_kafka_topic_t *rkt =
      rd_kafka_topic_new(observer->rk, observer->topic, NULL);
  rd_kafka_queue_t *queue = rd_kafka_queue_new(observer->rk);
  int32_t p;
  int pending = 0;

  if (!asked || !started || !rkt || !queue)
    goto out;
  for (p = 0; p < observer->partition_count; p++) {
    struct m3b_observed_partition *op = &observer->partitions[p];
    if (!behind(op))
      continue;
    if (observer->cached_offset[p] == next_offset(op)) {
      op->next_timestamp_ms = observer->cached_timestamp[p];
      continue;
    }
    asked[p] = next_offset(op);
    if (rd_kafka_consume_start_queue(rkt, p, asked[p], queue) == -1) {
      op->timestamp_err = m3b__kafka_err(rd_kafka_last_error());
      continue;
    }
    started[p] = 1;
    op->timestamp_err = M3B_ERR_TIMEOUT; /* until it answers */
    pending++;
  }
  while (pending > 0 && monotonic_ms() < deadline) {
    rd_kafka_message_t *msg = rd_kafka_consume_queue(queue, 100);
    if (!msg)
      continue;
    if (msg->err && !msg->rkt) { /* a client-level error */
      if (m3b__kafka_err(msg->err) == M3B_ERR_KAFKA_AUTH) {
        fail_waiting(observer, M3B_ERR_KAFKA_AUTH);
        pending = 0;
      }
    } else if (msg->partition >= 0 &&
               msg->partition < observer->partition_count &&
               started[msg->partition] &&
               observer->partitions[msg->partition].timestamp_err ==
                   M3B_ERR_TIMEOUT &&
               (msg->err || msg->offset >= asked[msg->partition])) {
      note_timestamp(observer, msg, asked);
      rd_kafka_consume_stop(rkt, msg->partition);
      started[msg->partition] = 0;
      pending--;
    }
    rd_kafka_message_destroy(msg);
  }

out:
  for (p = 0; started && p < observer->partition_count; p++)
    if (started[p])
      rd_kafka_consume_stop(rkt, p);
  fail_waiting(observer, M3B_ERR_TIMEOUT);
  if (queue)
    rd_kafka_queue_destroy(queue);
  if (rkt)
    rd_kafka_topic_destroy(rkt);
  free(asked);
  free(started);
}

/* One attempt at every request but the timestamps. */
static m3b_err_t observe_once(m3b_group_observer_t *observer, int timeout_ms,
                              char *errstr, size_t errstr_size) {
  int32_t count = 0, p;
  m3b_err_t err;

  err = m3b__kafka_partition_count(observer->rk, &observer->last,
                                   observer->topic, MAX_PARTITIONS, timeout_ms,
                                   &count, errstr, errstr_size);
  if (err == M3B_ERR_KAFKA_AUTH)
    m3b__errstr(errstr, errstr_size,
                "metadata of %s: not authorized (the principal needs Describe "
                "on the topic; Kafka says the same of a topic that does not "
                "exist and that it may not describe)",
                observer->topic);
  if (!err)
    err = size_partitions(observer, count, errstr, errstr_size);
  if (err)
    return err;
  for (p = 0; p < count; p++) {
    struct m3b_observed_partition *op = &observer->partitions[p];
    memset(op, 0, sizeof(*op));
    op->partition = p;
    op->committed = -1;
    op->next_timestamp_ms = -1;
  }
  memset(&observer->observed, 0, sizeof(observer->observed));
  err = fetch_members(observer, timeout_ms, errstr, errstr_size);
  if (!err)
    err = fetch_committed(observer, timeout_ms, errstr, errstr_size);
  if (!err)
    err = fetch_watermarks(observer, timeout_ms, errstr, errstr_size);
  return err;
}

m3b_err_t m3b_group_observe(m3b_group_observer_t *observer, unsigned flags,
                            int timeout_ms,
                            const struct m3b_observed_group **group_out,
                            char *errstr, size_t errstr_size) {
  int64_t deadline = monotonic_ms() + timeout_ms;
  m3b_err_t err;

  *group_out = NULL;
  /* transient answers (a coordinator moving or still being created: a
   * fresh cluster's offsets topic) are retried until timeout_ms */
  for (;;) {
    struct timespec pause = {0, 200 * 1000000L};
    err = observe_once(observer, timeout_ms, errstr, errstr_size);
    if (!err || !m3b_err_is_retriable(err) || monotonic_ms() >= deadline)
      break;
    nanosleep(&pause, NULL);
  }
  if (err)
    return err;
  if (flags & M3B_OBSERVE_TIMESTAMPS)
    fetch_timestamps(observer, timeout_ms);
  observer->observed.partition_count = (size_t)observer->partition_count;
  observer->observed.partitions = observer->partitions;
  *group_out = &observer->observed;
  return M3B_OK;
}
