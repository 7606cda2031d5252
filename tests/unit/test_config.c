/* test_config.c - layered configuration: defaults, YAML, env, flags; every
 * rejection has its own message; secrets are refused as values; the
 * generated reference in docs/ is current. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <m3b/config.h>

static char errstr[512];

static m3b_config_t *new_config(void) {
  m3b_config_t *config =
      m3b_config_new(M3B_PROGRAM_ALL, errstr, sizeof(errstr));
  assert_non_null(config);
  return config;
}

static const char *write_temp(const char *content) {
  static char path[64];
  int fd;
  snprintf(path, sizeof(path), "/tmp/m3b-test-config-XXXXXX");
  fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, content, strlen(content)),
                   (ssize_t)strlen(content));
  close(fd);
  return path;
}

static void test_defaults_and_typed_getters(void **state) {
  m3b_config_t *config = new_config();
  long long n = 0;
  (void)state;
  assert_string_equal(m3b_config_get(config, "topic.prefix"), "m3");
  assert_int_equal(m3b_config_get_int(config, "topics.partitions", &n), M3B_OK);
  assert_int_equal(n, 6);
  assert_null(m3b_config_get(config, "plane"));
  assert_int_equal(m3b_config_get_int(config, "plane", &n), M3B_ERR_NOT_FOUND);
  /* plane is required */
  assert_int_equal(m3b_config_validate(config, errstr, sizeof(errstr)),
                   M3B_ERR_CONFIG);
  assert_non_null(strstr(errstr, "M3B_PLANE"));
  m3b_config_destroy(config);
  m3b_config_destroy(NULL);
}

static void test_rejections(void **state) {
  static const struct {
    const char *pair;
    m3b_err_t err;
    const char *message_part;
  } cases[] = {
      {"plane=Shop", M3B_ERR_CONFIG, "DNS label"},
      {"plane=-x", M3B_ERR_CONFIG, "DNS label"},
      {"topics.partitions=zero", M3B_ERR_CONFIG, "not an integer"},
      {"topics.partitions=0", M3B_ERR_CONFIG, "outside"},
      {"log.level=loud", M3B_ERR_CONFIG, "not one of"},
      {"no.such.setting=1", M3B_ERR_CONFIG, "unknown setting"},
      {"kafka.sasl.password=hunter2", M3B_ERR_CONFIG,
       "kafka.sasl.password_file"},
      {"kafka.ssl.key.pem=-----BEGIN", M3B_ERR_CONFIG, "never configuration"},
      {"kafka.Bad_Name=1", M3B_ERR_CONFIG, "property names"},
      {"kafka.=1", M3B_ERR_CONFIG, "followed by"},
      {"novalue", M3B_ERR_CONFIG, "name=value"},
  };
  m3b_config_t *config = new_config();
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    errstr[0] = '\0';
    assert_int_equal(m3b_config_set_pair(config, cases[i].pair, "flag", errstr,
                                         sizeof(errstr)),
                     cases[i].err);
    if (!strstr(errstr, cases[i].message_part))
      fail_msg("case '%s': message '%s' lacks '%s'", cases[i].pair, errstr,
               cases[i].message_part);
    /* the secret never appears in the message */
    assert_null(strstr(errstr, "hunter2"));
  }
  m3b_config_destroy(config);
}

static int collect_kafka(const char *property, const char *value,
                         void *opaque) {
  char *out = opaque;
  size_t used = strlen(out);
  snprintf(out + used, 512 - used, "%s=%s;", property, value);
  return 0;
}

static int collect_item(const char *item, void *opaque) {
  char *out = opaque;
  size_t used = strlen(out);
  snprintf(out + used, 512 - used, "[%s]", item);
  return 0;
}

static void test_yaml_layers(void **state) {
  const char *path = write_temp("plane: shop\n"
                                "kafka:\n"
                                "  bootstrap.servers: 127.0.0.1:19093\n"
                                "  security:\n"
                                "    protocol: SASL_SSL\n"
                                "  sasl.password_file: /run/secrets/pw\n"
                                "topics:\n"
                                "  partitions: 12\n"
                                "log.level: debug\n"
                                /* required by the listener */
                                "listener:\n"
                                "  namespaces: [shop]\n"
                                "  trusted_keys_dir: /keys\n");
  m3b_config_t *config = new_config();
  char kafka[512] = "";
  char *envp[] = {"M3B_LOG_LEVEL=warn", "M3B_KAFKA_CLIENT_ID=from-env",
                  "M3B_TESTBED_DIR=/ignored", "PATH=/bin", NULL};
  (void)state;
  assert_int_equal(m3b_config_load_file(config, path, errstr, sizeof(errstr)),
                   M3B_OK);
  unlink(path);
  assert_string_equal(m3b_config_get(config, "plane"), "shop");
  assert_string_equal(m3b_config_get(config, "topics.partitions"), "12");
  assert_string_equal(m3b_config_get(config, "kafka.security.protocol"),
                      "SASL_SSL");
  assert_string_equal(m3b_config_get(config, "log.level"), "debug");
  /* env overrides the file, flags override env */
  assert_int_equal(m3b_config_load_env(config, envp, errstr, sizeof(errstr)),
                   M3B_OK);
  assert_string_equal(m3b_config_get(config, "log.level"), "warn");
  assert_string_equal(m3b_config_get(config, "kafka.client.id"), "from-env");
  assert_int_equal(m3b_config_set_pair(config, "log.level=error", "flag",
                                       errstr, sizeof(errstr)),
                   M3B_OK);
  assert_string_equal(m3b_config_get(config, "log.level"), "error");
  assert_int_equal(m3b_config_validate(config, errstr, sizeof(errstr)), M3B_OK);
  /* passthrough excludes m3bridge's own kafka.*_file settings */
  m3b_config_each_kafka(config, collect_kafka, kafka);
  assert_string_equal(kafka, "bootstrap.servers=127.0.0.1:19093;"
                             "security.protocol=SASL_SSL;client.id=from-env;");
  m3b_config_destroy(config);
}

