/*
 * kube_discovery.c - from (apiVersion, kind) to a resource path, by API
 * discovery (GET /api/v1 or /apis/<group>/<version>).
 *
 * Each group-version's resource list is fetched once and cached for the
 * client's lifetime. A kind missing from the cached list triggers one
 * re-fetch of that group-version, so CRDs installed after the first lookup
 * are found; a kind still missing is M3B_ERR_KUBE_NOT_FOUND.
 */
#include "kube_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DISCOVERY_MAX (4u << 20)

void m3b__kube_discovery_free(m3b_kube_t *kube) {
  struct kube_gv *gv = kube->discovery;
  while (gv) {
    struct kube_gv *next = gv->next;
    free(gv->group_version);
    json_decref(gv->resources);
    free(gv);
    gv = next;
  }
  kube->discovery = NULL;
}

m3b_err_t m3b__kube_append_escaped(struct m3b_buf *out, const char *s) {
  char *esc = curl_easy_escape(NULL, s, 0);
  m3b_err_t err;
  if (!esc)
    return M3B_ERR_NOMEM;
  err = m3b_buf_append_str(out, esc);
  curl_free(esc);
  return err;
}

/* "v1" → "/api/v1", "apps/v1" → "/apis/apps/v1". */
static m3b_err_t append_gv_root(struct m3b_buf *out, const char *api_version) {
  if (strchr(api_version, '/'))
    return m3b_buf_appendf(out, "/apis/%s", api_version);
  return m3b_buf_appendf(out, "/api/%s", api_version);
}

static int valid_api_version(const char *api_version) {
  const char *slash = strchr(api_version, '/');
  const char *p;
  if (!*api_version ||
      (slash && (slash == api_version || !slash[1] || strchr(slash + 1, '/'))))
    return 0;
  for (p = api_version; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || *p == '.' || *p == '-' || *p == '/'))
      return 0;
  return 1;
}

/* Looks kind up in a cached group-version: 1 found, 0 not (in the cache or
 * in the list). Caller holds discovery_lock. */
static int lookup_locked(m3b_kube_t *kube, const char *api_version,
                         const char *kind, char *resource_out,
                         size_t resource_size, int *namespaced_out) {
  struct kube_gv *gv;
  size_t i;
  for (gv = kube->discovery; gv; gv = gv->next)
    if (strcmp(gv->group_version, api_version) == 0)
      break;
  if (!gv)
    return 0;
  for (i = 0; i < json_array_size(gv->resources); i++) {
    json_t *res = json_array_get(gv->resources, i);
    const char *name = json_string_value(json_object_get(res, "name"));
    const char *res_kind = json_string_value(json_object_get(res, "kind"));
    /* "deployments/status" and the like are subresources */
    if (!name || !res_kind || strchr(name, '/') || strcmp(res_kind, kind) != 0)
      continue;
    snprintf(resource_out, resource_size, "%s", name);
    *namespaced_out = json_is_true(json_object_get(res, "namespaced"));
    return 1;
  }
  return 0;
}

