/*
 * listener.h - private to m3bridge-listener: the state of a running
 * listener, shared by the listener_*.c files that each own one part of it.
 *
 * Threads: the main thread polls the group consumer, serves the producer's
 * delivery reports, handles rebalances and sends heartbeats; N worker
 * threads run the applier; the HTTP thread reads /readyz state. Fields
 * say which lock guards them. See docs/listener-pipeline.md.
 */
#ifndef M3B_LISTENER_H
#define M3B_LISTENER_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <m3b/applier.h>
#include <m3b/codec.h>
#include <m3b/config.h>
#include <m3b/event.h>
#include <m3b/http.h>
#include <m3b/index.h>
#include <m3b/kafka.h>
#include <m3b/kube.h>
#include <m3b/lag_verdict.h>
#include <m3b/log.h>
#include <m3b/metrics.h>
#include <m3b/schema.h>
#include <m3b/seal.h>
#include <m3b/sign.h>
#include <m3b/ui.h>

#define MAX_PARTITIONS 1024
#define MAX_WORKERS 64
#define MAX_SCOPE 256
#define MAX_STATUS_BYTES ((size_t)64 * 1024)
#define POLL_MS 100
#define PRODUCE_WAIT_MS 1000
#define MAX_HEADERS (M3B_KAFKA_MAX_HEADERS + M3B_DLQ_HEADER_COUNT + 1)
#define MAX_LABELS 1024

/* Metric families (docs/OPERATIONS.md); the lag names are those of
 * kafka-lag-exporter so its dashboards work unchanged. */
#define METRIC_LAG "kafka_consumergroup_group_lag"
#define METRIC_LAG_SECONDS "kafka_consumergroup_group_lag_seconds"
#define METRIC_COMMITTED "m3bridge_committed_offset"
#define METRIC_HIGH_WATERMARK "m3bridge_high_watermark"
#define METRIC_EVENTS "m3bridge_events_total"
#define METRIC_APPLY_LATENCY "m3bridge_apply_latency_seconds"
#define METRIC_PUBLISH_TO_APPLIED "m3bridge_publish_to_applied_seconds"
#define METRIC_IN_FLIGHT "m3bridge_in_flight"
#define METRIC_PAUSED "m3bridge_paused_partitions"
#define METRIC_RETRIES "m3bridge_retries_total"
#define METRIC_RESYNC_RUNS "m3bridge_status_resync_runs_total"
#define METRIC_LAG_VERDICT "m3bridge_lag_verdict"
#define METRIC_GROUP_LAG_VERDICT "m3bridge_group_lag_verdict"
#define METRIC_RETRY_BACKLOG "m3bridge_retry_backlog"

