/*
 * cmd_replay.c - `m3bridge-listener replay`: disaster recovery from the
 * compacted desired topic (DESIGN.md section 7, docs/OPERATIONS.md
 * "Disaster recovery").
 *
 *   1. the fence: each partition's end (last stable offset) at start, or
 *      with --to-time the first offset after that time; the start: the
 *      beginning, --from-time or --from-offsets
 *   2. read and fold (replay_read.c): every record peeked at (checked
 *      like `run` checks it but for the signature and the manifest's
 *      parse; in full with --verify-all), the latest generation of each
 *      key kept
 *   3. the index (a labelled LIST, run while step 2 reads) and the plan
 *      (replay_plan.c)
 *   4. verify (replay_verify.c): every winner the plan would write is
 *      checked in full; a key whose winner fails is read again with every
 *      record checked
 *   5. apply tier by tier, then deletes and --prune (replay_apply.c)
 *   6. handover: the fence becomes the listener group's committed offsets
 *      (--commit; by default only when the group has none), so `run`
 *      continues after it without applying anything twice
 *
 * A replay joins no group: it reads with an assign()ed read_committed
 * consumer and refuses to run while the listener group has members (stop
 * the listener first). Exit: 0 when everything is as desired, 1 when
 * something was refused or failed (named in the summary) or the replay
 * was interrupted, 2 on a usage error. Interrupted or failed, it can be
 * run again: what is done is skipped by hash.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <m3b/cli.h>

#include "commands.h"
#include "replay_run.h"

#define MODULE "replay"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  (void)sig;
  stop_signal = 1;
}

static void on_delivery(void *record_opaque, m3b_err_t err, void *opaque) {
  struct replay *replay = opaque;
  (void)record_opaque;
  if (err)
    atomic_fetch_add(&replay->produce_failed, 1);
  else
    atomic_fetch_add(&replay->acked, 1);
}

void replay_note_failure(struct replay *replay, const char *key,
                         int32_t partition, int64_t offset, const char *what,
                         const char *reason, const char *message) {
  struct replay_failure *f = calloc(1, sizeof(*f));
  if (!f) {
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE,
            "out of memory noting a failure of %s", key ? key : "-");
    return;
  }
  snprintf(f->key, sizeof(f->key), "%s", key ? key : "");
  f->partition = partition;
  f->offset = offset;
  f->what = what;
  f->reason = reason ? reason : "?";
  snprintf(f->message, sizeof(f->message), "%s", message ? message : "");
  pthread_mutex_lock(&replay->failures_lock);
  *replay->failures_tail = f;
  replay->failures_tail = &f->next;
  replay->failure_count++;
  pthread_mutex_unlock(&replay->failures_lock);
}

static const char usage_opts[] =
    "  --config FILE          YAML configuration (as for run)\n"
    "  --set NAME=VALUE       override one setting (repeatable)\n"
    "  --from earliest        read the whole topic (default)\n"
    "  --from-time RFC3339    start at the first record at or after a time\n"
    "  --from-offsets P:O,... start each partition at an offset (name all)\n"
    "  --to-time RFC3339      point in time: the state as of this time\n"
    "  --dry-run              print what would change, write nothing\n"
    "  --prune                delete managed objects not in the final state\n"
    "  --verify-all           verify every record's signature while reading\n"
    "                         (default: only the records it would write)\n"
    "  --commit | --no-commit set (or not) the listener group's offsets to\n"
    "                         the fence (default: only when it has none)\n"
    "  --json                 the summary as one JSON object\n";

/* Parses the options left after m3b_cli_config; 0 or M3B_EXIT_USAGE. */
static int parse_args(struct replay *replay, int argc, char **argv) {
  char errstr[256];
  int i, have_from = 0;

  for (i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(arg, "--dry-run") == 0) {
      replay->dry_run = 1;
    } else if (strcmp(arg, "--prune") == 0) {
      replay->prune = 1;
    } else if (strcmp(arg, "--verify-all") == 0) {
      replay->verify_all = 1;
    } else if (strcmp(arg, "--json") == 0) {
      replay->json = 1;
    } else if (strcmp(arg, "--commit") == 0) {
      replay->commit = 1;
    } else if (strcmp(arg, "--no-commit") == 0) {
      replay->commit = 0;
    } else if (strcmp(arg, "--from") == 0 || strcmp(arg, "--from-time") == 0 ||
               strcmp(arg, "--from-offsets") == 0 ||
               strcmp(arg, "--to-time") == 0) {
      if (!value) {
        fprintf(stderr, "m3bridge-listener replay: %s needs a value\n", arg);
        return M3B_EXIT_USAGE;
      }
      i++;
      if (strcmp(arg, "--to-time") == 0) {
        if (m3b_parse_rfc3339(value, &replay->until_ms, errstr,
                              sizeof(errstr))) {
          fprintf(stderr, "m3bridge-listener replay: --to-time: %s\n", errstr);
          return M3B_EXIT_USAGE;
        }
        replay->have_until = 1;
        continue;
      }
      if (have_from++) {
        fprintf(stderr, "m3bridge-listener replay: give one of --from, "
                        "--from-time and --from-offsets\n");
        return M3B_EXIT_USAGE;
      }
      if (strcmp(arg, "--from") == 0) {
        if (strcmp(value, "earliest") != 0) {
          fprintf(stderr,
                  "m3bridge-listener replay: --from takes 'earliest' (use "
                  "--from-time or --from-offsets for other starts)\n");
          return M3B_EXIT_USAGE;
        }
        replay->start_mode = START_EARLIEST;
      } else if (strcmp(arg, "--from-time") == 0) {
        if (m3b_parse_rfc3339(value, &replay->start_time_ms, errstr,
                              sizeof(errstr))) {
          fprintf(stderr, "m3bridge-listener replay: --from-time: %s\n",
                  errstr);
          return M3B_EXIT_USAGE;
        }
        replay->start_mode = START_TIME;
      } else {
        replay->start_mode = START_OFFSETS;
        replay->start_offsets_text = argv[i];
      }
    } else {
      fprintf(stderr, "m3bridge-listener replay: unexpected '%s'\n%s", arg,
              usage_opts);
      return M3B_EXIT_USAGE;
    }
  }
  if (replay->prune && replay->start_mode != START_EARLIEST) {
    fprintf(stderr,
            "m3bridge-listener replay: --prune needs the whole topic (from "
            "earliest): with a later start, objects whose events come "
            "before it would look absent\n");
    return M3B_EXIT_USAGE;
  }
  if (replay->dry_run && replay->commit == 1) {
    fprintf(stderr, "m3bridge-listener replay: --dry-run writes nothing, so it "
                    "cannot --commit\n");
    return M3B_EXIT_USAGE;
  }
  return 0;
}

