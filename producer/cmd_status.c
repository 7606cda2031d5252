/*
 * cmd_status.c - `m3bridge-publisher status`: what the data plane reports
 * for each object the control plane wants, read from the plane's desired
 * and status topics (read_committed, from the beginning up to the high
 * watermarks at start).
 *
 * An object is PENDING until a status for its current generation (or a
 * later one) arrives. Exit codes: 0 when nothing shown FAILED or was
 * REJECTED (and, with --wait, nothing is pending); 1 otherwise.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <m3b/cli.h>
#include <m3b/codec.h>
#include <m3b/config.h>
#include <m3b/event.h>
#include <m3b/kafka.h>
#include <m3b/log.h>
#include <m3b/schema.h>

#include "commands.h"

#define MAX_OBJECTS 1000000

struct object {
  char *key;
  int64_t want_generation; /* of the latest desired event */
  char release[128];
  int deleted_desired; /* latest desired event is a DELETE */
  int have_status;
  int64_t status_generation;
  enum m3b_phase phase;
  char reason[64];
  char message[256];
  int64_t applied_at_ms;
};

struct table {
  struct object *slots;
  size_t cap, count;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig) {
  (void)sig;
  interrupted = 1;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t hash(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  size_t i;
  for (i = 0; i < n; i++)
    h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
  return h;
}

/* Finds (or, with create, adds) the object of key[0..n). */
static struct object *lookup(struct table *t, const char *key, size_t n,
                             int create) {
  size_t i;
  if (t->count * 10 >= t->cap * 7) {
    struct table bigger = {NULL, t->cap ? t->cap * 2 : 1024, 0};
    if (!create || bigger.cap > (size_t)MAX_OBJECTS * 2)
      goto probe;
    bigger.slots = calloc(bigger.cap, sizeof(*bigger.slots));
    if (!bigger.slots)
      return NULL;
    for (i = 0; i < t->cap; i++) {
      size_t j;
      if (!t->slots[i].key)
        continue;
      j = hash(t->slots[i].key, strlen(t->slots[i].key)) & (bigger.cap - 1);
      while (bigger.slots[j].key)
        j = (j + 1) & (bigger.cap - 1);
      bigger.slots[j] = t->slots[i];
      bigger.count++;
    }
    free(t->slots);
    *t = bigger;
  }
probe:
  if (!t->cap)
    return NULL;
  for (i = hash(key, n) & (t->cap - 1);; i = (i + 1) & (t->cap - 1)) {
    struct object *o = &t->slots[i];
    if (!o->key) {
      if (!create || t->count + 1 >= t->cap)
        return NULL;
      o->key = malloc(n + 1);
      if (!o->key)
        return NULL;
      memcpy(o->key, key, n);
      o->key[n] = '\0';
      t->count++;
      return o;
    }
    if (strlen(o->key) == n && memcmp(o->key, key, n) == 0)
      return o;
  }
}

static void table_free(struct table *t) {
  size_t i;
  for (i = 0; i < t->cap; i++)
    free(t->slots[i].key);
  free(t->slots);
}

static void copy_str(char *out, size_t size, const char *s) {
  snprintf(out, size, "%s", s ? s : "");
}

static void fold_desired(struct table *t, const m3b_codec_t *codec,
                         const struct m3b_kafka_message *msg) {
  struct m3b_desired_state event;
  struct object *o;
  if (!msg->key || !msg->key_len)
    return;
  if (!msg->value) { /* tombstone: compaction may forget the key */
    o = lookup(t, msg->key, msg->key_len, 0);
    if (o)
      o->deleted_desired = 1;
    return;
  }
  m3b_desired_state_init(&event);
  if (m3b_desired_state_decode(codec, msg->value, msg->value_len, &event, NULL,
                               0) == M3B_OK &&
      (o = lookup(t, msg->key, msg->key_len, 1)) != NULL &&
      event.generation >= o->want_generation) {
    o->want_generation = event.generation;
    o->deleted_desired = event.op == M3B_OP_DELETE;
    copy_str(o->release, sizeof(o->release), event.release_id);
  }
  m3b_desired_state_cleanup(&event);
}

/* Folds a status record; returns the object it updated (NULL if none). */
static struct object *fold_status(struct table *t, const m3b_codec_t *codec,
                                  const struct m3b_kafka_message *msg) {
  struct m3b_status status;
  struct object *o = NULL;
  if (!msg->value || !msg->key || msg->key_len == 0 ||
      (msg->key_len > 10 && memcmp(msg->key, "_listener/", 10) == 0))
    return NULL;
  m3b_status_init(&status);
  if (m3b_status_decode(codec, msg->value, msg->value_len, &status, NULL, 0) ==
          M3B_OK &&
      (o = lookup(t, msg->key, msg->key_len, 1)) != NULL &&
      (!o->have_status || status.generation >= o->status_generation)) {
    o->have_status = 1;
    o->status_generation = status.generation;
    o->phase = status.phase;
    o->applied_at_ms = status.applied_at_ms;
    copy_str(o->reason, sizeof(o->reason), status.reason);
    copy_str(o->message, sizeof(o->message), status.message);
  }
  m3b_status_cleanup(&status);
  return o;
}

static int pending(const struct object *o) {
  return !o->have_status || o->status_generation < o->want_generation;
}

static int bad(const struct object *o) {
  return !pending(o) &&
         (o->phase == M3B_PHASE_FAILED || o->phase == M3B_PHASE_REJECTED);
}

static int any(const struct object *o) {
  (void)o;
  return 1;
}

static int shown(const struct object *o, const char *release) {
  return o->key && o->want_generation > 0 &&
         (!release || strcmp(o->release, release) == 0);
}

static void print_json_string(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\')
      printf("\\%c", *s);
    else if ((unsigned char)*s < 0x20)
      printf("\\u%04x", (unsigned char)*s);
    else
      putchar(*s);
  }
  putchar('"');
}

