/*
 * bench_crypto.c - speed of m3bridge's signing and sealing against OpenSSL's
 * own Ed25519 numbers on the same machine, in the same run.
 *
 * Measures ns/op (median of several runs) for m3b_sign and m3b_verify of a
 * 2 KiB record value, and m3b_seal and m3b_unseal of 64 B and 4 KiB
 * secrets; then runs `openssl speed -seconds 3 ed25519`, parses its sign/s
 * and verify/s, and prints our ops/s divided by OpenSSL's. OpenSSL signs a
 * short message, so the ratio also shows what hashing 2 KiB and framing the
 * signing input cost on top of the bare curve operation.
 *
 * Reproduce:
 *   cmake --preset release && cmake --build build/release --target
 *   bench_crypto && build/release/bench/bench_crypto
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <m3b/buf.h>
#include <m3b/seal.h>
#include <m3b/sign.h>

#include "bench_util.h"

#define RUNS 7
#define RUN_NS 300000000u /* 0.3 s per run */

static const char rec_key[] = "apps/v1/Deployment/shop/web";
static const char object_key[] = "/v1/Secret/shop/db";

struct sign_ctx {
  m3b_sign_key_t *key;
  m3b_keyring_t *ring;
  uint8_t value[2048];
  struct m3b_signature sig;
  struct m3b_sig_headers headers;
};

static int op_sign(void *arg) {
  struct sign_ctx *ctx = arg;
  return m3b_sign(ctx->key, rec_key, sizeof(rec_key) - 1, ctx->value,
                  sizeof(ctx->value), &ctx->sig) != M3B_OK;
}

static int op_verify(void *arg) {
  struct sign_ctx *ctx = arg;
  return m3b_verify(ctx->ring, rec_key, sizeof(rec_key) - 1, ctx->value,
                    sizeof(ctx->value), &ctx->headers) != M3B_OK;
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
  return m3b_seal(ctx->pub, ctx->plain, ctx->plain_len, object_key,
                  sizeof(object_key) - 1, &ctx->scratch) != M3B_OK;
}

static int op_unseal(void *arg) {
  struct seal_ctx *ctx = arg;
  m3b_buf_reset(&ctx->scratch);
  return m3b_unseal(ctx->key, ctx->sealed.data, ctx->sealed.len, object_key,
                    sizeof(object_key) - 1, &ctx->scratch) != M3B_OK;
}

static void print_row(const char *op, size_t size, struct bench_result r) {
  printf("| %-7s | %6zu B | %10.0f | %10.0f | %10.0f | %10.0f |\n", op, size,
         r.median_ns, r.min_ns, r.max_ns, 1e9 / r.median_ns);
}

/* Runs `openssl speed` and reads the Ed25519 line:
 *   " 253 bits EdDSA (Ed25519)   0.0000s   0.0001s  25000.0   9000.0" */
static int openssl_speed(double *sign_per_s, double *verify_per_s) {
  FILE *pipe = popen("openssl speed -seconds 3 ed25519 2>/dev/null", "r");
  char line[512];
  int found = 0;
  if (!pipe)
    return -1;
  while (fgets(line, sizeof(line), pipe)) {
    const char *tail = strstr(line, "(Ed25519)");
    double sign_s, verify_s;
    if (tail && sscanf(tail + 9, " %lfs %lfs %lf %lf", &sign_s, &verify_s,
                       sign_per_s, verify_per_s) == 4)
      found = 1;
  }
  if (pclose(pipe) != 0 || !found)
    return -1;
  return 0;
}

int main(void) {
  struct sign_ctx sc;
  struct seal_ctx xc;
  struct bench_result r_sign, r_verify;
  static const size_t secret_sizes[] = {64, 4096};
  double ssl_sign = 0, ssl_verify = 0;
  size_t i;

  memset(&sc, 0, sizeof(sc));
  memset(&xc, 0, sizeof(xc));
  for (i = 0; i < sizeof(sc.value); i++)
    sc.value[i] = (uint8_t)(i * 7);
  sc.key = m3b_sign_key_generate(NULL, 0);
  sc.ring = m3b_keyring_new(NULL, 0);
  xc.key = m3b_seal_key_generate(NULL, 0);
  if (!sc.key || !sc.ring || !xc.key ||
      m3b_keyring_add_sign_key(sc.ring, sc.key) != M3B_OK) {
    fputs("bench_crypto: setup failed\n", stderr);
    return 1;
  }
  m3b_seal_key_public(xc.key, xc.pub);
  m3b_buf_init(&xc.sealed, 1 << 20);
  m3b_buf_init(&xc.scratch, 1 << 20);

  printf("m3bridge crypto benchmark: median of %d runs of ~%.1f s each\n\n",
         RUNS, RUN_NS / 1e9);
  printf("| op      |      size |  median ns |     min ns |     max ns |"
         "      ops/s |\n");
  printf("|---------|-----------|------------|------------|------------|"
         "------------|\n");
  r_sign = bench_measure(op_sign, &sc, RUNS, RUN_NS);
  print_row("sign", sizeof(sc.value), r_sign);
  m3b_sig_headers_init(&sc.headers);
  m3b_sig_headers_feed(&sc.headers, M3B_SIG_HEADER, sc.sig.sig, M3B_SIG_LEN);
  m3b_sig_headers_feed(&sc.headers, M3B_KID_HEADER, sc.sig.kid, M3B_KID_LEN);
  r_verify = bench_measure(op_verify, &sc, RUNS, RUN_NS);
  print_row("verify", sizeof(sc.value), r_verify);

  for (i = 0; i < sizeof(secret_sizes) / sizeof(secret_sizes[0]); i++) {
    xc.plain_len = secret_sizes[i];
    memset(xc.plain, 0x42, xc.plain_len);
    print_row("seal", xc.plain_len, bench_measure(op_seal, &xc, RUNS, RUN_NS));
    m3b_buf_reset(&xc.sealed);
    if (m3b_seal(xc.pub, xc.plain, xc.plain_len, object_key,
                 sizeof(object_key) - 1, &xc.sealed) != M3B_OK)
      return 1;
    print_row("unseal", xc.plain_len,
              bench_measure(op_unseal, &xc, RUNS, RUN_NS));
  }

  printf("\nbaseline: openssl speed -seconds 3 ed25519\n");
  if (openssl_speed(&ssl_sign, &ssl_verify) == 0) {
    printf("  openssl: %.0f sign/s, %.0f verify/s\n", ssl_sign, ssl_verify);
    printf("  m3b:     %.0f sign/s, %.0f verify/s (2 KiB value)\n",
           1e9 / r_sign.median_ns, 1e9 / r_verify.median_ns);
    printf("  ratio ours/openssl: sign %.2f, verify %.2f\n",
           1e9 / r_sign.median_ns / ssl_sign,
           1e9 / r_verify.median_ns / ssl_verify);
  } else {
    printf("  could not run or parse `openssl speed`\n");
  }
  printf("\n");
  bench_print_machine(stdout);
  printf("reproduce: cmake --preset release && cmake --build build/release "
         "--target bench_crypto && build/release/bench/bench_crypto\n");

  m3b_buf_cleanup(&xc.sealed);
  m3b_buf_cleanup_secret(&xc.scratch);
  m3b_seal_key_destroy(xc.key);
  m3b_keyring_destroy(sc.ring);
  m3b_sign_key_destroy(sc.key);
  return 0;
}
