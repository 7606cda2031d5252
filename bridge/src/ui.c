/*
 * ui.c - the state and the routes behind /ui (<m3b/ui.h>).
 *
 * The page itself is bridge/ui/ui.html, embedded at build time
 * (cmake/embed.cmake) as m3b__ui_html. The JSON is written by hand into a
 * bounded m3b_buf rather than built as a jansson tree: an hour of history
 * for many partitions is a long array of small numbers, and streaming it
 * keeps memory to the output itself. Strings from the outside (object
 * keys, messages) are escaped here and invalid UTF-8 becomes U+FFFD, so
 * the document always parses; the page puts them in the DOM as text only.
 */
#include <m3b/ui.h>

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <m3b/lag_verdict.h>
#include <m3b/ring.h>

#include "errstr.h"
#include "ui_embedded.h"
#include "utf8.h"

#define JSON_TYPE "application/json; charset=utf-8"
#define HTML_TYPE "text/html; charset=utf-8"
#define TEXT_TYPE "text/plain; charset=utf-8"

struct outcome_item {
  int64_t at_ms;
  int64_t generation;
  int64_t offset;
  int32_t partition;
  char key[M3B_UI_KEY_MAX + 1];
  char phase[M3B_UI_NAME_MAX + 1];
  char reason[M3B_UI_NAME_MAX + 1];
  char message[M3B_UI_MESSAGE_MAX + 1];
};

/* Counters sampled for the throughput chart. */
struct count_point {
  int64_t at_ms;
  uint64_t applied;  /* APPLIED + DELETED so far */
  uint64_t finished; /* every finished record so far */
};

struct total {
  char phase[M3B_UI_NAME_MAX + 1];
  char reason[M3B_UI_NAME_MAX + 1];
  uint64_t count;
};

struct m3b_ui {
  char group[256];
  char topic[256];
  char listener_id[256];
  int64_t interval_ms;
  int64_t span_ms;

  pthread_mutex_t lock; /* everything below */
  m3b_lag_history_t *lag;
  m3b_ring_t *counts;   /* struct count_point */
  m3b_ring_t *outcomes; /* struct outcome_item */
  struct total totals[M3B_UI_TOTALS_MAX];
  size_t total_count;
  uint64_t applied, finished;
  int group_verdict;
};

/* ---- strings --------------------------------------------------------------
 */

/* Copies src into dst (size bytes), cutting at a UTF-8 boundary. */
static void copy_cut(char *dst, size_t size, const char *src) {
  size_t len = src ? strlen(src) : 0;
  if (len >= size) {
    len = size - 1;
    /* do not end inside a multi-byte sequence */
    while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80)
      len--;
  }
  if (len)
    memcpy(dst, src, len);
  dst[len] = 0;
}

/* Appends s as a JSON string: quotes, backslashes and control characters
 * escaped, invalid UTF-8 replaced by U+FFFD. */
static m3b_err_t json_string(struct m3b_buf *out, const char *s) {
  const uint8_t *p = (const uint8_t *)(s ? s : "");
  size_t len = strlen((const char *)p), pos = 0, valid, i;
  m3b_err_t err;

  err = m3b_buf_append(out, "\"", 1);
  while (!err && pos < len) {
    valid = m3b__utf8_valid_prefix(p + pos, len - pos);
    for (i = pos; !err && i < pos + valid; i++) {
      uint8_t c = p[i];
      if (c == '"' || c == '\\')
        err = m3b_buf_appendf(out, "\\%c", c);
      else if (c < 0x20)
        err = m3b_buf_appendf(out, "\\u%04x", c);
      else
        err = m3b_buf_append(out, &c, 1);
    }
    pos += valid;
    if (!err && pos < len) {
      err = m3b_buf_append_str(out, "\\ufffd");
      pos++;
    }
  }
  if (!err)
    err = m3b_buf_append(out, "\"", 1);
  return err;
}

/* The shortest of %.15g and %.17g that reads back as value (what /metrics
 * prints, so the numbers compare equal); null when not finite. */
