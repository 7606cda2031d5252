/* test_kube_config.c - the Kubernetes client's connection settings: a table
 * of kubeconfig files (good ones, malformed YAML, missing pieces, base64
 * -data variants, exec users, missing files), the in-cluster service
 * account, the HTTP status translation and client construction. No
 * network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sys/stat.h>
#include <unistd.h>

#include <m3b/kube.h>

static char tmpdir[256];

static void write_text(const char *name, const char *text) {
  char path[512];
  FILE *f;
  snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
  f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static int setup(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof(tmpdir), "/tmp/m3b-kube-config-XXXXXX");
  if (!mkdtemp(tmpdir))
    return -1;
  return 0;
}

static int teardown(void **state) {
  char cmd[300];
  (void)state;
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

#define HEAD                                                                   \
  "apiVersion: v1\n"                                                           \
  "kind: Config\n"

/* "hello-ca" / "cert-pem" / "key-pem" in base64 */
#define B64_CA "aGVsbG8tY2E="
#define B64_CERT "Y2VydC1wZW0="
#define B64_KEY "a2V5LXBlbQ=="

struct kc_case {
  const char *name;
  const char *yaml; /* NULL: file does not exist */
  const char *context;
  m3b_err_t err;
  const char *errstr_has; /* substring of errstr on failure */
  /* expectations on success */
  const char *server;
  const char *ca_file_suffix;
  const char *ca_data;
  int insecure;
  const char *token;
  const char *token_file_suffix;
  const char *cert_data;
  const char *key_data;
  const char *cert_file_suffix;
  const char *ns;
};

static const struct kc_case kc_cases[] = {
    {"token and relative CA",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://k:6443\n"
          "    certificate-authority: pki/ca.crt\n"
          "users:\n- name: u\n  user:\n    token: s3cr3t\n"
          "contexts:\n- name: x\n  context: {cluster: c, user: u, namespace: "
          "shop}\n"
          "current-context: x\n",
     NULL, M3B_OK, NULL, "https://k:6443", "/pki/ca.crt", NULL, 0, "s3cr3t",
     NULL, NULL, NULL, NULL, "shop"},
    {"data variants (base64)",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://k\n"
          "    certificate-authority-data: " B64_CA "\n"
          "users:\n- name: u\n  user:\n"
          "    client-certificate-data: " B64_CERT "\n"
          "    client-key-data: " B64_KEY "\n"
          "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
          "current-context: x\n",
     NULL, M3B_OK, NULL, "https://k", NULL, "hello-ca", 0, NULL, NULL,
     "cert-pem", "key-pem", NULL, NULL},
    {"tokenFile, insecure, explicit context",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://k\n"
          "    insecure-skip-tls-verify: true\n"
          "- name: other\n  cluster:\n    server: https://other\n"
          "users:\n- name: u\n  user:\n    tokenFile: /var/tok\n"
          "    client-certificate: c.pem\n    client-key: k.pem\n"
          "contexts:\n- name: x\n  context: {cluster: other}\n"
          "- name: y\n  context: {cluster: c, user: u}\n"
          "current-context: x\n",
     "y", M3B_OK, NULL, "https://k", NULL, NULL, 1, NULL, "/var/tok", NULL,
     NULL, "/c.pem", NULL},
    {"context without user (anonymous)",
     HEAD "clusters:\n- name: c\n  cluster: {server: https://k}\n"
          "contexts:\n- name: x\n  context: {cluster: c}\n"
          "current-context: x\n",
     NULL, M3B_OK, NULL, "https://k", NULL, NULL, 0, NULL, NULL, NULL, NULL,
     NULL, NULL},
    {"malformed YAML", HEAD "clusters: [\n  - name: c\n  cluster: {\n",
     .err = M3B_ERR_CONFIG, .errstr_has = "YAML error"},
    {"not a mapping", "- just\n- a list\n", .err = M3B_ERR_CONFIG,
     .errstr_has = "not a YAML mapping"},
    {"empty file", "", .err = M3B_ERR_CONFIG, .errstr_has = ""},
    {"no current-context",
     HEAD "clusters:\n- name: c\n  cluster: {server: https://k}\n"
          "contexts:\n- name: x\n  context: {cluster: c}\n",
     .err = M3B_ERR_CONFIG, .errstr_has = "no current-context"},
    {"current-context names a missing context",
     HEAD "clusters:\n- name: c\n  cluster: {server: https://k}\n"
          "contexts:\n- name: x\n  context: {cluster: c}\n"
          "current-context: nope\n",
     .err = M3B_ERR_CONFIG, .errstr_has = "context 'nope' not found"},
    {"missing cluster",
     HEAD "contexts:\n- name: x\n  context: {cluster: c}\n"
          "current-context: x\n",
     .err = M3B_ERR_CONFIG, .errstr_has = "cluster 'c' not found"},
    {"missing user",
     HEAD "clusters:\n- name: c\n  cluster: {server: https://k}\n"
          "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
          "current-context: x\n",
     .err = M3B_ERR_CONFIG, .errstr_has = "user 'u' not found"},
    {"cluster without server",
     HEAD "clusters:\n- name: c\n  cluster: {insecure-skip-tls-verify: "
          "true}\n"
          "contexts:\n- name: x\n  context: {cluster: c}\n"
          "current-context: x\n",
     .err = M3B_ERR_CONFIG, .errstr_has = "has no server"},
    {"bad base64",
     HEAD "clusters:\n- name: c\n  cluster:\n    server: https://k\n"
          "    certificate-authority-data: 'not*base64!'\n"
          "contexts:\n- name: x\n  context: {cluster: c}\n"
          "current-context: x\n",
     .err = M3B_ERR_CONFIG,
     .errstr_has = "certificate-authority-data is not valid base64"},
    {"certificate without key",
     HEAD "clusters:\n- name: c\n  cluster: {server: https://k}\n"
          "users:\n- name: u\n  user:\n    client-certificate-data: " B64_CERT
          "\n"
          "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
          "current-context: x\n",
     .err = M3B_ERR_CONFIG, .errstr_has = "without a key"},
    {"exec plugin",
     HEAD "clusters:\n- name: c\n  cluster: {server: https://k}\n"
          "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
          "contexts:\n- name: x\n  context: {cluster: c, user: u}\n"
          "current-context: x\n",
     .err = M3B_ERR_UNSUPPORTED, .errstr_has = "exec or auth-provider"},
    {"missing file", NULL, .err = M3B_ERR_IO, .errstr_has = "cannot open"},
};

