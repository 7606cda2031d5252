/*
 * cli.h - subcommand dispatch shared by m3bridge-publisher and
 * m3bridge-listener, so both answer --help, --version, `help CMD` and
 * unknown commands the same way.
 *
 * Exit codes: 0 success, 1 the command failed, 2 usage error.
 */
#ifndef M3B_CLI_H
#define M3B_CLI_H

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

#ifdef __cplusplus
}
#endif

#endif
