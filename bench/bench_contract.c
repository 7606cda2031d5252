/*
 * bench_contract.c - the cost of the event contract per DesiredState event,
 * against OpenSSL's own Ed25519 numbers on the same machine, in the same run.
 *
 * One realistic event (a 2 KB Deployment manifest with production-like
 * plane, key, release and correlation ids) goes through every step the two
 * planes take: the publisher encodes it (Avro single-object encoding) and
 * signs record key + value; the listener verifies and decodes it. Secret
 * values of 64 B and 4 KiB are sealed and unsealed. Each step is timed
 * alone and the two per-event paths as composites ("encode+sign",
 * "verify+decode"), as the median ns/op of several runs of many
 * iterations. Goal: each composite under 100 us per event; the exit status
 * is 0 when both meet it, 2 when one does not, 1 when setup fails.
 *
 * Baseline: `openssl speed -seconds 3 ed25519` (sign/s and verify/s of the
 * bare curve operation over a short message), run after our measurements;
 * the ratio is our time per op over OpenSSL's, so what it adds above 1.00 is
 * the cost of framing and hashing the 2 KB record and of the library's own
 * work around the EVP call.
 *
 * Reproduce:
 *   cmake --preset release && cmake --build build/release --target
 *   bench_contract && build/release/bench/bench_contract
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <m3b/buf.h>
#include <m3b/codec.h>
#include <m3b/event.h>
#include <m3b/objkey.h>
#include <m3b/schema.h>
#include <m3b/seal.h>
#include <m3b/sign.h>

#include "bench_util.h"

#define RUNS 7
#define RUN_NS 300000000u   /* about 0.3 s per run */
#define GOAL_NS 100000.0    /* per event, for each composite */
#define SIG_HEADER_BYTES 80 /* m3-sig (64) + m3-kid (16) header values */

static const char plane[] = "eu-west-1-prod";
static const char rec_key[] = "apps/v1/Deployment/checkout/checkout-api";
static const char release_id[] = "rel-20250614.3-7f3a9c2e";
static const char correlation_id[] = "3f0c9a4e-8b1d-4c2a-9e57-1d6b0f2a7c41";
static const char secret_key[] = "/v1/Secret/checkout/checkout-db";

/* What a control plane publishes for a typical service: labels, probes,
 * resources, security context, env with a secret reference. */
