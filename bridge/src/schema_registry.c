/*
 * schema_registry.c - the set of known Avro schemas, by fingerprint, and
 * the current schema of each record name (<m3b/schema.h>).
 *
 * Registries are small (a handful of records, a few versions each), so a
 * flat array with linear search is the whole data structure. The registry
 * is immutable once the codecs using it start, which makes it safe to
 * share between threads without locks.
 */
#include "schema_registry.h"

#include <stdlib.h>
#include <string.h>

#include "errstr.h"
#include "schemas_embedded.h"

#define REGISTRY_MAX 1024

struct entry {
  struct m3b__avro_schema *schema; /* owned */
  int current;
};

struct m3b_schema_registry {
  struct entry *entries;
  size_t count;
  size_t cap;
};

m3b_schema_registry_t *m3b_schema_registry_new(char *errstr,
                                               size_t errstr_size) {
  m3b_schema_registry_t *registry = calloc(1, sizeof(*registry));
  if (!registry)
    m3b__errstr_set(M3B_ERR_NOMEM, errstr, errstr_size, "out of memory");
  return registry;
}

void m3b_schema_registry_destroy(m3b_schema_registry_t *registry) {
  size_t i;
  if (!registry)
    return;
  for (i = 0; i < registry->count; i++)
    m3b__avro_schema_free(registry->entries[i].schema);
  free(registry->entries);
  free(registry);
}

m3b_schema_registry_t *m3b_schema_registry_new_builtin(char *errstr,
                                                       size_t errstr_size) {
  m3b_schema_registry_t *registry =
      m3b_schema_registry_new(errstr, errstr_size);
  size_t i;
  char detail[256];

  for (i = 0; registry && i < m3b__schema_text_count; i++) {
    const struct m3b__schema_text *text = &m3b__schema_texts[i];
    m3b_err_t err = m3b_schema_registry_add(registry, text->json, text->len,
                                            M3B_SCHEMA_CURRENT, NULL, detail,
                                            sizeof(detail));
    if (err) {
      m3b__errstr_set(err, errstr, errstr_size, "built-in schema %s: %s",
                      text->name, detail);
      m3b_schema_registry_destroy(registry);
      registry = NULL;
    }
  }
  return registry;
}

static struct entry *find_fingerprint(const m3b_schema_registry_t *registry,
                                      uint64_t fingerprint) {
  size_t i;
  for (i = 0; i < registry->count; i++) {
    if (registry->entries[i].schema->fingerprint == fingerprint)
      return &registry->entries[i];
  }
  return NULL;
}

static void clear_current(m3b_schema_registry_t *registry,
                          const char *fullname) {
  size_t i;
  for (i = 0; i < registry->count; i++) {
    if (strcmp(registry->entries[i].schema->root->fullname, fullname) == 0)
      registry->entries[i].current = 0;
  }
}

m3b_err_t m3b_schema_registry_add(m3b_schema_registry_t *registry,
                                  const char *json, size_t len, int flags,
                                  uint64_t *fingerprint_out, char *errstr,
                                  size_t errstr_size) {
  struct m3b__avro_schema *schema = NULL;
  struct entry *entry;
  m3b_err_t err;

  err = m3b__avro_schema_parse(json, len, &schema, errstr, errstr_size);
  if (err)
    goto out;
  if (schema->root->kind != M3B__AVRO_RECORD) {
    err = m3b__errstr_set(M3B_ERR_SCHEMA, errstr, errstr_size,
                          "an event schema must be a record, not %s",
                          m3b__avro_kind_name(schema->root->kind));
    goto out;
  }
  if (fingerprint_out)
    *fingerprint_out = schema->fingerprint;
  entry = find_fingerprint(registry, schema->fingerprint);
  if (!entry) {
    if (registry->count == REGISTRY_MAX) {
      err = m3b__errstr_set(M3B_ERR_LIMIT, errstr, errstr_size,
                            "registry holds %d schemas already", REGISTRY_MAX);
      goto out;
    }
    if (registry->count == registry->cap) {
      size_t cap = registry->cap ? registry->cap * 2 : 8;
      struct entry *entries =
          realloc(registry->entries, cap * sizeof(*entries));
      if (!entries) {
        err = M3B_ERR_NOMEM;
        goto out;
      }
      registry->entries = entries;
      registry->cap = cap;
    }
    entry = &registry->entries[registry->count++];
    entry->schema = schema;
    entry->current = 0;
    schema = NULL;
  }
  if (flags & M3B_SCHEMA_CURRENT) {
    clear_current(registry, entry->schema->root->fullname);
    entry->current = 1;
  }
out:
  m3b__avro_schema_free(schema);
  return err;
}

const struct m3b__avro_schema *
m3b__schema_registry_by_fingerprint(const m3b_schema_registry_t *registry,
                                    uint64_t fingerprint) {
  const struct entry *entry = find_fingerprint(registry, fingerprint);
  return entry ? entry->schema : NULL;
}

const struct m3b__avro_schema *
m3b__schema_registry_current(const m3b_schema_registry_t *registry,
                             const char *fullname) {
  size_t i;
  for (i = 0; i < registry->count; i++) {
    const struct entry *entry = &registry->entries[i];
    if (entry->current && strcmp(entry->schema->root->fullname, fullname) == 0)
      return entry->schema;
  }
  return NULL;
}

m3b_err_t m3b_schema_registry_current(const m3b_schema_registry_t *registry,
                                      const char *fullname,
                                      uint64_t *fingerprint_out) {
  const struct m3b__avro_schema *schema =
      m3b__schema_registry_current(registry, fullname);
  if (!schema)
    return M3B_ERR_NOT_FOUND;
  *fingerprint_out = schema->fingerprint;
  return M3B_OK;
}

size_t m3b_schema_registry_count(const m3b_schema_registry_t *registry) {
  return registry->count;
}
