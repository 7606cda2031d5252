/*
 * codec.c - Avro single-object encoding over the schema registry
 * (<m3b/codec.h>): the 10-byte header, the limits, and the choice of
 * writer and reader schema. The body itself is avro_binary.c's job.
 */
#include <m3b/codec.h>

#include <stdlib.h>
#include <string.h>

#include "avro_binary.h"
#include "errstr.h"
#include "schema_registry.h"

struct m3b_codec {
  const m3b_schema_registry_t *registry; /* borrowed */
  struct m3b_codec_limits limits;
};

void m3b_codec_limits_default(struct m3b_codec_limits *limits) {
  limits->max_record_bytes = (size_t)4 * 1024 * 1024;
  limits->max_field_bytes = (size_t)2 * 1024 * 1024;
  limits->max_items = 65536;
  limits->max_depth = 32;
}

m3b_codec_t *m3b_codec_new(const m3b_schema_registry_t *registry,
                           const struct m3b_codec_limits *limits, char *errstr,
                           size_t errstr_size) {
  m3b_codec_t *codec;

  if (!registry) {
    m3b__errstr_set(M3B_ERR_INVALID_ARG, errstr, errstr_size,
                    "codec needs a schema registry");
    return NULL;
  }
  if (limits &&
      (limits->max_record_bytes <= M3B_CODEC_HEADER_SIZE ||
       !limits->max_field_bytes || !limits->max_items || !limits->max_depth)) {
    m3b__errstr_set(M3B_ERR_CONFIG, errstr, errstr_size,
                    "codec limits must be positive (max_record_bytes above "
                    "%d)",
                    M3B_CODEC_HEADER_SIZE);
    return NULL;
  }
  codec = calloc(1, sizeof(*codec));
  if (!codec) {
    m3b__errstr_set(M3B_ERR_NOMEM, errstr, errstr_size, "out of memory");
    return NULL;
  }
  codec->registry = registry;
  if (limits)
    codec->limits = *limits;
  else
    m3b_codec_limits_default(&codec->limits);
  return codec;
}

void m3b_codec_destroy(m3b_codec_t *codec) {
  free(codec);
}

m3b_err_t m3b_codec_encode(const m3b_codec_t *codec, const char *fullname,
                           const json_t *value, struct m3b_buf *out,
                           char *errstr, size_t errstr_size) {
  const struct m3b__avro_schema *schema;
  struct m3b_buf body;
  uint8_t header[M3B_CODEC_HEADER_SIZE];
  size_t i;
  m3b_err_t err;

  m3b_buf_init(&body, codec->limits.max_record_bytes - M3B_CODEC_HEADER_SIZE);
  schema = m3b__schema_registry_current(codec->registry, fullname);
  if (!schema) {
    err = m3b__errstr_set(M3B_ERR_NOT_FOUND, errstr, errstr_size,
                          "no current schema for record %s", fullname);
    goto out;
  }
  err = m3b__avro_encode(schema->root, value, &codec->limits, &body, errstr,
                         errstr_size);
  if (err)
    goto out;
  header[0] = 0xC3;
  header[1] = 0x01;
  for (i = 0; i < 8; i++)
    header[2 + i] = (uint8_t)(schema->fingerprint >> (8 * i));
  err = m3b_buf_reserve(out, sizeof(header) + body.len);
  if (err) {
    m3b__errstr_set(err, errstr, errstr_size,
                    "output buffer holds at most %zu bytes", out->max);
    goto out;
  }
  err = m3b_buf_append(out, header, sizeof(header));
  if (!err)
    err = m3b_buf_append(out, body.data, body.len);
out:
  m3b_buf_cleanup(&body);
  return err;
}

static m3b_err_t read_header(const m3b_codec_t *codec, const uint8_t *data,
                             size_t len,
                             const struct m3b__avro_schema **schema_out,
                             uint64_t *fingerprint_out, char *errstr,
                             size_t errstr_size) {
  uint64_t fingerprint = 0;
  size_t i;

  *schema_out = NULL;
  if (len > codec->limits.max_record_bytes)
    return m3b__errstr_set(M3B_ERR_LIMIT, errstr, errstr_size,
                           "record of %zu bytes exceeds max_record_bytes %zu",
                           len, codec->limits.max_record_bytes);
  if (len < 2)
    return m3b__errstr_set(M3B_ERR_TRUNCATED, errstr, errstr_size,
                           "%zu bytes: too short for the magic C3 01", len);
  if (data[0] != 0xC3 || data[1] != 0x01)
    return m3b__errstr_set(M3B_ERR_BAD_MAGIC, errstr, errstr_size,
                           "starts with %02X %02X, expected C3 01", data[0],
                           data[1]);
  if (len < M3B_CODEC_HEADER_SIZE)
    return m3b__errstr_set(M3B_ERR_TRUNCATED, errstr, errstr_size,
                           "%zu bytes: too short for the 8-byte fingerprint",
                           len);
  for (i = 0; i < 8; i++)
    fingerprint |= (uint64_t)data[2 + i] << (8 * i);
  *fingerprint_out = fingerprint;
  *schema_out =
      m3b__schema_registry_by_fingerprint(codec->registry, fingerprint);
  if (!*schema_out)
    return m3b__errstr_set(M3B_ERR_UNKNOWN_SCHEMA, errstr, errstr_size,
                           "no known schema has fingerprint %016llx",
                           (unsigned long long)fingerprint);
  return M3B_OK;
}

m3b_err_t m3b_codec_peek(const m3b_codec_t *codec, const uint8_t *data,
                         size_t len, uint64_t *fingerprint_out,
                         const char **fullname_out, char *errstr,
                         size_t errstr_size) {
  const struct m3b__avro_schema *schema = NULL;
  uint64_t fingerprint = 0;
  m3b_err_t err =
      read_header(codec, data, len, &schema, &fingerprint, errstr, errstr_size);
  if (err)
    return err;
  if (!schema)
    return M3B_ERR_INTERNAL; /* read_header sets it on M3B_OK */
  if (fingerprint_out)
    *fingerprint_out = fingerprint;
  if (fullname_out)
    *fullname_out = schema->root->fullname;
  return M3B_OK;
}

m3b_err_t m3b_codec_decode(const m3b_codec_t *codec, const uint8_t *data,
                           size_t len, const char **fullname_out,
                           json_t **value_out, char *errstr,
                           size_t errstr_size) {
  const struct m3b__avro_schema *writer = NULL;
  const struct m3b__avro_schema *reader;
  uint64_t fingerprint = 0;
  m3b_err_t err;

  *value_out = NULL;
  if (!data && len)
    return M3B_ERR_INVALID_ARG;
  if (!data)
    return m3b__errstr_set(M3B_ERR_TRUNCATED, errstr, errstr_size,
                           "empty input");
  err =
      read_header(codec, data, len, &writer, &fingerprint, errstr, errstr_size);
  if (err)
    return err;
  if (!writer)
    return M3B_ERR_INTERNAL; /* read_header sets it on M3B_OK */
  reader =
      m3b__schema_registry_current(codec->registry, writer->root->fullname);
  if (!reader)
    reader = writer;
  err =
      m3b__avro_decode(writer->root, reader->root, data + M3B_CODEC_HEADER_SIZE,
                       len - M3B_CODEC_HEADER_SIZE, &codec->limits, value_out,
                       errstr, errstr_size);
  if (!err && fullname_out)
    *fullname_out = writer->root->fullname;
  return err;
}
