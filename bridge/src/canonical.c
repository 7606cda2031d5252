/*
 * canonical.c - Avro Parsing Canonical Form (<m3b/schema.h>).
 *
 * Implements the transformations of the Avro specification: PRIMITIVES
 * ({"type":"int"} -> "int"), FULLNAMES (names qualified by the enclosing
 * namespace), STRIP (only type, name, fields, symbols, items, values, size
 * survive), ORDER (attributes in that order), STRINGS (escapes become
 * UTF-8), INTEGERS (no leading zeros) and WHITESPACE (none). The output is
 * written directly rather than built as JSON so the attribute order is
 * explicit. A named type is written in full the first time and by its
 * full name afterwards; redefining a name is an error.
 */
#include "canonical.h"

#include <m3b/schema.h>

#include <stdio.h>
#include <string.h>

#include "errstr.h"

struct canon {
  struct m3b_buf *out;
  json_t *defined; /* full names written so far -> true */
  char *errstr;
  size_t errstr_size;
};

static const char *const primitives[] = {"null",  "boolean", "int",   "long",
                                         "float", "double",  "bytes", "string"};

int m3b__avro_is_primitive(const char *name) {
  size_t i;
  for (i = 0; i < sizeof(primitives) / sizeof(primitives[0]); i++) {
    if (strcmp(name, primitives[i]) == 0)
      return 1;
  }
  return 0;
}

int m3b__avro_valid_name(const char *name, int allow_dots) {
  const char *p = name;
  int at_start = 1;
  if (!*p)
    return 0;
  for (; *p; p++) {
    char c = *p;
    int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    int digit = c >= '0' && c <= '9';
    if (c == '.' && allow_dots && !at_start) {
      at_start = 1;
      continue;
    }
    if (at_start ? !alpha : !(alpha || digit))
      return 0;
    at_start = 0;
  }
  return !at_start;
}

m3b_err_t m3b__avro_fullname(const char *name, const char *ns, char *out,
                             size_t out_size) {
  int n;
  if (strchr(name, '.') || !ns || !*ns)
    n = snprintf(out, out_size, "%s", name);
  else
    n = snprintf(out, out_size, "%s.%s", ns, name);
  if (n < 0 || (size_t)n >= out_size)
    return M3B_ERR_SCHEMA;
  return M3B_OK;
}

/* Writes s as a JSON string: raw UTF-8, escaping only what JSON demands. */
static m3b_err_t put_string(struct m3b_buf *out, const char *s) {
  m3b_err_t err = m3b_buf_append(out, "\"", 1);
  for (; !err && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      char esc[2] = {'\\', (char)c};
      err = m3b_buf_append(out, esc, 2);
    } else if (c < 0x20) {
      err = m3b_buf_appendf(out, "\\u%04x", c);
    } else {
      err = m3b_buf_append(out, s, 1);
    }
  }
  if (!err)
    err = m3b_buf_append(out, "\"", 1);
  return err;
}

static m3b_err_t canon_type(struct canon *c, const json_t *schema,
                            const char *ns, int depth);

/* The namespace part of a full name ("" when there is none) into out. */
static void namespace_of(const char *fullname, char *out, size_t out_size) {
  const char *dot = strrchr(fullname, '.');
  size_t n = dot ? (size_t)(dot - fullname) : 0;
  if (n >= out_size)
    n = out_size - 1;
  memcpy(out, fullname, n);
  out[n] = 0;
}

static m3b_err_t canon_named(struct canon *c, const json_t *schema,
                             const char *type, const char *ns, int depth) {
  const json_t *name = json_object_get(schema, "name");
  const json_t *nsj = json_object_get(schema, "namespace");
  const char *own_ns = ns;
  char fullname[M3B__AVRO_NAME_MAX];
  char inner_ns[M3B__AVRO_NAME_MAX];
  m3b_err_t err;

  if (!json_is_string(name))
    return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                           "%s without a string \"name\"", type);
  if (nsj) {
    if (!json_is_string(nsj))
      return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                             "\"namespace\" of %s is not a string",
                             json_string_value(name));
    own_ns = json_string_value(nsj);
  }
  if (!m3b__avro_valid_name(json_string_value(name), 1) ||
      (*own_ns && !m3b__avro_valid_name(own_ns, 1)))
    return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                           "invalid name or namespace \"%s\"",
                           json_string_value(name));
  err = m3b__avro_fullname(json_string_value(name), own_ns, fullname,
                           sizeof(fullname));
  if (err)
    return m3b__errstr_set(err, c->errstr, c->errstr_size,
                           "name of %s is too long", type);
  if (json_object_get(c->defined, fullname))
    return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                           "type %s is defined twice", fullname);
  if (json_object_set_new(c->defined, fullname, json_true()))
    return M3B_ERR_NOMEM;
  namespace_of(fullname, inner_ns, sizeof(inner_ns));

  err = m3b_buf_append_str(c->out, "{\"name\":");
  if (!err)
    err = put_string(c->out, fullname);
  if (!err)
    err = m3b_buf_appendf(c->out, ",\"type\":\"%s\"", type);
  if (err)
    return err;

  if (strcmp(type, "record") == 0) {
    const json_t *fields = json_object_get(schema, "fields");
    size_t i;
    if (!json_is_array(fields))
      return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                             "record %s has no \"fields\" array", fullname);
    err = m3b_buf_append_str(c->out, ",\"fields\":[");
    for (i = 0; !err && i < json_array_size(fields); i++) {
      const json_t *field = json_array_get(fields, i);
      const json_t *fname = json_object_get(field, "name");
      const json_t *ftype = json_object_get(field, "type");
      if (!json_is_string(fname) || !ftype)
        return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                               "field %zu of %s needs \"name\" and \"type\"", i,
                               fullname);
      if (i)
        err = m3b_buf_append(c->out, ",", 1);
      if (!err)
        err = m3b_buf_append_str(c->out, "{\"name\":");
      if (!err)
        err = put_string(c->out, json_string_value(fname));
      if (!err)
        err = m3b_buf_append_str(c->out, ",\"type\":");
      if (!err)
        err = canon_type(c, ftype, inner_ns, depth + 1);
      if (!err)
        err = m3b_buf_append(c->out, "}", 1);
    }
    if (!err)
      err = m3b_buf_append(c->out, "]", 1);
  } else if (strcmp(type, "enum") == 0) {
    const json_t *symbols = json_object_get(schema, "symbols");
    size_t i;
    if (!json_is_array(symbols))
      return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                             "enum %s has no \"symbols\" array", fullname);
    err = m3b_buf_append_str(c->out, ",\"symbols\":[");
    for (i = 0; !err && i < json_array_size(symbols); i++) {
      const json_t *sym = json_array_get(symbols, i);
      if (!json_is_string(sym))
        return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                               "enum %s has a symbol that is not a string",
                               fullname);
      if (i)
        err = m3b_buf_append(c->out, ",", 1);
      if (!err)
        err = put_string(c->out, json_string_value(sym));
    }
    if (!err)
      err = m3b_buf_append(c->out, "]", 1);
  } else { /* fixed */
    const json_t *size = json_object_get(schema, "size");
    if (!json_is_integer(size) || json_integer_value(size) < 0)
      return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                             "fixed %s has no non-negative integer \"size\"",
                             fullname);
    err = m3b_buf_appendf(c->out, ",\"size\":%" JSON_INTEGER_FORMAT,
                          json_integer_value(size));
  }
  if (!err)
    err = m3b_buf_append(c->out, "}", 1);
  return err;
}

