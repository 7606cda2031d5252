/*
 * ring.h - a bounded ring of fixed-size items that keeps the newest ones.
 *
 * The listener's /ui keeps "the last hour" of lag samples per partition
 * and the last N outcomes; both are rings: pushing into a full ring
 * overwrites the oldest item, so memory is fixed at creation and never
 * grows with uptime or traffic.
 *
 * Thread-compatible: a ring has no lock; its owner serialises access.
 */
#ifndef M3B_RING_H
#define M3B_RING_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Largest item and the most items a ring may hold; larger requests are
 * refused by m3b_ring_new (a ring is meant for small records). */
#define M3B_RING_ITEM_MAX ((size_t)4096)
#define M3B_RING_CAPACITY_MAX ((size_t)1 << 20)

typedef struct m3b_ring m3b_ring_t;

/* A ring of capacity items of item_size bytes each (both >= 1 and within
 * the limits above). NULL when a size is out of range or on OOM. */
m3b_ring_t *m3b_ring_new(size_t item_size, size_t capacity);

/* Frees the ring; NULL is a no-op. */
void m3b_ring_destroy(m3b_ring_t *ring);

/* Copies item_size bytes from item in as the newest item; when the ring is
 * full the oldest item is dropped. Never fails. */
void m3b_ring_push(m3b_ring_t *ring, const void *item);

/* The item at index (0 = oldest, count - 1 = newest), or NULL past the
 * end. Returned-borrowed: valid until the next push, clear or destroy.
 * Writable, so the owner can update the newest item in place. */
void *m3b_ring_at(const m3b_ring_t *ring, size_t index);

/* The newest item, or NULL when the ring is empty; borrowed as above. */
void *m3b_ring_newest(const m3b_ring_t *ring);

/* Items held (<= capacity) and the capacity given at creation. */
size_t m3b_ring_count(const m3b_ring_t *ring);
size_t m3b_ring_capacity(const m3b_ring_t *ring);

/* Drops every item; the memory is kept. */
void m3b_ring_clear(m3b_ring_t *ring);

#ifdef __cplusplus
}
#endif

#endif
