/*
 * publisher.c - the control plane's publish and delete (<m3b/publisher.h>):
 * validate and seal manifests, assign the release's generation, encode,
 * sign and produce every event of a release in one Kafka transaction.
 */
#include <m3b/publisher.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <m3b/buf.h>
#include <m3b/codec.h>
#include <m3b/kafka.h>
#include <m3b/schema.h>
#include <m3b/seal.h>
#include <m3b/seal_manifest.h>
#include <m3b/sign.h>

#define TAIL_RECORDS 64    /* latest records read per partition */
#define MAX_RELEASE 100000 /* objects in one release */
#define MAX_EVENT_BYTES ((size_t)32 << 20)

struct m3b_publisher {
  const m3b_config_t *config;
  m3b_log_t *log;
  m3b_sign_key_t *sign_key;
  int have_seal_pub;
  uint8_t seal_pub[M3B_SEAL_PUBLIC_LEN];
  m3b_schema_registry_t *registry;
  m3b_codec_t *codec;
  m3b_producer_t *producer;
  char plane[64];
  char topic[256];
  char group[256];
  long long max_manifest;
  int timeout_ms;
  struct m3b_publish_result *results;
  size_t count;
  char release_id[128];
};

/* One object of a release, ready to encode. */
struct item {
  char key[M3B_OBJKEY_MAX + 1];
  char *manifest; /* compact JSON, owned; NULL for DELETE */
  size_t manifest_len;
  int sealed; /* manifest holds sealed Secret data */
};

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

m3b_publisher_t *m3b_publisher_new(const m3b_config_t *config, m3b_log_t *log,
                                   char *errstr, size_t errstr_size) {
  m3b_publisher_t *publisher = calloc(1, sizeof(*publisher));
  char *passphrase = NULL;
  char txn_id[320], host[128];
  const char *id, *path;
  long long timeout_ms = 30000;
  m3b_err_t err;

  if (!publisher) {
    snprintf(errstr, errstr_size, "out of memory");
    return NULL;
  }
  publisher->config = config;
  publisher->log = log;
  if (m3b_config_validate(config, errstr, errstr_size))
    goto fail;
  snprintf(publisher->plane, sizeof(publisher->plane), "%s",
           m3b_config_get(config, "plane"));
  m3b_config_get_int(config, "publish.timeout_ms", &timeout_ms);
  publisher->timeout_ms = (int)timeout_ms;
  publisher->max_manifest = 1 << 20;
  m3b_config_get_int(config, "publish.max_manifest_bytes",
                     &publisher->max_manifest);
  if (m3b_kafka_topic_name(config, "desired", publisher->topic,
                           sizeof(publisher->topic))) {
    snprintf(errstr, errstr_size, "topic name too long");
    goto fail;
  }

  /* the signing key: required, possibly passphrase-protected */
  path = m3b_config_get(config, "signing.key_file");
  if (!path) {
    snprintf(errstr, errstr_size,
             "signing.key_file is not set: every event must be signed "
             "(create a key with `m3bridge-publisher keygen`)");
    goto fail;
  }
  err = m3b_config_read_secret(config, "signing.passphrase_file", &passphrase,
                               errstr, errstr_size);
  if (err && err != M3B_ERR_NOT_FOUND)
    goto fail;
  {
    char detail[512];
    err = m3b_sign_key_load(path, passphrase, &publisher->sign_key, detail,
                            sizeof(detail));
    if (err)
      snprintf(errstr, errstr_size, "signing.key_file %s: %s", path, detail);
  }
  if (passphrase) {
    OPENSSL_cleanse(passphrase, strlen(passphrase));
    free(passphrase);
  }
  if (err)
    goto fail;

  path = m3b_config_get(config, "sealing.listener_key_file");
  if (path) {
    if (m3b_seal_public_load(path, publisher->seal_pub, errstr, errstr_size))
      goto fail;
    publisher->have_seal_pub = 1;
  }

  publisher->registry = m3b_schema_registry_new_builtin(errstr, errstr_size);
  if (!publisher->registry)
    goto fail;
  publisher->codec =
      m3b_codec_new(publisher->registry, NULL, errstr, errstr_size);
  if (!publisher->codec)
    goto fail;

  id = m3b_config_get(config, "publisher.id");
  if (!id) {
    if (gethostname(host, sizeof(host)) != 0)
      snprintf(host, sizeof(host), "default");
    host[sizeof(host) - 1] = '\0';
    id = host;
  }
  snprintf(txn_id, sizeof(txn_id), "m3bridge-publisher-%s-%s", publisher->plane,
           id);
  snprintf(publisher->group, sizeof(publisher->group), "m3bridge-publisher-%s",
           publisher->plane);
  publisher->producer =
      m3b_producer_new(config, txn_id, log, errstr, errstr_size);
  if (!publisher->producer)
    goto fail;
  return publisher;

fail:
  m3b_publisher_destroy(publisher);
  return NULL;
}

