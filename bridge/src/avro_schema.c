/*
 * avro_schema.c - parses Avro schema JSON into the node tree of
 * avro_schema.h, computes its canonical form and fingerprint, and checks
 * what the canonical form does not: every referenced name is defined,
 * names are valid, enum symbols and field names are unique, unions hold no
 * union and no two branches of one unnamed type, and every default value
 * fits its field (for a union: its first branch).
 */
#include "avro_schema.h"

#include <stdlib.h>
#include <string.h>

#include <m3b/buf.h>
#include <m3b/schema.h>

#include "avro_binary.h"
#include "canonical.h"
#include "errstr.h"

#define SCHEMA_TEXT_MAX ((size_t)1024 * 1024)
#define FIXED_SIZE_MAX ((json_int_t)1024 * 1024)

struct parser {
  struct m3b__avro_schema *schema;
  char *errstr;
  size_t errstr_size;
};

static const char *const kind_names[] = {
    "null",   "boolean", "int",  "long",  "float", "double", "bytes",
    "string", "record",  "enum", "array", "map",   "union",  "fixed"};

const char *m3b__avro_kind_name(enum m3b__avro_kind kind) {
  if ((size_t)kind >= sizeof(kind_names) / sizeof(kind_names[0]))
    return "unknown";
  return kind_names[kind];
}

static void type_free(struct m3b__avro_type *type) {
  size_t i;
  if (!type)
    return;
  if (type->kind == M3B__AVRO_RECORD && type->fields) {
    for (i = 0; i < type->count; i++) {
      free(type->fields[i].name);
      json_decref(type->fields[i].default_value);
    }
  }
  if (type->kind == M3B__AVRO_ENUM && type->symbols) {
    for (i = 0; i < type->count; i++)
      free(type->symbols[i]);
  }
  free(type->fields);
  free(type->symbols);
  free(type->branches);
  free(type->fullname);
  free(type);
}

void m3b__avro_schema_free(struct m3b__avro_schema *schema) {
  size_t i;
  if (!schema)
    return;
  for (i = 0; i < schema->node_count; i++)
    type_free(schema->nodes[i]);
  free(schema->nodes);
  free(schema->canonical);
  free(schema);
}

static m3b_err_t new_node(struct parser *p, enum m3b__avro_kind kind,
                          struct m3b__avro_type **type_out) {
  struct m3b__avro_schema *s = p->schema;
  struct m3b__avro_type *type;

  if (s->node_count == s->node_cap) {
    size_t cap = s->node_cap ? s->node_cap * 2 : 16;
    struct m3b__avro_type **nodes =
        realloc(s->nodes, cap * sizeof(struct m3b__avro_type *));
    if (!nodes)
      return M3B_ERR_NOMEM;
    s->nodes = nodes;
    s->node_cap = cap;
  }
  type = calloc(1, sizeof(*type));
  if (!type)
    return M3B_ERR_NOMEM;
  type->kind = kind;
  type->enum_default = -1;
  s->nodes[s->node_count++] = type;
  *type_out = type;
  return M3B_OK;
}

static struct m3b__avro_type *find_named(const struct parser *p,
                                         const char *fullname) {
  size_t i;
  for (i = 0; i < p->schema->node_count; i++) {
    struct m3b__avro_type *t = p->schema->nodes[i];
    if (t->fullname && strcmp(t->fullname, fullname) == 0)
      return t;
  }
  return NULL;
}

static int primitive_kind(const char *name, enum m3b__avro_kind *kind_out) {
  size_t i;
  for (i = 0; i <= M3B__AVRO_STRING; i++) {
    if (strcmp(name, kind_names[i]) == 0) {
      *kind_out = (enum m3b__avro_kind)i;
      return 1;
    }
  }
  return 0;
}

static m3b_err_t parse_type(struct parser *p, const json_t *json,
                            const char *ns, int depth,
                            struct m3b__avro_type **type_out);

