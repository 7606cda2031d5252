/*
 * kube.c - the Kubernetes client handle and its one HTTP path.
 *
 * Every call runs on its own CURL easy handle; the handles share one CURLSH
 * (connections, DNS, TLS sessions) guarded by a mutex per data kind, so
 * threads reuse each other's keep-alive connections without sharing a
 * handle. HTTP/2 is negotiated by ALPN where the server offers it.
 *
 * m3b__kube_perform is the single place where libcurl results and HTTP
 * statuses turn into m3b_err_t, and where the bearer token is attached. The
 * token is read from its file when the file changes (inode, size or mtime)
 * or after token_reload_ms, and once more after a 401, because projected
 * service account tokens rotate underneath a running process.
 */
#include "kube_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "errstr.h"

#define TOKEN_MAX (64u << 10)
#define CA_MAX (4u << 20)

void m3b__kube_result_set(struct m3b_kube_result *result, long http_status,
                          const char *fmt, ...) {
  va_list ap;
  if (!result)
    return;
  result->http_status = http_status;
  result->retry_after_s = -1;
  va_start(ap, fmt);
  /* clang-analyzer 14 misreports ap as uninitialized (see log.c) */
  // NOLINTNEXTLINE(clang-analyzer-valist.*)
  vsnprintf(result->errstr, sizeof(result->errstr), fmt, ap);
  va_end(ap);
}

m3b_err_t m3b_kube_err_from_status(long http_status, const char *message) {
  static const char typed_patch[] = "failed to create typed patch object";
  if (http_status >= 200 && http_status < 300)
    return M3B_OK;
  if (http_status == 500 && message &&
      strncmp(message, typed_patch, sizeof(typed_patch) - 1) == 0)
    return M3B_ERR_KUBE_INVALID;
  switch (http_status) {
  case 400:
  case 422: return M3B_ERR_KUBE_INVALID;
  case 401: return M3B_ERR_KUBE_UNAUTHORIZED;
  case 403: return M3B_ERR_KUBE_FORBIDDEN;
  case 404: return M3B_ERR_KUBE_NOT_FOUND;
  case 409: return M3B_ERR_KUBE_CONFLICT;
  case 410: return M3B_ERR_KUBE_GONE;
  case 429: return M3B_ERR_KUBE_THROTTLED;
  default: break;
  }
  if (http_status >= 500 && http_status < 600)
    return M3B_ERR_KUBE_SERVER;
  return M3B_ERR_KUBE_HTTP;
}

m3b_err_t m3b_kube_parse_retry_after(const char *value, int64_t now_s,
                                     long *seconds_out) {
  char text[128];
  size_t len, i, digits = 0, letters = 0;
  long seconds = 0;

  *seconds_out = -1;
  if (!value)
    return M3B_ERR_INVALID_ARG;
  while (*value == ' ' || *value == '\t')
    value++;
  len = strnlen(value, sizeof(text));
  if (len == sizeof(text))
    return M3B_ERR_INVALID_ARG; /* no date is that long */
  while (len && (value[len - 1] == ' ' || value[len - 1] == '\t' ||
                 value[len - 1] == '\r' || value[len - 1] == '\n'))
    len--;
  if (!len)
    return M3B_ERR_INVALID_ARG;
  memcpy(text, value, len);
  text[len] = '\0';
  for (i = 0; i < len; i++) {
    if (text[i] >= '0' && text[i] <= '9')
      digits++;
    else if ((text[i] >= 'a' && text[i] <= 'z') ||
             (text[i] >= 'A' && text[i] <= 'Z'))
      letters++;
  }
  if (digits == len) { /* delay-seconds; saturate instead of overflowing */
    for (i = 0; i < len && seconds < M3B_KUBE_RETRY_AFTER_MAX_S; i++)
      seconds = seconds * 10 + (text[i] - '0');
    *seconds_out = seconds < M3B_KUBE_RETRY_AFTER_MAX_S
                       ? seconds
                       : M3B_KUBE_RETRY_AFTER_MAX_S;
    return M3B_OK;
  }
  /* every HTTP-date form names a day and a month: a value without letters
   * ("1.5", "-3") is a malformed delay, not a date */
  if (!letters)
    return M3B_ERR_INVALID_ARG;
  {
    time_t now = (time_t)now_s;
    time_t when = curl_getdate(text, &now);
    if (when == (time_t)-1)
      return M3B_ERR_INVALID_ARG;
    if ((int64_t)when <= now_s)
      seconds = 0;
    else if ((int64_t)when - now_s >= M3B_KUBE_RETRY_AFTER_MAX_S)
      seconds = M3B_KUBE_RETRY_AFTER_MAX_S;
    else
      seconds = (long)((int64_t)when - now_s);
  }
  *seconds_out = seconds;
  return M3B_OK;
}

