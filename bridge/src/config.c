/*
 * config.c - layered configuration (<m3b/config.h>): defaults, YAML file,
 * environment, flags; validation against the settings table; kafka.*
 * passthrough with secrets refused; secret files read on demand.
 *
 * Storage is a fixed-size array of entries: a configuration is small, and
 * bounded storage means a hostile file cannot exhaust memory.
 */
#include <m3b/config.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <yaml.h>

#include "errstr.h"

struct entry {
  char *name;
  char *value;
  char source[64];
  const struct m3b_setting *def; /* NULL for kafka.* passthrough */
};

struct m3b_config {
  unsigned program;
  size_t count;
  struct entry entries[M3B_CONFIG_MAX_ENTRIES];
};

/* librdkafka properties that hold secrets: never accepted as values. */
static const struct {
  const char *property;
  const char *instead;
} refused_secrets[] = {
    {"sasl.password", "kafka.sasl.password_file"},
    {"ssl.key.password", "kafka.ssl.key.password_file"},
    {"ssl.keystore.password", "kafka.ssl.keystore.password_file"},
    {"ssl.key.pem", "kafka.ssl.key.location"},
    {"sasl.oauthbearer.client.secret", "a file (not yet supported)"},
    {"sasl.oauthbearer.config", "a file (not yet supported)"},
};

/* fail(errstr, size, err, fmt, ...): fill the detail and return err. */
#define fail(errstr, size, err, ...)                                           \
  m3b__errstr_set(err, errstr, size, __VA_ARGS__)

static const struct m3b_setting *find_def(const char *name) {
  size_t count, i;
  const struct m3b_setting *defs = m3b_settings(&count);
  for (i = 0; i < count; i++)
    if (strcmp(defs[i].name, name) == 0)
      return &defs[i];
  return NULL;
}

static struct entry *find_entry(const m3b_config_t *config, const char *name) {
  size_t i;
  for (i = 0; i < config->count; i++)
    if (strcmp(config->entries[i].name, name) == 0)
      return (struct entry *)&config->entries[i];
  return NULL;
}

m3b_config_t *m3b_config_new(unsigned program, char *errstr,
                             size_t errstr_size) {
  size_t count, i;
  const struct m3b_setting *defs = m3b_settings(&count);
  m3b_config_t *config = calloc(1, sizeof(*config));

  if (!config) {
    fail(errstr, errstr_size, M3B_ERR_NOMEM, "out of memory");
    return NULL;
  }
  config->program = program;
  for (i = 0; i < count; i++) {
    if (!(defs[i].programs & program) || !defs[i].default_value)
      continue;
    if (m3b_config_set(config, defs[i].name, defs[i].default_value, "default",
                       errstr, errstr_size) != M3B_OK) {
      m3b_config_destroy(config);
      return NULL;
    }
  }
  return config;
}

void m3b_config_destroy(m3b_config_t *config) {
  size_t i;
  if (!config)
    return;
  for (i = 0; i < config->count; i++) {
    free(config->entries[i].name);
    free(config->entries[i].value);
  }
  free(config);
}

static int parse_bool(const char *value, int *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  size_t i;
  for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
    if (strcasecmp(value, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(value, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return -1;
}

static int parse_int(const char *value, long long *out) {
  char *end = NULL;
  long long v;
  errno = 0;
  v = strtoll(value, &end, 10);
  if (errno || end == value || *end)
    return -1;
  *out = v;
  return 0;
}

static m3b_err_t check_value(const struct m3b_setting *def, const char *value,
                             char *errstr, size_t errstr_size) {
  long long n;
  int b;
  switch (def->type) {
  case M3B_SETTING_INT:
    if (parse_int(value, &n))
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s: '%s' is not an integer", def->name, value);
    if (n < def->min || n > def->max)
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s: %lld is outside [%lld, %lld]", def->name, n, def->min,
                  def->max);
    break;
  case M3B_SETTING_BOOL:
    if (parse_bool(value, &b))
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s: '%s' is not a boolean (true/false)", def->name, value);
    break;
  case M3B_SETTING_STRING:
  case M3B_SETTING_LIST:
  case M3B_SETTING_PATH:
  case M3B_SETTING_SECRET_FILE: break;
  }
  if (strcmp(def->name, "plane") == 0) {
    size_t i, len = strlen(value);
    int ok = len > 0 && len <= 63 && isalnum((unsigned char)value[0]) &&
             isalnum((unsigned char)value[len - 1]);
    for (i = 0; ok && i < len; i++)
      ok = islower((unsigned char)value[i]) ||
           isdigit((unsigned char)value[i]) || value[i] == '-';
    if (!ok)
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "plane: '%s' is not a DNS label (lower-case letters, digits "
                  "and '-', at most 63, starting and ending alphanumeric)",
                  value);
  }
  if (strcmp(def->name, "log.level") == 0 && strcasecmp(value, "error") != 0 &&
      strcasecmp(value, "warn") != 0 && strcasecmp(value, "info") != 0 &&
      strcasecmp(value, "debug") != 0)
    return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                "log.level: '%s' is not one of error, warn, info, debug",
                value);
  return M3B_OK;
}