static m3b_err_t json_double(struct m3b_buf *out, double value) {
  char text[32];
  if (!isfinite(value))
    return m3b_buf_append_str(out, "null");
  snprintf(text, sizeof(text), "%.15g", value);
  if (strtod(text, NULL) != value)
    snprintf(text, sizeof(text), "%.17g", value);
  return m3b_buf_append_str(out, text);
}

/* NULL for "not evaluated" (-1) and anything that is no verdict. */
static const char *verdict_name(int verdict) {
  if (verdict < M3B_VERDICT_OK || verdict > M3B_VERDICT_REWIND)
    return NULL;
  return m3b_verdict_name((m3b_verdict_t)verdict);
}

static m3b_err_t json_verdict(struct m3b_buf *out, int verdict) {
  const char *name = verdict_name(verdict);
  return name ? json_string(out, name) : m3b_buf_append_str(out, "null");
}

/* ---- life cycle -----------------------------------------------------------
 */

m3b_ui_t *m3b_ui_new(const struct m3b_ui_options *options, char *errstr,
                     size_t errstr_size) {
  m3b_ui_t *ui;
  size_t points;

  assert(options);
  if (options->interval_ms < 1 || options->span_ms < options->interval_ms ||
      options->recent_max < 1 || options->recent_max > M3B_UI_RECENT_MAX) {
    m3b__errstr(errstr, errstr_size,
                "ui: interval %lld ms, span %lld ms, %zu recent outcomes: "
                "out of range",
                (long long)options->interval_ms, (long long)options->span_ms,
                options->recent_max);
    return NULL;
  }
  ui = calloc(1, sizeof(*ui));
  if (!ui || pthread_mutex_init(&ui->lock, NULL) != 0) {
    free(ui);
    m3b__errstr(errstr, errstr_size, "ui: out of memory");
    return NULL;
  }
  copy_cut(ui->group, sizeof(ui->group), options->group);
  copy_cut(ui->topic, sizeof(ui->topic), options->topic);
  copy_cut(ui->listener_id, sizeof(ui->listener_id), options->listener_id);
  ui->interval_ms = options->interval_ms;
  ui->span_ms = options->span_ms;
  ui->group_verdict = -1;
  ui->lag = m3b_lag_history_new(options->interval_ms, options->span_ms);
  points = ui->lag ? m3b_lag_history_capacity(ui->lag) : 1;
  /* one more point than the lag history: rates are differences */
  ui->counts = m3b_ring_new(sizeof(struct count_point), points + 1);
  ui->outcomes = m3b_ring_new(sizeof(struct outcome_item), options->recent_max);
  if (!ui->lag || !ui->counts || !ui->outcomes) {
    m3b_ui_destroy(ui);
    m3b__errstr(errstr, errstr_size, "ui: out of memory");
    return NULL;
  }
  return ui;
}

void m3b_ui_destroy(m3b_ui_t *ui) {
  if (!ui)
    return;
  m3b_lag_history_destroy(ui->lag);
  m3b_ring_destroy(ui->counts);
  m3b_ring_destroy(ui->outcomes);
  pthread_mutex_destroy(&ui->lock);
  free(ui);
}

/* ---- recording ------------------------------------------------------------
 */

m3b_err_t m3b_ui_record_lag(m3b_ui_t *ui, int32_t partition,
                            const struct m3b_lag_point *point) {
  m3b_err_t err;
  assert(ui && point);
  pthread_mutex_lock(&ui->lock);
  err = m3b_lag_history_record(ui->lag, partition, point);
  pthread_mutex_unlock(&ui->lock);
  return err;
}

void m3b_ui_forget_partition(m3b_ui_t *ui, int32_t partition) {
  assert(ui);
  pthread_mutex_lock(&ui->lock);
  m3b_lag_history_forget(ui->lag, partition);
  pthread_mutex_unlock(&ui->lock);
}

void m3b_ui_set_group_verdict(m3b_ui_t *ui, int verdict) {
  assert(ui);
  pthread_mutex_lock(&ui->lock);
  ui->group_verdict = verdict;
  pthread_mutex_unlock(&ui->lock);
}

