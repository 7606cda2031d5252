/*
 * cli_config.c - the configuration options shared by the m3bridge commands
 * (m3b_cli_config in <m3b/cli.h>): file, environment and flag layers.
 */
#include <m3b/cli.h>
#include <m3b/config.h>
#include <m3b/log.h>

#include <stdio.h>
#include <string.h>

#include "errstr.h"

extern char **environ;

/* Value of an option given as "--name VALUE" or "--name=VALUE" at argv[*i];
 * advances *i past a separate value. NULL when argv[*i] is not --name. */
static const char *option_value(int argc, char **argv, int *i, const char *name,
                                int *missing) {
  size_t n = strlen(name);
  *missing = 0;
  if (strncmp(argv[*i], name, n) != 0)
    return NULL;
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (argv[*i][n] != '\0')
    return NULL;
  if (*i + 1 >= argc || !argv[*i + 1]) {
    *missing = 1;
    return NULL;
  }
  (*i)++;
  return argv[*i];
}

/* --plane and --log-level, shortcuts for --set of one setting. */
static int shortcut(m3b_config_t *config, int argc, char **argv, int *i,
                    int *matched, char *errstr, size_t errstr_size) {
  static const struct {
    const char *flag;
    const char *setting;
  } shortcuts[] = {{"--plane", "plane"}, {"--log-level", "log.level"}};
  size_t k;
  int missing;
  *matched = 0;
  for (k = 0; k < sizeof(shortcuts) / sizeof(shortcuts[0]); k++) {
    const char *v = option_value(argc, argv, i, shortcuts[k].flag, &missing);
    if (missing) {
      m3b__errstr(errstr, errstr_size, "%s needs a value", shortcuts[k].flag);
      return -1;
    }
    if (v) {
      *matched = 1;
      return m3b_config_set(config, shortcuts[k].setting, v, "flag", errstr,
                            errstr_size)
                 ? -1
                 : 0;
    }
  }
  return 0;
}

struct m3b_config *m3b_cli_config(unsigned program, int *argc, char **argv,
                                  char *errstr, size_t errstr_size) {
  m3b_config_t *config = m3b_config_new(program, errstr, errstr_size);
  const char *file = NULL;
  int i, out = 1, missing;
  char pair[4200];

  if (!config)
    return NULL;
  /* pass 1: the file, which sits below env and flags */
  for (i = 1; i < *argc && argv[i]; i++) {
    const char *v = option_value(*argc, argv, &i, "--config", &missing);
    if (missing) {
      m3b__errstr(errstr, errstr_size, "--config needs a FILE");
      goto fail;
    }
    if (v)
      file = v;
  }
  if (file && m3b_config_load_file(config, file, errstr, errstr_size))
    goto fail;
  if (m3b_config_load_env(config, environ, errstr, errstr_size))
    goto fail;
  /* pass 2: flags, removed from argv */
  for (i = 1; i < *argc && argv[i]; i++) {
    const char *v;
    int matched;
    if (strcmp(argv[i], "--") == 0) {
      while (i < *argc)
        argv[out++] = argv[i++];
      break;
    }
    if (option_value(*argc, argv, &i, "--config", &missing))
      continue;
    if (shortcut(config, *argc, argv, &i, &matched, errstr, errstr_size))
      goto fail;
    if (matched)
      continue;
    v = option_value(*argc, argv, &i, "--set", &missing);
    if (missing) {
      m3b__errstr(errstr, errstr_size, "--set needs NAME=VALUE");
      goto fail;
    }
    if (v) {
      snprintf(pair, sizeof(pair), "%s", v);
      if (m3b_config_set_pair(config, pair, "flag", errstr, errstr_size))
        goto fail;
      continue;
    }
    argv[out++] = argv[i];
  }
  *argc = out;
  argv[out] = NULL;
  return config;

fail:
  m3b_config_destroy(config);
  return NULL;
}

struct m3b_log *m3b_cli_logger(const struct m3b_config *config) {
  m3b_log_level_t level = M3B_LOG_INFO;
  const char *name = m3b_config_get(config, "log.level");
  if (name && m3b_log_level_parse(name, &level) != M3B_OK)
    level = M3B_LOG_INFO;
  return m3b_log_new(stderr, level);
}

long long m3b_cli_int(const struct m3b_config *config, const char *name,
                      long long fallback) {
  long long value;
  return m3b_config_get_int(config, name, &value) == M3B_OK ? value : fallback;
}
