/*
 * config.h - the effective configuration of an m3bridge program.
 *
 * Every setting is declared once, in the settings table of config_table.c:
 * name, type, default, bounds, who uses it and a doc line. The configuration
 * reference (docs/CONFIGURATION.md) is generated from that table and a unit
 * test fails when the file is stale.
 *
 * Sources, lowest precedence first: the table's defaults, a YAML file,
 * environment variables, explicit settings (command-line flags). Apply
 * them in that order; a later m3b_config_set() of a name replaces the value.
 *
 *   YAML      nested maps flatten to dotted names (kafka: {acks: all} is
 *             kafka.acks); sequences become lists.
 *   env       M3B_ + the name upper-cased with '.' as '_' (M3B_LOG_LEVEL);
 *             M3B_KAFKA_<PROPERTY> sets kafka.<property> with '_' as '.'
 *             (librdkafka property names contain no '_').
 *
 * `kafka.*` names not in the table pass straight to librdkafka. Secrets are
 * never configuration values: librdkafka's secret properties are refused
 * with a message naming the *_file setting to use instead, and the *_file
 * settings name files read only when the secret is needed.
 */
#ifndef M3B_CONFIG_H
#define M3B_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum m3b_setting_type {
  M3B_SETTING_STRING,
  M3B_SETTING_INT,        /* decimal, within [min, max] */
  M3B_SETTING_BOOL,       /* true/false, yes/no, on/off, 1/0 */
  M3B_SETTING_LIST,       /* comma-separated, or a YAML sequence */
  M3B_SETTING_PATH,       /* a file path */
  M3B_SETTING_SECRET_FILE /* path of a file holding a secret; never printed */
} m3b_setting_type_t;

/* Which program reads a setting (m3b_setting.programs). */
#define M3B_PROGRAM_PUBLISHER 0x1u
#define M3B_PROGRAM_LISTENER 0x2u
#define M3B_PROGRAM_ALL (M3B_PROGRAM_PUBLISHER | M3B_PROGRAM_LISTENER)

/* m3b_setting.flags */
#define M3B_SETTING_REQUIRED 0x1u /* must be set by some source */

struct m3b_setting {
  const char *name;
  m3b_setting_type_t type;
  const char *default_value; /* NULL: unset */
  long long min, max;        /* M3B_SETTING_INT only */
  unsigned programs;
  unsigned flags;
  const char *doc;
};

/* The settings table (returned-borrowed, static). */
const struct m3b_setting *m3b_settings(size_t *count_out);

/* Limits on what a configuration may hold. */
#define M3B_CONFIG_MAX_ENTRIES 256
#define M3B_CONFIG_MAX_VALUE 4096
#define M3B_CONFIG_MAX_FILE (256L * 1024)

typedef struct m3b_config m3b_config_t;

/* Creates a configuration holding the defaults of the settings `program`
 * uses. Returns NULL (with errstr) only when memory is exhausted. */
m3b_config_t *m3b_config_new(unsigned program, char *errstr,
                             size_t errstr_size);

/* NULL is a no-op. */
void m3b_config_destroy(m3b_config_t *config);

/* Sets name to value, validating both (unknown name, wrong type, out of
 * bounds, a secret given as a value). source names where it came from for
 * messages and --print-config ("flag", "env", "file.yaml"). */
m3b_err_t m3b_config_set(m3b_config_t *config, const char *name,
                         const char *value, const char *source, char *errstr,
                         size_t errstr_size);

/* Sets "name=value" (the form of --set flags). */
m3b_err_t m3b_config_set_pair(m3b_config_t *config, const char *pair,
                              const char *source, char *errstr,
                              size_t errstr_size);

/* Loads a YAML file. Errors name the file and line. */
m3b_err_t m3b_config_load_file(m3b_config_t *config, const char *path,
                               char *errstr, size_t errstr_size);

/* Loads M3B_* variables from envp (NULL-terminated, borrowed). */
m3b_err_t m3b_config_load_env(m3b_config_t *config, char *const *envp,
                              char *errstr, size_t errstr_size);

/* Checks that every required setting of the program is set. */
m3b_err_t m3b_config_validate(const m3b_config_t *config, char *errstr,
                              size_t errstr_size);

/* The value of name (returned-borrowed until the next set), or NULL when
 * unset. For lists, the comma-separated form. */
const char *m3b_config_get(const m3b_config_t *config, const char *name);

/* Typed getters; M3B_ERR_NOT_FOUND when unset. */
m3b_err_t m3b_config_get_int(const m3b_config_t *config, const char *name,
                             long long *value_out);
m3b_err_t m3b_config_get_bool(const m3b_config_t *config, const char *name,
                              int *value_out);

/* Calls fn for each item of a list setting, in order; stops at and
 * returns the first non-zero fn result. */
int m3b_config_each_item(const m3b_config_t *config, const char *name,
                         int (*fn)(const char *item, void *opaque),
                         void *opaque);

/* Calls fn(property, value) for each kafka.* passthrough setting, with
 * the "kafka." prefix removed; stops at the first non-zero result. */
int m3b_config_each_kafka(const m3b_config_t *config,
                          int (*fn)(const char *property, const char *value,
                                    void *opaque),
                          void *opaque);

/* Reads the secret named by a SECRET_FILE setting into a new string (owned
 * by the caller; wipe with OPENSSL_cleanse and free). Trailing newlines are
 * removed. M3B_ERR_NOT_FOUND when the setting is unset; M3B_ERR_IO (with the
 * path, never the content) when the file cannot be read. */
m3b_err_t m3b_config_read_secret(const m3b_config_t *config, const char *name,
                                 char **secret_out, char *errstr,
                                 size_t errstr_size);

/* Writes the effective configuration as YAML-style "name: value  # source"
 * lines; secret files are shown as paths, never contents. */
void m3b_config_print(const m3b_config_t *config, FILE *out);

/* Writes the configuration reference (Markdown) generated from the table. */
void m3b_config_write_reference(FILE *out);

#ifdef __cplusplus
}
#endif

#endif
