/*
 * replay_apply.c - the apply phase of a replay: the planned items, tier
 * by tier, through the applier's full path (m3b_applier_process checks the
 * winning record again, authorizes it, runs the stale guard, unseals and
 * applies, or deletes only a managed object), and the statuses and dlq
 * records `run` would publish for the same outcomes.
 *
 * Within a tier, replay->workers threads take items in turn; the next tier
 * starts when every item of this one finished. After the first tier the
 * CustomResourceDefinitions of the final state must be Established and
 * their kinds served before custom resources are applied. Deletes (signed
 * DELETEs, and --prune) run after every apply, last tier first.
 *
 * A transient apiserver failure retries the item with capped exponential
 * backoff (retry.* settings) up to REPLAY_ATTEMPTS times; then the item
 * FAILED and a rerun picks it up again (everything done is skipped).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "replay_run.h"

#define MODULE "replay"

/* --- statuses and dlq ----------------------------------------------------
 */

static m3b_err_t produce(struct replay *replay, const char *topic,
                         const void *key, size_t key_len, const void *value,
                         size_t value_len,
                         const struct m3b_kafka_header *headers,
                         size_t header_count) {
  char errstr[512];
  m3b_err_t err;
  do {
    err = m3b_producer_produce(replay->producer, topic, key, key_len, value,
                               value_len, headers, header_count, NULL,
                               PRODUCE_WAIT_MS, errstr, sizeof(errstr));
  } while (err == M3B_ERR_TIMEOUT && !replay_stopping(replay));
  if (err) {
    atomic_fetch_add(&replay->produce_failed, 1);
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE, "producing to %s: %s", topic,
            errstr);
  } else {
    atomic_fetch_add(&replay->produced, 1);
  }
  return err;
}

static void send_status(struct replay *replay,
                        const struct m3b_status *status) {
  struct m3b_buf buf;
  char errstr[256];
  m3b_err_t err;

  m3b_buf_init(&buf, MAX_STATUS_BYTES);
  err = m3b_status_encode(replay->listener->codec, status, &buf, errstr,
                          sizeof(errstr));
  if (err)
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE,
            "status of %s cannot be encoded (%s); sending none", status->key,
            m3b_err_name(err));
  else
    (void)produce(replay, replay->listener->status_topic, status->key,
                  strlen(status->key), buf.data, buf.len, NULL, 0);
  m3b_buf_cleanup(&buf);
}

void replay_publish_outcome(struct replay *replay, const struct m3b_record *in,
                            const struct m3b_outcome *out) {
  struct m3b_kafka_header headers[MAX_HEADERS];
  struct m3b_dlq_headers dlq;
  struct m3b_status status;
  size_t i, n = 0;

  if (!replay->producer)
    return;
  if (out->dlq) {
    m3b_outcome_dlq_headers(replay->listener->applier, out, in, &dlq);
    for (i = 0; i < in->header_count && n < M3B_KAFKA_MAX_HEADERS; i++) {
      headers[n].name = in->headers[i].name;
      headers[n].value = in->headers[i].value;
      headers[n++].size = in->headers[i].len;
    }
    for (i = 0; i < dlq.count; i++) {
      headers[n].name = dlq.headers[i].name;
      headers[n].value = dlq.headers[i].value;
      headers[n++].size = dlq.headers[i].len;
    }
    (void)produce(replay, replay->listener->dlq_topic, in->key, in->key_len,
                  in->value, in->value_len, headers, n);
  }
  if (out->status &&
      m3b_outcome_status(replay->listener->applier, out, in, &status) == M3B_OK)
    send_status(replay, &status);
}

static void publish_pruned(struct replay *replay,
                           const struct replay_item *item, const char *message,
                           int64_t latency_ms) {
  struct m3b_status status;
  if (!replay->producer)
    return;
  m3b_status_init(&status);
  status.plane = replay->listener->plane;
  status.key = (char *)item->key;
  status.generation = item->live.generation;
  status.phase = M3B_PHASE_PRUNED;
  status.message = (char *)message;
  status.observed_uid = item->live.uid[0] ? (char *)item->live.uid : NULL;
  status.readiness = M3B_READINESS_UNKNOWN;
  status.source_partition = -1;
  status.source_offset = -1;
  status.listener_id = replay->listener->listener_id;
  status.applied_at_ms = listener_now_ms(CLOCK_REALTIME);
  status.apply_latency_ms = latency_ms;
  send_status(replay, &status);
}

/* --- one item ------------------------------------------------------------
 */

