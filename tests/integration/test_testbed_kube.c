/*
 * test_testbed_kube.c - the test bed's kube-apiserver is real and the
 * listener identity is what the design says, checked with libcurl:
 *
 *   - as the listener's service account, a server-side apply (PATCH with
 *     application/apply-patch+yaml, fieldManager=m3bridge, force=true) of a
 *     ConfigMap in a bound namespace succeeds, reads back with the applied
 *     data, label and field manager, and re-applying it changes nothing
 *     (same resourceVersion);
 *   - the same identity is refused (403 Forbidden) in a namespace it is not
 *     bound to and for a cluster-scoped Namespace;
 *   - no token at all is refused (401);
 *   - the Gateway API CRDs are installed and served.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include <m3b/buf.h>

#include "testbed_env.h"

#define BODY_MAX (4u << 20)

struct response {
  long status;
  json_t *json; /* parsed body, or NULL */
};

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct m3b_buf *body = userdata;
  if (m3b_buf_append(body, ptr, size * nmemb) != M3B_OK)
    return 0; /* over the limit: abort the transfer */
  return size * nmemb;
}

/* One request as the bearer of token (NULL: anonymous). */
static struct response request(const char *method, const char *path,
                               const char *token, const char *content_type,
                               const char *payload) {
  char url[1024], auth[4096], ctype[256];
  struct curl_slist *headers = NULL;
  struct response resp = {0, NULL};
  struct m3b_buf body;
  json_error_t jerr;
  CURLcode rc;
  CURL *curl = curl_easy_init();

  assert_non_null(curl);
  m3b_buf_init(&body, BODY_MAX);
  snprintf(url, sizeof(url), "%s%s", tb_require("M3B_TB_KUBE_SERVER"), path);
  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(curl, CURLOPT_CAINFO, tb_require("M3B_TB_KUBE_CA"));
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  headers = curl_slist_append(headers, "Accept: application/json");
  if (token) {
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    headers = curl_slist_append(headers, auth);
  }
  if (content_type) {
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", content_type);
    headers = curl_slist_append(headers, ctype);
  }
  if (payload)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  rc = curl_easy_perform(curl);
  if (rc != CURLE_OK)
    fail_msg("%s %s: %s. Is the test bed up? (tests/testbed/testbed status)",
             method, url, curl_easy_strerror(rc));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  if (body.len)
    resp.json = json_loadb((const char *)body.data, body.len, 0, &jerr);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  m3b_buf_cleanup(&body);
  return resp;
}

static const char *listener_token(void) {
  return tb_read_file(tb_require("M3B_TB_KUBE_LISTENER_TOKEN_FILE"));
}

/* The string at a dotted path ("metadata.resourceVersion"), or NULL. */
static const char *str_at(json_t *root, const char *path) {
  json_t *node = root;
  while (node && *path) {
    char part[128];
    size_t n = strcspn(path, ".");
    assert_true(n < sizeof(part));
    memcpy(part, path, n);
    part[n] = 0;
    node = json_object_get(node, part);
    path += n + (path[n] == '.');
  }
  return json_string_value(node);
}

static int setup(void **state) {
  const char *server;
  (void)state;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  server = tb_require("M3B_TB_KUBE_SERVER");
  tb_require_reachable("kube-apiserver", server + strlen("https://"), 5000);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  curl_global_cleanup();
  return 0;
}

static const char *first_bound_namespace(void) {
  static char ns[64];
  const char *all = tb_require("M3B_TB_KUBE_LISTENER_NAMESPACES");
  size_t n = strcspn(all, " ");
  assert_true(n > 0 && n < sizeof(ns));
  memcpy(ns, all, n);
  ns[n] = 0;
  return ns;
}

static char *configmap(const char *ns, const char *name, const char *value) {
  json_t *cm = json_pack(
      "{s:s, s:s, s:{s:s, s:s, s:{s:s}}, s:{s:s}}", "apiVersion", "v1", "kind",
      "ConfigMap", "metadata", "name", name, "namespace", ns, "labels",
      "app.kubernetes.io/managed-by", "m3bridge", "data", "greeting", value);
  char *text = json_dumps(cm, JSON_COMPACT);
  json_decref(cm);
  return text;
}

