/*
 * cmd_run.c - `m3bridge-listener run`: the Kafka-facing loop around the
 * applier (DESIGN.md section 6). The listener_*.c files hold its parts;
 * this file starts them, polls, and stops them.
 *
 * Shutdown (SIGTERM/SIGINT): stop fetching, let in-flight records finish
 * within shutdown.grace_ms, flush the producer, commit, leave the group.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <m3b/cli.h>
#include <m3b/index.h>

#include "commands.h"
#include "listener.h"

#define MODULE "listener"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  (void)sig;
  stop_signal = 1;
}

static int all_idle(struct listener *listener) {
  int idle;
  pthread_mutex_lock(&listener->lock);
  idle = listener->counters.in_flight == 0;
  pthread_mutex_unlock(&listener->lock);
  return idle;
}

static m3b_err_t run_loop(struct listener *listener) {
  const struct m3b_kafka_message *msg;
  char errstr[512];
  int64_t next_heartbeat = 0;
  m3b_err_t err;

  err = m3b_consumer_subscribe(listener->consumer, listener->desired_topic,
                               listener_on_rebalance, listener, errstr,
                               sizeof(errstr));
  if (err) {
    M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
    return err;
  }
  M3B_LOG(listener->log, M3B_LOG_INFO, MODULE, "consuming %s",
          listener->desired_topic);
  while (!stop_signal) {
    int64_t now = listener_now_ms(CLOCK_MONOTONIC);
    err = m3b_consumer_take_error(listener->consumer, errstr, sizeof(errstr));
    if (err == M3B_ERR_KAFKA_FATAL) {
      M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
      return err;
    }
    if (err) { /* every broker down, authentication: keep running */
      listener_note_kafka_lost(listener, err, errstr);
      M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
              "Kafka unreachable: %s (%s); still running, deleting nothing",
              errstr, m3b_err_name(err));
    }
    if (listener_kafka_recovered(listener)) {
      /* the control plane may have missed statuses: tell it the state of
       * every managed object again (DESIGN.md 6.7) */
      M3B_LOG(listener->log, M3B_LOG_INFO, MODULE,
              "Kafka is reachable again: re-publishing the status of %zu "
              "managed object(s)",
              m3b_index_count(m3b_applier_index(listener->applier)));
      listener_resync_statuses(listener);
    }
    m3b_producer_poll(listener->producer, 0);
    if (listener_ensure_windows(listener))
      return M3B_ERR_NOMEM;
    listener_drain_held(listener);
    listener_update_pauses(listener);
    if (now >= next_heartbeat) {
      listener_store_idle_positions(listener);
      listener_send_heartbeat(listener, M3B_LISTENER_RUNNING);
      next_heartbeat = now + listener->heartbeat_ms;
    } else if (listener->refresh_lag) { /* only the main thread writes it */
      (void)listener_collect_lags(listener, listener_now_ms(CLOCK_REALTIME),
                                  NULL);
    }
    err = m3b_consumer_poll(listener->consumer, POLL_MS, &msg, errstr,
                            sizeof(errstr));
    if (err == M3B_ERR_TIMEOUT)
      continue;
    if (err == M3B_ERR_KAFKA_FATAL) {
      M3B_LOG(listener->log, M3B_LOG_ERROR, MODULE, "%s", errstr);
      return err;
    }
    if (err) { /* transport, authorization: keep running, delete nothing */
      if (err == M3B_ERR_KAFKA_TRANSPORT || err == M3B_ERR_KAFKA_AUTH)
        listener_note_kafka_lost(listener, err, errstr);
      M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "%s (%s); still running",
              errstr, m3b_err_name(err));
      continue;
    }
    listener_note_kafka_ok(listener);
    if (listener_ensure_windows(listener))
      return M3B_ERR_NOMEM;
    err = listener_dispatch(listener, msg);
    if (err)
      return err;
  }
  return M3B_OK;
}

/* Stops fetching, drains in-flight records within the grace period,
 * flushes the producer and commits. */
static void drain(struct listener *listener) {
  char errstr[512];
  int64_t deadline;

  pthread_mutex_lock(&listener->lock);
  listener->stopping = 1;
  listener->drain_deadline_ms =
      listener_now_ms(CLOCK_MONOTONIC) + listener->grace_ms;
  deadline = listener->drain_deadline_ms;
  pthread_cond_broadcast(&listener->wake);
  pthread_mutex_unlock(&listener->lock);
  M3B_LOG(listener->log, M3B_LOG_INFO, MODULE,
          "stopping: draining in-flight records (up to %lld ms)",
          listener->grace_ms);
  while (!all_idle(listener) && listener_now_ms(CLOCK_MONOTONIC) < deadline) {
    listener_drain_held(listener);
    m3b_producer_poll(listener->producer, 50);
  }
  /* wake sleepers once more: past the deadline they abandon */
  pthread_mutex_lock(&listener->lock);
  pthread_cond_broadcast(&listener->wake);
  pthread_mutex_unlock(&listener->lock);
  listener_send_heartbeat(listener, M3B_LISTENER_STOPPING);
  {
    int64_t left = deadline - listener_now_ms(CLOCK_MONOTONIC);
    if (m3b_producer_flush(listener->producer, left > 2000 ? (int)left : 2000))
      M3B_LOG(listener->log, M3B_LOG_WARN, MODULE,
              "some status/dlq records were not acknowledged before exit; "
              "their records are read again next time");
  }
  m3b_producer_poll(listener->producer, 0);
  listener_store_idle_positions(listener);
  if (m3b_consumer_commit(listener->consumer, errstr, sizeof(errstr)))
    M3B_LOG(listener->log, M3B_LOG_WARN, MODULE, "final commit: %s", errstr);
}

