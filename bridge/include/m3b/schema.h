/*
 * schema.h - Avro schemas: Parsing Canonical Form, CRC-64-AVRO fingerprints
 * and the registry of known schemas the codec picks writer schemas from.
 *
 * The wire contract lives in the .avsc files of schemas/ and is compiled into
 * the library; m3b_schema_registry_new_builtin() loads it. A registry may also
 * learn further versions of a record (older or newer) so that events
 * written with them can still be read: each schema is known by the
 * fingerprint of its canonical form, and for each record name one schema
 * is "current" - the one this build writes and reads into.
 *
 * Nothing here knows about Kafka or about the meaning of the records.
 */
#ifndef M3B_SCHEMA_H
#define M3B_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/buf.h>
#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Writes the Parsing Canonical Form (Avro specification, "Schema
 * Resolution / Parsing Canonical Form") of the schema JSON text
 * json[0..len) to out (appended; out->max bounds it). Returns M3B_ERR_SCHEMA
 * with a detail in errstr when the text is not JSON or not an Avro
 * schema shape. */
m3b_err_t m3b_schema_canonical_form(const char *json, size_t len,
                                    struct m3b_buf *out, char *errstr,
                                    size_t errstr_size);

/* CRC-64-AVRO (Rabin) fingerprint of data[0..len), as defined by the Avro
 * specification. In single-object encoding it is written little-endian. */
uint64_t m3b_schema_fingerprint(const void *data, size_t len);

typedef struct m3b_schema_registry m3b_schema_registry_t;

/* Flags of m3b_schema_registry_add(). */
#define M3B_SCHEMA_CURRENT 0x1 /* make it the current schema of its name */

/* Creates an empty registry. NULL (with errstr) only when out of memory. */
m3b_schema_registry_t *m3b_schema_registry_new(char *errstr,
                                               size_t errstr_size);

/* Creates a registry holding every schema of schemas/, each current. */
m3b_schema_registry_t *m3b_schema_registry_new_builtin(char *errstr,
                                                       size_t errstr_size);

/* Destroys a registry; NULL is a no-op. Codecs using it must be gone. */
void m3b_schema_registry_destroy(m3b_schema_registry_t *registry);

/* Parses a schema (JSON text, borrowed) and adds it. The top level must be
 * a record. Adding a schema whose fingerprint is already known is not an
 * error (flags still apply). *fingerprint_out (may be NULL) receives its
 * fingerprint. M3B_ERR_SCHEMA for an invalid schema, including defaults
 * that do not match their field's type. */
m3b_err_t m3b_schema_registry_add(m3b_schema_registry_t *registry,
                                  const char *json, size_t len, int flags,
                                  uint64_t *fingerprint_out, char *errstr,
                                  size_t errstr_size);

/* Finds the current schema of a record by full name
 * ("io.m3bridge.v1.DesiredState") and returns its fingerprint.
 * M3B_ERR_NOT_FOUND when there is none. */
m3b_err_t m3b_schema_registry_current(const m3b_schema_registry_t *registry,
                                      const char *fullname,
                                      uint64_t *fingerprint_out);

/* Number of schemas known. */
size_t m3b_schema_registry_count(const m3b_schema_registry_t *registry);

#ifdef __cplusplus
}
#endif

#endif
