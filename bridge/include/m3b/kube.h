/*
 * kube.h - the Kubernetes API client of libm3bridge.
 *
 * A small client for the few verbs m3bridge needs: server-side apply, get,
 * delete, list (paginated) and watch, with JSON bodies (jansson) and bounded
 * response buffers. Resource paths are resolved from (apiVersion, kind) by
 * API discovery, cached per group-version and refreshed once on a miss, so
 * CRDs installed later are found. It knows nothing of Kafka.
 *
 * Connection settings come from a kubeconfig file or from the in-cluster
 * service account (struct m3b_kube_config). A bearer token read from a file
 * is re-read when the file changes, as projected tokens rotate.
 *
 * Every HTTP status and libcurl failure is translated into an m3b_err_t in
 * one place (m3b_kube_err_from_status); the apiserver's Status message and
 * the Retry-After of a 429 or 5xx reach the caller through struct
 * m3b_kube_result.
 * Request bodies never appear in messages or logs: they may hold secrets.
 *
 * Thread safety: an m3b_kube_t may be used from several threads at once;
 * connections are shared and reused across calls.
 */
#ifndef M3B_KUBE_H
#define M3B_KUBE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include <m3b/err.h>
#include <m3b/log.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Connection settings. Caller-owned (m3b_kube_config_init / _cleanup).
 * Every pointer field is owned by the struct: set it to malloc'd memory,
 * m3b_kube_config_cleanup frees it (and wipes the secret ones first).
 * m3b_kube_new copies what it needs, so the config may be cleaned up as soon
 * as the client exists. */
struct m3b_kube_config {
  char *server;                /* "https://host:port" (required) */
  char *ca_file;               /* PEM CA bundle path, or NULL */
  uint8_t *ca_data;            /* PEM CA bundle bytes, or NULL */
  size_t ca_data_len;          /* */
  int insecure_skip_verify;    /* non-zero: no TLS verification (tests only) */
  char *token;                 /* secret: bearer token, or NULL */
  char *token_file;            /* bearer token file, re-read on change */
  char *client_cert_file;      /* PEM client certificate path, or NULL */
  char *client_key_file;       /* PEM client key path, or NULL */
  uint8_t *client_cert_data;   /* PEM client certificate bytes, or NULL */
  size_t client_cert_data_len; /* */
  uint8_t *client_key_data;    /* secret: PEM client key bytes, or NULL */
  size_t client_key_data_len;  /* */
  char *ns;                    /* default namespace (context, in-cluster) */
  long connect_timeout_ms;     /* default 5000 */
  long request_timeout_ms;     /* default 30000; not for watch */
  long token_reload_ms;        /* re-read the token file at least this
                                  often even when unchanged; default 60000 */
  size_t max_response_bytes;   /* per response (list: per page); 8 MiB */
  size_t max_event_bytes;      /* per watch event line; default 4 MiB */
};

/* Empties cfg and sets the defaults above. */
void m3b_kube_config_init(struct m3b_kube_config *cfg);

/* Frees every field (wiping token and client key first) and re-inits. */
void m3b_kube_config_cleanup(struct m3b_kube_config *cfg);

/* Fills cfg from a kubeconfig file: context (NULL: current-context) →
 * cluster (server, certificate-authority[-data],
 * insecure-skip-tls-verify) and user (token, tokenFile,
 * client-certificate[-data], client-key[-data]) and the context's
 * namespace. Relative paths are taken relative to the file's folder.
 * M3B_ERR_IO when the file cannot be read, M3B_ERR_CONFIG when it is
 * malformed or incomplete, M3B_ERR_UNSUPPORTED for exec / auth-provider
 * users; errstr says why (never with secret values). On failure cfg is left
 * as m3b_kube_config_init made it. */
m3b_err_t m3b_kube_config_from_kubeconfig(struct m3b_kube_config *cfg,
                                          const char *path, const char *context,
                                          char *errstr, size_t errstr_size);

