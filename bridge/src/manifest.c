/*
 * manifest.c - the manifest reader of m3bridge-publisher (<m3b/manifest.h>):
 * files, directories and streams of YAML or JSON turned into a list of
 * jansson objects, each with the path and line it came from.
 *
 * An input is read whole into a bounded buffer, then parsed: JSON with
 * jansson (several concatenated objects allowed), YAML with libyaml's event
 * API so that every node, key and error has a line. YAML scalars are
 * resolved the way kubectl (sigs.k8s.io/yaml on go-yaml v2) resolves them;
 * the rules are listed in manifest.h. Every read is all-or-nothing: on
 * error the set is truncated back to what it held before the call.
 */
#include <m3b/manifest.h>

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sys/stat.h>
#include <yaml.h>

#include <m3b/buf.h>

#include "errstr.h"

struct manifest_doc {
  json_t *json;     /* owned reference */
  const char *path; /* points into set->paths */
  size_t line;
};

struct m3b_manifest_set {
  size_t max_doc_bytes;
  size_t max_docs;
  struct manifest_doc *docs;
  size_t doc_count;
  size_t doc_cap;
  char **paths; /* owned; one per input read */
  size_t path_count;
  size_t path_cap;
};

/* One file or stream being parsed. */
struct input {
  m3b_manifest_set_t *set;
  const char *path; /* owned by set->paths */
  const uint8_t *data;
  size_t len;
  char *errstr;
  size_t errstr_size;
};

enum input_format { FORMAT_SNIFF, FORMAT_JSON, FORMAT_YAML };

/* Lines of the elements of the top-level "items" sequence of a YAML
 * document, so that List items keep their own line. */
struct line_list {
  size_t *lines;
  size_t count;
  size_t cap;
};

struct anchor {
  char *name;    /* owned */
  json_t *value; /* owned reference */
};

struct yaml_reader {
  struct input *in;
  yaml_parser_t parser;
  yaml_event_t event;
  int have_event;
  struct anchor *anchors;
  size_t anchor_count;
  size_t anchor_cap;
  size_t alias_nodes; /* nodes added by alias copies in this document */
  struct line_list item_lines;
};

/* Grows *items (of elem_size bytes each) so that it holds at least need. */
static m3b_err_t grow(void **items, size_t *cap, size_t need,
                      size_t elem_size) {
  size_t new_cap;
  void *grown;

  if (need <= *cap)
    return M3B_OK;
  new_cap = *cap ? *cap : 8;
  while (new_cap < need) {
    if (new_cap > SIZE_MAX / 2)
      return M3B_ERR_NOMEM;
    new_cap *= 2;
  }
  if (new_cap > SIZE_MAX / elem_size)
    return M3B_ERR_NOMEM;
  grown = realloc(*items, new_cap * elem_size);
  if (!grown)
    return M3B_ERR_NOMEM;
  *items = grown;
  *cap = new_cap;
  return M3B_OK;
}

static size_t mul_saturating(size_t a, size_t b) {
  if (a && b > SIZE_MAX / a)
    return SIZE_MAX;
  return a * b;
}

static size_t count_newlines(const uint8_t *data, size_t len) {
  size_t lines = 0;
  size_t i;
  for (i = 0; i < len; i++)
    lines += data[i] == '\n';
  return lines;
}

static const char *json_type_name(const json_t *json) {
  switch (json_typeof(json)) {
  case JSON_OBJECT: return "mapping";
  case JSON_ARRAY: return "sequence";
  case JSON_STRING: return "string";
  case JSON_INTEGER:
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  case JSON_NULL: return "null";
  }
  return "value";
}

/* ---- the set ---------------------------------------------------------- */

m3b_manifest_set_t *m3b_manifest_set_new(size_t max_doc_bytes,
                                         size_t max_docs) {
  m3b_manifest_set_t *set;
  assert(max_doc_bytes > 0 && max_docs > 0);
  set = calloc(1, sizeof(*set));
  if (!set)
    return NULL;
  set->max_doc_bytes = max_doc_bytes;
  set->max_docs = max_docs;
  return set;
}

/* Drops the documents and paths added after doc_count and path_count. */
static void truncate_set(m3b_manifest_set_t *set, size_t doc_count,
                         size_t path_count) {
  while (set->doc_count > doc_count)
    json_decref(set->docs[--set->doc_count].json);
  while (set->path_count > path_count)
    free(set->paths[--set->path_count]);
}

void m3b_manifest_set_destroy(m3b_manifest_set_t *set) {
  if (!set)
    return;
  truncate_set(set, 0, 0);
  free(set->docs);
  free(set->paths);
  free(set);
}

size_t m3b_manifest_count(const m3b_manifest_set_t *set) {
  assert(set);
  return set->doc_count;
}

void m3b_manifest_get(const m3b_manifest_set_t *set, size_t i,
                      json_t **json_out, const char **path_out,
                      size_t *line_out) {
  assert(set && i < set->doc_count);
  if (json_out)
    *json_out = set->docs[i].json;
  if (path_out)
    *path_out = set->docs[i].path;
  if (line_out)
    *line_out = set->docs[i].line;
}