static void check_suffix(const char *value, const char *suffix) {
  size_t vn, sn;
  assert_non_null(value);
  vn = strlen(value);
  sn = strlen(suffix);
  assert_true(vn >= sn);
  assert_string_equal(value + vn - sn, suffix);
}

static void check_bytes(const uint8_t *data, size_t len, const char *want) {
  if (!want) {
    assert_null(data);
    return;
  }
  assert_non_null(data);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(data, want, len);
}

static void check_str(const char *value, const char *want) {
  if (!want)
    assert_null(value);
  else
    assert_string_equal(value, want);
}

static void test_kubeconfig_table(void **state) {
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(kc_cases) / sizeof(kc_cases[0]); i++) {
    const struct kc_case *c = &kc_cases[i];
    struct m3b_kube_config cfg;
    char path[512], errstr[512] = "";
    m3b_err_t err;

    print_message("case: %s\n", c->name);
    snprintf(path, sizeof(path), "%s/kc%zu.yaml", tmpdir, i);
    if (c->yaml) {
      char name[32];
      snprintf(name, sizeof(name), "kc%zu.yaml", i);
      write_text(name, c->yaml);
    }
    m3b_kube_config_init(&cfg);
    err = m3b_kube_config_from_kubeconfig(&cfg, path, c->context, errstr,
                                          sizeof(errstr));
    if (err != c->err)
      fail_msg("%s: got %s (%s), want %s", c->name, m3b_err_name(err), errstr,
               m3b_err_name(c->err));
    if (err) {
      assert_non_null(strstr(errstr, c->errstr_has));
      assert_null(cfg.server);
      assert_null(strstr(errstr, "s3cr3t"));
      m3b_kube_config_cleanup(&cfg);
      continue;
    }
    assert_string_equal(cfg.server, c->server);
    if (c->ca_file_suffix)
      check_suffix(cfg.ca_file, c->ca_file_suffix);
    else
      assert_null(cfg.ca_file);
    if (c->ca_file_suffix)
      assert_true(cfg.ca_file[0] == '/');
    check_bytes(cfg.ca_data, cfg.ca_data_len, c->ca_data);
    assert_int_equal(cfg.insecure_skip_verify, c->insecure);
    check_str(cfg.token, c->token);
    if (c->token_file_suffix)
      check_suffix(cfg.token_file, c->token_file_suffix);
    else
      assert_null(cfg.token_file);
    check_bytes(cfg.client_cert_data, cfg.client_cert_data_len, c->cert_data);
    check_bytes(cfg.client_key_data, cfg.client_key_data_len, c->key_data);
    if (c->cert_file_suffix) {
      check_suffix(cfg.client_cert_file, c->cert_file_suffix);
      assert_non_null(cfg.client_key_file);
    }
    check_str(cfg.ns, c->ns);
    m3b_kube_config_cleanup(&cfg);
    assert_null(cfg.server);
  }
}

