/* test_event.c - the C structs of every event record survive an encode /
 * decode round trip, required strings are enforced, a record of one type
 * is not accepted as another, and decode failures leave the struct empty.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <m3b/event.h>
#include <m3b/objkey.h>

struct fixture {
  m3b_schema_registry_t *registry;
  m3b_codec_t *codec;
  struct m3b_buf out;
};

static int setup(void **state) {
  struct fixture *f = calloc(1, sizeof(*f));
  char errstr[256] = "";
  if (!f)
    return -1;
  f->registry = m3b_schema_registry_new_builtin(errstr, sizeof(errstr));
  f->codec = m3b_codec_new(f->registry, NULL, errstr, sizeof(errstr));
  m3b_buf_init(&f->out, 1 << 20);
  *state = f;
  return f->codec ? 0 : -1;
}

static int teardown(void **state) {
  struct fixture *f = *state;
  m3b_buf_cleanup(&f->out);
  m3b_codec_destroy(f->codec);
  m3b_schema_registry_destroy(f->registry);
  free(f);
  return 0;
}

static void test_desired_state(void **state) {
  struct fixture *f = *state;
  static const char manifest[] =
      "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":"
      "{\"name\":\"web\",\"namespace\":\"shop\"}}";
  struct m3b_desired_state in;
  struct m3b_desired_state out;
  char errstr[256] = "";
  uint8_t binary[4] = {0x00, 0xff, 0x80, 0x7f};

  m3b_desired_state_init(&in);
  in.plane = "eu1";
  in.key = "apps/v1/Deployment/shop/web";
  in.generation = INT64_MAX;
  in.op = M3B_OP_DELETE;
  in.manifest = (uint8_t *)manifest;
  in.manifest_len = sizeof(manifest) - 1;
  assert_int_equal(
      m3b_manifest_sha256(manifest, in.manifest_len, in.manifest_sha256),
      M3B_OK);
  in.release_id = "rel-42";
  in.issued_at_ms = 1700000000123;
  /* correlation_id NULL: the schema's default ("") */
  if (m3b_desired_state_encode(f->codec, &in, &f->out, errstr, sizeof(errstr)))
    fail_msg("%s", errstr);

  m3b_desired_state_init(&out);
  if (m3b_desired_state_decode(f->codec, f->out.data, f->out.len, &out, errstr,
                               sizeof(errstr)))
    fail_msg("%s", errstr);
  assert_string_equal(out.plane, "eu1");
  assert_string_equal(out.key, in.key);
  assert_true(out.generation == INT64_MAX);
  assert_int_equal(out.op, M3B_OP_DELETE);
  assert_int_equal(out.manifest_len, in.manifest_len);
  assert_memory_equal(out.manifest, manifest, in.manifest_len);
  assert_memory_equal(out.manifest_sha256, in.manifest_sha256, 32);
  assert_string_equal(out.release_id, "rel-42");
  assert_true(out.issued_at_ms == 1700000000123);
  assert_string_equal(out.correlation_id, "");

  /* decoding again into a filled struct frees the old contents */
  m3b_buf_reset(&f->out);
  in.manifest = binary; /* bytes are bytes, not text */
  in.manifest_len = sizeof(binary);
  in.correlation_id = "corr";
  assert_int_equal(m3b_desired_state_encode(f->codec, &in, &f->out, NULL, 0),
                   M3B_OK);
  assert_int_equal(m3b_desired_state_decode(f->codec, f->out.data, f->out.len,
                                            &out, NULL, 0),
                   M3B_OK);
  assert_int_equal(out.manifest_len, 4);
  assert_memory_equal(out.manifest, binary, 4);
  assert_string_equal(out.correlation_id, "corr");
  m3b_desired_state_cleanup(&out);
  assert_null(out.plane);
  m3b_desired_state_cleanup(&out); /* twice is fine */

  /* required strings */
  in.release_id = NULL;
  m3b_buf_reset(&f->out);
  assert_int_equal(
      m3b_desired_state_encode(f->codec, &in, &f->out, errstr, sizeof(errstr)),
      M3B_ERR_ENCODE);
  assert_non_null(strstr(errstr, "release_id"));
  in.release_id = "\xff";
  assert_int_equal(
      m3b_desired_state_encode(f->codec, &in, &f->out, errstr, sizeof(errstr)),
      M3B_ERR_BAD_UTF8);
  in.release_id = "r";
  in.op = (enum m3b_op)9;
  assert_int_equal(
      m3b_desired_state_encode(f->codec, &in, &f->out, errstr, sizeof(errstr)),
      M3B_ERR_BAD_ENUM);
  assert_int_equal(f->out.len, 0);
  assert_string_equal(m3b_op_name(M3B_OP_APPLY), "APPLY");
  assert_string_equal(m3b_op_name((enum m3b_op)9), "UNKNOWN");
}