static m3b_err_t add_path(m3b_manifest_set_t *set, const char *path,
                          const char **path_out) {
  char *copy;
  m3b_err_t err = grow((void **)&set->paths, &set->path_cap,
                       set->path_count + 1, sizeof(*set->paths));
  if (err)
    return err;
  copy = strdup(path);
  if (!copy)
    return M3B_ERR_NOMEM;
  set->paths[set->path_count++] = copy;
  *path_out = copy;
  return M3B_OK;
}

/* ---- documents -------------------------------------------------------- */

struct size_counter {
  size_t bytes;
  size_t max;
  int over;
};

static int count_bytes(const char *buffer, size_t size, void *data) {
  struct size_counter *counter = data;
  (void)buffer;
  if (size > counter->max - counter->bytes) {
    counter->over = 1;
    return -1;
  }
  counter->bytes += size;
  return 0;
}

/* Appends one object (a reference is taken) after checking the limits. */
static m3b_err_t append_doc(struct input *in, json_t *json, size_t line) {
  m3b_manifest_set_t *set = in->set;
  struct size_counter counter = {0, set->max_doc_bytes, 0};
  m3b_err_t err;

  if (set->doc_count >= set->max_docs)
    return m3b__errstr_set(M3B_ERR_LIMIT, in->errstr, in->errstr_size,
                           "%s:%zu: more than %zu documents", in->path, line,
                           set->max_docs);
  if (json_dump_callback(json, count_bytes, &counter, JSON_COMPACT) != 0) {
    if (!counter.over)
      return M3B_ERR_NOMEM; /* jansson failed on its own, not our limit */
    return m3b__errstr_set(M3B_ERR_LIMIT, in->errstr, in->errstr_size,
                           "%s:%zu: document is larger than %zu bytes as JSON",
                           in->path, line, set->max_doc_bytes);
  }
  err = grow((void **)&set->docs, &set->doc_cap, set->doc_count + 1,
             sizeof(*set->docs));
  if (err)
    return err;
  set->docs[set->doc_count].json = json_incref(json);
  set->docs[set->doc_count].path = in->path;
  set->docs[set->doc_count].line = line;
  set->doc_count++;
  return M3B_OK;
}

static int is_list(const json_t *object) {
  const char *kind = json_string_value(json_object_get(object, "kind"));
  return kind && strcmp(kind, "List") == 0;
}

/* Adds a parsed document (borrowed): skipped when null, expanded when it is
 * a List. item_lines (may be NULL) holds the lines of the List's items. */
static m3b_err_t add_document(struct input *in, json_t *root, size_t line,
                              const struct line_list *item_lines) {
  json_t *items;
  json_t *item;
  size_t i;
  m3b_err_t err;

  if (json_is_null(root))
    return M3B_OK;
  if (!json_is_object(root))
    return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                           "%s:%zu: document is a %s, not a mapping", in->path,
                           line, json_type_name(root));
  if (!is_list(root))
    return append_doc(in, root, line);

  items = json_object_get(root, "items");
  if (!items || json_is_null(items))
    return M3B_OK;
  if (!json_is_array(items))
    return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                           "%s:%zu: List items is a %s, not a sequence",
                           in->path, line, json_type_name(items));
  json_array_foreach(items, i, item) {
    size_t item_line = line;
    if (item_lines && i < item_lines->count)
      item_line = item_lines->lines[i];
    if (!json_is_object(item))
      return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                             "%s:%zu: List item %zu is a %s, not a mapping",
                             in->path, item_line, i, json_type_name(item));
    if (is_list(item))
      return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                             "%s:%zu: List item %zu is itself a List (nested "
                             "Lists are not supported)",
                             in->path, item_line, i);
    err = append_doc(in, item, item_line);
    if (err)
      return err;
  }
  return M3B_OK;
}

/* ---- scalars ---------------------------------------------------------- */

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int in_words(const char *text, const char *const *words) {
  for (; *words; words++)
    if (strcmp(text, *words) == 0)
      return 1;
  return 0;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"y",   "Y",    "yes",  "Yes",
                                         "YES", "true", "True", "TRUE",
                                         "on",  "On",   "ON",   NULL};
static const char *const false_words[] = {"n",   "N",     "no",    "No",
                                          "NO",  "false", "False", "FALSE",
                                          "off", "Off",   "OFF",   NULL};
static const char *const not_json_words[] = {
    ".nan",  ".NaN",  ".NAN",  ".inf",  ".Inf",  ".INF", "+.inf",
    "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", NULL};

enum int_parse { INT_OK, INT_SYNTAX, INT_RANGE };

static int digit_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Go's strconv.ParseInt(text, 0, 64): optional sign, then 0x/0X hex, 0b/0B
 * binary, 0o/0O or a leading 0 octal, else decimal. */
