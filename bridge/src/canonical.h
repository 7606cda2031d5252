/*
 * canonical.h - Parsing Canonical Form over an already parsed schema.
 */
#ifndef M3B_CANONICAL_H
#define M3B_CANONICAL_H

#include <stddef.h>

#include <jansson.h>

#include <m3b/buf.h>
#include <m3b/err.h>

/* Appends the canonical form of schema (borrowed) to out. */
m3b_err_t m3b__canonical_form_json(const json_t *schema, struct m3b_buf *out,
                                   char *errstr, size_t errstr_size);

/* Non-zero when name is one of Avro's primitive type names. */
int m3b__avro_is_primitive(const char *name);

/* Non-zero when name is a valid Avro name ([A-Za-z_][A-Za-z0-9_]*) or, with
 * dots allowed, a valid full name. */
int m3b__avro_valid_name(const char *name, int allow_dots);

/* Builds the full name of name in namespace ns ("" = null namespace) into
 * out[0..out_size). M3B_ERR_SCHEMA when it does not fit. */
m3b_err_t m3b__avro_fullname(const char *name, const char *ns, char *out,
                             size_t out_size);

/* The longest full name the library handles. */
#define M3B__AVRO_NAME_MAX 256

/* Deepest schema nesting accepted (protects the recursive walkers). */
#define M3B__AVRO_SCHEMA_DEPTH_MAX 64

#endif
