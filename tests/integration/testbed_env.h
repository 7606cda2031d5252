/*
 * testbed_env.h - how integration tests find the real test bed.
 *
 * `tests/testbed/testbed up` writes KEY=VALUE lines to
 * $M3B_TESTBED_DIR/env (default: the source tree's .testbed, which ctest
 * passes as M3B_TESTBED_DIR_DEFAULT). tb_require() returns a
 * value from that file (the process environment overrides it) and fails the
 * test with a message saying how to start the test bed when it is missing:
 * integration tests never skip.
 */
#ifndef M3B_TESTBED_ENV_H
#define M3B_TESTBED_ENV_H

#include <stddef.h>

#include <m3b/kube.h>
#include <m3b/log.h>

/* Returns the value of key (borrowed, valid until exit) or fails the test. */
const char *tb_require(const char *key);

/* Reads a whole small file (a password, a token) into a static-lifetime
 * string with the trailing newline removed, or fails the test. */
const char *tb_read_file(const char *path);

/* Fails the current test unless a TCP connect to host:port succeeds within
 * timeout_ms; what names the component for the message ("Kafka broker"). */
void tb_require_reachable(const char *what, const char *host_port,
                          int timeout_ms);

/* A kube client from the kubeconfig the test bed names in kubeconfig_var
 * (M3B_TB_KUBE_ADMIN_KUBECONFIG, M3B_TB_KUBE_LISTENER_KUBECONFIG), or
 * fails the test. log may be NULL. */
m3b_kube_t *tb_kube_client(const char *kubeconfig_var, m3b_log_t *log);

#endif