/* Sleeps delay_ms in slices; non-zero when the replay is stopping. */
static int backoff(struct replay *replay, unsigned attempt, unsigned *seed) {
  long long delay = replay->listener->initial_backoff_ms
                    << (attempt < 20 ? attempt : 20);
  long long waited;
  if (delay > replay->listener->max_backoff_ms || delay <= 0)
    delay = replay->listener->max_backoff_ms;
  delay = delay / 2 + (long long)(rand_r(seed) % (delay / 2 + 1));
  atomic_fetch_add(&replay->retries, 1);
  for (waited = 0; waited < delay && !replay_stopping(replay);
       waited += POLL_MS)
    nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
  return replay_stopping(replay);
}

static void fail_item(struct replay *replay, struct replay_item *item,
                      enum replay_result result, const char *reason,
                      const char *message) {
  const struct m3b_record *r = item->entry ? &item->entry->record : NULL;
  item->result = result;
  replay_note_failure(replay, item->key, r ? r->partition : -1,
                      r ? r->offset : -1, replay_action_name(item->action),
                      reason, message);
}

static void apply_item(struct replay *replay, struct replay_item *item,
                       unsigned *seed) {
  const struct m3b_record *in = &item->entry->record;
  struct m3b_outcome out;
  unsigned attempt;

  struct m3b_checked checked;

  /* the verify phase checked the winner: only its signature is not
   * verified again, and only while the bytes are the ones it verified */
  memset(&checked, 0, sizeof(checked));
  checked.verified = item->verified;
  memcpy(checked.record_sha256, item->record_sha256,
         sizeof(checked.record_sha256));
  for (attempt = 0;; attempt++) {
    m3b_applier_process_checked(replay->listener->applier, in, &checked, &out);
    if (!out.retriable)
      break;
    M3B_LOG(replay->log, M3B_LOG_WARN, MODULE, "%s: %s (%s); attempt %u of %d",
            item->key, m3b_err_name(out.err), out.message, attempt + 1,
            REPLAY_ATTEMPTS);
    if (attempt + 1 >= REPLAY_ATTEMPTS) {
      fail_item(replay, item, RES_FAILED, m3b_err_name(out.err), out.message);
      return; /* no status: a rerun retries it, as run would */
    }
    if (backoff(replay, attempt, seed))
      return; /* interrupted: stays planned */
  }
  switch (out.phase) {
  case M3B_PHASE_APPLIED:
  case M3B_PHASE_DELETED: item->result = out.noop ? RES_NOOP : RES_DONE; break;
  case M3B_PHASE_STALE_SKIPPED: item->result = RES_STALE; break;
  case M3B_PHASE_REJECTED:
    fail_item(replay, item, RES_REJECTED, out.reason, out.message);
    break;
  default:
    fail_item(replay, item, RES_FAILED,
              out.reason ? out.reason : m3b_err_name(out.err), out.message);
    break;
  }
  replay_publish_outcome(replay, in, &out);
}

static void prune_item(struct replay *replay, struct replay_item *item,
                       unsigned *seed) {
  char api_version[M3B_INDEX_API_VERSION_MAX + 1];
  struct m3b_kube_result result;
  struct m3b_kube_ref ref;
  int64_t t0 = listener_now_ms(CLOCK_MONOTONIC);
  unsigned attempt;
  m3b_err_t err;

  if (item->objkey.group[0])
    snprintf(api_version, sizeof(api_version), "%s/%s", item->objkey.group,
             item->objkey.version);
  else
    snprintf(api_version, sizeof(api_version), "%s", item->objkey.version);
  ref.api_version = api_version;
  ref.kind = item->objkey.kind;
  ref.ns = item->objkey.ns[0] ? item->objkey.ns : NULL;
  ref.name = item->objkey.name;
  for (attempt = 0;; attempt++) {
    /* preconditions: exactly the object the index listed as ours */
    err = m3b_kube_delete(
        replay->listener->kube, &ref, item->live.uid[0] ? item->live.uid : NULL,
        item->live.resource_version[0] ? item->live.resource_version : NULL,
        &result);
    if (!err || !m3b_err_is_retriable(err))
      break;
    if (attempt + 1 >= REPLAY_ATTEMPTS) {
      fail_item(replay, item, RES_FAILED, m3b_err_name(err), result.errstr);
      return;
    }
    if (backoff(replay, attempt, seed))
      return;
  }
  if (err == M3B_OK || err == M3B_ERR_KUBE_NOT_FOUND) {
    item->result = err ? RES_NOOP : RES_DONE;
    (void)m3b_index_remove(m3b_applier_index(replay->listener->applier),
                           item->key);
    publish_pruned(replay, item,
                   err ? "pruned by replay: already absent"
                       : "pruned by replay: managed here, not in the desired "
                         "state",
                   listener_now_ms(CLOCK_MONOTONIC) - t0);
    return;
  }
  if (err == M3B_ERR_KUBE_CONFLICT) {
    fail_item(replay, item, RES_FAILED, m3b_err_name(err),
              "the object changed since it was listed; not pruned (run the "
              "replay again)");
    return;
  }
  fail_item(replay, item, RES_FAILED, m3b_err_name(err), result.errstr);
}