/* Under ui->lock. The last slot doubles as "OTHER" once the table is full
 * (phases and reasons are enum names, so this takes a bug to reach). */
static void count_total(m3b_ui_t *ui, const char *phase, const char *reason) {
  struct total *t;
  size_t i;
  for (i = 0; i < ui->total_count; i++) {
    t = &ui->totals[i];
    if (strcmp(t->phase, phase) == 0 && strcmp(t->reason, reason) == 0) {
      t->count++;
      return;
    }
  }
  if (ui->total_count == M3B_UI_TOTALS_MAX) {
    t = &ui->totals[M3B_UI_TOTALS_MAX - 1];
    copy_cut(t->phase, sizeof(t->phase), "OTHER");
    copy_cut(t->reason, sizeof(t->reason), "OTHER");
    t->count++;
    return;
  }
  t = &ui->totals[ui->total_count++];
  copy_cut(t->phase, sizeof(t->phase), phase);
  copy_cut(t->reason, sizeof(t->reason), reason);
  t->count = 1;
}

void m3b_ui_record_outcome(m3b_ui_t *ui, const struct m3b_ui_outcome *outcome) {
  struct outcome_item item;
  const char *phase, *reason;

  assert(ui && outcome);
  phase = outcome->phase ? outcome->phase : "";
  reason = outcome->reason ? outcome->reason : "";
  memset(&item, 0, sizeof(item));
  item.at_ms = outcome->at_ms;
  item.generation = outcome->generation;
  item.offset = outcome->offset;
  item.partition = outcome->partition;
  copy_cut(item.key, sizeof(item.key), outcome->key);
  copy_cut(item.phase, sizeof(item.phase), phase);
  copy_cut(item.reason, sizeof(item.reason), reason);
  copy_cut(item.message, sizeof(item.message), outcome->message);

  pthread_mutex_lock(&ui->lock);
  m3b_ring_push(ui->outcomes, &item);
  count_total(ui, item.phase, item.reason);
  ui->finished++;
  if (strcmp(phase, "APPLIED") == 0 || strcmp(phase, "DELETED") == 0)
    ui->applied++;
  pthread_mutex_unlock(&ui->lock);
}

void m3b_ui_tick(m3b_ui_t *ui, int64_t now_ms) {
  struct count_point point, *newest;
  assert(ui);
  pthread_mutex_lock(&ui->lock);
  point.at_ms = now_ms;
  point.applied = ui->applied;
  point.finished = ui->finished;
  newest = m3b_ring_newest(ui->counts);
  /* same bucketing as the lag history: one point per interval */
  if (newest && now_ms / ui->interval_ms <= newest->at_ms / ui->interval_ms)
    *newest = point;
  else
    m3b_ring_push(ui->counts, &point);
  pthread_mutex_unlock(&ui->lock);
}

/* ---- rendering ------------------------------------------------------------
 */

static m3b_err_t render_partitions(m3b_ui_t *ui, int64_t since_ms,
                                   struct m3b_buf *out) {
  int32_t parts[M3B_LAG_HISTORY_MAX_PARTITIONS];
  size_t n, i, j, count;
  const struct m3b_lag_point *p, *latest;
  const char *sep;
  m3b_err_t err;

  n = m3b_lag_history_partitions(ui->lag, parts,
                                 M3B_LAG_HISTORY_MAX_PARTITIONS);
  err = m3b_buf_append_str(out, "\"partitions\":[");
  for (i = 0; !err && i < n; i++) {
    count = m3b_lag_history_count(ui->lag, parts[i]);
    latest = m3b_lag_history_at(ui->lag, parts[i], count - 1);
    err = m3b_buf_appendf(out,
                          "%s{\"partition\":%d,\"at_ms\":%lld,\"lag\":%lld,"
                          "\"lag_seconds\":",
                          i ? "," : "", (int)parts[i], (long long)latest->at_ms,
                          (long long)latest->lag_messages);
    if (!err)
      err = json_double(out, latest->lag_seconds);
    if (!err)
      err = m3b_buf_appendf(out,
                            ",\"committed\":%lld,\"high_watermark\":%lld,"
                            "\"verdict\":",
                            (long long)latest->committed_offset,
                            (long long)latest->high_watermark);
    if (!err)
      err = json_verdict(out, latest->verdict);
    if (!err)
      err = m3b_buf_append_str(out, ",\"history\":[");
    sep = "";
    for (j = 0; !err && j < count; j++) {
      p = m3b_lag_history_at(ui->lag, parts[i], j);
      if (p->at_ms < since_ms)
        continue;
      err = m3b_buf_appendf(out, "%s[%lld,%lld,", sep, (long long)p->at_ms,
                            (long long)p->lag_messages);
      if (!err)
        err = json_double(out, p->lag_seconds);
      if (!err)
        err = m3b_buf_appendf(out, ",%d]", p->verdict);
      sep = ",";
    }
    if (!err)
      err = m3b_buf_append_str(out, "]}");
  }
  if (!err)
    err = m3b_buf_append_str(out, "]");
  return err;
}