static void test_in_cluster(void **state) {
  struct m3b_kube_config cfg;
  char errstr[256] = "", sa[300];
  (void)state;

  snprintf(sa, sizeof(sa), "%s/sa", tmpdir);
  assert_int_equal(mkdir(sa, 0700), 0);
  write_text("sa/token", "tok\n");
  write_text("sa/ca.crt", "ca\n");
  write_text("sa/namespace", "shop\n");

  m3b_kube_config_init(&cfg);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  assert_int_equal(m3b_kube_config_in_cluster(&cfg, sa, errstr, sizeof(errstr)),
                   M3B_ERR_CONFIG);
  assert_non_null(strstr(errstr, "KUBERNETES_SERVICE_HOST"));

  setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  assert_int_equal(m3b_kube_config_in_cluster(&cfg, sa, errstr, sizeof(errstr)),
                   M3B_OK);
  assert_string_equal(cfg.server, "https://10.0.0.1:443");
  check_suffix(cfg.token_file, "/sa/token");
  check_suffix(cfg.ca_file, "/sa/ca.crt");
  assert_string_equal(cfg.ns, "shop");
  assert_null(cfg.token);

  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  assert_int_equal(m3b_kube_config_in_cluster(&cfg, sa, errstr, sizeof(errstr)),
                   M3B_OK);
  assert_string_equal(cfg.server, "https://[fd00::1]:443");
  m3b_kube_config_cleanup(&cfg);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
}