static enum int_parse parse_go_int(const char *text, int64_t *value_out) {
  const char *p = text;
  int negative = 0;
  unsigned base = 10;
  uint64_t limit;
  uint64_t acc = 0;
  int overflow = 0;

  if (*p == '+' || *p == '-') {
    negative = *p == '-';
    p++;
  }
  if (p[0] == '0' && p[1]) {
    if (p[1] == 'x' || p[1] == 'X') {
      base = 16;
      p += 2;
    } else if (p[1] == 'b' || p[1] == 'B') {
      base = 2;
      p += 2;
    } else if (p[1] == 'o' || p[1] == 'O') {
      base = 8;
      p += 2;
    } else {
      base = 8;
      p += 1;
    }
  }
  if (!*p)
    return INT_SYNTAX;
  limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; *p; p++) {
    int digit = digit_value(*p);
    if (digit < 0 || (unsigned)digit >= base)
      return INT_SYNTAX;
    if (overflow || acc > (limit - (unsigned)digit) / base)
      overflow = 1;
    else
      acc = acc * base + (unsigned)digit;
  }
  if (overflow)
    return INT_RANGE;
  if (negative)
    *value_out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
  else
    *value_out = (int64_t)acc;
  return INT_OK;
}

/* go-yaml's float pattern: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
 */
static int is_yaml_float(const char *p) {
  if (*p == '+' || *p == '-')
    p++;
  if (*p == '.') {
    p++;
    if (!is_digit(*p))
      return 0;
    while (is_digit(*p))
      p++;
  } else {
    if (!is_digit(*p))
      return 0;
    while (is_digit(*p))
      p++;
    if (*p == '.') {
      p++;
      while (is_digit(*p))
        p++;
    }
  }
  if (*p == 'e' || *p == 'E') {
    p++;
    if (*p == '+' || *p == '-')
      p++;
    if (!is_digit(*p))
      return 0;
    while (is_digit(*p))
      p++;
  }
  return *p == '\0';
}

/* strtod of a text that matched is_yaml_float (modified in place to the
 * current locale's decimal point, as jansson does). 0 when not finite. */
static int parse_double(char *text, double *value_out) {
  const char *point = localeconv()->decimal_point;
  char *dot = strchr(text, '.');
  double value;

  if (dot && point && point[0] && !point[1])
    *dot = point[0];
  errno = 0;
  value = strtod(text, NULL);
  if (errno == ERANGE && (value > 1.0 || value < -1.0))
    return 0;
  *value_out = value;
  return 1;
}

/* A finite double as kubectl ends up sending it: integral values within
 * int64 are integers. */
static json_t *number_json(double value) {
  if (value >= -9223372036854775808.0 && value < 9223372036854775808.0 &&
      (double)(json_int_t)value == value)
    return json_integer((json_int_t)value);
  return json_real(value);
}

static m3b_err_t bad_scalar(struct input *in, size_t line, const char *what,
                            const char *text) {
  return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                         "%s:%zu: %s '%.64s'", in->path, line, what, text);
}

/* Resolves a plain, untagged scalar text (NUL-terminated, no embedded NUL)
 * into *value_out. */
static m3b_err_t resolve_plain(struct input *in, size_t line, const char *text,
                               json_t **value_out) {
  char *number_text = NULL;
  size_t in_len;
  size_t out_len = 0;
  size_t i;
  int64_t integer;
  double real;
  m3b_err_t err = M3B_OK;

  if (in_words(text, null_words)) {
    *value_out = json_null();
    return M3B_OK;
  }
  if (in_words(text, true_words)) {
    *value_out = json_true();
    return M3B_OK;
  }
  if (in_words(text, false_words)) {
    *value_out = json_false();
    return M3B_OK;
  }
  if (in_words(text, not_json_words))
    return bad_scalar(in, line, "not representable in JSON:", text);

  in_len = strlen(text);
  *value_out = NULL;
  if (is_digit(text[0]) || text[0] == '+' || text[0] == '-') {
    /* go-yaml removes every '_' before trying numbers */
    number_text = malloc(in_len + 1);
    if (!number_text)
      return M3B_ERR_NOMEM;
    for (i = 0; i < in_len; i++)
      if (text[i] != '_')
        number_text[out_len++] = text[i];
    number_text[out_len] = '\0';
    switch (parse_go_int(number_text, &integer)) {
    case INT_OK: *value_out = json_integer(integer); break;
    case INT_RANGE:
      err = bad_scalar(in, line, "integer out of 64-bit range:", text);
      goto out;
    case INT_SYNTAX:
      if (is_yaml_float(number_text) && parse_double(number_text, &real))
        *value_out = number_json(real);
      break;
    }
  } else if (text[0] == '.' && !strchr(text, '_') && is_yaml_float(text)) {
    number_text = strdup(text);
    if (!number_text)
      return M3B_ERR_NOMEM;
    if (parse_double(number_text, &real))
      *value_out = number_json(real);
  }
  if (!*value_out)
    *value_out = json_string(text);
  if (!*value_out)
    err = M3B_ERR_NOMEM;
out:
  free(number_text);
  return err;
}

