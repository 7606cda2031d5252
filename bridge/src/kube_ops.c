/*
 * kube_ops.c - the verbs of the Kubernetes client: server-side apply, get,
 * delete, paginated list and streaming watch, and the /readyz probe.
 *
 * Bodies that may carry secrets (apply requests, and every response, which
 * may be a Secret) are wiped before their memory is freed. Watch parses the
 * line-delimited JSON stream as it arrives, one bounded line at a time.
 */
#include "kube_internal.h"

#include <m3b/seal_manifest.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

static void request_init(struct kube_request *req, const char *method,
                         const char *path_query, struct m3b_buf *response) {
  memset(req, 0, sizeof(*req));
  req->method = method;
  req->path_query = path_query;
  req->response = response;
}

static void what_of(char *what, size_t what_size, const char *verb,
                    const struct m3b_kube_ref *ref) {
  snprintf(what, what_size, "%s %s %s %s%s%s", verb, ref->api_version,
           ref->kind, ref->ns ? ref->ns : "", ref->ns ? "/" : "",
           ref->name ? ref->name : "");
}

static int valid_ref(const struct m3b_kube_ref *ref, int need_name) {
  return ref && ref->api_version && ref->kind &&
         (!need_name || (ref->name && *ref->name));
}

/* Parses a 2xx JSON body into *object_out. */
static m3b_err_t parse_body(const struct m3b_buf *body, const char *what,
                            json_t **object_out,
                            struct m3b_kube_result *result) {
  json_error_t jerr;
  json_t *doc = json_loadb(body->data ? (const char *)body->data : "",
                           body->len, 0, &jerr);
  if (!doc) {
    m3b__kube_result_set(result, result ? result->http_status : 0,
                         "%s: response is not JSON (%s)", what, jerr.text);
    return M3B_ERR_KUBE_HTTP;
  }
  *object_out = doc;
  return M3B_OK;
}

static void fill_meta(const json_t *object, struct m3b_kube_meta *meta) {
  json_t *md = json_object_get(object, "metadata");
  const char *uid = json_string_value(json_object_get(md, "uid"));
  const char *rv = json_string_value(json_object_get(md, "resourceVersion"));
  memset(meta, 0, sizeof(*meta));
  snprintf(meta->uid, sizeof(meta->uid), "%s", uid ? uid : "");
  snprintf(meta->resource_version, sizeof(meta->resource_version), "%s",
           rv ? rv : "");
  meta->generation = json_integer_value(json_object_get(md, "generation"));
}

m3b_err_t m3b_kube_apply(m3b_kube_t *kube, const json_t *object,
                         const char *field_manager, json_t **object_out,
                         struct m3b_kube_meta *meta_out,
                         struct m3b_kube_result *result) {
  struct m3b_kube_ref ref;
  struct m3b_buf path, body;
  struct kube_request req;
  char what[512];
  char *doc = NULL;
  json_t *stored = NULL;
  json_t *md = json_object_get(object, "metadata");
  m3b_err_t err;

  if (object_out)
    *object_out = NULL;
  if (!kube || !object || !field_manager || !*field_manager)
    return M3B_ERR_INVALID_ARG;
  ref.api_version = json_string_value(json_object_get(object, "apiVersion"));
  ref.kind = json_string_value(json_object_get(object, "kind"));
  ref.name = json_string_value(json_object_get(md, "name"));
  ref.ns = json_string_value(json_object_get(md, "namespace"));
  if (!ref.ns)
    ref.ns = kube->cfg.ns;
  if (!valid_ref(&ref, 1)) {
    m3b__kube_result_set(result, 0,
                         "apply: object needs apiVersion, kind and "
                         "metadata.name");
    return M3B_ERR_INVALID_ARG;
  }
  what_of(what, sizeof(what), "apply", &ref);
  m3b_buf_init(&path, 4096);
  m3b_buf_init(&body, kube->cfg.max_response_bytes);
  err = m3b__kube_path(kube, ref.api_version, ref.kind, ref.ns, ref.name, &path,
                       result);
  if (err)
    goto out;
  err = m3b_buf_append_str(&path, "?fieldManager=");
  if (!err)
    err = m3b__kube_append_escaped(&path, field_manager);
  if (!err)
    err = m3b_buf_append_str(&path, "&force=true");
  if (err)
    goto out;
  /* JSON is YAML: the apply body needs no conversion */
  doc = json_dumps(object, JSON_COMPACT);
  if (!doc) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  request_init(&req, "PATCH", (const char *)path.data, &body);
  req.content_type = "application/apply-patch+yaml";
  req.body = doc;
  req.body_len = strlen(doc);
  err = m3b__kube_perform(kube, &req, what, result);
  if (err)
    goto out;
  err = parse_body(&body, what, &stored, result);
  if (err)
    goto out;
  if (meta_out)
    fill_meta(stored, meta_out);
  if (object_out) {
    *object_out = stored;
    stored = NULL;
  }
out:
  m3b_seal_manifest_wipe(stored); /* a Secret read back holds plaintext */
  json_decref(stored);
  if (doc) {
    OPENSSL_cleanse(doc, strlen(doc));
    free(doc);
  }
  m3b_buf_cleanup(&path);
  m3b_buf_cleanup_secret(&body);
  return err;
}