static m3b_err_t alloc_offsets(struct replay *replay) {
  size_t n = (size_t)replay->partitions;
  replay->low = calloc(n, sizeof(int64_t));
  replay->high = calloc(n, sizeof(int64_t));
  replay->start = calloc(n, sizeof(int64_t));
  replay->fence = calloc(n, sizeof(int64_t));
  replay->committed = calloc(n, sizeof(int64_t));
  if (!replay->low || !replay->high || !replay->start || !replay->fence ||
      !replay->committed)
    return M3B_ERR_NOMEM;
  return M3B_OK;
}

/* The start offsets, the fence and what the group holds. */
static m3b_err_t locate(struct replay *replay, char *errstr,
                        size_t errstr_size) {
  const char *topic = replay->listener->desired_topic;
  int64_t *named = NULL;
  int32_t p, highest = -1;
  m3b_err_t err;

  err = m3b_consumer_partition_count(replay->consumer, topic,
                                     REPLAY_KAFKA_TIMEOUT_MS,
                                     &replay->partitions, errstr, errstr_size);
  if (!err)
    err = alloc_offsets(replay);
  if (!err)
    err = m3b_consumer_query_watermarks(
        replay->consumer, topic, replay->partitions, replay->low, replay->high,
        REPLAY_KAFKA_TIMEOUT_MS, errstr, errstr_size);
  if (err)
    return err;
  switch (replay->start_mode) {
  case START_EARLIEST:
    memcpy(replay->start, replay->low,
           (size_t)replay->partitions * sizeof(int64_t));
    break;
  case START_TIME:
    err = m3b_consumer_offsets_for_time(
        replay->consumer, topic, replay->partitions, replay->start_time_ms,
        replay->start, REPLAY_KAFKA_TIMEOUT_MS, errstr, errstr_size);
    if (err)
      return err;
    for (p = 0; p < replay->partitions; p++)
      if (replay->start[p] < 0)
        replay->start[p] = replay->high[p]; /* nothing that late */
    break;
  case START_OFFSETS:
    named = calloc(REPLAY_MAX_PARTITIONS, sizeof(int64_t));
    if (!named)
      return M3B_ERR_NOMEM;
    err = m3b_parse_partition_offsets(replay->start_offsets_text, named,
                                      REPLAY_MAX_PARTITIONS, &highest, errstr,
                                      errstr_size);
    for (p = 0; !err && p < replay->partitions; p++) {
      if (named[p] < 0) {
        snprintf(errstr, errstr_size,
                 "--from-offsets names no offset for partition %d (name "
                 "every partition of %s)",
                 (int)p, topic);
        err = M3B_ERR_INVALID_ARG;
      }
      replay->start[p] = named[p];
    }
    if (!err && highest >= replay->partitions) {
      snprintf(errstr, errstr_size,
               "--from-offsets names partition %d; %s has %d", (int)highest,
               topic, (int)replay->partitions);
      err = M3B_ERR_INVALID_ARG;
    }
    free(named);
    if (err)
      return err;
    break;
  }
  for (p = 0; p < replay->partitions; p++) {
    replay->fence[p] = replay->high[p];
    if (replay->start[p] < replay->low[p]) /* compacted or deleted before */
      replay->start[p] = replay->low[p];
    if (replay->start[p] > replay->high[p])
      replay->start[p] = replay->high[p];
  }
  if (replay->have_until) {
    /* the first record after the time is the fence: the state as of it */
    err = m3b_consumer_offsets_for_time(
        replay->consumer, topic, replay->partitions, replay->until_ms + 1,
        replay->fence, REPLAY_KAFKA_TIMEOUT_MS, errstr, errstr_size);
    if (err)
      return err;
    for (p = 0; p < replay->partitions; p++)
      if (replay->fence[p] < 0 || replay->fence[p] > replay->high[p])
        replay->fence[p] = replay->high[p];
  }
  err =
      m3b_consumer_group_state(replay->consumer, &replay->group_members,
                               replay->group_state, sizeof(replay->group_state),
                               REPLAY_KAFKA_TIMEOUT_MS, errstr, errstr_size);
  if (!err)
    err = m3b_consumer_group_committed(
        replay->consumer, topic, replay->partitions, replay->committed,
        REPLAY_KAFKA_TIMEOUT_MS, errstr, errstr_size);
  return err;
}

