/*
 * avro_binary.c - Avro binary encoding (avro_binary.h).
 *
 * The encoder walks a schema and a JSON value together. The decoder walks
 * the writer schema over the bytes and the reader schema over the value it
 * builds, applying Avro's resolution rules as it goes; a reader of NULL
 * means "skip" (a writer field the reader does not have). Every length and
 * count is checked against the bytes left and the limits before anything
 * is allocated, so hostile input costs at most what the limits allow.
 */
#include "avro_binary.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "errstr.h"
#include "utf8.h"

struct enc {
  const struct m3b_codec_limits *limits; /* may be NULL */
  struct m3b_buf *out;
  char *errstr;
  size_t errstr_size;
  const char *field; /* innermost record field, for messages */
  size_t items;
  size_t depth;
};

struct dec {
  const uint8_t *start;
  const uint8_t *p;
  const uint8_t *end;
  const struct m3b_codec_limits *limits;
  char *errstr;
  size_t errstr_size;
  const char *field;
  size_t items;
  size_t depth;
};

/* ---- encoding ---------------------------------------------------------- */

static m3b_err_t put_long(struct m3b_buf *out, int64_t value) {
  uint8_t bytes[10];
  size_t n = 0;
  uint64_t u = (uint64_t)value;
  uint64_t zz = (u << 1) ^ ((uint64_t)0 - (u >> 63));
  do {
    uint8_t b = (uint8_t)(zz & 0x7f);
    zz >>= 7;
    bytes[n++] = (uint8_t)(b | (zz ? 0x80 : 0));
  } while (zz);
  return m3b_buf_append(out, bytes, n);
}

static m3b_err_t put_le(struct m3b_buf *out, uint64_t bits, size_t n) {
  uint8_t bytes[8];
  size_t i;
  for (i = 0; i < n; i++)
    bytes[i] = (uint8_t)(bits >> (8 * i));
  return m3b_buf_append(out, bytes, n);
}

/* Decodes the next code point of a valid UTF-8 string; returns its length. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp) {
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] < 0xE0) {
    *cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
    return 2;
  }
  if (s[0] < 0xF0) {
    *cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) |
          (s[2] & 0x3f);
    return 3;
  }
  *cp = 0x110000; /* four-byte sequences are never latin-1 */
  return 4;
}

/* Number of bytes a bytes-as-string value stands for, or (size_t)-1 when it
 * holds a code point above U+00FF. */
static size_t latin1_length(const json_t *value) {
  const unsigned char *s = (const unsigned char *)json_string_value(value);
  size_t len = json_string_length(value);
  size_t i = 0;
  size_t n;
  /* manifests are JSON text: their ASCII run, one byte a character, needs
   * no decoding (a plain loop the compiler vectorises; a decoding call per
   * character was 4% of a replay's read) */
  while (i < len && s[i] < 0x80)
    i++;
  n = i;
  while (i < len) {
    uint32_t cp;
    i += utf8_next(s + i, &cp);
    if (cp > 0xff)
      return (size_t)-1;
    n++;
  }
  return n;
}

/* Writes the bytes a bytes-as-string value stands for (latin1_length
 * checked them), a chunk at a time: one append per byte would cost a call
 * and a bounds check for each byte of every manifest. */
static m3b_err_t put_latin1(struct m3b_buf *out, const json_t *value) {
  const unsigned char *s = (const unsigned char *)json_string_value(value);
  size_t len = json_string_length(value);
  uint8_t chunk[512];
  size_t i = 0;
  size_t k = 0;
  m3b_err_t err = M3B_OK;
  while (!err && i < len) {
    uint32_t cp;
    i += utf8_next(s + i, &cp);
    chunk[k++] = (uint8_t)cp;
    if (k == sizeof(chunk) || i >= len) {
      err = m3b_buf_append(out, chunk, k);
      k = 0;
    }
  }
  return err;
}

