/*
 * test_listener_status_batching.c - the listener's producer of statuses
 * and dlq records (m3b_producer_new_streaming) batches as its settings
 * say, against the test bed's real broker:
 *
 *   - status.linger_ms holds a lone record back for that long (it is not
 *     delivered within a third of it), then delivers it;
 *   - status.batch_max_messages sends a full batch at once, long before
 *     the linger ends;
 *   - a kafka.linger.ms the operator sets wins over status.linger_ms.
 *
 * The bounds are wide (seconds) so that a loaded machine cannot make a
 * correct producer fail; a producer that ignored the settings (librdkafka's
 * 5 ms linger, 10,000-message batches) fails each case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <m3b/config.h>
#include <m3b/kafka.h>

#include "testbed_env.h"

#define TOPIC "m3b-it.status-batching"
#define LONG_LINGER "5000"

struct deliveries {
  int ok;
  int failed;
};

static void on_delivery(void *record_opaque, m3b_err_t err, void *opaque) {
  struct deliveries *d = opaque;
  (void)record_opaque;
  if (err)
    d->failed++;
  else
    d->ok++;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A listener configuration for the PLAINTEXT listener plus name=value
 * pairs (NULL-terminated). */
static m3b_config_t *config_with(const char *const *pairs) {
  char errstr[512];
  m3b_config_t *config =
      m3b_config_new(M3B_PROGRAM_LISTENER, errstr, sizeof(errstr));
  size_t i;
  if (!config)
    fail_msg("config: %s", errstr);
  if (m3b_config_set(config, "kafka.bootstrap.servers",
                     tb_require("M3B_TB_KAFKA_BOOTSTRAP"), "test", errstr,
                     sizeof(errstr)))
    fail_msg("kafka.bootstrap.servers: %s", errstr);
  for (i = 0; pairs && pairs[i]; i += 2)
    if (m3b_config_set(config, pairs[i], pairs[i + 1], "test", errstr,
                       sizeof(errstr)))
      fail_msg("%s: %s", pairs[i], errstr);
  return config;
}

static int setup(void **state) {
  struct m3b_topic_spec spec;
  struct m3b_topic_result result;
  char errstr[512];
  m3b_config_t *config = config_with(NULL);
  m3b_err_t err;

  (void)state;
  tb_require_reachable("Kafka broker", tb_require("M3B_TB_KAFKA_BOOTSTRAP"),
                       5000);
  memset(&spec, 0, sizeof(spec));
  spec.name = TOPIC;
  spec.partitions = 1;
  spec.replication_factor = 1;
  err = m3b_kafka_ensure_topics(config, &spec, 1, &result, 30000, NULL, errstr,
                                sizeof(errstr));
  m3b_config_destroy(config);
  if (err)
    fail_msg("creating %s: %s", TOPIC, errstr);
  return 0;
}

/* Produces count records with a producer made from pairs and polls until
 * all are delivered or within_ms passed. Returns how many were delivered
 * by then; *wait_ms gets the time from the first produce to the last
 * delivery (or within_ms). Then waits for the rest (the producer is
 * destroyed with nothing queued). */
static int produce_and_poll(const char *const *pairs, int count, int within_ms,
                            int64_t *wait_ms) {
  struct deliveries d = {0, 0};
  char errstr[512], key[32];
  m3b_config_t *config = config_with(pairs);
  m3b_producer_t *producer = m3b_producer_new_streaming(
      config, on_delivery, &d, 30000, NULL, errstr, sizeof(errstr));
  int64_t start, deadline;
  int i, by_deadline;

  if (!producer)
    fail_msg("producer: %s", errstr);
  start = now_ms();
  for (i = 0; i < count; i++) {
    snprintf(key, sizeof(key), "k%d", i);
    if (m3b_producer_produce(producer, TOPIC, key, strlen(key), "v", 1, NULL, 0,
                             NULL, 1000, errstr, sizeof(errstr)))
      fail_msg("produce: %s", errstr);
  }
  deadline = start + within_ms;
  while (d.ok + d.failed < count && now_ms() < deadline)
    m3b_producer_poll(producer, 20);
  by_deadline = d.ok;
  *wait_ms = now_ms() - start;
  /* the rest, so that nothing is lost and the next case starts clean */
  deadline = now_ms() + 30000;
  while (d.ok + d.failed < count && now_ms() < deadline)
    m3b_producer_poll(producer, 100);
  assert_int_equal(d.failed, 0);
  assert_int_equal(d.ok, count);
  m3b_producer_destroy(producer);
  m3b_config_destroy(config);
  return by_deadline;
}

static void test_linger_holds_a_lone_status(void **state) {
  static const char *const pairs[] = {"status.linger_ms", "3000", NULL};
  int64_t waited;
  (void)state;
  /* held back: librdkafka's own 5 ms would deliver within a second */
  assert_int_equal(produce_and_poll(pairs, 1, 1000, &waited), 0);
  /* and delivered once the linger ends */
  assert_int_equal(produce_and_poll(pairs, 1, 15000, &waited), 1);
  print_message("lone status with status.linger_ms 3000: delivered after "
                "%lld ms\n",
                (long long)waited);
  assert_true(waited >= 2000);
}

static void test_full_batch_goes_at_once(void **state) {
  static const char *const pairs[] = {"status.linger_ms", LONG_LINGER,
                                      "status.batch_max_messages", "3", NULL};
  int64_t waited;
  (void)state;
  assert_int_equal(produce_and_poll(pairs, 3, 2500, &waited), 3);
  print_message("3 statuses, batch of 3, linger %s ms: delivered after %lld "
                "ms\n",
                LONG_LINGER, (long long)waited);
}

static void test_kafka_linger_wins(void **state) {
  static const char *const pairs[] = {"status.linger_ms", LONG_LINGER,
                                      "kafka.linger.ms", "0", NULL};
  static const char *const alias[] = {"status.linger_ms", LONG_LINGER,
                                      "kafka.queue.buffering.max.ms", "0",
                                      NULL};
  int64_t waited;
  (void)state;
  assert_int_equal(produce_and_poll(pairs, 1, 2500, &waited), 1);
  assert_int_equal(produce_and_poll(alias, 1, 2500, &waited), 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_linger_holds_a_lone_status),
      cmocka_unit_test(test_full_batch_goes_at_once),
      cmocka_unit_test(test_kafka_linger_wins),
  };
  return cmocka_run_group_tests(tests, setup, NULL);
}