static void print_table(const struct table *t, const char *release, int json) {
  int64_t now = now_ms();
  size_t i, n = 0;
  if (!json)
    printf("%-56s %-14s %-18s %-8s %s\n", "KEY", "PHASE", "GENERATION", "AGE",
           "REASON");
  else
    printf("[");
  for (i = 0; i < t->cap; i++) {
    const struct object *o = &t->slots[i];
    const char *phase;
    char age[32] = "-";
    if (!shown(o, release))
      continue;
    phase = pending(o) ? "PENDING" : m3b_phase_name(o->phase);
    if (o->have_status && !pending(o))
      snprintf(age, sizeof(age), "%llds",
               (long long)((now - o->applied_at_ms) / 1000));
    if (json) {
      printf("%s{\"key\":", n++ ? "," : "");
      print_json_string(o->key);
      printf(",\"phase\":\"%s\",\"generation\":%lld,\"release\":", phase,
             (long long)o->want_generation);
      print_json_string(o->release);
      printf(",\"reason\":");
      print_json_string(pending(o) ? "" : o->reason);
      printf(",\"message\":");
      print_json_string(pending(o) ? "" : o->message);
      printf("}");
    } else {
      printf("%-56s %-14s %-18lld %-8s %s%s%s\n", o->key, phase,
             (long long)o->want_generation, age, pending(o) ? "" : o->reason,
             !pending(o) && o->reason[0] && o->message[0] ? ": " : "",
             pending(o) ? "" : o->message);
    }
  }
  if (json)
    printf("]\n");
}

/* Reads a topic from the beginning to its fence into the table. */
static m3b_err_t read_topic(const m3b_config_t *config, const char *group,
                            const char *topic, const m3b_codec_t *codec,
                            struct table *t, int desired, int timeout_ms,
                            m3b_log_t *log, m3b_consumer_t **keep_out,
                            char *errstr, size_t errstr_size) {
  const struct m3b_kafka_message *msg;
  m3b_consumer_t *consumer;
  int64_t deadline = now_ms() + timeout_ms;
  m3b_err_t err;

  consumer = m3b_consumer_new(config, group, log, errstr, errstr_size);
  if (!consumer)
    return M3B_ERR_CONFIG;
  err =
      m3b_consumer_assign_all(consumer, topic, timeout_ms, errstr, errstr_size);
  while (!err && !m3b_consumer_at_fence(consumer) && !interrupted) {
    if (now_ms() > deadline) {
      snprintf(errstr, errstr_size, "reading %s took longer than %d ms", topic,
               timeout_ms);
      err = M3B_ERR_TIMEOUT;
      break;
    }
    err = m3b_consumer_poll(consumer, 200, &msg, errstr, errstr_size);
    if (err == M3B_ERR_TIMEOUT) {
      err = M3B_OK;
      continue;
    }
    if (!err && desired)
      fold_desired(t, codec, msg);
    else if (!err)
      fold_status(t, codec, msg);
  }
  if (!err && keep_out)
    *keep_out = consumer;
  else
    m3b_consumer_destroy(consumer);
  return err;
}

static size_t count_where(const struct table *t, const char *release,
                          int (*pred)(const struct object *)) {
  size_t i, n = 0;
  for (i = 0; i < t->cap; i++)
    if (shown(&t->slots[i], release) && pred(&t->slots[i]))
      n++;
  return n;
}

