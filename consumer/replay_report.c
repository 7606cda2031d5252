/*
 * replay_report.c - what a replay tells its operator: progress while it
 * runs (one redrawn line on a terminal; a plain line every few seconds
 * otherwise, e.g. in a Job's log), the --dry-run listing, and at the end a
 * summary table or, with --json, one JSON object on stdout.
 *
 * Progress goes to stderr next to the JSON log lines; the listing and the
 * summary go to stdout, so `replay --json > summary.json` stays parseable.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "replay_run.h"

#define PLAIN_EVERY_MS 2000
#define TTY_EVERY_MS 200
#define MAX_LISTED_FAILURES 20

static const char *const action_names[ACT__COUNT] = {
    "create", "change", "unchanged", "newer",
    "delete", "absent", "prune",     "stray"};

const char *replay_action_name(enum replay_action action) {
  if ((int)action < 0 || action >= ACT__COUNT)
    return "?";
  return action_names[action];
}

void replay_progress_start(struct replay *replay, const char *phase,
                           const char *tier, uint64_t total) {
  struct replay_progress *p = &replay->progress;
  p->tty = isatty(STDERR_FILENO);
  p->phase = phase;
  p->tier = tier;
  p->total = total;
  atomic_store(&p->done, 0);
  p->started_ms = listener_now_ms(CLOCK_MONOTONIC);
  p->last_print_ms = p->started_ms;
  p->last_done = 0;
  p->rate = 0;
}

static void format_eta(char *out, size_t size, double seconds) {
  if (seconds < 0 || seconds > 1e7)
    snprintf(out, size, "?");
  else if (seconds < 100)
    snprintf(out, size, "%.0f s", seconds);
  else if (seconds < 6000)
    snprintf(out, size, "%.0f min", seconds / 60);
  else
    snprintf(out, size, "%.1f h", seconds / 3600);
}

void replay_progress_tick(struct replay *replay, int force) {
  struct replay_progress *p = &replay->progress;
  int64_t now = listener_now_ms(CLOCK_MONOTONIC);
  uint64_t done = atomic_load(&p->done);
  int64_t every = p->tty ? TTY_EVERY_MS : PLAIN_EVERY_MS;
  double pct, rate;
  char eta[32], bar[41];
  const char *unit;

  if (replay->json && !p->tty && !force)
    return; /* machine use: only the final line */
  if (!p->phase || (!force && now - p->last_print_ms < every))
    return;
  if (now > p->last_print_ms) {
    rate = (double)(done - p->last_done) * 1000.0 /
           (double)(now - p->last_print_ms);
    p->rate = p->rate > 0 ? 0.7 * p->rate + 0.3 * rate : rate;
  }
  if (force && now > p->started_ms)
    p->rate = (double)done * 1000.0 / (double)(now - p->started_ms);
  p->last_print_ms = now;
  p->last_done = done;
  pct = p->total ? 100.0 * (double)done / (double)p->total : 100.0;
  if (pct > 100)
    pct = 100;
  format_eta(
      eta, sizeof(eta),
      p->rate > 0 && p->total > done ? (double)(p->total - done) / p->rate : 0);
  unit = strcmp(p->phase, "read") == 0 ? "records" : "objects";
  if (p->tty) {
    size_t fill = (size_t)(pct * 40 / 100), i;
    for (i = 0; i < 40; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[40] = '\0';
    fprintf(stderr,
            "\r\033[K%-6s %-10s [%s] %" PRIu64 "/%" PRIu64
            " (%3.0f%%) %.0f %s/s ETA %s",
            p->phase, p->tier ? p->tier : "", bar, done, p->total, pct, p->rate,
            unit, eta);
  } else {
    fprintf(stderr,
            "replay: %s%s%s %" PRIu64 "/%" PRIu64 " %s (%.0f%%), %.0f/s, "
            "ETA %s\n",
            p->phase, p->tier ? " tier " : "", p->tier ? p->tier : "", done,
            p->total, unit, pct, p->rate, eta);
  }
  fflush(stderr);
}

void replay_progress_end(struct replay *replay) {
  if (replay->progress.tty)
    fputc('\n', stderr);
  replay->progress.phase = NULL;
}

/* --- the dry-run listing --------------------------------------------------
 */

