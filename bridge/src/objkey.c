/*
 * objkey.c - object keys (<m3b/objkey.h>): parsing, validation, formatting
 * and derivation from a manifest, plus the manifest digest.
 *
 * The name rules are those of Kubernetes' apimachinery validation:
 * DNS-1123 labels (namespaces, the names of Namespaces) and subdomains
 * (groups, most object names), and path-segment names for the RBAC group,
 * whose objects are routinely called "system:controller:...".
 */
#include <m3b/objkey.h>

#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "errstr.h"

#define RBAC_GROUP "rbac.authorization.k8s.io"

static int is_lower_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9]([-a-z0-9]*[a-z0-9])? over s[0..len) */
static int is_dns_label(const char *s, size_t len) {
  size_t i;
  if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
    return 0;
  for (i = 0; i < len; i++) {
    if (!is_lower_alnum(s[i]) && s[i] != '-')
      return 0;
  }
  return 1;
}

/* DNS-1123 labels joined by '.' */
static int is_dns_subdomain(const char *s) {
  const char *dot;
  if (!*s)
    return 0;
  for (;;) {
    dot = strchr(s, '.');
    if (!is_dns_label(s, dot ? (size_t)(dot - s) : strlen(s)))
      return 0;
    if (!dot)
      return 1;
    s = dot + 1;
  }
}

/* v<N>, v<N>alpha<M>, v<N>beta<M>; N, M without leading zeros */
static int is_api_version(const char *s) {
  const char *p = s;
  if (*p++ != 'v' || *p < '1' || *p > '9')
    return 0;
  while (*p >= '0' && *p <= '9')
    p++;
  if (!*p)
    return 1;
  if (strncmp(p, "alpha", 5) == 0)
    p += 5;
  else if (strncmp(p, "beta", 4) == 0)
    p += 4;
  else
    return 0;
  if (*p < '1' || *p > '9')
    return 0;
  while (*p >= '0' && *p <= '9')
    p++;
  return *p == 0;
}

static int is_kind(const char *s) {
  if (!(*s >= 'A' && *s <= 'Z'))
    return 0;
  for (s++; *s; s++) {
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
          (*s >= '0' && *s <= '9')))
      return 0;
  }
  return 1;
}

/* Kubernetes path segment names: not "." or "..", no '/' or '%'; also
 * only printable ASCII, which Kubernetes does not demand but keys do. */
static int is_path_segment(const char *s) {
  if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
    return 0;
  for (; *s; s++) {
    if (*s == '/' || *s == '%' || *s <= ' ' || *s > '~')
      return 0;
  }
  return 1;
}

/* A printable rendering of untrusted text for messages (at most 64 chars,
 * anything outside printable ASCII shown as '?'). */
static const char *shown(const char *s, char *out, size_t out_size) {
  size_t i;
  for (i = 0; s[i] && i + 1 < out_size && i < 64; i++) {
    if (s[i] >= ' ' && s[i] <= '~')
      out[i] = s[i];
    else
      out[i] = (char)'?';
  }
  out[i] = 0;
  return out;
}

static m3b_err_t bad(m3b_err_t err, char *errstr, size_t errstr_size,
                     const char *part, const char *value, const char *rule) {
  char tmp[72];
  return m3b__errstr_set(err, errstr, errstr_size, "%s \"%s\" %s", part,
                         shown(value, tmp, sizeof(tmp)), rule);
}

static m3b_err_t validate(const struct m3b_objkey *key, m3b_err_t code,
                          char *errstr, size_t errstr_size) {
  int rbac = strcmp(key->group, RBAC_GROUP) == 0;
  int is_namespace = key->group[0] == 0 && strcmp(key->kind, "Namespace") == 0;

  if (strlen(key->group) > M3B_OBJKEY_GROUP_MAX)
    return bad(code, errstr, errstr_size, "group", key->group,
               "is longer than 253 characters");
  if (key->group[0] && !is_dns_subdomain(key->group))
    return bad(code, errstr, errstr_size, "group", key->group,
               "is not a DNS-1123 subdomain (lowercase letters, digits, '-' "
               "and '.', each label starting and ending with a letter or "
               "digit)");
  if (!key->version[0])
    return m3b__errstr_set(code, errstr, errstr_size, "version is empty");
  if (strlen(key->version) > M3B_OBJKEY_VERSION_MAX ||
      !is_api_version(key->version))
    return bad(code, errstr, errstr_size, "version", key->version,
               "is not a Kubernetes API version (v1, v1beta1, v2alpha1)");
  if (!key->kind[0])
    return m3b__errstr_set(code, errstr, errstr_size, "kind is empty");
  if (strlen(key->kind) > M3B_OBJKEY_KIND_MAX)
    return bad(code, errstr, errstr_size, "kind", key->kind,
               "is longer than 63 characters");
  if (!is_kind(key->kind))
    return bad(code, errstr, errstr_size, "kind", key->kind,
               "is not a CamelCase identifier ([A-Z][A-Za-z0-9]*)");
  if (strlen(key->ns) > M3B_OBJKEY_NAMESPACE_MAX)
    return bad(code, errstr, errstr_size, "namespace", key->ns,
               "is longer than 63 characters");
  if (key->ns[0] && !is_dns_label(key->ns, strlen(key->ns)))
    return bad(code, errstr, errstr_size, "namespace", key->ns,
               "is not a DNS-1123 label (lowercase letters, digits and '-', "
               "starting and ending with a letter or digit)");
  if (is_namespace && key->ns[0])
    return bad(code, errstr, errstr_size, "namespace", key->ns,
               "is set on a Namespace, which is cluster-scoped");
  if (!key->name[0])
    return m3b__errstr_set(code, errstr, errstr_size, "name is empty");
  if (strlen(key->name) >
      (is_namespace ? M3B_OBJKEY_NAMESPACE_MAX : M3B_OBJKEY_NAME_MAX))
    return bad(code, errstr, errstr_size, "name", key->name,
               is_namespace ? "is longer than 63 characters"
                            : "is longer than 253 characters");
  if (is_namespace && !is_dns_label(key->name, strlen(key->name)))
    return bad(code, errstr, errstr_size, "name", key->name,
               "of a Namespace is not a DNS-1123 label");
  if (rbac && !is_path_segment(key->name))
    return bad(code, errstr, errstr_size, "name", key->name,
               "is not a valid RBAC name (no '/', '%', whitespace; not '.' "
               "or '..')");
  if (!rbac && !is_dns_subdomain(key->name))
    return bad(code, errstr, errstr_size, "name", key->name,
               "is not a DNS-1123 subdomain (lowercase letters, digits, '-' "
               "and '.', each label starting and ending with a letter or "
               "digit)");
  return M3B_OK;
}

