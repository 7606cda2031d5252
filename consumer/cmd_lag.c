/*
 * cmd_lag.c - `m3bridge-listener lag`: a consumer group's lag on a topic,
 * per partition (committed offset, high watermark, lag in messages and in
 * seconds, owner, verdict) and for the group, read from outside the group
 * (<m3b/kafka.h>'s group observer), so it works from either plane and for
 * any group the principal may describe.
 *
 * The verdict needs a history: the command samples every --interval over
 * --window (one-shot) or keeps sampling (--watch) and feeds one
 * <m3b/lag_verdict.h> window per partition. The exit code is the worst
 * verdict, for scripts and alerts (codes in the usage text).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <m3b/cli.h>
#include <m3b/config.h>
#include <m3b/kafka.h>
#include <m3b/lag_verdict.h>
#include <m3b/log.h>

#include "commands.h"

#define PROG "m3bridge-listener lag"
#define REQUEST_TIMEOUT_MS 10000
#define MAX_WINDOW_MS (24LL * 3600 * 1000)
/* exit codes past M3B_EXIT_USAGE: 2 + the worst verdict */
#define EXIT_VERDICT_BASE 2

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  (void)sig;
  stop_signal = 1;
}

struct lag_options {
  const char *group; /* NULL: m3bridge-<plane> */
  const char *topic; /* NULL: the plane's desired topic */
  int64_t window_ms;
  int64_t interval_ms;
  int watch;
  int json;
};

/* What one partition shows. */
struct row {
  const struct m3b_observed_partition *op;
  int64_t lag;
  double lag_seconds; /* < 0: unknown */
  m3b_verdict_t verdict;
  int has_verdict;
};

struct lag_run {
  struct lag_options options;
  char group[256];
  char topic[256];
  m3b_group_observer_t *observer;
  m3b_lag_window_t **windows; /* per partition; NULL without a window */
  size_t window_count;
  size_t samples;
  struct row *rows;
  int tty;
};

static int64_t now_ms(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps until the monotonic time until_ms or a stop signal. */
static void sleep_until(int64_t until_ms) {
  for (;;) {
    int64_t left = until_ms - now_ms(CLOCK_MONOTONIC);
    struct timespec ts;
    if (left <= 0 || stop_signal)
      return;
    if (left > 200)
      left = 200;
    ts.tv_sec = 0;
    ts.tv_nsec = (long)left * 1000000L;
    (void)nanosleep(&ts, NULL);
  }
}

/* Seconds as a decimal ("10", "0.5") into ms within [min_ms, max_ms]. */
static int parse_seconds(const char *text, int64_t min_ms, int64_t max_ms,
                         int64_t *ms_out) {
  char *end = NULL;
  double seconds;
  errno = 0;
  seconds = strtod(text, &end);
  if (errno || !end || end == text || *end || seconds != seconds)
    return -1;
  if (seconds * 1000.0 < (double)min_ms || seconds * 1000.0 > (double)max_ms)
    return -1;
  *ms_out = (int64_t)(seconds * 1000.0 + 0.5);
  return 0;
}

static const char usage_text[] =
    "Usage: m3bridge-listener lag [--config FILE] [--plane PLANE] [--set "
    "N=V]...\n"
    "                             [--group GROUP] [--topic TOPIC]\n"
    "                             [--window SECONDS] [--interval SECONDS]\n"
    "                             [--watch] [--json]\n";

/* Parses the command's own options (m3b_cli_config took the shared ones).
 * Returns 0, or prints why and returns -1. */
static int parse_options(int argc, char **argv, struct lag_options *options) {
  int i;
  int64_t window_ms = 10000, interval_ms = 1000;
  int window_set = 0;

  memset(options, 0, sizeof(*options));
  for (i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = NULL;
    const char *names[] = {"--group", "--topic", "--window", "--interval"};
    size_t k, n;
    for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
      n = strlen(names[k]);
      if (strncmp(arg, names[k], n) != 0)
        continue;
      if (arg[n] == '=') {
        value = arg + n + 1;
      } else if (arg[n] == '\0') {
        if (i + 1 >= argc) {
          fprintf(stderr, PROG ": %s needs a value\n%s", names[k], usage_text);
          return -1;
        }
        value = argv[++i];
      } else {
        continue;
      }
      break;
    }
    if (k == 0) {
      options->group = value;
    } else if (k == 1) {
      options->topic = value;
    } else if (k == 2) {
      if (parse_seconds(value, 0, MAX_WINDOW_MS, &window_ms)) {
        fprintf(stderr,
                PROG ": --window '%s' is not a number of seconds from 0 to "
                     "86400\n",
                value);
        return -1;
      }
      window_set = 1;
    } else if (k == 3) {
      if (parse_seconds(value, 100, 3600000, &interval_ms)) {
        fprintf(stderr,
                PROG ": --interval '%s' is not a number of seconds from 0.1 "
                     "to 3600\n",
                value);
        return -1;
      }
    } else if (strcmp(arg, "--watch") == 0) {
      options->watch = 1;
    } else if (strcmp(arg, "--json") == 0) {
      options->json = 1;
    } else {
      fprintf(stderr, PROG ": unexpected '%s'\n%s", arg, usage_text);
      return -1;
    }
  }
  if (options->group && !*options->group) {
    fprintf(stderr, PROG ": --group must not be empty\n");
    return -1;
  }
  if (options->topic && !*options->topic) {
    fprintf(stderr, PROG ": --topic must not be empty\n");
    return -1;
  }
  if (window_ms > 0 && window_ms < 2 * interval_ms) {
    fprintf(stderr,
            PROG ": a verdict needs %d samples: --window (%.3g s) must be 0 "
                 "or at least twice --interval (%.3g s)%s\n",
            M3B_LAG_WINDOW_DEFAULT_MIN_SAMPLES, (double)window_ms / 1000.0,
            (double)interval_ms / 1000.0,
            window_set ? "" : " (the default window is 10 s)");
    return -1;
  }
  if (window_ms == 0 && options->watch) {
    fprintf(stderr, PROG ": --watch needs a --window for its verdicts\n");
    return -1;
  }
  options->window_ms = window_ms;
  options->interval_ms = interval_ms;
  return 0;
}

