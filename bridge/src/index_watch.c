/*
 * index_watch.c - the WATCH that keeps the managed-object index current
 * (<m3b/index.h>, DESIGN.md section 6, point 4).
 *
 * One supervisor thread polls the index for new key prefixes (a kind in a
 * namespace); each prefix gets a thread that LISTs the labelled objects,
 * compares them with the index, then WATCHes from the list's
 * resourceVersion and hands every event to m3b_index_observe. Nothing
 * here writes to the apiserver: the watcher only reads, and only the
 * index learns from it. Objects read may be Secrets: they are wiped
 * before they are released.
 */
#include <m3b/index.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <m3b/seal_manifest.h>

#include "errstr.h"

#define MODULE "index"
#define SELECTOR M3B_LABEL_MANAGED_BY "=" M3B_MANAGED_BY_VALUE
#define LIST_PAGE 500
/* a watch that ends sooner than this without an error is not resumed at
 * once: a server that closes streams immediately must not make us spin */
#define MIN_WATCH_MS 1000

struct watch {
  struct m3b_index_watcher *watcher;
  char prefix[M3B_INDEX_PREFIX_MAX + 1]; /* "group/version/Kind/ns/" */
  char api_version[M3B_INDEX_API_VERSION_MAX + 1];
  char kind[M3B_OBJKEY_KIND_MAX + 1];
  char ns[M3B_OBJKEY_NAMESPACE_MAX + 1]; /* "" cluster-scoped */
  char resource_version[128];            /* where the next WATCH starts */
  int failing;                           /* the last call failed */
  pthread_t thread;
  struct watch *next;
};

struct m3b_index_watcher {
  m3b_index_t *index;
  m3b_kube_t *kube;
  m3b_log_t *log;
  char *plane;
  long long initial_backoff_ms, max_backoff_ms;
  long watch_timeout_s, scan_ms;
  m3b_index_watch_fn on_result;
  void *opaque;

  atomic_int stop;
  pthread_mutex_t lock; /* watches, count, the wake-up of sleepers */
  pthread_cond_t wake;
  pthread_t supervisor;
  int supervisor_started;
  struct watch *watches;
  size_t watch_count;
  size_t next_prefix; /* supervisor: prefixes below it are handled */
};

/* Sleeps ms unless the watcher stops; non-zero when it stopped. */
static int nap(m3b_index_watcher_t *w, long long ms) {
  struct timespec until;
  int stopped;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += (time_t)(ms / 1000);
  until.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&w->lock);
  while (!atomic_load(&w->stop) &&
         pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
    ;
  stopped = atomic_load(&w->stop);
  pthread_mutex_unlock(&w->lock);
  return stopped;
}

static int64_t monotonic_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void report(struct watch *watch, m3b_err_t err, const char *what,
                   const struct m3b_kube_result *result) {
  m3b_index_watcher_t *w = watch->watcher;
  if (w->on_result)
    w->on_result(err, w->opaque);
  if (err && !watch->failing)
    M3B_LOG(w->log, M3B_LOG_WARN, MODULE,
            "watching %s: %s failed: %s (%s); the index learns nothing of "
            "these objects until it works again",
            watch->prefix, what, result->errstr, m3b_err_name(err));
  else if (!err && watch->failing)
    M3B_LOG(w->log, M3B_LOG_INFO, MODULE, "watching %s again", watch->prefix);
  watch->failing = err != M3B_OK;
}

/* The key of an object of the watched prefix; 0 when it has no usable
 * name. */
static int object_key(const struct watch *watch, const json_t *object,
                      char *key, size_t key_size) {
  const char *name = json_string_value(
      json_object_get(json_object_get(object, "metadata"), "name"));
  int n;
  if (!name || !*name || strchr(name, '/'))
    return 0;
  n = snprintf(key, key_size, "%s%s", watch->prefix, name);
  return n > 0 && (size_t)n < key_size && (size_t)n <= M3B_OBJKEY_MAX;
}

static void observe(struct watch *watch, const char *key, const json_t *object,
                    const char *how) {
  m3b_index_watcher_t *w = watch->watcher;
  int drifted = 0;
  m3b_err_t err = m3b_index_observe(w->index, w->plane, key, object, &drifted);
  if (err)
    M3B_LOG(w->log, M3B_LOG_WARN, MODULE, "index not updated for %.300s: %s",
            key, m3b_err_name(err));
  if (drifted)
    M3B_LOG(w->log, M3B_LOG_INFO, MODULE,
            "%.300s was %s by someone else: its next event is applied "
            "again",
            key, how);
}

