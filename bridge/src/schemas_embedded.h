/*
 * schemas_embedded.h - the Avro schemas of schemas/, compiled in.
 *
 * The table is generated at build time by cmake/embed_run.cmake; entries are
 * sorted by file name and the list ends with an all-zero sentinel. Texts are
 * NUL-terminated JSON exactly as written in schemas/.
 */
#ifndef M3B_SCHEMAS_EMBEDDED_H
#define M3B_SCHEMAS_EMBEDDED_H

#include <stddef.h>

struct m3b__schema_text {
  const char *name; /* file base name, e.g. "DesiredState.v1" */
  const char *json; /* schema text, NUL-terminated */
  size_t len;       /* strlen(json) */
};

extern const struct m3b__schema_text m3b__schema_texts[];
extern const size_t m3b__schema_text_count;

#endif