void replay_print_plan(const struct replay *replay, FILE *out) {
  size_t i;
  for (i = 0; i < replay->item_count; i++) {
    const struct replay_item *item = &replay->items[i];
    const struct m3b_fold_entry *e = item->entry;
    switch (item->action) {
    case ACT_CREATE:
      fprintf(out, "create  %s (generation %" PRId64 ")\n", item->key,
              e->generation);
      break;
    case ACT_CHANGE:
      fprintf(out, "change  %s (generation %" PRId64 " -> %" PRId64 ")\n",
              item->key, item->live.generation, e->generation);
      break;
    case ACT_DELETE:
      fprintf(out, "delete  %s (generation %" PRId64 ")\n", item->key,
              e->generation);
      break;
    case ACT_PRUNE:
      fprintf(out, "prune   %s (managed here, not in the desired state)\n",
              item->key);
      break;
    case ACT_NEWER:
      fprintf(out,
              "left    %s (the cluster has generation %" PRId64
              ", the replay %" PRId64 ")\n",
              item->key, item->live.generation, e ? e->generation : -1);
      break;
    case ACT_STRAY:
      fprintf(out,
              "left    %s (managed here, not in the desired state; --prune "
              "deletes it)\n",
              item->key);
      break;
    default: /* unchanged, absent: counted in the summary */ break;
    }
  }
}

/* --- summary --------------------------------------------------------------
 */

static void print_offsets(FILE *out, const struct replay *replay,
                          const int64_t *offsets) {
  int32_t p;
  for (p = 0; p < replay->partitions; p++)
    fprintf(out, "%s%d:%" PRId64, p ? "," : "", (int)p, offsets[p]);
}

/* Items of action that ended in result. */
static size_t count_results(const struct replay *replay,
                            enum replay_action action,
                            enum replay_result result) {
  size_t i, n = 0;
  for (i = 0; i < replay->item_count; i++)
    if (replay->items[i].action == action && replay->items[i].result == result)
      n++;
  return n;
}

static size_t count_failed(const struct replay *replay, int tier) {
  size_t i, n = 0;
  for (i = 0; i < replay->item_count; i++)
    if ((tier < 0 || (int)replay->items[i].tier == tier) &&
        (replay->items[i].result == RES_FAILED ||
         replay->items[i].result == RES_REJECTED))
      n++;
  return n;
}