static const char manifest[] =
    "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{"
    "\"name\":\"checkout-api\",\"namespace\":\"checkout\",\"labels\":{"
    "\"app.kubernetes.io/name\":\"checkout-api\","
    "\"app.kubernetes.io/instance\":\"checkout-api-prod\","
    "\"app.kubernetes.io/version\":\"4.12.3\","
    "\"app.kubernetes.io/component\":\"api\","
    "\"app.kubernetes.io/part-of\":\"shop\","
    "\"app.kubernetes.io/managed-by\":\"m3bridge\"},\"annotations\":{"
    "\"m3bridge.io/release\":\"rel-20250614.3-7f3a9c2e\"}},"
    "\"spec\":{\"replicas\":6,\"revisionHistoryLimit\":5,\"selector\":{"
    "\"matchLabels\":{\"app.kubernetes.io/name\":\"checkout-api\","
    "\"app.kubernetes.io/instance\":\"checkout-api-prod\"}},"
    "\"strategy\":{\"type\":\"RollingUpdate\",\"rollingUpdate\":{"
    "\"maxSurge\":\"25%\",\"maxUnavailable\":0}},\"template\":{\"metadata\":{"
    "\"labels\":{\"app.kubernetes.io/name\":\"checkout-api\","
    "\"app.kubernetes.io/instance\":\"checkout-api-prod\","
    "\"app.kubernetes.io/version\":\"4.12.3\"},\"annotations\":{"
    "\"prometheus.io/scrape\":\"true\",\"prometheus.io/port\":\"9102\"}},"
    "\"spec\":{\"serviceAccountName\":\"checkout-api\",\"securityContext\":{"
    "\"runAsNonRoot\":true,\"runAsUser\":10001,\"fsGroup\":10001,"
    "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}},\"containers\":[{"
    "\"name\":\"api\",\"image\":\"registry.example.com/shop/checkout-api@"
    "sha256:9b2f6c1e0d8a4b7f3e5c2a1d0f9e8b7c6a5d4e3f2b1a0c9d8e7f6a5b4c3d2e1f\","
    "\"imagePullPolicy\":\"IfNotPresent\","
    "\"args\":[\"--listen=:8080\",\"--metrics=:9102\"],\"ports\":["
    "{\"name\":\"http\",\"containerPort\":8080,\"protocol\":\"TCP\"},"
    "{\"name\":\"metrics\",\"containerPort\":9102,\"protocol\":\"TCP\"}],"
    "\"env\":[{\"name\":\"DB_HOST\","
    "\"value\":\"checkout-db.checkout.svc.cluster.local\"},"
    "{\"name\":\"DB_PASSWORD\",\"valueFrom\":{\"secretKeyRef\":{"
    "\"name\":\"checkout-db\",\"key\":\"password\"}}},"
    "{\"name\":\"OTEL_EXPORTER_OTLP_ENDPOINT\","
    "\"value\":\"http://otel-collector.observability:4317\"}],"
    "\"resources\":{\"requests\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"},"
    "\"limits\":{\"cpu\":\"2\",\"memory\":\"1Gi\"}},\"readinessProbe\":{"
    "\"httpGet\":{\"path\":\"/healthz/ready\",\"port\":\"http\"},"
    "\"periodSeconds\":5,\"failureThreshold\":3},\"livenessProbe\":{"
    "\"httpGet\":{\"path\":\"/healthz/live\",\"port\":\"http\"},"
    "\"initialDelaySeconds\":10,\"periodSeconds\":10},\"securityContext\":{"
    "\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,"
    "\"capabilities\":{\"drop\":[\"ALL\"]}},\"volumeMounts\":["
    "{\"name\":\"tmp\",\"mountPath\":\"/tmp\"}]}],"
    "\"volumes\":[{\"name\":\"tmp\",\"emptyDir\":{}}],"
    "\"topologySpreadConstraints\":[{\"maxSkew\":1,"
    "\"topologyKey\":\"topology.kubernetes.io/zone\","
    "\"whenUnsatisfiable\":\"ScheduleAnyway\",\"labelSelector\":{"
    "\"matchLabels\":{\"app.kubernetes.io/name\":\"checkout-api\"}}}]}}}}";

/* State shared by the per-event operations. */
struct event_ctx {
  m3b_codec_t *codec;
  m3b_sign_key_t *sign_key;
  m3b_keyring_t *ring;
  struct m3b_desired_state event;   /* borrowed pointers, for encoding */
  struct m3b_desired_state decoded; /* owned, refilled by every decode */
  struct m3b_buf encoded;           /* the record value */
  struct m3b_buf scratch;           /* encode target of timed encodes */
  struct m3b_signature sig;
  struct m3b_sig_headers headers;
};

static int op_encode(void *arg) {
  struct event_ctx *ctx = arg;
  m3b_buf_reset(&ctx->scratch);
  return m3b_desired_state_encode(ctx->codec, &ctx->event, &ctx->scratch, NULL,
                                  0) != M3B_OK;
}

static int op_decode(void *arg) {
  struct event_ctx *ctx = arg;
  return m3b_desired_state_decode(ctx->codec, ctx->encoded.data,
                                  ctx->encoded.len, &ctx->decoded, NULL,
                                  0) != M3B_OK;
}

static int op_sign(void *arg) {
  struct event_ctx *ctx = arg;
  return m3b_sign(ctx->sign_key, rec_key, sizeof(rec_key) - 1,
                  ctx->encoded.data, ctx->encoded.len, &ctx->sig) != M3B_OK;
}

static int op_verify(void *arg) {
  struct event_ctx *ctx = arg;
  return m3b_verify(ctx->ring, rec_key, sizeof(rec_key) - 1, ctx->encoded.data,
                    ctx->encoded.len, &ctx->headers) != M3B_OK;
}

/* What the publisher does per event. */
static int op_encode_sign(void *arg) {
  struct event_ctx *ctx = arg;
  m3b_buf_reset(&ctx->scratch);
  if (m3b_desired_state_encode(ctx->codec, &ctx->event, &ctx->scratch, NULL,
                               0) != M3B_OK)
    return 1;
  return m3b_sign(ctx->sign_key, rec_key, sizeof(rec_key) - 1,
                  ctx->scratch.data, ctx->scratch.len, &ctx->sig) != M3B_OK;
}

