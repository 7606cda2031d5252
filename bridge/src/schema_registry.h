/*
 * schema_registry.h - what the codec needs from the registry beyond the
 * public API: the parsed schemas themselves.
 */
#ifndef M3B_SCHEMA_REGISTRY_H
#define M3B_SCHEMA_REGISTRY_H

#include <stdint.h>

#include <m3b/schema.h>

#include "avro_schema.h"

/* The schema with this fingerprint, or NULL. Borrowed. */
const struct m3b__avro_schema *
m3b__schema_registry_by_fingerprint(const m3b_schema_registry_t *registry,
                                    uint64_t fingerprint);

/* The current schema of a record full name, or NULL. Borrowed. */
const struct m3b__avro_schema *
m3b__schema_registry_current(const m3b_schema_registry_t *registry,
                             const char *fullname);

#endif
