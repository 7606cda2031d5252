/*
 * metrics.c - the Prometheus registry of <m3b/metrics.h>.
 *
 * Families live in an array sorted by name, and each family's series in an
 * array sorted by label set, so a lookup is two binary searches and the
 * text exposition needs no sorting: it is written in storage order. One
 * mutex guards everything; the critical sections are short (a search and
 * an addition), except rendering, which holds the lock for a consistent
 * snapshot of all series.
 *
 * Histogram series keep one count per bucket (not cumulative) and cumulate
 * while rendering, so an observation touches a single bucket.
 */
#include <m3b/metrics.h>

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct series {
  char *labels;       /* owned; "" when the series has no labels */
  double value;       /* counter or gauge value; histogram sum */
  uint64_t count;     /* histogram: number of observations */
  uint64_t buckets[]; /* histogram: observations per bucket, not cumulative */
};

struct family {
  char name[M3B_METRICS_NAME_MAX + 1];
  char *help; /* owned */
  m3b_metric_type_t type;
  double bounds[M3B_METRICS_MAX_BUCKETS]; /* histogram upper bounds */
  size_t bound_count;
  struct series **series; /* owned; sorted by labels */
  size_t series_count;
  size_t series_cap;
};

struct m3b_metrics {
  pthread_mutex_t lock;
  struct family *families[M3B_METRICS_MAX_FAMILIES]; /* sorted by name */
  size_t family_count;
  size_t series_total;
  size_t max_series;
};

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25, .5,
                                         1,    2.5, 5,    10,  30, 60};

/* ---- validation ---------------------------------------------------------- */