m3b_err_t m3b__json_to_bytes(const json_t *value, uint8_t **data_out,
                             size_t *len_out) {
  const unsigned char *s = (const unsigned char *)json_string_value(value);
  size_t len = json_string_length(value);
  size_t n = json_is_string(value) ? latin1_length(value) : (size_t)-1;
  size_t i = 0;
  size_t k = 0;
  uint8_t *data;

  if (n == (size_t)-1)
    return M3B_ERR_INVALID_ARG;
  data = malloc(n ? n : 1);
  if (!data)
    return M3B_ERR_NOMEM;
  if (n == len) { /* all ASCII: the text is the bytes */
    memcpy(data, s, n);
    i = len;
  }
  while (i < len) {
    uint32_t cp;
    i += utf8_next(s + i, &cp);
    data[k++] = (uint8_t)cp;
  }
  *data_out = data;
  *len_out = n;
  return M3B_OK;
}

static int is_fit(const struct m3b__avro_type *type, const json_t *value) {
  size_t i;
  switch (type->kind) {
  case M3B__AVRO_NULL: return json_is_null(value);
  case M3B__AVRO_BOOLEAN: return json_is_boolean(value);
  case M3B__AVRO_INT:
    return json_is_integer(value) && json_integer_value(value) >= INT32_MIN &&
           json_integer_value(value) <= INT32_MAX;
  case M3B__AVRO_LONG: return json_is_integer(value);
  case M3B__AVRO_FLOAT:
  case M3B__AVRO_DOUBLE: return json_is_number(value);
  case M3B__AVRO_STRING: return json_is_string(value);
  case M3B__AVRO_BYTES:
    return json_is_string(value) && latin1_length(value) != (size_t)-1;
  case M3B__AVRO_FIXED:
    return json_is_string(value) && latin1_length(value) == type->count;
  case M3B__AVRO_ENUM:
    if (!json_is_string(value))
      return 0;
    for (i = 0; i < type->count; i++) {
      if (strcmp(type->symbols[i], json_string_value(value)) == 0)
        return 1;
    }
    return 0;
  case M3B__AVRO_RECORD:
  case M3B__AVRO_MAP: return json_is_object(value);
  case M3B__AVRO_ARRAY: return json_is_array(value);
  case M3B__AVRO_UNION: return 0;
  }
  return 0;
}

static m3b_err_t enc_fail(struct enc *e, m3b_err_t err, const char *what,
                          const struct m3b__avro_type *type) {
  return m3b__errstr_set(err, e->errstr, e->errstr_size, "field %s: %s %s",
                         e->field ? e->field : "(top level)", what,
                         type->fullname ? type->fullname
                                        : m3b__avro_kind_name(type->kind));
}

static m3b_err_t enc_value(struct enc *e, const struct m3b__avro_type *type,
                           const json_t *value);

static m3b_err_t enc_field_len(struct enc *e, size_t n) {
  if (e->limits && n > e->limits->max_field_bytes)
    return m3b__errstr_set(M3B_ERR_LIMIT, e->errstr, e->errstr_size,
                           "field %s: %zu bytes exceed max_field_bytes %zu",
                           e->field ? e->field : "(top level)", n,
                           e->limits->max_field_bytes);
  return put_long(e->out, (int64_t)n);
}

static m3b_err_t enc_items(struct enc *e, size_t n) {
  e->items += n;
  if (e->limits && e->items > e->limits->max_items)
    return m3b__errstr_set(M3B_ERR_LIMIT, e->errstr, e->errstr_size,
                           "field %s: more than max_items %zu array items and "
                           "map entries",
                           e->field ? e->field : "(top level)",
                           e->limits->max_items);
  return M3B_OK;
}

static m3b_err_t enc_record(struct enc *e, const struct m3b__avro_type *type,
                            const json_t *value) {
  const char *key;
  const json_t *member;
  const char *outer = e->field;
  size_t i;
  m3b_err_t err = M3B_OK;

  json_object_foreach((json_t *)value, key, member) {
    int known = 0;
    (void)member;
    for (i = 0; i < type->count && !known; i++)
      known = strcmp(type->fields[i].name, key) == 0;
    if (!known)
      return m3b__errstr_set(M3B_ERR_ENCODE, e->errstr, e->errstr_size,
                             "record %s has no field %s", type->fullname, key);
  }
  for (i = 0; !err && i < type->count; i++) {
    const struct m3b__avro_field *f = &type->fields[i];
    const json_t *v = json_object_get(value, f->name);
    e->field = f->name;
    if (v) {
      err = enc_value(e, f->type, v);
    } else if (!f->default_value) {
      err = m3b__errstr_set(M3B_ERR_ENCODE, e->errstr, e->errstr_size,
                            "record %s: field %s is missing and has no "
                            "default",
                            type->fullname, f->name);
    } else if (f->type->kind == M3B__AVRO_UNION) {
      err = put_long(e->out, 0); /* a union's default is its first branch */
      if (!err)
        err = enc_value(e, f->type->branches[0], f->default_value);
    } else {
      err = enc_value(e, f->type, f->default_value);
    }
  }
  e->field = outer;
  return err;
}

