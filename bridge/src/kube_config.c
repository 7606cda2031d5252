/*
 * kube_config.c - where the Kubernetes client's connection settings come
 * from: a kubeconfig file (YAML, read with libyaml's document API) or the
 * in-cluster service account.
 *
 * Only the parts of kubeconfig m3bridge needs are understood: the selected
 * context, its cluster (server, CA as path or base64 data, skip-verify) and
 * its user (token, tokenFile, client certificate and key as path or data).
 * Exec and auth-provider users are refused with a clear message rather than
 * silently ignored. Secret values never appear in an errstr.
 */
#include <m3b/kube.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <yaml.h>

#include "b64.h"
#include "errstr.h"

#include <m3b/buf.h>

#define KUBECONFIG_MAX (1u << 20)
#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"

void m3b_kube_config_init(struct m3b_kube_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->connect_timeout_ms = 5000;
  cfg->request_timeout_ms = 30000;
  cfg->token_reload_ms = 60000;
  cfg->max_response_bytes = 8u << 20;
  cfg->max_event_bytes = 4u << 20;
}

static void free_secret_str(char *s) {
  if (s)
    OPENSSL_cleanse(s, strlen(s));
  free(s);
}

static void free_secret_bytes(uint8_t *p, size_t n) {
  if (p)
    OPENSSL_cleanse(p, n);
  free(p);
}

void m3b_kube_config_cleanup(struct m3b_kube_config *cfg) {
  if (!cfg)
    return;
  free(cfg->server);
  free(cfg->ca_file);
  free(cfg->ca_data);
  free_secret_str(cfg->token);
  free(cfg->token_file);
  free(cfg->client_cert_file);
  free(cfg->client_key_file);
  free(cfg->client_cert_data);
  free_secret_bytes(cfg->client_key_data, cfg->client_key_data_len);
  free(cfg->ns);
  m3b_kube_config_init(cfg);
}

/* Reads a whole file of at most max bytes into buf. */
static m3b_err_t read_file(const char *path, struct m3b_buf *buf, char *errstr,
                           size_t errstr_size) {
  char chunk[4096];
  size_t n;
  m3b_err_t err = M3B_OK;
  FILE *f = fopen(path, "rb");
  if (!f) {
    m3b__errstr(errstr, errstr_size, "cannot open %s: %s", path,
                strerror(errno));
    return M3B_ERR_IO;
  }
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    err = m3b_buf_append(buf, chunk, n);
    if (err) {
      m3b__errstr(errstr, errstr_size, "%s is larger than %zu bytes", path,
                  buf->max);
      break;
    }
  }
  if (!err && ferror(f)) {
    m3b__errstr(errstr, errstr_size, "cannot read %s", path);
    err = M3B_ERR_IO;
  }
  OPENSSL_cleanse(chunk, sizeof(chunk));
  fclose(f);
  return err;
}

/* Base64 as kubeconfig files carry it: the strict decoder of b64.c after
 * removing line breaks and restoring omitted padding. The copy may hold a
 * client key, so it is wiped. */
static m3b_err_t base64_decode(const char *text, uint8_t **out,
                               size_t *out_len) {
  struct m3b_buf clean, bytes;
  m3b_err_t err = M3B_OK;
  const char *p;

  m3b_buf_init(&clean, strlen(text) + 4);
  m3b_buf_init(&bytes, strlen(text) + 4);
  for (p = text; *p && !err; p++)
    if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
      err = m3b_buf_append(&clean, p, 1);
  while (!err && clean.len % 4)
    err = m3b_buf_append(&clean, "=", 1);
  if (!err)
    err = m3b__b64_decode((const char *)clean.data, clean.len, &bytes);
  if (!err)
    err = m3b_buf_detach(&bytes, out, out_len);
  m3b_buf_cleanup_secret(&clean);
  m3b_buf_cleanup_secret(&bytes);
  if (err && err != M3B_ERR_NOMEM)
    err = M3B_ERR_CONFIG;
  return err;
}

/* ---- YAML helpers on a loaded document ---- */