/* What the listener does per event before it touches Kubernetes. */
static int op_verify_decode(void *arg) {
  struct event_ctx *ctx = arg;
  if (m3b_verify(ctx->ring, rec_key, sizeof(rec_key) - 1, ctx->encoded.data,
                 ctx->encoded.len, &ctx->headers) != M3B_OK)
    return 1;
  return m3b_desired_state_decode(ctx->codec, ctx->encoded.data,
                                  ctx->encoded.len, &ctx->decoded, NULL,
                                  0) != M3B_OK;
}

struct seal_ctx {
  m3b_seal_key_t *key;
  uint8_t pub[M3B_SEAL_PUBLIC_LEN];
  uint8_t plain[4096];
  size_t plain_len;
  struct m3b_buf sealed; /* the input of op_unseal */
  struct m3b_buf scratch;
};

static int op_seal(void *arg) {
  struct seal_ctx *ctx = arg;
  m3b_buf_reset(&ctx->scratch);
  return m3b_seal(ctx->pub, ctx->plain, ctx->plain_len, secret_key,
                  sizeof(secret_key) - 1, &ctx->scratch) != M3B_OK;
}

static int op_unseal(void *arg) {
  struct seal_ctx *ctx = arg;
  m3b_buf_reset(&ctx->scratch);
  return m3b_unseal(ctx->key, ctx->sealed.data, ctx->sealed.len, secret_key,
                    sizeof(secret_key) - 1, &ctx->scratch) != M3B_OK;
}

static void print_row(const char *op, const char *input,
                      struct bench_result result) {
  printf("| %-13s | %-16s | %10.0f | %10.0f | %10.0f | %9.0f |\n", op, input,
         result.median_ns, result.min_ns, result.max_ns,
         1e9 / result.median_ns);
}

/* Prints one line of the verdict; ssl_per_s is 0 when unknown. */
static void print_goal(const char *op, struct bench_result result,
                       const char *ssl_op, double ssl_per_s) {
  printf("  %-13s %7.1f us  %s", op, result.median_ns / 1000,
         result.median_ns < GOAL_NS ? "PASS" : "FAIL");
  if (ssl_per_s > 0)
    printf("  (openssl's bare Ed25519 %s alone: %.1f us)", ssl_op,
           1e6 / ssl_per_s);
  printf("\n");
}

/* Runs `openssl speed` and reads its Ed25519 line:
 *   " 253 bits EdDSA (Ed25519)   0.0000s   0.0001s  25000.0   9000.0" */
static int openssl_speed(double *sign_per_s, double *verify_per_s) {
  FILE *pipe = popen("openssl speed -seconds 3 ed25519 2>/dev/null", "r");
  char line[512];
  int found = 0;

  if (!pipe)
    return -1;
  while (fgets(line, sizeof(line), pipe)) {
    const char *tail = strstr(line, "(Ed25519)");
    double sign_s;
    double verify_s;
    if (tail && sscanf(tail + 9, " %lfs %lfs %lf %lf", &sign_s, &verify_s,
                       sign_per_s, verify_per_s) == 4)
      found = 1;
  }
  if (pclose(pipe) != 0 || !found)
    return -1;
  return 0;
}