static m3b_err_t fetch_gv(m3b_kube_t *kube, const char *api_version,
                          struct m3b_kube_result *result) {
  struct m3b_buf path, body;
  struct kube_request req;
  char what[300];
  json_t *doc = NULL, *resources;
  struct kube_gv *gv = NULL, **link;
  m3b_err_t err;

  m3b_buf_init(&path, 1024);
  m3b_buf_init(&body, DISCOVERY_MAX);
  err = append_gv_root(&path, api_version);
  if (err)
    goto out;
  memset(&req, 0, sizeof(req));
  req.method = "GET";
  req.path_query = (const char *)path.data;
  req.response = &body;
  snprintf(what, sizeof(what), "discovery of %s", api_version);
  err = m3b__kube_perform(kube, &req, what, result);
  if (err == M3B_ERR_KUBE_NOT_FOUND)
    m3b__kube_result_set(result, 404,
                         "API group-version %s is not served by this "
                         "cluster (is its CRD installed?)",
                         api_version);
  if (err)
    goto out;
  doc = json_loadb((const char *)body.data, body.len, 0, NULL);
  resources = json_object_get(doc, "resources");
  if (!json_is_array(resources)) {
    m3b__kube_result_set(result, 200, "%s: no resource list in the answer",
                         what);
    err = M3B_ERR_KUBE_HTTP;
    goto out;
  }
  gv = calloc(1, sizeof(*gv));
  if (!gv || !(gv->group_version = strdup(api_version))) {
    free(gv);
    gv = NULL;
    err = M3B_ERR_NOMEM;
    goto out;
  }
  gv->resources = json_incref(resources);
  pthread_mutex_lock(&kube->discovery_lock);
  /* replace the stale entry, if any */
  for (link = &kube->discovery; *link; link = &(*link)->next) {
    if (strcmp((*link)->group_version, api_version) == 0) {
      struct kube_gv *old = *link;
      *link = old->next;
      free(old->group_version);
      json_decref(old->resources);
      free(old);
      break;
    }
  }
  gv->next = kube->discovery;
  kube->discovery = gv;
  pthread_mutex_unlock(&kube->discovery_lock);
out:
  json_decref(doc);
  m3b_buf_cleanup(&path);
  m3b_buf_cleanup(&body);
  return err;
}

m3b_err_t m3b_kube_resolve(m3b_kube_t *kube, const char *api_version,
                           const char *kind, char *resource_out,
                           size_t resource_size, int *namespaced_out,
                           struct m3b_kube_result *result) {
  int found;
  m3b_err_t err;

  if (!kube || !api_version || !kind || !*kind || !resource_out ||
      !resource_size || !namespaced_out)
    return M3B_ERR_INVALID_ARG;
  if (!valid_api_version(api_version)) {
    m3b__kube_result_set(result, 0, "malformed apiVersion '%s'", api_version);
    return M3B_ERR_INVALID_ARG;
  }
  if (result)
    m3b__kube_result_set(result, 0, "%s", "");
  pthread_mutex_lock(&kube->discovery_lock);
  found = lookup_locked(kube, api_version, kind, resource_out, resource_size,
                        namespaced_out);
  pthread_mutex_unlock(&kube->discovery_lock);
  if (found)
    return M3B_OK;
  /* not cached yet, or a miss in the cache: (re)fetch once */
  err = fetch_gv(kube, api_version, result);
  if (err)
    return err;
  pthread_mutex_lock(&kube->discovery_lock);
  found = lookup_locked(kube, api_version, kind, resource_out, resource_size,
                        namespaced_out);
  pthread_mutex_unlock(&kube->discovery_lock);
  if (found)
    return M3B_OK;
  m3b__kube_result_set(result, 404,
                       "kind %s is not served in %s (unknown kind, or its "
                       "CRD is not installed)",
                       kind, api_version);
  return M3B_ERR_KUBE_NOT_FOUND;
}

m3b_err_t m3b__kube_path(m3b_kube_t *kube, const char *api_version,
                         const char *kind, const char *ns, const char *name,
                         struct m3b_buf *out, struct m3b_kube_result *result) {
  char resource[128];
  int namespaced = 0;
  m3b_err_t err;

  err = m3b_kube_resolve(kube, api_version, kind, resource, sizeof(resource),
                         &namespaced, result);
  if (err)
    return err;
  if (name && !*name) {
    m3b__kube_result_set(result, 0, "%s %s: empty name", api_version, kind);
    return M3B_ERR_INVALID_ARG;
  }
  err = append_gv_root(out, api_version);
  if (!err && namespaced && ns && *ns) {
    err = m3b_buf_append_str(out, "/namespaces/");
    if (!err)
      err = m3b__kube_append_escaped(out, ns);
  } else if (!err && namespaced && name) {
    m3b__kube_result_set(result, 0,
                         "%s %s/%s: namespaced kind without a namespace",
                         api_version, kind, name);
    return M3B_ERR_INVALID_ARG;
  }
  if (!err)
    err = m3b_buf_appendf(out, "/%s", resource);
  if (!err && name) {
    err = m3b_buf_append_str(out, "/");
    if (!err)
      err = m3b__kube_append_escaped(out, name);
  }
  return err;
}
