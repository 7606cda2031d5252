/*
 * index.c - the managed-object index of <m3b/index.h>: a chained hash
 * table of object keys under one mutex, the list of kinds seen, the key
 * prefixes (kind and namespace) the watcher watches, the labelled LIST
 * that fills it at start (a few kinds at a time, each on a thread of the
 * load, protobuf metadata pages), and what a WATCH tells it
 * (m3b_index_observe).
 *
 * The table is keytable.h's; keys are copied into their entries. Nothing secret
 * is stored: only keys, numbers, hashes and uids.
 */
#include <m3b/index.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "errstr.h"
#include "keytable.h"
#include <m3b/seal_manifest.h>

/* Objects per LIST page: bigger protobuf pages (2000, 5000) were no
 * faster in bench/bench_index_load.sh, and each page is held whole. */
#define LIST_PAGE 500
/* Threads of a parallel load, each listing one kind at a time: enough to
 * hide the round trips of the many empty kinds behind the big one. */
#define LOAD_THREADS 4

struct node {
  struct m3b__keynode link; /* first: a keynode is its node */
  struct m3b_index_entry entry;
  char key[]; /* NUL-terminated */
};

struct kind {
  char api_version[M3B_INDEX_API_VERSION_MAX + 1];
  char kind[M3B_OBJKEY_KIND_MAX + 1];
};

#define DEFAULT_KIND_COUNT 17

struct m3b_index {
  pthread_mutex_t lock;
  struct m3b__keytable table; /* of struct node */
  struct kind kinds[M3B_INDEX_MAX_KINDS];
  size_t kind_count;
  char **prefixes; /* "group/version/Kind/ns/" of live entries, first seen
                      first */
  size_t prefix_count, prefix_cap;
  /* what the last load listed completely, and the keys of objects it saw
   * labelled for another plane (an index of its own, made on first use) */
  struct kind listed[DEFAULT_KIND_COUNT + M3B_INDEX_MAX_KINDS];
  size_t listed_count;
  m3b_index_t *foreign;
};

/* The kinds every load lists, whether seen or not. */
static const struct kind default_kinds[] = {
    {"v1", "ConfigMap"},
    {"v1", "Secret"},
    {"v1", "Service"},
    {"v1", "ServiceAccount"},
    {"v1", "PersistentVolumeClaim"},
    {"v1", "Namespace"},
    {"apps/v1", "Deployment"},
    {"apps/v1", "StatefulSet"},
    {"apps/v1", "DaemonSet"},
    {"batch/v1", "Job"},
    {"batch/v1", "CronJob"},
    {"networking.k8s.io/v1", "Ingress"},
    {"rbac.authorization.k8s.io/v1", "Role"},
    {"rbac.authorization.k8s.io/v1", "RoleBinding"},
    {"gateway.networking.k8s.io/v1", "Gateway"},
    {"gateway.networking.k8s.io/v1", "HTTPRoute"},
    {"gateway.networking.k8s.io/v1beta1", "ReferenceGrant"},
};

_Static_assert(sizeof(default_kinds) / sizeof(default_kinds[0]) ==
                   DEFAULT_KIND_COUNT,
               "DEFAULT_KIND_COUNT must count default_kinds");

static uint64_t hash_key(const char *key) {
  return m3b__hash(key, strlen(key));
}

m3b_index_t *m3b_index_new(char *errstr, size_t errstr_size) {
  m3b_index_t *index = calloc(1, sizeof(*index));
  if (!index || m3b__keytable_init(&index->table) != M3B_OK) {
    free(index);
    m3b__errstr(errstr, errstr_size, "index: out of memory");
    return NULL;
  }
  if (pthread_mutex_init(&index->lock, NULL) != 0) {
    m3b__keytable_cleanup(&index->table, NULL);
    free(index);
    m3b__errstr(errstr, errstr_size, "index: cannot create its mutex");
    return NULL;
  }
  return index;
}

