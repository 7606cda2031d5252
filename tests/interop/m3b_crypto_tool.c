/* m3b_crypto_tool.c - a small command-line face of libm3bridge's signing and
 * sealing, so tests/interop/test_crypto_interop.py can check them against
 * an independent implementation (Python's cryptography) in both directions.
 *
 *   keygen-sign PRIV PUB [PASS]   new Ed25519 key: PKCS#8 PEM (0600) + public
 *   keygen-seal PRIV PUB [PASS]   new X25519 listener key, the same way
 *   kid PUB                       print the key id of an Ed25519 public key
 *   sign-input KEY < value        write the signing input bytes to stdout
 *   sign PRIV KEY [PASS] < value  print "SIGHEX KID"
 *   verify PUBDIR KEY SIGHEX KID < value
 *                                 trust every PUBDIR/ *.pem, verify, print OK
 *                                 ("-" for SIGHEX or KID: header absent)
 *   seal PUB AAD < plain          print the sealed text form
 *   unseal PRIV AAD [PASS] < text write the plaintext to stdout
 *   seal-manifest PUB OBJKEY < json      seal a Secret manifest
 *   unseal-manifest PRIV OBJKEY < json   unseal a Secret manifest
 *
 * Exit status: 0 success, 1 a library error (its name, e.g. SIG_INVALID, is
 * printed on stderr as "error: NAME: detail"), 2 bad usage. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include <m3b/buf.h>
#include <m3b/err.h>
#include <m3b/seal.h>
#include <m3b/seal_manifest.h>
#include <m3b/sign.h>

#define INPUT_MAX (64u * 1024 * 1024)

static int usage(void) {
  fputs("usage: m3b_crypto_tool keygen-sign|keygen-seal|kid|sign-input|sign|"
        "verify|seal|unseal|seal-manifest|unseal-manifest ARGS...\n",
        stderr);
  return 2;
}

static int fail(m3b_err_t err, const char *detail) {
  fprintf(stderr, "error: %s: %s\n", m3b_err_name(err),
          detail && detail[0] ? detail : m3b_err_str(err));
  return 1;
}

static m3b_err_t read_stdin(struct m3b_buf *in) {
  uint8_t chunk[65536];
  size_t n;
  m3b_err_t err;
  while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0) {
    err = m3b_buf_append(in, chunk, n);
    if (err)
      return err;
  }
  return ferror(stdin) ? M3B_ERR_IO : M3B_OK;
}

static int hex_value(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Decodes hex into out (at most max bytes); -1 when malformed. */
static long hex_decode(const char *hex, uint8_t *out, size_t max) {
  size_t len = strlen(hex);
  size_t i;
  if (len % 2 || len / 2 > max)
    return -1;
  for (i = 0; i < len / 2; i++) {
    int hi = hex_value(hex[2 * i]);
    int lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return (long)(len / 2);
}

static int cmd_keygen(int argc, char **argv, int seal) {
  char errstr[256] = "";
  const char *pass = argc > 4 ? argv[4] : NULL;
  m3b_err_t err;
  if (argc < 4)
    return usage();
  if (seal) {
    m3b_seal_key_t *key = m3b_seal_key_generate(errstr, sizeof(errstr));
    uint8_t pub[M3B_SEAL_PUBLIC_LEN];
    if (!key)
      return fail(M3B_ERR_CRYPTO, errstr);
    m3b_seal_key_public(key, pub);
    err = m3b_seal_key_save(key, argv[2], pass, errstr, sizeof(errstr));
    if (!err)
      err = m3b_seal_public_save(pub, argv[3], errstr, sizeof(errstr));
    m3b_seal_key_destroy(key);
  } else {
    m3b_sign_key_t *key = m3b_sign_key_generate(errstr, sizeof(errstr));
    if (!key)
      return fail(M3B_ERR_CRYPTO, errstr);
    err = m3b_sign_key_save(key, argv[2], pass, errstr, sizeof(errstr));
    if (!err)
      err = m3b_sign_key_save_public(key, argv[3], errstr, sizeof(errstr));
    if (!err)
      printf("%s\n", m3b_sign_key_id(key));
    m3b_sign_key_destroy(key);
  }
  return err ? fail(err, errstr) : 0;
}

static int cmd_kid(int argc, char **argv) {
  m3b_keyring_t *ring;
  char kid[M3B_KID_LEN + 1];
  char errstr[256] = "";
  m3b_err_t err;
  if (argc != 3)
    return usage();
  ring = m3b_keyring_new(errstr, sizeof(errstr));
  if (!ring)
    return fail(M3B_ERR_NOMEM, errstr);
  err = m3b_keyring_add_file(ring, argv[2], kid, errstr, sizeof(errstr));
  if (!err)
    printf("%s\n", kid);
  m3b_keyring_destroy(ring);
  return err ? fail(err, errstr) : 0;
}

static int cmd_sign_input(int argc, char **argv) {
  struct m3b_buf value;
  struct m3b_buf input;
  m3b_err_t err;
  if (argc != 3)
    return usage();
  m3b_buf_init(&value, INPUT_MAX);
  m3b_buf_init(&input, 2 * INPUT_MAX);
  err = read_stdin(&value);
  if (!err)
    err =
        m3b_sign_input(argv[2], strlen(argv[2]), value.data, value.len, &input);
  if (!err)
    fwrite(input.data, 1, input.len, stdout);
  m3b_buf_cleanup(&value);
  m3b_buf_cleanup(&input);
  return err ? fail(err, NULL) : 0;
}

static int cmd_sign(int argc, char **argv) {
  m3b_sign_key_t *key = NULL;
  struct m3b_buf value;
  struct m3b_signature sig;
  char errstr[256] = "";
  m3b_err_t err;
  size_t i;
  if (argc < 4)
    return usage();
  m3b_buf_init(&value, INPUT_MAX);
  err = m3b_sign_key_load(argv[2], argc > 4 ? argv[4] : NULL, &key, errstr,
                          sizeof(errstr));
  if (!err)
    err = read_stdin(&value);
  if (!err)
    err = m3b_sign(key, argv[3], strlen(argv[3]), value.data, value.len, &sig);
  if (!err) {
    for (i = 0; i < M3B_SIG_LEN; i++)
      printf("%02x", sig.sig[i]);
    printf(" %s\n", sig.kid);
  }
  m3b_sign_key_destroy(key);
  m3b_buf_cleanup(&value);
  return err ? fail(err, errstr) : 0;
}

static int cmd_verify(int argc, char **argv) {
  m3b_keyring_t *ring;
  struct m3b_buf value;
  struct m3b_sig_headers headers;
  uint8_t sig[4 * M3B_SIG_LEN];
  long sig_len = 0;
  char errstr[256] = "";
  m3b_err_t err;
  if (argc != 6)
    return usage();
  ring = m3b_keyring_new(errstr, sizeof(errstr));
  if (!ring)
    return fail(M3B_ERR_NOMEM, errstr);
  m3b_buf_init(&value, INPUT_MAX);
  m3b_sig_headers_init(&headers);
  err = m3b_keyring_load_dir(ring, argv[2], NULL, errstr, sizeof(errstr));
  if (err)
    goto out;
  err = read_stdin(&value);
  if (err)
    goto out;
  if (strcmp(argv[4], "-") != 0) {
    sig_len = hex_decode(argv[4], sig, sizeof(sig));
    if (sig_len < 0) {
      fputs("SIGHEX is not hex\n", stderr);
      err = M3B_ERR_INVALID_ARG;
      goto out;
    }
    m3b_sig_headers_feed(&headers, M3B_SIG_HEADER, sig, (size_t)sig_len);
  }
  if (strcmp(argv[5], "-") != 0)
    m3b_sig_headers_feed(&headers, M3B_KID_HEADER, argv[5], strlen(argv[5]));
  err = m3b_verify(ring, argv[3], strlen(argv[3]), value.data, value.len,
                   &headers);
  if (!err)
    puts("OK");
out:
  m3b_keyring_destroy(ring);
  m3b_buf_cleanup(&value);
  return err ? fail(err, errstr) : 0;
}

static int cmd_seal(int argc, char **argv) {
  uint8_t pub[M3B_SEAL_PUBLIC_LEN];
  struct m3b_buf plain;
  struct m3b_buf text;
  char errstr[256] = "";
  m3b_err_t err;
  if (argc != 4)
    return usage();
  m3b_buf_init(&plain, INPUT_MAX);
  m3b_buf_init(&text, 2 * INPUT_MAX);
  err = m3b_seal_public_load(argv[2], pub, errstr, sizeof(errstr));
  if (!err)
    err = read_stdin(&plain);
  if (!err)
    err = m3b_seal_text(pub, plain.data, plain.len, argv[3], strlen(argv[3]),
                        &text);
  if (!err)
    printf("%s\n", (char *)text.data);
  m3b_buf_cleanup_secret(&plain);
  m3b_buf_cleanup(&text);
  return err ? fail(err, errstr) : 0;
}

static int cmd_unseal(int argc, char **argv) {
  m3b_seal_key_t *key = NULL;
  struct m3b_buf text;
  struct m3b_buf plain;
  char errstr[256] = "";
  m3b_err_t err;
  if (argc < 4)
    return usage();
  m3b_buf_init(&text, INPUT_MAX);
  m3b_buf_init(&plain, INPUT_MAX);
  err = m3b_seal_key_load(argv[2], argc > 4 ? argv[4] : NULL, &key, errstr,
                          sizeof(errstr));
  if (!err)
    err = read_stdin(&text);
  /* the text form may arrive with a trailing newline */
  while (!err && text.len && (text.data[text.len - 1] == '\n'))
    text.len--;
  if (!err)
    err = m3b_unseal_text(key, (char *)text.data, text.len, argv[3],
                          strlen(argv[3]), &plain);
  if (!err)
    fwrite(plain.data, 1, plain.len, stdout);
  m3b_seal_key_destroy(key);
  m3b_buf_cleanup(&text);
  m3b_buf_cleanup_secret(&plain);
  return err ? fail(err, errstr) : 0;
}

static int cmd_manifest(int argc, char **argv, int unseal) {
  struct m3b_buf in;
  json_t *manifest = NULL;
  json_error_t json_err;
  char errstr[256] = "";
  m3b_err_t err;
  if (argc != 4)
    return usage();
  m3b_buf_init(&in, INPUT_MAX);
  err = read_stdin(&in);
  if (err)
    goto out;
  manifest = json_loadb((const char *)in.data, in.len, 0, &json_err);
  if (!manifest) {
    snprintf(errstr, sizeof(errstr), "bad JSON: %s", json_err.text);
    err = M3B_ERR_BAD_MANIFEST;
    goto out;
  }
  if (unseal) {
    m3b_seal_key_t *key = NULL;
    err = m3b_seal_key_load(argv[2], NULL, &key, errstr, sizeof(errstr));
    if (!err)
      err = m3b_unseal_manifest(manifest, key, argv[3], errstr, sizeof(errstr));
    m3b_seal_key_destroy(key);
  } else {
    uint8_t pub[M3B_SEAL_PUBLIC_LEN];
    err = m3b_seal_public_load(argv[2], pub, errstr, sizeof(errstr));
    if (!err)
      err = m3b_seal_manifest(manifest, pub, argv[3], errstr, sizeof(errstr));
  }
  if (!err && json_dumpf(manifest, stdout, JSON_SORT_KEYS) != 0)
    err = M3B_ERR_IO;
out:
  m3b_seal_manifest_wipe(manifest);
  json_decref(manifest);
  m3b_buf_cleanup_secret(&in);
  return err ? fail(err, errstr) : 0;
}

int main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (strcmp(cmd, "keygen-sign") == 0)
    return cmd_keygen(argc, argv, 0);
  if (strcmp(cmd, "keygen-seal") == 0)
    return cmd_keygen(argc, argv, 1);
  if (strcmp(cmd, "kid") == 0)
    return cmd_kid(argc, argv);
  if (strcmp(cmd, "sign-input") == 0)
    return cmd_sign_input(argc, argv);
  if (strcmp(cmd, "sign") == 0)
    return cmd_sign(argc, argv);
  if (strcmp(cmd, "verify") == 0)
    return cmd_verify(argc, argv);
  if (strcmp(cmd, "seal") == 0)
    return cmd_seal(argc, argv);
  if (strcmp(cmd, "unseal") == 0)
    return cmd_unseal(argc, argv);
  if (strcmp(cmd, "seal-manifest") == 0)
    return cmd_manifest(argc, argv, 0);
  if (strcmp(cmd, "unseal-manifest") == 0)
    return cmd_manifest(argc, argv, 1);
  return usage();
}
