/*
 * cli.c - subcommand dispatcher for the m3bridge executables (<m3b/cli.h>).
 * Help goes to stdout (it was asked for); usage errors go to stderr.
 */
#include <m3b/cli.h>

#include <stdio.h>
#include <string.h>

#include <m3b/version.h>

static void print_help(const struct m3b_cli_program *prog, FILE *out) {
  const struct m3b_cli_command *cmd;
  fprintf(out, "%s - %s\n\nUsage: %s COMMAND [OPTIONS]\n\nCommands:\n",
          prog->name, prog->summary, prog->name);
  for (cmd = prog->commands; cmd->name; cmd++)
    fprintf(out, "  %-12s %s\n", cmd->name, cmd->summary);
  fprintf(out, "  %-12s %s\n", "help", "show help for a command");
  fprintf(out, "\nOptions:\n  -h, --help     show this help\n"
               "  -V, --version  show the version\n");
  if (prog->epilog)
    fprintf(out, "\n%s\n", prog->epilog);
  fprintf(out, "\nRun '%s help COMMAND' for a command's options.\n",
          prog->name);
}

static const struct m3b_cli_command *find(const struct m3b_cli_program *prog,
                                          const char *name) {
  const struct m3b_cli_command *cmd;
  for (cmd = prog->commands; cmd->name; cmd++)
    if (strcmp(cmd->name, name) == 0)
      return cmd;
  return NULL;
}

int m3b_cli_wants_help(int argc, char **argv) {
  int i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      return 0;
    if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
      return 1;
  }
  return 0;
}

int m3b_cli_main(const struct m3b_cli_program *prog, int argc, char **argv) {
  const struct m3b_cli_command *cmd;
  const char *arg;

  if (argc < 2) {
    print_help(prog, stderr);
    return M3B_EXIT_USAGE;
  }
  arg = argv[1];
  if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
    print_help(prog, stdout);
    return M3B_EXIT_OK;
  }
  if (strcmp(arg, "-V") == 0 || strcmp(arg, "--version") == 0 ||
      strcmp(arg, "version") == 0) {
    printf("%s %s\n", prog->name, M3B_VERSION);
    return M3B_EXIT_OK;
  }
  if (strcmp(arg, "help") == 0) {
    if (argc < 3) {
      print_help(prog, stdout);
      return M3B_EXIT_OK;
    }
    cmd = find(prog, argv[2]);
    if (!cmd) {
      fprintf(stderr, "%s: unknown command '%s'\n", prog->name, argv[2]);
      return M3B_EXIT_USAGE;
    }
    fputs(cmd->usage, stdout);
    return M3B_EXIT_OK;
  }
  cmd = find(prog, arg);
  if (!cmd) {
    fprintf(stderr, "%s: unknown command '%s' (see '%s --help')\n", prog->name,
            arg, prog->name);
    return M3B_EXIT_USAGE;
  }
  if (m3b_cli_wants_help(argc - 1, argv + 1)) {
    fputs(cmd->usage, stdout);
    return M3B_EXIT_OK;
  }
  return cmd->run(argc - 1, argv + 1);
}