/* ---- shared connection cache ---- */

static void share_lock(CURL *handle, curl_lock_data data,
                       curl_lock_access access, void *userptr) {
  m3b_kube_t *kube = userptr;
  (void)handle;
  (void)access;
  if ((unsigned)data < CURL_LOCK_DATA_LAST)
    pthread_mutex_lock(&kube->share_locks[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *userptr) {
  m3b_kube_t *kube = userptr;
  (void)handle;
  if ((unsigned)data < CURL_LOCK_DATA_LAST)
    pthread_mutex_unlock(&kube->share_locks[data]);
}

/* ---- token ---- */

static void secret_free(char *s) {
  if (s)
    OPENSSL_cleanse(s, strlen(s));
  free(s);
}

static long long monotonic_ms(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static long elapsed_ms(const struct timespec *since) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (long)(now.tv_sec - since->tv_sec) * 1000 +
         (now.tv_nsec - since->tv_nsec) / 1000000;
}

/* Reads the token file when it changed, is due, or force is set. Caller
 * holds token_lock. */
static m3b_err_t token_refresh_locked(m3b_kube_t *kube, int force, char *errstr,
                                      size_t errstr_size) {
  struct stat st;
  struct m3b_buf buf;
  FILE *f;
  char chunk[1024];
  size_t n;
  uint8_t *token = NULL;
  m3b_err_t err = M3B_OK;

  if (!kube->cfg.token_file)
    return M3B_OK;
  if (stat(kube->cfg.token_file, &st) != 0) {
    m3b__errstr(errstr, errstr_size, "token file %s: %s", kube->cfg.token_file,
                strerror(errno));
    return M3B_ERR_IO;
  }
  if (!force && kube->token && st.st_ino == kube->token_ino &&
      st.st_size == kube->token_size &&
      st.st_mtim.tv_sec == kube->token_mtime.tv_sec &&
      st.st_mtim.tv_nsec == kube->token_mtime.tv_nsec &&
      elapsed_ms(&kube->token_read_at) < kube->cfg.token_reload_ms)
    return M3B_OK;

  m3b_buf_init(&buf, TOKEN_MAX);
  f = fopen(kube->cfg.token_file, "rb");
  if (!f) {
    m3b__errstr(errstr, errstr_size, "token file %s: %s", kube->cfg.token_file,
                strerror(errno));
    return M3B_ERR_IO;
  }
  while (!err && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
    err = m3b_buf_append(&buf, chunk, n);
  OPENSSL_cleanse(chunk, sizeof(chunk));
  fclose(f);
  if (err) {
    m3b__errstr(errstr, errstr_size, "token file %s is larger than %u bytes",
                kube->cfg.token_file, TOKEN_MAX);
    m3b_buf_cleanup_secret(&buf);
    return err;
  }
  while (buf.len &&
         (buf.data[buf.len - 1] == '\n' || buf.data[buf.len - 1] == '\r' ||
          buf.data[buf.len - 1] == ' '))
    buf.data[--buf.len] = 0;
  if (buf.len && memchr(buf.data, '\n', buf.len)) {
    m3b__errstr(errstr, errstr_size, "token file %s holds more than one line",
                kube->cfg.token_file);
    m3b_buf_cleanup_secret(&buf);
    return M3B_ERR_CONFIG;
  }
  err = m3b_buf_detach(&buf, &token, NULL);
  if (err) {
    m3b_buf_cleanup_secret(&buf);
    return err;
  }
  secret_free(kube->token);
  kube->token = (char *)token;
  kube->token_ino = st.st_ino;
  kube->token_size = st.st_size;
  kube->token_mtime = st.st_mtim;
  clock_gettime(CLOCK_MONOTONIC, &kube->token_read_at);
  M3B_LOG(kube->log, M3B_LOG_DEBUG, KUBE_MODULE, "read token file %s",
          kube->cfg.token_file);
  return M3B_OK;
}

/* Builds "Authorization: Bearer <token>" (secret, free with secret_free),
 * or NULL without a token. */
static m3b_err_t auth_header(m3b_kube_t *kube, int force_reload, char **out,
                             struct m3b_kube_result *result) {
  char errstr[256] = "";
  struct m3b_buf buf;
  uint8_t *header = NULL;
  m3b_err_t err;

  *out = NULL;
  pthread_mutex_lock(&kube->token_lock);
  err = token_refresh_locked(kube, force_reload, errstr, sizeof(errstr));
  if (!err && kube->token && *kube->token) {
    m3b_buf_init(&buf, TOKEN_MAX + 64);
    err = m3b_buf_appendf(&buf, "Authorization: Bearer %s", kube->token);
    if (!err)
      err = m3b_buf_detach(&buf, &header, NULL);
    m3b_buf_cleanup_secret(&buf);
    if (!err)
      *out = (char *)header;
  }
  pthread_mutex_unlock(&kube->token_lock);
  if (err)
    m3b__kube_result_set(result, 0, "%s",
                         errstr[0] ? errstr : m3b_err_str(err));
  return err;
}

/* ---- construction ---- */

static char *dup_opt(const char *s, int *failed) {
  char *d;
  if (!s)
    return NULL;
  d = strdup(s);
  if (!d)
    *failed = 1;
  return d;
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n, int *failed) {
  uint8_t *d;
  if (!p)
    return NULL;
  d = malloc(n ? n : 1);
  if (!d) {
    *failed = 1;
    return NULL;
  }
  memcpy(d, p, n);
  return d;
}

m3b_kube_t *m3b_kube_new(const struct m3b_kube_config *cfg, m3b_log_t *log,
                         char *errstr, size_t errstr_size) {
  m3b_kube_t *kube;
  int failed = 0;
  int i;
  char tokerr[256] = "";
  struct m3b_kube_config *c;

  if (!cfg || !cfg->server || !*cfg->server) {
    m3b__errstr(errstr, errstr_size, "kube: no API server configured");
    return NULL;
  }
  if (strncmp(cfg->server, "https://", 8) != 0 &&
      strncmp(cfg->server, "http://", 7) != 0) {
    m3b__errstr(errstr, errstr_size, "kube: server '%s' is not an http(s) URL",
                cfg->server);
    return NULL;
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    m3b__errstr(errstr, errstr_size, "kube: libcurl initialisation failed");
    return NULL;
  }
  kube = calloc(1, sizeof(*kube));
  if (!kube) {
    curl_global_cleanup();
    m3b__errstr(errstr, errstr_size, "out of memory");
    return NULL;
  }
  kube->log = log;
  atomic_init(&kube->unreachable_at_ms, 0);
  c = &kube->cfg;
  m3b_kube_config_init(c);
  c->server = dup_opt(cfg->server, &failed);
  /* a trailing slash would double up with our paths */
  if (c->server) {
    size_t n = strlen(c->server);
    while (n > 8 && c->server[n - 1] == '/')
      c->server[--n] = '\0';
  }
  c->ca_file = dup_opt(cfg->ca_file, &failed);
  c->ca_data = dup_bytes(cfg->ca_data, cfg->ca_data_len, &failed);
  c->ca_data_len = cfg->ca_data_len;
  c->insecure_skip_verify = cfg->insecure_skip_verify;
  c->token_file = dup_opt(cfg->token_file, &failed);
  c->client_cert_file = dup_opt(cfg->client_cert_file, &failed);
  c->client_key_file = dup_opt(cfg->client_key_file, &failed);
  c->client_cert_data =
      dup_bytes(cfg->client_cert_data, cfg->client_cert_data_len, &failed);
  c->client_cert_data_len = cfg->client_cert_data_len;
  c->client_key_data =
      dup_bytes(cfg->client_key_data, cfg->client_key_data_len, &failed);
  c->client_key_data_len = cfg->client_key_data_len;
  c->ns = dup_opt(cfg->ns, &failed);
  if (cfg->connect_timeout_ms > 0)
    c->connect_timeout_ms = cfg->connect_timeout_ms;
  if (cfg->request_timeout_ms > 0)
    c->request_timeout_ms = cfg->request_timeout_ms;
  if (cfg->token_reload_ms > 0)
    c->token_reload_ms = cfg->token_reload_ms;
  if (cfg->max_response_bytes > 0)
    c->max_response_bytes = cfg->max_response_bytes;
  if (cfg->max_event_bytes > 0)
    c->max_event_bytes = cfg->max_event_bytes;
  /* a token from the config is used only when there is no token file */
  if (!cfg->token_file)
    kube->token = dup_opt(cfg->token, &failed);

  pthread_mutex_init(&kube->token_lock, NULL);
  pthread_mutex_init(&kube->discovery_lock, NULL);
  for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&kube->share_locks[i], NULL);
  if (failed) {
    m3b__errstr(errstr, errstr_size, "out of memory");
    goto fail;
  }
  kube->share = curl_share_init();
  if (!kube->share) {
    m3b__errstr(errstr, errstr_size, "kube: curl_share_init failed");
    goto fail;
  }
  curl_share_setopt(kube->share, CURLSHOPT_LOCKFUNC, share_lock);
  curl_share_setopt(kube->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
  curl_share_setopt(kube->share, CURLSHOPT_USERDATA, kube);
  curl_share_setopt(kube->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
  curl_share_setopt(kube->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(kube->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

  pthread_mutex_lock(&kube->token_lock);
  {
    m3b_err_t err = token_refresh_locked(kube, 1, tokerr, sizeof(tokerr));
    pthread_mutex_unlock(&kube->token_lock);
    if (err) {
      m3b__errstr(errstr, errstr_size, "kube: %s", tokerr);
      goto fail;
    }
  }
  if (c->insecure_skip_verify)
    M3B_LOG(log, M3B_LOG_WARN, KUBE_MODULE,
            "TLS verification of %s is off (insecure-skip-tls-verify)",
            c->server);
  M3B_LOG(log, M3B_LOG_INFO, KUBE_MODULE, "client for %s (auth: %s)", c->server,
          c->token_file                                  ? "token file"
          : kube->token                                  ? "token"
          : (c->client_cert_file || c->client_cert_data) ? "client certificate"
                                                         : "none");
  return kube;
fail:
  m3b_kube_destroy(kube);
  return NULL;
}

int64_t m3b_kube_ms_since_unreachable(m3b_kube_t *kube) {
  long long at = kube ? atomic_load(&kube->unreachable_at_ms) : 0;
  if (!at)
    return -1;
  return (int64_t)(monotonic_ms() - at);
}

void m3b_kube_destroy(m3b_kube_t *kube) {
  int i;
  if (!kube)
    return;
  if (kube->share)
    curl_share_cleanup(kube->share);
  m3b__kube_discovery_free(kube);
  secret_free(kube->token);
  m3b_kube_config_cleanup(&kube->cfg);
  pthread_mutex_destroy(&kube->token_lock);
  pthread_mutex_destroy(&kube->discovery_lock);
  for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&kube->share_locks[i]);
  free(kube);
  curl_global_cleanup();
}

/* ---- one request ---- */

static size_t collect(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct m3b_buf *body = userdata;
  if (m3b_buf_append(body, ptr, size * nmemb) != M3B_OK)
    return 0; /* over the limit: abort the transfer */
  return size * nmemb;
}

/* Keeps the value of a Retry-After response header (the last one; a
 * redirect or 100-continue may precede the final answer's headers). */
struct retry_after_header {
  char value[128];
  int seen;
};

static size_t header_line(char *ptr, size_t size, size_t nmemb,
                          void *userdata) {
  static const char name[] = "retry-after:";
  struct retry_after_header *h = userdata;
  size_t len = size * nmemb, n = sizeof(name) - 1, i;

  if (len >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
    h->seen = 0; /* a new response starts: forget the previous one's */
    return len;
  }
  if (len <= n)
    return len;
  for (i = 0; i < n; i++) {
    char c = ptr[i];
    if (c >= 'A' && c <= 'Z')
      c = (char)(c - 'A' + 'a');
    if (c != name[i])
      return len;
  }
  len -= n;
  if (len >= sizeof(h->value))
    len = sizeof(h->value) - 1;
  memcpy(h->value, ptr + n, len);
  h->value[len] = '\0';
  h->seen = 1;
  return size * nmemb;
}

/* Routes the body: a 2xx goes to the streaming callback when there is one,
 * everything else to the bounded response buffer. */
struct route {
  CURL *curl;
  struct kube_request *req;
};

static size_t route_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
  struct route *route = userdata;
  long status = 0;
  curl_easy_getinfo(route->curl, CURLINFO_RESPONSE_CODE, &status);
  if (route->req->write_cb && status >= 200 && status < 300)
    return route->req->write_cb(ptr, size, nmemb, route->req->write_data);
  return collect(ptr, size, nmemb, route->req->response);
}

static m3b_err_t err_from_curl(CURLcode rc) {
  switch (rc) {
  case CURLE_OUT_OF_MEMORY: return M3B_ERR_NOMEM;
  case CURLE_WRITE_ERROR: return M3B_ERR_LIMIT;
  case CURLE_ABORTED_BY_CALLBACK: return M3B_ERR_INTERRUPTED;
  case CURLE_UNSUPPORTED_PROTOCOL:
  case CURLE_URL_MALFORMAT: return M3B_ERR_CONFIG;
  default: return M3B_ERR_KUBE_TRANSPORT;
  }
}

static void secret_slist_free(struct curl_slist *headers) {
  struct curl_slist *h;
  for (h = headers; h; h = h->next)
    if (strncmp(h->data, "Authorization:", 14) == 0)
      OPENSSL_cleanse(h->data, strlen(h->data));
  curl_slist_free_all(headers);
}

static void set_tls(m3b_kube_t *kube, CURL *curl) {
  const struct m3b_kube_config *c = &kube->cfg;
  if (c->insecure_skip_verify) {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
  } else {
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  }
  if (c->ca_data) {
    struct curl_blob blob = {c->ca_data, c->ca_data_len, CURL_BLOB_NOCOPY};
    curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &blob);
  } else if (c->ca_file) {
    curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca_file);
  }
  if (c->client_cert_data) {
    struct curl_blob blob = {c->client_cert_data, c->client_cert_data_len,
                             CURL_BLOB_NOCOPY};
    curl_easy_setopt(curl, CURLOPT_SSLCERT_BLOB, &blob);
    curl_easy_setopt(curl, CURLOPT_SSLCERTTYPE, "PEM");
  } else if (c->client_cert_file) {
    curl_easy_setopt(curl, CURLOPT_SSLCERT, c->client_cert_file);
  }
  if (c->client_key_data) {
    struct curl_blob blob = {c->client_key_data, c->client_key_data_len,
                             CURL_BLOB_NOCOPY};
    curl_easy_setopt(curl, CURLOPT_SSLKEY_BLOB, &blob);
    curl_easy_setopt(curl, CURLOPT_SSLKEYTYPE, "PEM");
  } else if (c->client_key_file) {
    curl_easy_setopt(curl, CURLOPT_SSLKEY, c->client_key_file);
  }
}

/* Takes the Status message from an error body, without copying anything
 * else (the body of a failed apply may echo parts of the object). */
static void status_message(const struct m3b_buf *body, char *out,
                           size_t out_size) {
  json_t *status;
  const char *msg;
  out[0] = '\0';
  if (!body->len)
    return;
  status = json_loadb((const char *)body->data, body->len, 0, NULL);
  msg = json_string_value(json_object_get(status, "message"));
  if (msg)
    snprintf(out, out_size, "%s", msg);
  json_decref(status);
}

static m3b_err_t perform_once(m3b_kube_t *kube, struct kube_request *req,
                              const char *auth, long *status_out,
                              long *retry_after_out, char *curl_errbuf) {
  struct retry_after_header retry_after;
  struct m3b_buf url;
  struct curl_slist *headers = NULL;
  struct route route;
  CURLcode rc;
  CURL *curl;
  m3b_err_t err;
  char ctype[128];
  char accept[160];

  *status_out = 0;
  *retry_after_out = -1;
  curl = curl_easy_init();
  if (!curl)
    return M3B_ERR_NOMEM;
  m3b_buf_init(&url, 16384);
  err = m3b_buf_appendf(&url, "%s%s", kube->cfg.server, req->path_query);
  if (err)
    goto out;
  snprintf(accept, sizeof(accept), "Accept: %s",
           req->accept ? req->accept : "application/json");
  headers = curl_slist_append(headers, accept);
  if (req->content_type) {
    snprintf(ctype, sizeof(ctype), "Content-Type: %s", req->content_type);
    headers = curl_slist_append(headers, ctype);
  }
  if (auth)
    headers = curl_slist_append(headers, auth);
  if (!headers) {
    err = M3B_ERR_NOMEM;
    goto out;
  }
  route.curl = curl;
  route.req = req;
  curl_easy_setopt(curl, CURLOPT_SHARE, kube->share);
  curl_easy_setopt(curl, CURLOPT_URL, (const char *)url.data);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req->method);
  if (strcmp(req->method, "GET") == 0)
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https,http");
#endif
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   kube->cfg.connect_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                   req->timeout_ms > 0 ? req->timeout_ms
                                       : kube->cfg.request_timeout_ms);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_errbuf);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, route_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &route);
  memset(&retry_after, 0, sizeof(retry_after));
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, header_line);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &retry_after);
  if (req->progress_cb) {
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, req->progress_cb);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, req->progress_data);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  }
  if (req->body) {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, req->body);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                     (curl_off_t)req->body_len);
  }
  set_tls(kube, curl);

  curl_errbuf[0] = '\0';
  rc = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, status_out);
  {
    const char *type = NULL;
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    snprintf(req->response_type, sizeof(req->response_type), "%s",
             type ? type : "");
  }
  /* the hint counts only where a retry is due: throttling and 5xx */
  if (retry_after.seen && (*status_out == 429 || *status_out >= 500) &&
      m3b_kube_parse_retry_after(retry_after.value, (int64_t)time(NULL),
                                 retry_after_out) != M3B_OK) {
    *retry_after_out = -1;
    M3B_LOG(kube->log, M3B_LOG_DEBUG, KUBE_MODULE,
            "HTTP %ld: ignoring a malformed Retry-After", *status_out);
  }
  if (rc != CURLE_OK) {
    err = err_from_curl(rc);
    /* a timeout mid-stream of a watch ends the watch, nothing more */
    if (rc == CURLE_OPERATION_TIMEDOUT && req->write_cb && *status_out == 200)
      err = M3B_OK;
    if (!curl_errbuf[0])
      snprintf(curl_errbuf, CURL_ERROR_SIZE, "%s", curl_easy_strerror(rc));
  }
