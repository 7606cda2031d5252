/*
 * main.c - m3bridge-publisher, the control-plane side of m3bridge.
 *
 * It turns deployment intent into ordered, signed desired-state events on a
 * data plane's Kafka topics and reads back the status the data plane
 * reports. Commands are added here as they are built; each lives in its own
 * file of this folder.
 */
#include <stdio.h>

#include <m3b/cli.h>
#include <m3b/version.h>

static int cmd_version(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("m3bridge-publisher %s\n", M3B_VERSION);
  return M3B_EXIT_OK;
}

static const struct m3b_cli_command commands[] = {
    {"version", "print the version", "Usage: m3bridge-publisher version\n",
     cmd_version},
    {NULL, NULL, NULL, NULL}};

static const struct m3b_cli_program program = {
    "m3bridge-publisher",
    "publish signed desired state to a data plane over Kafka",
    "Documentation: docs/ARCHITECTURE.md, docs/PROTOCOL.md", commands};

int main(int argc, char **argv) {
  return m3b_cli_main(&program, argc, argv);
}
