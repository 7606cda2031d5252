/*
 * listener_metrics.c - the listener's /metrics: events by phase and reason,
 * latency histograms, per-partition lag in messages and seconds under
 * kafka-lag-exporter's names, and the lag verdicts of <m3b/lag_verdict.h>
 * over the lag samples taken at each heartbeat (docs/metrics.md).
 */
#include <inttypes.h>
#include <stdio.h>

#include "listener.h"

#define MODULE "listener"

m3b_err_t listener_declare_metrics(struct listener *listener) {
  static const struct {
    const char *name;
    m3b_metric_type_t type;
    const char *help;
  } families[] = {
      {METRIC_LAG, M3B_METRIC_GAUGE,
       "Messages of the partition not yet committed by the group."},
      {METRIC_LAG_SECONDS, M3B_METRIC_GAUGE,
       "Seconds since the Kafka timestamp of the partition's oldest record "
       "not yet finished; 0 when caught up."},
      {METRIC_COMMITTED, M3B_METRIC_GAUGE,
       "The group's committed offset of the partition."},
      {METRIC_HIGH_WATERMARK, M3B_METRIC_GAUGE,
       "The partition's high watermark at the last fetch."},
      {METRIC_EVENTS, M3B_METRIC_COUNTER,
       "Records of the desired topic finished, by phase and reason."},
      {METRIC_APPLY_LATENCY, M3B_METRIC_HISTOGRAM,
       "Time spent in apiserver writes for one applied or deleted object."},
      {METRIC_PUBLISH_TO_APPLIED, M3B_METRIC_HISTOGRAM,
       "From the record's Kafka timestamp to the object being applied."},
      {METRIC_IN_FLIGHT, M3B_METRIC_GAUGE,
       "Records read and not yet finished."},
      {METRIC_PAUSED, M3B_METRIC_GAUGE,
       "Assigned partitions paused (queue full or a record retrying)."},
      {METRIC_RETRIES, M3B_METRIC_COUNTER,
       "Retries of records after transient failures."},
      {METRIC_RESYNC_RUNS, M3B_METRIC_COUNTER,
       "Status resyncs of every managed object (one per start)."},
      {METRIC_LAG_VERDICT, M3B_METRIC_GAUGE,
       "Lag verdict of the partition: 0 OK, 1 WARN, 2 STALL, 3 STOP, "
       "4 REWIND (docs/metrics.md)."},
      {METRIC_GROUP_LAG_VERDICT, M3B_METRIC_GAUGE,
       "Worst lag verdict of the partitions this listener owns."},
      {METRIC_RETRY_BACKLOG, M3B_METRIC_GAUGE,
       "Records waiting for a retry after a transient failure."},
  };
  char group[300], topic[600];
  size_t i;
  m3b_err_t err;

  for (i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
    err = m3b_metrics_declare(listener->metrics, families[i].name,
                              families[i].type, families[i].help, NULL, 0);
    if (err)
      return err;
  }
  err = m3b_metrics_escape(listener->group, group, sizeof(group));
  if (!err)
    err = m3b_metrics_escape(listener->desired_topic, topic, sizeof(topic));
  if (err)
    return err;
  snprintf(listener->partition_labels, sizeof(listener->partition_labels),
           "group=\"%s\",topic=\"%s\",partition=", group, topic);
  snprintf(listener->group_labels, sizeof(listener->group_labels),
           "group=\"%s\",topic=\"%s\"", group, topic);
  /* series that exist from the start, so dashboards show 0, not nothing */
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_IN_FLIGHT, NULL, 0);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_PAUSED, NULL, 0);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_RETRIES, NULL, 0);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_RESYNC_RUNS, NULL, 0);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_RETRY_BACKLOG, NULL, 0);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_GROUP_LAG_VERDICT,
                              listener->group_labels, M3B_VERDICT_OK);
  return M3B_OK;
}

/* Exports one finished record: its phase and reason, and for records that
 * reached the apiserver the apply and the end-to-end latency. */