static m3b_err_t enc_value(struct enc *e, const struct m3b__avro_type *type,
                           const json_t *value) {
  m3b_err_t err = M3B_OK;
  size_t i;

  if (e->limits && ++e->depth > e->limits->max_depth) {
    e->depth--;
    return enc_fail(e, M3B_ERR_LIMIT, "nesting exceeds max_depth at", type);
  }
  if (type->kind == M3B__AVRO_UNION) {
    for (i = 0; i < type->count; i++) {
      if (is_fit(type->branches[i], value))
        break;
    }
    if (i == type->count) {
      err = enc_fail(e, M3B_ERR_ENCODE, "value fits no branch of", type);
      goto out;
    }
    err = put_long(e->out, (int64_t)i);
    if (!err)
      err = enc_value(e, type->branches[i], value);
    goto out;
  }
  if (!is_fit(type, value)) {
    if (type->kind == M3B__AVRO_ENUM && json_is_string(value))
      err = m3b__errstr_set(M3B_ERR_BAD_ENUM, e->errstr, e->errstr_size,
                            "field %s: \"%s\" is not a symbol of %s",
                            e->field ? e->field : "(top level)",
                            json_string_value(value), type->fullname);
    else
      err = enc_fail(e, M3B_ERR_ENCODE, "value is not a", type);
    goto out;
  }
  switch (type->kind) {
  case M3B__AVRO_NULL: break;
  case M3B__AVRO_BOOLEAN: {
    uint8_t b = json_is_true(value) ? 1 : 0;
    err = m3b_buf_append(e->out, &b, 1);
    break;
  }
  case M3B__AVRO_INT:
  case M3B__AVRO_LONG:
    err = put_long(e->out, (int64_t)json_integer_value(value));
    break;
  case M3B__AVRO_FLOAT: {
    float f = (float)json_number_value(value);
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    err = put_le(e->out, bits, 4);
    break;
  }
  case M3B__AVRO_DOUBLE: {
    double d = json_number_value(value);
    uint64_t bits;
    memcpy(&bits, &d, sizeof(bits));
    err = put_le(e->out, bits, 8);
    break;
  }
  case M3B__AVRO_STRING:
    err = enc_field_len(e, json_string_length(value));
    if (!err)
      err = m3b_buf_append(e->out, json_string_value(value),
                           json_string_length(value));
    break;
  case M3B__AVRO_BYTES:
    err = enc_field_len(e, latin1_length(value));
    if (!err)
      err = put_latin1(e->out, value);
    break;
  case M3B__AVRO_FIXED: err = put_latin1(e->out, value); break;
  case M3B__AVRO_ENUM:
    for (i = 0; i < type->count; i++) {
      if (strcmp(type->symbols[i], json_string_value(value)) == 0)
        break;
    }
    err = put_long(e->out, (int64_t)i);
    break;
  case M3B__AVRO_RECORD: err = enc_record(e, type, value); break;
  case M3B__AVRO_ARRAY:
    err = enc_items(e, json_array_size(value));
    if (!err && json_array_size(value))
      err = put_long(e->out, (int64_t)json_array_size(value));
    for (i = 0; !err && i < json_array_size(value); i++)
      err = enc_value(e, type->items, json_array_get(value, i));
    if (!err)
      err = put_long(e->out, 0);
    break;
  case M3B__AVRO_MAP: {
    const char *key;
    const json_t *member;
    err = enc_items(e, json_object_size(value));
    if (!err && json_object_size(value))
      err = put_long(e->out, (int64_t)json_object_size(value));
    json_object_foreach((json_t *)value, key, member) {
      if (err)
        break;
      err = enc_field_len(e, strlen(key));
      if (!err)
        err = m3b_buf_append_str(e->out, key);
      if (!err)
        err = enc_value(e, type->items, member);
    }
    if (!err)
      err = put_long(e->out, 0);
    break;
  }
  case M3B__AVRO_UNION: break; /* handled above */
  }
out:
  if (err == M3B_ERR_LIMIT && e->errstr && !e->errstr[0])
    m3b__errstr_set(err, e->errstr, e->errstr_size,
                    "field %s: encoding exceeds the output limit of %zu bytes"
                    "%s",
                    e->field ? e->field : "(top level)", e->out->max,
                    e->limits ? " (max_record_bytes less the header)" : "");
  if (e->limits)
    e->depth--;
  return err;
}

