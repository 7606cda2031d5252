/*
 * replay_fold.c - the fold of <m3b/replay.h>: a chained hash table of
 * object keys, each holding the event that decides the key's final desired
 * state and one heap copy of its record (topic, key, value, headers in a
 * single allocation, so replacing a winner is one free and one malloc).
 *
 * The table is keytable.h's. Values are
 * signed, sealed events: nothing in them is plaintext secret data, so the
 * copies need no wiping.
 */
#include <m3b/replay.h>

#include <stdlib.h>
#include <string.h>

#include "errstr.h"
#include "keytable.h"

struct node {
  struct m3b__keynode link; /* first: a keynode is its node */
  struct m3b_fold_entry entry;
  void *copy;       /* the record copy, or NULL */
  size_t copy_size; /* its bytes */
  char key[];       /* NUL-terminated */
};

struct m3b_fold {
  struct m3b__keytable table; /* of struct node */
  size_t bytes;
};

m3b_fold_t *m3b_fold_new(char *errstr, size_t errstr_size) {
  m3b_fold_t *fold = calloc(1, sizeof(*fold));
  if (!fold || m3b__keytable_init(&fold->table) != M3B_OK) {
    free(fold);
    m3b__errstr(errstr, errstr_size, "fold: out of memory");
    return NULL;
  }
  return fold;
}

static void free_node(struct m3b__keynode *node) {
  free(((struct node *)node)->copy);
  free(node);
}

void m3b_fold_destroy(m3b_fold_t *fold) {
  if (!fold)
    return;
  m3b__keytable_cleanup(&fold->table, free_node);
  free(fold);
}

/* Adds n to *total unless it would overflow. */
static int add_size(size_t *total, size_t n) {
  if (n > SIZE_MAX - *total)
    return -1;
  *total += n;
  return 0;
}

/* Copies record into one allocation laid out as: header array, topic,
 * key, value, header names and values. Sets n->copy and n->entry.record. */
static m3b_err_t copy_record(struct node *n, const struct m3b_record *in) {
  struct m3b_record *out = &n->entry.record;
  struct m3b_record_header *headers;
  size_t size = 0, i;
  char *p;

  if (add_size(&size, in->header_count * sizeof(*headers)) ||
      add_size(&size, (in->topic ? strlen(in->topic) : 0) + 1) ||
      add_size(&size, in->key_len) || add_size(&size, in->value_len))
    return M3B_ERR_LIMIT;
  for (i = 0; i < in->header_count; i++)
    if (add_size(&size, strlen(in->headers[i].name) + 1) ||
        add_size(&size, in->headers[i].len))
      return M3B_ERR_LIMIT;
  n->copy = malloc(size ? size : 1);
  if (!n->copy)
    return M3B_ERR_NOMEM;
  n->copy_size = size;
  headers = n->copy;
  p = (char *)(headers + in->header_count);
  *out = *in;
  out->topic = p;
  if (in->topic) {
    memcpy(p, in->topic, strlen(in->topic) + 1);
    p += strlen(in->topic) + 1;
  } else {
    *p++ = '\0';
  }
  out->key = p;
  memcpy(p, in->key, in->key_len);
  p += in->key_len;
  if (in->value) {
    out->value = p;
    if (in->value_len)
      memcpy(p, in->value, in->value_len);
    p += in->value_len;
  }
  for (i = 0; i < in->header_count; i++) {
    size_t name_len = strlen(in->headers[i].name) + 1;
    memcpy(p, in->headers[i].name, name_len);
    headers[i].name = p;
    p += name_len;
    headers[i].len = in->headers[i].len;
    headers[i].value = NULL;
    if (in->headers[i].value) {
      headers[i].value = p;
      if (in->headers[i].len)
        memcpy(p, in->headers[i].value, in->headers[i].len);
      p += in->headers[i].len;
    }
  }
  out->headers = in->header_count ? headers : NULL;
  return M3B_OK;
}

static void drop_copy(m3b_fold_t *fold, struct node *n) {
  fold->bytes -= n->copy_size;
  free(n->copy);
  n->copy = NULL;
  n->copy_size = 0;
  memset(&n->entry.record, 0, sizeof(n->entry.record));
}