/* Fills cfg for a pod: server from KUBERNETES_SERVICE_HOST and
 * KUBERNETES_SERVICE_PORT, token file, CA and namespace from sa_dir (NULL:
 * /var/run/secrets/kubernetes.io/serviceaccount). */
m3b_err_t m3b_kube_config_in_cluster(struct m3b_kube_config *cfg,
                                     const char *sa_dir, char *errstr,
                                     size_t errstr_size);

typedef struct m3b_kube m3b_kube_t;

/* Creates a client. cfg is borrowed for the call only; log is borrowed and
 * must outlive the client (NULL: stderr at info). Returns NULL and fills
 * errstr when the config is unusable (no server, unreadable token file). */
m3b_kube_t *m3b_kube_new(const struct m3b_kube_config *cfg, m3b_log_t *log,
                         char *errstr, size_t errstr_size);

/* Destroys a client; NULL is a no-op. No call may be in progress. */
void m3b_kube_destroy(m3b_kube_t *kube);

/* What a failed call has to say beyond its m3b_err_t. Caller-owned; every
 * operation takes one (or NULL) and fills it on success and failure. */
struct m3b_kube_result {
  long http_status;   /* 0 when no HTTP response arrived */
  long retry_after_s; /* the Retry-After of a 429 or 5xx answer in seconds
                         (m3b_kube_parse_retry_after), else -1 */
  char errstr[512];   /* the apiserver's Status message or transport error;
                         "" on success */
};

/* The object an operation addresses. Borrowed strings. ns is ignored for
 * cluster-scoped kinds; NULL ns in list/watch means all namespaces; name is
 * ignored by list and watch. */
struct m3b_kube_ref {
  const char *api_version; /* "v1", "apps/v1" */
  const char *kind;        /* "ConfigMap" */
  const char *ns;          /* namespace, or NULL */
  const char *name;        /* object name */
};

/* What apply returns about the object now stored. */
struct m3b_kube_meta {
  char uid[64];
  char resource_version[64];
  int64_t generation; /* 0 for kinds without metadata.generation */
};

/* The HTTP status → m3b_err_t translation used by every call: 2xx → OK,
 * 400/422 → KUBE_INVALID, 401 → KUBE_UNAUTHORIZED, 403 → KUBE_FORBIDDEN,
 * 404 → KUBE_NOT_FOUND, 409 → KUBE_CONFLICT, 410 → KUBE_GONE,
 * 429 → KUBE_THROTTLED, 5xx → KUBE_SERVER, anything else → KUBE_HTTP.
 * message (the Status message, may be NULL) refines one case: a 500 from
 * server-side apply whose message starts "failed to create typed patch
 * object" is the client's invalid object (kubernetes/kubernetes#139253),
 * so it is KUBE_INVALID, not a retriable server error. */
m3b_err_t m3b_kube_err_from_status(long http_status, const char *message);

/* Longest wait a Retry-After may ask for (one day); more is cut to it. */
#define M3B_KUBE_RETRY_AFTER_MAX_S 86400L

/* Parses the value of a Retry-After header (RFC 9110 section 10.2.3):
 * delay-seconds ("120") or an HTTP-date ("Sun, 06 Nov 1994 08:49:37 GMT",
 * also the obsolete RFC 850 and asctime forms), surrounding blanks
 * allowed. *seconds_out gets the wait from now_s (seconds since the
 * epoch): the delay itself, or the date minus now_s, 0 for a date in the
 * past, at most M3B_KUBE_RETRY_AFTER_MAX_S. M3B_ERR_INVALID_ARG (and
 * *seconds_out -1) for NULL, an empty value, a signed or fractional
 * number, text that is not a date, or a value of 128 characters or more. */
m3b_err_t m3b_kube_parse_retry_after(const char *value, int64_t now_s,
                                     long *seconds_out);

/* Maps (apiVersion, kind) to its plural resource name and scope through
 * discovery. resource_out gets e.g. "httproutes"; *namespaced_out 1 or 0.
 * Unknown kind or group-version → M3B_ERR_KUBE_NOT_FOUND. */