/* The group and topic: the options, else the plane's defaults. */
static int resolve_names(struct lag_run *run, const m3b_config_t *config) {
  const char *plane = m3b_config_get(config, "plane");
  int n;
  if ((!run->options.group || !run->options.topic) && !plane) {
    fprintf(stderr,
            PROG ": no plane: set 'plane' (--plane PLANE, --config FILE or "
                 "M3B_PLANE), or give both --group and --topic\n");
    return -1;
  }
  if (run->options.group)
    n = snprintf(run->group, sizeof(run->group), "%s", run->options.group);
  else
    n = snprintf(run->group, sizeof(run->group), "m3bridge-%s", plane);
  if (n < 0 || (size_t)n >= sizeof(run->group)) {
    fprintf(stderr, PROG ": group name longer than %zu bytes\n",
            sizeof(run->group) - 1);
    return -1;
  }
  if (run->options.topic) {
    n = snprintf(run->topic, sizeof(run->topic), "%s", run->options.topic);
    if (n < 0 || (size_t)n >= sizeof(run->topic)) {
      fprintf(stderr, PROG ": topic name longer than %zu bytes\n",
              sizeof(run->topic) - 1);
      return -1;
    }
  } else if (m3b_kafka_topic_name(config, "desired", run->topic,
                                  sizeof(run->topic))) {
    fprintf(stderr, PROG ": cannot form the desired topic's name\n");
    return -1;
  }
  return 0;
}

static void free_windows(struct lag_run *run) {
  size_t i;
  for (i = 0; run->windows && i < run->window_count; i++)
    m3b_lag_window_destroy(run->windows[i]);
  free(run->windows);
  free(run->rows);
  run->windows = NULL;
  run->rows = NULL;
  run->window_count = 0;
}

/* One verdict window per partition; all start over when the partition
 * count changes (a topic recreated or grown). */
static int ensure_windows(struct lag_run *run, size_t count) {
  char errstr[256];
  size_t i;
  if (run->window_count == count && run->rows)
    return 0;
  free_windows(run);
  run->samples = 0;
  run->windows = calloc(count ? count : 1, sizeof(m3b_lag_window_t *));
  run->rows = calloc(count ? count : 1, sizeof(*run->rows));
  if (!run->windows || !run->rows) {
    fprintf(stderr, PROG ": out of memory\n");
    return -1;
  }
  run->window_count = count;
  if (run->options.window_ms == 0)
    return 0;
  for (i = 0; i < count; i++) {
    /* one interval of slack: timer drift must not push the first sample
     * of a one-shot run out of its window */
    run->windows[i] = m3b_lag_window_new(
        run->options.window_ms + run->options.interval_ms,
        M3B_LAG_WINDOW_DEFAULT_MIN_SAMPLES, errstr, sizeof(errstr));
    if (!run->windows[i]) {
      fprintf(stderr, PROG ": %s\n", errstr);
      return -1;
    }
  }
  return 0;
}

