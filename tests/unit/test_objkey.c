/* test_objkey.c - object keys: valid keys round-trip, every rule has its
 * own message, keys come out of manifests, and manifests that cannot give
 * one say why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/objkey.h>

static void test_valid_keys(void **state) {
  static const char *const keys[] = {
      "apps/v1/Deployment/shop/web",
      "/v1/Namespace//shop",
      "/v1/ConfigMap/shop/app.config-1",
      "gateway.networking.k8s.io/v1beta1/HTTPRoute/shop/web",
      "apiextensions.k8s.io/v1/CustomResourceDefinition//"
      "gateways.gateway.networking.k8s.io",
      "rbac.authorization.k8s.io/v1/ClusterRole//system:aggregate-to-admin",
      "batch/v2alpha1/CronJob/a/b",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
    struct m3b_objkey key;
    char text[M3B_OBJKEY_MAX + 1];
    char errstr[256] = "";
    if (m3b_objkey_parse(keys[i], strlen(keys[i]), &key, errstr,
                         sizeof(errstr)))
      fail_msg("%s: %s", keys[i], errstr);
    assert_int_equal(m3b_objkey_format(&key, text, sizeof(text), NULL, 0),
                     M3B_OK);
    assert_string_equal(text, keys[i]);
  }
}

static void test_invalid_keys(void **state) {
  static const struct {
    const char *key;
    const char *message; /* a substring of the detail */
  } cases[] = {
      {"apps/v1/Deployment/web", "4 parts"},
      {"apps/v1/Deployment/shop/web/x", "6 parts"},
      {"", "1 parts"},
      {"Apps/v1/Deployment/shop/web", "group \"Apps\" is not a DNS-1123"},
      {"apps./v1/Deployment/shop/web", "group \"apps.\""},
      {"apps//Deployment/shop/web", "version is empty"},
      {"apps/1/Deployment/shop/web", "version \"1\" is not"},
      {"apps/v01/Deployment/shop/web", "version \"v01\""},
      {"apps/v1gamma1/Deployment/shop/web", "version \"v1gamma1\""},
      {"apps/v1beta/Deployment/shop/web", "version \"v1beta\""},
      {"apps/v1//shop/web", "kind is empty"},
      {"apps/v1/deployment/shop/web", "kind \"deployment\" is not a CamelCase"},
      {"apps/v1/Deploy-ment/shop/web", "kind \"Deploy-ment\""},
      {"apps/v1/Deployment/Shop/web", "namespace \"Shop\" is not a DNS-1123 "
                                      "label"},
      {"apps/v1/Deployment/sh.op/web", "namespace \"sh.op\""},
      {"apps/v1/Deployment/shop/", "name is empty"},
      {"apps/v1/Deployment/shop/Web", "name \"Web\" is not a DNS-1123 "
                                      "subdomain"},
      {"apps/v1/Deployment/shop/web_1", "name \"web_1\""},
      {"apps/v1/Deployment/shop/-web", "name \"-web\""},
      {"/v1/Namespace/x/shop", "is set on a Namespace"},
      {"/v1/Namespace//a.b", "of a Namespace is not a DNS-1123 label"},
      {"rbac.authorization.k8s.io/v1/Role/a/..", "not a valid RBAC name"},
      {"rbac.authorization.k8s.io/v1/Role/a/x%y", "not a valid RBAC name"},
      {"/v1/ConfigMap/shop/a\tb", "name \"a?b\""},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct m3b_objkey key;
    char errstr[256] = "";
    m3b_err_t err = m3b_objkey_parse(cases[i].key, strlen(cases[i].key), &key,
                                     errstr, sizeof(errstr));
    if (err != M3B_ERR_BAD_KEY || !strstr(errstr, cases[i].message))
      fail_msg("%s: %s (%s)", cases[i].key, m3b_err_name(err), errstr);
    assert_string_equal(key.kind, ""); /* cleared on failure */
  }
}

