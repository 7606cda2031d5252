/*
 * replay_run.h - private to `m3bridge-listener replay` (DESIGN.md section
 * 7): the state of one replay, shared by the replay_*.c files that each
 * own one phase of it.
 *
 *   cmd_replay.c    options, opening, the fence, handover, exit code
 *   replay_read.c   reading the topic up to the fence; peeking at every
 *                   record (m3b_applier_peek; m3b_applier_check with
 *                   --verify-all) on worker threads and folding what
 *                   passed, one fold per worker
 *   replay_plan.c   comparing the folded final state with the index
 *                   (what the cluster holds) into one item per object
 *   replay_verify.c verifying the winners the plan would write; a winner
 *                   that fails sends its key back to be folded again
 *                   from verified records only
 *   replay_apply.c  applying the items tier by tier, waiting for CRDs,
 *                   deletes and prune in reverse order, statuses and dlq
 *   replay_report.c progress (a bar on a terminal, lines otherwise), the
 *                   summary table, --json, the --dry-run listing
 *
 * Threads: the main thread reads Kafka, polls the producer and reports
 * progress; worker threads check records (read phase) and apply items
 * (apply phase). Counters shared with workers are atomics; the failure
 * list has its own mutex.
 */
#ifndef M3B_REPLAY_RUN_H
#define M3B_REPLAY_RUN_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>

#include <m3b/index.h>
#include <m3b/replay.h>

#include "listener.h"

#define REPLAY_MAX_PARTITIONS 4096
#define REPLAY_KAFKA_TIMEOUT_MS 30000
/* attempts of one item when the apiserver fails transiently */
#define REPLAY_ATTEMPTS 8
/* how long a CustomResourceDefinition may take to be Established */
#define REPLAY_CRD_WAIT_MS 60000
/* records queued per check worker before the reader waits */
#define REPLAY_QUEUE_DEPTH 1024

enum replay_start { START_EARLIEST, START_TIME, START_OFFSETS };

/* What the replay decides for one object, from the folded final state and
 * the index (docs/OPERATIONS.md lists them). */
enum replay_action {
  ACT_CREATE,    /* in the final state, not in the cluster: apply */
  ACT_CHANGE,    /* in both, the cluster at an older generation: apply */
  ACT_UNCHANGED, /* in both at the same generation and hash: nothing */
  ACT_NEWER,     /* the cluster holds a newer generation: left alone */
  ACT_DELETE,    /* a signed DELETE, the object exists: delete it */
  ACT_ABSENT,    /* a signed DELETE or a tombstone, no object: nothing */
  ACT_PRUNE,     /* managed here, not in the final state, --prune: delete */
  ACT_STRAY,     /* managed here, not in the final state: left (no --prune) */
  ACT__COUNT
};

/* How an item ended. */
enum replay_result {
  RES_PLANNED,  /* not run (dry run, interrupted, or nothing to do) */
  RES_DONE,     /* written: applied, deleted or pruned */
  RES_NOOP,     /* nothing to write after all (already so) */
  RES_STALE,    /* the cluster moved to a newer generation meanwhile */
  RES_REJECTED, /* the record was refused (as `run` would refuse it) */
  RES_FAILED    /* the apiserver refused or kept failing */
};

struct replay_item {
  const struct m3b_fold_entry *entry; /* the winner; NULL for strays */
  int verified; /* the winner's signature was verified ... */
  uint8_t record_sha256[M3B_SHA256_SIZE]; /* ... over these bytes */
  char key[M3B_OBJKEY_MAX + 1];
  struct m3b_objkey objkey;
  struct m3b_index_entry live; /* what the index holds, if have_live */
  int have_live;
  enum m3b_tier tier;
  enum replay_action action;
  enum replay_result result;
};

/* One refused or failed record or object, for the summary. */
struct replay_failure {
  struct replay_failure *next;
  char key[M3B_OBJKEY_MAX + 1]; /* "" when the record key is not one */
  int32_t partition;
  int64_t offset;
  const char *what; /* "check", or the action's name */
  const char *reason;
  char message[512];
};

struct replay_progress {
  int tty;
  const char *phase; /* "read", "apply", "delete" */
  const char *tier;
  uint64_t total;
  atomic_uint_fast64_t done;
  int64_t started_ms, last_print_ms;
  uint64_t last_done;
  double rate; /* per second, smoothed */
};

struct replay {
  struct listener *listener; /* config, log, keys, kube, applier, names */
  m3b_log_t *log;

  /* options */
  enum replay_start start_mode;
  int64_t start_time_ms;
  char *start_offsets_text;
  int have_until;
  int64_t until_ms;
  int dry_run, prune, json, commit; /* commit: -1 default, 0 no, 1 yes */
  int verify_all; /* check every record while reading, not only winners */
  size_t workers;

  /* Kafka */
  m3b_consumer_t *consumer; /* assign()ed, group id = the listener's group */
  m3b_producer_t *producer; /* statuses and dlq; NULL in a dry run */
  int32_t partitions;
  int64_t *low, *high, *start, *fence, *committed;
  int group_members;
  char group_state[64];
  atomic_uint_fast64_t produced, acked, produce_failed;

  /* read phase; refolds: the keys whose winner failed verification, folded
   * again from verified records only */
  m3b_fold_t *folds[MAX_WORKERS], *refolds[MAX_WORKERS];
  uint64_t records, tombstones;
  atomic_uint_fast64_t checked, refused;
  int64_t read_ms;

