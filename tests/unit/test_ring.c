/* test_ring.c - the bounded ring keeps the newest items in order, drops
 * the oldest when full, and refuses sizes out of range. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/ring.h>

static int item_at(const m3b_ring_t *ring, size_t index) {
  const int *item = m3b_ring_at(ring, index);
  assert_non_null(item);
  return *item;
}

static void test_fills_then_overwrites_oldest(void **state) {
  m3b_ring_t *ring = m3b_ring_new(sizeof(int), 3);
  int i;
  (void)state;
  assert_non_null(ring);
  assert_int_equal(m3b_ring_capacity(ring), 3);
  assert_int_equal(m3b_ring_count(ring), 0);
  assert_null(m3b_ring_newest(ring));
  assert_null(m3b_ring_at(ring, 0));
  for (i = 1; i <= 2; i++)
    m3b_ring_push(ring, &i);
  assert_int_equal(m3b_ring_count(ring), 2);
  assert_int_equal(item_at(ring, 0), 1);
  assert_int_equal(item_at(ring, 1), 2);
  assert_null(m3b_ring_at(ring, 2));
  /* 3 fills it; 4..7 each drop the oldest; order stays oldest first */
  for (i = 3; i <= 7; i++) {
    m3b_ring_push(ring, &i);
    assert_int_equal(m3b_ring_count(ring), i < 3 ? i : 3);
    assert_int_equal(item_at(ring, 0), i - 2);
    assert_int_equal(item_at(ring, 1), i - 1);
    assert_int_equal(item_at(ring, 2), i);
    assert_int_equal(*(int *)m3b_ring_newest(ring), i);
  }
  assert_null(m3b_ring_at(ring, 3));
  m3b_ring_destroy(ring);
}

static void test_newest_is_writable(void **state) {
  m3b_ring_t *ring = m3b_ring_new(sizeof(int), 2);
  int v = 1;
  (void)state;
  m3b_ring_push(ring, &v);
  v = 2;
  m3b_ring_push(ring, &v);
  v = 3;
  m3b_ring_push(ring, &v); /* wraps: head is now slot 1 */
  *(int *)m3b_ring_newest(ring) = 42;
  assert_int_equal(item_at(ring, 0), 2);
  assert_int_equal(item_at(ring, 1), 42);
  m3b_ring_destroy(ring);
}

static void test_clear_keeps_capacity(void **state) {
  m3b_ring_t *ring = m3b_ring_new(sizeof(int), 2);
  int v = 5;
  (void)state;
  m3b_ring_push(ring, &v);
  m3b_ring_push(ring, &v);
  m3b_ring_push(ring, &v);
  m3b_ring_clear(ring);
  assert_int_equal(m3b_ring_count(ring), 0);
  assert_null(m3b_ring_newest(ring));
  v = 9;
  m3b_ring_push(ring, &v);
  assert_int_equal(item_at(ring, 0), 9);
  assert_int_equal(m3b_ring_capacity(ring), 2);
  m3b_ring_destroy(ring);
}

/* A struct item is copied whole, not pointed to. */
static void test_items_are_copies(void **state) {
  struct item {
    char text[16];
    int64_t n;
  } in = {"first", 1};
  const struct item *out;
  m3b_ring_t *ring = m3b_ring_new(sizeof(in), 4);
  (void)state;
  m3b_ring_push(ring, &in);
  memcpy(in.text, "changed", sizeof("changed"));
  in.n = 2;
  out = m3b_ring_at(ring, 0);
  assert_string_equal(out->text, "first");
  assert_int_equal(out->n, 1);
  m3b_ring_destroy(ring);
}

static void test_sizes_out_of_range(void **state) {
  (void)state;
  assert_null(m3b_ring_new(0, 4));
  assert_null(m3b_ring_new(4, 0));
  assert_null(m3b_ring_new(M3B_RING_ITEM_MAX + 1, 4));
  assert_null(m3b_ring_new(4, M3B_RING_CAPACITY_MAX + 1));
  m3b_ring_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_fills_then_overwrites_oldest),
      cmocka_unit_test(test_newest_is_writable),
      cmocka_unit_test(test_clear_keeps_capacity),
      cmocka_unit_test(test_items_are_copies),
      cmocka_unit_test(test_sizes_out_of_range),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