/* ---- JSON input ------------------------------------------------------- */

static size_t skip_blank(const uint8_t *data, size_t len, size_t off) {
  while (off < len && (data[off] == ' ' || data[off] == '\t' ||
                       data[off] == '\r' || data[off] == '\n'))
    off++;
  return off;
}

static size_t skip_bom(const uint8_t *data, size_t len) {
  if (len >= 3 && data[0] == 0xEF && data[1] == 0xBB && data[2] == 0xBF)
    return 3;
  return 0;
}

/* Turns integral reals within int64 into integers, as for YAML, and
 * enforces the depth limit. */
static m3b_err_t normalize_json(struct input *in, json_t *json, size_t depth,
                                size_t line) {
  const char *key;
  json_t *child;
  size_t i;
  m3b_err_t err;

  if (!json_is_object(json) && !json_is_array(json))
    return M3B_OK;
  if (depth >= M3B_MANIFEST_MAX_DEPTH)
    return m3b__errstr_set(M3B_ERR_LIMIT, in->errstr, in->errstr_size,
                           "%s:%zu: nesting deeper than %d levels", in->path,
                           line, M3B_MANIFEST_MAX_DEPTH);
  if (json_is_object(json)) {
    json_object_foreach(json, key, child) {
      if (json_is_real(child)) {
        if (json_object_set_new(json, key, number_json(json_real_value(child))))
          return M3B_ERR_NOMEM;
        continue;
      }
      err = normalize_json(in, child, depth + 1, line);
      if (err)
        return err;
    }
    return M3B_OK;
  }
  json_array_foreach(json, i, child) {
    if (json_is_real(child)) {
      if (json_array_set_new(json, i, number_json(json_real_value(child))))
        return M3B_ERR_NOMEM;
      continue;
    }
    err = normalize_json(in, child, depth + 1, line);
    if (err)
      return err;
  }
  return M3B_OK;
}

static m3b_err_t read_json(struct input *in) {
  size_t off = skip_bom(in->data, in->len);
  size_t counted = 0;
  size_t line = 1;
  json_error_t json_error;
  json_t *root;
  m3b_err_t err = M3B_OK;

  for (;;) {
    off = skip_blank(in->data, in->len, off);
    if (off >= in->len)
      break;
    line += count_newlines(in->data + counted, off - counted);
    counted = off;
    root = json_loadb((const char *)in->data + off, in->len - off,
                      JSON_REJECT_DUPLICATES | JSON_DISABLE_EOF_CHECK,
                      &json_error);
    if (!root) {
      size_t error_line = line;
      if (json_error.line > 0)
        error_line += (size_t)json_error.line - 1;
      return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                             "%s:%zu: invalid JSON: %s", in->path, error_line,
                             json_error.text);
    }
    if (json_error.position <= 0) {
      json_decref(root);
      return M3B_ERR_INTERNAL;
    }
    off += (size_t)json_error.position;
    err = normalize_json(in, root, 0, line);
    if (!err)
      err = add_document(in, root, line, NULL);
    json_decref(root);
    if (err)
      return err;
  }
  return M3B_OK;
}

/* ---- YAML input ------------------------------------------------------- */

static size_t event_line(const yaml_event_t *event) {
  return event->start_mark.line + 1;
}

static m3b_err_t yaml_error(struct yaml_reader *r) {
  const yaml_parser_t *parser = &r->parser;
  struct input *in = r->in;
  const char *problem = parser->problem ? parser->problem : "unknown error";
  size_t line;

  if (parser->error == YAML_MEMORY_ERROR)
    return M3B_ERR_NOMEM;
  if (parser->error == YAML_READER_ERROR) {
    /* reader errors (bad UTF-8) carry a byte offset, not a mark */
    line = 1 + count_newlines(in->data, parser->problem_offset < in->len
                                            ? parser->problem_offset
                                            : in->len);
    if (parser->problem_value != -1)
      m3b__errstr(in->errstr, in->errstr_size,
                  "%s:%zu: invalid YAML: %s (byte 0x%02x)", in->path, line,
                  problem, (unsigned)parser->problem_value);
    else
      m3b__errstr(in->errstr, in->errstr_size, "%s:%zu: invalid YAML: %s",
                  in->path, line, problem);
  } else if (parser->context) {
    m3b__errstr(in->errstr, in->errstr_size,
                "%s:%zu: invalid YAML: %s (%s at line %zu)", in->path,
                parser->problem_mark.line + 1, problem, parser->context,
                parser->context_mark.line + 1);
  } else {
    m3b__errstr(in->errstr, in->errstr_size, "%s:%zu: invalid YAML: %s",
                in->path, parser->problem_mark.line + 1, problem);
  }
  return M3B_ERR_BAD_MANIFEST;
}