static void observe_outcome(struct listener *listener, const struct job *job,
                            const struct m3b_outcome *out) {
  char labels[MAX_LABELS];
  const char *phase = out->forget ? "FORGOTTEN" : m3b_phase_name(out->phase);
  const char *reason = out->err ? m3b_err_name(out->err) : "OK";

  /* phase and reason names are identifiers: nothing to escape */
  snprintf(labels, sizeof(labels), "phase=\"%s\",reason=\"%s\"", phase, reason);
  (void)m3b_metrics_counter_add(listener->metrics, METRIC_EVENTS, labels, 1);
  if (out->forget || out->noop ||
      (out->phase != M3B_PHASE_APPLIED && out->phase != M3B_PHASE_DELETED))
    return;
  (void)m3b_metrics_histogram_observe(listener->metrics, METRIC_APPLY_LATENCY,
                                      NULL,
                                      (double)out->apply_latency_ms / 1000.0);
  if (job->timestamp_ms > 0 && out->finished_at_ms >= job->timestamp_ms)
    (void)m3b_metrics_histogram_observe(
        listener->metrics, METRIC_PUBLISH_TO_APPLIED, NULL,
        (double)(out->finished_at_ms - job->timestamp_ms) / 1000.0);
}

void listener_count_outcome(struct listener *listener, const struct job *job,
                            const struct m3b_outcome *out) {
  struct counters *c = &listener->counters;
  pthread_mutex_lock(&listener->lock);
  if (out->forget)
    c->forgotten++;
  else if (out->phase == M3B_PHASE_APPLIED)
    c->applied++;
  else if (out->phase == M3B_PHASE_DELETED)
    c->deleted++;
  else if (out->phase == M3B_PHASE_STALE_SKIPPED)
    c->stale++;
  else if (out->phase == M3B_PHASE_REJECTED)
    c->rejected++;
  else
    c->failed++;
  if (out->err && (size_t)out->err < M3B_ERR__COUNT &&
      (out->phase == M3B_PHASE_REJECTED || out->phase == M3B_PHASE_FAILED))
    c->reasons[out->err]++;
  pthread_mutex_unlock(&listener->lock);
  observe_outcome(listener, job, out);
  listener_ui_record_outcome(listener, job, out);
}

/* A revoked partition's series stop being exported: another replica
 * reports it now. */
void listener_remove_partition_series(struct listener *listener,
                                      int32_t partition) {
  static const char *const families[] = {
      METRIC_LAG, METRIC_LAG_SECONDS, METRIC_COMMITTED, METRIC_HIGH_WATERMARK,
      METRIC_LAG_VERDICT};
  char match[64];
  size_t i;
  /* the closing quote keeps partition="1" from matching partition="10" */
  snprintf(match, sizeof(match), "partition=\"%d\"", (int)partition);
  for (i = 0; i < sizeof(families) / sizeof(families[0]); i++)
    m3b_metrics_remove_matching(listener->metrics, families[i], match);
  listener_ui_forget_partition(listener, partition);
}

/* Seconds since the Kafka timestamp of the partition's oldest record not
 * yet finished: the head of its in-flight window, else its first held
 * record, else (records not fetched yet) the last finished record's, which
 * overstates the age by at most the gap to the next record. Under
 * listener->lock, on the main thread. */
static double lag_seconds(struct listener *listener, int32_t partition,
                          int64_t lag_messages, int64_t high_watermark,
                          int64_t now) {
  const struct partition *p = &listener->partitions[partition];
  int64_t oldest = 0, position;

  if (lag_messages <= 0)
    return 0;
  if (p->count && p->timestamps)
    oldest = p->timestamps[p->head];
  else if (p->held_head)
    oldest = p->held_head->timestamp_ms;
  else {
    position = m3b_consumer_position(listener->consumer, partition);
    if (position >= 0 && position < high_watermark)
      oldest = p->last_timestamp_ms;
  }
  return oldest > 0 && now > oldest ? (double)(now - oldest) / 1000.0 : 0;
}

/* Adds a lag sample to the partition's verdict window (created at its first
 * sample) and returns the verdict now. The listener owns the partition, so
 * it is never STOP here: a stuck offset is STALL. Main thread. */
static m3b_verdict_t partition_verdict(struct listener *listener,
                                       int32_t partition,
                                       const struct m3b_partition_offsets *o) {
  struct partition *p = &listener->partitions[partition];
  struct m3b_lag_sample sample;
  char errstr[128];
  int64_t mono = listener_now_ms(CLOCK_MONOTONIC);

  if (!p->lag_window) {
    p->lag_window = m3b_lag_window_new(listener->verdict_window_ms,
                                       M3B_LAG_WINDOW_DEFAULT_MIN_SAMPLES,
                                       errstr, sizeof(errstr));
    if (!p->lag_window)
      return M3B_VERDICT_OK; /* out of memory: no verdict, nothing else */
  }
  sample.time_ms = mono;
  sample.committed = o->committed;
  sample.high_watermark = o->high_watermark;
  sample.flags = M3B_LAG_SAMPLE_OWNED;
  if (o->high_watermark >= 0) /* unknown before the first fetch */
    (void)m3b_lag_window_add(p->lag_window, &sample);
  return m3b_lag_window_verdict(p->lag_window, mono);
}

