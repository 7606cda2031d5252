/*
 * kube_internal.h - what the kube*.c files share: the client struct, the
 * request helper and the discovery cache. Not part of the public API.
 */
#ifndef M3B_KUBE_INTERNAL_H
#define M3B_KUBE_INTERNAL_H

#include <pthread.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include <m3b/buf.h>
#include <m3b/kube.h>

#define KUBE_MODULE "kube"

/* A discovered group-version: its APIResource array (owned). */
struct kube_gv {
  char *group_version;
  json_t *resources;
  struct kube_gv *next;
};

struct m3b_kube {
  m3b_log_t *log;
  struct m3b_kube_config cfg; /* deep copy; the token lives in token_* */

  CURLSH *share;
  pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

  pthread_mutex_t token_lock;
  char *token;                 /* secret; current bearer token or NULL */
  struct timespec token_mtime; /* of token_file when last read */
  off_t token_size;
  ino_t token_ino;
  struct timespec token_read_at; /* CLOCK_MONOTONIC of the last read */

  pthread_mutex_t discovery_lock;
  struct kube_gv *discovery;

  /* monotonic ms of the last call that could not reach the apiserver,
   * 0 none (m3b_kube_ms_since_unreachable) */
  atomic_llong unreachable_at_ms;
};

/* One HTTP exchange. path_query starts with '/'. body may be NULL.
 * When write_cb is set it gets the 2xx body instead of response. */
struct kube_request {
  const char *method;
  const char *path_query;
  const char *content_type;
  const char *body;
  size_t body_len;
  struct m3b_buf *response; /* bounded; holds the body (also of errors) */
  const char *accept;       /* Accept header value; NULL: application/json */
  long timeout_ms;          /* 0: the config's request timeout */
  char response_type[128];  /* out: the answer's Content-Type, or "" */
  /* streaming (watch) */
  curl_write_callback write_cb;
  void *write_data;
  curl_xferinfo_callback progress_cb;
  void *progress_data;
};

/* Performs req with auth and TLS from the client. Translates transport
 * failures and non-2xx statuses; fills result (may be NULL). what names the
 * operation for messages ("get apps/v1 Deployment shop/web"). */
m3b_err_t m3b__kube_perform(m3b_kube_t *kube, struct kube_request *req,
                            const char *what, struct m3b_kube_result *result);

/* Fills result for an error found outside of HTTP. */
void m3b__kube_result_set(struct m3b_kube_result *result, long http_status,
                          const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Builds the collection path ("/apis/apps/v1/namespaces/shop/deployments")
 * or, with name, the object path into out. ns may be NULL for all
 * namespaces. */
m3b_err_t m3b__kube_path(m3b_kube_t *kube, const char *api_version,
                         const char *kind, const char *ns, const char *name,
                         struct m3b_buf *out, struct m3b_kube_result *result);

/* Appends a URL-encoded copy of s. */
m3b_err_t m3b__kube_append_escaped(struct m3b_buf *out, const char *s);

/* Frees the discovery cache. */
void m3b__kube_discovery_free(m3b_kube_t *kube);

#endif
