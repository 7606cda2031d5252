/*
 * cmd_keygen.c - `m3bridge-publisher keygen`: a new Ed25519 signing key
 * pair (control plane), or with --seal an X25519 sealing key pair (the
 * listener's, for sealed Secret data). Private keys are written with mode
 * 0600 and never over an existing file.
 */
#include <stdio.h>
#include <string.h>

#include <m3b/cli.h>
#include <m3b/seal.h>
#include <m3b/sign.h>

#include "commands.h"

static int keygen_sign(const char *dir, const char *name) {
  char priv[1024], pub[1024], errstr[512];
  m3b_sign_key_t *key = m3b_sign_key_generate(errstr, sizeof(errstr));
  int rc = M3B_EXIT_FAIL;
  if (!key) {
    fprintf(stderr, "m3bridge-publisher keygen: %s\n", errstr);
    return rc;
  }
  snprintf(priv, sizeof(priv), "%s/%s.key", dir, name);
  snprintf(pub, sizeof(pub), "%s/%s.pub.pem", dir, name);
  if (m3b_sign_key_save(key, priv, NULL, errstr, sizeof(errstr)) ||
      m3b_sign_key_save_public(key, pub, errstr, sizeof(errstr))) {
    fprintf(stderr, "m3bridge-publisher keygen: %s\n", errstr);
  } else {
    printf("signing key id %s\n  private: %s (mode 0600; keep it in the "
           "control plane)\n  public:  %s (give it to every listener's "
           "trusted keys)\n",
           m3b_sign_key_id(key), priv, pub);
    rc = M3B_EXIT_OK;
  }
  m3b_sign_key_destroy(key);
  return rc;
}

static int keygen_seal(const char *dir, const char *name) {
  char priv[1024], pub[1024], errstr[512];
  uint8_t pub_raw[M3B_SEAL_PUBLIC_LEN];
  m3b_seal_key_t *key = m3b_seal_key_generate(errstr, sizeof(errstr));
  int rc = M3B_EXIT_FAIL;
  if (!key) {
    fprintf(stderr, "m3bridge-publisher keygen: %s\n", errstr);
    return rc;
  }
  snprintf(priv, sizeof(priv), "%s/%s.key", dir, name);
  snprintf(pub, sizeof(pub), "%s/%s.pub.pem", dir, name);
  m3b_seal_key_public(key, pub_raw);
  if (m3b_seal_key_save(key, priv, NULL, errstr, sizeof(errstr)) ||
      m3b_seal_public_save(pub_raw, pub, errstr, sizeof(errstr))) {
    fprintf(stderr, "m3bridge-publisher keygen: %s\n", errstr);
  } else {
    printf("sealing key pair\n  private: %s (mode 0600; only the listener "
           "holds it)\n  public:  %s (the publisher's "
           "sealing.listener_key_file)\n",
           priv, pub);
    rc = M3B_EXIT_OK;
  }
  m3b_seal_key_destroy(key);
  return rc;
}

int m3b_cmd_keygen(int argc, char **argv) {
  const char *dir = ".", *name = NULL;
  int seal = 0, i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
      dir = argv[++i];
    else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
      name = argv[++i];
    else if (strcmp(argv[i], "--seal") == 0)
      seal = 1;
    else {
      fprintf(stderr,
              "m3bridge-publisher keygen: unexpected '%s' (see "
              "--help)\n",
              argv[i]);
      return M3B_EXIT_USAGE;
    }
  }
  if (!name)
    name = seal ? "sealing" : "signing";
  return seal ? keygen_seal(dir, name) : keygen_sign(dir, name);
}
