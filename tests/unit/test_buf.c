/* test_buf.c - the bounded buffer refuses to grow past its limit and leaves
 * its contents intact when it does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/buf.h>

static void test_append_and_limit(void **state) {
  struct m3b_buf buf;
  (void)state;
  m3b_buf_init(&buf, 10);
  assert_int_equal(m3b_buf_append(&buf, "hello", 5), M3B_OK);
  assert_int_equal(m3b_buf_append_str(&buf, "world"), M3B_OK);
  assert_int_equal(buf.len, 10);
  assert_string_equal((char *)buf.data, "helloworld");
  assert_int_equal(m3b_buf_append(&buf, "!", 1), M3B_ERR_LIMIT);
  assert_int_equal(buf.len, 10);
  assert_string_equal((char *)buf.data, "helloworld");
  m3b_buf_cleanup(&buf);
  assert_null(buf.data);
}

static void test_appendf_and_detach(void **state) {
  struct m3b_buf buf;
  uint8_t *data = NULL;
  size_t len = 0;
  (void)state;
  m3b_buf_init(&buf, 1024);
  assert_int_equal(m3b_buf_appendf(&buf, "%s=%d", "n", 42), M3B_OK);
  assert_int_equal(m3b_buf_detach(&buf, &data, &len), M3B_OK);
  assert_int_equal(len, 4);
  assert_string_equal((char *)data, "n=42");
  assert_null(buf.data);
  free(data);
  /* an empty buffer still detaches to a valid empty string */
  assert_int_equal(m3b_buf_detach(&buf, &data, &len), M3B_OK);
  assert_int_equal(len, 0);
  assert_string_equal((char *)data, "");
  free(data);
}

static void test_appendf_over_limit(void **state) {
  struct m3b_buf buf;
  (void)state;
  m3b_buf_init(&buf, 8);
  assert_int_equal(m3b_buf_appendf(&buf, "%s", "0123456789"), M3B_ERR_LIMIT);
  assert_int_equal(buf.len, 0);
  m3b_buf_cleanup_secret(&buf);
}

static void test_growth_many_small_appends(void **state) {
  struct m3b_buf buf;
  int i;
  (void)state;
  m3b_buf_init(&buf, 100000);
  for (i = 0; i < 10000; i++)
    assert_int_equal(m3b_buf_append(&buf, "0123456789", 10), M3B_OK);
  assert_int_equal(buf.len, 100000);
  assert_int_equal(m3b_buf_append(&buf, "x", 1), M3B_ERR_LIMIT);
  assert_true(buf.cap <= buf.max);
  m3b_buf_cleanup(&buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_append_and_limit),
      cmocka_unit_test(test_appendf_and_detach),
      cmocka_unit_test(test_appendf_over_limit),
      cmocka_unit_test(test_growth_many_small_appends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
