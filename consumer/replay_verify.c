/*
 * replay_verify.c - the verify phase of a replay: between the plan and the
 * apply, the signature of every winner that will be written is verified.
 *
 * The read phase only peeked at records (replay_read.c says why), so a
 * winner may be a record that claims more than it is: a forged record
 * with a higher generation, say. Here each winner the plan would create,
 * change or delete from is checked in full (m3b_applier_check). A winner
 * that passes carries the digest of the bytes it was verified over into
 * the apply, which does not verify them again. One that fails is refused
 * as `run` refuses it (REJECTED status, dlq copy, a failure) and becomes a
 * suspect: its key is read again with every record checked, and the item
 * takes the latest verified record of the key, or none (then it is left
 * as the cluster has it). Winners the plan leaves alone are never
 * verified: nothing is written on their account, which is what makes a
 * replay onto a converged cluster cheap.
 */
#include <stdlib.h>
#include <string.h>

#include "replay_run.h"

#define MODULE "replay"

static int wants_verify(const struct replay_item *item) {
  return item->entry && !item->verified &&
         (item->action == ACT_CREATE || item->action == ACT_CHANGE ||
          item->action == ACT_DELETE);
}

/* On a worker: verify one winner; a refusal is reported, the item marked
 * by a cleared entry and its failed record kept in result (RES_REJECTED). */
static void verify_item(struct replay *replay, struct replay_item *item,
                        unsigned *seed) {
  const struct m3b_record *in = &item->entry->record;
  struct m3b_checked checked;
  struct m3b_outcome out;
  (void)seed;

  atomic_fetch_add(&replay->verified, 1);
  if (m3b_applier_check(replay->listener->applier, in, &out, &checked) ==
      M3B_OK) {
    item->verified = 1;
    memcpy(item->record_sha256, checked.record_sha256,
           sizeof(item->record_sha256));
    return;
  }
  atomic_fetch_add(&replay->refused, 1);
  item->result = RES_REJECTED;
  replay_note_failure(replay, item->key, in->partition, in->offset, "check",
                      out.reason ? out.reason : m3b_err_name(out.err),
                      out.message);
  replay_publish_outcome(replay, in, &out);
}

/* The entry of key in the refolds, or NULL. */
static const struct m3b_fold_entry *refolded(const struct replay *replay,
                                             const char *key) {
  size_t i;
  for (i = 0; i < replay->workers; i++) {
    const struct m3b_fold_entry *e = m3b_fold_get(replay->refolds[i], key);
    if (e)
      return e;
  }
  return NULL;
}

/* Reads the suspects' keys again, every record checked, and replans
 * their items. */
static m3b_err_t reread(struct replay *replay, struct replay_item **suspect,
                        size_t count) {
  struct replay_suspects suspects;
  char fold_err[128];
  m3b_err_t err;
  size_t i;

  suspects.v = calloc(count, sizeof(*suspects.v));
  if (!suspects.v)
    return M3B_ERR_NOMEM;
  suspects.count = count;
  for (i = 0; i < count; i++) {
    snprintf(suspects.v[i].key, sizeof(suspects.v[i].key), "%s",
             suspect[i]->key);
    suspects.v[i].partition = suspect[i]->entry->record.partition;
    suspects.v[i].offset = suspect[i]->entry->record.offset;
  }
  replay_suspects_sort(&suspects);
  for (i = 0; i < replay->workers; i++) {
    replay->refolds[i] = m3b_fold_new(fold_err, sizeof(fold_err));
    if (!replay->refolds[i]) {
      free(suspects.v);
      return M3B_ERR_NOMEM;
    }
  }
  M3B_LOG(replay->log, M3B_LOG_WARN, MODULE,
          "%zu winner(s) failed verification: reading their key(s) again "
          "with every record checked",
          count);
  err = replay_read(replay, replay->refolds, &suspects);
  free(suspects.v);
  if (err)
    return err;
  for (i = 0; i < count; i++) {
    struct replay_item *item = suspect[i];
    item->entry = refolded(replay, item->key);
    item->verified = item->entry && item->entry->verified;
    if (item->verified)
      memcpy(item->record_sha256, item->entry->record_sha256,
             sizeof(item->record_sha256));
    item->result = RES_PLANNED;
    replay_classify(replay, item);
  }
  replay_count_actions(replay);
  return M3B_OK;
}

m3b_err_t replay_verify(struct replay *replay) {
  struct replay_item **batch;
  int64_t t0 = listener_now_ms(CLOCK_MONOTONIC);
  m3b_err_t err;
  size_t i, n = 0, failed = 0;

  batch = calloc(replay->item_count ? replay->item_count : 1,
                 sizeof(struct replay_item *));
  if (!batch)
    return M3B_ERR_NOMEM;
  for (i = 0; i < replay->item_count; i++)
    if (wants_verify(&replay->items[i]))
      batch[n++] = &replay->items[i];
  replay_progress_start(replay, "verify", NULL, n);
  err = replay_run_items(replay, batch, n, verify_item);
  replay_progress_tick(replay, 1);
  replay_progress_end(replay);
  /* the refused winners, in plan order */
  for (i = 0; !err && i < n; i++)
    if (batch[i]->result == RES_REJECTED)
      batch[failed++] = batch[i];
  replay->suspects = failed;
  if (!err && failed && !replay_stopping(replay))
    err = reread(replay, batch, failed);
  free(batch);
  replay->verify_ms = listener_now_ms(CLOCK_MONOTONIC) - t0;
  return err;
}
