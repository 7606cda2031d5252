/*
 * main.c - m3bridge-publisher, the control-plane side of m3bridge.
 *
 * It turns deployment intent into ordered, signed desired-state events on a
 * data plane's Kafka topics and reads back the status the data plane
 * reports. Each command lives in its own cmd_*.c file; the work is done by
 * libm3bpublisher (<m3b/publisher.h>) and libm3bridge.
 */
#include <stdio.h>

#include <m3b/cli.h>
#include <m3b/version.h>

#include "commands.h"

#define COMMON                                                                 \
  "Common options:\n"                                                          \
  "  --config FILE      YAML configuration (docs/CONFIGURATION.md)\n"          \
  "  --plane PLANE      the data plane (setting 'plane')\n"                    \
  "  --set NAME=VALUE   any setting, e.g. --set "                              \
  "kafka.bootstrap.servers=HOST:PORT\n"                                        \
  "  --log-level LEVEL  error, warn, info or debug (logs go to stderr)\n"      \
  "Settings also come from M3B_* environment variables; flags win.\n"

static const struct m3b_cli_command commands[] = {
    {"keygen", "create a signing key pair (or, with --seal, a sealing one)",
     "Usage: m3bridge-publisher keygen [--out DIR] [--name NAME] [--seal]\n\n"
     "Writes DIR/NAME.key (private, mode 0600, never over an existing file)\n"
     "and DIR/NAME.pub.pem. Without --seal: an Ed25519 key that signs every\n"
     "event (NAME defaults to 'signing'); its public key goes to the\n"
     "listeners' trusted keys. With --seal: the listener's X25519 key pair\n"
     "for sealed Secret data (NAME defaults to 'sealing').\n",
     m3b_cmd_keygen},
    {"topics", "create the plane's desired, status and dlq topics",
     "Usage: m3bridge-publisher topics create --plane PLANE [options]\n\n"
     "Creates m3.PLANE.desired (compacted), m3.PLANE.status (compacted) and\n"
     "m3.PLANE.dlq (deleted after topics.dlq_retention_ms) with the\n"
     "topics.* settings; topics that exist are reported, not "
     "changed.\n\n" COMMON,
     m3b_cmd_topics},
    {"publish", "publish manifests as one signed release",
     "Usage: m3bridge-publisher publish --plane PLANE -f FILE|DIR|- "
     "[-f ...]\n"
     "                                  [--release ID] [--json] [options]\n\n"
     "Reads Kubernetes manifests (YAML, multi-document, or JSON; a directory\n"
     "reads its *.yaml, *.yml and *.json files), validates them, seals Secret\n"
     "data to the listener's key (sealing.listener_key_file), signs each\n"
     "event (signing.key_file) and produces the whole release in one Kafka\n"
     "transaction: a listener sees all of it or none. Exits 1 and says which\n"
     "objects were not published when anything fails.\n\n" COMMON,
     m3b_cmd_publish},
    {"delete", "publish signed DELETE events for object keys",
     "Usage: m3bridge-publisher delete --plane PLANE KEY... [--release ID] "
     "[--json]\n\n"
     "KEY is an object key, <group>/<version>/<kind>/<namespace>/<name>\n"
     "(e.g. apps/v1/Deployment/shop/web, /v1/Namespace//shop). Each gets a\n"
     "signed DELETE event and then a tombstone, in one transaction; the\n"
     "listener deletes only objects it manages.\n\n" COMMON,
     m3b_cmd_delete},
    {"status", "show what the data plane reports for each object",
     "Usage: m3bridge-publisher status --plane PLANE [--release ID] "
     "[--wait] [--timeout S]\n"
     "                                 [--follow] [--json] [options]\n\n"
     "Shows, per object, the latest phase, generation, age and reason; an\n"
     "object is PENDING until the listener reports its current generation.\n"
     "--wait blocks until no object (of the release) is pending, for at\n"
     "most --timeout seconds (default 300); --follow then prints statuses\n"
     "as they arrive. Exits 1 if any object FAILED or was REJECTED, or is\n"
     "still pending after --wait.\n\n" COMMON,
     m3b_cmd_status},
    {NULL, NULL, NULL, NULL}};

static const struct m3b_cli_program program = {
    "m3bridge-publisher",
    "publish signed desired state to a data plane over Kafka",
    "Documentation: docs/ARCHITECTURE.md, docs/PROTOCOL.md, "
    "docs/OPERATIONS.md",
    commands};

int main(int argc, char **argv) {
  return m3b_cli_main(&program, argc, argv);
}