static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map,
                            const char *key) {
  yaml_node_pair_t *pair;
  if (!map || map->type != YAML_MAPPING_NODE)
    return NULL;
  for (pair = map->data.mapping.pairs.start; pair < map->data.mapping.pairs.top;
       pair++) {
    yaml_node_t *k = yaml_document_get_node(doc, pair->key);
    if (k && k->type == YAML_SCALAR_NODE &&
        strlen(key) == k->data.scalar.length &&
        memcmp(k->data.scalar.value, key, k->data.scalar.length) == 0)
      return yaml_document_get_node(doc, pair->value);
  }
  return NULL;
}

/* The scalar at key, or NULL (absent, empty or not a scalar). */
static const char *map_str(yaml_document_t *doc, yaml_node_t *map,
                           const char *key) {
  yaml_node_t *node = map_get(doc, map, key);
  if (!node || node->type != YAML_SCALAR_NODE || !node->data.scalar.length)
    return NULL;
  return (const char *)node->data.scalar.value;
}

/* In a sequence of {name: N, <field>: {...}}, the <field> of the entry named
 * name. */
static yaml_node_t *named_entry(yaml_document_t *doc, yaml_node_t *root,
                                const char *list, const char *field,
                                const char *name) {
  yaml_node_t *seq = map_get(doc, root, list);
  yaml_node_item_t *item;
  if (!seq || seq->type != YAML_SEQUENCE_NODE)
    return NULL;
  for (item = seq->data.sequence.items.start;
       item < seq->data.sequence.items.top; item++) {
    yaml_node_t *entry = yaml_document_get_node(doc, *item);
    const char *entry_name = map_str(doc, entry, "name");
    if (entry_name && strcmp(entry_name, name) == 0) {
      yaml_node_t *inner = map_get(doc, entry, field);
      /* an entry with an empty body (`user: {}` or `user:`) is valid */
      return inner ? inner : entry;
    }
  }
  return NULL;
}

