/*
 * metrics.h - a thread-safe registry of Prometheus metrics.
 *
 * The listener declares its metric families once at start (name, type,
 * help), then updates series from any thread; the HTTP thread renders the
 * registry in the Prometheus text exposition format (version 0.0.4) for
 * GET /metrics. A series is a family name plus a label set; it is created
 * on its first update.
 *
 * Memory is bounded: at most M3B_METRICS_MAX_FAMILIES families and a hard
 * limit of series (M3B_METRICS_MAX_SERIES by default). An update that would
 * create a series past the limit is refused with M3B_ERR_LIMIT and counted
 * in the registry's own counter m3bridge_metrics_series_dropped_total, so
 * a label explosion shows on the dashboards instead of exhausting memory.
 *
 * All functions may be called concurrently from any thread; one mutex
 * guards the registry. Nothing here is secret: never put payloads or
 * credentials into label values.
 */
#ifndef M3B_METRICS_H
#define M3B_METRICS_H

#include <stddef.h>

#include <m3b/buf.h>
#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Default hard limit on the number of series in one registry. */
#define M3B_METRICS_MAX_SERIES 10000
/* Hard limit on the number of families in one registry. */
#define M3B_METRICS_MAX_FAMILIES 256
/* Longest family name, help text and label set, in bytes. */
#define M3B_METRICS_NAME_MAX 128
#define M3B_METRICS_HELP_MAX 512
#define M3B_METRICS_LABELS_MAX 1024
/* Most bucket bounds a histogram may declare (+Inf is implicit). */
#define M3B_METRICS_MAX_BUCKETS 32

/* The registry's own counter of refused series. */
#define M3B_METRICS_DROPPED_NAME "m3bridge_metrics_series_dropped_total"

typedef struct m3b_metrics m3b_metrics_t;

typedef enum m3b_metric_type {
  M3B_METRIC_COUNTER,
  M3B_METRIC_GAUGE,
  M3B_METRIC_HISTOGRAM
} m3b_metric_type_t;

/* A registry limited to M3B_METRICS_MAX_SERIES series. NULL only on OOM. */
m3b_metrics_t *m3b_metrics_new(void);

/* A registry limited to max_series series (>= 1; the registry's own
 * dropped counter is one of them). NULL only on OOM. */
m3b_metrics_t *m3b_metrics_new_limited(size_t max_series);

/* Frees the registry and every series; NULL is a no-op. */
void m3b_metrics_destroy(m3b_metrics_t *metrics);

/* Declares a family once. name (copied) matches [a-zA-Z_:][a-zA-Z0-9_:]*;
 * help (copied) is any text and is escaped on rendering. For histograms,
 * buckets (copied) are finite ascending upper bounds, n of them (a final
 * +Inf is accepted and ignored); NULL/0 selects the default latency buckets
 * in seconds: .005 .01 .025 .05 .1 .25 .5 1 2.5 5 10 30 60. buckets is
 * ignored for the other types.
 * Re-declaring a name with the same type is a no-op (M3B_OK); with another
 * type it is M3B_ERR_INVALID_ARG. M3B_ERR_LIMIT past
 * M3B_METRICS_MAX_FAMILIES. */
m3b_err_t m3b_metrics_declare(m3b_metrics_t *metrics, const char *name,
                              m3b_metric_type_t type, const char *help,
                              const double *buckets, size_t n);

/* Updates the series (name, labels), creating it at 0 when it is new.
 * labels (copied): NULL, "" or a Prometheus label set without braces, e.g.
 * "phase=\"APPLIED\",reason=\"OK\"", whose values the caller escaped with
 * m3b_metrics_escape. The same labels in another order are another series,
 * so callers always write them in one order. A malformed label set (or the
 * label "le" on a histogram) is M3B_ERR_INVALID_ARG, an undeclared name
 * M3B_ERR_NOT_FOUND, a name of another type M3B_ERR_INVALID_ARG, a new
 * series past the limit M3B_ERR_LIMIT (and counted as dropped). */

/* Adds value (finite, >= 0) to a counter. */
m3b_err_t m3b_metrics_counter_add(m3b_metrics_t *metrics, const char *name,
                                  const char *labels, double value);

/* Sets a gauge (NaN and infinities are allowed and rendered as such). */
m3b_err_t m3b_metrics_gauge_set(m3b_metrics_t *metrics, const char *name,
                                const char *labels, double value);

/* Adds delta (may be negative) to a gauge, e.g. for in-flight counts. */
m3b_err_t m3b_metrics_gauge_add(m3b_metrics_t *metrics, const char *name,
                                const char *labels, double delta);

/* Records one observation (not NaN) in a histogram. */
m3b_err_t m3b_metrics_histogram_observe(m3b_metrics_t *metrics,
                                        const char *name, const char *labels,
                                        double value);

/* Reads a series: a counter's or gauge's value, a histogram's observation
 * count. M3B_ERR_NOT_FOUND when the family or the series does not exist.
 * For tests and the built-in UI. */
m3b_err_t m3b_metrics_value(m3b_metrics_t *metrics, const char *name,
                            const char *labels, double *value_out);

/* Number of series in the registry (including the dropped counter). */
size_t m3b_metrics_series_count(m3b_metrics_t *metrics);

/* Escapes a label value (\ -> \\, " -> \", newline -> \n) into out as a
 * NUL-terminated string. M3B_ERR_LIMIT when it does not fit in out_size
 * bytes (out is then "" when out_size > 0). */
m3b_err_t m3b_metrics_escape(const char *value, char *out, size_t out_size);

/* Removes every series of family name whose label set contains
 * labels_substring (e.g. a revoked partition's "partition=\"3\""); NULL or
 * "" removes all series of the family, which stays declared. An undeclared
 * name is a no-op. */
void m3b_metrics_remove_matching(m3b_metrics_t *metrics, const char *name,
                                 const char *labels_substring);

/* Appends the Prometheus text exposition format (version 0.0.4) to out:
 * families sorted by name, each with # HELP and # TYPE, its series sorted
 * by label set (byte order); histograms as cumulative _bucket{le="..."}
 * lines ending with le="+Inf", then _sum and _count. Families without
 * series are left out. M3B_ERR_LIMIT when out's maximum is reached (out
 * then holds a truncated text that must not be served). */
m3b_err_t m3b_metrics_render(const m3b_metrics_t *metrics, struct m3b_buf *out);

#ifdef __cplusplus
}
#endif

#endif