static m3b_err_t parse_reference(struct parser *p, const char *name,
                                 const char *ns,
                                 struct m3b__avro_type **type_out) {
  char fullname[M3B__AVRO_NAME_MAX];
  enum m3b__avro_kind kind;

  if (primitive_kind(name, &kind))
    return new_node(p, kind, type_out);
  if (m3b__avro_fullname(name, ns, fullname, sizeof(fullname)))
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "type name \"%s\" is too long", name);
  *type_out = find_named(p, fullname);
  if (!*type_out)
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "unknown type \"%s\"", fullname);
  return M3B_OK;
}

static m3b_err_t parse_union(struct parser *p, const json_t *json,
                             const char *ns, int depth,
                             struct m3b__avro_type **type_out) {
  struct m3b__avro_type *type;
  size_t n = json_array_size(json);
  size_t i;
  size_t j;
  m3b_err_t err;

  err = new_node(p, M3B__AVRO_UNION, &type);
  if (err)
    return err;
  if (n == 0)
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "a union needs at least one branch");
  type->branches = calloc(n, sizeof(struct m3b__avro_type *));
  if (!type->branches)
    return M3B_ERR_NOMEM;
  type->count = n;
  for (i = 0; i < n; i++) {
    err = parse_type(p, json_array_get(json, i), ns, depth + 1,
                     &type->branches[i]);
    if (err)
      return err;
    if (!type->branches[i])
      return M3B_ERR_INTERNAL; /* parse_type sets its result on M3B_OK */
    if (type->branches[i]->kind == M3B__AVRO_UNION)
      return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                             "a union may not directly contain a union");
    for (j = 0; j < i; j++) {
      const struct m3b__avro_type *a = type->branches[j];
      const struct m3b__avro_type *b = type->branches[i];
      /* named kinds always carry a fullname; check both anyway */
      int same = a->kind == b->kind &&
                 (!a->fullname ||
                  (b->fullname && strcmp(a->fullname, b->fullname) == 0));
      if (same)
        return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                               "union has two branches of type %s",
                               a->fullname ? a->fullname
                                           : m3b__avro_kind_name(a->kind));
    }
  }
  *type_out = type;
  return M3B_OK;
}

static m3b_err_t parse_fields(struct parser *p, struct m3b__avro_type *type,
                              const json_t *fields, const char *inner_ns,
                              int depth) {
  size_t n = json_array_size(fields);
  size_t i;
  size_t j;
  m3b_err_t err;

  type->fields = calloc(n ? n : 1, sizeof(*type->fields));
  if (!type->fields)
    return M3B_ERR_NOMEM;
  for (i = 0; i < n; i++) {
    const json_t *field = json_array_get(fields, i);
    const char *name = json_string_value(json_object_get(field, "name"));
    const json_t *def = json_object_get(field, "default");
    struct m3b__avro_field *f = &type->fields[i];

    if (!name || !m3b__avro_valid_name(name, 0))
      return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                             "record %s: field %zu has an invalid name",
                             type->fullname, i);
    for (j = 0; j < i; j++) {
      if (strcmp(type->fields[j].name, name) == 0)
        return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                               "record %s: field %s appears twice",
                               type->fullname, name);
    }
    f->name = strdup(name);
    if (!f->name)
      return M3B_ERR_NOMEM;
    type->count = i + 1; /* so cleanup frees what exists */
    if (def) {
      f->default_value = json_deep_copy(def);
      if (!f->default_value)
        return M3B_ERR_NOMEM;
    }
    err = parse_type(p, json_object_get(field, "type"), inner_ns, depth + 1,
                     &f->type);
    if (err)
      return err;
  }
  type->count = n;
  return M3B_OK;
}