/* Fills the event and the shared state; 0 on success. */
static int event_setup(struct event_ctx *ctx,
                       const m3b_schema_registry_t *registry) {
  char errstr[256] = "";
  m3b_err_t err;

  m3b_desired_state_init(&ctx->event);
  m3b_desired_state_init(&ctx->decoded);
  m3b_buf_init(&ctx->encoded, (size_t)4 << 20);
  m3b_buf_init(&ctx->scratch, (size_t)4 << 20);
  ctx->event.plane = (char *)plane;
  ctx->event.key = (char *)rec_key;
  ctx->event.generation = 1842;
  ctx->event.op = M3B_OP_APPLY;
  ctx->event.manifest = (uint8_t *)manifest;
  ctx->event.manifest_len = sizeof(manifest) - 1;
  ctx->event.release_id = (char *)release_id;
  ctx->event.issued_at_ms = INT64_C(1749888000123);
  ctx->event.correlation_id = (char *)correlation_id;

  ctx->codec = m3b_codec_new(registry, NULL, errstr, sizeof(errstr));
  ctx->sign_key = m3b_sign_key_generate(errstr, sizeof(errstr));
  ctx->ring = m3b_keyring_new(errstr, sizeof(errstr));
  if (!ctx->codec || !ctx->sign_key || !ctx->ring)
    goto fail;
  err = m3b_manifest_sha256(manifest, sizeof(manifest) - 1,
                            ctx->event.manifest_sha256);
  if (!err)
    err = m3b_keyring_add_sign_key(ctx->ring, ctx->sign_key);
  if (!err)
    err = m3b_desired_state_encode(ctx->codec, &ctx->event, &ctx->encoded,
                                   errstr, sizeof(errstr));
  if (!err)
    err = m3b_sign(ctx->sign_key, rec_key, sizeof(rec_key) - 1,
                   ctx->encoded.data, ctx->encoded.len, &ctx->sig);
  if (err)
    goto fail_err;
  m3b_sig_headers_init(&ctx->headers);
  m3b_sig_headers_feed(&ctx->headers, M3B_SIG_HEADER, ctx->sig.sig,
                       M3B_SIG_LEN);
  m3b_sig_headers_feed(&ctx->headers, M3B_KID_HEADER, ctx->sig.kid,
                       M3B_KID_LEN);
  /* the timed operations must be the successful path */
  err = m3b_verify(ctx->ring, rec_key, sizeof(rec_key) - 1, ctx->encoded.data,
                   ctx->encoded.len, &ctx->headers);
  if (!err)
    err = m3b_desired_state_decode(ctx->codec, ctx->encoded.data,
                                   ctx->encoded.len, &ctx->decoded, errstr,
                                   sizeof(errstr));
  if (err)
    goto fail_err;
  if (ctx->decoded.manifest_len != ctx->event.manifest_len ||
      memcmp(ctx->decoded.manifest, manifest, sizeof(manifest) - 1) != 0 ||
      strcmp(ctx->decoded.key, rec_key) != 0) {
    snprintf(errstr, sizeof(errstr), "decoded event differs");
    goto fail;
  }
  return 0;

fail_err:
  fprintf(stderr, "bench_contract: setup: %s %s\n", m3b_err_str(err), errstr);
  return -1;
fail:
  fprintf(stderr, "bench_contract: setup: %s\n", errstr);
  return -1;
}

static void event_cleanup(struct event_ctx *ctx) {
  m3b_desired_state_cleanup(&ctx->decoded);
  m3b_buf_cleanup(&ctx->encoded);
  m3b_buf_cleanup(&ctx->scratch);
  m3b_keyring_destroy(ctx->ring);
  m3b_sign_key_destroy(ctx->sign_key);
  m3b_codec_destroy(ctx->codec);
}

