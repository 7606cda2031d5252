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

#include "commands.h"

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
    {"lag", "show a consumer group's lag per partition, with verdicts",
     "Usage: m3bridge-listener lag [--config FILE] [--plane PLANE] [--set "
     "N=V]...\n"
     "                             [--group GROUP] [--topic TOPIC]\n"
     "                             [--window SECONDS] [--interval SECONDS]\n"
     "                             [--watch] [--json]\n\n"
     "Shows, per partition of TOPIC, GROUP's committed offset, the high\n"
     "watermark, the lag in messages and in seconds (now - the Kafka\n"
     "timestamp of the oldest record the group has not consumed), whether a\n"
     "member owns it, and a verdict: OK, WARN (lag growing), STALL (an owner\n"
     "but the offset does not move), STOP (no owner, no progress) or REWIND\n"
     "(the offset went back); then the group's total and worst verdict.\n"
     "Rules: docs/metrics.md, \"Lag verdicts\".\n\n"
     "It reads the group from outside (never joins or commits), so it works\n"
     "from either plane with only the Kafka settings of --config (a\n"
     "listener's or a publisher's file). The principal needs Describe on the\n"
     "group and the topic; lag in seconds also needs Read on the topic.\n\n"
     "  --group GROUP       default m3bridge-<plane>\n"
     "  --topic TOPIC       default <topic.prefix>.<plane>.desired\n"
     "  --window SECONDS    verdict window (default 10). Without --watch the\n"
     "                      command samples for the whole window before it\n"
     "                      prints, so it takes that long; 0: one sample, no\n"
     "                      verdict\n"
     "  --interval SECONDS  time between samples (default 1, at least 0.1); a\n"
     "                      verdict needs 3 samples, so the window must be at\n"
     "                      least twice the interval\n"
     "  --watch             keep sampling and redraw every interval (in place\n"
     "                      on a terminal, one block per refresh otherwise)\n"
     "                      until SIGINT/SIGTERM\n"
     "  --json              one JSON object per refresh instead of the table\n"
     "\n"
     "Exit codes (the worst verdict, with --watch the last one shown):\n"
     "  0 OK, 3 WARN, 4 STALL, 5 STOP, 6 REWIND; 1 error (Kafka unreachable,\n"
     "  not authorized, no such topic), 2 usage error.\n",
     cmd_lag},
    {"replay", "rebuild this cluster's desired state from the desired topic",
     "Usage: m3bridge-listener replay --config FILE [--set NAME=VALUE]...\n"
     "         [--from earliest | --from-time RFC3339 | --from-offsets "
     "P:O,...]\n"
     "         [--to-time RFC3339] [--dry-run] [--prune] [--verify-all]\n"
     "         [--commit | --no-commit] [--json]\n\n"
     "Disaster recovery: reads m3.<plane>.desired up to the fence (each\n"
     "partition's end at start, or --to-time), checks every record as run\n"
     "does (plane, keys, hash, namespace; the signature of each record it\n"
     "will write, or of all with --verify-all), keeps the latest generation\n"
     "of each object and applies that final state in dependency tiers\n"
     "(Namespaces and CRDs first). Objects already at their generation are\n"
     "skipped without a write, so it can be run again after an interruption\n"
     "and a second run writes nothing. Signed DELETEs are carried out;\n"
     "--prune also deletes this plane's managed objects that are not in the\n"
     "final state. Afterwards the listener group's offsets are set to the\n"
     "fence (--commit; by default only when the group has none). Stop the\n"
     "listener first. Exit 0 when all is as desired, 1 when something was\n"
     "refused or failed (named in the summary). See docs/OPERATIONS.md.\n"
     "\n"
     "  --from earliest         read the whole topic (default)\n"
     "  --from-time RFC3339     start at the first record at/after a time\n"
     "  --from-offsets P:O,...  start each partition at an offset\n"
     "  --to-time RFC3339       point in time: the desired state as of then\n"
     "  --dry-run               list what would be created, changed, deleted\n"
     "                          and left; write nothing; exit 0\n"
     "  --prune                 delete managed objects absent from the state\n"
     "  --commit, --no-commit   hand over (or not) by committing the fence\n"
     "  --json                  print the summary as one JSON object\n",
     cmd_replay},
    {"run", "consume the desired topic and apply it to this cluster",
     "Usage: m3bridge-listener run --config FILE [--set NAME=VALUE]...\n"
     "                             [--print-config] [--check]\n\n"
     "Joins the consumer group m3bridge-<plane>, verifies and applies every\n"
     "desired-state event of m3.<plane>.desired to the Kubernetes API, and\n"
     "reports status and heartbeats on m3.<plane>.status (rejected events\n"
     "go to m3.<plane>.dlq). SIGTERM/SIGINT drain in-flight work within\n"
     "shutdown.grace_ms, commit and leave the group. See docs/OPERATIONS.md.\n"
     "\n"
     "  --print-config  print the effective configuration (secrets as paths)\n"
     "  --check         load keys, reach Kafka and the apiserver, exit 0/1\n",
     cmd_run},
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
