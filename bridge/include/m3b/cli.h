/*
 * cli.h - subcommand dispatch shared by m3bridge-publisher and
 * m3bridge-listener, so both answer --help, --version, `help CMD` and
 * unknown commands the same way.
 *
 * Exit codes: 0 success, 1 the command failed, 2 usage error.
 */
#ifndef M3B_CLI_H
#define M3B_CLI_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define M3B_EXIT_OK 0
#define M3B_EXIT_FAIL 1
#define M3B_EXIT_USAGE 2

/* A subcommand. run() gets argv with argv[0] == the command name. */
struct m3b_cli_command {
  const char *name;
  const char *summary; /* one line for the program's --help */
  const char *usage;   /* full help text for `PROG help NAME` / `NAME --help` */
  int (*run)(int argc, char **argv);
};

struct m3b_cli_program {
  const char *name;    /* "m3bridge-listener" */
  const char *summary; /* one line */
  const char *epilog;  /* printed after the command list; may be NULL */
  const struct m3b_cli_command *commands; /* ends with a {NULL} entry */
};

/* Runs the program: dispatches argv[1] to its command, handles --help,
 * -h, --version, -V and `help [CMD]`. Returns the process exit code. */
int m3b_cli_main(const struct m3b_cli_program *prog, int argc, char **argv);

/* Non-zero when argv (after the command name) asks for help; commands call
 * this first and print their usage. */
int m3b_cli_wants_help(int argc, char **argv);

/* Parses the options every command that talks to Kafka shares and
 * removes them from argv (compacting it; *argc is updated):
 *   --config FILE       YAML configuration
 *   --plane PLANE       same as --set plane=PLANE
 *   --set NAME=VALUE    any setting (repeatable)
 *   --log-level LEVEL   same as --set log.level=LEVEL
 * Layers, lowest first: defaults, FILE, M3B_* environment, flags. Returns
 * the configuration (owned by the caller) or NULL with errstr filled. The
 * configuration is not validated: call m3b_config_validate(). */
struct m3b_config;
struct m3b_config *m3b_cli_config(unsigned program, int *argc, char **argv,
                                  char *errstr, size_t errstr_size);

/* A JSON-lines logger on stderr at the configuration's log.level
 * (owned by the caller; m3b_log_destroy). */
struct m3b_log;
struct m3b_log *m3b_cli_logger(const struct m3b_config *config);

/* An integer setting, or fallback when it is unset or malformed. */
long long m3b_cli_int(const struct m3b_config *config, const char *name,
                      long long fallback);

#ifdef __cplusplus
}
#endif

#endif
