/*
 * applier_outcome.c - turning an applier outcome into what the Kafka side
 * publishes: a Status event (borrowing the outcome's strings) and the
 * error headers of a dlq record.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "applier_internal.h"

m3b_err_t m3b_outcome_status(const m3b_applier_t *applier,
                             const struct m3b_outcome *outcome,
                             const struct m3b_record *in,
                             struct m3b_status *status) {
  if (!applier || !outcome || !in || !status || !outcome->status)
    return M3B_ERR_INVALID_ARG;
  m3b_status_init(status);
  status->plane = applier->plane;
  status->key = (char *)outcome->key;
  status->generation = outcome->generation;
  status->phase = outcome->phase;
  status->reason = outcome->reason ? (char *)outcome->reason : NULL;
  status->message = outcome->message[0] ? (char *)outcome->message : NULL;
  status->observed_uid = outcome->uid[0] ? (char *)outcome->uid : NULL;
  status->observed_resource_version =
      outcome->resource_version[0] ? (char *)outcome->resource_version : NULL;
  status->readiness = M3B_READINESS_UNKNOWN;
  status->source_partition = in->partition;
  status->source_offset = in->offset;
  status->listener_id = applier->listener_id;
  status->applied_at_ms = outcome->finished_at_ms;
  status->apply_latency_ms = outcome->apply_latency_ms;
  return M3B_OK;
}

long long m3b_outcome_retry_delay_ms(const struct m3b_outcome *outcome,
                                     unsigned attempt, long long initial_ms,
                                     long long max_ms, unsigned random) {
  long long delay;
  if (max_ms <= 0)
    max_ms = 1;
  if (initial_ms <= 0 || initial_ms > max_ms)
    initial_ms = max_ms;
  if (outcome && outcome->retry_after_ms > 0)
    return outcome->retry_after_ms < max_ms ? (long long)outcome->retry_after_ms
                                            : max_ms;
  /* shift only while it cannot overflow: past max_ms it is capped anyway */
  delay = initial_ms;
  while (attempt-- > 0 && delay < max_ms)
    delay *= 2;
  if (delay > max_ms)
    delay = max_ms;
  return delay / 2 + (long long)(random % (unsigned long long)(delay / 2 + 1));
}

static void header(struct m3b_dlq_headers *headers, const char *name,
                   const char *value) {
  struct m3b_record_header *h = &headers->headers[headers->count++];
  h->name = name;
  h->value = value;
  h->len = strlen(value);
}

void m3b_outcome_dlq_headers(const m3b_applier_t *applier,
                             const struct m3b_outcome *outcome,
                             const struct m3b_record *in,
                             struct m3b_dlq_headers *headers) {
  memset(headers, 0, sizeof(*headers));
  snprintf(headers->partition, sizeof(headers->partition), "%" PRId32,
           in->partition);
  snprintf(headers->offset, sizeof(headers->offset), "%" PRId64, in->offset);
  header(headers, M3B_HDR_ERROR_REASON,
         outcome->reason ? outcome->reason : m3b_err_name(outcome->err));
  header(headers, M3B_HDR_ERROR_MESSAGE, outcome->message);
  header(headers, M3B_HDR_SOURCE_TOPIC, in->topic ? in->topic : "");
  header(headers, M3B_HDR_SOURCE_PARTITION, headers->partition);
  header(headers, M3B_HDR_SOURCE_OFFSET, headers->offset);
  header(headers, M3B_HDR_LISTENER_ID, applier->listener_id);
}