static m3b_err_t check_kafka_property(const char *name, char *errstr,
                                      size_t errstr_size) {
  const char *property = name + strlen("kafka.");
  size_t i;
  if (!*property)
    return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                "'kafka.' must be followed by a librdkafka property name");
  for (i = 0; property[i]; i++)
    if (!(islower((unsigned char)property[i]) ||
          isdigit((unsigned char)property[i]) || property[i] == '.'))
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s: librdkafka property names hold only a-z, 0-9 and '.'",
                  name);
  for (i = 0; i < sizeof(refused_secrets) / sizeof(refused_secrets[0]); i++)
    if (strcmp(property, refused_secrets[i].property) == 0)
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s: secrets are never configuration values; put it in a "
                  "file readable only by this program and set %s",
                  name, refused_secrets[i].instead);
  return M3B_OK;
}

m3b_err_t m3b_config_set(m3b_config_t *config, const char *name,
                         const char *value, const char *source, char *errstr,
                         size_t errstr_size) {
  const struct m3b_setting *def;
  struct entry *entry;
  char *name_copy = NULL, *value_copy;
  m3b_err_t err;

  if (!config || !name || !value)
    return fail(errstr, errstr_size, M3B_ERR_INVALID_ARG, "missing argument");
  if (strlen(value) >= M3B_CONFIG_MAX_VALUE)
    return fail(errstr, errstr_size, M3B_ERR_LIMIT,
                "%s: value longer than %d bytes", name, M3B_CONFIG_MAX_VALUE);
  def = find_def(name);
  if (def) {
    err = check_value(def, value, errstr, errstr_size);
    if (err)
      return err;
  } else if (strncmp(name, "kafka.", 6) == 0) {
    err = check_kafka_property(name, errstr, errstr_size);
    if (err)
      return err;
  } else {
    return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                "unknown setting '%s' (see docs/CONFIGURATION.md)", name);
  }

  entry = find_entry(config, name);
  if (!entry && config->count == M3B_CONFIG_MAX_ENTRIES)
    return fail(errstr, errstr_size, M3B_ERR_LIMIT, "more than %d settings",
                M3B_CONFIG_MAX_ENTRIES);
  value_copy = strdup(value);
  if (!entry)
    name_copy = strdup(name);
  if (!value_copy || (!entry && !name_copy)) {
    free(value_copy);
    free(name_copy);
    return fail(errstr, errstr_size, M3B_ERR_NOMEM, "out of memory");
  }
  if (!entry) {
    entry = &config->entries[config->count++];
    entry->name = name_copy;
    entry->def = def;
  } else {
    free(entry->value);
  }
  entry->value = value_copy;
  snprintf(entry->source, sizeof(entry->source), "%s", source ? source : "set");
  return M3B_OK;
}

m3b_err_t m3b_config_set_pair(m3b_config_t *config, const char *pair,
                              const char *source, char *errstr,
                              size_t errstr_size) {
  char name[256];
  const char *eq = strchr(pair, '=');
  size_t n;
  if (!eq || eq == pair)
    return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                "'%s' is not of the form name=value", pair);
  n = (size_t)(eq - pair);
  if (n >= sizeof(name))
    return fail(errstr, errstr_size, M3B_ERR_CONFIG, "setting name too long");
  memcpy(name, pair, n);
  name[n] = '\0';
  return m3b_config_set(config, name, eq + 1, source, errstr, errstr_size);
}

