/*
 * replay_plan.c - what a replay will do to each object: the folded final
 * state (what the control plane wants, up to the fence) against the index
 * (what this plane's objects in the cluster say they are, from their
 * m3bridge.io annotations).
 *
 * The comparison is by generation and manifest hash, the same facts the
 * stale guard uses, so an object already at its final generation is
 * skipped without a request: a replay onto a healthy cluster reads the
 * topic and LISTs the managed objects, and writes nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "replay_run.h"

#define MODULE "replay"

static void api_version_of(const struct m3b_objkey *key, char *out,
                           size_t size) {
  if (key->group[0])
    snprintf(out, size, "%s/%s", key->group, key->version);
  else
    snprintf(out, size, "%s", key->version);
}

static void *index_main(void *arg) {
  struct replay *replay = arg;
  int64_t t0 = listener_now_ms(CLOCK_MONOTONIC);
  replay->index_err = listener_load_index(replay->listener);
  replay->index_ms = listener_now_ms(CLOCK_MONOTONIC) - t0;
  return NULL;
}

m3b_err_t replay_index_start(struct replay *replay) {
  if (pthread_create(&replay->index_thread, NULL, index_main, replay) != 0)
    return M3B_ERR_NOMEM;
  replay->index_started = 1;
  return M3B_OK;
}

m3b_err_t replay_index_join(struct replay *replay) {
  if (!replay->index_started)
    return M3B_OK;
  pthread_join(replay->index_thread, NULL);
  replay->index_started = 0;
  return replay->index_err;
}

/* fold_each callback: counts the kinds of the final state the load did
 * not list, and notes them for the next load. */
struct kinds_ctx {
  m3b_index_t *index;
  size_t unlisted;
};

static int note_unlisted(const struct m3b_fold_entry *entry, void *opaque) {
  struct kinds_ctx *ctx = opaque;
  char api_version[M3B_INDEX_API_VERSION_MAX + 1];
  struct m3b_objkey key;
  if (m3b_objkey_parse(entry->key, strlen(entry->key), &key, NULL, 0))
    return 0;
  api_version_of(&key, api_version, sizeof(api_version));
  if (!m3b_index_listed(ctx->index, api_version, key.kind) &&
      m3b_index_note_kind(ctx->index, api_version, key.kind) == M3B_OK)
    ctx->unlisted++;
  return 0;
}

m3b_err_t replay_load_index(struct replay *replay) {
  struct kinds_ctx ctx = {m3b_applier_index(replay->listener->applier), 0};
  m3b_err_t err = replay_index_join(replay);
  size_t i;

  if (err)
    return err;
  for (i = 0; i < replay->workers; i++)
    (void)m3b_fold_each(replay->folds[i], note_unlisted, &ctx);
  if (ctx.unlisted) {
    /* kinds beyond the defaults (custom resources, ...): list them too */
    int64_t t0 = listener_now_ms(CLOCK_MONOTONIC);
    M3B_LOG(replay->log, M3B_LOG_INFO, MODULE,
            "the topic has %zu kind(s) beyond the defaults: listing them",
            ctx.unlisted);
    err = listener_load_index_kinds(replay->listener, M3B_INDEX_LOAD_NOTED);
    replay->index_ms += listener_now_ms(CLOCK_MONOTONIC) - t0;
  }
  replay->index_loaded = m3b_index_count(ctx.index);
  return err;
}

struct plan_ctx {
  struct replay *replay;
  m3b_index_t *index;
  size_t next, cap;
};

void replay_classify(const struct replay *replay, struct replay_item *item) {
  const struct m3b_fold_entry *e = item->entry;
  const struct m3b_index_entry *live = &item->live;
  int here = item->have_live && !live->deleted;

  if (!e) { /* a stray of the index, or a key with no verified record */
    if (!here)
      item->action = ACT_ABSENT;
    else if (replay->start_mode == START_EARLIEST)
      item->action = replay->prune ? ACT_PRUNE : ACT_STRAY;
    else /* a partial read knows nothing of it */
      item->action = ACT_NEWER;
    return;
  }
  switch (e->state) {
  case M3B_FOLD_APPLY:
    if (!here)
      item->action = ACT_CREATE;
    else if (live->generation == e->generation &&
             memcmp(live->manifest_sha256, e->manifest_sha256,
                    sizeof(live->manifest_sha256)) == 0)
      item->action = ACT_UNCHANGED;
    else if (live->generation < e->generation)
      item->action = ACT_CHANGE;
    else
      item->action = ACT_NEWER;
    break;
  case M3B_FOLD_DELETE:
    if (!here)
      item->action = ACT_ABSENT;
    else if (live->generation > e->generation)
      item->action = ACT_NEWER;
    else
      item->action = ACT_DELETE;
    break;
  case M3B_FOLD_FORGOTTEN:
    /* the tombstone is all that is left of a DELETE: the object, if it
     * is still here, is a stray; deletes only by a signed DELETE or an
     * explicit --prune */
    if (!here)
      item->action = ACT_ABSENT;
    else
      item->action = replay->prune ? ACT_PRUNE : ACT_STRAY;
    break;
  }
}