void m3b_publisher_destroy(m3b_publisher_t *publisher) {
  if (!publisher)
    return;
  m3b_producer_destroy(publisher->producer);
  m3b_codec_destroy(publisher->codec);
  m3b_schema_registry_destroy(publisher->registry);
  m3b_sign_key_destroy(publisher->sign_key);
  free(publisher->results);
  free(publisher);
}

const struct m3b_publish_result *
m3b_publisher_results(const m3b_publisher_t *publisher, size_t *count_out,
                      const char **release_id_out) {
  *count_out = publisher->count;
  if (release_id_out)
    *release_id_out = publisher->release_id;
  return publisher->results;
}

/* The largest generation among the latest records of the desired topic,
 * or 0 when the topic is empty. A missing topic is an error: create it
 * first (`m3bridge-publisher topics create`). */
static m3b_err_t latest_generation(m3b_publisher_t *publisher, int64_t *max_out,
                                   char *errstr, size_t errstr_size) {
  m3b_consumer_t *consumer;
  const struct m3b_kafka_message *msg;
  int64_t deadline = now_ms() + publisher->timeout_ms;
  m3b_err_t err;

  *max_out = 0;
  consumer = m3b_consumer_new(publisher->config, publisher->group,
                              publisher->log, errstr, errstr_size);
  if (!consumer)
    return M3B_ERR_CONFIG;
  err = m3b_consumer_assign_tail(consumer, publisher->topic, TAIL_RECORDS,
                                 publisher->timeout_ms, errstr, errstr_size);
  while (!err && !m3b_consumer_at_fence(consumer)) {
    if (now_ms() > deadline) {
      err = M3B_ERR_TIMEOUT;
      snprintf(errstr, errstr_size,
               "reading the latest generations of %s took longer than %d ms",
               publisher->topic, publisher->timeout_ms);
      break;
    }
    err = m3b_consumer_poll(consumer, 200, &msg, errstr, errstr_size);
    if (err == M3B_ERR_TIMEOUT) {
      err = M3B_OK;
      continue;
    }
    if (!err && msg->value) {
      struct m3b_desired_state event;
      m3b_desired_state_init(&event);
      if (m3b_desired_state_decode(publisher->codec, msg->value, msg->value_len,
                                   &event, NULL, 0) == M3B_OK &&
          event.generation > *max_out)
        *max_out = event.generation;
      m3b_desired_state_cleanup(&event);
    }
  }
  m3b_consumer_destroy(consumer);
  if (err == M3B_ERR_NOT_FOUND)
    snprintf(errstr, errstr_size,
             "topic %s does not exist: create the plane's topics first "
             "(m3bridge-publisher topics create)",
             publisher->topic);
  return err;
}

static void release_id_new(char *out, size_t size) {
  unsigned char rnd[4] = {0, 0, 0, 0};
  time_t t = time(NULL);
  struct tm tm_utc;
  char stamp[32];
  gmtime_r(&t, &tm_utc);
  strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm_utc);
  if (RAND_bytes(rnd, sizeof(rnd)) != 1)
    rnd[0] = (unsigned char)(now_us() & 0xff);
  snprintf(out, size, "rel-%s-%02x%02x%02x%02x", stamp, rnd[0], rnd[1], rnd[2],
           rnd[3]);
}

