/*
 * avro_schema.h - a parsed Avro schema: a tree of type nodes the binary
 * encoder and decoder walk, plus its canonical form and fingerprint.
 *
 * All nodes of one schema are owned by it (a flat list), so named types
 * referenced several times, or recursively, are shared without double
 * frees. Field defaults are kept as JSON in Avro's JSON encoding, which is
 * also the value model of the codec (see avro_binary.h).
 */
#ifndef M3B_AVRO_SCHEMA_H
#define M3B_AVRO_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <m3b/err.h>

enum m3b__avro_kind {
  M3B__AVRO_NULL,
  M3B__AVRO_BOOLEAN,
  M3B__AVRO_INT,
  M3B__AVRO_LONG,
  M3B__AVRO_FLOAT,
  M3B__AVRO_DOUBLE,
  M3B__AVRO_BYTES,
  M3B__AVRO_STRING,
  M3B__AVRO_RECORD,
  M3B__AVRO_ENUM,
  M3B__AVRO_ARRAY,
  M3B__AVRO_MAP,
  M3B__AVRO_UNION,
  M3B__AVRO_FIXED
};

struct m3b__avro_type;

struct m3b__avro_field {
  char *name;
  struct m3b__avro_type *type;
  json_t *default_value; /* owned; NULL when the field has no default */
};

struct m3b__avro_type {
  enum m3b__avro_kind kind;
  char *fullname;   /* named types only (owned) */
  const char *name; /* unqualified part of fullname */
  size_t count;     /* fields, symbols, branches, or the fixed size */
  struct m3b__avro_field *fields;   /* record */
  char **symbols;                   /* enum */
  long enum_default;                /* enum: index of "default", or -1 */
  struct m3b__avro_type **branches; /* union (borrowed nodes) */
  struct m3b__avro_type *items;     /* array items / map values (borrowed) */
};

struct m3b__avro_schema {
  struct m3b__avro_type *root;
  struct m3b__avro_type **nodes; /* every node, owned */
  size_t node_count;
  size_t node_cap;
  char *canonical; /* Parsing Canonical Form, NUL-terminated */
  uint64_t fingerprint;
};

/* Parses schema JSON text. The result is freed with m3b__avro_schema_free. */
m3b_err_t m3b__avro_schema_parse(const char *json, size_t len,
                                 struct m3b__avro_schema **schema_out,
                                 char *errstr, size_t errstr_size);

/* Frees a schema; NULL is a no-op. */
void m3b__avro_schema_free(struct m3b__avro_schema *schema);

/* Name of a kind ("record"), for messages. */
const char *m3b__avro_kind_name(enum m3b__avro_kind kind);

#endif