static void fill(struct plan_ctx *ctx, const struct m3b_fold_entry *entry,
                 const char *key, const struct m3b_index_entry *live) {
  struct replay_item *item;
  if (ctx->next >= ctx->cap)
    return; /* the index grew after it was counted: nothing writes it now */
  item = &ctx->replay->items[ctx->next++];
  memset(item, 0, sizeof(*item));
  item->entry = entry;
  if (entry && entry->verified) {
    item->verified = 1;
    memcpy(item->record_sha256, entry->record_sha256,
           sizeof(item->record_sha256));
  }
  snprintf(item->key, sizeof(item->key), "%s", key);
  (void)m3b_objkey_parse(key, strlen(key), &item->objkey, NULL, 0);
  if (live) {
    item->live = *live;
    item->have_live = 1;
  } else if (m3b_index_get(ctx->index, key, &item->live) == M3B_OK) {
    item->have_live = 1;
  }
  item->tier = m3b_tier_of(item->objkey.group, item->objkey.kind);
  replay_classify(ctx->replay, item);
  item->result = RES_PLANNED;
}

static int add_entry(const struct m3b_fold_entry *entry, void *opaque) {
  fill(opaque, entry, entry->key, NULL);
  return 0;
}

static int in_folds(const struct replay *replay, const char *key) {
  size_t i;
  for (i = 0; i < replay->workers; i++)
    if (m3b_fold_get(replay->folds[i], key))
      return 1;
  return 0;
}

static int count_stray(const char *key, const struct m3b_index_entry *entry,
                       void *opaque) {
  struct plan_ctx *ctx = opaque;
  if (!entry->deleted && !in_folds(ctx->replay, key))
    ctx->next++;
  return 0;
}

static int add_stray(const char *key, const struct m3b_index_entry *entry,
                     void *opaque) {
  struct plan_ctx *ctx = opaque;
  if (!entry->deleted && !in_folds(ctx->replay, key))
    fill(ctx, NULL, key, entry);
  return 0;
}

static int by_tier_then_key(const void *a, const void *b) {
  const struct replay_item *x = a, *y = b;
  if (x->tier != y->tier)
    return x->tier < y->tier ? -1 : 1;
  return strcmp(x->key, y->key);
}

m3b_err_t replay_plan(struct replay *replay) {
  struct plan_ctx ctx;
  size_t i, count = 0, strays = 0;

  memset(&ctx, 0, sizeof(ctx));
  ctx.replay = replay;
  ctx.index = m3b_applier_index(replay->listener->applier);
  for (i = 0; i < replay->workers; i++)
    count += m3b_fold_count(replay->folds[i]);
  /* strays only mean something when the fold saw the whole topic */
  if (replay->start_mode == START_EARLIEST) {
    (void)m3b_index_each(ctx.index, count_stray, &ctx);
    strays = ctx.next;
    ctx.next = 0;
  }
  ctx.cap = count + strays;
  replay->items = calloc(ctx.cap ? ctx.cap : 1, sizeof(*replay->items));
  if (!replay->items)
    return M3B_ERR_NOMEM;
  for (i = 0; i < replay->workers; i++)
    (void)m3b_fold_each(replay->folds[i], add_entry, &ctx);
  if (strays) {
    size_t before = ctx.next;
    (void)m3b_index_each(ctx.index, add_stray, &ctx);
    if (ctx.next - before != strays)
      M3B_LOG(replay->log, M3B_LOG_WARN, MODULE,
              "the index changed while it was read (%zu strays, then %zu)",
              strays, ctx.next - before);
  }
  replay->item_count = ctx.next;
  qsort(replay->items, replay->item_count, sizeof(*replay->items),
        by_tier_then_key);
  replay_count_actions(replay);
  return M3B_OK;
}

void replay_count_actions(struct replay *replay) {
  size_t i;
  memset(replay->actions, 0, sizeof(replay->actions));
  for (i = 0; i < replay->item_count; i++)
    replay->actions[replay->items[i].tier][replay->items[i].action]++;
}