static m3b_err_t next_event(struct yaml_reader *r) {
  if (r->have_event) {
    yaml_event_delete(&r->event);
    r->have_event = 0;
  }
  if (!yaml_parser_parse(&r->parser, &r->event))
    return yaml_error(r);
  r->have_event = 1;
  return M3B_OK;
}

static void clear_anchors(struct yaml_reader *r) {
  while (r->anchor_count > 0) {
    r->anchor_count--;
    free(r->anchors[r->anchor_count].name);
    json_decref(r->anchors[r->anchor_count].value);
  }
}

/* Remembers value (a reference is taken) under name (taken). */
static m3b_err_t add_anchor(struct yaml_reader *r, char *name, json_t *value) {
  m3b_err_t err = grow((void **)&r->anchors, &r->anchor_cap,
                       r->anchor_count + 1, sizeof(*r->anchors));
  if (err) {
    free(name);
    return err;
  }
  r->anchors[r->anchor_count].name = name;
  r->anchors[r->anchor_count].value = json_incref(value);
  r->anchor_count++;
  return M3B_OK;
}

/* Number of nodes and depth of containers of a tree built by this reader
 * (so no deeper than M3B_MANIFEST_MAX_DEPTH). */
static void measure_tree(const json_t *json, size_t *nodes, size_t *depth) {
  const char *key;
  json_t *child;
  size_t i;
  size_t deepest = 0;

  (*nodes)++;
  *depth = 0;
  if (json_is_object(json)) {
    json_object_foreach((json_t *)json, key, child) {
      size_t child_depth;
      measure_tree(child, nodes, &child_depth);
      if (child_depth > deepest)
        deepest = child_depth;
    }
    *depth = deepest + 1;
  } else if (json_is_array(json)) {
    json_array_foreach(json, i, child) {
      size_t child_depth;
      measure_tree(child, nodes, &child_depth);
      if (child_depth > deepest)
        deepest = child_depth;
    }
    *depth = deepest + 1;
  }
}

static m3b_err_t copy_alias(struct yaml_reader *r, size_t depth,
                            json_t **value_out) {
  struct input *in = r->in;
  const char *name = (const char *)r->event.data.alias.anchor;
  size_t line = event_line(&r->event);
  size_t budget = in->set->max_doc_bytes;
  size_t nodes = 0;
  size_t tree_depth;
  const struct anchor *anchor = NULL;
  size_t i;

  for (i = r->anchor_count; i > 0; i--) {
    if (strcmp(r->anchors[i - 1].name, name) == 0) {
      anchor = &r->anchors[i - 1];
      break;
    }
  }
  if (!anchor)
    return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                           "%s:%zu: alias '*%.64s' has no anchor before it",
                           in->path, line, name);
  measure_tree(anchor->value, &nodes, &tree_depth);
  if (depth + tree_depth > M3B_MANIFEST_MAX_DEPTH)
    return m3b__errstr_set(M3B_ERR_LIMIT, in->errstr, in->errstr_size,
                           "%s:%zu: nesting deeper than %d levels", in->path,
                           line, M3B_MANIFEST_MAX_DEPTH);
  if (nodes > budget - r->alias_nodes)
    return m3b__errstr_set(M3B_ERR_LIMIT, in->errstr, in->errstr_size,
                           "%s:%zu: aliases expand to more than %zu nodes",
                           in->path, line, budget);
  r->alias_nodes += nodes;
  *value_out = json_deep_copy(anchor->value);
  return *value_out ? M3B_OK : M3B_ERR_NOMEM;
}

static m3b_err_t convert_scalar(struct yaml_reader *r, json_t **value_out) {
  struct input *in = r->in;
  const yaml_event_t *event = &r->event;
  const char *text = (const char *)event->data.scalar.value;
  size_t length = event->data.scalar.length;
  const char *tag = (const char *)event->data.scalar.tag;
  size_t line = event_line(event);

  if (memchr(text, '\0', length))
    return m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                           "%s:%zu: string contains a NUL character", in->path,
                           line);
  if (tag && strcmp(tag, YAML_STR_TAG) != 0 && strcmp(tag, "!") != 0)
    return bad_scalar(in, line, "unsupported tag (only !!str):", tag);
  if (tag || event->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) {
    *value_out = json_stringn(text, length);
    return *value_out ? M3B_OK : M3B_ERR_NOMEM;
  }
  return resolve_plain(in, line, text, value_out);
}

static m3b_err_t check_collection(struct yaml_reader *r, const char *tag,
                                  const char *expected_tag, size_t depth) {
  struct input *in = r->in;
  size_t line = event_line(&r->event);
  if (tag && strcmp(tag, expected_tag) != 0 && strcmp(tag, "!") != 0)
    return bad_scalar(in, line, "unsupported tag:", tag);
  if (depth >= M3B_MANIFEST_MAX_DEPTH)
    return m3b__errstr_set(M3B_ERR_LIMIT, in->errstr, in->errstr_size,
                           "%s:%zu: nesting deeper than %d levels", in->path,
                           line, M3B_MANIFEST_MAX_DEPTH);
  return M3B_OK;
}