out:
  secret_slist_free(headers);
  curl_easy_cleanup(curl);
  m3b_buf_cleanup(&url);
  return err;
}

m3b_err_t m3b__kube_perform(m3b_kube_t *kube, struct kube_request *req,
                            const char *what, struct m3b_kube_result *result) {
  char curl_errbuf[CURL_ERROR_SIZE];
  char message[400];
  char *auth = NULL;
  long status = 0, retry_after = -1;
  int attempt;
  m3b_err_t err = M3B_OK;

  assert(kube && req && req->response && what);
  if (result)
    m3b__kube_result_set(result, 0, "%s", "");
  for (attempt = 0; attempt < 2; attempt++) {
    err = auth_header(kube, attempt > 0, &auth, result);
    if (err)
      return err;
    m3b_buf_reset(req->response);
    err = perform_once(kube, req, auth, &status, &retry_after, curl_errbuf);
    secret_free(auth);
    auth = NULL;
    /* a 401 may mean the token rotated since we last read it */
    if (err || status != 401 || !kube->cfg.token_file)
      break;
    M3B_LOG(kube->log, M3B_LOG_INFO, KUBE_MODULE,
            "%s: 401, re-reading the token file", what);
  }
  if (err == M3B_ERR_LIMIT && !req->write_cb) {
    m3b__kube_result_set(result, status, "%s: response larger than %zu bytes",
                         what, req->response->max);
    return err;
  }
  if (err == M3B_ERR_KUBE_TRANSPORT) {
    long long now = monotonic_ms();
    atomic_store(&kube->unreachable_at_ms, now > 0 ? now : 1);
  }
  if (err && err != M3B_ERR_INTERRUPTED && err != M3B_ERR_LIMIT) {
    m3b__kube_result_set(result, status, "%s: %s", what, curl_errbuf);
    M3B_LOG(kube->log, M3B_LOG_DEBUG, KUBE_MODULE, "%s: %s (%s)", what,
            curl_errbuf, m3b_err_name(err));
    return err;
  }
  if (err)
    return err; /* stopped by a callback; the caller knows why */
  message[0] = '\0';
  if (status < 200 || status >= 300)
    status_message(req->response, message, sizeof(message));
  err = m3b_kube_err_from_status(status, message);
  if (result) {
    result->http_status = status;
    result->retry_after_s = retry_after;
  }
  if (err) {
    if (result)
      snprintf(result->errstr, sizeof(result->errstr), "%s: HTTP %ld: %s", what,
               status, message[0] ? message : m3b_err_str(err));
    M3B_LOG(kube->log, M3B_LOG_DEBUG, KUBE_MODULE, "%s: HTTP %ld (%s)", what,
            status, m3b_err_name(err));
  }
  return err;
}