static void test_yaml_lists_and_errors(void **state) {
  static const struct {
    const char *yaml;
    const char *message_part;
  } bad[] = {
      {"plane: [a, b]\ntopic.prefix: {x: 1}\nfoo: 1\n", NULL},
      {"- a\n- b\n", "list must be the value"},
      {"plane: shop\ntopics: {partitions: 3\n", "did not find expected"},
      {"plane: UPPER\n", ":1: plane"},
      {"topics:\n  partitions: -3\n", ":2: topics.partitions"},
      {"kafka:\n  sasl.password: secret\n", "sasl.password_file"},
      {"plane: &x shop\ntopic.prefix: *x\n", "aliases"},
  };
  size_t i;
  (void)state;
  for (i = 1; i < sizeof(bad) / sizeof(bad[0]); i++) {
    const char *path = write_temp(bad[i].yaml);
    m3b_config_t *config = new_config();
    errstr[0] = '\0';
    assert_int_not_equal(
        m3b_config_load_file(config, path, errstr, sizeof(errstr)), M3B_OK);
    unlink(path);
    if (!strstr(errstr, bad[i].message_part))
      fail_msg("yaml case %zu: message '%s' lacks '%s'", i, errstr,
               bad[i].message_part);
    assert_null(strstr(errstr, "secret\n"));
    m3b_config_destroy(config);
  }
  {
    m3b_config_t *config = new_config();
    assert_int_equal(m3b_config_load_file(config, "/nonexistent/m3b.yaml",
                                          errstr, sizeof(errstr)),
                     M3B_ERR_IO);
    assert_non_null(strstr(errstr, "/nonexistent/m3b.yaml"));
    m3b_config_destroy(config);
  }
}

static void test_list_items(void **state) {
  m3b_config_t *config = new_config();
  char items[512] = "";
  (void)state;
  /* no list setting exists yet in the table: use the iterator on a string */
  assert_int_equal(m3b_config_set(config, "topic.prefix", " a, b ,,c ", "t",
                                  errstr, sizeof(errstr)),
                   M3B_OK);
  m3b_config_each_item(config, "topic.prefix", collect_item, items);
  assert_string_equal(items, "[a][b][c]");
  m3b_config_destroy(config);
}

static void test_read_secret(void **state) {
  const char *path = write_temp("s3cr3t\n");
  m3b_config_t *config = new_config();
  char *secret = NULL;
  char printed[2048] = "";
  FILE *out;
  (void)state;
  assert_int_equal(m3b_config_set(config, "kafka.sasl.password_file", path, "t",
                                  errstr, sizeof(errstr)),
                   M3B_OK);
  assert_int_equal(m3b_config_read_secret(config, "kafka.sasl.password_file",
                                          &secret, errstr, sizeof(errstr)),
                   M3B_OK);
  assert_string_equal(secret, "s3cr3t");
  free(secret);
  /* printing shows the path, never the content */
  out = fmemopen(printed, sizeof(printed), "w");
  m3b_config_print(config, out);
  fclose(out);
  assert_non_null(strstr(printed, path));
  assert_null(strstr(printed, "s3cr3t"));
  unlink(path);
  assert_int_equal(m3b_config_read_secret(config, "kafka.sasl.password_file",
                                          &secret, errstr, sizeof(errstr)),
                   M3B_ERR_IO);
  assert_null(secret);
  assert_int_equal(m3b_config_read_secret(config, "signing.key_file", &secret,
                                          errstr, sizeof(errstr)),
                   M3B_ERR_NOT_FOUND);
  m3b_config_destroy(config);
}

static void test_reference_doc_is_current(void **state) {
  char *generated = NULL, *committed = NULL;
  size_t generated_len = 0, n;
  FILE *out = open_memstream(&generated, &generated_len);
  FILE *in = fopen(M3B_SOURCE_DIR "/docs/CONFIGURATION.md", "rb");
  (void)state;
  m3b_config_write_reference(out);
  fclose(out);
  if (!in)
    fail_msg("docs/CONFIGURATION.md is missing: regenerate it with "
             "`build/consumer/m3bridge-listener config-reference > "
             "docs/CONFIGURATION.md`");
  committed = calloc(1, generated_len + 2);
  n = fread(committed, 1, generated_len + 1, in);
  fclose(in);
  if (n != generated_len || memcmp(committed, generated, n) != 0)
    fail_msg("docs/CONFIGURATION.md is stale: regenerate it with "
             "`build/consumer/m3bridge-listener config-reference > "
             "docs/CONFIGURATION.md`");
  free(committed);
  free(generated);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_and_typed_getters),
      cmocka_unit_test(test_rejections),
      cmocka_unit_test(test_yaml_layers),
      cmocka_unit_test(test_yaml_lists_and_errors),
      cmocka_unit_test(test_list_items),
      cmocka_unit_test(test_read_secret),
      cmocka_unit_test(test_reference_doc_is_current),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