static m3b_err_t parse_node(struct yaml_reader *r, size_t depth,
                            struct line_list *item_lines, json_t **value_out);

static m3b_err_t parse_sequence(struct yaml_reader *r, size_t depth,
                                struct line_list *item_lines,
                                json_t **value_out) {
  json_t *array;
  json_t *item;
  m3b_err_t err = check_collection(
      r, (const char *)r->event.data.sequence_start.tag, YAML_SEQ_TAG, depth);
  if (err)
    return err;
  array = json_array();
  if (!array)
    return M3B_ERR_NOMEM;
  for (;;) {
    err = next_event(r);
    if (err)
      goto out;
    if (r->event.type == YAML_SEQUENCE_END_EVENT)
      break;
    if (item_lines) {
      err = grow((void **)&item_lines->lines, &item_lines->cap,
                 item_lines->count + 1, sizeof(*item_lines->lines));
      if (err)
        goto out;
      item_lines->lines[item_lines->count++] = event_line(&r->event);
    }
    err = parse_node(r, depth + 1, NULL, &item);
    if (err)
      goto out;
    if (json_array_append_new(array, item)) {
      err = M3B_ERR_NOMEM;
      goto out;
    }
  }
out:
  if (err)
    json_decref(array);
  else
    *value_out = array;
  return err;
}

static int is_merge_key(const yaml_event_t *event) {
  return event->type == YAML_SCALAR_EVENT &&
         event->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
         !event->data.scalar.tag && event->data.scalar.length == 2 &&
         memcmp(event->data.scalar.value, "<<", 2) == 0;
}

/* The JSON key for a converted YAML key node, as sigs.k8s.io/yaml makes
 * it; small texts go to number_buf. */
static m3b_err_t key_text(struct input *in, const json_t *key, size_t line,
                          char *number_buf, size_t number_buf_size,
                          const char **text_out) {
  switch (json_typeof(key)) {
  case JSON_STRING:
    *text_out = json_string_value(key);
    return *text_out ? M3B_OK : M3B_ERR_INTERNAL;
  case JSON_INTEGER:
    snprintf(number_buf, number_buf_size, "%" JSON_INTEGER_FORMAT,
             json_integer_value(key));
    *text_out = number_buf;
    return M3B_OK;
  case JSON_TRUE: *text_out = "true"; return M3B_OK;
  case JSON_FALSE: *text_out = "false"; return M3B_OK;
  default:
    m3b__errstr(in->errstr, in->errstr_size,
                "%s:%zu: mapping key is a %s (keys must be strings, integers "
                "or booleans)",
                in->path, line, json_type_name(key));
    return M3B_ERR_BAD_MANIFEST;
  }
}

static m3b_err_t parse_mapping(struct yaml_reader *r, size_t depth,
                               json_t **value_out) {
  struct input *in = r->in;
  json_t *object;
  json_t *key = NULL;
  json_t *value;
  const char *text = NULL;
  char number_buf[32];
  size_t line;
  m3b_err_t err = check_collection(
      r, (const char *)r->event.data.mapping_start.tag, YAML_MAP_TAG, depth);
  if (err)
    return err;
  object = json_object();
  if (!object)
    return M3B_ERR_NOMEM;
  for (;;) {
    err = next_event(r);
    if (err)
      goto out;
    if (r->event.type == YAML_MAPPING_END_EVENT)
      break;
    line = event_line(&r->event);
    if (is_merge_key(&r->event)) {
      err = m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                            "%s:%zu: merge keys (<<) are not supported",
                            in->path, line);
      goto out;
    }
    err = parse_node(r, depth + 1, NULL, &key);
    if (err)
      goto out;
    err = key_text(in, key, line, number_buf, sizeof(number_buf), &text);
    if (err)
      goto out;
    if (json_object_get(object, text)) {
      err = m3b__errstr_set(M3B_ERR_BAD_MANIFEST, in->errstr, in->errstr_size,
                            "%s:%zu: duplicate key '%.64s'", in->path, line,
                            text);
      goto out;
    }
    err = next_event(r);
    if (err)
      goto out;
    err = parse_node(r, depth + 1,
                     depth == 0 && strcmp(text, "items") == 0 ? &r->item_lines
                                                              : NULL,
                     &value);
    if (err)
      goto out;
    if (json_object_set_new(object, text, value)) {
      err = M3B_ERR_NOMEM;
      goto out;
    }
    json_decref(key);
    key = NULL;
  }
out:
  json_decref(key);
  if (err)
    json_decref(object);
  else
    *value_out = object;
  return err;
}

/* Converts the node starting at the current event; on return the current
 * event is the node's last one. */
