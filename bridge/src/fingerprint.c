/*
 * fingerprint.c - the CRC-64-AVRO (Rabin) fingerprint of the Avro
 * specification. Computed bit by bit instead of from the usual 256-entry
 * table: schemas are fingerprinted once, when a registry loads them, and
 * this keeps the file free of a generated table or a lazily filled global.
 */
#include <m3b/schema.h>

#define CRC64_AVRO_EMPTY 0xc15d213aa4d7a795ULL

uint64_t m3b_schema_fingerprint(const void *data, size_t len) {
  const uint8_t *p = data;
  uint64_t fp = CRC64_AVRO_EMPTY;
  size_t i;
  int bit;

  for (i = 0; i < len; i++) {
    fp ^= p[i];
    for (bit = 0; bit < 8; bit++)
      fp = (fp >> 1) ^ (CRC64_AVRO_EMPTY & (0 - (fp & 1)));
  }
  return fp;
}