m3b_err_t m3b__avro_encode(const struct m3b__avro_type *type,
                           const json_t *value,
                           const struct m3b_codec_limits *limits,
                           struct m3b_buf *out, char *errstr,
                           size_t errstr_size) {
  struct enc e;
  size_t mark = out->len;
  m3b_err_t err;

  memset(&e, 0, sizeof(e));
  e.limits = limits;
  e.out = out;
  e.errstr = errstr;
  e.errstr_size = errstr_size;
  if (errstr && errstr_size)
    errstr[0] = 0;
  err = enc_value(&e, type, value);
  if (err) {
    out->len = mark; /* leave out as it was */
    if (out->data)
      out->data[mark] = 0;
  }
  return err;
}

/* ---- decoding ---------------------------------------------------------- */

static const char *dec_field(const struct dec *d) {
  return d->field ? d->field : "(top level)";
}

static size_t dec_offset(const struct dec *d) {
  return (size_t)(d->p - d->start);
}

/* The helpers below return their error code as a constant, not through
 * m3b__errstr_set(), so that callers' "out parameters are set on M3B_OK"
 * reasoning is visible to the static analyzer within this file. */
static m3b_err_t dec_truncated(struct dec *d, const char *what) {
  m3b__errstr(d->errstr, d->errstr_size,
              "field %s: body ends inside %s at byte %zu", dec_field(d), what,
              dec_offset(d));
  return M3B_ERR_TRUNCATED;
}

static m3b_err_t get_long(struct dec *d, int64_t *value_out) {
  uint64_t u = 0;
  int shift = 0;
  *value_out = 0; /* defined on every path, including errors */
  for (;;) {
    uint8_t b;
    if (d->p == d->end)
      return dec_truncated(d, "a number");
    b = *d->p++;
    if (shift == 63 && b > 1) {
      m3b__errstr(d->errstr, d->errstr_size,
                  "field %s: number longer than 64 bits at byte %zu",
                  dec_field(d), dec_offset(d));
      return M3B_ERR_DECODE;
    }
    u |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80))
      break;
    shift += 7;
  }
  /* zig-zag: the sign lives in bit 0 */
  *value_out = (int64_t)((u >> 1) ^ ((uint64_t)0 - (u & 1)));
  return M3B_OK;
}

static m3b_err_t get_int(struct dec *d, int64_t *value_out) {
  m3b_err_t err = get_long(d, value_out);
  if (!err && (*value_out < INT32_MIN || *value_out > INT32_MAX))
    return m3b__errstr_set(M3B_ERR_DECODE, d->errstr, d->errstr_size,
                           "field %s: int out of 32-bit range at byte %zu",
                           dec_field(d), dec_offset(d));
  return err;
}

/* Reads a length prefix and checks it against the limit and the bytes left;
 * on success *ptr_out points at the bytes, which are consumed. */
