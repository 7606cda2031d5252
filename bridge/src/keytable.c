/*
 * keytable.c - the chained hash table of keytable.h.
 */
#include <stdlib.h>
#include <string.h>

#include "keytable.h"

uint64_t m3b__hash(const void *data, size_t len) {
  const unsigned char *p = data;
  uint64_t h = 0xcbf29ce484222325ULL;
  size_t i;
  for (i = 0; i < len; i++) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

m3b_err_t m3b__keytable_init(struct m3b__keytable *table) {
  table->buckets = calloc(M3B__KEYTABLE_INITIAL, sizeof(struct m3b__keynode *));
  table->bucket_count = table->buckets ? M3B__KEYTABLE_INITIAL : 0;
  table->count = 0;
  return table->buckets ? M3B_OK : M3B_ERR_NOMEM;
}

void m3b__keytable_cleanup(struct m3b__keytable *table,
                           void (*free_node)(struct m3b__keynode *node)) {
  size_t i;
  for (i = 0; free_node && i < table->bucket_count; i++) {
    struct m3b__keynode *n = table->buckets[i];
    while (n) {
      struct m3b__keynode *next = n->next;
      free_node(n);
      n = next;
    }
  }
  free(table->buckets);
  memset(table, 0, sizeof(*table));
}

struct m3b__keynode **m3b__keytable_slot(const struct m3b__keytable *table,
                                         const char *key, uint64_t hash) {
  struct m3b__keynode **slot =
      &table->buckets[hash & (table->bucket_count - 1)];
  while (*slot && ((*slot)->hash != hash || strcmp((*slot)->key, key) != 0))
    slot = &(*slot)->next;
  return slot;
}

struct m3b__keynode *m3b__keytable_get(const struct m3b__keytable *table,
                                       const char *key) {
  return *m3b__keytable_slot(table, key, m3b__hash(key, strlen(key)));
}

/* Doubles the bucket array; on allocation failure the table stays as it
 * was (longer chains, still correct). */
static void grow(struct m3b__keytable *table) {
  size_t new_count = table->bucket_count * 2, i;
  struct m3b__keynode **buckets =
      calloc(new_count, sizeof(struct m3b__keynode *));
  if (!buckets)
    return;
  for (i = 0; i < table->bucket_count; i++) {
    struct m3b__keynode *n = table->buckets[i];
    while (n) {
      struct m3b__keynode *next = n->next;
      size_t b = n->hash & (new_count - 1);
      n->next = buckets[b];
      buckets[b] = n;
      n = next;
    }
  }
  free(table->buckets);
  table->buckets = buckets;
  table->bucket_count = new_count;
}

void m3b__keytable_insert(struct m3b__keytable *table,
                          struct m3b__keynode **slot,
                          struct m3b__keynode *node) {
  node->next = NULL;
  *slot = node;
  table->count++;
  if (table->count > table->bucket_count)
    grow(table);
}

struct m3b__keynode *m3b__keytable_remove(struct m3b__keytable *table,
                                          struct m3b__keynode **slot) {
  struct m3b__keynode *n = *slot;
  if (n) {
    *slot = n->next;
    table->count--;
  }
  return n;
}

int m3b__keytable_each(const struct m3b__keytable *table,
                       int (*fn)(struct m3b__keynode *node, void *opaque),
                       void *opaque) {
  size_t i;
  int rc = 0;
  for (i = 0; i < table->bucket_count && !rc; i++) {
    struct m3b__keynode *n = table->buckets[i];
    while (n && !rc) {
      struct m3b__keynode *next = n->next;
      rc = fn(n, opaque);
      n = next;
    }
  }
  return rc;
}