static void free_node(struct m3b__keynode *node) {
  free(node);
}

void m3b_index_destroy(m3b_index_t *index) {
  size_t i;
  if (!index)
    return;
  m3b__keytable_cleanup(&index->table, free_node);
  for (i = 0; i < index->prefix_count; i++)
    free(index->prefixes[i]);
  free(index->prefixes);
  m3b_index_destroy(index->foreign);
  pthread_mutex_destroy(&index->lock);
  free(index);
}

/* The node of key, or NULL. Caller holds the lock. */
static struct node *find(m3b_index_t *index, const char *key, uint64_t hash) {
  return (struct node *)*m3b__keytable_slot(&index->table, key, hash);
}

m3b_err_t m3b_index_get(m3b_index_t *index, const char *key,
                        struct m3b_index_entry *entry_out) {
  m3b_err_t err = M3B_ERR_NOT_FOUND;
  struct node *n;
  if (!index || !key || !entry_out)
    return M3B_ERR_INVALID_ARG;
  pthread_mutex_lock(&index->lock);
  n = find(index, key, hash_key(key));
  if (n) {
    *entry_out = n->entry;
    err = M3B_OK;
  }
  pthread_mutex_unlock(&index->lock);
  return err;
}

/* Remembers the prefix of key (up to and including its last '/') for the
 * watcher; past M3B_INDEX_MAX_PREFIXES or without memory it is not
 * remembered (that kind and namespace go unwatched). Caller holds the
 * lock. */
static void note_prefix(m3b_index_t *index, const char *key) {
  const char *slash = strrchr(key, '/');
  size_t len = slash ? (size_t)(slash - key) + 1 : 0, i;
  char *copy;
  if (!len || len > M3B_INDEX_PREFIX_MAX)
    return;
  for (i = index->prefix_count; i-- > 0;) /* recent ones are likelier */
    if (strncmp(index->prefixes[i], key, len) == 0 &&
        index->prefixes[i][len] == '\0')
      return;
  if (index->prefix_count >= M3B_INDEX_MAX_PREFIXES)
    return;
  if (index->prefix_count == index->prefix_cap) {
    size_t cap = index->prefix_cap ? index->prefix_cap * 2 : 16;
    char **grown = realloc(index->prefixes, cap * sizeof(*grown));
    if (!grown)
      return;
    index->prefixes = grown;
    index->prefix_cap = cap;
  }
  copy = malloc(len + 1);
  if (!copy)
    return;
  memcpy(copy, key, len);
  copy[len] = '\0';
  index->prefixes[index->prefix_count++] = copy;
}

/* m3b_index_put with the lock held; key_len checked by the caller. */
static m3b_err_t put_locked(m3b_index_t *index, const char *key, size_t key_len,
                            uint64_t hash,
                            const struct m3b_index_entry *entry) {
  struct m3b__keynode **slot = m3b__keytable_slot(&index->table, key, hash);
  struct node *n;
  if (!entry->deleted)
    note_prefix(index, key);
  if (*slot) {
    ((struct node *)*slot)->entry = *entry;
    return M3B_OK;
  }
  if (index->table.count >= M3B_INDEX_MAX_ENTRIES)
    return M3B_ERR_LIMIT;
  n = malloc(sizeof(*n) + key_len + 1);
  if (!n)
    return M3B_ERR_NOMEM;
  n->link.hash = hash;
  n->entry = *entry;
  memcpy(n->key, key, key_len + 1);
  n->link.key = n->key;
  m3b__keytable_insert(&index->table, slot, &n->link);
  return M3B_OK;
}

m3b_err_t m3b_index_put(m3b_index_t *index, const char *key,
                        const struct m3b_index_entry *entry) {
  m3b_err_t err;
  size_t key_len;
  if (!index || !key || !entry)
    return M3B_ERR_INVALID_ARG;
  key_len = strnlen(key, M3B_OBJKEY_MAX + 1);
  if (key_len > M3B_OBJKEY_MAX)
    return M3B_ERR_LIMIT;
  pthread_mutex_lock(&index->lock);
  err = put_locked(index, key, key_len, hash_key(key), entry);
  pthread_mutex_unlock(&index->lock);
  return err;
}