static m3b_err_t parse_symbols(struct parser *p, struct m3b__avro_type *type,
                               const json_t *json) {
  const json_t *symbols = json_object_get(json, "symbols");
  const json_t *def = json_object_get(json, "default");
  size_t n = json_array_size(symbols);
  size_t i;
  size_t j;

  type->symbols = calloc(n ? n : 1, sizeof(*type->symbols));
  if (!type->symbols)
    return M3B_ERR_NOMEM;
  for (i = 0; i < n; i++) {
    const char *sym = json_string_value(json_array_get(symbols, i));
    if (!sym || !m3b__avro_valid_name(sym, 0))
      return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                             "enum %s: symbol %zu is not a valid name",
                             type->fullname, i);
    for (j = 0; j < i; j++) {
      if (strcmp(type->symbols[j], sym) == 0)
        return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                               "enum %s: symbol %s appears twice",
                               type->fullname, sym);
    }
    type->symbols[i] = strdup(sym);
    if (!type->symbols[i])
      return M3B_ERR_NOMEM;
    type->count = i + 1;
    if (json_is_string(def) && strcmp(json_string_value(def), sym) == 0)
      type->enum_default = (long)i;
  }
  if (n == 0)
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "enum %s has no symbols", type->fullname);
  if (def && type->enum_default < 0)
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "enum %s: default is not one of its symbols",
                           type->fullname);
  return M3B_OK;
}

static m3b_err_t parse_named(struct parser *p, const json_t *json,
                             enum m3b__avro_kind kind, const char *ns,
                             int depth, struct m3b__avro_type **type_out) {
  const char *name = json_string_value(json_object_get(json, "name"));
  const json_t *nsj = json_object_get(json, "namespace");
  const char *own_ns = json_is_string(nsj) ? json_string_value(nsj) : ns;
  char fullname[M3B__AVRO_NAME_MAX];
  const char *dot;
  struct m3b__avro_type *type;
  m3b_err_t err;

  /* canonical form already checked name and namespace syntax */
  if (!name || m3b__avro_fullname(name, own_ns, fullname, sizeof(fullname)))
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "named type without a usable name");
  if (find_named(p, fullname))
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "type %s is defined twice", fullname);
  err = new_node(p, kind, &type);
  if (err)
    return err;
  type->fullname = strdup(fullname);
  if (!type->fullname)
    return M3B_ERR_NOMEM;
  dot = strrchr(type->fullname, '.');
  type->name = dot ? dot + 1 : type->fullname;
  *type_out = type;

  if (kind == M3B__AVRO_RECORD) {
    char inner_ns[M3B__AVRO_NAME_MAX];
    size_t ns_len = (size_t)(type->name - type->fullname);
    ns_len = ns_len ? ns_len - 1 : 0;
    memcpy(inner_ns, type->fullname, ns_len);
    inner_ns[ns_len] = 0;
    return parse_fields(p, type, json_object_get(json, "fields"), inner_ns,
                        depth);
  }
  if (kind == M3B__AVRO_ENUM)
    return parse_symbols(p, type, json);
  /* fixed */
  if (json_integer_value(json_object_get(json, "size")) > FIXED_SIZE_MAX)
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "fixed %s is larger than %" JSON_INTEGER_FORMAT
                           " bytes",
                           fullname, FIXED_SIZE_MAX);
  type->count = (size_t)json_integer_value(json_object_get(json, "size"));
  return M3B_OK;
}

static m3b_err_t parse_type(struct parser *p, const json_t *json,
                            const char *ns, int depth,
                            struct m3b__avro_type **type_out) {
  const char *type;
  enum m3b__avro_kind kind;
  m3b_err_t err;

  *type_out = NULL;
  if (depth > M3B__AVRO_SCHEMA_DEPTH_MAX)
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "schema nests too deep");
  if (json_is_string(json))
    return parse_reference(p, json_string_value(json), ns, type_out);
  if (json_is_array(json))
    return parse_union(p, json, ns, depth, type_out);
  type = json_string_value(json_object_get(json, "type"));
  if (!type)
    return m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                           "schema object without a string \"type\"");
  if (primitive_kind(type, &kind))
    return new_node(p, kind, type_out);
  if (strcmp(type, "record") == 0)
    return parse_named(p, json, M3B__AVRO_RECORD, ns, depth, type_out);
  if (strcmp(type, "enum") == 0)
    return parse_named(p, json, M3B__AVRO_ENUM, ns, depth, type_out);
  if (strcmp(type, "fixed") == 0)
    return parse_named(p, json, M3B__AVRO_FIXED, ns, depth, type_out);
  if (strcmp(type, "array") == 0 || strcmp(type, "map") == 0) {
    struct m3b__avro_type *node;
    kind = type[0] == 'a' ? M3B__AVRO_ARRAY : M3B__AVRO_MAP;
    err = new_node(p, kind, &node);
    if (err)
      return err;
    *type_out = node;
    return parse_type(
        p, json_object_get(json, kind == M3B__AVRO_ARRAY ? "items" : "values"),
        ns, depth + 1, &node->items);
  }
  return parse_reference(p, type, ns, type_out);
}