static m3b_err_t get_bytes(struct dec *d, const uint8_t **ptr_out,
                           size_t *len_out) {
  int64_t n = 0;
  m3b_err_t err;

  *ptr_out = NULL; /* defined on every path, including errors */
  *len_out = 0;
  err = get_long(d, &n);
  if (err)
    return err;
  if (n < 0) {
    m3b__errstr(d->errstr, d->errstr_size,
                "field %s: negative length %lld at byte %zu", dec_field(d),
                (long long)n, dec_offset(d));
    return M3B_ERR_DECODE;
  }
  if ((uint64_t)n > d->limits->max_field_bytes) {
    m3b__errstr(d->errstr, d->errstr_size,
                "field %s: length %lld exceeds max_field_bytes %zu",
                dec_field(d), (long long)n, d->limits->max_field_bytes);
    return M3B_ERR_LIMIT;
  }
  if ((uint64_t)n > (uint64_t)(d->end - d->p))
    return dec_truncated(d, "a string or bytes value");
  *ptr_out = d->p;
  *len_out = (size_t)n;
  d->p += n;
  return M3B_OK;
}

static m3b_err_t check_utf8(struct dec *d, const uint8_t *s, size_t n) {
  size_t ok = m3b__utf8_valid_prefix(s, n);
  if (ok != n)
    return m3b__errstr_set(M3B_ERR_BAD_UTF8, d->errstr, d->errstr_size,
                           "field %s: invalid UTF-8 at byte %zu", dec_field(d),
                           (size_t)(s - d->start) + ok);
  return M3B_OK;
}

m3b_err_t m3b__bytes_to_json(const uint8_t *s, size_t n, json_t **value_out) {
  size_t high = 0;
  size_t i;
  size_t k = 0;
  char *text;

  *value_out = NULL;
  if (!n)
    s = (const uint8_t *)"";
  for (i = 0; i < n; i++)
    high += s[i] >> 7;
  /* The text built here is valid UTF-8 by construction, so jansson need
   * not check it again (json_stringn_nocheck). ASCII bytes - a manifest,
   * usually - are their own text and are copied once. */
  if (!high) {
    *value_out = json_stringn_nocheck((const char *)s, n);
    return *value_out ? M3B_OK : M3B_ERR_NOMEM;
  }
  text = malloc(n + high);
  if (!text)
    return M3B_ERR_NOMEM;
  for (i = 0; i < n; i++) {
    if (s[i] < 0x80) {
      text[k++] = (char)s[i];
    } else {
      text[k++] = (char)(0xC0 | (s[i] >> 6));
      text[k++] = (char)(0x80 | (s[i] & 0x3f));
    }
  }
  *value_out = json_stringn_nocheck(text, k);
  free(text);
  return *value_out ? M3B_OK : M3B_ERR_NOMEM;
}

static int same_name(const struct m3b__avro_type *a,
                     const struct m3b__avro_type *b) {
  return strcmp(a->name, b->name) == 0;
}

/* Can a writer of kind w be read as reader r (ignoring unions)? 2 = same
 * type, 1 = by promotion, 0 = no. */
static int match(const struct m3b__avro_type *w,
                 const struct m3b__avro_type *r) {
  if (w->kind == r->kind) {
    if (w->fullname && !same_name(w, r))
      return 0;
    return 2;
  }
  switch (w->kind) {
  case M3B__AVRO_INT:
    return r->kind == M3B__AVRO_LONG || r->kind == M3B__AVRO_FLOAT ||
           r->kind == M3B__AVRO_DOUBLE;
  case M3B__AVRO_LONG:
    return r->kind == M3B__AVRO_FLOAT || r->kind == M3B__AVRO_DOUBLE;
  case M3B__AVRO_FLOAT: return r->kind == M3B__AVRO_DOUBLE;
  case M3B__AVRO_STRING: return r->kind == M3B__AVRO_BYTES;
  case M3B__AVRO_BYTES: return r->kind == M3B__AVRO_STRING;
  default: return 0;
  }
}

static m3b_err_t dec_mismatch(struct dec *d, const struct m3b__avro_type *w,
                              const struct m3b__avro_type *r) {
  return m3b__errstr_set(
      M3B_ERR_SCHEMA, d->errstr, d->errstr_size,
      "field %s: writer type %s cannot be read as reader type %s", dec_field(d),
      w->fullname ? w->fullname : m3b__avro_kind_name(w->kind),
      r->fullname ? r->fullname : m3b__avro_kind_name(r->kind));
}