/* Exports one partition's offsets, lag and verdict. Under listener->lock. */
static void export_lag(struct listener *listener,
                       const struct m3b_partition_lag *lag, double seconds,
                       m3b_verdict_t verdict) {
  char labels[MAX_LABELS + 16]; /* partition_labels and the number */
  snprintf(labels, sizeof(labels), "%s\"%d\"", listener->partition_labels,
           (int)lag->partition);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_LAG, labels,
                              (double)lag->lag_messages);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_LAG_SECONDS, labels,
                              seconds);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_COMMITTED, labels,
                              (double)lag->committed_offset);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_HIGH_WATERMARK, labels,
                              (double)lag->high_watermark);
  (void)m3b_metrics_gauge_set(listener->metrics, METRIC_LAG_VERDICT, labels,
                              (double)verdict);
}

/* Fills listener->lags with the assigned partitions' offsets and lag,
 * exports them, and returns how many there are. A broker answer counts as
 * Kafka being reachable for /readyz, no answer (the committed offsets not
 * read within 2 s) as unreachable. Main thread. */
size_t listener_collect_lags(struct listener *listener, int64_t now,
                             enum m3b_listener_state *state) {
  char errstr[512];
  size_t count = 0, i;
  m3b_verdict_t worst = M3B_VERDICT_OK;
  m3b_err_t err;

  err = m3b_consumer_offsets(listener->consumer, listener->offsets,
                             MAX_PARTITIONS, &count, 2000, errstr,
                             sizeof(errstr));
  if (err) {
    /* no answer: keep the last exported numbers rather than export
     * committed offsets of -1 */
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "heartbeat: %s (%s)", errstr,
            m3b_err_name(err));
    if (err == M3B_ERR_KAFKA_TRANSPORT || err == M3B_ERR_KAFKA_AUTH)
      listener_note_kafka_lost(listener, err, errstr);
    else
      listener_note_kafka_error(listener, err, errstr);
    count = 0;
  } else if (count > 0) {
    listener_note_kafka_ok(listener);
  }
  pthread_mutex_lock(&listener->lock);
  listener->refresh_lag = 0;
  for (i = 0; i < count; i++) {
    const struct m3b_partition_offsets *o = &listener->offsets[i];
    struct m3b_partition_lag *lag = &listener->lags[i];
    m3b_verdict_t verdict;
    int valid = o->partition >= 0 && o->partition < MAX_PARTITIONS;
    int64_t last_ts =
        valid ? listener->partitions[o->partition].last_timestamp_ms : 0;
    lag->topic = listener->desired_topic;
    lag->partition = o->partition;
    lag->committed_offset = o->committed;
    lag->high_watermark = o->high_watermark;
    lag->lag_messages = o->high_watermark >= 0 && o->committed >= 0
                            ? o->high_watermark - o->committed
                            : (o->high_watermark >= 0 ? o->high_watermark : 0);
    if (lag->lag_messages < 0)
      lag->lag_messages = 0;
    lag->lag_ms = lag->lag_messages > 0 && last_ts > 0 && now > last_ts
                      ? now - last_ts
                      : 0;
    if (!valid)
      continue;
    verdict = partition_verdict(listener, o->partition, o);
    if (verdict > worst)
      worst = verdict;
    export_lag(listener, lag,
               lag_seconds(listener, o->partition, lag->lag_messages,
                           o->high_watermark, now),
               verdict);
    if (state && listener->partitions[o->partition].retrying)
      *state = M3B_LISTENER_DEGRADED;
  }
  pthread_mutex_unlock(&listener->lock);
  /* after a failed broker query count is 0 and nothing is known: the last
   * group verdict stays */
  if (!err)
    (void)m3b_metrics_gauge_set(listener->metrics, METRIC_GROUP_LAG_VERDICT,
                                listener->group_labels, (double)worst);
  listener_ui_record_lags(listener, count, now); /* reads the gauges back */
  return count;
}