static void test_status_and_wrong_type(void **state) {
  struct fixture *f = *state;
  struct m3b_status in;
  struct m3b_status out;
  struct m3b_desired_state wrong;
  char errstr[256] = "";

  m3b_status_init(&in);
  in.plane = "eu1";
  in.key = "/v1/Namespace//shop";
  in.generation = 3;
  in.phase = M3B_PHASE_STALE_SKIPPED;
  in.reason = "STALE";
  in.message = "generation 3 is not above 5";
  in.readiness = M3B_READINESS_PROGRESSING;
  in.source_partition = -1;
  in.source_offset = -1;
  in.listener_id = "l-0";
  in.applied_at_ms = 5;
  in.apply_latency_ms = 0;
  if (m3b_status_encode(f->codec, &in, &f->out, errstr, sizeof(errstr)))
    fail_msg("%s", errstr);
  m3b_status_init(&out);
  assert_int_equal(
      m3b_status_decode(f->codec, f->out.data, f->out.len, &out, NULL, 0),
      M3B_OK);
  assert_int_equal(out.phase, M3B_PHASE_STALE_SKIPPED);
  assert_string_equal(out.reason, "STALE");
  assert_string_equal(out.message, in.message);
  assert_null(out.observed_uid);
  assert_null(out.observed_resource_version);
  assert_null(out.readiness_detail);
  assert_int_equal(out.readiness, M3B_READINESS_PROGRESSING);
  assert_int_equal(out.source_partition, -1);
  assert_string_equal(out.listener_id, "l-0");
  m3b_status_cleanup(&out);
  assert_string_equal(m3b_phase_name(M3B_PHASE_PRUNED), "PRUNED");

  /* a Status is not a DesiredState */
  m3b_desired_state_init(&wrong);
  assert_int_equal(m3b_desired_state_decode(f->codec, f->out.data, f->out.len,
                                            &wrong, errstr, sizeof(errstr)),
                   M3B_ERR_SCHEMA);
  assert_non_null(strstr(errstr, "Status"));
  assert_null(wrong.plane);
}

static void test_heartbeat(void **state) {
  struct fixture *f = *state;
  struct m3b_partition_lag lags[2];
  struct m3b_heartbeat in;
  struct m3b_heartbeat out;
  char errstr[256] = "";

  memset(lags, 0, sizeof(lags));
  lags[0].topic = "m3.eu1.desired";
  lags[0].partition = 0;
  lags[0].committed_offset = 10;
  lags[0].high_watermark = 12;
  lags[0].lag_messages = 2;
  lags[0].lag_ms = 1500;
  lags[1].topic = "m3.eu1.desired";
  lags[1].partition = 3;
  lags[1].committed_offset = -1;
  lags[1].high_watermark = -1;
  m3b_heartbeat_init(&in);
  in.plane = "eu1";
  in.listener_id = "l-0";
  in.version = "0.1.0";
  in.state = M3B_LISTENER_DEGRADED;
  in.sent_at_ms = 99;
  in.partitions = lags;
  in.partition_count = 2;
  if (m3b_heartbeat_encode(f->codec, &in, &f->out, errstr, sizeof(errstr)))
    fail_msg("%s", errstr);
  m3b_heartbeat_init(&out);
  assert_int_equal(
      m3b_heartbeat_decode(f->codec, f->out.data, f->out.len, &out, NULL, 0),
      M3B_OK);
  assert_int_equal(out.state, M3B_LISTENER_DEGRADED);
  assert_int_equal(out.partition_count, 2);
  assert_string_equal(out.partitions[0].topic, "m3.eu1.desired");
  assert_true(out.partitions[0].lag_ms == 1500);
  assert_int_equal(out.partitions[1].partition, 3);
  assert_true(out.partitions[1].committed_offset == -1);
  m3b_heartbeat_cleanup(&out);

  /* no partitions at all */
  in.partitions = NULL;
  in.partition_count = 0;
  m3b_buf_reset(&f->out);
  assert_int_equal(m3b_heartbeat_encode(f->codec, &in, &f->out, NULL, 0),
                   M3B_OK);
  assert_int_equal(
      m3b_heartbeat_decode(f->codec, f->out.data, f->out.len, &out, NULL, 0),
      M3B_OK);
  assert_int_equal(out.partition_count, 0);
  m3b_heartbeat_cleanup(&out);
  assert_string_equal(m3b_listener_state_name(M3B_LISTENER_STOPPING),
                      "STOPPING");
}