static m3b_err_t parse_node(struct yaml_reader *r, size_t depth,
                            struct line_list *item_lines, json_t **value_out) {
  const yaml_event_t *event = &r->event;
  const yaml_char_t *anchor = NULL;
  char *anchor_name = NULL;
  json_t *value = NULL;
  m3b_err_t err;

  switch (event->type) {
  case YAML_ALIAS_EVENT: return copy_alias(r, depth, value_out);
  case YAML_SCALAR_EVENT: anchor = event->data.scalar.anchor; break;
  case YAML_SEQUENCE_START_EVENT:
    anchor = event->data.sequence_start.anchor;
    break;
  case YAML_MAPPING_START_EVENT:
    anchor = event->data.mapping_start.anchor;
    break;
  default:
    return m3b__errstr_set(M3B_ERR_INTERNAL, r->in->errstr, r->in->errstr_size,
                           "%s:%zu: unexpected YAML event %d", r->in->path,
                           event_line(event), (int)event->type);
  }
  if (anchor) {
    anchor_name = strdup((const char *)anchor);
    if (!anchor_name)
      return M3B_ERR_NOMEM;
  }
  if (event->type == YAML_SCALAR_EVENT)
    err = convert_scalar(r, &value);
  else if (event->type == YAML_SEQUENCE_START_EVENT)
    err = parse_sequence(r, depth, item_lines, &value);
  else
    err = parse_mapping(r, depth, &value);
  if (!err && anchor_name) {
    err = add_anchor(r, anchor_name, value);
    anchor_name = NULL;
  }
  free(anchor_name);
  if (err) {
    json_decref(value);
    return err;
  }
  *value_out = value;
  return M3B_OK;
}

static m3b_err_t read_yaml(struct input *in) {
  struct yaml_reader r;
  json_t *root = NULL;
  size_t line;
  m3b_err_t err;

  memset(&r, 0, sizeof(r));
  r.in = in;
  if (!yaml_parser_initialize(&r.parser))
    return M3B_ERR_NOMEM;
  yaml_parser_set_input_string(&r.parser, in->data, in->len);
  err = next_event(&r); /* STREAM-START */
  while (!err) {
    err = next_event(&r);
    if (err || r.event.type == YAML_STREAM_END_EVENT)
      break;
    /* DOCUMENT-START, then the root node */
    err = next_event(&r);
    if (err)
      break;
    line = event_line(&r.event);
    r.item_lines.count = 0;
    err = parse_node(&r, 0, NULL, &root);
    if (err)
      break;
    err = next_event(&r); /* DOCUMENT-END */
    clear_anchors(&r);
    r.alias_nodes = 0;
    if (!err)
      err = add_document(in, root, line, &r.item_lines);
    json_decref(root);
    root = NULL;
  }
  clear_anchors(&r);
  free(r.anchors);
  free(r.item_lines.lines);
  if (r.have_event)
    yaml_event_delete(&r.event);
  yaml_parser_delete(&r.parser);
  return err;
}

/* ---- files, directories, streams -------------------------------------- */

static int has_suffix(const char *name, const char *suffix) {
  size_t name_len = strlen(name);
  size_t suffix_len = strlen(suffix);
  return name_len > suffix_len &&
         strcmp(name + name_len - suffix_len, suffix) == 0;
}

static m3b_err_t parse_input(struct input *in, enum input_format format) {
  size_t off;
  if (format == FORMAT_SNIFF) {
    off = skip_blank(in->data, in->len, skip_bom(in->data, in->len));
    format = off < in->len && in->data[off] == '{' ? FORMAT_JSON : FORMAT_YAML;
  }
  return format == FORMAT_JSON ? read_json(in) : read_yaml(in);
}

static m3b_err_t read_all(FILE *stream, const char *name, struct m3b_buf *buf,
                          char *errstr, size_t errstr_size) {
  char chunk[8192];
  size_t n;
  m3b_err_t err;

  while ((n = fread(chunk, 1, sizeof(chunk), stream)) > 0) {
    err = m3b_buf_append(buf, chunk, n);
    if (err == M3B_ERR_LIMIT)
      return m3b__errstr_set(err, errstr, errstr_size,
                             "%s: input is larger than %zu bytes", name,
                             buf->max);
    if (err)
      return err;
  }
  if (ferror(stream))
    return m3b__errstr_set(M3B_ERR_IO, errstr, errstr_size,
                           "%s: read error: %s", name, strerror(errno));
  return M3B_OK;
}

/* Reads stream to its end and parses it as one input named name. */
static m3b_err_t read_from(m3b_manifest_set_t *set, FILE *stream,
                           const char *name, enum input_format format,
                           char *errstr, size_t errstr_size) {
  struct m3b_buf buf;
  struct input in;
  m3b_err_t err;

  m3b_buf_init(&buf,
               mul_saturating(mul_saturating(set->max_doc_bytes, set->max_docs),
                              M3B_MANIFEST_INPUT_FACTOR));
  memset(&in, 0, sizeof(in));
  in.set = set;
  in.errstr = errstr;
  in.errstr_size = errstr_size;
  err = read_all(stream, name, &buf, errstr, errstr_size);
  if (err)
    goto out;
  err = add_path(set, name, &in.path);
  if (err)
    goto out;
  in.data = buf.data ? buf.data : (const uint8_t *)"";
  in.len = buf.len;
  err = parse_input(&in, format);
out:
  m3b_buf_cleanup(&buf);
  return err;
}