static void test_listener_server_side_apply(void **state) {
  const char *ns = first_bound_namespace();
  const char *token = listener_token();
  char path[512], value[64];
  char rv1[64];
  char *doc;
  struct response resp;
  json_t *managers;
  size_t i;
  int found_manager = 0;
  (void)state;

  snprintf(value, sizeof(value), "hello at %ld", (long)time(NULL));
  snprintf(path, sizeof(path),
           "/api/v1/namespaces/%s/configmaps/m3-smoke"
           "?fieldManager=m3bridge&force=true",
           ns);
  doc = configmap(ns, "m3-smoke", value);
  resp = request("PATCH", path, token, "application/apply-patch+yaml", doc);
  if (resp.status != 200 && resp.status != 201)
    fail_msg("server-side apply in %s: HTTP %ld: %s", ns, resp.status,
             resp.json ? str_at(resp.json, "message") : "(no body)");
  snprintf(rv1, sizeof(rv1), "%s",
           str_at(resp.json, "metadata.resourceVersion"));
  json_decref(resp.json);

  /* read it back */
  snprintf(path, sizeof(path), "/api/v1/namespaces/%s/configmaps/m3-smoke", ns);
  resp = request("GET", path, token, NULL, NULL);
  assert_int_equal(resp.status, 200);
  assert_string_equal(str_at(resp.json, "data.greeting"), value);
  assert_string_equal(
      json_string_value(json_object_get(
          json_object_get(json_object_get(resp.json, "metadata"), "labels"),
          "app.kubernetes.io/managed-by")),
      "m3bridge");
  managers =
      json_object_get(json_object_get(resp.json, "metadata"), "managedFields");
  for (i = 0; i < json_array_size(managers); i++) {
    json_t *mf = json_array_get(managers, i);
    if (strcmp(json_string_value(json_object_get(mf, "manager")), "m3bridge") ==
            0 &&
        strcmp(json_string_value(json_object_get(mf, "operation")), "Apply") ==
            0)
      found_manager = 1;
  }
  assert_true(found_manager);
  assert_string_equal(str_at(resp.json, "metadata.resourceVersion"), rv1);
  json_decref(resp.json);

  /* the same apply again is a no-op: the resourceVersion does not move */
  snprintf(path, sizeof(path),
           "/api/v1/namespaces/%s/configmaps/m3-smoke"
           "?fieldManager=m3bridge&force=true",
           ns);
  resp = request("PATCH", path, token, "application/apply-patch+yaml", doc);
  assert_int_equal(resp.status, 200);
  assert_string_equal(str_at(resp.json, "metadata.resourceVersion"), rv1);
  json_decref(resp.json);
  free(doc);
}

static void test_listener_forbidden_outside_its_namespaces(void **state) {
  static const char *const namespaces[] = {"default", "kube-system"};
  const char *token = listener_token();
  struct response resp;
  size_t i;
  (void)state;

  for (i = 0; i < sizeof(namespaces) / sizeof(namespaces[0]); i++) {
    char path[512];
    char *doc = configmap(namespaces[i], "m3-smoke", "should not exist");
    snprintf(path, sizeof(path),
             "/api/v1/namespaces/%s/configmaps/m3-smoke"
             "?fieldManager=m3bridge&force=true",
             namespaces[i]);
    resp = request("PATCH", path, token, "application/apply-patch+yaml", doc);
    print_message("apply in %s: HTTP %ld %s\n", namespaces[i], resp.status,
                  resp.json ? str_at(resp.json, "reason") : "");
    assert_int_equal(resp.status, 403);
    assert_string_equal(str_at(resp.json, "reason"), "Forbidden");
    json_decref(resp.json);
    free(doc);
  }

  /* cluster-scoped objects are out of reach too */
  resp =
      request("PATCH",
              "/api/v1/namespaces/m3-intruder?fieldManager=m3bridge&force=true",
              token, "application/apply-patch+yaml",
              "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
              "\"metadata\":{\"name\":\"m3-intruder\"}}");
  assert_int_equal(resp.status, 403);
  json_decref(resp.json);
}

static void test_no_token_is_unauthorized(void **state) {
  struct response resp;
  (void)state;
  resp =
      request("GET", "/api/v1/namespaces/default/configmaps", NULL, NULL, NULL);
  /* anonymous requests are either unauthenticated (401) or, with anonymous
   * auth on, system:anonymous, which RBAC forbids (403) */
  print_message("anonymous list: HTTP %ld\n", resp.status);
  assert_true(resp.status == 401 || resp.status == 403);
  json_decref(resp.json);
}

static void test_gateway_api_crds_served(void **state) {
  struct response resp;
  const char *admin = tb_read_file(tb_require("M3B_TB_KUBE_ADMIN_TOKEN_FILE"));
  (void)state;
  resp =
      request("GET", "/apis/gateway.networking.k8s.io/v1", admin, NULL, NULL);
  assert_int_equal(resp.status, 200);
  {
    json_t *resources = json_object_get(resp.json, "resources");
    size_t i;
    int gateways = 0, routes = 0;
    for (i = 0; i < json_array_size(resources); i++) {
      const char *name = json_string_value(
          json_object_get(json_array_get(resources, i), "name"));
      gateways += name && strcmp(name, "gateways") == 0;
      routes += name && strcmp(name, "httproutes") == 0;
    }
    assert_int_equal(gateways, 1);
    assert_int_equal(routes, 1);
  }
  json_decref(resp.json);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_listener_server_side_apply),
      cmocka_unit_test(test_listener_forbidden_outside_its_namespaces),
      cmocka_unit_test(test_no_token_is_unauthorized),
      cmocka_unit_test(test_gateway_api_crds_served),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