static void take_resource_version(struct watch *watch, const json_t *object) {
  const char *rv = json_string_value(
      json_object_get(json_object_get(object, "metadata"), "resourceVersion"));
  if (rv && *rv && strlen(rv) < sizeof(watch->resource_version))
    memcpy(watch->resource_version, rv, strlen(rv) + 1);
}

static int on_event(m3b_kube_event_type_t type, json_t *object, void *opaque) {
  struct watch *watch = opaque;
  char key[M3B_OBJKEY_MAX + 1];

  if (type == M3B_KUBE_ERROR)
    return 0; /* the client ends the watch and returns the error */
  take_resource_version(watch, object);
  if (type != M3B_KUBE_BOOKMARK && object_key(watch, object, key, sizeof(key)))
    observe(watch, key, type == M3B_KUBE_DELETED ? NULL : object,
            type == M3B_KUBE_DELETED ? "deleted (or unlabelled)" : "changed");
  m3b_seal_manifest_wipe(object); /* a Secret's data */
  return 0;
}

/* Collects the live keys of one prefix (m3b_index_each must not call
 * back into the index, so the keys are gathered first). */
struct prefix_keys {
  const char *prefix;
  size_t prefix_len;
  char **keys;
  size_t count, cap;
  int nomem;
};

static int collect_key(const char *key, const struct m3b_index_entry *entry,
                       void *opaque) {
  struct prefix_keys *pk = opaque;
  if (entry->deleted || entry->drifted ||
      strncmp(key, pk->prefix, pk->prefix_len) != 0 ||
      strchr(key + pk->prefix_len, '/'))
    return 0;
  if (pk->count == pk->cap) {
    size_t cap = pk->cap ? pk->cap * 2 : 64;
    char **grown = realloc(pk->keys, cap * sizeof(*grown));
    if (!grown) {
      pk->nomem = 1;
      return 1;
    }
    pk->keys = grown;
    pk->cap = cap;
  }
  pk->keys[pk->count] = strdup(key);
  if (!pk->keys[pk->count]) {
    pk->nomem = 1;
    return 1;
  }
  pk->count++;
  return 0;
}

/* One page of a relist: each object is observed and its name noted in
 * listed. */
struct relist_page {
  struct watch *watch;
  json_t *listed; /* names seen: object of true */
};

static m3b_err_t relist_page(json_t *items, void *opaque) {
  struct relist_page *rp = opaque;
  struct watch *watch = rp->watch;
  char key[M3B_OBJKEY_MAX + 1];
  m3b_err_t err = M3B_OK;
  json_t *item;
  size_t i;

  json_array_foreach(items, i, item) {
    if (!err && object_key(watch, item, key, sizeof(key))) {
      observe(watch, key, item, "changed");
      if (json_object_set_new(rp->listed, key + strlen(watch->prefix),
                              json_true()) != 0)
        err = M3B_ERR_NOMEM;
    }
    m3b_seal_manifest_wipe(item);
  }
  json_decref(items);
  return err;
}

/* LIST the prefix's labelled objects into the index: each listed object
 * is observed, each indexed key of the prefix that was not listed is
 * observed as gone. Sets the resourceVersion to watch from. The LIST
 * asks for metadata only, as protobuf, a page at a time: observing needs
 * no more, and 10,000 whole ConfigMaps held at once took 160 MB. A list
 * that fails after some pages has observed those objects (facts as true
 * as any), but observes nothing as gone. */
static m3b_err_t relist(struct watch *watch, struct m3b_kube_result *result) {
  m3b_index_watcher_t *w = watch->watcher;
  struct m3b_kube_ref ref = {watch->api_version, watch->kind,
                             watch->ns[0] ? watch->ns : NULL, NULL};
  struct prefix_keys pk;
  struct relist_page rp;
  size_t i;
  m3b_err_t err;

  memset(&pk, 0, sizeof(pk));
  rp.watch = watch;
  rp.listed = json_object();
  if (!rp.listed)
    return M3B_ERR_NOMEM;
  err = m3b_kube_list_pages(w->kube, &ref, SELECTOR, LIST_PAGE,
                            M3B_KUBE_LIST_METADATA | M3B_KUBE_LIST_COMPACT,
                            relist_page, &rp, watch->resource_version,
                            sizeof(watch->resource_version), result);
  if (err)
    goto out;
  pk.prefix = watch->prefix;
  pk.prefix_len = strlen(watch->prefix);
  (void)m3b_index_each(w->index, collect_key, &pk);
  for (i = 0; i < pk.count; i++)
    if (!json_object_get(rp.listed, pk.keys[i] + pk.prefix_len))
      observe(watch, pk.keys[i], NULL, "deleted (or unlabelled)");
  if (pk.nomem)
    err = M3B_ERR_NOMEM;
out:
  for (i = 0; i < pk.count; i++)
    free(pk.keys[i]);
  free(pk.keys);
  json_decref(rp.listed);
  return err;
}

