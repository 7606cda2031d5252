/*
 * listener_ui.c - feeds /ui (<m3b/ui.h>) from the listener.
 *
 * Lag samples are read back from the metrics registry right after
 * listener_collect_lags set the gauges, rather than recomputed: the page
 * then shows exactly what /metrics exports (lag, lag seconds, offsets and
 * the verdict gauges, whoever sets them), sampled at the same moments.
 * Outcomes are recorded next to m3bridge_events_total, with the same phase
 * and reason names.
 */
#include <stdio.h>
#include <string.h>

#include <m3b/cli.h>

#include "listener.h"

#define MODULE "listener"
#define UI_SPAN_MS (3600LL * 1000) /* the page shows the last hour */

m3b_err_t listener_ui_start(struct listener *listener, m3b_http_t *http,
                            char *errstr, size_t errstr_size) {
  struct m3b_ui_options options;
  m3b_err_t err;

  memset(&options, 0, sizeof(options));
  options.group = listener->group;
  options.topic = listener->desired_topic;
  options.listener_id = listener->listener_id;
  options.interval_ms =
      m3b_cli_int(listener->config, "ui.sample_interval_ms", 10000);
  options.span_ms = UI_SPAN_MS;
  options.recent_max =
      (size_t)m3b_cli_int(listener->config, "ui.recent_outcomes", 100);
  listener->ui = m3b_ui_new(&options, errstr, errstr_size);
  if (!listener->ui)
    return M3B_ERR_CONFIG;
  err = m3b_ui_route(listener->ui, http);
  if (err)
    snprintf(errstr, errstr_size, "cannot add the /ui routes: %s",
             m3b_err_str(err));
  return err;
}

/* A gauge's value, or fallback when the series is not exported. */
static double gauge(struct listener *listener, const char *name,
                    const char *labels, double fallback) {
  double value;
  if (m3b_metrics_value(listener->metrics, name, labels, &value))
    return fallback;
  return value;
}

void listener_ui_record_lags(struct listener *listener, size_t count,
                             int64_t now) {
  char labels[MAX_LABELS + 16];
  size_t i;

  if (!listener->ui)
    return;
  for (i = 0; i < count; i++) {
    struct m3b_lag_point point;
    int32_t partition = listener->lags[i].partition;
    double messages;

    if (partition < 0 || partition >= MAX_PARTITIONS)
      continue;
    snprintf(labels, sizeof(labels), "%s\"%d\"", listener->partition_labels,
             (int)partition);
    if (m3b_metrics_value(listener->metrics, METRIC_LAG, labels, &messages))
      continue; /* not exported: nothing to show either */
    point.at_ms = now;
    point.lag_messages = (int64_t)messages;
    point.lag_seconds = gauge(listener, METRIC_LAG_SECONDS, labels, 0);
    point.committed_offset =
        (int64_t)gauge(listener, METRIC_COMMITTED, labels, -1);
    point.high_watermark =
        (int64_t)gauge(listener, METRIC_HIGH_WATERMARK, labels, -1);
    point.verdict = (int)gauge(listener, METRIC_LAG_VERDICT, labels, -1);
    if (m3b_ui_record_lag(listener->ui, partition, &point))
      M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
              "/ui: cannot keep the lag of partition %d (out of memory)",
              (int)partition);
  }
  /* a verdict series not exported (yet) reads as "not evaluated" */
  m3b_ui_set_group_verdict(listener->ui,
                           (int)gauge(listener, METRIC_GROUP_LAG_VERDICT,
                                      listener->group_labels, -1));
  m3b_ui_tick(listener->ui, now);
}

void listener_ui_record_outcome(struct listener *listener,
                                const struct job *job,
                                const struct m3b_outcome *out) {
  struct m3b_ui_outcome outcome;

  if (!listener->ui)
    return;
  outcome.at_ms = out->finished_at_ms > 0 ? out->finished_at_ms
                                          : listener_now_ms(CLOCK_REALTIME);
  outcome.key = out->key;
  /* the names of m3bridge_events_total's labels */
  outcome.phase = out->forget ? "FORGOTTEN" : m3b_phase_name(out->phase);
  outcome.reason = out->err ? m3b_err_name(out->err) : "OK";
  outcome.message = out->message;
  outcome.generation = out->generation;
  outcome.partition = job->partition;
  outcome.offset = job->offset;
  m3b_ui_record_outcome(listener->ui, &outcome);
}

void listener_ui_forget_partition(struct listener *listener,
                                  int32_t partition) {
  if (listener->ui)
    m3b_ui_forget_partition(listener->ui, partition);
}