m3b_err_t m3b_kube_ready(m3b_kube_t *kube, struct m3b_kube_result *result) {
  struct m3b_buf body;
  struct kube_request req;
  m3b_err_t err;

  if (!kube)
    return M3B_ERR_INVALID_ARG;
  m3b_buf_init(&body, 64u << 10); /* "ok", or the list of failed checks */
  request_init(&req, "GET", "/readyz", &body);
  err = m3b__kube_perform(kube, &req, "readyz", result);
  m3b_buf_cleanup(&body);
  return err;
}

m3b_err_t m3b_kube_get(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                       json_t **object_out, struct m3b_kube_result *result) {
  struct m3b_buf path, body;
  struct kube_request req;
  char what[512];
  m3b_err_t err;

  if (object_out)
    *object_out = NULL;
  if (!kube || !valid_ref(ref, 1) || !object_out)
    return M3B_ERR_INVALID_ARG;
  what_of(what, sizeof(what), "get", ref);
  m3b_buf_init(&path, 4096);
  m3b_buf_init(&body, kube->cfg.max_response_bytes);
  err = m3b__kube_path(kube, ref->api_version, ref->kind, ref->ns, ref->name,
                       &path, result);
  if (err)
    goto out;
  request_init(&req, "GET", (const char *)path.data, &body);
  err = m3b__kube_perform(kube, &req, what, result);
  if (!err)
    err = parse_body(&body, what, object_out, result);
out:
  m3b_buf_cleanup(&path);
  m3b_buf_cleanup_secret(&body);
  return err;
}

m3b_err_t m3b_kube_delete(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                          const char *uid, const char *resource_version,
                          struct m3b_kube_result *result) {
  struct m3b_buf path, body;
  struct kube_request req;
  char what[512];
  char *doc = NULL;
  json_t *opts = NULL, *pre = NULL;
  m3b_err_t err;

  if (!kube || !valid_ref(ref, 1))
    return M3B_ERR_INVALID_ARG;
  what_of(what, sizeof(what), "delete", ref);
  m3b_buf_init(&path, 4096);
  m3b_buf_init(&body, kube->cfg.max_response_bytes);
  err = m3b__kube_path(kube, ref->api_version, ref->kind, ref->ns, ref->name,
                       &path, result);
  if (err)
    goto out;
  opts = json_pack("{s:s, s:s, s:s}", "apiVersion", "v1", "kind",
                   "DeleteOptions", "propagationPolicy", "Background");
  pre = json_object();
  if (!opts || !pre) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (uid && *uid)
    json_object_set_new(pre, "uid", json_string(uid));
  if (resource_version && *resource_version)
    json_object_set_new(pre, "resourceVersion", json_string(resource_version));
  if (json_object_size(pre))
    json_object_set(opts, "preconditions", pre);
  doc = json_dumps(opts, JSON_COMPACT);
  if (!doc) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  request_init(&req, "DELETE", (const char *)path.data, &body);
  req.content_type = "application/json";
  req.body = doc;
  req.body_len = strlen(doc);
  err = m3b__kube_perform(kube, &req, what, result);
out:
  free(doc);
  json_decref(pre);
  json_decref(opts);
  m3b_buf_cleanup(&path);
  m3b_buf_cleanup_secret(&body);
  return err;
}

/* Appends "?a=b&c=d" style parameters; value NULL or "" is skipped. */
static m3b_err_t add_param(struct m3b_buf *path, const char *key,
                           const char *value) {
  m3b_err_t err;
  if (!value || !*value)
    return M3B_OK;
  err = m3b_buf_appendf(
      path, "%c%s=", strchr((const char *)path->data, '?') ? '&' : '?', key);
  if (!err)
    err = m3b__kube_append_escaped(path, value);
  return err;
}