static void test_registration(void **state) {
  struct fixture *f = *state;
  char *namespaces[] = {"shop", "payments"};
  char *capabilities[] = {"sealed-secrets"};
  uint8_t key[32];
  struct m3b_registration in;
  struct m3b_registration out;
  size_t i;

  for (i = 0; i < sizeof(key); i++)
    key[i] = (uint8_t)(i * 7);
  m3b_registration_init(&in);
  in.plane = "eu1";
  in.listener_id = "l-0";
  in.public_key = key;
  in.public_key_len = sizeof(key);
  in.namespaces = namespaces;
  in.namespace_count = 2;
  in.capabilities = capabilities;
  in.capability_count = 1;
  in.version = "0.1.0";
  in.registered_at_ms = 1;
  assert_int_equal(m3b_registration_encode(f->codec, &in, &f->out, NULL, 0),
                   M3B_OK);
  m3b_registration_init(&out);
  assert_int_equal(
      m3b_registration_decode(f->codec, f->out.data, f->out.len, &out, NULL, 0),
      M3B_OK);
  assert_string_equal(out.public_key_alg, "X25519");
  assert_int_equal(out.public_key_len, 32);
  assert_memory_equal(out.public_key, key, 32);
  assert_int_equal(out.namespace_count, 2);
  assert_string_equal(out.namespaces[1], "payments");
  assert_int_equal(out.capability_count, 1);
  assert_string_equal(out.capabilities[0], "sealed-secrets");
  m3b_registration_cleanup(&out);

  /* a NULL item in a list is refused, not dereferenced */
  namespaces[1] = NULL;
  m3b_buf_reset(&f->out);
  assert_int_equal(m3b_registration_encode(f->codec, &in, &f->out, NULL, 0),
                   M3B_ERR_ENCODE);
}

static int contains(const uint8_t *hay, size_t hay_len, const uint8_t *needle,
                    size_t needle_len) {
  size_t i;
  for (i = 0; i + needle_len <= hay_len; i++)
    if (memcmp(hay + i, needle, needle_len) == 0)
      return 1;
  return 0;
}

/* Manifests longer than the encoder's chunk, all ASCII and with every
 * byte value: each byte is on the wire once, as it is, and comes back. */
static void test_long_bytes(void **state) {
  struct fixture *f = *state;
  static uint8_t bytes[1500];
  struct m3b_desired_state in;
  struct m3b_desired_state out;
  size_t i;
  int pass;

  for (pass = 0; pass < 2; pass++) {
    for (i = 0; i < sizeof(bytes); i++)
      bytes[i] = pass ? (uint8_t)(i * 7) : (uint8_t)(' ' + i % 90);
    m3b_desired_state_init(&in);
    in.plane = "eu1";
    in.key = "/v1/ConfigMap/shop/big";
    in.op = M3B_OP_APPLY;
    in.manifest = bytes;
    in.manifest_len = sizeof(bytes);
    in.release_id = "rel";
    m3b_buf_reset(&f->out);
    assert_int_equal(m3b_desired_state_encode(f->codec, &in, &f->out, NULL, 0),
                     M3B_OK);
    assert_true(contains(f->out.data, f->out.len, bytes, sizeof(bytes)));
    m3b_desired_state_init(&out);
    assert_int_equal(m3b_desired_state_decode(f->codec, f->out.data, f->out.len,
                                              &out, NULL, 0),
                     M3B_OK);
    assert_int_equal(out.manifest_len, sizeof(bytes));
    assert_memory_equal(out.manifest, bytes, sizeof(bytes));
    m3b_desired_state_cleanup(&out);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_desired_state, setup, teardown),
      cmocka_unit_test_setup_teardown(test_long_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_status_and_wrong_type, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_heartbeat, setup, teardown),
      cmocka_unit_test_setup_teardown(test_registration, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
