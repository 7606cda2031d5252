/*
 * cmd_topics.c - `m3bridge-publisher topics create`: the plane's desired,
 * status and dlq topics with their documented configs (docs/OPERATIONS.md,
 * "Topics"), created through the Kafka Admin API, idempotently: what exists
 * is reported and left as it is.
 */
#include <stdio.h>
#include <string.h>

#include <m3b/cli.h>
#include <m3b/config.h>
#include <m3b/kafka.h>
#include <m3b/log.h>

#include "commands.h"

static void set_config(struct m3b_topic_spec *spec, size_t i, const char *name,
                       const char *value) {
  spec->configs[i][0] = name;
  spec->configs[i][1] = value;
}

int m3b_cmd_topics(int argc, char **argv) {
  struct m3b_topic_spec specs[3];
  struct m3b_topic_result results[3];
  char names[3][256], isr[32], lag[32], del[32], dlq_retention[32];
  char errstr[1024];
  m3b_config_t *config;
  m3b_log_t *log;
  int rc = M3B_EXIT_FAIL;
  int partitions, replication;
  size_t i;

  config = m3b_cli_config(M3B_PROGRAM_PUBLISHER, &argc, argv, errstr,
                          sizeof(errstr));
  if (!config) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    return M3B_EXIT_FAIL;
  }
  log = m3b_cli_logger(config);
  if (argc != 2 || strcmp(argv[1], "create") != 0) {
    fprintf(stderr, "m3bridge-publisher topics: the only action is "
                    "'create' (see --help)\n");
    rc = M3B_EXIT_USAGE;
    goto out;
  }
  if (m3b_config_validate(config, errstr, sizeof(errstr))) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    goto out;
  }
  partitions = (int)m3b_cli_int(config, "topics.partitions", 6);
  replication = (int)m3b_cli_int(config, "topics.replication_factor", 3);
  snprintf(isr, sizeof(isr), "%lld",
           m3b_cli_int(config, "topics.min_insync_replicas", 2));
  snprintf(lag, sizeof(lag), "%lld",
           m3b_cli_int(config, "topics.min_compaction_lag_ms", 3600000));
  snprintf(del, sizeof(del), "%lld",
           m3b_cli_int(config, "topics.delete_retention_ms", 604800000));
  snprintf(dlq_retention, sizeof(dlq_retention), "%lld",
           m3b_cli_int(config, "topics.dlq_retention_ms", 2592000000LL));
  if (replication < 2)
    /* a single broker cannot hold min.insync.replicas of 2 */
    snprintf(isr, sizeof(isr), "1");

  memset(specs, 0, sizeof(specs));
  for (i = 0; i < 3; i++) {
    static const char *const suffix[] = {"desired", "status", "dlq"};
    m3b_kafka_topic_name(config, suffix[i], names[i], sizeof(names[i]));
    specs[i].name = names[i];
    specs[i].partitions = partitions;
    specs[i].replication_factor = replication;
    set_config(&specs[i], 0, "min.insync.replicas", isr);
  }
  for (i = 0; i < 2; i++) {
    set_config(&specs[i], 1, "cleanup.policy", "compact");
    set_config(&specs[i], 2, "min.compaction.lag.ms", lag);
    set_config(&specs[i], 3, "delete.retention.ms", del);
  }
  set_config(&specs[2], 1, "cleanup.policy", "delete");
  set_config(&specs[2], 2, "retention.ms", dlq_retention);

  if (m3b_kafka_ensure_topics(
          config, specs, 3, results,
          (int)m3b_cli_int(config, "publish.timeout_ms", 30000), log, errstr,
          sizeof(errstr))) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    goto out;
  }
  printf("%-28s %-10s %10s  %s\n", "TOPIC", "STATE", "PARTITIONS", "CONFIG");
  for (i = 0; i < 3; i++) {
    const char *state = results[i].outcome == M3B_TOPIC_CREATED   ? "created"
                        : results[i].outcome == M3B_TOPIC_EXISTED ? "exists"
                                                                  : "differs";
    printf("%-28s %-10s %10d  %s\n", names[i], state, results[i].partitions,
           results[i].outcome == M3B_TOPIC_CONFIG_DIFFERS
               ? results[i].differs
               : (i < 2 ? "compact" : "delete"));
  }
  rc = M3B_EXIT_OK;

out:
  m3b_log_destroy(log);
  m3b_config_destroy(config);
  return rc;
}
