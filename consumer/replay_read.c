/*
 * replay_read.c - the read phase of a replay: every record of the desired
 * topic from the start offsets up to the fence, peeked at (or checked)
 * and folded.
 *
 * The main thread polls the assign()ed read_committed consumer and hands
 * each record, by a hash of its key, to one of replay->workers threads,
 * so the records of one key are checked and folded in topic order. Each
 * worker runs m3b_applier_peek (decoding, plane, keys, manifest size and
 * hash, authorization: everything `run` checks before the apiserver but
 * the signature and the manifest's parse) and offers what passed to its
 * own fold; the folds hold disjoint keys. Verifying every signature
 * would cost a replay onto a converged cluster most of its time (Ed25519
 * verify is ~130 us, and nothing is written there), so only the winners
 * that will be written are verified, after the plan (replay_verify.c);
 * a winner that fails there brings its key back here, read with every
 * record checked, so a tampered record never displaces a valid one.
 * With --verify-all every record is checked here, as `run` checks it.
 *
 * A refused record is reported like `run` reports it (REJECTED status,
 * dlq copy) and never reaches the fold.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "replay_run.h"

#define MODULE "replay"

struct check_worker {
  struct replay *replay;
  m3b_fold_t *fold;
  const struct replay_suspects *suspects; /* NULL: every key, peeked */
  pthread_t thread;
  int started;
  pthread_mutex_t lock;
  pthread_cond_t nonempty, nonfull;
  struct job *ring[REPLAY_QUEUE_DEPTH];
  size_t head, count;
  int busy; /* a job is being checked */
  int stop;
  m3b_err_t err; /* a fold failure (memory, limit): the replay stops */
};

static uint64_t key_hash(const void *key, size_t len) {
  const unsigned char *p = key;
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t i;
  for (i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

static int by_suspect_key(const void *a, const void *b) {
  return strcmp(((const struct replay_suspect *)a)->key,
                ((const struct replay_suspect *)b)->key);
}

void replay_suspects_sort(struct replay_suspects *suspects) {
  if (suspects->count > 1)
    qsort(suspects->v, suspects->count, sizeof(*suspects->v), by_suspect_key);
}

/* The suspect of key[0..len), or NULL. */
static const struct replay_suspect *
find_suspect(const struct replay_suspects *suspects, const void *key,
             size_t len) {
  struct replay_suspect probe;
  if (!key || len > M3B_OBJKEY_MAX)
    return NULL;
  memcpy(probe.key, key, len);
  probe.key[len] = '\0';
  probe.partition = -1; /* compared by key only */
  probe.offset = -1;
  return bsearch(&probe, suspects->v, suspects->count, sizeof(*suspects->v),
                 by_suspect_key);
}

static void check_one(struct check_worker *w, struct job *job) {
  struct replay *replay = w->replay;
  struct m3b_record in;
  struct m3b_outcome out;
  struct m3b_checked checked;
  struct m3b_fold_event event;
  m3b_err_t err;

  listener_job_record(job, replay->listener->desired_topic, &in);

  if (w->suspects || replay->verify_all)
    err = m3b_applier_check(replay->listener->applier, &in, &out, &checked);
  else
    err = m3b_applier_peek(replay->listener->applier, &in, &out, &checked);
  atomic_fetch_add(&replay->checked, 1);
  if (!err && out.forget) {
    if (!out.key[0])
      return; /* a tombstone of something that is no object key */
    err = m3b_fold_offer(w->fold, &in, NULL, NULL);
  } else if (!err) {
    memset(&event, 0, sizeof(event));
    event.generation = checked.generation;
    event.op = checked.op;
    memcpy(event.manifest_sha256, checked.manifest_sha256,
           sizeof(event.manifest_sha256));
    event.verified = checked.verified;
    memcpy(event.record_sha256, checked.record_sha256,
           sizeof(event.record_sha256));
    err = m3b_fold_offer(w->fold, &in, &event, NULL);
  } else {
    const struct replay_suspect *s =
        w->suspects ? find_suspect(w->suspects, in.key, in.key_len) : NULL;
    if (s && s->partition == in.partition && s->offset == in.offset)
      return; /* the winner the verify phase refused and reported */
    atomic_fetch_add(&replay->refused, 1);
    replay_note_failure(replay, out.key, in.partition, in.offset, "check",
                        out.reason ? out.reason : m3b_err_name(out.err),
                        out.message);
    replay_publish_outcome(replay, &in, &out);
    return;
  }
  if (err) {
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE,
            "folding partition %d offset %" PRId64 ": %s", (int)in.partition,
            in.offset, m3b_err_name(err));
    pthread_mutex_lock(&w->lock);
    if (!w->err)
      w->err = err;
    pthread_mutex_unlock(&w->lock);
  }
}

static void *check_main(void *arg) {
  struct check_worker *w = arg;
  for (;;) {
    struct job *job;
    pthread_mutex_lock(&w->lock);
    while (!w->count && !w->stop)
      pthread_cond_wait(&w->nonempty, &w->lock);
    if (!w->count && w->stop) {
      pthread_mutex_unlock(&w->lock);
      break;
    }
    job = w->ring[w->head];
    w->head = (w->head + 1) % REPLAY_QUEUE_DEPTH;
    w->count--;
    w->busy = 1;
    pthread_cond_signal(&w->nonfull);
    pthread_mutex_unlock(&w->lock);
    check_one(w, job);
    listener_job_free(job);
    pthread_mutex_lock(&w->lock);
    w->busy = 0;
    pthread_cond_broadcast(&w->nonfull); /* also "idle" for the drain */
    pthread_mutex_unlock(&w->lock);
  }
  return NULL;
}

/* With w->lock held: waits up to 50 ms for w to take a job (nonfull),
 * then, lock released meanwhile, serves delivery reports and progress. */
static void wait_on_worker(struct replay *replay, struct check_worker *w) {
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 50 * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&w->nonfull, &w->lock, &until);
  pthread_mutex_unlock(&w->lock);
  if (replay->producer)
    m3b_producer_poll(replay->producer, 0);
  replay_progress_tick(replay, 0);
  pthread_mutex_lock(&w->lock);
}