/* --- a tier's worth of items on the workers ------------------------------
 */

struct batch {
  struct replay *replay;
  struct replay_item **items;
  size_t count;
  replay_item_fn fn;
  atomic_size_t next;
  atomic_int running;
};

struct batch_worker {
  struct batch *batch;
  pthread_t thread;
  unsigned seed;
};

static void *batch_main(void *arg) {
  struct batch_worker *w = arg;
  struct batch *batch = w->batch;
  struct replay *replay = batch->replay;
  for (;;) {
    size_t i = atomic_fetch_add(&batch->next, 1);
    struct replay_item *item;
    if (i >= batch->count || replay_stopping(replay))
      break;
    item = batch->items[i];
    batch->fn(replay, item, &w->seed);
    atomic_fetch_add(&replay->progress.done, 1);
  }
  atomic_fetch_sub(&batch->running, 1);
  return NULL;
}

m3b_err_t replay_run_items(struct replay *replay, struct replay_item **items,
                           size_t count, replay_item_fn fn) {
  struct batch_worker workers[MAX_WORKERS];
  struct batch batch;
  size_t i, started = 0, n = replay->workers < count ? replay->workers : count;

  if (count == 0)
    return M3B_OK;
  memset(&batch, 0, sizeof(batch));
  batch.replay = replay;
  batch.items = items;
  batch.count = count;
  batch.fn = fn;
  atomic_init(&batch.next, 0);
  atomic_init(&batch.running, (int)n);
  for (i = 0; i < n; i++) {
    workers[i].batch = &batch;
    workers[i].seed =
        (unsigned)(listener_now_ms(CLOCK_REALTIME) ^ (int64_t)(i * 7919));
    if (pthread_create(&workers[i].thread, NULL, batch_main, &workers[i]) !=
        0) {
      atomic_fetch_sub(&batch.running, (int)(n - i));
      break;
    }
    started++;
  }
  while (atomic_load(&batch.running) > 0) {
    if (replay->producer)
      m3b_producer_poll(replay->producer, POLL_MS);
    else
      nanosleep(&(struct timespec){0, POLL_MS * 1000000L}, NULL);
    replay_progress_tick(replay, 0);
  }
  for (i = 0; i < started; i++)
    pthread_join(workers[i].thread, NULL);
  return started == n ? M3B_OK : M3B_ERR_NOMEM;
}

static void write_item(struct replay *replay, struct replay_item *item,
                       unsigned *seed) {
  if (item->result == RES_REJECTED)
    return; /* its winner failed verification and was not replaced */
  if (item->action == ACT_PRUNE)
    prune_item(replay, item, seed);
  else
    apply_item(replay, item, seed);
}

/* --- CRDs ----------------------------------------------------------------
 */

static int is_crd(const struct replay_item *item) {
  return strcmp(item->objkey.group, "apiextensions.k8s.io") == 0 &&
         strcmp(item->objkey.kind, "CustomResourceDefinition") == 0;
}

/* Non-zero when crd's Established condition is True and every served
 * version of its kind resolves through discovery. */
static int crd_ready(struct replay *replay, const json_t *crd) {
  const json_t *spec = json_object_get(crd, "spec");
  const char *group = json_string_value(json_object_get(spec, "group"));
  const char *kind = json_string_value(
      json_object_get(json_object_get(spec, "names"), "kind"));
  const json_t *conditions =
      json_object_get(json_object_get(crd, "status"), "conditions");
  const json_t *c, *v;
  size_t i;
  int established = 0;

  json_array_foreach(conditions, i, c) {
    const char *type = json_string_value(json_object_get(c, "type"));
    const char *status = json_string_value(json_object_get(c, "status"));
    if (type && status && strcmp(type, "Established") == 0 &&
        strcmp(status, "True") == 0)
      established = 1;
  }
  if (!established || !group || !kind)
    return 0;
  json_array_foreach(json_object_get(spec, "versions"), i, v) {
    const char *name = json_string_value(json_object_get(v, "name"));
    char api_version[M3B_INDEX_API_VERSION_MAX + 1], resource[128];
    struct m3b_kube_result result;
    int namespaced;
    if (!name || !json_is_true(json_object_get(v, "served")))
      continue;
    snprintf(api_version, sizeof(api_version), "%s/%s", group, name);
    if (m3b_kube_resolve(replay->listener->kube, api_version, kind, resource,
                         sizeof(resource), &namespaced, &result) != M3B_OK)
      return 0;
  }
  return 1;
}