static int is_alpha_(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int name_valid(const char *name) {
  size_t i;
  if (!name || !name[0] || strlen(name) > M3B_METRICS_NAME_MAX)
    return 0;
  if (!is_alpha_(name[0]) && name[0] != ':')
    return 0;
  for (i = 1; name[i]; i++)
    if (!is_alpha_(name[i]) && !is_digit(name[i]) && name[i] != ':')
      return 0;
  return 1;
}

/* A label set without braces: name="value"(,name="value")*, values escaped
 * as m3b_metrics_escape does. "le" is reserved on histograms and names
 * starting with "__" are reserved by Prometheus. */
static int labels_valid(const char *labels, m3b_metric_type_t type) {
  const char *p = labels;
  const char *start;

  if (strlen(labels) > M3B_METRICS_LABELS_MAX)
    return 0;
  if (!*p)
    return 1;
  for (;;) {
    start = p;
    if (!is_alpha_(*p))
      return 0;
    while (is_alpha_(*p) || is_digit(*p))
      p++;
    if (p - start >= 2 && start[0] == '_' && start[1] == '_')
      return 0;
    if (type == M3B_METRIC_HISTOGRAM && p - start == 2 &&
        memcmp(start, "le", 2) == 0)
      return 0;
    if (*p++ != '=')
      return 0;
    if (*p++ != '"')
      return 0;
    while (*p != '"') {
      if (!*p || *p == '\n')
        return 0;
      if (*p == '\\') {
        p++;
        if (*p != '\\' && *p != '"' && *p != 'n')
          return 0;
      }
      p++;
    }
    p++;
    if (!*p)
      return 1;
    if (*p++ != ',')
      return 0;
  }
}

/* ---- lookup (lock held) -------------------------------------------------- */

/* Index of name, or of where it would be inserted (*found = 0). */
static size_t family_search(const m3b_metrics_t *metrics, const char *name,
                            int *found) {
  size_t lo = 0;
  size_t hi = metrics->family_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(metrics->families[mid]->name, name);
    if (cmp == 0) {
      *found = 1;
      return mid;
    }
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

static struct family *family_find(const m3b_metrics_t *metrics,
                                  const char *name) {
  int found;
  size_t i = family_search(metrics, name, &found);
  return found ? metrics->families[i] : NULL;
}

static size_t series_search(const struct family *family, const char *labels,
                            int *found) {
  size_t lo = 0;
  size_t hi = family->series_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int cmp = strcmp(family->series[mid]->labels, labels);
    if (cmp == 0) {
      *found = 1;
      return mid;
    }
    if (cmp < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  *found = 0;
  return lo;
}

static void series_free(struct series *series) {
  if (!series)
    return;
  free(series->labels);
  free(series);
}

static void family_free(struct family *family) {
  size_t i;
  if (!family)
    return;
  for (i = 0; i < family->series_count; i++)
    series_free(family->series[i]);
  free(family->series);
  free(family->help);
  free(family);
}

static void count_dropped(m3b_metrics_t *metrics) {
  struct family *family = family_find(metrics, M3B_METRICS_DROPPED_NAME);
  int found;
  size_t i;
  if (!family)
    return;
  i = series_search(family, "", &found);
  if (found)
    family->series[i]->value += 1;
}

/* Finds or creates the series (family, labels). */
static m3b_err_t series_get(m3b_metrics_t *metrics, struct family *family,
                            const char *labels, struct series **series_out) {
  int found;
  size_t i = series_search(family, labels, &found);
  struct series *series;
  size_t bucket_count;

  if (found) {
    *series_out = family->series[i];
    return M3B_OK;
  }
  if (!labels_valid(labels, family->type))
    return M3B_ERR_INVALID_ARG;
  if (metrics->series_total >= metrics->max_series) {
    count_dropped(metrics);
    return M3B_ERR_LIMIT;
  }
  if (family->series_count == family->series_cap) {
    size_t cap = family->series_cap ? family->series_cap * 2 : 8;
    struct series **grown =
        realloc(family->series, cap * sizeof(struct series *));
    if (!grown)
      return M3B_ERR_NOMEM;
    family->series = grown;
    family->series_cap = cap;
  }
  bucket_count = family->type == M3B_METRIC_HISTOGRAM ? family->bound_count : 0;
  series = calloc(1, sizeof(*series) + bucket_count * sizeof(uint64_t));
  if (!series)
    return M3B_ERR_NOMEM;
  series->labels = strdup(labels);
  if (!series->labels) {
    free(series);
    return M3B_ERR_NOMEM;
  }
  memmove(&family->series[i + 1], &family->series[i],
          (family->series_count - i) * sizeof(struct series *));
  family->series[i] = series;
  family->series_count++;
  metrics->series_total++;
  *series_out = series;
  return M3B_OK;
}

/* ---- life cycle ---------------------------------------------------------- */

m3b_metrics_t *m3b_metrics_new_limited(size_t max_series) {
  m3b_metrics_t *metrics;
  m3b_err_t err;

  assert(max_series >= 1);
  metrics = calloc(1, sizeof(*metrics));
  if (!metrics)
    return NULL;
  if (pthread_mutex_init(&metrics->lock, NULL) != 0) {
    free(metrics);
    return NULL;
  }
  metrics->max_series = max_series;
  err =
      m3b_metrics_declare(metrics, M3B_METRICS_DROPPED_NAME, M3B_METRIC_COUNTER,
                          "Series refused because the registry reached its "
                          "series limit.",
                          NULL, 0);
  if (!err)
    err = m3b_metrics_counter_add(metrics, M3B_METRICS_DROPPED_NAME, NULL, 0);
  if (err) {
    m3b_metrics_destroy(metrics);
    return NULL;
  }
  return metrics;
}

m3b_metrics_t *m3b_metrics_new(void) {
  return m3b_metrics_new_limited(M3B_METRICS_MAX_SERIES);
}

void m3b_metrics_destroy(m3b_metrics_t *metrics) {
  size_t i;
  if (!metrics)
    return;
  for (i = 0; i < metrics->family_count; i++)
    family_free(metrics->families[i]);
  pthread_mutex_destroy(&metrics->lock);
  free(metrics);
}

/* ---- declare ------------------------------------------------------------- */

static m3b_err_t buckets_copy(struct family *family, const double *buckets,
                              size_t n) {
  size_t i;
  if (!buckets || n == 0) {
    buckets = default_buckets;
    n = sizeof(default_buckets) / sizeof(default_buckets[0]);
  }
  if (isinf(buckets[n - 1]) && buckets[n - 1] > 0)
    n--; /* +Inf is always rendered */
  if (n == 0 || n > M3B_METRICS_MAX_BUCKETS)
    return M3B_ERR_INVALID_ARG;
  for (i = 0; i < n; i++) {
    if (!isfinite(buckets[i]))
      return M3B_ERR_INVALID_ARG;
    if (i > 0 && !(buckets[i] > buckets[i - 1]))
      return M3B_ERR_INVALID_ARG;
    family->bounds[i] = buckets[i];
  }
  family->bound_count = n;
  return M3B_OK;
}

m3b_err_t m3b_metrics_declare(m3b_metrics_t *metrics, const char *name,
                              m3b_metric_type_t type, const char *help,
                              const double *buckets, size_t n) {
  struct family *family = NULL;
  m3b_err_t err = M3B_OK;
  int found;
  size_t i;

  assert(metrics);
  if (!name_valid(name) || !help || strlen(help) > M3B_METRICS_HELP_MAX)
    return M3B_ERR_INVALID_ARG;
  if (type != M3B_METRIC_COUNTER && type != M3B_METRIC_GAUGE &&
      type != M3B_METRIC_HISTOGRAM)
    return M3B_ERR_INVALID_ARG;

  pthread_mutex_lock(&metrics->lock);
  i = family_search(metrics, name, &found);
  if (found) {
    if (metrics->families[i]->type != type)
      err = M3B_ERR_INVALID_ARG;
    goto out;
  }
  if (metrics->family_count == M3B_METRICS_MAX_FAMILIES) {
    err = M3B_ERR_LIMIT;
    goto out;
  }
  family = calloc(1, sizeof(*family));
  if (!family) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  memcpy(family->name, name, strlen(name) + 1);
  family->type = type;
  family->help = strdup(help);
  if (!family->help) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (type == M3B_METRIC_HISTOGRAM) {
    err = buckets_copy(family, buckets, n);
    if (err)
      goto out;
  }
  memmove(&metrics->families[i + 1], &metrics->families[i],
          (metrics->family_count - i) * sizeof(struct family *));
  metrics->families[i] = family;
  metrics->family_count++;
  family = NULL;
out:
  pthread_mutex_unlock(&metrics->lock);
  family_free(family);
  return err;
}

/* ---- updates ------------------------------------------------------------- */

enum update_op { OP_COUNTER_ADD, OP_GAUGE_SET, OP_GAUGE_ADD, OP_OBSERVE };

static m3b_err_t update(m3b_metrics_t *metrics, const char *name,
                        const char *labels, enum update_op op, double value) {
  static const m3b_metric_type_t op_type[] = {
      M3B_METRIC_COUNTER, M3B_METRIC_GAUGE, M3B_METRIC_GAUGE,
      M3B_METRIC_HISTOGRAM};
  struct family *family;
  struct series *series = NULL;
  m3b_err_t err;
  size_t i;

  assert(metrics && name);
  if (!labels)
    labels = "";
  if (op == OP_COUNTER_ADD && !(isfinite(value) && value >= 0))
    return M3B_ERR_INVALID_ARG;
  if (op == OP_OBSERVE && isnan(value))
    return M3B_ERR_INVALID_ARG;

  pthread_mutex_lock(&metrics->lock);
  family = family_find(metrics, name);
  if (!family) {
    err = M3B_ERR_NOT_FOUND;
    goto out;
  }
  if (family->type != op_type[op]) {
    err = M3B_ERR_INVALID_ARG;
    goto out;
  }
  err = series_get(metrics, family, labels, &series);
  if (err)
    goto out;
  switch (op) {
  case OP_COUNTER_ADD:
  case OP_GAUGE_ADD: series->value += value; break;
  case OP_GAUGE_SET: series->value = value; break;
  case OP_OBSERVE:
    for (i = 0; i < family->bound_count; i++) {
      if (value <= family->bounds[i]) {
        series->buckets[i]++;
        break;
      }
    }
    series->value += value;
    series->count++;
    break;
  }
out:
  pthread_mutex_unlock(&metrics->lock);
  return err;
}

m3b_err_t m3b_metrics_counter_add(m3b_metrics_t *metrics, const char *name,
                                  const char *labels, double value) {
  return update(metrics, name, labels, OP_COUNTER_ADD, value);
}

m3b_err_t m3b_metrics_gauge_set(m3b_metrics_t *metrics, const char *name,
                                const char *labels, double value) {
  return update(metrics, name, labels, OP_GAUGE_SET, value);
}

m3b_err_t m3b_metrics_gauge_add(m3b_metrics_t *metrics, const char *name,
                                const char *labels, double delta) {
  return update(metrics, name, labels, OP_GAUGE_ADD, delta);
}

m3b_err_t m3b_metrics_histogram_observe(m3b_metrics_t *metrics,
                                        const char *name, const char *labels,
                                        double value) {
  return update(metrics, name, labels, OP_OBSERVE, value);
}

/* ---- reads and removal --------------------------------------------------- */

m3b_err_t m3b_metrics_value(m3b_metrics_t *metrics, const char *name,
                            const char *labels, double *value_out) {
  struct family *family;
  m3b_err_t err = M3B_ERR_NOT_FOUND;
  int found;
  size_t i;

  assert(metrics && name && value_out);
  pthread_mutex_lock(&metrics->lock);
  family = family_find(metrics, name);
  if (family) {
    i = series_search(family, labels ? labels : "", &found);
    if (found) {
      const struct series *series = family->series[i];
      *value_out = family->type == M3B_METRIC_HISTOGRAM ? (double)series->count
                                                        : series->value;
      err = M3B_OK;
    }
  }
  pthread_mutex_unlock(&metrics->lock);
  return err;
}

size_t m3b_metrics_series_count(m3b_metrics_t *metrics) {
  size_t count;
  assert(metrics);
  pthread_mutex_lock(&metrics->lock);
  count = metrics->series_total;
  pthread_mutex_unlock(&metrics->lock);
  return count;
}

void m3b_metrics_remove_matching(m3b_metrics_t *metrics, const char *name,
                                 const char *labels_substring) {
  struct family *family;
  size_t i;
  size_t kept = 0;

  assert(metrics && name);
  if (!labels_substring)
    labels_substring = "";
  pthread_mutex_lock(&metrics->lock);
  family = family_find(metrics, name);
  if (family) {
    /* compaction keeps the survivors in sorted order */
    for (i = 0; i < family->series_count; i++) {
      struct series *series = family->series[i];
      if (strstr(series->labels, labels_substring)) {
        series_free(series);
        metrics->series_total--;
      } else {
        family->series[kept++] = series;
      }
    }
    family->series_count = kept;
  }
  pthread_mutex_unlock(&metrics->lock);
}

/* ---- text format --------------------------------------------------------- */

m3b_err_t m3b_metrics_escape(const char *value, char *out, size_t out_size) {
  size_t used = 0;
  const char *p;

  assert(value && out);
  for (p = value; *p; p++) {
    const char *piece;
    char plain[2] = {*p, 0};
    size_t len;
    if (*p == '\\')
      piece = "\\\\";
    else if (*p == '"')
      piece = "\\\"";
    else if (*p == '\n')
      piece = "\\n";
    else
      piece = plain;
    len = strlen(piece);
    if (out_size - used <= len || out_size == 0) {
      if (out_size > 0)
        out[0] = 0;
      return M3B_ERR_LIMIT;
    }
    memcpy(out + used, piece, len);
    used += len;
  }
  if (used >= out_size)
    return M3B_ERR_LIMIT;
  out[used] = 0;
  return M3B_OK;
}

/* Shortest of %.15g and %.17g that reads back as the same double, in the
 * spelling Prometheus expects for the special values. */
static void format_value(double value, char *out, size_t out_size) {
  if (isnan(value)) {
    snprintf(out, out_size, "NaN");
  } else if (isinf(value)) {
    snprintf(out, out_size, "%s", value > 0 ? "+Inf" : "-Inf");
  } else {
    snprintf(out, out_size, "%.15g", value);
    if (strtod(out, NULL) != value)
      snprintf(out, out_size, "%.17g", value);
  }
}

static m3b_err_t render_help(const struct family *family, struct m3b_buf *out) {
  static const char *const type_names[] = {"counter", "gauge", "histogram"};
  const char *p;
  m3b_err_t err;

  err = m3b_buf_appendf(out, "# HELP %s ", family->name);
  for (p = family->help; !err && *p; p++) {
    if (*p == '\\')
      err = m3b_buf_append(out, "\\\\", 2);
    else if (*p == '\n')
      err = m3b_buf_append(out, "\\n", 2);
    else
      err = m3b_buf_append(out, p, 1);
  }
  if (!err)
    err = m3b_buf_appendf(out, "\n# TYPE %s %s\n", family->name,
                          type_names[family->type]);
  return err;
}

static m3b_err_t render_histogram(const struct family *family,
                                  const struct series *series,
                                  struct m3b_buf *out) {
  const char *sep = series->labels[0] ? "," : "";
  char number[32];
  uint64_t cumulative = 0;
  m3b_err_t err = M3B_OK;
  size_t i;

  for (i = 0; !err && i < family->bound_count; i++) {
    cumulative += series->buckets[i];
    format_value(family->bounds[i], number, sizeof(number));
    err =
        m3b_buf_appendf(out, "%s_bucket{%s%sle=\"%s\"} %" PRIu64 "\n",
                        family->name, series->labels, sep, number, cumulative);
  }
  if (!err)
    err = m3b_buf_appendf(out, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n",
                          family->name, series->labels, sep, series->count);
  format_value(series->value, number, sizeof(number));
  if (!err && series->labels[0])
    err = m3b_buf_appendf(out, "%s_sum{%s} %s\n%s_count{%s} %" PRIu64 "\n",
                          family->name, series->labels, number, family->name,
                          series->labels, series->count);
  else if (!err)
    err = m3b_buf_appendf(out, "%s_sum %s\n%s_count %" PRIu64 "\n",
                          family->name, number, family->name, series->count);
  return err;
}

static m3b_err_t render_family(const struct family *family,
                               struct m3b_buf *out) {
  char number[32];
  m3b_err_t err;
  size_t i;

  err = render_help(family, out);
  for (i = 0; !err && i < family->series_count; i++) {
    const struct series *series = family->series[i];
    if (family->type == M3B_METRIC_HISTOGRAM) {
      err = render_histogram(family, series, out);
      continue;
    }
    format_value(series->value, number, sizeof(number));
    if (series->labels[0])
      err = m3b_buf_appendf(out, "%s{%s} %s\n", family->name, series->labels,
                            number);
    else
      err = m3b_buf_appendf(out, "%s %s\n", family->name, number);
  }
  return err;
}

m3b_err_t m3b_metrics_render(const m3b_metrics_t *metrics,
                             struct m3b_buf *out) {
  /* The registry is logically read-only here; only its lock changes, and
   * the registry is always heap-allocated by m3b_metrics_new. */
  pthread_mutex_t *lock = (pthread_mutex_t *)&metrics->lock;
  m3b_err_t err = M3B_OK;
  size_t i;

  assert(metrics && out);
  pthread_mutex_lock(lock);
  for (i = 0; !err && i < metrics->family_count; i++) {
    if (metrics->families[i]->series_count == 0)
      continue;
    err = render_family(metrics->families[i], out);
  }
  pthread_mutex_unlock(lock);
  return err;
}