static void test_status_translation(void **state) {
  static const struct {
    long status;
    m3b_err_t err;
  } cases[] = {
      {200, M3B_OK},
      {201, M3B_OK},
      {400, M3B_ERR_KUBE_INVALID},
      {401, M3B_ERR_KUBE_UNAUTHORIZED},
      {403, M3B_ERR_KUBE_FORBIDDEN},
      {404, M3B_ERR_KUBE_NOT_FOUND},
      {409, M3B_ERR_KUBE_CONFLICT},
      {410, M3B_ERR_KUBE_GONE},
      {422, M3B_ERR_KUBE_INVALID},
      {429, M3B_ERR_KUBE_THROTTLED},
      {500, M3B_ERR_KUBE_SERVER},
      {503, M3B_ERR_KUBE_SERVER},
      {302, M3B_ERR_KUBE_HTTP},
      {418, M3B_ERR_KUBE_HTTP},
      {0, M3B_ERR_KUBE_HTTP},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
    assert_int_equal(m3b_kube_err_from_status(cases[i].status, NULL),
                     cases[i].err);
  assert_false(m3b_err_is_retriable(M3B_ERR_KUBE_GONE));
  /* SSA's typed-patch failure is the client's fault despite its 500 */
  assert_int_equal(
      m3b_kube_err_from_status(500, "failed to create typed patch object "
                                    "(m3-it/x; /v1, Kind=ConfigMap): .data"),
      M3B_ERR_KUBE_INVALID);
  assert_int_equal(m3b_kube_err_from_status(500, "etcdserver: timeout"),
                   M3B_ERR_KUBE_SERVER);
}

/* Retry-After values as an apiserver or a proxy in front of it may send
 * them, against a fixed "now": Sun, 06 Nov 1994 08:49:37 GMT. */
static void test_retry_after(void **state) {
  static const int64_t now = 784111777;
  static const struct {
    const char *value;
    m3b_err_t err;
    long seconds;
  } cases[] = {
      {"1", M3B_OK, 1},
      {"0", M3B_OK, 0},
      {"120", M3B_OK, 120},
      {" 7 \r\n", M3B_OK, 7}, /* as the header callback hands it over */
      {"\t30", M3B_OK, 30},
      {"0005", M3B_OK, 5},
      {"86400", M3B_OK, 86400},
      {"86401", M3B_OK, M3B_KUBE_RETRY_AFTER_MAX_S},
      {"99999999999999999999999999", M3B_OK, M3B_KUBE_RETRY_AFTER_MAX_S},
      /* HTTP-date: IMF-fixdate, RFC 850, asctime */
      {"Sun, 06 Nov 1994 08:50:07 GMT", M3B_OK, 30},
      {"Sunday, 06-Nov-94 08:51:37 GMT", M3B_OK, 120},
      {"Sun Nov  6 08:49:47 1994", M3B_OK, 10},
      {"Sun, 06 Nov 1994 08:49:37 GMT", M3B_OK, 0}, /* now */
      {"Sat, 05 Nov 1994 08:49:37 GMT", M3B_OK, 0}, /* past */
      {"Sun, 13 Nov 1994 08:49:37 GMT", M3B_OK, M3B_KUBE_RETRY_AFTER_MAX_S},
      {"", M3B_ERR_INVALID_ARG, -1},
      {"   ", M3B_ERR_INVALID_ARG, -1},
      {"-5", M3B_ERR_INVALID_ARG, -1},
      {"+5", M3B_ERR_INVALID_ARG, -1},
      {"1.5", M3B_ERR_INVALID_ARG, -1},
      {"5 5", M3B_ERR_INVALID_ARG, -1},
      {"soon", M3B_ERR_INVALID_ARG, -1},
      {"Sun, 99 Foo 1994 99:99:99 GMT", M3B_ERR_INVALID_ARG, -1},
  };
  char long_value[300];
  long seconds = 0;
  size_t i;
  (void)state;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    seconds = -2;
    assert_int_equal(m3b_kube_parse_retry_after(cases[i].value, now, &seconds),
                     cases[i].err);
    if (seconds != cases[i].seconds)
      fail_msg("Retry-After \"%s\": %ld seconds, want %ld", cases[i].value,
               seconds, cases[i].seconds);
  }
  assert_int_equal(m3b_kube_parse_retry_after(NULL, now, &seconds),
                   M3B_ERR_INVALID_ARG);
  assert_int_equal(seconds, -1);
  memset(long_value, '1', sizeof(long_value) - 1);
  long_value[sizeof(long_value) - 1] = '\0';
  assert_int_equal(m3b_kube_parse_retry_after(long_value, now, &seconds),
                   M3B_ERR_INVALID_ARG);
}

static void test_new_refuses_bad_config(void **state) {
  struct m3b_kube_config cfg;
  char errstr[256] = "";
  m3b_kube_t *kube;
  (void)state;

  m3b_kube_config_init(&cfg);
  assert_null(m3b_kube_new(&cfg, NULL, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "no API server"));

  cfg.server = strdup("ftp://k");
  assert_null(m3b_kube_new(&cfg, NULL, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "not an http(s) URL"));

  free(cfg.server);
  cfg.server = strdup("https://127.0.0.1:1");
  cfg.token_file = strdup("/nonexistent/m3b/token");
  assert_null(m3b_kube_new(&cfg, NULL, errstr, sizeof(errstr)));
  assert_non_null(strstr(errstr, "/nonexistent/m3b/token"));

  free(cfg.token_file);
  cfg.token_file = NULL;
  cfg.token = strdup("tok");
  kube = m3b_kube_new(&cfg, NULL, errstr, sizeof(errstr));
  assert_non_null(kube);
  m3b_kube_config_cleanup(&cfg); /* the client keeps its own copy */
  m3b_kube_destroy(kube);
  m3b_kube_destroy(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_kubeconfig_table),
      cmocka_unit_test(test_in_cluster),
      cmocka_unit_test(test_status_translation),
      cmocka_unit_test(test_retry_after),
      cmocka_unit_test(test_new_refuses_bad_config),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