static m3b_err_t dec_value(struct dec *d, const struct m3b__avro_type *w,
                           const struct m3b__avro_type *r, json_t **out);

static m3b_err_t json_new(json_t *value, json_t **out) {
  if (!value)
    return M3B_ERR_NOMEM;
  *out = value;
  return M3B_OK;
}

static m3b_err_t dec_items(struct dec *d, int64_t *count_io) {
  int64_t count = *count_io;
  int64_t block_size;
  m3b_err_t err;

  if (count < 0) {
    if (count == INT64_MIN)
      return m3b__errstr_set(M3B_ERR_DECODE, d->errstr, d->errstr_size,
                             "field %s: invalid block count at byte %zu",
                             dec_field(d), dec_offset(d));
    count = -count;
    err = get_long(d, &block_size); /* size in bytes; only checked */
    if (err)
      return err;
    if (block_size < 0)
      return m3b__errstr_set(M3B_ERR_DECODE, d->errstr, d->errstr_size,
                             "field %s: negative block size at byte %zu",
                             dec_field(d), dec_offset(d));
  }
  if ((uint64_t)count > d->limits->max_items - d->items)
    return m3b__errstr_set(M3B_ERR_LIMIT, d->errstr, d->errstr_size,
                           "field %s: more than max_items %zu array items "
                           "and map entries",
                           dec_field(d), d->limits->max_items);
  d->items += (size_t)count;
  *count_io = count;
  return M3B_OK;
}

static m3b_err_t dec_array(struct dec *d, const struct m3b__avro_type *w,
                           const struct m3b__avro_type *r, json_t *array) {
  m3b_err_t err;
  for (;;) {
    int64_t count;
    int64_t i;
    err = get_long(d, &count);
    if (!err && count != 0)
      err = dec_items(d, &count);
    if (err || count == 0)
      return err;
    for (i = 0; i < count; i++) {
      json_t *item = NULL;
      err = dec_value(d, w->items, r->items, &item);
      if (err)
        return err;
      if (json_array_append_new(array, item))
        return M3B_ERR_NOMEM;
    }
  }
}

static m3b_err_t dec_map(struct dec *d, const struct m3b__avro_type *w,
                         const struct m3b__avro_type *r, json_t *map) {
  m3b_err_t err;
  for (;;) {
    int64_t count;
    int64_t i;
    err = get_long(d, &count);
    if (!err && count != 0)
      err = dec_items(d, &count);
    if (err || count == 0)
      return err;
    for (i = 0; i < count; i++) {
      const uint8_t *key;
      size_t key_len;
      json_t *value = NULL;
      err = get_bytes(d, &key, &key_len);
      if (!err)
        err = check_utf8(d, key, key_len);
      if (!err && memchr(key, 0, key_len))
        err =
            m3b__errstr_set(M3B_ERR_DECODE, d->errstr, d->errstr_size,
                            "field %s: map key holds a NUL byte", dec_field(d));
      if (!err)
        err = dec_value(d, w->items, r->items, &value);
      if (err)
        return err;
      if (json_object_setn_new(map, (const char *)key, key_len, value))
        return M3B_ERR_NOMEM;
    }
  }
}

static m3b_err_t dec_record(struct dec *d, const struct m3b__avro_type *w,
                            const struct m3b__avro_type *r, json_t *record) {
  const char *outer = d->field;
  size_t i;
  size_t j;
  m3b_err_t err = M3B_OK;

  for (i = 0; !err && i < w->count; i++) {
    const struct m3b__avro_field *wf = &w->fields[i];
    const struct m3b__avro_type *rt = NULL;
    json_t *value = NULL;
    for (j = 0; j < r->count && !rt; j++) {
      if (strcmp(r->fields[j].name, wf->name) == 0)
        rt = r->fields[j].type;
    }
    d->field = wf->name;
    err = dec_value(d, wf->type, rt ? rt : wf->type, &value);
    if (!err && rt && json_object_set_new(record, wf->name, value))
      err = M3B_ERR_NOMEM;
    else if (!rt)
      json_decref(value); /* skipped: the reader has no such field */
  }
  d->field = outer;
  for (j = 0; !err && j < r->count; j++) {
    const struct m3b__avro_field *rf = &r->fields[j];
    json_t *value;
    if (json_object_get(record, rf->name))
      continue;
    if (!rf->default_value)
      return m3b__errstr_set(M3B_ERR_SCHEMA, d->errstr, d->errstr_size,
                             "reader field %s.%s has no default and the "
                             "writer does not have it",
                             r->fullname, rf->name);
    value = json_deep_copy(rf->default_value);
    if (!value || json_object_set_new(record, rf->name, value))
      err = M3B_ERR_NOMEM;
  }
  return err;
}