static void items_free(struct item *items, size_t count) {
  size_t i;
  for (i = 0; items && i < count; i++) {
    if (items[i].manifest) {
      /* a sealed manifest holds only ciphertext, but wipe anyway: the
       * caller's unsealed Secret may have been copied here on error */
      OPENSSL_cleanse(items[i].manifest, items[i].manifest_len);
      free(items[i].manifest);
    }
  }
  free(items);
}

/* Validates manifest i and fills item: object key, sealed Secret data,
 * canonical compact JSON within the size limit. */
static m3b_err_t prepare(m3b_publisher_t *publisher, const json_t *manifest,
                         size_t index, struct item *item, char *errstr,
                         size_t errstr_size) {
  struct m3b_objkey objkey;
  json_t *copy = NULL;
  char *text = NULL;
  char detail[512];
  m3b_err_t err;

  if (!json_is_object(manifest)) {
    snprintf(errstr, errstr_size, "manifest %zu is not a JSON object", index);
    return M3B_ERR_BAD_MANIFEST;
  }
  text = json_dumps(manifest, JSON_COMPACT | JSON_SORT_KEYS);
  if (!text)
    return M3B_ERR_NOMEM;
  err = m3b_objkey_from_manifest((const uint8_t *)text, strlen(text), &objkey,
                                 detail, sizeof(detail));
  if (!err)
    err = m3b_objkey_format(&objkey, item->key, sizeof(item->key), detail,
                            sizeof(detail));
  if (err) {
    snprintf(errstr, errstr_size, "manifest %zu: %s", index, detail);
    goto out;
  }
  if (strcmp(objkey.group, "") == 0 && strcmp(objkey.version, "v1") == 0 &&
      strcmp(objkey.kind, "Secret") == 0) {
    if (!publisher->have_seal_pub) {
      err = M3B_ERR_CONFIG;
      snprintf(errstr, errstr_size,
               "%s: a Secret needs the listener's sealing key "
               "(sealing.listener_key_file); its data never crosses Kafka "
               "in plaintext",
               item->key);
      goto out;
    }
    copy = json_deep_copy(manifest);
    if (!copy) {
      err = M3B_ERR_NOMEM;
      goto out;
    }
    err = m3b_seal_manifest(copy, publisher->seal_pub, item->key, detail,
                            sizeof(detail));
    if (err) {
      snprintf(errstr, errstr_size, "%s: %s", item->key, detail);
      goto out;
    }
    OPENSSL_cleanse(text, strlen(text));
    free(text);
    text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text) {
      err = M3B_ERR_NOMEM;
      goto out;
    }
    item->sealed = 1;
  }
  if ((long long)strlen(text) > publisher->max_manifest) {
    err = M3B_ERR_LIMIT;
    snprintf(errstr, errstr_size,
             "%s: manifest is %zu bytes, above publish.max_manifest_bytes "
             "(%lld)",
             item->key, strlen(text), publisher->max_manifest);
    goto out;
  }
  item->manifest = text;
  item->manifest_len = strlen(text);
  text = NULL;

out:
  if (copy) {
    m3b_seal_manifest_wipe(copy);
    json_decref(copy);
  }
  if (text) {
    OPENSSL_cleanse(text, strlen(text));
    free(text);
  }
  return err;
}

static int compare_item_keys(const void *a, const void *b) {
  const struct item *const *x = a;
  const struct item *const *y = b;
  return strcmp((*x)->key, (*y)->key);
}

/* Refuses a release that names one object twice: its order would be
 * ambiguous. Sorts pointers, so a release of n objects costs n log n. */
static m3b_err_t check_duplicates(struct item *items, size_t count,
                                  char *errstr, size_t errstr_size) {
  const struct item **sorted = malloc(count * sizeof(const struct item *));
  m3b_err_t err = M3B_OK;
  size_t i;

  if (!sorted)
    return M3B_ERR_NOMEM;
  for (i = 0; i < count; i++)
    sorted[i] = &items[i];
  qsort(sorted, count, sizeof(const struct item *), compare_item_keys);
  for (i = 1; i < count && !err; i++)
    if (strcmp(sorted[i - 1]->key, sorted[i]->key) == 0) {
      size_t a = (size_t)(sorted[i - 1] - items);
      size_t b = (size_t)(sorted[i] - items);
      snprintf(errstr, errstr_size,
               "%s appears twice in one release (objects %zu and %zu)",
               sorted[i]->key, a < b ? a : b, a < b ? b : a);
      err = M3B_ERR_BAD_MANIFEST;
    }
  free(sorted);
  return err;
}

