/*
 * config_table.c - every setting of m3bridge, declared once.
 *
 * docs/CONFIGURATION.md is generated from this table
 * (`m3bridge-listener config-reference`); a unit test fails when it is
 * stale. Keep doc lines to one sentence that says what the setting does
 * and, where it matters, why the default is what it is.
 */
#include <limits.h>

#include <m3b/config.h>

#define PUB M3B_PROGRAM_PUBLISHER
#define LIS M3B_PROGRAM_LISTENER
#define ALL M3B_PROGRAM_ALL
#define REQ M3B_SETTING_REQUIRED
#define DAY_MS 86400000LL

static const struct m3b_setting settings[] = {
    /* identity and topics */
    {"plane", M3B_SETTING_STRING, NULL, 0, 0, ALL, REQ,
     "Data plane id (DNS label); names the topics m3.<plane>.desired, "
     ".status and .dlq."},
    {"topic.prefix", M3B_SETTING_STRING, "m3", 0, 0, ALL, 0,
     "First part of every topic name."},
    {"log.level", M3B_SETTING_STRING, "info", 0, 0, ALL, 0,
     "Least severe log level written to stderr: error, warn, info or debug."},

    /* Kafka secrets, read from files (kafka.* otherwise passes through) */
    {"kafka.sasl.password_file", M3B_SETTING_SECRET_FILE, NULL, 0, 0, ALL, 0,
     "File holding the SASL password (sets librdkafka's sasl.password)."},
    {"kafka.ssl.key.password_file", M3B_SETTING_SECRET_FILE, NULL, 0, 0, ALL, 0,
     "File holding the passphrase of ssl.key.location (mTLS)."},
    {"kafka.ssl.keystore.password_file", M3B_SETTING_SECRET_FILE, NULL, 0, 0,
     ALL, 0, "File holding the password of ssl.keystore.location."},

    /* publisher */
    {"publisher.id", M3B_SETTING_STRING, NULL, 0, 0, PUB, 0,
     "Stable id of this publisher instance; its transactional.id is "
     "m3bridge-publisher-<plane>-<id> (default: the host name)."},
    {"signing.key_file", M3B_SETTING_SECRET_FILE, NULL, 0, 0, PUB, 0,
     "Ed25519 private key (PEM) that signs every desired-state event."},
    {"signing.passphrase_file", M3B_SETTING_SECRET_FILE, NULL, 0, 0, PUB, 0,
     "File holding the passphrase of an encrypted signing.key_file."},
    {"sealing.listener_key_file", M3B_SETTING_PATH, NULL, 0, 0, PUB, 0,
     "The listener's X25519 public key (PEM); Secret data is sealed to it."},
    {"publish.timeout_ms", M3B_SETTING_INT, "30000", 1000, 840000, PUB, 0,
     "How long a publish may wait for the broker to acknowledge the release "
     "before it is aborted."},
    {"publish.max_manifest_bytes", M3B_SETTING_INT, "1048576", 1024, 16777216,
     ALL, 0,
     "Largest manifest accepted, in bytes (Kubernetes itself stops near "
     "1.5 MiB per object)."},
    {"topics.partitions", M3B_SETTING_INT, "6", 1, 10000, PUB, 0,
     "Partitions of a new desired and status topic; the listener scales to "
     "at most this many replicas."},
    {"topics.replication_factor", M3B_SETTING_INT, "3", 1, 32, PUB, 0,
     "Replication factor of new topics (use 1 only on a single-broker test "
     "bed)."},
    {"topics.min_insync_replicas", M3B_SETTING_INT, "2", 1, 32, PUB, 0,
     "min.insync.replicas of new topics; with acks=all a write needs this "
     "many replicas."},
    {"topics.min_compaction_lag_ms", M3B_SETTING_INT, "3600000", 0, LLONG_MAX,
     PUB, 0,
     "min.compaction.lag.ms of the compacted topics: how long every event "
     "stays readable before compaction may drop older events of its key."},
    {"topics.delete_retention_ms", M3B_SETTING_INT, "604800000", 0, LLONG_MAX,
     PUB, 0,
     "delete.retention.ms of the compacted topics: how long tombstones stay; "
     "keep it longer than the slowest replay (default 7 days)."},
    {"topics.dlq_retention_ms", M3B_SETTING_INT, "2592000000", DAY_MS,
     LLONG_MAX, PUB, 0, "retention.ms of the dlq topic (default 30 days)."},
    /* listener */
    {"listener.id", M3B_SETTING_STRING, NULL, 0, 0, LIS, 0,
     "Stable id of this listener instance, in statuses, dlq headers and its "
     "heartbeat key _listener/<id> (default: the host name)."},
    {"listener.namespaces", M3B_SETTING_LIST, NULL, 0, 0, LIS, REQ,
     "Namespaces this listener may write to; events for any other namespace "
     "are REJECTED (NAMESPACE_NOT_BOUND)."},
    {"listener.cluster_kinds", M3B_SETTING_LIST, NULL, 0, 0, LIS, 0,
     "Cluster-scoped kinds the listener may apply: Kind for the core group "
     "(Namespace), else group/Kind; empty refuses all but bound Namespaces."},
    {"listener.trusted_keys_dir", M3B_SETTING_PATH, NULL, 0, 0, LIS, REQ,
     "Folder of the control plane's Ed25519 public keys (*.pem); events "
     "signed by any other key are REJECTED."},
    {"listener.sealing_key_file", M3B_SETTING_SECRET_FILE, NULL, 0, 0, LIS, 0,
     "The listener's X25519 private key (PEM) that opens sealed Secret data; "
     "without it, Secrets with data are REJECTED."},
    {"listener.workers", M3B_SETTING_INT, "4", 1, 64, LIS, 0,
     "Worker threads applying events in parallel; events of one key always "
     "go to the same worker, in order."},
    {"listener.queue_depth", M3B_SETTING_INT, "256", 1, 65536, LIS, 0,
     "Events each worker may hold waiting; a full queue pauses the partition "
     "that fed it."},
    {"retry.initial_backoff_ms", M3B_SETTING_INT, "200", 1, 3600000, LIS, 0,
     "First wait before retrying an event that failed transiently "
     "(apiserver unreachable, 429, 5xx); doubles per attempt, with jitter. "
     "A Retry-After from the apiserver replaces it. Also the first wait of "
     "the index WATCH after a failure."},
    {"retry.max_backoff_ms", M3B_SETTING_INT, "30000", 1, 3600000, LIS, 0,
     "Longest wait between retries of one event, also when the apiserver's "
     "Retry-After asks for more; and of the index WATCH."},
    {"http.address", M3B_SETTING_STRING, "127.0.0.1:9464", 0, 0, LIS, 0,
     "host:port of the /metrics, /healthz, /readyz and /ui endpoints."},
    {"kube.kubeconfig", M3B_SETTING_PATH, NULL, 0, 0, LIS, 0,
     "kubeconfig file to reach the apiserver; unset: the pod's in-cluster "
     "service account."},
    {"kube.context", M3B_SETTING_STRING, NULL, 0, 0, LIS, 0,
     "Context of kube.kubeconfig to use (default: its current-context)."},
    {"ui.sample_interval_ms", M3B_SETTING_INT, "10000", 100, 3600000, LIS, 0,
     "How often /ui keeps a point of each partition's lag and of the "
     "throughput; it shows the last hour (at most 3600 points)."},
    {"ui.recent_outcomes", M3B_SETTING_INT, "100", 1, 10000, LIS, 0,
     "How many of the latest finished records /ui lists with their phase "
     "and reason."},
    {"status.linger_ms", M3B_SETTING_INT, "20", 0, 5000, LIS, 0,
     "How long the listener's producer gathers statuses and dlq records "
     "into one produce request (librdkafka linger.ms). Each request costs "
     "CPU in the listener and in the broker, so batching raises throughput "
     "on a busy machine; it delays each status, and with it the stored "
     "offset, by at most this long. A kafka.linger.ms you set wins."},
    {"status.batch_max_messages", M3B_SETTING_INT, "1000", 1, 1000000, LIS, 0,
     "Most statuses and dlq records in one produce request: a full batch "
     "goes at once, before status.linger_ms (librdkafka "
     "batch.num.messages). A kafka.batch.num.messages you set wins."},
    {"heartbeat.interval_ms", M3B_SETTING_INT, "10000", 100, 3600000, LIS, 0,
     "How often the listener publishes its heartbeat (assigned partitions, "
     "committed offsets, lag) on the status topic."},
    {"lag.verdict_window_ms", M3B_SETTING_INT, "60000", 1000, 86400000, LIS, 0,
     "Window of the lag verdicts (m3bridge_lag_verdict; rules in "
     "docs/metrics.md). The listener samples each partition at every "
     "heartbeat and a verdict needs 3 samples spanning half the window: keep "
     "it at least 4 x heartbeat.interval_ms."},
    {"shutdown.grace_ms", M3B_SETTING_INT, "30000", 0, 3600000, LIS, 0,
     "On SIGTERM, how long in-flight events may take to finish before the "
     "listener commits what is done and leaves the group."},
};

const struct m3b_setting *m3b_settings(size_t *count_out) {
  *count_out = sizeof(settings) / sizeof(settings[0]);
  return settings;
}