static inline int64_t listener_now_ms(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One record of the desired topic, copied out of the consumer. */
struct job {
  struct job *next;                /* worker queue or held list */
  struct job *all_prev, *all_next; /* every live job, for cleanup */
  int32_t partition;
  int64_t offset;
  int64_t timestamp_ms;
  unsigned epoch; /* of the partition's assignment when dispatched */
  int registered; /* has a slot in the partition's in-flight window */
  int pending;    /* produced records not yet acknowledged */
  int failed;     /* a produced record was refused for good */
  void *key;
  size_t key_len;
  void *value; /* NULL: tombstone */
  size_t value_len;
  struct m3b_record_header headers[M3B_KAFKA_MAX_HEADERS];
  size_t header_count;
  char *header_bytes; /* names and values of headers */
};

/* The in-flight window of one partition: offsets in listener_dispatch order. */
struct partition {
  int assigned;
  int revoking;
  unsigned epoch;
  int paused;
  int retrying; /* records of it waiting for a retry */
  struct job *held_head, *held_tail;
  int64_t *offsets;
  int64_t *timestamps; /* Kafka timestamps of the records in offsets */
  unsigned char *done;
  size_t head, count, cap;
  int64_t last_timestamp_ms; /* of the last finished record */
  int64_t stored;            /* last offset stored, -1 none */
  /* lag samples of this assignment for its verdict; main thread only,
   * created at the first sample */
  m3b_lag_window_t *lag_window;
};

struct worker {
  struct listener *listener;
  pthread_t thread;
  int started;
  pthread_mutex_t lock;
  pthread_cond_t cond;
  struct job *head, *tail;
  size_t depth;
  int stop;
  unsigned seed;
};

/* What the loop counts; logged with each heartbeat (the metrics registry
 * exports the same numbers). */
struct counters {
  uint64_t applied, deleted, stale, rejected, failed, retries, forgotten;
  uint64_t produce_failures;
  uint64_t reasons[M3B_ERR__COUNT]; /* rejected + failed by reason */
  int64_t in_flight;
};

struct listener {
  m3b_config_t *config;
  m3b_log_t *log;
  m3b_schema_registry_t *registry;
  m3b_codec_t *codec;
  m3b_keyring_t *ring;
  m3b_seal_key_t *seal_key;
  m3b_kube_t *kube;
  m3b_applier_t *applier;
  m3b_index_watcher_t *watcher; /* keeps the applier's index current */
  m3b_producer_t *producer;
  m3b_consumer_t *consumer;
  char plane[128];
  char listener_id[256];
  char desired_topic[256], status_topic[256], dlq_topic[256];
  char *namespaces[MAX_SCOPE];
  size_t namespace_count;
  char *cluster_kinds[MAX_SCOPE];
  size_t cluster_kind_count;
  size_t trusted_key_count;
  unsigned applier_flags; /* M3B_APPLIER_*, set before listener_open_core */
  long long initial_backoff_ms, max_backoff_ms, grace_ms, heartbeat_ms;
  long long verdict_window_ms;
  size_t queue_depth, window;

  pthread_mutex_t lock; /* partitions, jobs list, counters, stopping */
  pthread_cond_t wake;  /* retry sleeps: stop or revoke */
  int stopping;
  int64_t drain_deadline_ms; /* monotonic; for revokes while stopping */
  struct partition partitions[MAX_PARTITIONS];
  struct job *jobs; /* every live job */
  struct counters counters;
  struct worker workers[MAX_WORKERS];
  size_t worker_count;
  struct m3b_partition_offsets offsets[MAX_PARTITIONS];
  struct m3b_partition_lag lags[MAX_PARTITIONS];
  int refresh_lag; /* main thread: a rebalance changed the assignment */

  m3b_metrics_t *metrics;
  m3b_ui_t *ui; /* /ui's state; NULL until listener_ui_start (and --check) */
  char group[300];
  char group_labels[MAX_LABELS];     /* group="..",topic=".." */
  char partition_labels[MAX_LABELS]; /* group="..",topic="..",partition= */

  /* /readyz, read on the HTTP thread */
  pthread_mutex_t ready_lock;
  size_t assigned_count;
  int64_t kafka_ok_ms;   /* monotonic: last record or broker answer */
  int64_t kafka_err_ms;  /* monotonic: last transport/auth error, 0 none */
  int64_t kafka_lost_ms; /* monotonic: Kafka lost (every broker down, auth
                            failing) and not answered since, else 0 */
  char kafka_err[M3B_HTTP_DETAIL_MAX];
  int kube_down; /* the last apiserver call failed with KUBE_TRANSPORT */

  /* set by a signal handler: long waits during setup give up when it is */
  const volatile sig_atomic_t *stop_requested;
};

/* --- listener_setup.c: life cycle ------------------------------------------
 */

/* A listener over config and log (both borrowed, must outlive it); NULL
 * when memory is exhausted. Nothing is opened yet. */
struct listener *listener_new(m3b_config_t *config, m3b_log_t *log);

/* Stops the workers, closes Kafka and the apiserver client, frees every
 * job still in flight. NULL is a no-op. */
void listener_destroy(struct listener *listener);

/* Reads the settings and opens what run and replay share: schemas,
 * trusted keys, the sealing key, the apiserver client and the applier
 * (its index still empty). Nothing of Kafka. */
m3b_err_t listener_open_core(struct listener *listener, char *errstr,
                             size_t errstr_size);

/* listener_open_core, then what a run needs on top: the status producer
 * (deliveries to listener_on_delivery) and the group consumer (not yet
 * subscribed). */
m3b_err_t listener_open(struct listener *listener, char *errstr,
                        size_t errstr_size);

/* Loads the managed-object index by a labelled LIST, retrying transient
 * failures with backoff until *stop_requested. */
m3b_err_t listener_load_index(struct listener *listener);

/* The same for only the kinds flags selects, added to what the index has
 * (m3b_applier_load_index_kinds); flags 0 is listener_load_index. */
m3b_err_t listener_load_index_kinds(struct listener *listener, unsigned flags);

/* Starts the WATCH of the managed objects that keeps the index current
 * (objects deleted or changed by hand, other replicas' writes) and tells
 * /readyz whether the apiserver answers it. */
m3b_err_t listener_start_watcher(struct listener *listener);

/* Stops the watcher's threads; before the applier and kube client go. */
void listener_stop_watcher(struct listener *listener);

/* --- listener_ready.c: what /readyz answers ---------------------------------
 */

/* Kafka answered: a record arrived or the broker returned offsets. */
void listener_note_kafka_ok(struct listener *listener);

/* A transport or authorization error from Kafka; errstr is kept (its
 * start) as the reason /readyz gives. */
void listener_note_kafka_error(struct listener *listener, m3b_err_t err,
                               const char *errstr);

/* Kafka is lost: every broker is down or authentication fails (err and
 * errstr as for listener_note_kafka_error, which this implies). The next
 * broker answer ends the outage (listener_kafka_recovered). */
void listener_note_kafka_lost(struct listener *listener, m3b_err_t err,
                              const char *errstr);

/* Non-zero, once, when Kafka answered after having been lost: the loop
 * then re-publishes every managed object's status (DESIGN.md 6.7). */
int listener_kafka_recovered(struct listener *listener);

/* Records whether the apiserver answered the last call that reached for
 * it (err from the applier's outcome). */
void listener_note_kube(struct listener *listener, m3b_err_t err);

/* Recounts the assigned partitions after a rebalance. */
void listener_note_assignment(struct listener *listener);

/* The m3b_http readiness callback (opaque: the listener); on the HTTP
 * thread. Returns non-zero when ready, else writes the reason to detail. */
int listener_ready(void *opaque, char *detail, size_t detail_size);

/* --- listener_metrics.c: /metrics -------------------------------------------
 */

/* Declares every metric family and the series that exist from the start. */
m3b_err_t listener_declare_metrics(struct listener *listener);

/* Counts one finished record (counters and metrics). */
void listener_count_outcome(struct listener *listener, const struct job *job,
                            const struct m3b_outcome *out);

/* Stops exporting a revoked partition's series. */
void listener_remove_partition_series(struct listener *listener,
                                      int32_t partition);

/* Fills listener->lags with the assigned partitions' offsets and lag,
 * adds them to each partition's verdict window, exports them with the
 * verdicts and returns how many there are; degrades *state (when not
 * NULL) while a partition retries. Main thread. */
size_t listener_collect_lags(struct listener *listener, int64_t now,
                             enum m3b_listener_state *state);

/* --- listener_ui.c: /ui ------------------------------------------------------
 */

/* Creates /ui's state (ui.* settings) and adds its routes to http. */
m3b_err_t listener_ui_start(struct listener *listener, m3b_http_t *http,
                            char *errstr, size_t errstr_size);

/* Samples the count partitions of listener->lags for /ui, reading back the
 * values just exported on /metrics (so the page and the metrics agree),
 * and the throughput. Main thread, after the lag gauges are set, at now
 * (wall clock ms). No-op before listener_ui_start. */
void listener_ui_record_lags(struct listener *listener, size_t count,
                             int64_t now);

/* Keeps one finished record for /ui's latest outcomes. Any thread. */
void listener_ui_record_outcome(struct listener *listener,
                                const struct job *job,
                                const struct m3b_outcome *out);

/* Drops a revoked partition's history. */
void listener_ui_forget_partition(struct listener *listener, int32_t partition);

/* --- listener_jobs.c: records in flight and the offsets they free ----------
 */

/* Copies msg into a new job of the partition's assignment epoch; NULL
 * when memory is exhausted. */
struct job *listener_job_new(const struct m3b_kafka_message *msg,
                             unsigned epoch);
void listener_job_free(struct job *job);

/* Points *in at job's bytes (borrowed: valid while job lives), as a record
 * of topic, for the applier. */
void listener_job_record(const struct job *job, const char *topic,
                         struct m3b_record *in);

/* Adds job to / removes it from the live list. Under listener->lock. */
void listener_job_link(struct listener *listener, struct job *job);
void listener_job_unlink(struct listener *listener, struct job *job);

/* Non-zero while the job's partition still belongs to this assignment and
 * the listener is not past its drain deadline. Under listener->lock. */
int listener_job_current(const struct listener *listener,
                         const struct job *job);

/* Marks job finished (done != 0) or abandoned, stores the partition's new
 * contiguous prefix and frees the job. Takes listener->lock. */
void listener_job_finish(struct listener *listener, struct job *job, int done);

/* The producer's delivery callback: finishes a job when the last record
 * it produced is acknowledged. Main thread. */
void listener_on_delivery(void *record_opaque, m3b_err_t err, void *opaque);

/* --- listener_workers.c: the applier threads --------------------------------
 */

m3b_err_t listener_start_workers(struct listener *listener);

/* Stops and joins the workers; queued jobs stay for listener_destroy. */
void listener_stop_workers(struct listener *listener);

/* --- listener_dispatch.c: records to workers (main thread) -----------------
 */

/* Copies msg into a job and queues it on its key's worker, or holds it
 * behind the partition's earlier held records. M3B_ERR_NOMEM is fatal: a
 * record dropped here would let later offsets be stored past it. */
m3b_err_t listener_dispatch(struct listener *listener,
                            const struct m3b_kafka_message *msg);

/* Moves held records to their workers, in order, while there is room. */
void listener_drain_held(struct listener *listener);

/* --- listener_partitions.c: assignment, pauses, offsets (main thread) ------
 */

/* Allocates the in-flight windows of newly assigned partitions. */
m3b_err_t listener_ensure_windows(struct listener *listener);

/* Stores the position of partitions with nothing in flight. */
void listener_store_idle_positions(struct listener *listener);

/* Pauses partitions with held or retrying records, resumes the others. */
void listener_update_pauses(struct listener *listener);

/* The consumer's rebalance callback (opaque: the listener). */
void listener_on_rebalance(m3b_consumer_t *consumer, enum m3b_rebalance event,
                           const int32_t *partitions, size_t count,
                           void *opaque);

/* --- listener_status.c: heartbeats and status resync ------------------------
 */

/* Collects lag and produces one heartbeat in the given state. */
void listener_send_heartbeat(struct listener *listener,
                             enum m3b_listener_state state);

/* Produces the current status of every object in the index (at start and
 * after Kafka comes back from an outage) and counts the run. */
void listener_resync_statuses(struct listener *listener);

#endif