static void record_delivery(size_t tag, int32_t partition, int64_t offset,
                            m3b_err_t err, void *opaque) {
  m3b_publisher_t *publisher = opaque;
  if (tag >= publisher->count)
    return; /* tombstones carry tags past the results */
  publisher->results[tag].partition = partition;
  publisher->results[tag].offset = offset;
  publisher->results[tag].err = err;
}

/* Encodes, signs and queues one event. */
static m3b_err_t send_event(m3b_publisher_t *publisher, const struct item *item,
                            enum m3b_op op, int64_t generation, size_t tag,
                            struct m3b_buf *value, char *errstr,
                            size_t errstr_size) {
  struct m3b_desired_state event;
  struct m3b_signature sig;
  struct m3b_kafka_header headers[2];
  m3b_err_t err;

  m3b_desired_state_init(&event);
  event.plane = publisher->plane;
  event.key = (char *)item->key;
  event.generation = generation;
  event.op = op;
  event.manifest = (uint8_t *)item->manifest;
  event.manifest_len = item->manifest_len;
  err = m3b_manifest_sha256(item->manifest ? item->manifest : "",
                            item->manifest_len, event.manifest_sha256);
  if (err)
    return err;
  event.release_id = publisher->release_id;
  event.issued_at_ms = now_ms();
  event.correlation_id = NULL;
  m3b_buf_reset(value);
  err = m3b_desired_state_encode(publisher->codec, &event, value, errstr,
                                 errstr_size);
  /* the struct borrowed every pointer: nothing to clean up */
  if (err)
    return err;
  err = m3b_sign(publisher->sign_key, item->key, strlen(item->key), value->data,
                 value->len, &sig);
  if (err) {
    snprintf(errstr, errstr_size, "%s: signing failed", item->key);
    return err;
  }
  headers[0].name = "m3-sig";
  headers[0].value = sig.sig;
  headers[0].size = sizeof(sig.sig);
  headers[1].name = "m3-kid";
  headers[1].value = sig.kid;
  headers[1].size = strlen(sig.kid);
  return m3b_producer_send(publisher->producer, publisher->topic, item->key,
                           strlen(item->key), value->data, value->len, headers,
                           2, tag, errstr, errstr_size);
}

/* Produces the items of one release in one transaction. */
static m3b_err_t produce_release(m3b_publisher_t *publisher,
                                 const struct item *items, size_t count,
                                 enum m3b_op op, int tombstones, char *errstr,
                                 size_t errstr_size) {
  struct m3b_buf value;
  int64_t generation = 0, latest = 0;
  m3b_err_t err;
  size_t i;

  err = latest_generation(publisher, &latest, errstr, errstr_size);
  if (err)
    return err;
  generation = now_us();
  if (generation <= latest)
    generation = latest + 1;
  for (i = 0; i < count; i++) {
    memset(&publisher->results[i], 0, sizeof(publisher->results[i]));
    snprintf(publisher->results[i].key, sizeof(publisher->results[i].key), "%s",
             items[i].key);
    publisher->results[i].generation = generation;
    publisher->results[i].partition = -1;
    publisher->results[i].offset = -1;
    publisher->results[i].err = M3B_ERR_INTERRUPTED;
  }
  publisher->count = count;

  m3b_buf_init(&value, MAX_EVENT_BYTES);
  err = m3b_producer_begin(publisher->producer, errstr, errstr_size);
  for (i = 0; !err && i < count; i++)
    err = send_event(publisher, &items[i], op, generation, i, &value, errstr,
                     errstr_size);
  for (i = 0; !err && tombstones && i < count; i++)
    err = m3b_producer_send(publisher->producer, publisher->topic, items[i].key,
                            strlen(items[i].key), NULL, 0, NULL, 0, count + i,
                            errstr, errstr_size);
  if (err)
    m3b_producer_abort(publisher->producer, publisher->timeout_ms);
  else
    err = m3b_producer_commit(publisher->producer, publisher->timeout_ms,
                              errstr, errstr_size);
  m3b_buf_cleanup(&value);
  m3b_producer_each_delivery(publisher->producer, record_delivery, publisher);
  if (err) {
    /* aborted: nothing is visible to read_committed readers */
    for (i = 0; i < count; i++) {
      publisher->results[i].partition = -1;
      publisher->results[i].offset = -1;
      if (!publisher->results[i].err)
        publisher->results[i].err = M3B_ERR_INTERRUPTED;
    }
  }
  M3B_LOG(publisher->log, err ? M3B_LOG_ERROR : M3B_LOG_INFO, "publisher",
          "release %s: %zu %s event(s) at generation %lld: %s",
          publisher->release_id, count, m3b_op_name(op), (long long)generation,
          err ? m3b_err_name(err) : "committed");
  return err;
}