/* Queues job on w, waiting (and serving the producer and progress) while
 * the queue is full. */
static void enqueue(struct replay *replay, struct check_worker *w,
                    struct job *job) {
  pthread_mutex_lock(&w->lock);
  while (w->count == REPLAY_QUEUE_DEPTH)
    wait_on_worker(replay, w);
  w->ring[(w->head + w->count) % REPLAY_QUEUE_DEPTH] = job;
  w->count++;
  pthread_cond_signal(&w->nonempty);
  pthread_mutex_unlock(&w->lock);
}

/* Waits until every queue is empty and no worker is busy. */
static void drain(struct replay *replay, struct check_worker *workers,
                  size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    struct check_worker *w = &workers[i];
    pthread_mutex_lock(&w->lock);
    while (w->count || w->busy)
      wait_on_worker(replay, w);
    pthread_mutex_unlock(&w->lock);
  }
}

static void stop_workers(struct check_worker *workers, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    pthread_mutex_lock(&workers[i].lock);
    workers[i].stop = 1;
    pthread_cond_signal(&workers[i].nonempty);
    pthread_mutex_unlock(&workers[i].lock);
  }
  for (i = 0; i < n; i++) {
    if (workers[i].started)
      pthread_join(workers[i].thread, NULL);
    while (workers[i].count) { /* left by an interrupted read */
      listener_job_free(workers[i].ring[workers[i].head]);
      workers[i].head = (workers[i].head + 1) % REPLAY_QUEUE_DEPTH;
      workers[i].count--;
    }
    pthread_cond_destroy(&workers[i].nonempty);
    pthread_cond_destroy(&workers[i].nonfull);
    pthread_mutex_destroy(&workers[i].lock);
  }
}

static const struct replay_suspects *
w_suspects(const struct check_worker *workers) {
  return workers[0].suspects;
}

