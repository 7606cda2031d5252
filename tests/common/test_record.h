/*
 * test_record.h - building signed desired-topic records in tests, with
 * the library itself (m3b_desired_state_encode, m3b_sign), so tests of the
 * applier feed it exactly what a publisher would produce, then damage one
 * part at a time. Header-only (static functions) for unit and integration
 * tests alike; failures fail the current cmocka test.
 */
#ifndef M3B_TEST_RECORD_H
#define M3B_TEST_RECORD_H

#include <string.h>

#include <m3b/applier.h>
#include <m3b/event.h>
#include <m3b/objkey.h>
#include <m3b/sign.h>

/* What to put into the record; NULL strings take the defaults below. */
struct tr_spec {
  const char *plane;     /* default "it" */
  const char *rec_key;   /* the Kafka record key */
  const char *event_key; /* DesiredState.key; default rec_key */
  int64_t generation;
  enum m3b_op op;
  const char *manifest; /* JSON text, may be "" */
  int bad_hash;         /* non-zero: manifest_sha256 of other bytes */
};

struct test_record {
  struct m3b_buf value;
  struct m3b_signature sig;
  struct m3b_record_header headers[2];
  struct m3b_record rec;
};

/* Encodes and signs spec into tr (free with tr_cleanup). */
static void tr_build(struct test_record *tr, const m3b_codec_t *codec,
                     const m3b_sign_key_t *signer, const struct tr_spec *spec) {
  struct m3b_desired_state ev;
  char errstr[256] = "";
  const char *manifest = spec->manifest ? spec->manifest : "";

  memset(tr, 0, sizeof(*tr));
  m3b_buf_init(&tr->value, 8 * 1024 * 1024);
  m3b_desired_state_init(&ev);
  ev.plane = (char *)(spec->plane ? spec->plane : "it");
  ev.key = (char *)(spec->event_key ? spec->event_key : spec->rec_key);
  ev.generation = spec->generation;
  ev.op = spec->op;
  ev.manifest = (uint8_t *)manifest;
  ev.manifest_len = strlen(manifest);
  if (spec->bad_hash)
    assert_int_equal(m3b_manifest_sha256("x", 1, ev.manifest_sha256), M3B_OK);
  else
    assert_int_equal(
        m3b_manifest_sha256(manifest, strlen(manifest), ev.manifest_sha256),
        M3B_OK);
  ev.release_id = (char *)"rel-1";
  ev.issued_at_ms = 1700000000000LL;
  ev.correlation_id = (char *)"";
  if (m3b_desired_state_encode(codec, &ev, &tr->value, errstr,
                               sizeof(errstr)) != M3B_OK)
    fail_msg("encode: %s", errstr);
  assert_int_equal(m3b_sign(signer, spec->rec_key, strlen(spec->rec_key),
                            tr->value.data, tr->value.len, &tr->sig),
                   M3B_OK);
  tr->headers[0].name = M3B_SIG_HEADER;
  tr->headers[0].value = tr->sig.sig;
  tr->headers[0].len = M3B_SIG_LEN;
  tr->headers[1].name = M3B_KID_HEADER;
  tr->headers[1].value = tr->sig.kid;
  tr->headers[1].len = M3B_KID_LEN;
  tr->rec.topic = "m3.it.desired";
  tr->rec.partition = 3;
  tr->rec.offset = 42;
  tr->rec.timestamp_ms = 1700000000001LL;
  tr->rec.key = spec->rec_key;
  tr->rec.key_len = strlen(spec->rec_key);
  tr->rec.value = tr->value.data;
  tr->rec.value_len = tr->value.len;
  tr->rec.headers = tr->headers;
  tr->rec.header_count = 2;
}

static void tr_cleanup(struct test_record *tr) {
  m3b_buf_cleanup(&tr->value);
}

#endif