int m3b_cmd_status(int argc, char **argv) {
  struct table table = {NULL, 0, 0};
  m3b_schema_registry_t *registry = NULL;
  m3b_codec_t *codec = NULL;
  m3b_consumer_t *status_consumer = NULL;
  m3b_config_t *config;
  m3b_log_t *log = NULL;
  const char *release = NULL;
  char errstr[1024], group[256], desired[256], status[256];
  int json = 0, follow = 0, wait = 0, rc = M3B_EXIT_FAIL, i;
  long long timeout_s = 300;
  int timeout_ms;
  m3b_err_t err;

  config = m3b_cli_config(M3B_PROGRAM_PUBLISHER, &argc, argv, errstr,
                          sizeof(errstr));
  if (!config) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    return M3B_EXIT_FAIL;
  }
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--release") == 0 && i + 1 < argc)
      release = argv[++i];
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else if (strcmp(argv[i], "--follow") == 0)
      follow = 1;
    else if (strcmp(argv[i], "--wait") == 0)
      wait = 1;
    else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
      timeout_s = strtoll(argv[++i], NULL, 10);
    else {
      fprintf(stderr,
              "m3bridge-publisher status: unexpected '%s' (see "
              "--help)\n",
              argv[i]);
      rc = M3B_EXIT_USAGE;
      goto out;
    }
  }
  if (timeout_s <= 0 || timeout_s > 86400) {
    fprintf(stderr, "m3bridge-publisher status: --timeout takes 1..86400 "
                    "seconds\n");
    rc = M3B_EXIT_USAGE;
    goto out;
  }
  if (m3b_config_validate(config, errstr, sizeof(errstr))) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    goto out;
  }
  log = m3b_cli_logger(config);
  registry = m3b_schema_registry_new_builtin(errstr, sizeof(errstr));
  codec =
      registry ? m3b_codec_new(registry, NULL, errstr, sizeof(errstr)) : NULL;
  if (!codec) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    goto out;
  }
  snprintf(group, sizeof(group), "m3bridge-publisher-%s",
           m3b_config_get(config, "plane"));
  m3b_kafka_topic_name(config, "desired", desired, sizeof(desired));
  m3b_kafka_topic_name(config, "status", status, sizeof(status));
  timeout_ms = (int)m3b_cli_int(config, "publish.timeout_ms", 30000);
  signal(SIGINT, on_signal);
  signal(SIGTERM, on_signal);

  err = read_topic(config, group, desired, codec, &table, 1, timeout_ms, log,
                   NULL, errstr, sizeof(errstr));
  if (!err)
    err = read_topic(config, group, status, codec, &table, 0, timeout_ms, log,
                     &status_consumer, errstr, sizeof(errstr));
  if (err) {
    fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
    goto out;
  }
  if (wait) {
    int64_t deadline = now_ms() + timeout_s * 1000;
    while (count_where(&table, release, pending) && now_ms() < deadline &&
           !interrupted) {
      const struct m3b_kafka_message *msg;
      err =
          m3b_consumer_poll(status_consumer, 500, &msg, errstr, sizeof(errstr));
      if (err == M3B_OK)
        fold_status(&table, codec, msg);
      else if (err != M3B_ERR_TIMEOUT) {
        fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
        goto out;
      }
    }
  }
  print_table(&table, release, json);
  if (follow) {
    while (!interrupted) {
      const struct m3b_kafka_message *msg;
      struct object *o;
      err =
          m3b_consumer_poll(status_consumer, 500, &msg, errstr, sizeof(errstr));
      if (err == M3B_ERR_TIMEOUT)
        continue;
      if (err) {
        fprintf(stderr, "m3bridge-publisher: %s\n", errstr);
        goto out;
      }
      o = fold_status(&table, codec, msg);
      if (o && (!release || strcmp(o->release, release) == 0)) {
        printf("%-56s %-14s %-18lld %s%s%s\n", o->key, m3b_phase_name(o->phase),
               (long long)o->status_generation, o->reason,
               o->reason[0] && o->message[0] ? ": " : "", o->message);
        fflush(stdout);
      }
    }
  }
  if (count_where(&table, release, any) == 0 && release)
    fprintf(stderr, "m3bridge-publisher: no object of release %s on %s\n",
            release, desired);
  if (count_where(&table, release, bad)) {
    fprintf(stderr, "m3bridge-publisher: %zu object(s) FAILED or REJECTED\n",
            count_where(&table, release, bad));
    goto out;
  }
  if (wait && count_where(&table, release, pending)) {
    fprintf(stderr,
            "m3bridge-publisher: %zu object(s) still pending after %llds\n",
            count_where(&table, release, pending), timeout_s);
    goto out;
  }
  rc = M3B_EXIT_OK;

out:
  m3b_consumer_destroy(status_consumer);
  m3b_codec_destroy(codec);
  m3b_schema_registry_destroy(registry);
  table_free(&table);
  m3b_log_destroy(log);
  m3b_config_destroy(config);
  return rc;
}