static m3b_err_t canon_type(struct canon *c, const json_t *schema,
                            const char *ns, int depth) {
  const char *type;
  m3b_err_t err;

  if (depth > M3B__AVRO_SCHEMA_DEPTH_MAX)
    return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                           "schema nests deeper than %d levels",
                           M3B__AVRO_SCHEMA_DEPTH_MAX);

  if (json_is_array(schema)) { /* union */
    size_t i;
    err = m3b_buf_append(c->out, "[", 1);
    for (i = 0; !err && i < json_array_size(schema); i++) {
      if (i)
        err = m3b_buf_append(c->out, ",", 1);
      if (!err)
        err = canon_type(c, json_array_get(schema, i), ns, depth + 1);
    }
    if (!err)
      err = m3b_buf_append(c->out, "]", 1);
    return err;
  }

  if (json_is_string(schema)) {
    char fullname[M3B__AVRO_NAME_MAX];
    type = json_string_value(schema);
    if (m3b__avro_is_primitive(type))
      return put_string(c->out, type);
    if (!m3b__avro_valid_name(type, 1))
      return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                             "\"%s\" is not a type name", type);
    err = m3b__avro_fullname(type, ns, fullname, sizeof(fullname));
    if (err)
      return m3b__errstr_set(err, c->errstr, c->errstr_size,
                             "type name \"%s\" is too long", type);
    return put_string(c->out, fullname);
  }

  if (!json_is_object(schema))
    return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                           "a schema must be a string, object or array");
  if (!json_is_string(json_object_get(schema, "type")))
    return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                           "schema object without a string \"type\"");
  type = json_string_value(json_object_get(schema, "type"));

  if (m3b__avro_is_primitive(type))
    return put_string(c->out, type);
  if (strcmp(type, "record") == 0 || strcmp(type, "enum") == 0 ||
      strcmp(type, "fixed") == 0)
    return canon_named(c, schema, type, ns, depth);
  if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
    const char *attr = type[0] == 'a' ? "items" : "values";
    const json_t *inner = json_object_get(schema, attr);
    if (!inner)
      return m3b__errstr_set(M3B_ERR_SCHEMA, c->errstr, c->errstr_size,
                             "%s without \"%s\"", type, attr);
    err = m3b_buf_appendf(c->out, "{\"type\":\"%s\",\"%s\":", type, attr);
    if (!err)
      err = canon_type(c, inner, ns, depth + 1);
    if (!err)
      err = m3b_buf_append(c->out, "}", 1);
    return err;
  }
  /* {"type": "SomeName"}: a reference to a named type */
  return canon_type(c, json_object_get(schema, "type"), ns, depth + 1);
}

m3b_err_t m3b__canonical_form_json(const json_t *schema, struct m3b_buf *out,
                                   char *errstr, size_t errstr_size) {
  struct canon c;
  m3b_err_t err;

  c.out = out;
  c.errstr = errstr;
  c.errstr_size = errstr_size;
  c.defined = json_object();
  if (!c.defined)
    return M3B_ERR_NOMEM;
  err = canon_type(&c, schema, "", 0);
  if (err == M3B_ERR_LIMIT)
    m3b__errstr_set(err, errstr, errstr_size,
                    "canonical form is longer than %zu bytes", out->max);
  json_decref(c.defined);
  return err;
}

m3b_err_t m3b_schema_canonical_form(const char *json, size_t len,
                                    struct m3b_buf *out, char *errstr,
                                    size_t errstr_size) {
  json_error_t jerr;
  json_t *schema;
  m3b_err_t err;

  schema =
      json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
  if (!schema)
    return m3b__errstr_set(M3B_ERR_SCHEMA, errstr, errstr_size,
                           "schema is not JSON: %s (line %d)", jerr.text,
                           jerr.line);
  err = m3b__canonical_form_json(schema, out, errstr, errstr_size);
  json_decref(schema);
  return err;
}