/* Lag in messages as the listener counts it (nothing committed: the high
 * watermark), never below 0. */
static int64_t row_lag(const struct m3b_observed_partition *op) {
  int64_t lag = op->committed >= 0 ? op->high_watermark - op->committed
                                   : op->high_watermark;
  return lag > 0 ? lag : 0;
}

/* Takes one observation and adds it to the windows. Returns 0, or -1 with
 * the error printed. */
static int sample(struct lag_run *run, unsigned flags,
                  const struct m3b_observed_group **group_out) {
  char errstr[1024];
  const struct m3b_observed_group *group;
  int64_t mono = now_ms(CLOCK_MONOTONIC);
  size_t i;
  m3b_err_t err = m3b_group_observe(run->observer, flags, REQUEST_TIMEOUT_MS,
                                    &group, errstr, sizeof(errstr));
  if (err) {
    fprintf(stderr, PROG ": %s (%s)\n", errstr, m3b_err_name(err));
    return -1;
  }
  if (ensure_windows(run, group->partition_count))
    return -1;
  for (i = 0; run->options.window_ms && i < group->partition_count; i++) {
    const struct m3b_observed_partition *op = &group->partitions[i];
    struct m3b_lag_sample s;
    s.time_ms = mono;
    s.committed = op->committed;
    s.high_watermark = op->high_watermark < 0 ? 0 : op->high_watermark;
    s.flags = op->owned ? M3B_LAG_SAMPLE_OWNED : 0;
    (void)m3b_lag_window_add(run->windows[i], &s);
  }
  run->samples++;
  *group_out = group;
  return 0;
}

/* Fills run->rows from the last observation; returns the worst verdict. */
static m3b_verdict_t evaluate(struct lag_run *run,
                              const struct m3b_observed_group *group,
                              int *complete_out) {
  int64_t mono = now_ms(CLOCK_MONOTONIC);
  int64_t wall = now_ms(CLOCK_REALTIME);
  m3b_verdict_t worst = M3B_VERDICT_OK;
  int complete = 1;
  size_t i;

  for (i = 0; i < group->partition_count; i++) {
    const struct m3b_observed_partition *op = &group->partitions[i];
    struct row *row = &run->rows[i];
    row->op = op;
    row->lag = row_lag(op);
    if (row->lag == 0)
      row->lag_seconds = 0;
    else if (op->next_timestamp_ms > 0)
      row->lag_seconds = wall > op->next_timestamp_ms
                             ? (double)(wall - op->next_timestamp_ms) / 1000.0
                             : 0;
    else
      row->lag_seconds = -1;
    row->has_verdict = run->windows[i] != NULL;
    if (!row->has_verdict)
      continue;
    row->verdict = m3b_lag_window_verdict(run->windows[i], mono);
    if (!m3b_lag_window_complete(run->windows[i], mono))
      complete = 0;
    if (row->verdict > worst)
      worst = row->verdict;
  }
  *complete_out = complete && run->options.window_ms > 0;
  return worst;
}

/* JSON string of text (group names are free text). */
static void print_json_string(const char *text) {
  const unsigned char *c;
  putchar('"');
  for (c = (const unsigned char *)text; *c; c++) {
    if (*c == '"' || *c == '\\')
      printf("\\%c", *c);
    else if (*c < 0x20)
      printf("\\u%04x", *c);
    else
      putchar(*c);
  }
  putchar('"');
}