/* --- YAML ---------------------------------------------------------------- */

#define YAML_MAX_DEPTH 8
#define YAML_MAX_KEY 128

/* Parser state: the keys of the enclosing maps (stack) and the key that
 * awaits its value; the full setting name is stack + key joined by '.'. */
struct yaml_state {
  m3b_config_t *config;
  const char *path;
  char stack[YAML_MAX_DEPTH][YAML_MAX_KEY];
  int nstack;
  int depth; /* open maps, the root included */
  char key[YAML_MAX_KEY];
  int have_key;
  int in_list;
  char list[M3B_CONFIG_MAX_VALUE];
  size_t list_len;
};

static m3b_err_t yaml_full_name(const struct yaml_state *st, char *out,
                                size_t size, char *errstr, size_t errstr_size) {
  size_t pos = 0;
  int i, n;
  out[0] = '\0';
  for (i = 0; i < st->nstack; i++) {
    n = snprintf(out + pos, size - pos, "%s.", st->stack[i]);
    if (n < 0 || (size_t)n >= size - pos)
      return fail(errstr, errstr_size, M3B_ERR_LIMIT, "%s: name too long",
                  st->path);
    pos += (size_t)n;
  }
  n = snprintf(out + pos, size - pos, "%s", st->key);
  if (n < 0 || (size_t)n >= size - pos)
    return fail(errstr, errstr_size, M3B_ERR_LIMIT, "%s: name too long",
                st->path);
  return M3B_OK;
}

static m3b_err_t yaml_set(struct yaml_state *st, const char *value,
                          unsigned long line, char *errstr,
                          size_t errstr_size) {
  char name[YAML_MAX_DEPTH * YAML_MAX_KEY + YAML_MAX_KEY];
  char msg[512];
  m3b_err_t err = yaml_full_name(st, name, sizeof(name), errstr, errstr_size);
  if (err)
    return err;
  st->have_key = 0;
  err = m3b_config_set(st->config, name, value, st->path, msg, sizeof(msg));
  if (err)
    return fail(errstr, errstr_size, err, "%s:%lu: %s", st->path, line, msg);
  return M3B_OK;
}

static m3b_err_t yaml_scalar(struct yaml_state *st, const char *text,
                             size_t len, unsigned long line, char *errstr,
                             size_t errstr_size) {
  if (st->depth == 0)
    return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                "%s:%lu: the file must be a map of settings", st->path, line);
  if (st->in_list) {
    if (memchr(text, ',', len))
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s:%lu: list items may not contain ','", st->path, line);
    if (st->list_len + len + 2 >= sizeof(st->list))
      return fail(errstr, errstr_size, M3B_ERR_LIMIT, "%s:%lu: list too long",
                  st->path, line);
    if (st->list_len)
      st->list[st->list_len++] = ',';
    memcpy(st->list + st->list_len, text, len);
    st->list_len += len;
    st->list[st->list_len] = '\0';
    return M3B_OK;
  }
  if (st->have_key)
    return yaml_set(st, text, line, errstr, errstr_size);
  if (len >= YAML_MAX_KEY)
    return fail(errstr, errstr_size, M3B_ERR_LIMIT, "%s:%lu: key too long",
                st->path, line);
  memcpy(st->key, text, len);
  st->key[len] = '\0';
  st->have_key = 1;
  return M3B_OK;
}

