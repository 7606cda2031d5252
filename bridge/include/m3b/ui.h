/*
 * ui.h - the listener's built-in page: GET /ui and GET /ui/data.json.
 *
 * /ui is one HTML page compiled into the binary (bridge/ui/ui.html: inline
 * CSS and JavaScript, no external assets, no build step), so it works in
 * an air-gapped cluster. It polls /ui/data.json and draws, per assigned
 * partition, the lag in messages and in seconds over the last hour, the
 * verdicts, the throughput, counts of finished records by phase and
 * reason, and the latest outcomes with their reasons.
 *
 * The data lives here: the listener feeds it the same numbers it exports
 * on /metrics, at the same moments (m3b_ui_record_lag next to the lag
 * gauges, m3b_ui_record_outcome next to m3bridge_events_total), so the
 * page and the metrics agree. Memory is fixed by the options: a lag
 * history (<m3b/lag_history.h>), a throughput history of the same length
 * and a ring of the last recent_max outcomes.
 *
 * Thread-safe: one mutex guards the state; recording is called from the
 * listener's threads and rendering from the HTTP thread.
 */
#ifndef M3B_UI_H
#define M3B_UI_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/buf.h>
#include <m3b/err.h>
#include <m3b/http.h>
#include <m3b/lag_history.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most outcomes kept, and the longest key, message and name kept of one
 * (longer ones are cut at a UTF-8 boundary). */
#define M3B_UI_RECENT_MAX 10000
#define M3B_UI_KEY_MAX 720
#define M3B_UI_MESSAGE_MAX 512
#define M3B_UI_NAME_MAX 64
/* Distinct (phase, reason) pairs counted; more are counted as "OTHER". */
#define M3B_UI_TOTALS_MAX 128

struct m3b_ui_options {
  const char *group;       /* consumer group, copied; shown */
  const char *topic;       /* desired topic, copied; shown */
  const char *listener_id; /* copied; shown */
  int64_t interval_ms;     /* one history point per interval, >= 1 */
  int64_t span_ms;         /* history kept, >= interval_ms (1 h) */
  size_t recent_max;       /* outcomes kept, 1..M3B_UI_RECENT_MAX */
};

/* One finished record, as shown in the latest outcomes. Strings are
 * borrowed for the call and copied (cut to the limits above). */
struct m3b_ui_outcome {
  int64_t at_ms;       /* wall clock when it finished */
  const char *key;     /* object key, "" when the record key was not one */
  const char *phase;   /* APPLIED, DELETED, REJECTED, ..., FORGOTTEN */
  const char *reason;  /* "OK" or the error name */
  const char *message; /* human detail (never secret), may be NULL */
  int64_t generation;  /* -1 when not decoded */
  int32_t partition;
  int64_t offset;
};

typedef struct m3b_ui m3b_ui_t;

/* NULL with a message in errstr on bad options or OOM. */
m3b_ui_t *m3b_ui_new(const struct m3b_ui_options *options, char *errstr,
                     size_t errstr_size);

/* Frees; NULL is a no-op. Stop the HTTP server first: its routes borrow
 * the ui. */
void m3b_ui_destroy(m3b_ui_t *ui);

/* Adds GET /ui, /ui/ (the page) and /ui/data.json to http. The ui must
 * outlive the server. Errors of m3b_http_route. */
m3b_err_t m3b_ui_route(m3b_ui_t *ui, m3b_http_t *http);

/* Records a partition's lag sample (see <m3b/lag_history.h>: one point
 * per interval, the newest replaced within one). Errors of
 * m3b_lag_history_record. */
m3b_err_t m3b_ui_record_lag(m3b_ui_t *ui, int32_t partition,
                            const struct m3b_lag_point *point);

/* Forgets a revoked partition. */
void m3b_ui_forget_partition(m3b_ui_t *ui, int32_t partition);

/* Sets the group's verdict (the worst of its partitions, as exported in
 * m3bridge_group_lag_verdict); -1 = not evaluated. */
void m3b_ui_set_group_verdict(m3b_ui_t *ui, int verdict);

/* Records a finished record: counted by (phase, reason), kept among the
 * latest outcomes, and, for APPLIED and DELETED, counted in the
 * throughput. */
void m3b_ui_record_outcome(m3b_ui_t *ui, const struct m3b_ui_outcome *outcome);

/* Takes a throughput sample at now_ms (wall clock): the number of applied
 * records so far, one point per interval like the lag history. Call it
 * with the lag samples (every heartbeat). */
void m3b_ui_tick(m3b_ui_t *ui, int64_t now_ms);

/* Appends the state as the JSON document served at /ui/data.json (its
 * fields are described in docs/ui.md); history points older than
 * now_ms - span_ms are left out. M3B_ERR_LIMIT when out is full. */
m3b_err_t m3b_ui_render_json(m3b_ui_t *ui, int64_t now_ms, struct m3b_buf *out);

/* The embedded page (NUL-terminated) and its length in bytes. */
const char *m3b_ui_page(size_t *len_out);

#ifdef __cplusplus
}
#endif

#endif