/* A path from the kubeconfig, made absolute relative to its folder. */
static char *resolve_path(const char *base_dir, const char *path) {
  struct m3b_buf buf;
  uint8_t *out = NULL;
  m3b_buf_init(&buf, 8192);
  if (path[0] == '/' || !base_dir)
    m3b_buf_append_str(&buf, path);
  else
    m3b_buf_appendf(&buf, "%s/%s", base_dir, path);
  if (m3b_buf_detach(&buf, &out, NULL)) {
    m3b_buf_cleanup(&buf);
    return NULL;
  }
  return (char *)out;
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

static int yaml_true(const char *s) {
  return s && (strcmp(s, "true") == 0 || strcmp(s, "True") == 0 ||
               strcmp(s, "TRUE") == 0);
}

/* Decodes a -data field into (*data, *len); M3B_OK when absent. */
static m3b_err_t data_field(yaml_document_t *doc, yaml_node_t *map,
                            const char *key, uint8_t **data, size_t *len,
                            char *errstr, size_t errstr_size) {
  const char *text = map_str(doc, map, key);
  m3b_err_t err;
  if (!text)
    return M3B_OK;
  err = base64_decode(text, data, len);
  if (err == M3B_ERR_CONFIG)
    m3b__errstr(errstr, errstr_size, "kubeconfig: %s is not valid base64", key);
  return err;
}

static m3b_err_t fill_from_doc(struct m3b_kube_config *cfg,
                               yaml_document_t *doc, const char *base_dir,
                               const char *context, char *errstr,
                               size_t errstr_size) {
  yaml_node_t *root = yaml_document_get_root_node(doc);
  yaml_node_t *ctx, *cluster, *user = NULL;
  const char *cluster_name, *user_name, *s;
  m3b_err_t err;

  if (!root || root->type != YAML_MAPPING_NODE) {
    m3b__errstr(errstr, errstr_size, "kubeconfig: not a YAML mapping");
    return M3B_ERR_CONFIG;
  }
  if (!context)
    context = map_str(doc, root, "current-context");
  if (!context) {
    m3b__errstr(errstr, errstr_size,
                "kubeconfig: no current-context and none given");
    return M3B_ERR_CONFIG;
  }
  ctx = named_entry(doc, root, "contexts", "context", context);
  if (!ctx) {
    m3b__errstr(errstr, errstr_size, "kubeconfig: context '%s' not found",
                context);
    return M3B_ERR_CONFIG;
  }
  cluster_name = map_str(doc, ctx, "cluster");
  user_name = map_str(doc, ctx, "user");
  if (!cluster_name) {
    m3b__errstr(errstr, errstr_size, "kubeconfig: context '%s' has no cluster",
                context);
    return M3B_ERR_CONFIG;
  }
  cluster = named_entry(doc, root, "clusters", "cluster", cluster_name);
  if (!cluster) {
    m3b__errstr(errstr, errstr_size, "kubeconfig: cluster '%s' not found",
                cluster_name);
    return M3B_ERR_CONFIG;
  }
  if (user_name) {
    user = named_entry(doc, root, "users", "user", user_name);
    if (!user) {
      m3b__errstr(errstr, errstr_size, "kubeconfig: user '%s' not found",
                  user_name);
      return M3B_ERR_CONFIG;
    }
  }

  s = map_str(doc, cluster, "server");
  if (!s) {
    m3b__errstr(errstr, errstr_size, "kubeconfig: cluster '%s' has no server",
                cluster_name);
    return M3B_ERR_CONFIG;
  }
  cfg->server = strdup(s);
  if (!cfg->server)
    return M3B_ERR_NOMEM;
  s = map_str(doc, cluster, "certificate-authority");
  if (s && !(cfg->ca_file = resolve_path(base_dir, s)))
    return M3B_ERR_NOMEM;
  err = data_field(doc, cluster, "certificate-authority-data", &cfg->ca_data,
                   &cfg->ca_data_len, errstr, errstr_size);
  if (err)
    return err;
  cfg->insecure_skip_verify =
      yaml_true(map_str(doc, cluster, "insecure-skip-tls-verify"));
  s = map_str(doc, ctx, "namespace");
  if (s && !(cfg->ns = strdup(s)))
    return M3B_ERR_NOMEM;

  if (!user)
    return M3B_OK;
  if (map_get(doc, user, "exec") || map_get(doc, user, "auth-provider")) {
    m3b__errstr(errstr, errstr_size,
                "kubeconfig: user '%s' uses an exec or auth-provider plugin, "
                "which m3bridge does not run; use a token, tokenFile or "
                "client certificate",
                user_name);
    return M3B_ERR_UNSUPPORTED;
  }
  s = map_str(doc, user, "token");
  if (s && !(cfg->token = strdup(s)))
    return M3B_ERR_NOMEM;
  s = map_str(doc, user, "tokenFile");
  if (s && !(cfg->token_file = resolve_path(base_dir, s)))
    return M3B_ERR_NOMEM;
  s = map_str(doc, user, "client-certificate");
  if (s && !(cfg->client_cert_file = resolve_path(base_dir, s)))
    return M3B_ERR_NOMEM;
  s = map_str(doc, user, "client-key");
  if (s && !(cfg->client_key_file = resolve_path(base_dir, s)))
    return M3B_ERR_NOMEM;
  err = data_field(doc, user, "client-certificate-data", &cfg->client_cert_data,
                   &cfg->client_cert_data_len, errstr, errstr_size);
  if (err)
    return err;
  err = data_field(doc, user, "client-key-data", &cfg->client_key_data,
                   &cfg->client_key_data_len, errstr, errstr_size);
  if (err)
    return err;
  if ((cfg->client_cert_file || cfg->client_cert_data) !=
      (cfg->client_key_file || cfg->client_key_data)) {
    m3b__errstr(errstr, errstr_size,
                "kubeconfig: user '%s' has a client certificate without a key "
                "or a key without a certificate",
                user_name);
    return M3B_ERR_CONFIG;
  }
  return M3B_OK;
}

m3b_err_t m3b_kube_config_from_kubeconfig(struct m3b_kube_config *cfg,
                                          const char *path, const char *context,
                                          char *errstr, size_t errstr_size) {
  struct m3b_buf text;
  yaml_parser_t parser;
  yaml_document_t doc;
  char *base_dir = NULL;
  char *slash;
  m3b_err_t err;

  if (!cfg || !path)
    return M3B_ERR_INVALID_ARG;
  m3b_kube_config_cleanup(cfg);
  m3b_buf_init(&text, KUBECONFIG_MAX);
  err = read_file(path, &text, errstr, errstr_size);
  if (err) {
    m3b_buf_cleanup_secret(&text);
    return err;
  }
  if (!yaml_parser_initialize(&parser)) {
    m3b_buf_cleanup_secret(&text);
    return M3B_ERR_NOMEM;
  }
  yaml_parser_set_input_string(&parser, text.data ? text.data : (uint8_t *)"",
                               text.len);
  if (!yaml_parser_load(&parser, &doc)) {
    m3b__errstr(errstr, errstr_size,
                "kubeconfig %s: YAML error at line %zu: %s", path,
                parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "unknown");
    yaml_parser_delete(&parser);
    m3b_buf_cleanup_secret(&text);
    return M3B_ERR_CONFIG;
  }
  base_dir = strdup(path);
  if (!base_dir) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  slash = strrchr(base_dir, '/');
  if (slash == base_dir)
    slash[1] = '\0';
  else if (slash)
    *slash = '\0';
  else {
    free(base_dir);
    base_dir = NULL; /* relative to the working directory */
  }
  err = fill_from_doc(cfg, &doc, base_dir, context, errstr, errstr_size);
  if (err == M3B_ERR_NOMEM)
    m3b__errstr(errstr, errstr_size, "out of memory");
out:
  free(base_dir);
  /* the document holds the token and key as scalars */
  {
    yaml_node_t *node;
    for (node = doc.nodes.start; node < doc.nodes.top; node++)
      if (node->type == YAML_SCALAR_NODE)
        OPENSSL_cleanse(node->data.scalar.value, node->data.scalar.length);
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  m3b_buf_cleanup_secret(&text);
  if (err)
    m3b_kube_config_cleanup(cfg);
  return err;
}

m3b_err_t m3b_kube_config_in_cluster(struct m3b_kube_config *cfg,
                                     const char *sa_dir, char *errstr,
                                     size_t errstr_size) {
  const char *host = getenv("KUBERNETES_SERVICE_HOST");
  const char *port = getenv("KUBERNETES_SERVICE_PORT");
  struct m3b_buf buf;
  uint8_t *out = NULL;
  m3b_err_t err;

  if (!cfg)
    return M3B_ERR_INVALID_ARG;
  m3b_kube_config_cleanup(cfg);
  if (!sa_dir)
    sa_dir = SA_DIR_DEFAULT;
  if (!host || !*host || !port || !*port) {
    m3b__errstr(errstr, errstr_size,
                "not in a cluster: KUBERNETES_SERVICE_HOST and "
                "KUBERNETES_SERVICE_PORT must be set");
    return M3B_ERR_CONFIG;
  }
  m3b_buf_init(&buf, 4096);
  err = strchr(host, ':') ? m3b_buf_appendf(&buf, "https://[%s]:%s", host, port)
                          : m3b_buf_appendf(&buf, "https://%s:%s", host, port);
  if (!err)
    err = m3b_buf_detach(&buf, &out, NULL);
  m3b_buf_cleanup(&buf);
  if (err)
    goto fail;
  cfg->server = (char *)out;
  cfg->token_file = resolve_path(sa_dir, "token");
  cfg->ca_file = resolve_path(sa_dir, "ca.crt");
  if (!cfg->token_file || !cfg->ca_file) {
    err = M3B_ERR_NOMEM;
    goto fail;
  }
  {
    char *ns_path = resolve_path(sa_dir, "namespace");
    struct m3b_buf ns;
    if (!ns_path) {
      err = M3B_ERR_NOMEM;
      goto fail;
    }
    m3b_buf_init(&ns, 256);
    err = read_file(ns_path, &ns, errstr, errstr_size);
    free(ns_path);
    if (!err) {
      while (ns.len &&
             (ns.data[ns.len - 1] == '\n' || ns.data[ns.len - 1] == ' ' ||
              ns.data[ns.len - 1] == '\r'))
        ns.data[--ns.len] = 0;
      if (ns.len)
        cfg->ns = dup_or_null((const char *)ns.data);
    }
    m3b_buf_cleanup(&ns);
    /* a missing namespace file only loses the default namespace */
  }
  return M3B_OK;
fail:
  if (err == M3B_ERR_NOMEM)
    m3b__errstr(errstr, errstr_size, "out of memory");
  m3b_kube_config_cleanup(cfg);
  return err;
}