/* Metadata only (the apiserver's PartialObjectMetadataList), with plain
 * JSON as the fallback a server without it would answer. */
#define METADATA_LIST_ACCEPT                                                   \
  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1, "         \
  "application/json"

/* The same as protobuf first: the apiserver encodes it several times
 * faster than JSON (kube_proto.c). */
#define COMPACT_LIST_ACCEPT                                                    \
  "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;"          \
  "g=meta.k8s.io;v=v1, " METADATA_LIST_ACCEPT

static int is_protobuf(const char *content_type) {
  static const char pb[] = "application/vnd.kubernetes.protobuf";
  return strncmp(content_type, pb, sizeof(pb) - 1) == 0;
}

/* Decodes a protobuf PartialObjectMetadataList page into the shape of a
 * JSON list page: {"metadata": {resourceVersion, continue}, "items"}. */
static m3b_err_t compact_page(const struct m3b_buf *body, const char *what,
                              json_t **page_out,
                              struct m3b_kube_result *result) {
  struct m3b_kube_meta_list list;
  char why[256];
  json_t *page;
  m3b_err_t err =
      m3b_kube_meta_list_decode(body->data, body->len, &list, why, sizeof(why));
  if (err) {
    m3b__kube_result_set(result, result ? result->http_status : 0, "%s: %s",
                         what, why);
    return err;
  }
  page = json_pack("{s:{s:s, s:s}, s:O}", "metadata", "resourceVersion",
                   list.resource_version, "continue", list.continue_token,
                   "items", list.items);
  m3b_kube_meta_list_cleanup(&list);
  if (!page)
    return M3B_ERR_NOMEM;
  *page_out = page;
  return M3B_OK;
}

/* Wipes and releases a page's items: listed Secrets hold plaintext. */
static void release_items(json_t *items) {
  size_t i;
  for (i = 0; i < json_array_size(items); i++)
    m3b_seal_manifest_wipe(json_array_get(items, i));
  json_decref(items);
}

/* The same for a whole page not handed to the callback (NULL: no-op). */
static void release_page(json_t *page) {
  json_t *items = json_object_get(page, "items");
  if (json_is_array(items)) {
    json_incref(items);
    release_items(items);
  }
  json_decref(page);
}

m3b_err_t m3b_kube_list_pages(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                              const char *label_selector, unsigned page_limit,
                              unsigned flags, m3b_kube_page_cb cb, void *opaque,
                              char *resource_version_out,
                              size_t resource_version_size,
                              struct m3b_kube_result *result) {
  struct m3b_buf base, path, body;
  struct kube_request req;
  char what[512];
  char limit[32];
  char *cont = NULL;
  json_t *page = NULL;
  m3b_err_t err;
  struct m3b_kube_ref list_ref;

  if (!kube || !valid_ref(ref, 0) || !cb)
    return M3B_ERR_INVALID_ARG;
  list_ref = *ref;
  list_ref.name = NULL;
  what_of(what, sizeof(what), "list", &list_ref);
  snprintf(limit, sizeof(limit), "%u", page_limit ? page_limit : 500u);
  m3b_buf_init(&base, 4096);
  m3b_buf_init(&path, 8192);
  m3b_buf_init(&body, kube->cfg.max_response_bytes);
  err = m3b__kube_path(kube, ref->api_version, ref->kind, ref->ns, NULL, &base,
                       result);
  if (err)
    goto out;
  for (;;) {
    json_t *md, *page_items;
    const char *next, *rv;
    m3b_buf_reset(&path);
    err = m3b_buf_append(&path, base.data, base.len);
    if (!err)
      err = add_param(&path, "labelSelector", label_selector);
    if (!err)
      err = add_param(&path, "limit", limit);
    if (!err)
      err = add_param(&path, "continue", cont);
    if (err)
      goto out;
    request_init(&req, "GET", (const char *)path.data, &body);
    if (flags & M3B_KUBE_LIST_METADATA)
      req.accept = (flags & M3B_KUBE_LIST_COMPACT) ? COMPACT_LIST_ACCEPT
                                                   : METADATA_LIST_ACCEPT;
    err = m3b__kube_perform(kube, &req, what, result);
    if (!err && is_protobuf(req.response_type)) {
      err = compact_page(&body, what, &page, result);
    } else if (!err) {
      err = parse_body(&body, what, &page, result);
    }
    m3b_buf_cleanup_secret(&body);
    if (err)
      goto out;
    md = json_object_get(page, "metadata");
    rv = json_string_value(json_object_get(md, "resourceVersion"));
    if (rv && *rv && resource_version_out && resource_version_size)
      snprintf(resource_version_out, resource_version_size, "%s", rv);
    next = json_string_value(json_object_get(md, "continue"));
    free(cont);
    cont = NULL;
    if (next && *next) {
      cont = strdup(next);
      if (!cont)
        err = M3B_ERR_NOMEM;
    }
    page_items = json_object_get(page, "items");
    if (!err && json_is_array(page_items)) {
      json_incref(page_items);
      json_decref(page); /* only the items live on, one page at a time */
      page = NULL;
      err = cb(page_items, opaque); /* takes the reference */
    }
    release_page(page);
    page = NULL;
    if (err || !cont)
      break;
  }
out:
  free(cont);
  release_page(page);
  m3b_buf_cleanup(&base);
  m3b_buf_cleanup(&path);
  m3b_buf_cleanup_secret(&body);
  return err;
}