void replay_print_summary(const struct replay *replay, FILE *out) {
  size_t totals[ACT__COUNT] = {0};
  const struct replay_failure *f;
  size_t listed = 0;
  int t, a;

  fprintf(out, "\n%s %s: plane %s, %d partition(s), from ",
          replay->dry_run ? "dry run of the replay of" : "replay of",
          replay->listener->desired_topic, replay->listener->plane,
          (int)replay->partitions);
  print_offsets(out, replay, replay->start);
  fprintf(out, " to the fence ");
  print_offsets(out, replay, replay->fence);
  fprintf(out, "\n");
  fprintf(out,
          "read %" PRIu64 " record(s) (%" PRIu64 " tombstone(s)) in %.1f s; "
          "%" PRIu64 " refused; index: %zu managed object(s) in %.1f s; "
          "%" PRIu64 " signature(s) verified %s in %.1f s\n\n",
          replay->records, replay->tombstones, (double)replay->read_ms / 1000.0,
          (uint64_t)atomic_load(&replay->refused), replay->index_loaded,
          (double)replay->index_ms / 1000.0,
          (uint64_t)(replay->verify_all ? atomic_load(&replay->checked)
                                        : atomic_load(&replay->verified)),
          replay->verify_all ? "(--verify-all: every record)"
                             : "(the records to write)",
          (double)(replay->verify_all ? replay->read_ms : replay->verify_ms) /
              1000.0);
  fprintf(out, "%-11s", "tier");
  for (a = 0; a < ACT__COUNT; a++)
    fprintf(out, " %9s", action_names[a]);
  fprintf(out, " %9s\n", "failed");
  for (t = 0; t < M3B_TIER__COUNT; t++) {
    size_t row = 0;
    for (a = 0; a < ACT__COUNT; a++)
      row += replay->actions[t][a];
    if (!row)
      continue;
    fprintf(out, "%-11s", m3b_tier_name((enum m3b_tier)t));
    for (a = 0; a < ACT__COUNT; a++) {
      fprintf(out, " %9zu", replay->actions[t][a]);
      totals[a] += replay->actions[t][a];
    }
    fprintf(out, " %9zu\n", count_failed(replay, t));
  }
  fprintf(out, "%-11s", "total");
  for (a = 0; a < ACT__COUNT; a++)
    fprintf(out, " %9zu", totals[a]);
  fprintf(out, " %9zu\n\n", count_failed(replay, -1));
  if (!replay->dry_run) {
    size_t stale = 0;
    for (a = 0; a < ACT__COUNT; a++)
      stale += count_results(replay, (enum replay_action)a, RES_STALE);
    fprintf(out,
            "written: %zu created, %zu changed, %zu deleted, %zu pruned; "
            "%zu already so; %zu moved on meanwhile (newer); %" PRIu64
            " retries; in %.1f s\n",
            count_results(replay, ACT_CREATE, RES_DONE),
            count_results(replay, ACT_CHANGE, RES_DONE),
            count_results(replay, ACT_DELETE, RES_DONE),
            count_results(replay, ACT_PRUNE, RES_DONE),
            count_results(replay, ACT_CREATE, RES_NOOP) +
                count_results(replay, ACT_CHANGE, RES_NOOP) +
                count_results(replay, ACT_DELETE, RES_NOOP) +
                count_results(replay, ACT_PRUNE, RES_NOOP),
            stale, (uint64_t)atomic_load(&replay->retries),
            (double)replay->apply_ms / 1000.0);
    fprintf(out,
            "statuses and dlq records: %" PRIu64 " sent, %" PRIu64
            " acknowledged, %" PRIu64 " failed\n",
            (uint64_t)atomic_load(&replay->produced),
            (uint64_t)atomic_load(&replay->acked),
            (uint64_t)atomic_load(&replay->produce_failed));
  }
  if (replay->handover[0])
    fprintf(out, "handover: %s\n", replay->handover);
  if (replay->interrupted)
    fprintf(out, "INTERRUPTED: run the same command again to finish; what "
                 "is done is skipped\n");
  for (f = replay->failures; f; f = f->next) {
    if (listed++ == 0)
      fprintf(out, "\n%zu problem(s):\n", replay->failure_count);
    if (listed > MAX_LISTED_FAILURES) {
      fprintf(out, "  ... and %zu more (--json lists all)\n",
              replay->failure_count - MAX_LISTED_FAILURES);
      break;
    }
    fprintf(out, "  %-7s %s %s: %s", f->what, f->key[0] ? f->key : "-",
            f->reason, f->message);
    if (f->partition >= 0)
      fprintf(out, " (partition %d offset %" PRId64 ")", (int)f->partition,
              f->offset);
    fputc('\n', out);
  }
}

/* --- JSON -----------------------------------------------------------------
 */

static json_t *offsets_json(const struct replay *replay,
                            const int64_t *offsets) {
  json_t *obj = json_object();
  char name[16];
  int32_t p;
  for (p = 0; p < replay->partitions; p++) {
    snprintf(name, sizeof(name), "%d", (int)p);
    json_object_set_new(obj, name, json_integer(offsets[p]));
  }
  return obj;
}

static const char *result_name(enum replay_result result) {
  static const char *const names[] = {"planned", "done",     "noop",
                                      "stale",   "rejected", "failed"};
  return names[result];
}