static int group_has_offsets(const struct replay *replay) {
  int32_t p;
  for (p = 0; p < replay->partitions; p++)
    if (replay->committed[p] >= 0)
      return 1;
  return 0;
}

static size_t count_result(const struct replay *replay,
                           enum replay_result result) {
  size_t i, n = 0;
  for (i = 0; i < replay->item_count; i++)
    if (replay->items[i].result == result)
      n++;
  return n;
}

static void append_offsets(char *out, size_t size, const struct replay *replay,
                           const int64_t *offsets) {
  size_t used = strlen(out);
  int32_t p;
  for (p = 0; p < replay->partitions && used + 1 < size; p++) {
    snprintf(out + used, size - used, "%s%d:%" PRId64, p ? "," : "", (int)p,
             offsets[p]);
    used = strlen(out);
  }
}

/* Sets the group's offsets to the fence when asked (or by default). */
static void handover(struct replay *replay) {
  char errstr[512];
  size_t failed = count_result(replay, RES_FAILED);
  int commit = replay->commit;
  m3b_err_t err;

  if (replay->dry_run) {
    snprintf(replay->handover, sizeof(replay->handover),
             "dry run: group %s left as it is", replay->listener->group);
    return;
  }
  if (commit < 0)
    commit = !group_has_offsets(replay);
  if (!commit) {
    snprintf(replay->handover, sizeof(replay->handover), "group %s %s",
             replay->listener->group,
             replay->commit == 0 ? "left as it is (--no-commit)"
                                 : "has committed offsets ");
    if (replay->commit != 0) {
      append_offsets(replay->handover, sizeof(replay->handover), replay,
                     replay->committed);
      snprintf(replay->handover + strlen(replay->handover),
               sizeof(replay->handover) - strlen(replay->handover),
               "; left as they are (--commit sets them to the fence)");
    }
    return;
  }
  if (replay->interrupted || failed || atomic_load(&replay->produce_failed)) {
    snprintf(replay->handover, sizeof(replay->handover),
             "group %s NOT committed: the replay did not finish cleanly; "
             "run it again",
             replay->listener->group);
    return;
  }
  err = m3b_consumer_commit_group_offsets(
      replay->consumer, replay->listener->desired_topic, replay->partitions,
      replay->fence, errstr, sizeof(errstr));
  if (err) {
    snprintf(replay->handover, sizeof(replay->handover),
             "committing the fence FAILED (%s): %.400s", m3b_err_name(err),
             errstr);
    replay_note_failure(replay, "", -1, -1, "commit", m3b_err_name(err),
                        errstr);
    return;
  }
  replay->committed_fence = 1;
  snprintf(replay->handover, sizeof(replay->handover),
           "group %s committed at the fence ", replay->listener->group);
  append_offsets(replay->handover, sizeof(replay->handover), replay,
                 replay->fence);
  M3B_LOG(replay->log, M3B_LOG_INFO, MODULE, "%s", replay->handover);
}