m3b_err_t m3b_index_prefix(m3b_index_t *index, size_t i, char *out,
                           size_t out_size) {
  m3b_err_t err = M3B_ERR_NOT_FOUND;
  if (!index || !out)
    return M3B_ERR_INVALID_ARG;
  pthread_mutex_lock(&index->lock);
  if (i < index->prefix_count) {
    size_t len = strlen(index->prefixes[i]);
    err = M3B_ERR_LIMIT;
    if (len < out_size) {
      memcpy(out, index->prefixes[i], len + 1);
      err = M3B_OK;
    }
  }
  pthread_mutex_unlock(&index->lock);
  return err;
}

/* Does the live object (its entry as m3b_index_entry_from_object read it)
 * differ from what the index recorded after our write? */
static int differs(const struct m3b_index_entry *recorded,
                   const struct m3b_index_entry *live) {
  if (recorded->deleted)
    return 1; /* we deleted it, yet it exists */
  if (recorded->uid[0] && strcmp(recorded->uid, live->uid) != 0)
    return 1; /* deleted and created again */
  if (memcmp(recorded->manifest_sha256, live->manifest_sha256,
             sizeof(live->manifest_sha256)) != 0)
    return 1;
  /* metadata.generation moves with the spec only, so status updates of
   * workloads do not count; kinds without it have only resourceVersion */
  if (recorded->object_generation > 0 && live->object_generation > 0)
    return recorded->object_generation != live->object_generation;
  return recorded->resource_version[0] &&
         strcmp(recorded->resource_version, live->resource_version) != 0;
}

m3b_err_t m3b_index_observe(m3b_index_t *index, const char *plane,
                            const char *key, const json_t *object,
                            int *drifted_out) {
  struct m3b_index_entry live;
  char live_key[M3B_OBJKEY_MAX + 1];
  m3b_err_t found = M3B_ERR_NOT_FOUND, err = M3B_OK;
  struct node *n;
  uint64_t hash;
  size_t key_len;
  int ours;

  if (drifted_out)
    *drifted_out = 0;
  if (!index || !plane || !key)
    return M3B_ERR_INVALID_ARG;
  key_len = strnlen(key, M3B_OBJKEY_MAX + 1);
  if (key_len > M3B_OBJKEY_MAX)
    return M3B_ERR_LIMIT;
  live_key[0] = '\0';
  if (object)
    found = m3b_index_entry_from_object(object, plane, &live, live_key,
                                        sizeof(live_key));
  ours = found == M3B_OK && strcmp(live_key, key) == 0;
  hash = hash_key(key);
  pthread_mutex_lock(&index->lock);
  n = find(index, key, hash);
  if (ours && (!n || live.generation > n->entry.generation)) {
    err = put_locked(index, key, key_len, hash, &live);
  } else if (n && !n->entry.drifted) {
    int drift;
    if (!object)
      drift = !n->entry.deleted;
    else if (!ours) /* label, plane or key annotation changed by hand */
      drift = 1;
    else
      drift = differs(&n->entry, &live);
    if (drift) {
      n->entry.drifted = 1;
      if (drifted_out)
        *drifted_out = 1;
    }
  }
  pthread_mutex_unlock(&index->lock);
  return err;
}

m3b_err_t m3b_index_remove(m3b_index_t *index, const char *key) {
  m3b_err_t err = M3B_ERR_NOT_FOUND;
  struct m3b__keynode **slot;
  if (!index || !key)
    return M3B_ERR_INVALID_ARG;
  pthread_mutex_lock(&index->lock);
  slot = m3b__keytable_slot(&index->table, key, hash_key(key));
  if (*slot) {
    free(m3b__keytable_remove(&index->table, slot));
    err = M3B_OK;
  }
  pthread_mutex_unlock(&index->lock);
  return err;
}