m3b_err_t m3b_objkey_validate(const struct m3b_objkey *key, char *errstr,
                              size_t errstr_size) {
  return validate(key, M3B_ERR_BAD_KEY, errstr, errstr_size);
}

/* Copies part [s, s+n) into dst[0..size) or fails naming the part. */
static m3b_err_t copy_part(char *dst, size_t size, const char *s, size_t n,
                           const char *part, m3b_err_t code, char *errstr,
                           size_t errstr_size) {
  if (n >= size)
    return m3b__errstr_set(code, errstr, errstr_size,
                           "%s is longer than %zu characters", part, size - 1);
  if (memchr(s, 0, n))
    return m3b__errstr_set(code, errstr, errstr_size, "%s contains a NUL byte",
                           part);
  memcpy(dst, s, n);
  dst[n] = 0;
  return M3B_OK;
}

m3b_err_t m3b_objkey_parse(const char *key, size_t len,
                           struct m3b_objkey *key_out, char *errstr,
                           size_t errstr_size) {
  static const char *const parts[] = {"group", "version", "kind", "namespace",
                                      "name"};
  char *dst[5];
  size_t size[5];
  size_t start = 0;
  size_t slashes = 0;
  size_t i;
  size_t part = 0;
  m3b_err_t err;

  memset(key_out, 0, sizeof(*key_out));
  if (len > M3B_OBJKEY_MAX)
    return m3b__errstr_set(M3B_ERR_BAD_KEY, errstr, errstr_size,
                           "key is %zu bytes, longer than %d", len,
                           M3B_OBJKEY_MAX);
  for (i = 0; i < len; i++)
    slashes += key[i] == '/';
  if (slashes != 4)
    return m3b__errstr_set(M3B_ERR_BAD_KEY, errstr, errstr_size,
                           "key has %zu parts, expected 5: "
                           "<group>/<version>/<kind>/<namespace>/<name>",
                           slashes + 1);
  dst[0] = key_out->group;
  size[0] = sizeof(key_out->group);
  dst[1] = key_out->version;
  size[1] = sizeof(key_out->version);
  dst[2] = key_out->kind;
  size[2] = sizeof(key_out->kind);
  dst[3] = key_out->ns;
  size[3] = sizeof(key_out->ns);
  dst[4] = key_out->name;
  size[4] = sizeof(key_out->name);
  for (i = 0; i <= len; i++) {
    if (i < len && key[i] != '/')
      continue;
    err = copy_part(dst[part], size[part], key + start, i - start, parts[part],
                    M3B_ERR_BAD_KEY, errstr, errstr_size);
    if (err)
      goto fail;
    part++;
    start = i + 1;
  }
  err = validate(key_out, M3B_ERR_BAD_KEY, errstr, errstr_size);
  if (!err)
    return M3B_OK;
fail:
  memset(key_out, 0, sizeof(*key_out));
  return err;
}

m3b_err_t m3b_objkey_format(const struct m3b_objkey *key, char *out,
                            size_t out_size, char *errstr, size_t errstr_size) {
  int n;
  m3b_err_t err = validate(key, M3B_ERR_BAD_KEY, errstr, errstr_size);
  if (err)
    return err;
  n = snprintf(out, out_size, "%s/%s/%s/%s/%s", key->group, key->version,
               key->kind, key->ns, key->name);
  if (n < 0 || (size_t)n >= out_size)
    return m3b__errstr_set(M3B_ERR_LIMIT, errstr, errstr_size,
                           "key needs %d bytes, buffer holds %zu", n + 1,
                           out_size);
  return M3B_OK;
}