static m3b_err_t dec_enum(struct dec *d, const struct m3b__avro_type *w,
                          const struct m3b__avro_type *r, json_t **out) {
  int64_t index;
  const char *symbol;
  size_t i;
  m3b_err_t err = get_int(d, &index);
  if (err)
    return err;
  if (index < 0 || (uint64_t)index >= w->count)
    return m3b__errstr_set(M3B_ERR_BAD_ENUM, d->errstr, d->errstr_size,
                           "field %s: enum index %lld is not a symbol of %s",
                           dec_field(d), (long long)index, w->fullname);
  symbol = w->symbols[index];
  for (i = 0; i < r->count; i++) {
    if (strcmp(r->symbols[i], symbol) == 0)
      return json_new(json_string(symbol), out);
  }
  if (r->enum_default >= 0)
    return json_new(json_string(r->symbols[r->enum_default]), out);
  return m3b__errstr_set(M3B_ERR_BAD_ENUM, d->errstr, d->errstr_size,
                         "field %s: symbol %s is unknown to reader %s and it "
                         "has no default",
                         dec_field(d), symbol, r->fullname);
}

static m3b_err_t dec_scalar(struct dec *d, const struct m3b__avro_type *w,
                            const struct m3b__avro_type *r, json_t **out) {
  int64_t n;
  m3b_err_t err;

  switch (w->kind) {
  case M3B__AVRO_NULL: return json_new(json_null(), out);
  case M3B__AVRO_BOOLEAN:
    if (d->p == d->end)
      return dec_truncated(d, "a boolean");
    if (*d->p > 1)
      return m3b__errstr_set(M3B_ERR_DECODE, d->errstr, d->errstr_size,
                             "field %s: boolean byte 0x%02x at byte %zu",
                             dec_field(d), *d->p, dec_offset(d));
    return json_new(json_boolean(*d->p++), out);
  case M3B__AVRO_INT:
  case M3B__AVRO_LONG:
    err = w->kind == M3B__AVRO_INT ? get_int(d, &n) : get_long(d, &n);
    if (err)
      return err;
    if (r->kind == M3B__AVRO_FLOAT || r->kind == M3B__AVRO_DOUBLE)
      return json_new(json_real((double)n), out);
    return json_new(json_integer((json_int_t)n), out);
  case M3B__AVRO_FLOAT:
  case M3B__AVRO_DOUBLE: {
    size_t size = w->kind == M3B__AVRO_FLOAT ? 4 : 8;
    uint64_t bits = 0;
    double value;
    size_t i;
    if ((size_t)(d->end - d->p) < size)
      return dec_truncated(d, "a floating-point number");
    for (i = 0; i < size; i++)
      bits |= (uint64_t)d->p[i] << (8 * i);
    d->p += size;
    if (size == 4) {
      uint32_t bits32 = (uint32_t)bits;
      float f;
      memcpy(&f, &bits32, sizeof(f));
      value = f;
    } else {
      memcpy(&value, &bits, sizeof(value));
    }
    if (!isfinite(value))
      return m3b__errstr_set(M3B_ERR_DECODE, d->errstr, d->errstr_size,
                             "field %s: NaN or infinity is not supported",
                             dec_field(d));
    return json_new(json_real(value), out);
  }
  case M3B__AVRO_BYTES:
  case M3B__AVRO_STRING: {
    const uint8_t *s;
    size_t len;
    err = get_bytes(d, &s, &len);
    if (!err && (w->kind == M3B__AVRO_STRING || r->kind == M3B__AVRO_STRING))
      err = check_utf8(d, s, len);
    if (err)
      return err;
    if (r->kind == M3B__AVRO_STRING)
      return json_new(json_stringn((const char *)s, len), out);
    return m3b__bytes_to_json(s, len, out);
  }
  case M3B__AVRO_FIXED: {
    const uint8_t *s = d->p;
    if (w->count != r->count)
      return dec_mismatch(d, w, r);
    if ((size_t)(d->end - d->p) < w->count)
      return dec_truncated(d, "a fixed value");
    d->p += w->count;
    return m3b__bytes_to_json(s, w->count, out);
  }
  default: return M3B_ERR_INTERNAL;
  }
}