/* [time, applied/s, finished/s] between consecutive count points. */
static m3b_err_t render_throughput(m3b_ui_t *ui, int64_t since_ms,
                                   struct m3b_buf *out) {
  const struct count_point *prev, *cur;
  size_t i, count = m3b_ring_count(ui->counts);
  const char *sep = "";
  double seconds;
  m3b_err_t err;

  err = m3b_buf_append_str(out, "\"throughput\":[");
  for (i = 1; !err && i < count; i++) {
    prev = m3b_ring_at(ui->counts, i - 1);
    cur = m3b_ring_at(ui->counts, i);
    if (cur->at_ms < since_ms || cur->at_ms <= prev->at_ms)
      continue;
    seconds = (double)(cur->at_ms - prev->at_ms) / 1000.0;
    err = m3b_buf_appendf(out, "%s[%lld,", sep, (long long)cur->at_ms);
    if (!err)
      err = json_double(out, (double)(cur->applied - prev->applied) / seconds);
    if (!err)
      err = m3b_buf_append(out, ",", 1);
    if (!err)
      err =
          json_double(out, (double)(cur->finished - prev->finished) / seconds);
    if (!err)
      err = m3b_buf_append(out, "]", 1);
    sep = ",";
  }
  if (!err)
    err = m3b_buf_append(out, "]", 1);
  return err;
}

static m3b_err_t render_totals(m3b_ui_t *ui, struct m3b_buf *out) {
  size_t i;
  m3b_err_t err;

  err = m3b_buf_appendf(out,
                        "\"applied_total\":%llu,\"finished_total\":%llu,"
                        "\"totals\":[",
                        (unsigned long long)ui->applied,
                        (unsigned long long)ui->finished);
  for (i = 0; !err && i < ui->total_count; i++) {
    err = m3b_buf_append_str(out, i ? ",{\"phase\":" : "{\"phase\":");
    if (!err)
      err = json_string(out, ui->totals[i].phase);
    if (!err)
      err = m3b_buf_append_str(out, ",\"reason\":");
    if (!err)
      err = json_string(out, ui->totals[i].reason);
    if (!err)
      err = m3b_buf_appendf(out, ",\"count\":%llu}",
                            (unsigned long long)ui->totals[i].count);
  }
  if (!err)
    err = m3b_buf_append(out, "]", 1);
  return err;
}

/* Newest first. */
static m3b_err_t render_recent(m3b_ui_t *ui, struct m3b_buf *out) {
  size_t i, count = m3b_ring_count(ui->outcomes);
  const struct outcome_item *item;
  m3b_err_t err;

  err = m3b_buf_append_str(out, "\"recent\":[");
  for (i = 0; !err && i < count; i++) {
    item = m3b_ring_at(ui->outcomes, count - 1 - i);
    err = m3b_buf_appendf(out, "%s{\"at_ms\":%lld,\"key\":", i ? "," : "",
                          (long long)item->at_ms);
    if (!err)
      err = json_string(out, item->key);
    if (!err)
      err = m3b_buf_append_str(out, ",\"phase\":");
    if (!err)
      err = json_string(out, item->phase);
    if (!err)
      err = m3b_buf_append_str(out, ",\"reason\":");
    if (!err)
      err = json_string(out, item->reason);
    if (!err)
      err = m3b_buf_append_str(out, ",\"message\":");
    if (!err)
      err = json_string(out, item->message);
    if (!err)
      err = m3b_buf_appendf(
          out, ",\"generation\":%lld,\"partition\":%d,\"offset\":%lld}",
          (long long)item->generation, (int)item->partition,
          (long long)item->offset);
  }
  if (!err)
    err = m3b_buf_append(out, "]", 1);
  return err;
}