static void print_json(const struct lag_run *run,
                       const struct m3b_observed_group *group,
                       m3b_verdict_t worst, int complete) {
  int64_t total = 0;
  double max_seconds = 0;
  int seconds_known = 1;
  size_t i;

  printf("{\"group\":");
  print_json_string(run->group);
  printf(",\"topic\":");
  print_json_string(run->topic);
  printf(",\"state\":");
  print_json_string(group->state);
  printf(",\"members\":%zu,\"time_ms\":%" PRId64
         ",\"window_seconds\":%.3f,\"interval_seconds\":%.3f,\"samples\":%zu,"
         "\"window_complete\":%s,\"partitions\":[",
         group->members, now_ms(CLOCK_REALTIME),
         (double)run->options.window_ms / 1000.0,
         (double)run->options.interval_ms / 1000.0, run->samples,
         complete ? "true" : "false");
  for (i = 0; i < group->partition_count; i++) {
    const struct row *row = &run->rows[i];
    total += row->lag;
    if (row->lag_seconds < 0)
      seconds_known = 0;
    else if (row->lag_seconds > max_seconds)
      max_seconds = row->lag_seconds;
    printf("%s{\"partition\":%d,\"committed\":", i ? "," : "",
           (int)row->op->partition);
    if (row->op->committed >= 0)
      printf("%" PRId64, row->op->committed);
    else
      printf("null");
    printf(",\"low_watermark\":%" PRId64 ",\"high_watermark\":%" PRId64
           ",\"lag\":%" PRId64 ",\"lag_seconds\":",
           row->op->low_watermark, row->op->high_watermark, row->lag);
    if (row->lag_seconds >= 0)
      printf("%.3f", row->lag_seconds);
    else
      printf("null");
    printf(",\"owned\":%s,\"verdict\":", row->op->owned ? "true" : "false");
    if (row->has_verdict)
      printf("\"%s\",\"verdict_value\":%d}", m3b_verdict_name(row->verdict),
             (int)row->verdict);
    else
      printf("null,\"verdict_value\":null}");
  }
  printf("],\"lag\":%" PRId64 ",\"max_lag_seconds\":", total);
  if (seconds_known)
    printf("%.3f", max_seconds);
  else
    printf("null");
  if (run->options.window_ms)
    printf(",\"verdict\":\"%s\",\"verdict_value\":%d}\n",
           m3b_verdict_name(worst), (int)worst);
  else
    printf(",\"verdict\":null,\"verdict_value\":null}\n");
  fflush(stdout);
}

static void format_seconds(double seconds, char *out, size_t out_size) {
  if (seconds < 0)
    snprintf(out, out_size, "-");
  else
    snprintf(out, out_size, "%.1f", seconds);
}

static void print_table(const struct lag_run *run,
                        const struct m3b_observed_group *group,
                        m3b_verdict_t worst, int complete) {
  int64_t total = 0;
  double max_seconds = 0;
  int seconds_known = 1, unreadable = 0;
  char seconds[32], stamp[32];
  time_t wall = time(NULL);
  struct tm tm;
  size_t i;

  if (run->tty && run->options.watch)
    printf("\033[H\033[2J"); /* home, clear: redraw in place */
  else if (run->options.watch)
    printf("\n");
  gmtime_r(&wall, &tm);
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
  printf("group %s  topic %s  state %s, %zu member(s)  at %s\n", run->group,
         run->topic, group->state, group->members, stamp);
  printf("%9s %14s %14s %10s %11s %5s  %s\n", "PARTITION", "COMMITTED",
         "HIGH-WATERMARK", "LAG", "LAG-SECONDS", "OWNED", "VERDICT");
  for (i = 0; i < group->partition_count; i++) {
    const struct row *row = &run->rows[i];
    char committed[32];
    total += row->lag;
    if (row->lag_seconds < 0)
      seconds_known = 0;
    else if (row->lag_seconds > max_seconds)
      max_seconds = row->lag_seconds;
    if (row->op->timestamp_err == M3B_ERR_KAFKA_AUTH)
      unreadable = 1;
    if (row->op->committed >= 0)
      snprintf(committed, sizeof(committed), "%" PRId64, row->op->committed);
    else
      snprintf(committed, sizeof(committed), "-");
    format_seconds(row->lag_seconds, seconds, sizeof(seconds));
    printf("%9d %14s %14" PRId64 " %10" PRId64 " %11s %5s  %s\n",
           (int)row->op->partition, committed, row->op->high_watermark,
           row->lag, seconds, row->op->owned ? "yes" : "no",
           row->has_verdict ? m3b_verdict_name(row->verdict) : "-");
  }
  format_seconds(seconds_known ? max_seconds : -1, seconds, sizeof(seconds));
  printf("%9s %14s %14s %10" PRId64 " %11s %5s  %s\n", "GROUP", "", "", total,
         seconds, "", run->options.window_ms ? m3b_verdict_name(worst) : "-");
  if (run->options.window_ms)
    printf("verdicts over %.3g s, %zu sample(s) every %.3g s%s\n",
           (double)run->options.window_ms / 1000.0, run->samples,
           (double)run->options.interval_ms / 1000.0,
           complete ? "" : " (window not full yet: OK means no evidence)");
  if (unreadable)
    printf("lag seconds unknown: the principal may not Read %s (the record "
           "at the committed offset gives the time)\n",
           run->topic);
  fflush(stdout);
}