size_t m3b_index_count(m3b_index_t *index) {
  size_t count;
  if (!index)
    return 0;
  pthread_mutex_lock(&index->lock);
  count = index->table.count;
  pthread_mutex_unlock(&index->lock);
  return count;
}

static int kind_equal(const struct kind *k, const char *api_version,
                      const char *kind) {
  return strcmp(k->api_version, api_version) == 0 && strcmp(k->kind, kind) == 0;
}

m3b_err_t m3b_index_note_kind(m3b_index_t *index, const char *api_version,
                              const char *kind) {
  m3b_err_t err = M3B_OK;
  size_t i;
  if (!index || !api_version || !kind || !*api_version || !*kind ||
      strlen(api_version) > M3B_INDEX_API_VERSION_MAX ||
      strlen(kind) > M3B_OBJKEY_KIND_MAX)
    return M3B_ERR_INVALID_ARG;
  for (i = 0; i < sizeof(default_kinds) / sizeof(default_kinds[0]); i++)
    if (kind_equal(&default_kinds[i], api_version, kind))
      return M3B_OK;
  pthread_mutex_lock(&index->lock);
  for (i = 0; i < index->kind_count; i++)
    if (kind_equal(&index->kinds[i], api_version, kind))
      goto out;
  if (index->kind_count >= M3B_INDEX_MAX_KINDS) {
    err = M3B_ERR_LIMIT;
    goto out;
  }
  /* lengths checked above: both fit with their NUL */
  memcpy(index->kinds[index->kind_count].api_version, api_version,
         strlen(api_version) + 1);
  memcpy(index->kinds[index->kind_count].kind, kind, strlen(kind) + 1);
  index->kind_count++;
out:
  pthread_mutex_unlock(&index->lock);
  return err;
}