static m3b_err_t yaml_event(struct yaml_state *st, const yaml_event_t *ev,
                            char *errstr, size_t errstr_size) {
  unsigned long line = (unsigned long)ev->start_mark.line + 1;

  switch (ev->type) {
  case YAML_MAPPING_START_EVENT:
    if (st->in_list)
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s:%lu: lists hold plain values, not maps", st->path, line);
    if (st->depth > 0) {
      if (!st->have_key)
        return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                    "%s:%lu: a map cannot be a key", st->path, line);
      if (st->nstack == YAML_MAX_DEPTH)
        return fail(errstr, errstr_size, M3B_ERR_LIMIT,
                    "%s:%lu: nested deeper than %d", st->path, line,
                    YAML_MAX_DEPTH);
      memcpy(st->stack[st->nstack++], st->key, sizeof(st->key));
      st->have_key = 0;
    }
    st->depth++;
    return M3B_OK;
  case YAML_MAPPING_END_EVENT:
    st->depth--;
    if (st->depth > 0)
      st->nstack--;
    st->have_key = 0;
    return M3B_OK;
  case YAML_SEQUENCE_START_EVENT:
    if (!st->have_key || st->in_list)
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "%s:%lu: a list must be the value of a setting", st->path,
                  line);
    st->in_list = 1;
    st->list_len = 0;
    st->list[0] = '\0';
    return M3B_OK;
  case YAML_SEQUENCE_END_EVENT:
    st->in_list = 0;
    return yaml_set(st, st->list, line, errstr, errstr_size);
  case YAML_SCALAR_EVENT:
    return yaml_scalar(st, (const char *)ev->data.scalar.value,
                       ev->data.scalar.length, line, errstr, errstr_size);
  case YAML_ALIAS_EVENT:
    return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                "%s:%lu: YAML aliases are not supported", st->path, line);
  case YAML_NO_EVENT:
  case YAML_STREAM_START_EVENT:
  case YAML_STREAM_END_EVENT:
  case YAML_DOCUMENT_START_EVENT:
  case YAML_DOCUMENT_END_EVENT: break;
  }
  return M3B_OK;
}

m3b_err_t m3b_config_load_file(m3b_config_t *config, const char *path,
                               char *errstr, size_t errstr_size) {
  yaml_parser_t parser;
  yaml_event_t event;
  struct yaml_state *st;
  m3b_err_t err = M3B_OK;
  FILE *f;
  long size;
  int done = 0;

  f = fopen(path, "rb");
  if (!f)
    return fail(errstr, errstr_size, M3B_ERR_IO, "%s: %s", path,
                strerror(errno));
  size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
  if (size > M3B_CONFIG_MAX_FILE) {
    fclose(f);
    return fail(errstr, errstr_size, M3B_ERR_LIMIT, "%s: larger than %ld bytes",
                path, M3B_CONFIG_MAX_FILE);
  }
  rewind(f);
  st = calloc(1, sizeof(*st));
  if (!st) {
    fclose(f);
    return fail(errstr, errstr_size, M3B_ERR_NOMEM, "out of memory");
  }
  st->config = config;
  st->path = path;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  while (!done) {
    if (!yaml_parser_parse(&parser, &event)) {
      err = fail(errstr, errstr_size, M3B_ERR_CONFIG, "%s:%lu: %s", path,
                 (unsigned long)parser.problem_mark.line + 1,
                 parser.problem ? parser.problem : "invalid YAML");
      break;
    }
    err = yaml_event(st, &event, errstr, errstr_size);
    done = event.type == YAML_STREAM_END_EVENT;
    yaml_event_delete(&event);
    if (err)
      break;
  }
  yaml_parser_delete(&parser);
  free(st);
  fclose(f);
  return err;
}

/* --- environment -----------------------------------------------------------
 */

/* The environment variable of a setting: M3B_ + NAME with '.' as '_'. */
static void env_name_of(const char *name, char *out, size_t size) {
  size_t i;
  if (snprintf(out, size, "M3B_%s", name) < 0)
    out[0] = '\0';
  for (i = 4; out[i]; i++) {
    char c = out[i];
    if (c == '.')
      out[i] = '_';
    else if (c >= 'a' && c <= 'z')
      out[i] = (char)(c - 'a' + 'A');
  }
}

