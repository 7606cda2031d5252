/*
 * publisher.h - the control plane's API: turn Kubernetes manifests into
 * ordered, signed desired-state events on a data plane's desired topic.
 *
 * A control-plane service embeds this (link libm3bpublisher and
 * libm3bridge); m3bridge-publisher is a CLI over it.
 *
 * One call is one release: every event of it is produced in one Kafka
 * transaction, so a read_committed listener sees all of its objects or none.
 *
 * Generations (strictly increasing per key, DESIGN.md section 6.4): a
 * release gets generation max(now in microseconds since the epoch, 1 + the
 * largest generation among the latest records of every partition of the
 * desired topic). The topic term makes it restart-safe and immune to a
 * wall clock that steps back; the clock term keeps generations meaningful
 * without reading the whole topic. It assumes one publisher per plane at a
 * time: the transactional id (m3bridge-publisher-<plane>-<publisher.id>)
 * fences a restarted instance, but two instances with different ids can
 * race, and the later-produced event may then carry the smaller generation
 * (the listener would report STALE_SKIPPED).
 */
#ifndef M3B_PUBLISHER_H
#define M3B_PUBLISHER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <m3b/config.h>
#include <m3b/err.h>
#include <m3b/event.h>
#include <m3b/log.h>
#include <m3b/objkey.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct m3b_publisher m3b_publisher_t;

/* Creates a publisher for the configuration's plane: loads the signing key
 * (signing.key_file, required) and the listener's sealing key
 * (sealing.listener_key_file, optional: without it a release that holds a
 * Secret is refused), and connects a transactional producer. NULL on
 * failure, with errstr saying what and why (never a secret). */
m3b_publisher_t *m3b_publisher_new(const m3b_config_t *config, m3b_log_t *log,
                                   char *errstr, size_t errstr_size);

/* NULL is a no-op. */
void m3b_publisher_destroy(m3b_publisher_t *publisher);

/* The outcome of one object of the last publish or delete. */
struct m3b_publish_result {
  char key[M3B_OBJKEY_MAX + 1];
  int64_t generation;
  int32_t partition; /* -1 when not published */
  int64_t offset;    /* -1 when not published */
  m3b_err_t err;     /* M3B_OK when acknowledged by the broker */
};

/* Publishes manifests (borrowed, not modified) as one release with op
 * APPLY. release_id (borrowed) may be NULL: one is generated. Validates
 * everything first (manifest shape, object keys, duplicate keys, sizes,
 * Secret sealing): if any manifest is refused nothing is produced and
 * errstr names it (index and key). Then produces and commits; on a failure
 * the transaction is aborted and nothing of the release is visible. */
m3b_err_t m3b_publisher_publish(m3b_publisher_t *publisher,
                                json_t *const *manifests, size_t count,
                                const char *release_id, char *errstr,
                                size_t errstr_size);

/* Publishes signed DELETE events for keys (borrowed object keys), then a
 * tombstone for each key in the same transaction, so that compaction can
 * forget the key once delete.retention.ms has passed. A listener that lags
 * behind by more than min.compaction.lag.ms may find only the tombstone,
 * which deletes nothing (deletes are explicit): keep that setting longer
 * than any outage you want to survive. */
m3b_err_t m3b_publisher_delete(m3b_publisher_t *publisher,
                               const char *const *keys, size_t count,
                               const char *release_id, char *errstr,
                               size_t errstr_size);

/* Results of the last publish or delete, one per object in the order given
 * (returned-borrowed, valid until the next call). *release_id_out
 * (returned-borrowed) names the release. */
const struct m3b_publish_result *
m3b_publisher_results(const m3b_publisher_t *publisher, size_t *count_out,
                      const char **release_id_out);

#ifdef __cplusplus
}
#endif

#endif