int main(void) {
  static const size_t secret_sizes[] = {64, 4096};
  m3b_schema_registry_t *registry;
  struct event_ctx ec;
  struct seal_ctx sc;
  struct bench_result r_sign, r_verify, r_encode_sign, r_verify_decode;
  char load_start[64];
  char load_end[64];
  char input[32];
  double ssl_sign = 0;
  double ssl_verify = 0;
  int status = 1;
  size_t i;

  bench_loadavg(load_start, sizeof(load_start));
  memset(&ec, 0, sizeof(ec));
  memset(&sc, 0, sizeof(sc));
  m3b_buf_init(&sc.sealed, (size_t)1 << 20);
  m3b_buf_init(&sc.scratch, (size_t)1 << 20);
  registry = m3b_schema_registry_new_builtin(NULL, 0);
  if (!registry || event_setup(&ec, registry) != 0)
    goto out;
  sc.key = m3b_seal_key_generate(NULL, 0);
  if (!sc.key) {
    fputs("bench_contract: cannot generate an X25519 key\n", stderr);
    goto out;
  }
  m3b_seal_key_public(sc.key, sc.pub);

  printf("m3bridge contract benchmark: one DesiredState event, median of %d "
         "runs of ~%.1f s each\n\n",
         RUNS, RUN_NS / 1e9);
  printf("event: key %s (%zu B), manifest %zu B (Deployment JSON)\n", rec_key,
         sizeof(rec_key) - 1, sizeof(manifest) - 1);
  printf("bytes per event: value %zu B encoded; + %d B signature headers "
         "(m3-sig 64 + m3-kid 16) = %zu B\n\n",
         ec.encoded.len, SIG_HEADER_BYTES, ec.encoded.len + SIG_HEADER_BYTES);

  snprintf(input, sizeof(input), "%zu B value", ec.encoded.len);
  printf("| op            | input            |  median ns |     min ns |"
         "     max ns |     ops/s |\n");
  printf("|---------------|------------------|------------|------------|"
         "------------|-----------|\n");
  print_row("encode", input, bench_measure(op_encode, &ec, RUNS, RUN_NS));
  print_row("decode", input, bench_measure(op_decode, &ec, RUNS, RUN_NS));
  r_sign = bench_measure(op_sign, &ec, RUNS, RUN_NS);
  print_row("sign", input, r_sign);
  r_verify = bench_measure(op_verify, &ec, RUNS, RUN_NS);
  print_row("verify", input, r_verify);
  r_encode_sign = bench_measure(op_encode_sign, &ec, RUNS, RUN_NS);
  print_row("encode+sign", "event", r_encode_sign);
  r_verify_decode = bench_measure(op_verify_decode, &ec, RUNS, RUN_NS);
  print_row("verify+decode", "event", r_verify_decode);

  for (i = 0; i < sizeof(secret_sizes) / sizeof(secret_sizes[0]); i++) {
    sc.plain_len = secret_sizes[i];
    memset(sc.plain, 0x42, sc.plain_len);
    snprintf(input, sizeof(input), "%zu B secret", sc.plain_len);
    print_row("seal", input, bench_measure(op_seal, &sc, RUNS, RUN_NS));
    m3b_buf_reset(&sc.sealed);
    if (m3b_seal(sc.pub, sc.plain, sc.plain_len, secret_key,
                 sizeof(secret_key) - 1, &sc.sealed) != M3B_OK)
      goto out;
    print_row("unseal", input, bench_measure(op_unseal, &sc, RUNS, RUN_NS));
  }

  printf("\nbaseline: openssl speed -seconds 3 ed25519 (short message)\n");
  if (openssl_speed(&ssl_sign, &ssl_verify) == 0) {
    printf("  openssl: %8.0f sign/s  %8.0f verify/s  (%.1f / %.1f us)\n",
           ssl_sign, ssl_verify, 1e6 / ssl_sign, 1e6 / ssl_verify);
    printf("  m3b:     %8.0f sign/s  %8.0f verify/s  (%.1f / %.1f us, "
           "%zu B record)\n",
           1e9 / r_sign.median_ns, 1e9 / r_verify.median_ns,
           r_sign.median_ns / 1000, r_verify.median_ns / 1000,
           sizeof(rec_key) - 1 + ec.encoded.len);
    printf("  ratio ours/openssl, time per op (1.00 = same, 2.00 = twice as "
           "long): sign %.2f, verify %.2f\n",
           r_sign.median_ns * ssl_sign / 1e9,
           r_verify.median_ns * ssl_verify / 1e9);
  } else {
    printf("  could not run or parse `openssl speed`\n");
  }

  /* after the baseline, so that the verdict can say how much of the budget
   * the bare curve operation already takes on this machine */
  printf("\ngoal: encode+sign and verify+decode each under %.0f us per "
         "event\n",
         GOAL_NS / 1000);
  print_goal("encode+sign", r_encode_sign, "sign", ssl_sign);
  print_goal("verify+decode", r_verify_decode, "verify", ssl_verify);
  status =
      r_encode_sign.median_ns < GOAL_NS && r_verify_decode.median_ns < GOAL_NS
          ? 0
          : 2;

  bench_loadavg(load_end, sizeof(load_end));
  printf("\n");
  bench_print_machine(stdout);
  printf("load:    %s at start, %s at end\n", load_start, load_end);
  printf("reproduce: cmake --preset release && cmake --build build/release "
         "--target bench_contract && build/release/bench/bench_contract\n");

out:
  m3b_buf_cleanup(&sc.sealed);
  m3b_buf_cleanup_secret(&sc.scratch);
  m3b_seal_key_destroy(sc.key);
  event_cleanup(&ec);
  m3b_schema_registry_destroy(registry);
  return status;
}