m3b_err_t m3b_kube_resolve(m3b_kube_t *kube, const char *api_version,
                           const char *kind, char *resource_out,
                           size_t resource_size, int *namespaced_out,
                           struct m3b_kube_result *result);

/* Server-side apply of object (borrowed; needs apiVersion, kind,
 * metadata.name and, for namespaced kinds, metadata.namespace or the
 * config's default namespace): PATCH application/apply-patch+yaml with
 * fieldManager=field_manager and force=true. Optional outputs: the stored
 * object (new reference, json_decref it) and its meta. */
m3b_err_t m3b_kube_apply(m3b_kube_t *kube, const json_t *object,
                         const char *field_manager, json_t **object_out,
                         struct m3b_kube_meta *meta_out,
                         struct m3b_kube_result *result);

/* Asks the apiserver whether it is ready to serve (GET /readyz, which
 * the default RBAC role system:public-info-viewer lets every client read;
 * a starting apiserver may still refuse it with 403). M3B_OK for 200;
 * M3B_ERR_KUBE_SERVER when it says it is not (5xx: starting, caches not
 * synced, or stopping); M3B_ERR_KUBE_TRANSPORT when unreachable; other
 * answers as m3b_kube_err_from_status. */
m3b_err_t m3b_kube_ready(m3b_kube_t *kube, struct m3b_kube_result *result);

/* Milliseconds since a call of this client last failed to reach the
 * apiserver (M3B_ERR_KUBE_TRANSPORT, watches included), or -1 when none
 * has. A terminal answer soon after that may come from an apiserver that
 * is still starting (m3b_kube_ready). */
int64_t m3b_kube_ms_since_unreachable(m3b_kube_t *kube);

/* Reads one object; *object_out is a new reference. */
m3b_err_t m3b_kube_get(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                       json_t **object_out, struct m3b_kube_result *result);

/* Deletes one object (propagationPolicy=Background). uid and
 * resource_version (each may be NULL) become preconditions: a mismatch is
 * M3B_ERR_KUBE_CONFLICT. An absent object is M3B_ERR_KUBE_NOT_FOUND, which
 * callers may count as done. */
m3b_err_t m3b_kube_delete(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                          const char *uid, const char *resource_version,
                          struct m3b_kube_result *result);

/* Lists the objects of ref's kind (in ref->ns, or everywhere when NULL)
 * matching label_selector (NULL: all), page_limit per request (0: 500),
 * following `continue` until the end. *items_out is a new JSON array of the
 * items; resource_version_out (may be NULL) gets the list's
 * resourceVersion, the place to start a watch. An expired continue token is
 * M3B_ERR_KUBE_GONE. */
m3b_err_t m3b_kube_list(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                        const char *label_selector, unsigned page_limit,
                        json_t **items_out, char *resource_version_out,
                        size_t resource_version_size,
                        struct m3b_kube_result *result);

/* Called once per page of a list with the page's items: a JSON array whose
 * reference the callback takes over. Listed Secrets hold plaintext, so
 * m3b_seal_manifest_wipe() every item not kept before the json_decref().
 * Return M3B_OK to go on; any other value stops the list and is returned
 * by m3b_kube_list_pages. */
typedef m3b_err_t (*m3b_kube_page_cb)(json_t *items, void *opaque);

/* Flags of m3b_kube_list_pages. */
#define M3B_KUBE_LIST_METADATA                                                 \
  0x1u /* items carry apiVersion, kind and                                     \
          metadata only (PartialObjectMetadata):                               \
          no data, spec or status */

#define M3B_KUBE_LIST_COMPACT                                                  \
  0x2u /* with M3B_KUBE_LIST_METADATA: ask for                                 \
          the protobuf form first (about five times                            \
          cheaper for the apiserver to encode and                              \
          half the bytes); its items carry only                                \
          {"metadata": {name, namespace, uid,                                  \
          resourceVersion, generation, labels,                                 \
          annotations}}. A server that answers                                 \
          JSON instead gives the JSON items. */