static void test_lengths(void **state) {
  char text[M3B_OBJKEY_MAX + 64];
  char label[70];
  struct m3b_objkey key;
  char errstr[256] = "";
  (void)state;

  memset(label, 'a', 64);
  label[64] = 0;
  snprintf(text, sizeof(text), "/v1/ConfigMap/%s/x", label);
  assert_int_equal(
      m3b_objkey_parse(text, strlen(text), &key, errstr, sizeof(errstr)),
      M3B_ERR_BAD_KEY);
  assert_non_null(strstr(errstr, "namespace is longer than 63"));
  label[63] = 0;
  snprintf(text, sizeof(text), "/v1/ConfigMap/%s/x", label);
  assert_int_equal(m3b_objkey_parse(text, strlen(text), &key, NULL, 0), M3B_OK);
  /* embedded NUL */
  assert_int_equal(
      m3b_objkey_parse("/v1/A/b/c\0d", 11, &key, errstr, sizeof(errstr)),
      M3B_ERR_BAD_KEY);
  assert_non_null(strstr(errstr, "NUL"));
  /* too long overall */
  memset(text, 'a', sizeof(text) - 1);
  text[sizeof(text) - 1] = 0;
  assert_int_equal(
      m3b_objkey_parse(text, strlen(text), &key, errstr, sizeof(errstr)),
      M3B_ERR_BAD_KEY);
  /* format needs room */
  assert_int_equal(
      m3b_objkey_parse("apps/v1/Deployment/shop/web", 27, &key, NULL, 0),
      M3B_OK);
  assert_int_equal(m3b_objkey_format(&key, text, 10, NULL, 0), M3B_ERR_LIMIT);
}

static void test_from_manifest(void **state) {
  static const struct {
    const char *manifest;
    const char *key; /* NULL: must fail with message */
    const char *message;
  } cases[] = {
      {"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
       "\"name\":\"web\",\"namespace\":\"shop\"},\"spec\":{}}",
       "apps/v1/Deployment/shop/web", NULL},
      {"{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":"
       "\"shop\"}}",
       "/v1/Namespace//shop", NULL},
      {"not json", NULL, "not a JSON object"},
      {"[1]", NULL, "not a JSON object"},
      {"{\"kind\":\"A\",\"metadata\":{\"name\":\"a\"}}", NULL, "no apiVersion"},
      {"{\"apiVersion\":\"v1\",\"metadata\":{\"name\":\"a\"}}", NULL,
       "no kind"},
      {"{\"apiVersion\":\"v1\",\"kind\":\"A\"}", NULL, "no metadata"},
      {"{\"apiVersion\":\"v1\",\"kind\":\"A\",\"metadata\":{\"generateName\":"
       "\"a-\"}}",
       NULL, "no metadata.name"},
      {"{\"apiVersion\":\"v1\",\"kind\":\"A\",\"metadata\":{\"name\":7}}", NULL,
       "metadata.name is not a string"},
      {"{\"apiVersion\":\"a/b/v1\",\"kind\":\"A\",\"metadata\":{\"name\":"
       "\"a\"}}",
       NULL, "more than one '/'"},
      {"{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":"
       "\"a/b\",\"namespace\":\"x\"}}",
       NULL, "manifest: name \"a/b\""},
      {"{\"apiVersion\":\"v1\",\"kind\":\"A\",\"kind\":\"B\",\"metadata\":{"
       "\"name\":\"a\"}}",
       NULL, "duplicate"},
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct m3b_objkey key;
    char text[M3B_OBJKEY_MAX + 1];
    char errstr[256] = "";
    m3b_err_t err = m3b_objkey_from_manifest((const uint8_t *)cases[i].manifest,
                                             strlen(cases[i].manifest), &key,
                                             errstr, sizeof(errstr));
    if (cases[i].key) {
      if (err)
        fail_msg("case %zu: %s", i, errstr);
      assert_int_equal(m3b_objkey_format(&key, text, sizeof(text), NULL, 0),
                       M3B_OK);
      assert_string_equal(text, cases[i].key);
    } else if (err != M3B_ERR_BAD_MANIFEST ||
               !strstr(errstr, cases[i].message)) {
      fail_msg("case %zu: %s (%s)", i, m3b_err_name(err), errstr);
    }
  }
}

static void test_sha256(void **state) {
  static const uint8_t abc[32] = {
      0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  uint8_t digest[32];
  (void)state;
  assert_int_equal(m3b_manifest_sha256("abc", 3, digest), M3B_OK);
  assert_memory_equal(digest, abc, 32);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_keys), cmocka_unit_test(test_invalid_keys),
      cmocka_unit_test(test_lengths),    cmocka_unit_test(test_from_manifest),
      cmocka_unit_test(test_sha256),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
