/* test_log.c - log lines are single valid JSON objects, levels filter, and
 * the format arguments are not evaluated for disabled levels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include <m3b/log.h>

static int side_effects;

static const char *count_call(void) {
  side_effects++;
  return "x";
}

static void test_json_line_and_escaping(void **state) {
  char out[8192];
  FILE *stream = fmemopen(out, sizeof(out), "w");
  m3b_log_t *log = m3b_log_new(stream, M3B_LOG_INFO);
  json_t *obj;
  json_error_t jerr;
  (void)state;
  assert_non_null(log);
  M3B_LOG(log, M3B_LOG_INFO, "kafka", "quote \" backslash \\ newline \n %d", 7);
  fclose(stream);
  assert_non_null(strchr(out, '\n'));
  assert_null(strchr(strchr(out, '\n') + 1, '\n'));
  obj = json_loads(out, 0, &jerr);
  assert_non_null(obj);
  assert_string_equal(json_string_value(json_object_get(obj, "level")), "info");
  assert_string_equal(json_string_value(json_object_get(obj, "module")),
                      "kafka");
  assert_string_equal(json_string_value(json_object_get(obj, "msg")),
                      "quote \" backslash \\ newline \n 7");
  json_decref(obj);
  m3b_log_destroy(log);
}

static void test_level_filter_skips_arguments(void **state) {
  char out[1024] = {0};
  FILE *stream = fmemopen(out, sizeof(out), "w");
  m3b_log_t *log = m3b_log_new(stream, M3B_LOG_WARN);
  (void)state;
  side_effects = 0;
  M3B_LOG(log, M3B_LOG_DEBUG, "t", "%s", count_call());
  M3B_LOG(log, M3B_LOG_INFO, "t", "%s", count_call());
  assert_int_equal(side_effects, 0);
  M3B_LOG(log, M3B_LOG_ERROR, "t", "%s", count_call());
  assert_int_equal(side_effects, 1);
  fclose(stream);
  assert_non_null(strstr(out, "\"level\":\"error\""));
  m3b_log_destroy(log);
}

static void test_long_message_is_truncated_not_overflowed(void **state) {
  static char big[20000];
  static char out[65536];
  FILE *stream = fmemopen(out, sizeof(out), "w");
  m3b_log_t *log = m3b_log_new(stream, M3B_LOG_DEBUG);
  json_t *obj;
  json_error_t jerr;
  (void)state;
  memset(big, '"', sizeof(big) - 1);
  M3B_LOG(log, M3B_LOG_INFO, "t", "%s", big);
  fclose(stream);
  obj = json_loads(out, 0, &jerr);
  assert_non_null(obj); /* still a complete JSON object */
  assert_true(strlen(json_string_value(json_object_get(obj, "msg"))) < 5000);
  json_decref(obj);
  m3b_log_destroy(log);
}

static void test_level_parse(void **state) {
  m3b_log_level_t level;
  (void)state;
  assert_int_equal(m3b_log_level_parse("DEBUG", &level), M3B_OK);
  assert_int_equal(level, M3B_LOG_DEBUG);
  assert_int_equal(m3b_log_level_parse("loud", &level), M3B_ERR_INVALID_ARG);
  m3b_log_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_json_line_and_escaping),
      cmocka_unit_test(test_level_filter_skips_arguments),
      cmocka_unit_test(test_long_message_is_truncated_not_overflowed),
      cmocka_unit_test(test_level_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