void replay_print_json(const struct replay *replay, FILE *out) {
  json_t *root = json_object(), *tiers = json_object(), *totals = json_object(),
         *failures = json_array(), *objects = json_array(),
         *results = json_object();
  size_t total[ACT__COUNT] = {0}, i;
  const struct replay_failure *f;
  char *text;
  int t, a, r;

  json_object_set_new(root, "plane", json_string(replay->listener->plane));
  json_object_set_new(root, "topic",
                      json_string(replay->listener->desired_topic));
  json_object_set_new(root, "dry_run", json_boolean(replay->dry_run));
  json_object_set_new(root, "prune", json_boolean(replay->prune));
  json_object_set_new(root, "interrupted", json_boolean(replay->interrupted));
  json_object_set_new(root, "start", offsets_json(replay, replay->start));
  json_object_set_new(root, "fence", offsets_json(replay, replay->fence));
  json_object_set_new(root, "records",
                      json_integer((json_int_t)replay->records));
  json_object_set_new(root, "tombstones",
                      json_integer((json_int_t)replay->tombstones));
  json_object_set_new(root, "refused",
                      json_integer((json_int_t)atomic_load(&replay->refused)));
  json_object_set_new(root, "verify_all", json_boolean(replay->verify_all));
  json_object_set_new(root, "verified",
                      json_integer((json_int_t)atomic_load(&replay->verified)));
  json_object_set_new(root, "suspects",
                      json_integer((json_int_t)replay->suspects));
  json_object_set_new(root, "index_objects",
                      json_integer((json_int_t)replay->index_loaded));
  for (t = 0; t < M3B_TIER__COUNT; t++) {
    json_t *row = json_object();
    size_t sum = 0;
    for (a = 0; a < ACT__COUNT; a++) {
      sum += replay->actions[t][a];
      total[a] += replay->actions[t][a];
      json_object_set_new(row, action_names[a],
                          json_integer((json_int_t)replay->actions[t][a]));
    }
    json_object_set_new(row, "failed",
                        json_integer((json_int_t)count_failed(replay, t)));
    if (sum)
      json_object_set_new(tiers, m3b_tier_name((enum m3b_tier)t), row);
    else
      json_decref(row);
  }
  for (a = 0; a < ACT__COUNT; a++) {
    json_t *per = json_object();
    json_object_set_new(totals, action_names[a],
                        json_integer((json_int_t)total[a]));
    for (r = RES_PLANNED; r <= RES_FAILED; r++) {
      size_t n =
          count_results(replay, (enum replay_action)a, (enum replay_result)r);
      if (n)
        json_object_set_new(per, result_name((enum replay_result)r),
                            json_integer((json_int_t)n));
    }
    json_object_set_new(results, action_names[a], per);
  }
  json_object_set_new(totals, "failed",
                      json_integer((json_int_t)count_failed(replay, -1)));
  json_object_set_new(root, "tiers", tiers);
  json_object_set_new(root, "totals", totals);
  json_object_set_new(root, "results", results);
  for (f = replay->failures; f; f = f->next) {
    json_t *o = json_object();
    json_object_set_new(o, "key", json_string(f->key));
    json_object_set_new(o, "what", json_string(f->what));
    json_object_set_new(o, "reason", json_string(f->reason));
    json_object_set_new(o, "message", json_string(f->message));
    json_object_set_new(o, "partition", json_integer(f->partition));
    json_object_set_new(o, "offset", json_integer(f->offset));
    json_array_append_new(failures, o);
  }
  json_object_set_new(root, "failures", failures);
  if (replay->dry_run) { /* what would happen to each object */
    for (i = 0; i < replay->item_count; i++) {
      const struct replay_item *item = &replay->items[i];
      json_t *o;
      if (item->action == ACT_UNCHANGED || item->action == ACT_ABSENT)
        continue;
      o = json_object();
      json_object_set_new(o, "key", json_string(item->key));
      json_object_set_new(o, "action", json_string(action_names[item->action]));
      json_object_set_new(o, "tier", json_string(m3b_tier_name(item->tier)));
      json_array_append_new(objects, o);
    }
    json_object_set_new(root, "objects", objects);
  } else {
    json_decref(objects);
  }
  json_object_set_new(
      root, "statuses",
      json_pack("{s:I,s:I,s:I}", "sent",
                (json_int_t)atomic_load(&replay->produced), "acknowledged",
                (json_int_t)atomic_load(&replay->acked), "failed",
                (json_int_t)atomic_load(&replay->produce_failed)));
  json_object_set_new(root, "retries",
                      json_integer((json_int_t)atomic_load(&replay->retries)));
  json_object_set_new(root, "handover",
                      json_pack("{s:b,s:s}", "committed",
                                replay->committed_fence, "detail",
                                replay->handover));
  json_object_set_new(root, "open_ms", json_integer(replay->open_ms));
  json_object_set_new(root, "locate_ms", json_integer(replay->locate_ms));
  json_object_set_new(root, "read_ms", json_integer(replay->read_ms));
  json_object_set_new(root, "verify_ms", json_integer(replay->verify_ms));
  json_object_set_new(root, "index_ms", json_integer(replay->index_ms));
  json_object_set_new(root, "apply_ms", json_integer(replay->apply_ms));
  json_object_set_new(
      root, "elapsed_ms",
      json_integer(listener_now_ms(CLOCK_MONOTONIC) - replay->started_ms));
  text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (text) {
    fprintf(out, "%s\n", text);
    free(text);
  }
  json_decref(root);
}