static m3b_err_t manifest_string(const json_t *object, const char *field,
                                 const char *path, int required,
                                 const char **value_out, size_t *len_out,
                                 char *errstr, size_t errstr_size) {
  const json_t *value = json_object_get(object, field);
  *value_out = "";
  *len_out = 0;
  if (!value && !required)
    return M3B_OK;
  if (!value)
    return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, errstr, errstr_size,
                           "manifest has no %s", path);
  if (!json_is_string(value))
    return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, errstr, errstr_size,
                           "manifest %s is not a string", path);
  *value_out = json_string_value(value);
  *len_out = json_string_length(value);
  return M3B_OK;
}

m3b_err_t m3b_objkey_from_manifest(const uint8_t *json, size_t len,
                                   struct m3b_objkey *key_out, char *errstr,
                                   size_t errstr_size) {
  json_error_t jerr;
  json_t *doc = NULL;
  const json_t *metadata;
  const char *api_version;
  const char *kind;
  const char *name;
  const char *ns;
  const char *slash;
  size_t api_len;
  size_t kind_len;
  size_t name_len;
  size_t ns_len;
  char detail[320];
  m3b_err_t err;

  memset(key_out, 0, sizeof(*key_out));
  doc = json_loadb((const char *)json, len, JSON_REJECT_DUPLICATES, &jerr);
  if (!doc) {
    err = m3b__errstr_set(M3B_ERR_BAD_MANIFEST, errstr, errstr_size,
                          "manifest is not a JSON object: %s (line %d, "
                          "column %d)",
                          jerr.text, jerr.line, jerr.column);
    goto out;
  }
  if (!json_is_object(doc)) {
    err = m3b__errstr_set(M3B_ERR_BAD_MANIFEST, errstr, errstr_size,
                          "manifest is not a JSON object");
    goto out;
  }
  metadata = json_object_get(doc, "metadata");
  err = manifest_string(doc, "apiVersion", "apiVersion", 1, &api_version,
                        &api_len, errstr, errstr_size);
  if (!err)
    err = manifest_string(doc, "kind", "kind", 1, &kind, &kind_len, errstr,
                          errstr_size);
  if (!err && !json_is_object(metadata))
    err = m3b__errstr_set(M3B_ERR_BAD_MANIFEST, errstr, errstr_size,
                          "manifest has no metadata object");
  if (!err)
    err = manifest_string(metadata, "name", "metadata.name", 1, &name,
                          &name_len, errstr, errstr_size);
  if (!err)
    err = manifest_string(metadata, "namespace", "metadata.namespace", 0, &ns,
                          &ns_len, errstr, errstr_size);
  if (err)
    goto out;

  slash = memchr(api_version, '/', api_len);
  if (slash &&
      memchr(slash + 1, '/', api_len - (size_t)(slash - api_version) - 1)) {
    err = m3b__errstr_set(M3B_ERR_BAD_MANIFEST, errstr, errstr_size,
                          "manifest apiVersion has more than one '/'");
    goto out;
  }
  if (slash) {
    err = copy_part(key_out->group, sizeof(key_out->group), api_version,
                    (size_t)(slash - api_version), "apiVersion group",
                    M3B_ERR_BAD_MANIFEST, errstr, errstr_size);
    if (!err)
      err = copy_part(key_out->version, sizeof(key_out->version), slash + 1,
                      api_len - (size_t)(slash - api_version) - 1,
                      "apiVersion version", M3B_ERR_BAD_MANIFEST, errstr,
                      errstr_size);
  } else {
    err = copy_part(key_out->version, sizeof(key_out->version), api_version,
                    api_len, "apiVersion", M3B_ERR_BAD_MANIFEST, errstr,
                    errstr_size);
  }
  if (!err)
    err = copy_part(key_out->kind, sizeof(key_out->kind), kind, kind_len,
                    "kind", M3B_ERR_BAD_MANIFEST, errstr, errstr_size);
  if (!err)
    err = copy_part(key_out->ns, sizeof(key_out->ns), ns, ns_len,
                    "metadata.namespace", M3B_ERR_BAD_MANIFEST, errstr,
                    errstr_size);
  if (!err)
    err = copy_part(key_out->name, sizeof(key_out->name), name, name_len,
                    "metadata.name", M3B_ERR_BAD_MANIFEST, errstr, errstr_size);
  if (err)
    goto out;
  err = validate(key_out, M3B_ERR_BAD_MANIFEST, detail, sizeof(detail));
  if (err)
    m3b__errstr_set(err, errstr, errstr_size, "manifest: %s", detail);
out:
  if (err)
    memset(key_out, 0, sizeof(*key_out));
  json_decref(doc);
  return err;
}

m3b_err_t m3b_manifest_sha256(const void *data, size_t len,
                              uint8_t digest_out[32]) {
  unsigned int n = 0;
  if (!EVP_Digest(data, len, digest_out, &n, EVP_sha256(), NULL) || n != 32)
    return M3B_ERR_CRYPTO;
  return M3B_OK;
}