/* m3b_kube_list collects the pages into one array (which the caller wipes
 * when it holds Secrets). */
static m3b_err_t collect_page(json_t *items, void *opaque) {
  json_t *all = opaque;
  int rc = json_array_extend(all, items);
  if (rc != 0)
    release_items(items);
  else
    json_decref(items);
  return rc == 0 ? M3B_OK : M3B_ERR_NOMEM;
}

m3b_err_t m3b_kube_list(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                        const char *label_selector, unsigned page_limit,
                        json_t **items_out, char *resource_version_out,
                        size_t resource_version_size,
                        struct m3b_kube_result *result) {
  json_t *items;
  m3b_err_t err;

  if (items_out)
    *items_out = NULL;
  if (!kube || !valid_ref(ref, 0) || !items_out)
    return M3B_ERR_INVALID_ARG;
  items = json_array();
  if (!items)
    return M3B_ERR_NOMEM;
  err = m3b_kube_list_pages(kube, ref, label_selector, page_limit, 0,
                            collect_page, items, resource_version_out,
                            resource_version_size, result);
  if (err) {
    release_items(items);
    return err;
  }
  *items_out = items;
  return M3B_OK;
}

/* ---- watch ---- */

struct watch_state {
  m3b_kube_t *kube;
  struct m3b_buf line; /* the event being received */
  m3b_kube_watch_cb cb;
  void *opaque;
  const atomic_int *stop;
  m3b_err_t err;   /* why the stream was cut by us */
  int cb_stopped;  /* the callback asked to stop */
  long error_code; /* code of an ERROR event's Status */
  char error_msg[400];
};

static int event_type(const char *s, m3b_kube_event_type_t *type) {
  static const struct {
    const char *name;
    m3b_kube_event_type_t type;
  } types[] = {{"ADDED", M3B_KUBE_ADDED},
               {"MODIFIED", M3B_KUBE_MODIFIED},
               {"DELETED", M3B_KUBE_DELETED},
               {"BOOKMARK", M3B_KUBE_BOOKMARK},
               {"ERROR", M3B_KUBE_ERROR}};
  size_t i;
  for (i = 0; s && i < sizeof(types) / sizeof(types[0]); i++) {
    if (strcmp(s, types[i].name) == 0) {
      *type = types[i].type;
      return 1;
    }
  }
  return 0;
}

/* Handles one complete line; non-zero to cut the stream. */
static int watch_line(struct watch_state *ws, const char *line, size_t len) {
  json_t *event, *object;
  m3b_kube_event_type_t type;
  int stop = 0;

  while (len && (line[len - 1] == '\r' || line[len - 1] == ' '))
    len--;
  if (!len)
    return 0;
  event = json_loadb(line, len, 0, NULL);
  object = json_object_get(event, "object");
  if (!event ||
      !event_type(json_string_value(json_object_get(event, "type")), &type) ||
      !json_is_object(object)) {
    M3B_LOG(ws->kube->log, M3B_LOG_WARN, KUBE_MODULE,
            "watch: skipped a malformed event of %zu bytes", len);
    json_decref(event);
    return 0;
  }
  if (type == M3B_KUBE_ERROR) {
    const char *msg = json_string_value(json_object_get(object, "message"));
    ws->error_code = (long)json_integer_value(json_object_get(object, "code"));
    snprintf(ws->error_msg, sizeof(ws->error_msg), "%s", msg ? msg : "");
  }
  if (ws->cb(type, object, ws->opaque)) {
    ws->cb_stopped = 1;
    stop = 1;
  }
  /* an ERROR ends this watch: the server closes the stream after it */
  if (type == M3B_KUBE_ERROR)
    stop = 1;
  json_decref(event);
  return stop;
}

