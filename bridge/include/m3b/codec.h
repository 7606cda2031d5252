/*
 * codec.h - Avro single-object encoding of the event records.
 *
 * Wire format of every value on the desired, status and registry topics:
 *
 *   C3 01 | fingerprint (8 bytes, little-endian CRC-64-AVRO of the writer
 *   schema's Parsing Canonical Form) | Avro binary body
 *
 * Decoding looks the writer schema up by fingerprint in a registry and
 * resolves it to the current (reader) schema of the same record name with
 * Avro's resolution rules: fields the reader lacks are skipped, fields the
 * writer lacks take the reader's default, enum symbols and union branches
 * are matched by name, numbers are promoted. So a build reads events of
 * the schema versions before and after its own, as long as those are in
 * its registry.
 *
 * Hostile input is expected: every length is checked against the bytes
 * present and against the limits before anything is allocated, strings
 * must be valid UTF-8, and each kind of damage has its own m3b_err_t with
 * a detail in errstr. The codec never reads past the buffer it is given.
 *
 * Values are JSON (jansson) in Avro's JSON encoding, except that unions
 * are not wrapped: null or the branch's value, the branch being the first
 * whose type fits. bytes and fixed are strings of code points U+0000 to
 * U+00FF, one per byte. <m3b/event.h> maps them to C structs.
 *
 * The codec knows nothing of Kafka: it turns bytes into records and back.
 */
#ifndef M3B_CODEC_H
#define M3B_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <m3b/buf.h>
#include <m3b/err.h>
#include <m3b/schema.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes before the body: magic C3 01 and the 8-byte fingerprint. */
#define M3B_CODEC_HEADER_SIZE 10

/* Bounds on what one encoded record may hold. Decoding fails with
 * M3B_ERR_LIMIT past any of them; encoding too. */
struct m3b_codec_limits {
  size_t max_record_bytes; /* whole encoding, header included */
  size_t max_field_bytes;  /* one string, bytes or map key */
  size_t max_items;        /* array items plus map entries, whole record */
  size_t max_depth;        /* nesting of records, arrays, maps, unions */
};

/* Defaults: 4 MiB record, 2 MiB field, 65536 items, depth 32. */
void m3b_codec_limits_default(struct m3b_codec_limits *limits);

typedef struct m3b_codec m3b_codec_t;

/* Creates a codec over registry (borrowed; must outlive the codec) with
 * the given limits (copied; NULL = defaults). NULL with errstr when the
 * limits are zero or memory is exhausted. */
m3b_codec_t *m3b_codec_new(const m3b_schema_registry_t *registry,
                           const struct m3b_codec_limits *limits, char *errstr,
                           size_t errstr_size);

/* Destroys a codec; NULL is a no-op. */
void m3b_codec_destroy(m3b_codec_t *codec);

/* Encodes value (borrowed) with the current schema of record fullname and
 * appends the single-object encoding to out. Record fields missing from
 * value take their defaults; unknown fields are an error. Errors:
 * M3B_ERR_NOT_FOUND (no such record), M3B_ERR_ENCODE (value does not fit
 * the schema), M3B_ERR_BAD_ENUM, M3B_ERR_BAD_UTF8, M3B_ERR_LIMIT. On error
 * out is left as it was. */
m3b_err_t m3b_codec_encode(const m3b_codec_t *codec, const char *fullname,
                           const json_t *value, struct m3b_buf *out,
                           char *errstr, size_t errstr_size);

/* Reads the header only: the writer's fingerprint and the record's full
 * name (*fullname_out is borrowed from the registry; either out pointer
 * may be NULL). M3B_ERR_TRUNCATED, M3B_ERR_BAD_MAGIC, M3B_ERR_UNKNOWN_SCHEMA
 * or M3B_ERR_LIMIT. */
m3b_err_t m3b_codec_peek(const m3b_codec_t *codec, const uint8_t *data,
                         size_t len, uint64_t *fingerprint_out,
                         const char **fullname_out, char *errstr,
                         size_t errstr_size);

/* Decodes one single-object encoding data[0..len) (borrowed) into
 * *value_out (returned, owned by the caller: json_decref it), resolved to
 * the current schema of the writer's record name (the writer schema itself
 * when no schema of that name is current). *fullname_out (may be NULL)
 * names the record (borrowed from the registry). Errors, with a detail in
 * errstr: M3B_ERR_TRUNCATED, M3B_ERR_BAD_MAGIC, M3B_ERR_UNKNOWN_SCHEMA,
 * M3B_ERR_TRAILING_BYTES, M3B_ERR_DECODE (malformed body, negative length,
 * bad boolean or union index), M3B_ERR_BAD_UTF8, M3B_ERR_BAD_ENUM,
 * M3B_ERR_LIMIT, M3B_ERR_SCHEMA (writer cannot be resolved to the reader).
 * On error *value_out is NULL. */
m3b_err_t m3b_codec_decode(const m3b_codec_t *codec, const uint8_t *data,
                           size_t len, const char **fullname_out,
                           json_t **value_out, char *errstr,
                           size_t errstr_size);

#ifdef __cplusplus
}
#endif

#endif
