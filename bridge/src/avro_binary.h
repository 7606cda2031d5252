/*
 * avro_binary.h - Avro binary encoding of JSON values (the value model of
 * <m3b/codec.h>) and decoding with schema resolution.
 */
#ifndef M3B_AVRO_BINARY_H
#define M3B_AVRO_BINARY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <m3b/buf.h>
#include <m3b/codec.h>
#include <m3b/err.h>

#include "avro_schema.h"

/* Appends the binary encoding of value as type to out. With limits NULL
 * only out->max bounds the output. */
m3b_err_t m3b__avro_encode(const struct m3b__avro_type *type,
                           const json_t *value,
                           const struct m3b_codec_limits *limits,
                           struct m3b_buf *out, char *errstr,
                           size_t errstr_size);

/* Decodes data[0..len) written with writer into a value of reader, and
 * requires that every byte is used (else M3B_ERR_TRAILING_BYTES). */
m3b_err_t m3b__avro_decode(const struct m3b__avro_type *writer,
                           const struct m3b__avro_type *reader,
                           const uint8_t *data, size_t len,
                           const struct m3b_codec_limits *limits,
                           json_t **value_out, char *errstr,
                           size_t errstr_size);

/* bytes -> a JSON string of code points U+0000..U+00FF, one per byte (the
 * Avro JSON encoding of bytes and fixed). */
m3b_err_t m3b__bytes_to_json(const uint8_t *data, size_t len,
                             json_t **value_out);

/* The reverse: *data_out is malloc'ed (free() it), never NULL on success.
 * M3B_ERR_INVALID_ARG when value is not such a string. */
m3b_err_t m3b__json_to_bytes(const json_t *value, uint8_t **data_out,
                             size_t *len_out);

#endif