/* Makes n hold record and event (NULL: forgotten). */
static m3b_err_t take(m3b_fold_t *fold, struct node *n,
                      const struct m3b_record *record,
                      const struct m3b_fold_event *event) {
  struct node saved = *n;
  m3b_err_t err;

  if (!event) {
    drop_copy(fold, n);
    n->entry.state = M3B_FOLD_FORGOTTEN;
    memset(n->entry.manifest_sha256, 0, sizeof(n->entry.manifest_sha256));
    n->entry.verified = 0;
    memset(n->entry.record_sha256, 0, sizeof(n->entry.record_sha256));
    return M3B_OK;
  }
  n->copy = NULL;
  err = copy_record(n, record);
  if (err) { /* keep the old winner */
    n->copy = saved.copy;
    n->copy_size = saved.copy_size;
    n->entry.record = saved.entry.record;
    return err;
  }
  free(saved.copy);
  fold->bytes = fold->bytes - saved.copy_size + n->copy_size;
  n->entry.state =
      event->op == M3B_OP_DELETE ? M3B_FOLD_DELETE : M3B_FOLD_APPLY;
  n->entry.generation = event->generation;
  memcpy(n->entry.manifest_sha256, event->manifest_sha256,
         sizeof(n->entry.manifest_sha256));
  n->entry.verified = event->verified;
  memcpy(n->entry.record_sha256, event->record_sha256,
         sizeof(n->entry.record_sha256));
  return M3B_OK;
}

m3b_err_t m3b_fold_offer(m3b_fold_t *fold, const struct m3b_record *record,
                         const struct m3b_fold_event *event, int *won_out) {
  char key[M3B_OBJKEY_MAX + 1];
  struct m3b__keynode **slot;
  struct node *n;
  uint64_t hash;
  m3b_err_t err;

  if (won_out)
    *won_out = 0;
  if (!fold || !record || !record->key || !record->key_len ||
      (event && !record->value))
    return M3B_ERR_INVALID_ARG;
  if (record->key_len > M3B_OBJKEY_MAX)
    return M3B_ERR_LIMIT;
  memcpy(key, record->key, record->key_len);
  key[record->key_len] = '\0';
  if (strlen(key) != record->key_len)
    return M3B_ERR_INVALID_ARG; /* a NUL inside is no object key */
  hash = m3b__hash(key, record->key_len);
  slot = m3b__keytable_slot(&fold->table, key, hash);
  if (*slot) {
    n = (struct node *)*slot;
    /* older or the same generation: the first stays; a forgotten key
     * keeps its last generation so only a newer event revives it */
    if (event && event->generation <= n->entry.generation)
      return M3B_OK;
    if (!event && n->entry.state == M3B_FOLD_FORGOTTEN)
      return M3B_OK;
    err = take(fold, n, record, event);
    if (!err && won_out)
      *won_out = 1;
    return err;
  }
  if (fold->table.count >= M3B_FOLD_MAX_ENTRIES)
    return M3B_ERR_LIMIT;
  n = calloc(1, sizeof(*n) + record->key_len + 1);
  if (!n)
    return M3B_ERR_NOMEM;
  n->link.hash = hash;
  memcpy(n->key, key, record->key_len + 1);
  n->link.key = n->key;
  n->entry.key = n->key;
  n->entry.generation = -1;
  n->entry.state = M3B_FOLD_FORGOTTEN;
  err = take(fold, n, record, event);
  if (err) {
    free(n);
    return err;
  }
  m3b__keytable_insert(&fold->table, slot, &n->link);
  if (won_out)
    *won_out = 1;
  return M3B_OK;
}

const struct m3b_fold_entry *m3b_fold_get(const m3b_fold_t *fold,
                                          const char *key) {
  const struct node *n;
  if (!fold || !key)
    return NULL;
  n = (const struct node *)m3b__keytable_get(&fold->table, key);
  return n ? &n->entry : NULL;
}

size_t m3b_fold_count(const m3b_fold_t *fold) {
  return fold ? fold->table.count : 0;
}

size_t m3b_fold_bytes(const m3b_fold_t *fold) {
  return fold ? fold->bytes : 0;
}

struct each_ctx {
  int (*fn)(const struct m3b_fold_entry *entry, void *opaque);
  void *opaque;
};

static int each_node(struct m3b__keynode *node, void *opaque) {
  const struct each_ctx *ctx = opaque;
  return ctx->fn(&((const struct node *)node)->entry, ctx->opaque);
}

int m3b_fold_each(const m3b_fold_t *fold,
                  int (*fn)(const struct m3b_fold_entry *entry, void *opaque),
                  void *opaque) {
  struct each_ctx ctx = {fn, opaque};
  if (!fold)
    return 0;
  return m3b__keytable_each(&fold->table, each_node, &ctx);
}