static m3b_err_t open_replay(struct replay *replay, m3b_config_t *config,
                             char *errstr, size_t errstr_size) {
  struct listener *listener = replay->listener;
  char fold_err[128];
  m3b_err_t err;
  size_t i;

  /* the listener is stopped (checked before anything is written) and the
   * index is loaded right before the apply: trust it for the kinds it
   * listed instead of reading every new object first */
  listener->applier_flags = M3B_APPLIER_TRUST_INDEX;
  err = listener_open_core(listener, errstr, errstr_size);
  if (err)
    return err;
  replay->workers = listener->worker_count;
  for (i = 0; i < replay->workers; i++) {
    replay->folds[i] = m3b_fold_new(fold_err, sizeof(fold_err));
    if (!replay->folds[i])
      return M3B_ERR_NOMEM;
  }
  /* the group id only names whose offsets are read and committed: an
   * assign()ed consumer never joins */
  replay->consumer = m3b_consumer_new(config, listener->group, replay->log,
                                      errstr, errstr_size);
  if (!replay->consumer)
    return M3B_ERR_KAFKA;
  if (!replay->dry_run) {
    replay->producer = m3b_producer_new_streaming(
        config, on_delivery, replay, REPLAY_KAFKA_TIMEOUT_MS, replay->log,
        errstr, errstr_size);
    if (!replay->producer)
      return M3B_ERR_KAFKA;
  }
  M3B_LOG(replay->log, M3B_LOG_INFO, MODULE,
          "replay of %s as listener %s of plane %s: %zu trusted key(s), %zu "
          "bound namespace(s), sealing key %s, %zu worker(s)%s",
          listener->desired_topic, listener->listener_id, listener->plane,
          listener->trusted_key_count, listener->namespace_count,
          listener->seal_key ? "loaded" : "none", replay->workers,
          replay->dry_run ? ", dry run" : "");
  return M3B_OK;
}

static void replay_cleanup(struct replay *replay) {
  struct replay_failure *f = replay->failures;
  size_t i;
  while (f) {
    struct replay_failure *next = f->next;
    free(f);
    f = next;
  }
  /* the producer first: it may still report deliveries into replay */
  m3b_producer_destroy(replay->producer);
  m3b_consumer_destroy(replay->consumer);
  free(replay->items);
  for (i = 0; i < MAX_WORKERS; i++) {
    m3b_fold_destroy(replay->folds[i]);
    m3b_fold_destroy(replay->refolds[i]);
  }
  free(replay->low);
  free(replay->high);
  free(replay->start);
  free(replay->fence);
  free(replay->committed);
  pthread_mutex_destroy(&replay->failures_lock);
}