static m3b_err_t begin_call(m3b_publisher_t *publisher, size_t count,
                            const char *release_id, struct item **items_out,
                            char *errstr, size_t errstr_size) {
  struct m3b_publish_result *results;
  *items_out = NULL;
  publisher->count = 0;
  if (count == 0) {
    snprintf(errstr, errstr_size, "nothing to publish");
    return M3B_ERR_INVALID_ARG;
  }
  if (count > MAX_RELEASE) {
    snprintf(errstr, errstr_size, "a release holds at most %d objects",
             MAX_RELEASE);
    return M3B_ERR_LIMIT;
  }
  results = realloc(publisher->results, count * sizeof(*results));
  *items_out = calloc(count, sizeof(**items_out));
  if (!results || !*items_out) {
    if (results)
      publisher->results = results;
    free(*items_out);
    *items_out = NULL;
    return M3B_ERR_NOMEM;
  }
  publisher->results = results;
  if (release_id)
    snprintf(publisher->release_id, sizeof(publisher->release_id), "%s",
             release_id);
  else
    release_id_new(publisher->release_id, sizeof(publisher->release_id));
  return M3B_OK;
}

m3b_err_t m3b_publisher_publish(m3b_publisher_t *publisher,
                                json_t *const *manifests, size_t count,
                                const char *release_id, char *errstr,
                                size_t errstr_size) {
  struct item *items = NULL;
  m3b_err_t err;
  size_t i;

  err = begin_call(publisher, count, release_id, &items, errstr, errstr_size);
  for (i = 0; !err && i < count; i++)
    err = prepare(publisher, manifests[i], i, &items[i], errstr, errstr_size);
  if (!err)
    err = check_duplicates(items, count, errstr, errstr_size);
  if (!err)
    err = produce_release(publisher, items, count, M3B_OP_APPLY, 0, errstr,
                          errstr_size);
  items_free(items, count);
  return err;
}

m3b_err_t m3b_publisher_delete(m3b_publisher_t *publisher,
                               const char *const *keys, size_t count,
                               const char *release_id, char *errstr,
                               size_t errstr_size) {
  struct item *items = NULL;
  struct m3b_objkey objkey;
  char detail[512];
  m3b_err_t err;
  size_t i;

  err = begin_call(publisher, count, release_id, &items, errstr, errstr_size);
  for (i = 0; !err && i < count; i++) {
    err = m3b_objkey_parse(keys[i], strlen(keys[i]), &objkey, detail,
                           sizeof(detail));
    if (err)
      snprintf(errstr, errstr_size, "'%s' is not an object key: %s", keys[i],
               detail);
    else
      snprintf(items[i].key, sizeof(items[i].key), "%s", keys[i]);
  }
  if (!err)
    err = check_duplicates(items, count, errstr, errstr_size);
  if (!err)
    err = produce_release(publisher, items, count, M3B_OP_DELETE, 1, errstr,
                          errstr_size);
  items_free(items, count);
  return err;
}