static void show(struct lag_run *run, const struct m3b_observed_group *group,
                 m3b_verdict_t *worst_out) {
  int complete = 0;
  m3b_verdict_t worst = evaluate(run, group, &complete);
  if (run->options.json)
    print_json(run, group, worst, complete);
  else
    print_table(run, group, worst, complete);
  *worst_out = worst;
  if (ferror(stdout)) { /* a closed pipe: nobody reads any more */
    fprintf(stderr, PROG ": cannot write to stdout\n");
    stop_signal = 1;
  }
}

static int exit_code(m3b_verdict_t worst) {
  return worst == M3B_VERDICT_OK ? M3B_EXIT_OK : EXIT_VERDICT_BASE + (int)worst;
}

/* One-shot: samples over the window, shows the last observation. */
static int run_once(struct lag_run *run) {
  const struct m3b_observed_group *group = NULL;
  int64_t start = now_ms(CLOCK_MONOTONIC);
  int64_t k, ticks = run->options.window_ms / run->options.interval_ms;
  m3b_verdict_t worst = M3B_VERDICT_OK;

  for (k = 0; k <= ticks; k++) {
    /* timestamps only for what is shown: the last sample */
    unsigned flags = k == ticks ? M3B_OBSERVE_TIMESTAMPS : 0;
    if (k > 0)
      sleep_until(start + k * run->options.interval_ms);
    if (stop_signal)
      return M3B_EXIT_FAIL;
    if (sample(run, flags, &group))
      return M3B_EXIT_FAIL;
  }
  if (!group) /* the loop runs at least once; for the analyzers */
    return M3B_EXIT_FAIL;
  show(run, group, &worst);
  return ferror(stdout) ? M3B_EXIT_FAIL : exit_code(worst);
}

/* --watch: samples and redraws every interval until SIGINT/SIGTERM; a
 * failed observation is reported and the next one tried. */
static int run_watch(struct lag_run *run) {
  const struct m3b_observed_group *group = NULL;
  int64_t next = now_ms(CLOCK_MONOTONIC);
  m3b_verdict_t worst = M3B_VERDICT_OK;
  int shown = 0;

  while (!stop_signal) {
    if (sample(run, M3B_OBSERVE_TIMESTAMPS, &group) == 0) {
      show(run, group, &worst);
      shown = 1;
    }
    next += run->options.interval_ms;
    sleep_until(next);
  }
  return shown && !ferror(stdout) ? exit_code(worst) : M3B_EXIT_FAIL;
}

int cmd_lag(int argc, char **argv) {
  struct lag_run run;
  struct sigaction sa;
  m3b_config_t *config;
  m3b_log_t *log = NULL;
  char errstr[1024];
  int rc = M3B_EXIT_FAIL;

  memset(&run, 0, sizeof(run));
  config =
      m3b_cli_config(M3B_PROGRAM_LISTENER, &argc, argv, errstr, sizeof(errstr));
  if (!config) {
    fprintf(stderr, PROG ": %s\n", errstr);
    return M3B_EXIT_FAIL;
  }
  if (parse_options(argc, argv, &run.options) || resolve_names(&run, config)) {
    rc = M3B_EXIT_USAGE;
    goto out;
  }
  log = m3b_cli_logger(config);
  if (!log) {
    fprintf(stderr, PROG ": out of memory\n");
    goto out;
  }
  run.observer = m3b_group_observer_new(config, run.group, run.topic, log,
                                        errstr, sizeof(errstr));
  if (!run.observer) {
    fprintf(stderr, PROG ": %s\n", errstr);
    goto out;
  }
  run.tty = isatty(STDOUT_FILENO);
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  rc = run.options.watch ? run_watch(&run) : run_once(&run);

out:
  m3b_group_observer_destroy(run.observer);
  free_windows(&run);
  m3b_log_destroy(log);
  m3b_config_destroy(config);
  return rc;
}