/* Every default must encode as its field's type (a union's first branch). */
static m3b_err_t check_defaults(struct parser *p) {
  struct m3b_buf scratch;
  size_t i;
  size_t j;
  m3b_err_t err = M3B_OK;

  m3b_buf_init(&scratch, SCHEMA_TEXT_MAX);
  for (i = 0; !err && i < p->schema->node_count; i++) {
    const struct m3b__avro_type *t = p->schema->nodes[i];
    if (t->kind != M3B__AVRO_RECORD)
      continue;
    for (j = 0; !err && j < t->count; j++) {
      const struct m3b__avro_field *f = &t->fields[j];
      const struct m3b__avro_type *ft = f->type;
      char detail[160];
      if (!f->default_value)
        continue;
      if (ft->kind == M3B__AVRO_UNION)
        ft = ft->branches[0];
      m3b_buf_reset(&scratch);
      err = m3b__avro_encode(ft, f->default_value, NULL, &scratch, detail,
                             sizeof(detail));
      if (err)
        err = m3b__errstr_set(M3B_ERR_SCHEMA, p->errstr, p->errstr_size,
                              "record %s: default of field %s does not fit "
                              "its type: %s",
                              t->fullname, f->name, detail);
    }
  }
  m3b_buf_cleanup(&scratch);
  return err;
}

m3b_err_t m3b__avro_schema_parse(const char *json, size_t len,
                                 struct m3b__avro_schema **schema_out,
                                 char *errstr, size_t errstr_size) {
  struct parser p;
  struct m3b_buf canonical;
  json_error_t jerr;
  json_t *doc = NULL;
  uint8_t *text = NULL;
  size_t text_len = 0;
  m3b_err_t err;

  *schema_out = NULL;
  m3b_buf_init(&canonical, SCHEMA_TEXT_MAX);
  p.errstr = errstr;
  p.errstr_size = errstr_size;
  p.schema = calloc(1, sizeof(*p.schema));
  if (!p.schema) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  if (len > SCHEMA_TEXT_MAX) {
    err = m3b__errstr_set(M3B_ERR_LIMIT, errstr, errstr_size,
                          "schema text is longer than %zu bytes",
                          SCHEMA_TEXT_MAX);
    goto out;
  }
  doc = json_loadb(json, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
  if (!doc) {
    err = m3b__errstr_set(M3B_ERR_SCHEMA, errstr, errstr_size,
                          "schema is not JSON: %s (line %d)", jerr.text,
                          jerr.line);
    goto out;
  }
  err = m3b__canonical_form_json(doc, &canonical, errstr, errstr_size);
  if (err)
    goto out;
  err = parse_type(&p, doc, "", 0, &p.schema->root);
  if (err)
    goto out;
  err = check_defaults(&p);
  if (err)
    goto out;
  err = m3b_buf_detach(&canonical, &text, &text_len);
  if (err)
    goto out;
  p.schema->canonical = (char *)text;
  p.schema->fingerprint = m3b_schema_fingerprint(text, text_len);
  *schema_out = p.schema;
  p.schema = NULL;
out:
  m3b__avro_schema_free(p.schema);
  m3b_buf_cleanup(&canonical);
  json_decref(doc);
  return err;
}
