/* test_err.c - the error table: every code has a name and a message, and
 * exactly the transient codes are retriable. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/err.h>

static void test_every_code_has_name_and_message(void **state) {
  int e;
  (void)state;
  for (e = 0; e < M3B_ERR__COUNT; e++) {
    const char *name = m3b_err_name((m3b_err_t)e);
    const char *msg = m3b_err_str((m3b_err_t)e);
    assert_non_null(name);
    assert_non_null(msg);
    assert_true(strlen(name) > 1);
    assert_true(strlen(msg) > 3);
    assert_string_not_equal(name, "UNKNOWN");
  }
}

static void test_unknown_code(void **state) {
  (void)state;
  assert_string_equal(m3b_err_name((m3b_err_t)9999), "UNKNOWN");
  assert_string_equal(m3b_err_str((m3b_err_t)-1), "unknown error code");
  assert_false(m3b_err_is_retriable((m3b_err_t)9999));
}

static void test_retry_decision(void **state) {
  static const struct {
    m3b_err_t err;
    int retriable;
  } cases[] = {
      {M3B_OK, 0},
      {M3B_ERR_KAFKA_TRANSPORT, 1},
      {M3B_ERR_KUBE_TRANSPORT, 1},
      {M3B_ERR_KUBE_THROTTLED, 1},
      {M3B_ERR_KUBE_SERVER, 1},
      {M3B_ERR_TIMEOUT, 1},
      {M3B_ERR_SIG_INVALID, 0},
      {M3B_ERR_DECODE, 0},
      {M3B_ERR_NAMESPACE_NOT_BOUND, 0},
      {M3B_ERR_KUBE_INVALID, 0},
      {M3B_ERR_KUBE_FORBIDDEN, 0},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_int_equal(m3b_err_is_retriable(cases[i].err), cases[i].retriable);
  assert_int_equal(M3B_OK, 0);
  assert_string_equal(m3b_err_name(M3B_ERR_SIG_INVALID), "SIG_INVALID");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_code_has_name_and_message),
      cmocka_unit_test(test_unknown_code),
      cmocka_unit_test(test_retry_decision),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