static void *watch_main(void *arg) {
  struct watch *watch = arg;
  m3b_index_watcher_t *w = watch->watcher;
  struct m3b_kube_ref ref = {watch->api_version, watch->kind,
                             watch->ns[0] ? watch->ns : NULL, NULL};
  long long delay = w->initial_backoff_ms;
  m3b_err_t err;

  while (!atomic_load(&w->stop)) {
    struct m3b_kube_result result;
    memset(&result, 0, sizeof(result));
    err = relist(watch, &result);
    if (atomic_load(&w->stop))
      break;
    report(watch, err, "list", &result);
    if (err) {
      if (nap(w, delay))
        break;
      delay = delay * 2 < w->max_backoff_ms ? delay * 2 : w->max_backoff_ms;
      continue;
    }
    delay = w->initial_backoff_ms;
    for (;;) { /* watch, resuming while the server ends streams cleanly */
      int64_t start = monotonic_ms();
      err = m3b_kube_watch(w->kube, &ref, SELECTOR, watch->resource_version,
                           w->watch_timeout_s, &w->stop, on_event, watch,
                           &result);
      if (atomic_load(&w->stop))
        break;
      if (err)
        break;
      if (monotonic_ms() - start < MIN_WATCH_MS && nap(w, delay))
        break;
    }
    if (atomic_load(&w->stop))
      break;
    /* 410: the resourceVersion is too old, list again at once; anything
     * else: the apiserver failed, so back off first */
    if (err != M3B_ERR_KUBE_GONE) {
      report(watch, err, "watch", &result);
      if (nap(w, delay))
        break;
      delay = delay * 2 < w->max_backoff_ms ? delay * 2 : w->max_backoff_ms;
    }
  }
  return NULL;
}

/* Splits "group/version/Kind/ns/" into the watch's fields. */
static int parse_prefix(struct watch *watch, const char *prefix) {
  const char *p[4];
  const char *s = prefix;
  size_t i, group_len, version_len, kind_len, ns_len;
  for (i = 0; i < 4; i++) {
    s = strchr(s, '/');
    if (!s)
      return 0;
    p[i] = s++;
  }
  if (*s) /* more after the namespace: not a prefix */
    return 0;
  group_len = (size_t)(p[0] - prefix);
  version_len = (size_t)(p[1] - p[0] - 1);
  kind_len = (size_t)(p[2] - p[1] - 1);
  ns_len = (size_t)(p[3] - p[2] - 1);
  if (!version_len || !kind_len || group_len > M3B_OBJKEY_GROUP_MAX ||
      version_len > M3B_OBJKEY_VERSION_MAX || kind_len > M3B_OBJKEY_KIND_MAX ||
      ns_len > M3B_OBJKEY_NAMESPACE_MAX)
    return 0;
  snprintf(watch->prefix, sizeof(watch->prefix), "%s", prefix);
  if (group_len)
    snprintf(watch->api_version, sizeof(watch->api_version), "%.*s/%.*s",
             (int)group_len, prefix, (int)version_len, p[0] + 1);
  else
    snprintf(watch->api_version, sizeof(watch->api_version), "%.*s",
             (int)version_len, p[0] + 1);
  snprintf(watch->kind, sizeof(watch->kind), "%.*s", (int)kind_len, p[1] + 1);
  snprintf(watch->ns, sizeof(watch->ns), "%.*s", (int)ns_len, p[2] + 1);
  return 1;
}