  /* verify phase */
  atomic_uint_fast64_t verified; /* winners verified */
  size_t suspects;               /* winners that failed it */
  int64_t verify_ms;

  /* plan and apply */
  struct replay_item *items;
  size_t item_count;
  size_t actions[M3B_TIER__COUNT][ACT__COUNT];
  size_t results[ACT__COUNT][RES_FAILED + 1];
  size_t index_loaded;
  int64_t index_ms, apply_ms;
  pthread_t index_thread; /* replay_index_start's */
  int index_started;
  m3b_err_t index_err;
  atomic_uint_fast64_t retries;

  /* failures, in the order they happened */
  pthread_mutex_t failures_lock;
  struct replay_failure *failures, **failures_tail;
  size_t failure_count;

  /* handover */
  int committed_fence;
  char handover[512]; /* what happened to the group's offsets, and why */

  struct replay_progress progress;
  const volatile sig_atomic_t *stop;
  int interrupted;
  int64_t started_ms;
  int64_t open_ms, locate_ms; /* keys, clients; offsets and the group */
};

static inline int replay_stopping(const struct replay *replay) {
  return *replay->stop != 0;
}

/* The name of an action as printed ("create", "change", ...). */
const char *replay_action_name(enum replay_action action);

/* Records a failure (copied). Any thread. */
void replay_note_failure(struct replay *replay, const char *key,
                         int32_t partition, int64_t offset, const char *what,
                         const char *reason, const char *message);

/* Produces the status and dlq record due for an applier outcome of
 * record in (as `run` does); nothing in a dry run. Any thread. */
void replay_publish_outcome(struct replay *replay, const struct m3b_record *in,
                            const struct m3b_outcome *out);

/* --- replay_read.c --------------------------------------------------------
 */

/* A key whose folded winner failed verification, and where that record
 * is (it was reported then, and is not reported again). */
struct replay_suspect {
  char key[M3B_OBJKEY_MAX + 1];
  int32_t partition;
  int64_t offset;
};

/* Keys to read again: sorted by key (replay_suspects_sort). */
struct replay_suspects {
  struct replay_suspect *v;
  size_t count;
};

void replay_suspects_sort(struct replay_suspects *suspects);

/* Reads every record from the start offsets up to the fence on
 * replay->workers threads into folds[0..workers). Without suspects, each
 * record is peeked (checked in full with --verify-all); with suspects,
 * only records of the suspects' keys are read, each checked in full.
 * Refused records get their status and dlq record (not in a dry run) and
 * a failure entry. */
m3b_err_t replay_read(struct replay *replay, m3b_fold_t **folds,
                      const struct replay_suspects *suspects);

/* --- replay_plan.c --------------------------------------------------------
 */

/* Starts loading the index (the default kinds) on a thread of its own,
 * so the LIST runs while the topic is read. */
m3b_err_t replay_index_start(struct replay *replay);

/* Waits for the load replay_index_start began; its result. A no-op
 * M3B_OK when none runs. */
m3b_err_t replay_index_join(struct replay *replay);

/* Waits for that load, then, when the final state has kinds the load did
 * not list (custom resources, ...), tells the index about them and loads
 * it again. */
m3b_err_t replay_load_index(struct replay *replay);

/* Builds replay->items from the folds and the index and counts the
 * actions per tier. */
m3b_err_t replay_plan(struct replay *replay);

/* Decides item->action from item->entry (NULL: none) and item->live. */
void replay_classify(const struct replay *replay, struct replay_item *item);

/* Recounts replay->actions from the items. */
void replay_count_actions(struct replay *replay);

/* --- replay_verify.c ------------------------------------------------------
 */

/* Verifies (m3b_applier_check) every winner the plan would write whose
 * signature the read did not verify. Those that fail are refused as `run`
 * refuses them, and their keys are read again with every record checked
 * (replay_read with suspects): the item then takes the latest verified
 * record of its key, or none. Returns M3B_OK unless memory, threads or
 * the re-read failed. */
m3b_err_t replay_verify(struct replay *replay);

/* --- replay_apply.c -------------------------------------------------------
 */

/* Work on one item, on a worker thread; seed is the worker's own. */
typedef void (*replay_item_fn)(struct replay *replay, struct replay_item *item,
                               unsigned *seed);

/* Runs fn on items[0..count) on replay->workers threads; the main thread
 * reports progress and serves delivery reports meanwhile. Returns
 * M3B_ERR_NOMEM when threads could not be started. */
m3b_err_t replay_run_items(struct replay *replay, struct replay_item **items,
                           size_t count, replay_item_fn fn);

/* Runs the plan: applies tier by tier (waiting for CRDs after the first),
 * then deletes and prunes in reverse tier order. Returns M3B_OK unless
 * memory or threads ran out; per-item failures are in the items. */
m3b_err_t replay_apply(struct replay *replay);

/* --- replay_report.c ------------------------------------------------------
 */

void replay_progress_start(struct replay *replay, const char *phase,
                           const char *tier, uint64_t total);
/* Prints progress if it is due (main thread). */
void replay_progress_tick(struct replay *replay, int force);
/* Ends the progress line. */
void replay_progress_end(struct replay *replay);

/* The --dry-run listing: one line per object that would change. */
void replay_print_plan(const struct replay *replay, FILE *out);

/* The summary table (text) or the --json summary. */
void replay_print_summary(const struct replay *replay, FILE *out);
void replay_print_json(const struct replay *replay, FILE *out);

#endif
