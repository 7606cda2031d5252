/*
 * main.c - m3bridge-listener, the data-plane side of m3bridge.
 *
 * It runs inside the customer's cluster, consumes signed desired-state events
 * from the plane's Kafka topics, applies them to the local Kubernetes API
 * and reports status back. Commands are added here as they are built; each
 * lives in its own file of this folder.
 */
#include <stdio.h>

#include <m3b/cli.h>
#include <m3b/config.h>
#include <m3b/version.h>

static int cmd_version(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("m3bridge-listener %s\n", M3B_VERSION);
  return M3B_EXIT_OK;
}

static int cmd_config_reference(int argc, char **argv) {
  (void)argc;
  (void)argv;
  m3b_config_write_reference(stdout);
  return M3B_EXIT_OK;
}

static const struct m3b_cli_command commands[] = {
    {"config-reference", "print the configuration reference (Markdown)",
     "Usage: m3bridge-listener config-reference\n\n"
     "Prints every setting with its type, default and meaning, generated\n"
     "from the settings table (this is docs/CONFIGURATION.md).\n",
     cmd_config_reference},
    {"version", "print the version", "Usage: m3bridge-listener version\n",
     cmd_version},
    {NULL, NULL, NULL, NULL}};

static const struct m3b_cli_program program = {
    "m3bridge-listener",
    "apply a control plane's signed desired state to this Kubernetes cluster",
    "Documentation: docs/ARCHITECTURE.md, docs/OPERATIONS.md", commands};

int main(int argc, char **argv) {
  return m3b_cli_main(&program, argc, argv);
}
