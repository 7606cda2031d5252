/*
 * keytable.h - a chained hash table of string keys, internal to
 * libm3bridge, for the modules that keep one entry per object key (the
 * index, a replay's fold).
 *
 * Intrusive: the caller's node starts with a struct m3b__keynode, whose
 * key points at the caller's own NUL-terminated copy (usually stored right
 * after the node), and the caller allocates and frees its nodes. The table
 * holds the buckets: it starts at M3B__KEYTABLE_INITIAL of them and
 * doubles when it holds more keys than buckets (a failed doubling leaves
 * longer chains, still correct). Not thread-safe: callers lock.
 */
#ifndef M3B_KEYTABLE_H
#define M3B_KEYTABLE_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/err.h>

#define M3B__KEYTABLE_INITIAL 1024 /* buckets; a power of two */

struct m3b__keynode {
  struct m3b__keynode *next;
  uint64_t hash; /* m3b__hash of key */
  const char *key;
};

struct m3b__keytable {
  struct m3b__keynode **buckets;
  size_t bucket_count; /* a power of two */
  size_t count;
};

/* FNV-1a over data[0..len): fast, and good enough for object keys. */
uint64_t m3b__hash(const void *data, size_t len);

/* An empty table; M3B_ERR_NOMEM. */
m3b_err_t m3b__keytable_init(struct m3b__keytable *table);

/* Calls free_node (may be NULL) for every node, then frees the buckets. */
void m3b__keytable_cleanup(struct m3b__keytable *table,
                           void (*free_node)(struct m3b__keynode *node));

/* Where key (of hash) is: *slot is its node, or NULL where it would go.
 * Valid until the table changes. */
struct m3b__keynode **m3b__keytable_slot(const struct m3b__keytable *table,
                                         const char *key, uint64_t hash);

/* The node of key, or NULL. */
struct m3b__keynode *m3b__keytable_get(const struct m3b__keytable *table,
                                       const char *key);

/* Links node (its hash and key set) at slot, from m3b__keytable_slot of
 * the same key with no change since; may grow the table. */
void m3b__keytable_insert(struct m3b__keytable *table,
                          struct m3b__keynode **slot,
                          struct m3b__keynode *node);

/* Unlinks the node at slot and returns it for the caller to free. */
struct m3b__keynode *m3b__keytable_remove(struct m3b__keytable *table,
                                          struct m3b__keynode **slot);

/* Calls fn for every node in no particular order; stops at and returns
 * the first non-zero result. fn must not insert or remove. */
int m3b__keytable_each(const struct m3b__keytable *table,
                       int (*fn)(struct m3b__keynode *node, void *opaque),
                       void *opaque);

#endif