/* The poll loop; *pos tracks the next offset per partition for progress. */
static m3b_err_t read_loop(struct replay *replay, struct check_worker *workers,
                           int64_t *pos) {
  const struct m3b_kafka_message *msg;
  char errstr[512];
  m3b_err_t err;
  size_t i;

  while (!m3b_consumer_at_fence(replay->consumer)) {
    if (replay_stopping(replay))
      return M3B_ERR_INTERRUPTED;
    for (i = 0; i < replay->workers; i++)
      if (workers[i].err)
        return workers[i].err;
    if (replay->producer)
      m3b_producer_poll(replay->producer, 0);
    replay_progress_tick(replay, 0);
    err = m3b_consumer_poll(replay->consumer, POLL_MS, &msg, errstr,
                            sizeof(errstr));
    if (err == M3B_ERR_TIMEOUT)
      continue;
    if (err == M3B_ERR_KAFKA_FATAL || err == M3B_ERR_KAFKA_AUTH) {
      M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
      return err;
    }
    if (err) { /* transport: librdkafka reconnects; keep polling */
      M3B_LOG(replay->log, M3B_LOG_WARN, MODULE, "%s (%s); still reading",
              errstr, m3b_err_name(err));
      continue;
    }
    if (msg->partition < 0 || msg->partition >= replay->partitions)
      continue;
    if (msg->offset + 1 > pos[msg->partition]) {
      atomic_fetch_add(&replay->progress.done,
                       (uint64_t)(msg->offset + 1 - pos[msg->partition]));
      pos[msg->partition] = msg->offset + 1;
    }
    if (w_suspects(workers)) {
      /* a re-read: only the suspects' keys, counted by the first read */
      if (!find_suspect(w_suspects(workers), msg->key,
                        msg->key ? msg->key_len : 0))
        continue;
    } else {
      replay->records++;
      if (!msg->value)
        replay->tombstones++;
    }
    {
      struct job *job = listener_job_new(msg, 0);
      if (!job)
        return M3B_ERR_NOMEM;
      enqueue(replay,
              &workers[key_hash(msg->key, msg->key ? msg->key_len : 0) %
                       replay->workers],
              job);
    }
  }
  return M3B_OK;
}

m3b_err_t replay_read(struct replay *replay, m3b_fold_t **folds,
                      const struct replay_suspects *suspects) {
  struct check_worker *workers;
  int64_t *pos = NULL;
  uint64_t total = 0;
  char errstr[512];
  int64_t t0 = listener_now_ms(CLOCK_MONOTONIC);
  m3b_err_t err = M3B_OK;
  size_t i;
  int32_t p;

  workers = calloc(replay->workers, sizeof(*workers));
  pos = calloc((size_t)replay->partitions, sizeof(*pos));
  if (!workers || !pos) {
    free(workers);
    free(pos);
    return M3B_ERR_NOMEM;
  }
  for (p = 0; p < replay->partitions; p++) {
    /* a re-read needs only the suspects' partitions: a key's records are
     * all in one partition */
    pos[p] = suspects ? replay->fence[p] : replay->start[p];
    for (i = 0; suspects && i < suspects->count; i++)
      if (suspects->v[i].partition == p)
        pos[p] = replay->start[p];
    if (replay->fence[p] > pos[p])
      total += (uint64_t)(replay->fence[p] - pos[p]);
  }
  for (i = 0; i < replay->workers; i++) {
    struct check_worker *w = &workers[i];
    w->replay = replay;
    w->fold = folds[i];
    w->suspects = suspects;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->nonempty, NULL);
    pthread_cond_init(&w->nonfull, NULL);
  }
  for (i = 0; i < replay->workers; i++) {
    if (pthread_create(&workers[i].thread, NULL, check_main, &workers[i]) !=
        0) {
      err = M3B_ERR_NOMEM;
      goto out;
    }
    workers[i].started = 1;
  }
  err = m3b_consumer_assign_range(
      replay->consumer, replay->listener->desired_topic, replay->partitions,
      pos, replay->fence, errstr, sizeof(errstr));
  if (err) {
    M3B_LOG(replay->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
    goto out;
  }
  replay_progress_start(replay, suspects ? "re-read" : "read", NULL, total);
  err = read_loop(replay, workers, pos);
  if (!err)
    drain(replay, workers, replay->workers);
  for (i = 0; !err && i < replay->workers; i++)
    err = workers[i].err;
  if (!err)
    atomic_store(&replay->progress.done, total);
  replay_progress_tick(replay, 1);
  replay_progress_end(replay);
out:
  stop_workers(workers, replay->workers);
  free(workers);
  free(pos);
  replay->read_ms += listener_now_ms(CLOCK_MONOTONIC) - t0;
  return err;
}
