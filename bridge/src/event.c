/*
 * event.c - the C structs of <m3b/event.h> to and from the codec's JSON
 * values.
 *
 * Each record is described once by a table of its fields (name, C type,
 * offset in the struct); one generic walker converts in each direction and
 * one frees. Adding a field to a schema means adding a struct member and a
 * table row, nothing else.
 */
#include <m3b/event.h>

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "avro_binary.h"
#include "errstr.h"

enum ftype {
  F_STRING,         /* char *, required */
  F_OPT_STRING,     /* char *, NULL <-> null */
  F_DEFAULT_STRING, /* char *, NULL -> the schema's default */
  F_INT,            /* int32_t */
  F_LONG,           /* int64_t */
  F_BYTES,          /* uint8_t * + size_t count */
  F_SHA256,         /* uint8_t[32] */
  F_ENUM,           /* enum, stored as int */
  F_STRINGS,        /* char ** + size_t count */
  F_RECORDS         /* struct array + size_t count, described by items */
};

struct rdesc;

struct fdesc {
  const char *name;
  enum ftype type;
  size_t offset;
  size_t count_offset;
  const char *const *symbols; /* F_ENUM */
  size_t symbol_count;
  const struct rdesc *items; /* F_RECORDS */
};

struct rdesc {
  const char *fullname; /* NULL for nested records */
  size_t size;
  const struct fdesc *fields;
  size_t field_count;
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define FIELD(type, member, ftype)                                             \
  { #member, ftype, offsetof(type, member), 0, NULL, 0, NULL }
#define FIELD_AS(type, name, member, ftype)                                    \
  { name, ftype, offsetof(type, member), 0, NULL, 0, NULL }
#define FIELD_N(type, name, member, count, ftype)                              \
  { name, ftype, offsetof(type, member), offsetof(type, count), NULL, 0, NULL }
#define FIELD_ENUM(type, member, symbols)                                      \
  { #member, F_ENUM, offsetof(type, member), 0, symbols, COUNT(symbols), NULL }

_Static_assert(sizeof(enum m3b_op) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum m3b_phase) == sizeof(int), "enums stored as int");

static const char *const op_symbols[] = {"APPLY", "DELETE"};
static const char *const phase_symbols[] = {
    "APPLIED",       "DELETED", "FAILED", "REJECTED",
    "STALE_SKIPPED", "DRIFTED", "PRUNED"};
static const char *const readiness_symbols[] = {"UNKNOWN", "READY",
                                                "PROGRESSING", "NOT_READY"};
static const char *const state_symbols[] = {"STARTING", "RUNNING", "DEGRADED",
                                            "STOPPING"};

static const char *symbol(const char *const *symbols, size_t count,
                          unsigned value) {
  return value < count ? symbols[value] : "UNKNOWN";
}

const char *m3b_op_name(enum m3b_op op) {
  return symbol(op_symbols, COUNT(op_symbols), (unsigned)op);
}
const char *m3b_phase_name(enum m3b_phase phase) {
  return symbol(phase_symbols, COUNT(phase_symbols), (unsigned)phase);
}
const char *m3b_readiness_name(enum m3b_readiness readiness) {
  return symbol(readiness_symbols, COUNT(readiness_symbols),
                (unsigned)readiness);
}
const char *m3b_listener_state_name(enum m3b_listener_state state) {
  return symbol(state_symbols, COUNT(state_symbols), (unsigned)state);
}

#define DS struct m3b_desired_state
static const struct fdesc desired_fields[] = {
    FIELD(DS, plane, F_STRING),
    FIELD(DS, key, F_STRING),
    FIELD(DS, generation, F_LONG),
    FIELD_ENUM(DS, op, op_symbols),
    FIELD_N(DS, "manifest", manifest, manifest_len, F_BYTES),
    FIELD(DS, manifest_sha256, F_SHA256),
    FIELD(DS, release_id, F_STRING),
    FIELD_AS(DS, "issued_at", issued_at_ms, F_LONG),
    FIELD(DS, correlation_id, F_DEFAULT_STRING),
};
static const struct rdesc desired_desc = {M3B_RECORD_DESIRED_STATE, sizeof(DS),
                                          desired_fields,
                                          COUNT(desired_fields)};
#undef DS

#define ST struct m3b_status
static const struct fdesc status_fields[] = {
    FIELD(ST, plane, F_STRING),
    FIELD(ST, key, F_STRING),
    FIELD(ST, generation, F_LONG),
    FIELD_ENUM(ST, phase, phase_symbols),
    FIELD(ST, reason, F_OPT_STRING),
    FIELD(ST, message, F_OPT_STRING),
    FIELD(ST, observed_uid, F_OPT_STRING),
    FIELD(ST, observed_resource_version, F_OPT_STRING),
    FIELD_ENUM(ST, readiness, readiness_symbols),
    FIELD(ST, readiness_detail, F_OPT_STRING),
    FIELD(ST, source_partition, F_INT),
    FIELD(ST, source_offset, F_LONG),
    FIELD(ST, listener_id, F_STRING),
    FIELD_AS(ST, "applied_at", applied_at_ms, F_LONG),
    FIELD(ST, apply_latency_ms, F_LONG),
};
static const struct rdesc status_desc = {M3B_RECORD_STATUS, sizeof(ST),
                                         status_fields, COUNT(status_fields)};
#undef ST

#define PL struct m3b_partition_lag
static const struct fdesc lag_fields[] = {
    FIELD(PL, topic, F_STRING),          FIELD(PL, partition, F_INT),
    FIELD(PL, committed_offset, F_LONG), FIELD(PL, high_watermark, F_LONG),
    FIELD(PL, lag_messages, F_LONG),     FIELD(PL, lag_ms, F_LONG),
};
static const struct rdesc lag_desc = {NULL, sizeof(PL), lag_fields,
                                      COUNT(lag_fields)};
#undef PL

#define HB struct m3b_heartbeat
static const struct fdesc heartbeat_fields[] = {
    FIELD(HB, plane, F_STRING),
    FIELD(HB, listener_id, F_STRING),
    FIELD(HB, version, F_STRING),
    FIELD_ENUM(HB, state, state_symbols),
    FIELD_AS(HB, "sent_at", sent_at_ms, F_LONG),
    {"partitions", F_RECORDS, offsetof(HB, partitions),
     offsetof(HB, partition_count), NULL, 0, &lag_desc},
};
static const struct rdesc heartbeat_desc = {M3B_RECORD_HEARTBEAT, sizeof(HB),
                                            heartbeat_fields,
                                            COUNT(heartbeat_fields)};
#undef HB

#define RG struct m3b_registration
static const struct fdesc registration_fields[] = {
    FIELD(RG, plane, F_STRING),
    FIELD(RG, listener_id, F_STRING),
    FIELD(RG, public_key_alg, F_DEFAULT_STRING),
    FIELD_N(RG, "public_key", public_key, public_key_len, F_BYTES),
    FIELD_N(RG, "namespaces", namespaces, namespace_count, F_STRINGS),
    FIELD_N(RG, "capabilities", capabilities, capability_count, F_STRINGS),
    FIELD(RG, version, F_STRING),
    FIELD_AS(RG, "registered_at", registered_at_ms, F_LONG),
};
static const struct rdesc registration_desc = {M3B_RECORD_REGISTRATION,
                                               sizeof(RG), registration_fields,
                                               COUNT(registration_fields)};
#undef RG

/* Typed access to a member by offset. */
#define AT(obj, offset, type) ((type *)(void *)((char *)(obj) + (offset)))
#define AT_CONST(obj, offset, type)                                            \
  ((type const *)(const void *)((const char *)(obj) + (offset)))

/* ---- freeing ----------------------------------------------------------- */

static void free_strings(char **strings, size_t count) {
  size_t i;
  for (i = 0; strings && i < count; i++)
    free(strings[i]);
  free(strings);
}

static void record_cleanup(const struct rdesc *desc, void *obj) {
  size_t i;
  size_t j;
  for (i = 0; i < desc->field_count; i++) {
    const struct fdesc *f = &desc->fields[i];
    switch (f->type) {
    case F_STRING:
    case F_OPT_STRING:
    case F_DEFAULT_STRING: free(*AT(obj, f->offset, char *)); break;
    case F_BYTES: free(*AT(obj, f->offset, uint8_t *)); break;
    case F_STRINGS:
      free_strings(*AT(obj, f->offset, char **),
                   *AT(obj, f->count_offset, size_t));
      break;
    case F_RECORDS: {
      char *items = *AT(obj, f->offset, char *);
      size_t count = *AT(obj, f->count_offset, size_t);
      for (j = 0; items && j < count; j++)
        record_cleanup(f->items, items + j * f->items->size);
      free(items);
      break;
    }
    default: break;
    }
  }
  memset(obj, 0, desc->size);
}

/* ---- struct -> JSON ---------------------------------------------------- */

static m3b_err_t set(json_t *object, const char *name, json_t *value) {
  if (!value || json_object_set_new(object, name, value))
    return M3B_ERR_NOMEM;
  return M3B_OK;
}

static m3b_err_t string_json(const char *s, json_t **value_out, char *errstr,
                             size_t errstr_size, const char *name) {
  *value_out = json_string(s);
  if (!*value_out)
    return m3b__errstr_set(M3B_ERR_BAD_UTF8, errstr, errstr_size,
                           "field %s is not valid UTF-8", name);
  return M3B_OK;
}

static m3b_err_t record_to_json(const struct rdesc *desc, const void *obj,
                                json_t **value_out, char *errstr,
                                size_t errstr_size) {
  json_t *record = json_object();
  size_t i;
  size_t j;
  m3b_err_t err = record ? M3B_OK : M3B_ERR_NOMEM;

  for (i = 0; !err && i < desc->field_count; i++) {
    const struct fdesc *f = &desc->fields[i];
    json_t *value = NULL;
    switch (f->type) {
    case F_STRING:
    case F_OPT_STRING:
    case F_DEFAULT_STRING: {
      const char *s = *AT_CONST(obj, f->offset, char *);
      if (!s && f->type == F_STRING)
        err = m3b__errstr_set(M3B_ERR_ENCODE, errstr, errstr_size,
                              "required field %s is NULL", f->name);
      else if (!s && f->type == F_DEFAULT_STRING)
        continue; /* the codec fills in the schema's default */
      else if (!s)
        err = set(record, f->name, json_null());
      else
        err = string_json(s, &value, errstr, errstr_size, f->name);
      if (!err && value)
        err = set(record, f->name, value);
      break;
    }
    case F_INT:
      err = set(record, f->name,
                json_integer(*AT_CONST(obj, f->offset, int32_t)));
      break;
    case F_LONG:
      err = set(record, f->name,
                json_integer(*AT_CONST(obj, f->offset, int64_t)));
      break;
    case F_ENUM: {
      unsigned v = (unsigned)*AT_CONST(obj, f->offset, int);
      if (v >= f->symbol_count)
        err = m3b__errstr_set(M3B_ERR_BAD_ENUM, errstr, errstr_size,
                              "field %s: %u is not a symbol", f->name, v);
      else
        err = set(record, f->name, json_string(f->symbols[v]));
      break;
    }
    case F_BYTES: {
      const uint8_t *data = *AT_CONST(obj, f->offset, uint8_t *);
      size_t len = *AT_CONST(obj, f->count_offset, size_t);
      if (!data && len)
        err = m3b__errstr_set(M3B_ERR_ENCODE, errstr, errstr_size,
                              "field %s is NULL with length %zu", f->name, len);
      if (!err)
        err =
            m3b__bytes_to_json(data ? data : (const uint8_t *)"", len, &value);
      if (!err)
        err = set(record, f->name, value);
      break;
    }
    case F_SHA256:
      err = m3b__bytes_to_json(AT_CONST(obj, f->offset, uint8_t),
                               M3B_SHA256_SIZE, &value);
      if (!err)
        err = set(record, f->name, value);
      break;
    case F_STRINGS: {
      char *const *strings = *AT_CONST(obj, f->offset, char **);
      size_t count = *AT_CONST(obj, f->count_offset, size_t);
      json_t *array = json_array();
      err = set(record, f->name, array);
      for (j = 0; !err && j < count; j++) {
        if (!strings || !strings[j]) {
          err = m3b__errstr_set(M3B_ERR_ENCODE, errstr, errstr_size,
                                "field %s: item %zu is NULL", f->name, j);
          break;
        }
        err = string_json(strings[j], &value, errstr, errstr_size, f->name);
        if (!err && json_array_append_new(array, value))
          err = M3B_ERR_NOMEM;
      }
      break;
    }
    case F_RECORDS: {
      const char *items = *AT_CONST(obj, f->offset, char *);
      size_t count = *AT_CONST(obj, f->count_offset, size_t);
      json_t *array = json_array();
      err = set(record, f->name, array);
      if (!err && !items && count) {
        /* the code is set here, not returned by m3b__errstr_set(), so the
         * analyzer sees that items is never NULL in the loop below */
        m3b__errstr(errstr, errstr_size, "field %s is NULL with %zu items",
                    f->name, count);
        err = M3B_ERR_ENCODE;
      }
      for (j = 0; !err && j < count; j++) {
        err = record_to_json(f->items, items + j * f->items->size, &value,
                             errstr, errstr_size);
        if (!err && json_array_append_new(array, value))
          err = M3B_ERR_NOMEM;
      }
      break;
    }
    }
  }
  if (err) {
    json_decref(record);
    return err;
  }
  *value_out = record;
  return M3B_OK;
}

/* ---- JSON -> struct ---------------------------------------------------- */

static m3b_err_t copy_string(const json_t *value, char **out, char *errstr,
                             size_t errstr_size, const char *name) {
  size_t len = json_string_length(value);
  const char *s = json_string_value(value);
  if (!s)
    return m3b__errstr_set(M3B_ERR_DECODE, errstr, errstr_size,
                           "field %s is not a string", name);
  if (memchr(s, 0, len))
    return m3b__errstr_set(M3B_ERR_DECODE, errstr, errstr_size,
                           "field %s holds a NUL byte", name);
  *out = malloc(len + 1);
  if (!*out)
    return M3B_ERR_NOMEM;
  memcpy(*out, s, len + 1);
  return M3B_OK;
}

static m3b_err_t record_from_json(const struct rdesc *desc,
                                  const json_t *record, void *obj, char *errstr,
                                  size_t errstr_size) {
  size_t i;
  size_t j;
  m3b_err_t err = M3B_OK;

  for (i = 0; !err && i < desc->field_count; i++) {
    const struct fdesc *f = &desc->fields[i];
    const json_t *value = json_object_get(record, f->name);
    if (!value) /* the reader schema has every field: this is a bug */
      return m3b__errstr_set(M3B_ERR_INTERNAL, errstr, errstr_size,
                             "decoded record lacks field %s", f->name);
    switch (f->type) {
    case F_STRING:
    case F_OPT_STRING:
    case F_DEFAULT_STRING:
      if (!json_is_null(value))
        err = copy_string(value, AT(obj, f->offset, char *), errstr,
                          errstr_size, f->name);
      break;
    case F_INT:
      *AT(obj, f->offset, int32_t) = (int32_t)json_integer_value(value);
      break;
    case F_LONG:
      *AT(obj, f->offset, int64_t) = (int64_t)json_integer_value(value);
      break;
    case F_ENUM:
      for (j = 0; j < f->symbol_count; j++) {
        if (strcmp(f->symbols[j], json_string_value(value)) == 0)
          break;
      }
      if (j == f->symbol_count) /* schema and table disagree: a bug */
        return m3b__errstr_set(M3B_ERR_INTERNAL, errstr, errstr_size,
                               "field %s: symbol %s has no C value", f->name,
                               json_string_value(value));
      *AT(obj, f->offset, int) = (int)j;
      break;
    case F_BYTES:
      err = m3b__json_to_bytes(value, AT(obj, f->offset, uint8_t *),
                               AT(obj, f->count_offset, size_t));
      break;
    case F_SHA256: {
      uint8_t *data = NULL;
      size_t len = 0;
      err = m3b__json_to_bytes(value, &data, &len);
      if (!err && len == M3B_SHA256_SIZE)
        memcpy(AT(obj, f->offset, uint8_t), data, len);
      else if (!err)
        err = M3B_ERR_INTERNAL;
      free(data);
      break;
    }
    case F_STRINGS: {
      size_t count = json_array_size(value);
      char **strings = calloc(count ? count : 1, sizeof(*strings));
      if (!strings)
        return M3B_ERR_NOMEM;
      *AT(obj, f->offset, char **) = strings;
      *AT(obj, f->count_offset, size_t) = count;
      for (j = 0; !err && j < count; j++)
        err = copy_string(json_array_get(value, j), &strings[j], errstr,
                          errstr_size, f->name);
      break;
    }
    case F_RECORDS: {
      size_t count = json_array_size(value);
      char *items = calloc(count ? count : 1, f->items->size);
      if (!items)
        return M3B_ERR_NOMEM;
      *AT(obj, f->offset, char *) = items;
      *AT(obj, f->count_offset, size_t) = count;
      for (j = 0; !err && j < count; j++)
        err = record_from_json(f->items, json_array_get(value, j),
                               items + j * f->items->size, errstr, errstr_size);
      break;
    }
    }
  }
  return err;
}

/* ---- entry points ------------------------------------------------------ */

static m3b_err_t encode(const struct rdesc *desc, const m3b_codec_t *codec,
                        const void *obj, struct m3b_buf *out, char *errstr,
                        size_t errstr_size) {
  json_t *value = NULL;
  m3b_err_t err = record_to_json(desc, obj, &value, errstr, errstr_size);
  if (!err)
    err = m3b_codec_encode(codec, desc->fullname, value, out, errstr,
                           errstr_size);
  json_decref(value);
  return err;
}

static m3b_err_t decode(const struct rdesc *desc, const m3b_codec_t *codec,
                        const uint8_t *data, size_t len, void *obj,
                        char *errstr, size_t errstr_size) {
  json_t *value = NULL;
  const char *fullname = NULL;
  m3b_err_t err;

  record_cleanup(desc, obj);
  err = m3b_codec_decode(codec, data, len, &fullname, &value, errstr,
                         errstr_size);
  if (err)
    goto out;
  if (strcmp(fullname, desc->fullname) != 0) {
    err = m3b__errstr_set(M3B_ERR_SCHEMA, errstr, errstr_size,
                          "record is a %s, expected a %s", fullname,
                          desc->fullname);
    goto out;
  }
  err = record_from_json(desc, value, obj, errstr, errstr_size);
out:
  if (err)
    record_cleanup(desc, obj);
  json_decref(value);
  return err;
}

/* Each event's functions; `name` is both the function prefix and the struct
 * tag, so no type has to be passed as a macro argument. */
#define EVENT_FUNCTIONS(name, desc)                                            \
  void name##_init(struct name *event) {                                       \
    memset(event, 0, sizeof(*event));                                          \
  }                                                                            \
  void name##_cleanup(struct name *event) {                                    \
    if (event)                                                                 \
      record_cleanup(&(desc), event);                                          \
  }                                                                            \
  m3b_err_t name##_encode(const m3b_codec_t *codec, const struct name *event,  \
                          struct m3b_buf *out, char *errstr,                   \
                          size_t errstr_size) {                                \
    return encode(&(desc), codec, event, out, errstr, errstr_size);            \
  }                                                                            \
  m3b_err_t name##_decode(const m3b_codec_t *codec, const uint8_t *data,       \
                          size_t len, struct name *event, char *errstr,        \
                          size_t errstr_size) {                                \
    return decode(&(desc), codec, data, len, event, errstr, errstr_size);      \
  }

EVENT_FUNCTIONS(m3b_desired_state, desired_desc)
EVENT_FUNCTIONS(m3b_status, status_desc)
EVENT_FUNCTIONS(m3b_heartbeat, heartbeat_desc)
EVENT_FUNCTIONS(m3b_registration, registration_desc)