m3b_err_t m3b_config_load_env(m3b_config_t *config, char *const *envp,
                              char *errstr, size_t errstr_size) {
  size_t count, i;
  const struct m3b_setting *defs = m3b_settings(&count);
  char *const *var;
  m3b_err_t err;

  if (!envp)
    return M3B_OK;
  for (var = envp; *var; var++) {
    const char *eq = strchr(*var, '=');
    char env_name[256], name[256];
    size_t n;
    int matched = 0;
    if (!eq || strncmp(*var, "M3B_", 4) != 0)
      continue;
    n = (size_t)(eq - *var);
    if (n >= sizeof(env_name))
      continue;
    memcpy(env_name, *var, n);
    env_name[n] = '\0';
    for (i = 0; i < count && !matched; i++) {
      char want[256];
      env_name_of(defs[i].name, want, sizeof(want));
      if (strcmp(want, env_name) == 0) {
        err = m3b_config_set(config, defs[i].name, eq + 1, "env", errstr,
                             errstr_size);
        if (err)
          return err;
        matched = 1;
      }
    }
    if (!matched && strncmp(env_name, "M3B_KAFKA_", 10) == 0) {
      size_t j;
      snprintf(name, sizeof(name), "kafka.%s", env_name + 10);
      for (j = 6; name[j]; j++) {
        char c = name[j];
        if (c == '_')
          name[j] = '.';
        else if (c >= 'A' && c <= 'Z')
          name[j] = (char)(c - 'A' + 'a');
      }
      err = m3b_config_set(config, name, eq + 1, "env", errstr, errstr_size);
      if (err)
        return err;
    }
    /* other M3B_* variables (test bed, build) are not settings */
  }
  return M3B_OK;
}

/* --- queries ------------------------------------------------------------- */

m3b_err_t m3b_config_validate(const m3b_config_t *config, char *errstr,
                              size_t errstr_size) {
  size_t count, i;
  const struct m3b_setting *defs = m3b_settings(&count);
  for (i = 0; i < count; i++) {
    if (!(defs[i].programs & config->program) ||
        !(defs[i].flags & M3B_SETTING_REQUIRED))
      continue;
    if (!find_entry(config, defs[i].name)) {
      char env[128];
      env_name_of(defs[i].name, env, sizeof(env));
      return fail(errstr, errstr_size, M3B_ERR_CONFIG,
                  "'%s' is required: set it in the config file, as %s, or "
                  "with --set %s=VALUE",
                  defs[i].name, env, defs[i].name);
    }
  }
  return M3B_OK;
}

const char *m3b_config_get(const m3b_config_t *config, const char *name) {
  const struct entry *entry = find_entry(config, name);
  return entry ? entry->value : NULL;
}

m3b_err_t m3b_config_get_int(const m3b_config_t *config, const char *name,
                             long long *value_out) {
  const char *value = m3b_config_get(config, name);
  if (!value)
    return M3B_ERR_NOT_FOUND;
  return parse_int(value, value_out) ? M3B_ERR_CONFIG : M3B_OK;
}

m3b_err_t m3b_config_get_bool(const m3b_config_t *config, const char *name,
                              int *value_out) {
  const char *value = m3b_config_get(config, name);
  if (!value)
    return M3B_ERR_NOT_FOUND;
  return parse_bool(value, value_out) ? M3B_ERR_CONFIG : M3B_OK;
}

int m3b_config_each_item(const m3b_config_t *config, const char *name,
                         int (*fn)(const char *item, void *opaque),
                         void *opaque) {
  const char *value = m3b_config_get(config, name);
  char item[M3B_CONFIG_MAX_VALUE];
  while (value && *value) {
    size_t n = strcspn(value, ",");
    size_t start = 0, end = n;
    int rc;
    while (start < end && isspace((unsigned char)value[start]))
      start++;
    while (end > start && isspace((unsigned char)value[end - 1]))
      end--;
    if (end > start) {
      memcpy(item, value + start, end - start);
      item[end - start] = '\0';
      rc = fn(item, opaque);
      if (rc)
        return rc;
    }
    value += n + (value[n] == ',');
  }
  return 0;
}

int m3b_config_each_kafka(const m3b_config_t *config,
                          int (*fn)(const char *property, const char *value,
                                    void *opaque),
                          void *opaque) {
  size_t i;
  for (i = 0; i < config->count; i++) {
    const struct entry *entry = &config->entries[i];
    int rc;
    if (entry->def || strncmp(entry->name, "kafka.", 6) != 0)
      continue;
    rc = fn(entry->name + 6, entry->value, opaque);
    if (rc)
      return rc;
  }
  return 0;
}