static const char usage_opts[] =
    "  --config FILE   YAML configuration (see docs/CONFIGURATION.md)\n"
    "  --set N=V       override one setting (repeatable)\n"
    "  --print-config  print the effective configuration and exit\n"
    "  --check         load keys, reach Kafka and the apiserver, exit 0/1\n";

int cmd_run(int argc, char **argv) {
  struct listener *listener = NULL;
  m3b_http_t *http = NULL;
  struct sigaction sa;
  m3b_config_t *config;
  m3b_log_t *log = NULL;
  char errstr[1024];
  int print_config = 0, check = 0, rc = M3B_EXIT_FAIL, i;
  m3b_err_t err;

  config =
      m3b_cli_config(M3B_PROGRAM_LISTENER, &argc, argv, errstr, sizeof(errstr));
  if (!config) {
    fprintf(stderr, "m3bridge-listener: %s\n", errstr);
    return M3B_EXIT_FAIL;
  }
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--print-config") == 0)
      print_config = 1;
    else if (strcmp(argv[i], "--check") == 0)
      check = 1;
    else {
      fprintf(stderr, "m3bridge-listener run: unexpected '%s'\n%s", argv[i],
              usage_opts);
      rc = M3B_EXIT_USAGE;
      goto out;
    }
  }
  if (print_config) {
    m3b_config_print(config, stdout);
    rc = M3B_EXIT_OK;
    goto out;
  }
  if (m3b_config_validate(config, errstr, sizeof(errstr))) {
    fprintf(stderr, "m3bridge-listener: %s\n", errstr);
    goto out;
  }
  log = m3b_cli_logger(config);
  listener = listener_new(config, log);
  if (listener)
    listener->stop_requested = &stop_signal;
  if (!log || !listener) {
    fprintf(stderr, "m3bridge-listener: out of memory\n");
    goto out;
  }
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  err = listener_open(listener, errstr, sizeof(errstr));
  if (err) {
    M3B_LOG(log, M3B_LOG_ERROR, MODULE, "%s (%s)", errstr, m3b_err_name(err));
    goto out;
  }
  if (!check) {
    err = listener_declare_metrics(listener);
    if (err) {
      M3B_LOG(log, M3B_LOG_ERROR, MODULE, "declaring metrics: %s",
              m3b_err_name(err));
      goto out;
    }
    /* before the index load, so /healthz answers while it runs */
    http = m3b_http_start(m3b_config_get(config, "http.address"),
                          listener->metrics, listener_ready, listener, log,
                          errstr, sizeof(errstr));
    if (!http) {
      M3B_LOG(log, M3B_LOG_ERROR, MODULE, "http.address: %s", errstr);
      goto out;
    }
    err = listener_ui_start(listener, http, errstr, sizeof(errstr));
    if (err) {
      M3B_LOG(log, M3B_LOG_ERROR, MODULE, "/ui: %s", errstr);
      goto out;
    }
    M3B_LOG(log, M3B_LOG_INFO, MODULE,
            "serving /healthz, /readyz, /metrics and /ui on %s (port %d)",
            m3b_config_get(config, "http.address"), m3b_http_port(http));
  }
  err = listener_load_index(listener);
  if (err)
    goto out;
  listener_note_kube(listener, M3B_OK);
  if (check) {
    M3B_LOG(log, M3B_LOG_INFO, MODULE, "check passed");
    rc = M3B_EXIT_OK;
    goto out;
  }
  /* status resync: the control plane learns the state of every managed
   * object, also those it has not heard of since its last restart */
  listener_resync_statuses(listener);
  err = listener_start_watcher(listener);
  if (!err)
    err = listener_start_workers(listener);
  if (err)
    goto out;
  err = run_loop(listener);
  listener_stop_watcher(listener); /* reads only: nothing to drain */
  drain(listener);
  if (!err)
    rc = M3B_EXIT_OK;
  M3B_LOG(log, M3B_LOG_INFO, MODULE, "stopped (%s)", m3b_err_name(err));

out:
  m3b_http_stop(http); /* before the listener its callbacks read */
  listener_destroy(listener);
  m3b_log_destroy(log);
  m3b_config_destroy(config);
  return rc;
}