/* Waits for every CRD of the final state that was applied or was already
 * there; one that does not become ready is a failure (its custom
 * resources fail on their own after it). */
static void wait_for_crds(struct replay *replay) {
  int64_t deadline = listener_now_ms(CLOCK_MONOTONIC) + REPLAY_CRD_WAIT_MS;
  size_t i, waited = 0;

  for (i = 0; i < replay->item_count; i++) {
    struct replay_item *item = &replay->items[i];
    struct m3b_kube_ref ref = {"apiextensions.k8s.io/v1",
                               "CustomResourceDefinition", NULL,
                               item->objkey.name};
    int ready = 0;
    if (item->tier != M3B_TIER_NAMESPACES || !is_crd(item) || !item->entry ||
        item->entry->state != M3B_FOLD_APPLY || item->result == RES_FAILED ||
        item->result == RES_REJECTED || item->action == ACT_NEWER)
      continue;
    waited++;
    while (!ready && !replay_stopping(replay)) {
      struct m3b_kube_result result;
      json_t *crd = NULL;
      if (m3b_kube_get(replay->listener->kube, &ref, &crd, &result) == M3B_OK)
        ready = crd_ready(replay, crd);
      json_decref(crd);
      if (ready || listener_now_ms(CLOCK_MONOTONIC) > deadline)
        break;
      if (replay->producer)
        m3b_producer_poll(replay->producer, 250);
      else
        nanosleep(&(struct timespec){0, 250 * 1000000L}, NULL);
      replay_progress_tick(replay, 0);
    }
    if (!ready && !replay_stopping(replay))
      fail_item(replay, item, RES_FAILED, "TIMEOUT",
                "the CustomResourceDefinition did not become Established "
                "and served in time");
  }
  if (waited)
    M3B_LOG(replay->log, M3B_LOG_INFO, MODULE,
            "%zu CustomResourceDefinition(s) Established", waited);
}

/* --- the plan ------------------------------------------------------------
 */

static int writes(enum replay_action action) {
  return action == ACT_CREATE || action == ACT_CHANGE || action == ACT_DELETE ||
         action == ACT_PRUNE;
}

m3b_err_t replay_apply(struct replay *replay) {
  struct replay_item **batch;
  int64_t t0 = listener_now_ms(CLOCK_MONOTONIC);
  uint64_t total = 0;
  m3b_err_t err = M3B_OK;
  size_t i, n;
  int tier;

  batch = calloc(replay->item_count ? replay->item_count : 1,
                 sizeof(struct replay_item *));
  if (!batch)
    return M3B_ERR_NOMEM;
  for (i = 0; i < replay->item_count; i++) {
    if (writes(replay->items[i].action))
      total++;
    else /* unchanged, newer, absent, stray: nothing to write */
      replay->items[i].result = RES_NOOP;
  }
  replay_progress_start(replay, "apply", NULL, total);
  for (tier = 0; tier < M3B_TIER__COUNT && !err; tier++) {
    if (replay_stopping(replay))
      break;
    for (n = 0, i = 0; i < replay->item_count; i++) {
      struct replay_item *item = &replay->items[i];
      if ((int)item->tier == tier &&
          (item->action == ACT_CREATE || item->action == ACT_CHANGE))
        batch[n++] = item;
    }
    replay->progress.tier = m3b_tier_name((enum m3b_tier)tier);
    err = replay_run_items(replay, batch, n, write_item);
    if (!err && tier == M3B_TIER_NAMESPACES)
      wait_for_crds(replay);
  }
  for (tier = M3B_TIER__COUNT - 1; tier >= 0 && !err; tier--) {
    if (replay_stopping(replay))
      break;
    for (n = 0, i = 0; i < replay->item_count; i++) {
      struct replay_item *item = &replay->items[i];
      if ((int)item->tier == tier &&
          (item->action == ACT_DELETE || item->action == ACT_PRUNE))
        batch[n++] = item;
    }
    replay->progress.phase = "delete";
    replay->progress.tier = m3b_tier_name((enum m3b_tier)tier);
    err = replay_run_items(replay, batch, n, write_item);
  }
  replay->progress.phase = "apply";
  replay->progress.tier = NULL;
  replay_progress_tick(replay, 1);
  replay_progress_end(replay);
  free(batch);
  replay->apply_ms = listener_now_ms(CLOCK_MONOTONIC) - t0;
  return err;
}