/* m3b_kube_list without holding the whole list: cb sees one page at a time
 * (page_limit items, 0: 500), so memory stays bounded by a page however
 * many objects match. flags: 0, M3B_KUBE_LIST_METADATA, optionally with
 * M3B_KUBE_LIST_COMPACT. Same arguments,
 * errors and resourceVersion as m3b_kube_list. */
m3b_err_t m3b_kube_list_pages(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                              const char *label_selector, unsigned page_limit,
                              unsigned flags, m3b_kube_page_cb cb, void *opaque,
                              char *resource_version_out,
                              size_t resource_version_size,
                              struct m3b_kube_result *result);

/* Longest label or annotation key the protobuf reader accepts (Kubernetes
 * allows a 253-character prefix, "/" and a 63-character name). */
#define M3B_KUBE_META_KEY_MAX 320

/* One decoded PartialObjectMetadataList page. Caller-owned; filled by
 * m3b_kube_meta_list_decode, emptied by m3b_kube_meta_list_cleanup. */
struct m3b_kube_meta_list {
  json_t *items;             /* owned: array of {"metadata": {...}} as
                                M3B_KUBE_LIST_COMPACT describes */
  char resource_version[64]; /* the list's, or "" */
  char continue_token[4096]; /* the next page's token, or "": the last */
};

/* Decodes body (borrowed, len bytes): a PartialObjectMetadataList in the
 * apiserver's protobuf envelope ("k8s\0" + runtime.Unknown), reading only
 * the fields of struct m3b_kube_meta_list and skipping the rest. Every
 * length and varint is checked against the bytes left: a truncated or
 * malformed body, a string that is not UTF-8, a key longer than
 * M3B_KUBE_META_KEY_MAX, a resourceVersion or continue token that does
 * not fit, or another kind of list is M3B_ERR_KUBE_HTTP with errstr (may
 * be NULL) saying which, and list left empty. M3B_ERR_NOMEM. */
m3b_err_t m3b_kube_meta_list_decode(const uint8_t *body, size_t len,
                                    struct m3b_kube_meta_list *list,
                                    char *errstr, size_t errstr_size);

/* Frees list's items and empties it; NULL is a no-op. */
void m3b_kube_meta_list_cleanup(struct m3b_kube_meta_list *list);

typedef enum m3b_kube_event_type {
  M3B_KUBE_ADDED,
  M3B_KUBE_MODIFIED,
  M3B_KUBE_DELETED,
  M3B_KUBE_BOOKMARK,
  M3B_KUBE_ERROR /* object is a Status */
} m3b_kube_event_type_t;

/* Called once per watch event from the calling thread; object is borrowed
 * for the call. Return 0 to go on, non-zero to end the watch. */
typedef int (*m3b_kube_watch_cb)(m3b_kube_event_type_t type, json_t *object,
                                 void *opaque);

/* Watches ref's kind (in ref->ns, or everywhere) from resource_version
 * (NULL or "": from now) with label_selector (may be NULL) and bookmarks,
 * calling cb per event. Returns M3B_OK when the server ends the stream
 * after timeout_s, when *stop (may be NULL) becomes non-zero (checked about
 * every second) or when cb asks to stop. M3B_ERR_KUBE_GONE when
 * resource_version is too old (HTTP 410 or an ERROR event with code 410):
 * re-list. An event line longer than max_event_bytes is M3B_ERR_LIMIT.
 * If the call fails before the stream starts, cb never runs. */
m3b_err_t m3b_kube_watch(m3b_kube_t *kube, const struct m3b_kube_ref *ref,
                         const char *label_selector,
                         const char *resource_version, long timeout_s,
                         const atomic_int *stop, m3b_kube_watch_cb cb,
                         void *opaque, struct m3b_kube_result *result);

#ifdef __cplusplus
}
#endif

#endif