/* Parses a decimal int64 that is the whole string; -1 when it is not. */
static int parse_generation(const char *text, int64_t *out) {
  char *end = NULL;
  long long v;
  if (!text || !*text || *text == '-' || *text == '+' || *text == ' ')
    return -1;
  errno = 0;
  v = strtoll(text, &end, 10);
  if (errno || !end || *end)
    return -1;
  *out = (int64_t)v;
  return 0;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Parses 64 lowercase hex characters into 32 bytes; -1 when malformed. */
static int parse_sha256(const char *text, uint8_t out[32]) {
  size_t i;
  if (!text || strlen(text) != 64)
    return -1;
  for (i = 0; i < 32; i++) {
    int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return 0;
}

static void copy_text(char *out, size_t size, const char *text) {
  size_t n = text ? strnlen(text, size - 1) : 0;
  if (n)
    memcpy(out, text, n);
  out[n] = '\0';
}

m3b_err_t m3b_index_entry_from_object(const json_t *object, const char *plane,
                                      struct m3b_index_entry *entry_out,
                                      char *key_out, size_t key_size) {
  const json_t *md = json_object_get(object, "metadata");
  const json_t *labels = json_object_get(md, "labels");
  const json_t *ann = json_object_get(md, "annotations");
  const char *managed, *obj_plane, *key;
  struct m3b_objkey parsed;

  memset(entry_out, 0, sizeof(*entry_out));
  if (key_size)
    key_out[0] = '\0';
  managed = json_string_value(json_object_get(labels, M3B_LABEL_MANAGED_BY));
  obj_plane = json_string_value(json_object_get(ann, M3B_ANN_PLANE));
  if (!managed || strcmp(managed, M3B_MANAGED_BY_VALUE) != 0 || !obj_plane ||
      !plane || strcmp(obj_plane, plane) != 0)
    return M3B_ERR_NOT_MANAGED;
  key = json_string_value(json_object_get(ann, M3B_ANN_KEY));
  if (!key || strlen(key) >= key_size ||
      m3b_objkey_parse(key, strlen(key), &parsed, NULL, 0) != M3B_OK ||
      parse_generation(
          json_string_value(json_object_get(ann, M3B_ANN_GENERATION)),
          &entry_out->generation) != 0 ||
      parse_sha256(json_string_value(json_object_get(ann, M3B_ANN_SHA256)),
                   entry_out->manifest_sha256) != 0)
    return M3B_ERR_BAD_MANIFEST;
  memcpy(key_out, key, strlen(key) + 1);
  copy_text(entry_out->uid, sizeof(entry_out->uid),
            json_string_value(json_object_get(md, "uid")));
  copy_text(entry_out->resource_version, sizeof(entry_out->resource_version),
            json_string_value(json_object_get(md, "resourceVersion")));
  entry_out->object_generation =
      (int64_t)json_integer_value(json_object_get(md, "generation"));
  return M3B_OK;
}

/* "Kind" (core group) or "group/Kind" names (api_version, kind)? */
static int cluster_kind_allowed(const struct m3b_index_scope *scope,
                                const char *api_version, const char *kind) {
  const char *slash = strchr(api_version, '/');
  size_t group_len = slash ? (size_t)(slash - api_version) : 0;
  size_t i;
  for (i = 0; i < scope->cluster_kind_count; i++) {
    const char *allowed = scope->cluster_kinds[i];
    const char *aslash = strrchr(allowed, '/');
    size_t agroup_len = aslash ? (size_t)(aslash - allowed) : 0;
    const char *akind = aslash ? aslash + 1 : allowed;
    if (agroup_len == group_len &&
        strncmp(allowed, api_version, group_len) == 0 &&
        strcmp(akind, kind) == 0)
      return 1;
  }
  return 0;
}

/* Remembers that the object item of kind k (listed in ns) is labelled
 * managed-by=m3bridge for another plane: its key as this plane would
 * name it. */
static m3b_err_t note_foreign(m3b_index_t *index, const struct kind *k,
                              const char *ns, const json_t *item) {
  const char *name = json_string_value(
      json_object_get(json_object_get(item, "metadata"), "name"));
  const char *slash = strchr(k->api_version, '/');
  struct m3b_index_entry entry;
  char key[M3B_OBJKEY_MAX + 2];
  int n;

  if (!name)
    return M3B_OK;
  n = snprintf(key, sizeof(key), "%s%s/%s/%s/%s", slash ? "" : "/",
               k->api_version, k->kind, ns ? ns : "", name);
  if (n < 0 || (size_t)n > M3B_OBJKEY_MAX)
    return M3B_OK; /* no key of ours can be that long either */
  pthread_mutex_lock(&index->lock);
  if (!index->foreign)
    index->foreign = m3b_index_new(NULL, 0);
  pthread_mutex_unlock(&index->lock);
  if (!index->foreign)
    return M3B_ERR_NOMEM;
  memset(&entry, 0, sizeof(entry));
  return m3b_index_put(index->foreign, key, &entry);
}

/* Puts every managed object of items (a JSON array) of kind k listed in ns
 * into the index; notes another plane's. Wipes Secret data in the items
 * (the caller frees them). */
static m3b_err_t load_items(m3b_index_t *index, json_t *items,
                            const struct kind *k, const char *ns,
                            const char *plane, m3b_log_t *log, size_t *loaded) {
  size_t i;
  json_t *item;
  char key[M3B_OBJKEY_MAX + 1];
  struct m3b_index_entry entry;
  m3b_err_t err;

  json_array_foreach(items, i, item) {
    m3b_err_t found =
        m3b_index_entry_from_object(item, plane, &entry, key, sizeof(key));
    m3b_seal_manifest_wipe(item);
    if (found == M3B_ERR_BAD_MANIFEST) {
      M3B_LOG(log, M3B_LOG_WARN, "index",
              "managed object %.253s has malformed m3bridge annotations; "
              "not indexed",
              json_string_value(
                  json_object_get(json_object_get(item, "metadata"), "name")));
      continue;
    }
    if (found) { /* the LIST selects the label: another plane's object */
      err = note_foreign(index, k, ns, item);
      if (err)
        return err;
      continue;
    }
    err = m3b_index_put(index, key, &entry);
    if (err)
      return err;
    (*loaded)++;
  }
  return M3B_OK;
}

struct page_load {
  m3b_index_t *index;
  const struct kind *k;
  const char *ns;
  const char *plane;
  m3b_log_t *log;
  size_t *loaded;
};

static m3b_err_t load_page(json_t *items, void *opaque) {
  struct page_load *pl = opaque;
  m3b_err_t err = load_items(pl->index, items, pl->k, pl->ns, pl->plane,
                             pl->log, pl->loaded);
  size_t i;
  /* load_items stops at a failed put: wipe whatever it did not reach */
  for (i = 0; i < json_array_size(items); i++)
    m3b_seal_manifest_wipe(json_array_get(items, i));
  json_decref(items);
  return err;
}

/* Lists one kind in one namespace (NULL: cluster-scoped) into the index,
 * a page at a time and metadata only: the listed objects are never all in
 * memory at once (10k 1 KB ConfigMaps took 160 MB as whole JSON trees).
 * *complete is cleared when the kind could not be listed there. */
static m3b_err_t load_one(m3b_index_t *index, m3b_kube_t *kube,
                          const struct kind *k, const char *ns,
                          const char *plane, unsigned flags, m3b_log_t *log,
                          size_t *loaded, int *complete,
                          struct m3b_kube_result *result) {
  struct m3b_kube_ref ref = {k->api_version, k->kind, ns, NULL};
  struct page_load pl = {index, k, ns, plane, log, loaded};
  int serial = (flags & M3B_INDEX_LOAD_SERIAL) != 0;
  m3b_err_t err;

  /* the index needs labels, annotations, uid and resourceVersion only */
  err = m3b_kube_list_pages(
      kube, &ref, M3B_LABEL_MANAGED_BY "=" M3B_MANAGED_BY_VALUE, LIST_PAGE,
      M3B_KUBE_LIST_METADATA | (serial ? 0 : M3B_KUBE_LIST_COMPACT), load_page,
      &pl, NULL, 0, result);
  if (err == M3B_ERR_KUBE_NOT_FOUND || err == M3B_ERR_KUBE_FORBIDDEN) {
    M3B_LOG(log, M3B_LOG_INFO, "index", "not listing %s %s in %s: %s",
            k->api_version, k->kind, ns ? ns : "(cluster)", m3b_err_name(err));
    *complete = 0;
    return M3B_OK;
  }
  return err;
}

/* Records that the load saw every object of k the scope allows. */
static void note_listed(m3b_index_t *index, const struct kind *k) {
  size_t i;
  pthread_mutex_lock(&index->lock);
  for (i = 0; i < index->listed_count; i++)
    if (kind_equal(&index->listed[i], k->api_version, k->kind))
      break;
  if (i == index->listed_count &&
      index->listed_count < sizeof(index->listed) / sizeof(index->listed[0]))
    index->listed[index->listed_count++] = *k;
  pthread_mutex_unlock(&index->lock);
}

static m3b_err_t load_kind(m3b_index_t *index, m3b_kube_t *kube,
                           const struct kind *k,
                           const struct m3b_index_scope *scope, unsigned flags,
                           m3b_log_t *log, size_t *loaded,
                           struct m3b_kube_result *result) {
  char resource[128];
  int namespaced = 0, complete = 1;
  size_t i;
  m3b_err_t err;

  err = m3b_kube_resolve(kube, k->api_version, k->kind, resource,
                         sizeof(resource), &namespaced, result);
  if (err == M3B_ERR_KUBE_NOT_FOUND) {
    note_listed(index, k); /* not served here: there are none */
    return M3B_OK;
  }
  if (err)
    return err;
  if (!namespaced) {
    if (!cluster_kind_allowed(scope, k->api_version, k->kind))
      return M3B_OK;
    err = load_one(index, kube, k, NULL, scope->plane, flags, log, loaded,
                   &complete, result);
  } else {
    for (i = 0; i < scope->namespace_count && !err; i++)
      err = load_one(index, kube, k, scope->namespaces[i], scope->plane, flags,
                     log, loaded, &complete, result);
  }
  if (!err && complete)
    note_listed(index, k);
  return err;
}

/* One m3b_index_load_kinds: the kinds to list, shared by its threads,
 * which take the next kind until none is left or one has failed. */
struct load_run {
  m3b_index_t *index;
  m3b_kube_t *kube;
  const struct m3b_index_scope *scope;
  unsigned flags;
  m3b_log_t *log;
  const struct kind *kinds;
  size_t kind_count;
  pthread_mutex_t lock; /* guards the fields below */
  size_t next;          /* the next kind to take */
  size_t loaded;
  m3b_err_t err; /* the first failure */
  struct m3b_kube_result result;
};

static void *load_worker(void *opaque) {
  struct load_run *run = opaque;
  for (;;) {
    struct m3b_kube_result result;
    size_t i, loaded = 0;
    m3b_err_t err;
    pthread_mutex_lock(&run->lock);
    i = run->next;
    if (run->err || i >= run->kind_count) {
      pthread_mutex_unlock(&run->lock);
      return NULL;
    }
    run->next++;
    pthread_mutex_unlock(&run->lock);
    memset(&result, 0, sizeof(result));
    err = load_kind(run->index, run->kube, &run->kinds[i], run->scope,
                    run->flags, run->log, &loaded, &result);
    pthread_mutex_lock(&run->lock);
    run->loaded += loaded;
    if (err && !run->err) {
      run->err = err;
      run->result = result;
    }
    pthread_mutex_unlock(&run->lock);
  }
}

/* Lists kinds[0..count) with LOAD_THREADS threads (the calling one among
 * them), or on the calling thread alone when serial. */
static m3b_err_t load_all(struct load_run *run, int serial) {
  pthread_t threads[LOAD_THREADS - 1];
  size_t started = 0, want, i;

  want = serial                           ? 0
         : run->kind_count < LOAD_THREADS ? run->kind_count
                                          : LOAD_THREADS;
  if (want)
    want--; /* the calling thread is one of them */
  for (i = 0; i < want; i++) {
    if (pthread_create(&threads[i], NULL, load_worker, run) != 0)
      break; /* fewer threads: slower, still complete */
    started++;
  }
  (void)load_worker(run);
  for (i = 0; i < started; i++)
    pthread_join(threads[i], NULL);
  return run->err;
}

int m3b_index_listed(m3b_index_t *index, const char *api_version,
                     const char *kind) {
  size_t i;
  int listed = 0;
  if (!index || !api_version || !kind)
    return 0;
  pthread_mutex_lock(&index->lock);
  for (i = 0; i < index->listed_count && !listed; i++)
    listed = kind_equal(&index->listed[i], api_version, kind);
  pthread_mutex_unlock(&index->lock);
  return listed;
}

int m3b_index_foreign(m3b_index_t *index, const char *key) {
  struct m3b_index_entry entry;
  m3b_index_t *foreign;
  if (!index || !key)
    return 0;
  pthread_mutex_lock(&index->lock);
  foreign = index->foreign;
  pthread_mutex_unlock(&index->lock);
  return foreign && m3b_index_get(foreign, key, &entry) == M3B_OK;
}

void m3b_index_load_reset(m3b_index_t *index) {
  if (!index)
    return;
  pthread_mutex_lock(&index->lock);
  index->listed_count = 0;
  m3b_index_destroy(index->foreign);
  index->foreign = NULL;
  pthread_mutex_unlock(&index->lock);
}

m3b_err_t m3b_index_load_kinds(m3b_index_t *index, m3b_kube_t *kube,
                               const struct m3b_index_scope *scope,
                               unsigned flags, m3b_log_t *log,
                               size_t *loaded_out,
                               struct m3b_kube_result *result) {
  struct kind *kinds = NULL;
  size_t count = 0, noted = 0;
  struct load_run run;
  m3b_err_t err;

  if (loaded_out)
    *loaded_out = 0;
  if (result)
    memset(result, 0, sizeof(*result));
  if (!index || !kube || !scope || !scope->plane)
    return M3B_ERR_INVALID_ARG;
  /* copy the kinds, so the lock is not held across requests */
  pthread_mutex_lock(&index->lock);
  if (flags & M3B_INDEX_LOAD_NOTED)
    noted = index->kind_count;
  kinds = malloc((DEFAULT_KIND_COUNT + noted) * sizeof(*kinds));
  if (kinds) {
    if (flags & M3B_INDEX_LOAD_DEFAULTS) {
      memcpy(kinds, default_kinds, sizeof(default_kinds));
      count = DEFAULT_KIND_COUNT;
    }
    if (noted)
      memcpy(kinds + count, index->kinds, noted * sizeof(*kinds));
    count += noted;
  }
  pthread_mutex_unlock(&index->lock);
  if (!kinds)
    return M3B_ERR_NOMEM;

  memset(&run, 0, sizeof(run));
  run.index = index;
  run.kube = kube;
  run.scope = scope;
  run.flags = flags;
  run.log = log;
  run.kinds = kinds;
  run.kind_count = count;
  if (pthread_mutex_init(&run.lock, NULL) != 0) {
    free(kinds);
    return M3B_ERR_NOMEM;
  }
  err = load_all(&run, (flags & M3B_INDEX_LOAD_SERIAL) != 0);
  pthread_mutex_destroy(&run.lock);
  free(kinds);
  if (err && result)
    *result = run.result;
  if (loaded_out)
    *loaded_out = run.loaded;
  M3B_LOG(log, err ? M3B_LOG_WARN : M3B_LOG_INFO, "index",
          "loaded %zu managed objects of plane %s (%zu kinds)%s%s", run.loaded,
          scope->plane, count, err ? ": stopped at " : "",
          err ? m3b_err_name(err) : "");
  return err;
}

m3b_err_t m3b_index_load(m3b_index_t *index, m3b_kube_t *kube,
                         const struct m3b_index_scope *scope, m3b_log_t *log,
                         size_t *loaded_out, struct m3b_kube_result *result) {
  if (loaded_out)
    *loaded_out = 0;
  if (!index || !kube || !scope || !scope->plane)
    return M3B_ERR_INVALID_ARG;
  /* what counts as listed and foreign is this load's finding */
  m3b_index_load_reset(index);
  return m3b_index_load_kinds(index, kube, scope,
                              M3B_INDEX_LOAD_DEFAULTS | M3B_INDEX_LOAD_NOTED,
                              log, loaded_out, result);
}

struct each_ctx {
  int (*fn)(const char *key, const struct m3b_index_entry *entry, void *opaque);
  void *opaque;
};

static int each_node(struct m3b__keynode *node, void *opaque) {
  const struct each_ctx *ctx = opaque;
  const struct node *n = (const struct node *)node;
  return ctx->fn(n->key, &n->entry, ctx->opaque);
}

int m3b_index_each(m3b_index_t *index,
                   int (*fn)(const char *key,
                             const struct m3b_index_entry *entry, void *opaque),
                   void *opaque) {
  struct each_ctx ctx = {fn, opaque};
  int rc;
  pthread_mutex_lock(&index->lock);
  rc = m3b__keytable_each(&index->table, each_node, &ctx);
  pthread_mutex_unlock(&index->lock);
  return rc;
}