static size_t watch_write(char *ptr, size_t size, size_t nmemb,
                          void *userdata) {
  struct watch_state *ws = userdata;
  size_t n = size * nmemb;
  size_t i, start = 0;

  for (i = 0; i < n; i++) {
    if (ptr[i] != '\n')
      continue;
    if (m3b_buf_append(&ws->line, ptr + start, i - start)) {
      ws->err = M3B_ERR_LIMIT;
      return 0;
    }
    start = i + 1;
    if (watch_line(ws, (const char *)ws->line.data, ws->line.len)) {
      m3b_buf_reset(&ws->line);
      return 0;
    }
    m3b_buf_reset(&ws->line);
  }
  if (m3b_buf_append(&ws->line, ptr + start, n - start)) {
    ws->err = M3B_ERR_LIMIT;
    return 0;
  }
  return n;
}

static int watch_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow,
                          curl_off_t ultotal, curl_off_t ulnow) {
  struct watch_state *ws = clientp;
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  (void)ulnow;
  return ws->stop && atomic_load(ws->stop) ? 1 : 0;
}

m3b_err_t m3b_kube_watch(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                         const char *label_selector,
                         const char *resource_version, long timeout_s,
                         const atomic_int *stop, m3b_kube_watch_cb cb,
                         void *opaque, struct m3b_kube_result *result) {
  struct m3b_buf path, body;
  struct kube_request req;
  struct watch_state ws;
  struct m3b_kube_ref watch_ref;
  char what[512], timeout[32];
  m3b_err_t err;

  if (!kube || !valid_ref(ref, 0) || !cb || timeout_s <= 0)
    return M3B_ERR_INVALID_ARG;
  watch_ref = *ref;
  watch_ref.name = NULL;
  what_of(what, sizeof(what), "watch", &watch_ref);
  memset(&ws, 0, sizeof(ws));
  ws.kube = kube;
  ws.cb = cb;
  ws.opaque = opaque;
  ws.stop = stop;
  m3b_buf_init(&ws.line, kube->cfg.max_event_bytes);
  m3b_buf_init(&path, 8192);
  m3b_buf_init(&body, 1u << 20);
  snprintf(timeout, sizeof(timeout), "%ld", timeout_s);
  err = m3b__kube_path(kube, ref->api_version, ref->kind, ref->ns, NULL, &path,
                       result);
  if (!err)
    err = m3b_buf_append_str(&path, "?watch=1&allowWatchBookmarks=true");
  if (!err)
    err = add_param(&path, "labelSelector", label_selector);
  if (!err)
    err = add_param(&path, "resourceVersion", resource_version);
  if (!err)
    err = add_param(&path, "timeoutSeconds", timeout);
  if (err)
    goto out;
  request_init(&req, "GET", (const char *)path.data, &body);
  /* the server ends the stream after timeoutSeconds; our own cut comes a
   * little later, for a server that does not */
  req.timeout_ms = (timeout_s + 10) * 1000;
  req.write_cb = watch_write;
  req.write_data = &ws;
  req.progress_cb = watch_progress;
  req.progress_data = &ws;
  err = m3b__kube_perform(kube, &req, what, result);
  if (err == M3B_ERR_LIMIT || err == M3B_ERR_INTERRUPTED) {
    if (ws.err == M3B_ERR_LIMIT) {
      m3b__kube_result_set(result, 200, "%s: an event is larger than %zu bytes",
                           what, ws.line.max);
      err = M3B_ERR_LIMIT;
    } else {
      err = M3B_OK; /* stop flag, callback or ERROR event */
    }
  }
  if (!err && ws.error_code) {
    err = m3b_kube_err_from_status(ws.error_code, ws.error_msg);
    if (!err)
      err = M3B_ERR_KUBE_HTTP;
    m3b__kube_result_set(result, ws.error_code, "%s: %s", what,
                         ws.error_msg[0] ? ws.error_msg : m3b_err_str(err));
  }
out:
  m3b_buf_cleanup(&path);
  m3b_buf_cleanup(&body);
  m3b_buf_cleanup_secret(&ws.line);
  return err;
}
