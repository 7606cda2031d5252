/*
 * fuzz_decode.c - libFuzzer target for everything that reads bytes from
 * Kafka: single-object decoding (with schema resolution across versions),
 * the event structs, and object keys.
 *
 * The registry holds the built-in schemas, a newer DesiredState (so
 * resolution paths run) and two test records that exercise maps, floats,
 * fixed and recursion. A decoded value is re-encoded and decoded again:
 * both must succeed and give the same value. The codec and registry are
 * made once (a fuzz harness's static state; the library has none).
 *
 * Build: cmake -B build/fuzz -DM3B_FUZZ=ON -DCMAKE_C_COMPILER=clang
 * Seeds: tests/fuzz/make_seeds.sh DIR
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <m3b/codec.h>
#include <m3b/event.h>
#include <m3b/objkey.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const extra_schemas[] = {
    "{\"type\":\"record\",\"name\":\"T\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"s\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"bytes\"},"
    "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
    "\"symbols\":[\"A\",\"B\"],\"default\":\"A\"}},"
    "{\"name\":\"a\",\"type\":{\"type\":\"array\",\"items\":\"long\"}},"
    "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":[\"null\","
    "\"double\",\"string\"]}},"
    "{\"name\":\"f\",\"type\":\"float\"},{\"name\":\"i\",\"type\":\"int\"},"
    "{\"name\":\"x\",\"type\":{\"type\":\"fixed\",\"name\":\"X\","
    "\"size\":4}},{\"name\":\"ok\",\"type\":\"boolean\"}]}",
    "{\"type\":\"record\",\"name\":\"P\",\"namespace\":\"t\",\"fields\":["
    "{\"name\":\"v\",\"type\":[\"null\",\"int\",\"long\",\"string\"]},"
    "{\"name\":\"next\",\"type\":[\"null\",\"P\"]}]}",
    /* a newer DesiredState, not current: the v1 reader resolves it */
    "{\"type\":\"record\",\"name\":\"DesiredState\",\"namespace\":"
    "\"io.m3bridge.v1\",\"fields\":["
    "{\"name\":\"plane\",\"type\":\"string\"},"
    "{\"name\":\"key\",\"type\":\"string\"},"
    "{\"name\":\"generation\",\"type\":\"long\"},"
    "{\"name\":\"op\",\"type\":{\"type\":\"enum\",\"name\":\"Op\","
    "\"symbols\":[\"APPLY\",\"DELETE\",\"ADOPT\"]}},"
    "{\"name\":\"manifest\",\"type\":\"bytes\"},"
    "{\"name\":\"manifest_sha256\",\"type\":{\"type\":\"fixed\","
    "\"name\":\"Sha256\",\"size\":32}},"
    "{\"name\":\"release_id\",\"type\":\"string\"},"
    "{\"name\":\"issued_at\",\"type\":\"long\"},"
    "{\"name\":\"requested_by\",\"type\":[\"null\",\"string\"],"
    "\"default\":null},"
    "{\"name\":\"correlation_id\",\"type\":\"string\",\"default\":\"\"}]}",
};

static m3b_codec_t *codec_once(void) {
  static m3b_schema_registry_t *registry;
  static m3b_codec_t *codec;
  struct m3b_codec_limits limits;
  size_t i;

  if (codec)
    return codec;
  registry = m3b_schema_registry_new_builtin(NULL, 0);
  assert(registry);
  for (i = 0; i < sizeof(extra_schemas) / sizeof(extra_schemas[0]); i++) {
    m3b_err_t err = m3b_schema_registry_add(
        registry, extra_schemas[i], strlen(extra_schemas[i]),
        i < 2 ? M3B_SCHEMA_CURRENT : 0, NULL, NULL, 0);
    assert(err == M3B_OK);
    (void)err;
  }
  m3b_codec_limits_default(&limits);
  limits.max_items = 4096; /* keep each run fast */
  codec = m3b_codec_new(registry, &limits, NULL, 0);
  assert(codec);
  return codec;
}

static void round_trip(const m3b_codec_t *codec, const char *record,
                       const json_t *value) {
  struct m3b_buf out;
  json_t *again = NULL;
  char errstr[256];
  m3b_err_t err;

  m3b_buf_init(&out, 16 * 1024 * 1024);
  err = m3b_codec_encode(codec, record, value, &out, errstr, sizeof(errstr));
  /* a value the codec decoded must encode, unless only the size grew:
   * bytes become up to two UTF-8 bytes in JSON, never on the wire */
  if (err)
    abort();
  err = m3b_codec_decode(codec, out.data, out.len, NULL, &again, errstr,
                         sizeof(errstr));
  if (err || !json_equal(value, again))
    abort();
  json_decref(again);
  m3b_buf_cleanup(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const m3b_codec_t *codec = codec_once();
  const char *record = NULL;
  json_t *value = NULL;
  char errstr[256];
  struct m3b_objkey key;

  if (m3b_codec_decode(codec, data, size, &record, &value, errstr,
                       sizeof(errstr)) == M3B_OK) {
    round_trip(codec, record, value);
    json_decref(value);
    if (strcmp(record, M3B_RECORD_DESIRED_STATE) == 0) {
      struct m3b_desired_state event;
      m3b_desired_state_init(&event);
      if (m3b_desired_state_decode(codec, data, size, &event, NULL, 0) ==
          M3B_OK)
        (void)m3b_objkey_parse(event.key, strlen(event.key), &key, NULL, 0);
      m3b_desired_state_cleanup(&event);
    } else if (strcmp(record, M3B_RECORD_STATUS) == 0) {
      struct m3b_status event;
      m3b_status_init(&event);
      (void)m3b_status_decode(codec, data, size, &event, NULL, 0);
      m3b_status_cleanup(&event);
    } else if (strcmp(record, M3B_RECORD_HEARTBEAT) == 0) {
      struct m3b_heartbeat event;
      m3b_heartbeat_init(&event);
      (void)m3b_heartbeat_decode(codec, data, size, &event, NULL, 0);
      m3b_heartbeat_cleanup(&event);
    } else if (strcmp(record, M3B_RECORD_REGISTRATION) == 0) {
      struct m3b_registration event;
      m3b_registration_init(&event);
      (void)m3b_registration_decode(codec, data, size, &event, NULL, 0);
      m3b_registration_cleanup(&event);
    }
  }
  /* the same bytes as an object key and as a manifest */
  (void)m3b_objkey_parse((const char *)data, size, &key, NULL, 0);
  if (size < 4096)
    (void)m3b_objkey_from_manifest(data, size, &key, NULL, 0);
  return 0;
}