static m3b_err_t read_file(m3b_manifest_set_t *set, const char *path,
                           char *errstr, size_t errstr_size) {
  enum input_format format = FORMAT_SNIFF;
  m3b_err_t err;
  FILE *file = fopen(path, "rb");

  if (!file)
    return m3b__errstr_set(M3B_ERR_IO, errstr, errstr_size,
                           "%s: cannot open: %s", path, strerror(errno));
  if (has_suffix(path, ".json"))
    format = FORMAT_JSON;
  else if (has_suffix(path, ".yaml") || has_suffix(path, ".yml"))
    format = FORMAT_YAML;
  err = read_from(set, file, path, format, errstr, errstr_size);
  fclose(file);
  return err;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_manifest_name(const char *name) {
  return has_suffix(name, ".yaml") || has_suffix(name, ".yml") ||
         has_suffix(name, ".json");
}

/* dir + "/" + name in a new string (NULL when out of memory). */
static char *join_path(const char *dir, const char *name) {
  size_t dir_len = strlen(dir);
  size_t name_len = strlen(name);
  const char *slash = dir_len > 0 && dir[dir_len - 1] != '/' ? "/" : "";
  size_t size = dir_len + strlen(slash) + name_len + 1;
  char *joined = malloc(size);
  if (!joined)
    return NULL;
  snprintf(joined, size, "%s%s%s", dir, slash, name);
  return joined;
}

static m3b_err_t read_dir(m3b_manifest_set_t *set, const char *path,
                          char *errstr, size_t errstr_size) {
  char **files = NULL;
  size_t file_count = 0;
  size_t file_cap = 0;
  size_t i;
  struct dirent *entry;
  struct stat st;
  char *joined;
  m3b_err_t err = M3B_OK;
  DIR *dir = opendir(path);

  if (!dir)
    return m3b__errstr_set(M3B_ERR_IO, errstr, errstr_size,
                           "%s: cannot open directory: %s", path,
                           strerror(errno));
  for (;;) {
    errno = 0;
    entry = readdir(dir);
    if (!entry) {
      if (errno)
        err = m3b__errstr_set(M3B_ERR_IO, errstr, errstr_size,
                              "%s: cannot read directory: %s", path,
                              strerror(errno));
      break;
    }
    if (!is_manifest_name(entry->d_name))
      continue;
    joined = join_path(path, entry->d_name);
    if (!joined) {
      err = M3B_ERR_NOMEM;
      break;
    }
    if (stat(joined, &st) != 0 || !S_ISREG(st.st_mode)) {
      free(joined);
      continue;
    }
    if (file_count >= set->max_docs) {
      free(joined);
      err = m3b__errstr_set(M3B_ERR_LIMIT, errstr, errstr_size,
                            "%s: more than %zu manifest files", path,
                            set->max_docs);
      break;
    }
    err = grow((void **)&files, &file_cap, file_count + 1, sizeof(*files));
    if (err) {
      free(joined);
      break;
    }
    files[file_count++] = joined;
  }
  closedir(dir);
  if (!err && file_count == 0) {
    m3b__errstr(errstr, errstr_size,
                "%s: no *.yaml, *.yml or *.json files in directory", path);
    err = M3B_ERR_NOT_FOUND;
  }
  if (!err)
    qsort(files, file_count, sizeof(*files), compare_names);
  for (i = 0; !err && i < file_count; i++)
    err = read_file(set, files[i], errstr, errstr_size);
  for (i = 0; i < file_count; i++)
    free(files[i]);
  free(files);
  return err;
}

m3b_err_t m3b_manifest_read_path(m3b_manifest_set_t *set, const char *path,
                                 char *errstr, size_t errstr_size) {
  size_t doc_count;
  size_t path_count;
  struct stat st;
  m3b_err_t err;

  assert(set && path);
  doc_count = set->doc_count;
  path_count = set->path_count;
  if (stat(path, &st) != 0)
    return m3b__errstr_set(M3B_ERR_IO, errstr, errstr_size,
                           "%s: cannot open: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode))
    err = read_dir(set, path, errstr, errstr_size);
  else
    err = read_file(set, path, errstr, errstr_size);
  if (err)
    truncate_set(set, doc_count, path_count);
  return err;
}

m3b_err_t m3b_manifest_read_stream(m3b_manifest_set_t *set, FILE *stream,
                                   const char *name, char *errstr,
                                   size_t errstr_size) {
  size_t doc_count;
  size_t path_count;
  m3b_err_t err;

  assert(set && stream && name);
  doc_count = set->doc_count;
  path_count = set->path_count;
  err = read_from(set, stream, name, FORMAT_SNIFF, errstr, errstr_size);
  if (err)
    truncate_set(set, doc_count, path_count);
  return err;
}