/* The whole replay after opening; returns the exit code. */
static int run_replay(struct replay *replay) {
  int64_t t0 = listener_now_ms(CLOCK_MONOTONIC);
  char errstr[1024];
  m3b_err_t err;

  replay->open_ms = t0 - replay->started_ms;
  err = locate(replay, errstr, sizeof(errstr));
  replay->locate_ms = listener_now_ms(CLOCK_MONOTONIC) - t0;
  if (err) {
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE, "%s (%s)", errstr,
            m3b_err_name(err));
    return M3B_EXIT_FAIL;
  }
  if (replay->group_members > 0 && !replay->dry_run) {
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE,
            "group %s has %d member(s) (%s): stop the listener (scale it "
            "to 0) before a replay, or use --dry-run",
            replay->listener->group, replay->group_members,
            replay->group_state);
    return M3B_EXIT_FAIL;
  }
  /* the LIST of what the cluster holds runs while the topic is read */
  err = replay_index_start(replay);
  if (!err)
    err = replay_read(replay, replay->folds, NULL);
  if (err || replay_stopping(replay))
    (void)replay_index_join(replay);
  if (err == M3B_ERR_INTERRUPTED || replay_stopping(replay)) {
    replay->interrupted = 1;
    goto report;
  }
  if (err) {
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE, "reading %s: %s",
            replay->listener->desired_topic, m3b_err_name(err));
    return M3B_EXIT_FAIL;
  }
  err = replay_load_index(replay);
  if (err == M3B_ERR_INTERRUPTED || replay_stopping(replay)) {
    replay->interrupted = 1;
    goto report;
  }
  if (!err)
    err = replay_plan(replay);
  if (!err)
    err = replay_verify(replay);
  if (err == M3B_ERR_INTERRUPTED || replay_stopping(replay)) {
    replay->interrupted = 1;
    goto report;
  }
  if (err) {
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE, "planning: %s",
            m3b_err_name(err));
    return M3B_EXIT_FAIL;
  }
  if (replay->dry_run) {
    if (!replay->json)
      replay_print_plan(replay, stdout);
  } else {
    err = replay_apply(replay);
    if (err) {
      M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE, "applying: %s",
              m3b_err_name(err));
      return M3B_EXIT_FAIL;
    }
    if (replay_stopping(replay))
      replay->interrupted = 1;
  }
report:
  if (replay->producer &&
      m3b_producer_flush(replay->producer, REPLAY_KAFKA_TIMEOUT_MS))
    M3B_LOG(replay->log, M3B_LOG_WARN, MODULE,
            "some statuses were not acknowledged within %d ms",
            REPLAY_KAFKA_TIMEOUT_MS);
  handover(replay);
  if (replay->json)
    replay_print_json(replay, stdout);
  else
    replay_print_summary(replay, stdout);
  fflush(stdout);
  if (replay->dry_run)
    return replay->interrupted ? M3B_EXIT_FAIL : M3B_EXIT_OK;
  return replay->interrupted || replay->failure_count ||
                 atomic_load(&replay->produce_failed)
             ? M3B_EXIT_FAIL
             : M3B_EXIT_OK;
}

int cmd_replay(int argc, char **argv) {
  struct replay replay;
  struct sigaction sa;
  m3b_config_t *config;
  char errstr[1024];
  int rc = M3B_EXIT_FAIL;
  m3b_err_t err;

  memset(&replay, 0, sizeof(replay));
  pthread_mutex_init(&replay.failures_lock, NULL);
  replay.failures_tail = &replay.failures;
  replay.commit = -1;
  replay.stop = &stop_signal;
  replay.started_ms = listener_now_ms(CLOCK_MONOTONIC);
  config =
      m3b_cli_config(M3B_PROGRAM_LISTENER, &argc, argv, errstr, sizeof(errstr));
  if (!config) {
    fprintf(stderr, "m3bridge-listener: %s\n", errstr);
    pthread_mutex_destroy(&replay.failures_lock);
    return M3B_EXIT_FAIL;
  }
  rc = parse_args(&replay, argc, argv);
  if (rc)
    goto out;
  rc = M3B_EXIT_FAIL;
  if (m3b_config_validate(config, errstr, sizeof(errstr))) {
    fprintf(stderr, "m3bridge-listener: %s\n", errstr);
    goto out;
  }
  replay.log = m3b_cli_logger(config);
  replay.listener = replay.log ? listener_new(config, replay.log) : NULL;
  if (!replay.listener) {
    fprintf(stderr, "m3bridge-listener: out of memory\n");
    goto out;
  }
  replay.listener->stop_requested = &stop_signal;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  err = open_replay(&replay, config, errstr, sizeof(errstr));
  if (err) {
    M3B_LOG(replay.log, M3B_LOG_ERROR, MODULE, "%s (%s)", errstr,
            m3b_err_name(err));
    goto out;
  }
  rc = run_replay(&replay);
out:
  replay_cleanup(&replay);
  listener_destroy(replay.listener);
  m3b_log_destroy(replay.log);
  m3b_config_destroy(config);
  return rc;
}