m3b_err_t m3b_config_read_secret(const m3b_config_t *config, const char *name,
                                 char **secret_out, char *errstr,
                                 size_t errstr_size) {
  const char *path = m3b_config_get(config, name);
  char *secret;
  size_t n;
  FILE *f;

  *secret_out = NULL;
  if (!path)
    return M3B_ERR_NOT_FOUND;
  f = fopen(path, "rb");
  if (!f)
    return fail(errstr, errstr_size, M3B_ERR_IO, "%s: cannot read %s: %s", name,
                path, strerror(errno));
  secret = malloc(M3B_CONFIG_MAX_VALUE + 1);
  if (!secret) {
    fclose(f);
    return fail(errstr, errstr_size, M3B_ERR_NOMEM, "out of memory");
  }
  n = fread(secret, 1, M3B_CONFIG_MAX_VALUE + 1, f);
  fclose(f);
  if (n > M3B_CONFIG_MAX_VALUE) {
    OPENSSL_cleanse(secret, M3B_CONFIG_MAX_VALUE + 1);
    free(secret);
    return fail(errstr, errstr_size, M3B_ERR_LIMIT,
                "%s: %s is larger than %d bytes", name, path,
                M3B_CONFIG_MAX_VALUE);
  }
  while (n && (secret[n - 1] == '\n' || secret[n - 1] == '\r'))
    n--;
  secret[n] = '\0';
  *secret_out = secret;
  return M3B_OK;
}

void m3b_config_print(const m3b_config_t *config, FILE *out) {
  size_t i;
  for (i = 0; i < config->count; i++) {
    const struct entry *entry = &config->entries[i];
    fprintf(out, "%s: %s  # %s%s\n", entry->name, entry->value, entry->source,
            entry->def && entry->def->type == M3B_SETTING_SECRET_FILE
                ? " (a file; its content is not shown)"
                : "");
  }
}

static const char *type_name(m3b_setting_type_t type) {
  switch (type) {
  case M3B_SETTING_STRING: return "string";
  case M3B_SETTING_INT: return "integer";
  case M3B_SETTING_BOOL: return "boolean";
  case M3B_SETTING_LIST: return "list";
  case M3B_SETTING_PATH: return "path";
  case M3B_SETTING_SECRET_FILE: return "secret file";
  }
  return "?";
}

void m3b_config_write_reference(FILE *out) {
  size_t count, i;
  const struct m3b_setting *defs = m3b_settings(&count);

  fputs("# Configuration reference\n\n"
        "Generated from bridge/src/config_table.c by "
        "`m3bridge-listener config-reference`; do not edit by hand (a unit "
        "test fails when this file is stale).\n\n"
        "Sources, lowest precedence first: defaults, the YAML file "
        "(`--config`), environment variables, `--set name=value` flags. "
        "Nested YAML maps flatten to dotted names. The environment variable "
        "of a setting is `M3B_` and its name upper-cased with `.` as `_`.\n\n"
        "Any other `kafka.<property>` passes straight to librdkafka "
        "(environment: `M3B_KAFKA_<PROPERTY>` with `_` as `.`). librdkafka's "
        "secret properties (`sasl.password`, `ssl.key.password`, "
        "`ssl.keystore.password`, `ssl.key.pem`, OAUTHBEARER secrets) are "
        "refused as values: secrets are read from the `*_file` settings "
        "below, only when needed, and are never printed or logged.\n\n"
        "| setting | type | default | used by | |\n"
        "|---|---|---|---|---|\n",
        out);
  for (i = 0; i < count; i++) {
    const struct m3b_setting *def = &defs[i];
    const char *who = def->programs == M3B_PROGRAM_ALL         ? "both"
                      : def->programs == M3B_PROGRAM_PUBLISHER ? "publisher"
                                                               : "listener";
    fprintf(out, "| `%s` | %s", def->name, type_name(def->type));
    if (def->type == M3B_SETTING_INT)
      fprintf(out, " [%lld, %lld]", def->min, def->max);
    fprintf(out, " | %s%s%s | %s | %s |\n", def->default_value ? "`" : "",
            def->default_value                    ? def->default_value
            : (def->flags & M3B_SETTING_REQUIRED) ? "required"
                                                  : "unset",
            def->default_value ? "`" : "", who, def->doc);
  }
}