m3b_err_t m3b_ui_render_json(m3b_ui_t *ui, int64_t now_ms,
                             struct m3b_buf *out) {
  int64_t since_ms;
  m3b_err_t err;

  assert(ui && out);
  since_ms = now_ms - ui->span_ms;
  pthread_mutex_lock(&ui->lock);
  err = m3b_buf_append_str(out, "{\"listener_id\":");
  if (!err)
    err = json_string(out, ui->listener_id);
  if (!err)
    err = m3b_buf_append_str(out, ",\"group\":");
  if (!err)
    err = json_string(out, ui->group);
  if (!err)
    err = m3b_buf_append_str(out, ",\"topic\":");
  if (!err)
    err = json_string(out, ui->topic);
  if (!err)
    err = m3b_buf_appendf(out,
                          ",\"now_ms\":%lld,\"interval_ms\":%lld,"
                          "\"span_ms\":%lld,\"group_verdict\":",
                          (long long)now_ms, (long long)ui->interval_ms,
                          (long long)ui->span_ms);
  if (!err)
    err = json_verdict(out, ui->group_verdict);
  if (!err)
    err = m3b_buf_append(out, ",", 1);
  if (!err)
    err = render_partitions(ui, since_ms, out);
  if (!err)
    err = m3b_buf_append(out, ",", 1);
  if (!err)
    err = render_throughput(ui, since_ms, out);
  if (!err)
    err = m3b_buf_append(out, ",", 1);
  if (!err)
    err = render_totals(ui, out);
  if (!err)
    err = m3b_buf_append(out, ",", 1);
  if (!err)
    err = render_recent(ui, out);
  if (!err)
    err = m3b_buf_append_str(out, "}\n");
  pthread_mutex_unlock(&ui->lock);
  return err;
}

/* ---- routes ---------------------------------------------------------------
 */

const char *m3b_ui_page(size_t *len_out) {
  if (len_out)
    *len_out = m3b__ui_html_len;
  return m3b__ui_html;
}

static int serve_page(void *opaque, const m3b_http_request_t *request,
                      struct m3b_buf *body, char *content_type,
                      size_t content_type_size) {
  const char *path = m3b_http_request_path(request);
  (void)opaque;
  /* "/ui/" is a subtree route: everything below it but the data is 404 */
  if (strcmp(path, "/ui") != 0 && strcmp(path, "/ui/") != 0) {
    snprintf(content_type, content_type_size, "%s", TEXT_TYPE);
    return m3b_buf_append_str(body, "not found") ? 500 : 404;
  }
  snprintf(content_type, content_type_size, "%s", HTML_TYPE);
  return m3b_buf_append(body, m3b__ui_html, m3b__ui_html_len) ? 500 : 200;
}

static int serve_data(void *opaque, const m3b_http_request_t *request,
                      struct m3b_buf *body, char *content_type,
                      size_t content_type_size) {
  struct timespec ts;
  (void)request;
  clock_gettime(CLOCK_REALTIME, &ts);
  snprintf(content_type, content_type_size, "%s", JSON_TYPE);
  if (m3b_ui_render_json(
          opaque, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, body))
    return 500;
  return 200;
}

m3b_err_t m3b_ui_route(m3b_ui_t *ui, m3b_http_t *http) {
  m3b_err_t err;
  assert(ui && http);
  err = m3b_http_route(http, "/ui", serve_page, ui);
  if (!err)
    err = m3b_http_route(http, "/ui/", serve_page, ui);
  if (!err)
    err = m3b_http_route(http, "/ui/data.json", serve_data, ui);
  return err;
}