static m3b_err_t dec_value(struct dec *d, const struct m3b__avro_type *w,
                           const struct m3b__avro_type *r, json_t **out) {
  m3b_err_t err = M3B_OK;
  json_t *container = NULL;

  *out = NULL;
  if (++d->depth > d->limits->max_depth) {
    err = m3b__errstr_set(M3B_ERR_LIMIT, d->errstr, d->errstr_size,
                          "field %s: nesting exceeds max_depth %zu",
                          dec_field(d), d->limits->max_depth);
    goto out;
  }
  if (w->kind == M3B__AVRO_UNION) {
    int64_t index;
    err = get_long(d, &index);
    if (err)
      goto out;
    if (index < 0 || (uint64_t)index >= w->count) {
      err = m3b__errstr_set(M3B_ERR_DECODE, d->errstr, d->errstr_size,
                            "field %s: union branch %lld does not exist",
                            dec_field(d), (long long)index);
      goto out;
    }
    err = dec_value(d, w->branches[index], r, out);
    goto out;
  }
  if (r->kind == M3B__AVRO_UNION) {
    size_t i;
    size_t best = r->count;
    for (i = 0; i < r->count && best == r->count; i++) {
      if (match(w, r->branches[i]) == 2)
        best = i;
    }
    for (i = 0; i < r->count && best == r->count; i++) {
      if (match(w, r->branches[i]))
        best = i;
    }
    if (best == r->count) {
      err = dec_mismatch(d, w, r);
      goto out;
    }
    err = dec_value(d, w, r->branches[best], out);
    goto out;
  }
  if (!match(w, r)) {
    err = dec_mismatch(d, w, r);
    goto out;
  }
  switch (w->kind) {
  case M3B__AVRO_ENUM: err = dec_enum(d, w, r, out); break;
  case M3B__AVRO_RECORD:
  case M3B__AVRO_MAP:
  case M3B__AVRO_ARRAY:
    container = w->kind == M3B__AVRO_ARRAY ? json_array() : json_object();
    if (!container) {
      err = M3B_ERR_NOMEM;
      break;
    }
    if (w->kind == M3B__AVRO_RECORD)
      err = dec_record(d, w, r, container);
    else if (w->kind == M3B__AVRO_MAP)
      err = dec_map(d, w, r, container);
    else
      err = dec_array(d, w, r, container);
    if (!err) {
      *out = container;
      container = NULL;
    }
    break;
  default: err = dec_scalar(d, w, r, out); break;
  }
out:
  json_decref(container);
  d->depth--;
  return err;
}

m3b_err_t m3b__avro_decode(const struct m3b__avro_type *writer,
                           const struct m3b__avro_type *reader,
                           const uint8_t *data, size_t len,
                           const struct m3b_codec_limits *limits,
                           json_t **value_out, char *errstr,
                           size_t errstr_size) {
  struct dec d;
  json_t *value = NULL;
  m3b_err_t err;

  memset(&d, 0, sizeof(d));
  d.start = data;
  d.p = data;
  d.end = data + len;
  d.limits = limits;
  d.errstr = errstr;
  d.errstr_size = errstr_size;
  *value_out = NULL;
  err = dec_value(&d, writer, reader, &value);
  if (!err && d.p != d.end)
    err = m3b__errstr_set(M3B_ERR_TRAILING_BYTES, errstr, errstr_size,
                          "%zu bytes left after the record (body is %zu "
                          "bytes)",
                          (size_t)(d.end - d.p), len);
  if (err) {
    json_decref(value);
    return err;
  }
  *value_out = value;
  return M3B_OK;
}