static void start_watch(m3b_index_watcher_t *w, const char *prefix) {
  struct watch *watch;
  if (w->watch_count >= M3B_INDEX_MAX_WATCHES) {
    M3B_LOG(w->log, M3B_LOG_WARN, MODULE,
            "not watching %s: already %d watches; objects deleted or changed "
            "there by hand are found only when their next event is newer",
            prefix, M3B_INDEX_MAX_WATCHES);
    return;
  }
  watch = calloc(1, sizeof(*watch));
  if (!watch || !parse_prefix(watch, prefix)) {
    M3B_LOG(w->log, M3B_LOG_WARN, MODULE, "not watching %s: %s", prefix,
            watch ? "not a key prefix" : "out of memory");
    free(watch);
    return;
  }
  watch->watcher = w;
  if (pthread_create(&watch->thread, NULL, watch_main, watch) != 0) {
    M3B_LOG(w->log, M3B_LOG_WARN, MODULE,
            "not watching %s: cannot start a thread", prefix);
    free(watch);
    return;
  }
  pthread_mutex_lock(&w->lock);
  watch->next = w->watches;
  w->watches = watch;
  w->watch_count++;
  pthread_mutex_unlock(&w->lock);
  M3B_LOG(w->log, M3B_LOG_INFO, MODULE,
          "watching the managed %s %s objects %s%s", watch->api_version,
          watch->kind, watch->ns[0] ? "in " : "(cluster-scoped)", watch->ns);
}

static void *supervisor_main(void *arg) {
  m3b_index_watcher_t *w = arg;
  char prefix[M3B_INDEX_PREFIX_MAX + 1];
  do {
    while (!atomic_load(&w->stop) &&
           m3b_index_prefix(w->index, w->next_prefix, prefix, sizeof(prefix)) ==
               M3B_OK) {
      start_watch(w, prefix);
      w->next_prefix++;
    }
  } while (!nap(w, w->scan_ms));
  return NULL;
}

m3b_index_watcher_t *
m3b_index_watcher_new(m3b_index_t *index, m3b_kube_t *kube,
                      const struct m3b_index_watch_config *config,
                      m3b_log_t *log, char *errstr, size_t errstr_size) {
  m3b_index_watcher_t *w;
  if (!index || !kube || !config || !config->plane || !*config->plane) {
    m3b__errstr(errstr, errstr_size,
                "index watcher: index, kube client and plane are required");
    return NULL;
  }
  w = calloc(1, sizeof(*w));
  if (!w || !(w->plane = strdup(config->plane))) {
    free(w);
    m3b__errstr(errstr, errstr_size, "index watcher: out of memory");
    return NULL;
  }
  w->index = index;
  w->kube = kube;
  w->log = log;
  w->initial_backoff_ms =
      config->initial_backoff_ms > 0 ? config->initial_backoff_ms : 200;
  w->max_backoff_ms =
      config->max_backoff_ms > 0 ? config->max_backoff_ms : 30000;
  if (w->max_backoff_ms < w->initial_backoff_ms)
    w->max_backoff_ms = w->initial_backoff_ms;
  w->watch_timeout_s =
      config->watch_timeout_s > 0 ? config->watch_timeout_s : 300;
  w->scan_ms = config->scan_ms > 0 ? config->scan_ms : 1000;
  w->on_result = config->on_result;
  w->opaque = config->opaque;
  atomic_init(&w->stop, 0);
  pthread_mutex_init(&w->lock, NULL);
  pthread_cond_init(&w->wake, NULL);
  if (pthread_create(&w->supervisor, NULL, supervisor_main, w) != 0) {
    m3b__errstr(errstr, errstr_size, "index watcher: cannot start a thread");
    m3b_index_watcher_destroy(w);
    return NULL;
  }
  w->supervisor_started = 1;
  return w;
}

size_t m3b_index_watcher_count(m3b_index_watcher_t *watcher) {
  size_t count;
  if (!watcher)
    return 0;
  pthread_mutex_lock(&watcher->lock);
  count = watcher->watch_count;
  pthread_mutex_unlock(&watcher->lock);
  return count;
}

void m3b_index_watcher_destroy(m3b_index_watcher_t *watcher) {
  struct watch *watch;
  if (!watcher)
    return;
  pthread_mutex_lock(&watcher->lock);
  atomic_store(&watcher->stop, 1);
  pthread_cond_broadcast(&watcher->wake);
  pthread_mutex_unlock(&watcher->lock);
  if (watcher->supervisor_started)
    pthread_join(watcher->supervisor, NULL);
  /* the supervisor is gone: nothing adds watches any more */
  while ((watch = watcher->watches) != NULL) {
    watcher->watches = watch->next;
    pthread_join(watch->thread, NULL);
    free(watch);
  }
  pthread_cond_destroy(&watcher->wake);
  pthread_mutex_destroy(&watcher->lock);
  free(watcher->plane);
  free(watcher);
}
