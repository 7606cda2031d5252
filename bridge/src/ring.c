/*
 * ring.c - the bounded ring of <m3b/ring.h>.
 *
 * One allocation of capacity * item_size bytes; head is the slot of the
 * oldest item and count how many slots are in use, so index i lives in
 * slot (head + i) % capacity.
 */
#include <m3b/ring.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct m3b_ring {
  unsigned char *items;
  size_t item_size;
  size_t capacity;
  size_t head;
  size_t count;
};

m3b_ring_t *m3b_ring_new(size_t item_size, size_t capacity) {
  m3b_ring_t *ring;

  if (item_size == 0 || item_size > M3B_RING_ITEM_MAX || capacity == 0 ||
      capacity > M3B_RING_CAPACITY_MAX)
    return NULL;
  ring = calloc(1, sizeof(*ring));
  if (!ring)
    return NULL;
  /* no overflow: both factors are bounded above */
  ring->items = calloc(capacity, item_size);
  if (!ring->items) {
    free(ring);
    return NULL;
  }
  ring->item_size = item_size;
  ring->capacity = capacity;
  return ring;
}

void m3b_ring_destroy(m3b_ring_t *ring) {
  if (!ring)
    return;
  free(ring->items);
  free(ring);
}

static unsigned char *slot(const m3b_ring_t *ring, size_t index) {
  return ring->items +
         ((ring->head + index) % ring->capacity) * ring->item_size;
}

void m3b_ring_push(m3b_ring_t *ring, const void *item) {
  assert(ring && item);
  if (ring->count == ring->capacity) {
    memcpy(slot(ring, 0), item, ring->item_size);
    ring->head = (ring->head + 1) % ring->capacity;
    return;
  }
  memcpy(slot(ring, ring->count), item, ring->item_size);
  ring->count++;
}

void *m3b_ring_at(const m3b_ring_t *ring, size_t index) {
  assert(ring);
  return index < ring->count ? slot(ring, index) : NULL;
}

void *m3b_ring_newest(const m3b_ring_t *ring) {
  assert(ring);
  return ring->count ? slot(ring, ring->count - 1) : NULL;
}

size_t m3b_ring_count(const m3b_ring_t *ring) {
  assert(ring);
  return ring->count;
}

size_t m3b_ring_capacity(const m3b_ring_t *ring) {
  assert(ring);
  return ring->capacity;
}

void m3b_ring_clear(m3b_ring_t *ring) {
  assert(ring);
  ring->head = 0;
  ring->count = 0;
}
