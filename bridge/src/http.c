/*
 * http.c - the listener's HTTP endpoints of <m3b/http.h> on libmicrohttpd.
 *
 * We bind the listening socket ourselves and hand it to libmicrohttpd
 * (MHD_OPTION_LISTEN_SOCKET): MHD_start_daemon only says "failed", while
 * bind() says why (address in use, permission denied), which is what an
 * operator needs in the error. libmicrohttpd then runs one internal
 * polling thread with a small connection limit, an idle timeout and a
 * bounded per-connection memory pool; every response body is built in a
 * bounded m3b_buf and handed to libmicrohttpd, which frees it.
 *
 * Every request is answered on the first call of the access handler: no
 * endpoint reads a request body, so a body sent with a (refused) non-GET
 * request is discarded by libmicrohttpd.
 */
#include <m3b/http.h>

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <microhttpd.h>
#include <netinet/in.h>

#include "errstr.h"

#define MODULE "http"
#define TEXT_PLAIN "text/plain; charset=utf-8"
#define PROMETHEUS_TEXT "text/plain; version=0.0.4; charset=utf-8"
/* Request line and headers must fit in this per-connection pool. */
#define CONNECTION_MEMORY ((size_t)32 * 1024)
#define ADDRESS_MAX 256

struct route {
  char path[M3B_HTTP_PATH_MAX + 1];
  size_t path_len;
  int subtree; /* path ends in '/' */
  m3b_http_handler_fn handler;
  void *opaque;
};

struct m3b_http {
  struct MHD_Daemon *daemon;
  m3b_metrics_t *metrics; /* borrowed */
  m3b_http_ready_fn ready;
  void *opaque;   /* borrowed */
  m3b_log_t *log; /* borrowed */
  int port;
  pthread_mutex_t routes_lock; /* routes may be added while serving */
  struct route routes[M3B_HTTP_MAX_ROUTES];
  size_t route_count;
};

struct m3b_http_request {
  struct MHD_Connection *connection;
  const char *path;
};

static const char *const builtin_paths[] = {"/healthz", "/readyz", "/metrics"};

/* ---- requests as handlers see them --------------------------------------- */

const char *m3b_http_request_path(const m3b_http_request_t *request) {
  assert(request);
  return request->path;
}

const char *m3b_http_request_query(const m3b_http_request_t *request,
                                   const char *key) {
  assert(request && key);
  return MHD_lookup_connection_value(request->connection, MHD_GET_ARGUMENT_KIND,
                                     key);
}

/* ---- responses ----------------------------------------------------------- */

/* Queues status with body (emptied: its bytes go to libmicrohttpd). */
static enum MHD_Result respond(struct MHD_Connection *connection,
                               unsigned int status, struct m3b_buf *body,
                               const char *content_type) {
  struct MHD_Response *response;
  enum MHD_Result result;
  uint8_t *data = NULL;
  size_t len = 0;

  if (m3b_buf_detach(body, &data, &len))
    return MHD_NO; /* no memory: libmicrohttpd drops the connection */
  response =
      MHD_create_response_from_buffer_with_free_callback(len, data, free);
  if (!response) {
    free(data);
    return MHD_NO;
  }
  if (MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                              content_type) != MHD_YES ||
      MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL,
                              "no-store") != MHD_YES ||
      (status == MHD_HTTP_METHOD_NOT_ALLOWED &&
       MHD_add_response_header(response, MHD_HTTP_HEADER_ALLOW, "GET, HEAD") !=
           MHD_YES)) {
    MHD_destroy_response(response);
    return MHD_NO;
  }
  result = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return result;
}

static enum MHD_Result respond_text(struct MHD_Connection *connection,
                                    unsigned int status, const char *text) {
  struct m3b_buf body;
  enum MHD_Result result;
  m3b_buf_init(&body, M3B_HTTP_BODY_MAX);
  if (m3b_buf_append_str(&body, text)) {
    m3b_buf_cleanup(&body);
    return MHD_NO;
  }
  result = respond(connection, status, &body, TEXT_PLAIN);
  m3b_buf_cleanup(&body);
  return result;
}

/* ---- built-in endpoints -------------------------------------------------- */

static enum MHD_Result serve_readyz(m3b_http_t *http,
                                    struct MHD_Connection *connection) {
  char detail[M3B_HTTP_DETAIL_MAX] = "";
  char *newline;

  if (!http->ready || http->ready(http->opaque, detail, sizeof(detail)))
    return respond_text(connection, MHD_HTTP_OK, "ready");
  detail[sizeof(detail) - 1] = 0;
  newline = strchr(detail, '\n'); /* one line, as the contract says */
  if (newline)
    *newline = 0;
  return respond_text(connection, MHD_HTTP_SERVICE_UNAVAILABLE,
                      detail[0] ? detail : "not ready");
}

static enum MHD_Result serve_metrics(m3b_http_t *http,
                                     struct MHD_Connection *connection) {
  struct m3b_buf body;
  enum MHD_Result result;
  m3b_err_t err;

  m3b_buf_init(&body, M3B_HTTP_BODY_MAX);
  err = m3b_metrics_render(http->metrics, &body);
  if (err) {
    M3B_LOG(http->log, M3B_LOG_ERROR, MODULE, "cannot render metrics: %s",
            m3b_err_str(err));
    m3b_buf_cleanup(&body);
    return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "cannot render metrics");
  }
  result = respond(connection, MHD_HTTP_OK, &body, PROMETHEUS_TEXT);
  m3b_buf_cleanup(&body);
  return result;
}

/* ---- added routes -------------------------------------------------------- */

/* Copies the best route for path into *route_out; 0 when none matches. */
static int route_find(m3b_http_t *http, const char *path,
                      struct route *route_out) {
  const struct route *best = NULL;
  size_t i;

  pthread_mutex_lock(&http->routes_lock);
  for (i = 0; i < http->route_count; i++) {
    const struct route *route = &http->routes[i];
    if (!route->subtree) {
      if (strcmp(route->path, path) == 0) {
        best = route;
        break;
      }
    } else if (strncmp(route->path, path, route->path_len) == 0 &&
               (!best || route->path_len > best->path_len)) {
      best = route;
    }
  }
  if (best)
    *route_out = *best;
  pthread_mutex_unlock(&http->routes_lock);
  return best != NULL;
}

static enum MHD_Result serve_route(m3b_http_t *http,
                                   struct MHD_Connection *connection,
                                   const struct route *route,
                                   const char *path) {
  struct m3b_http_request request = {connection, path};
  char content_type[M3B_HTTP_CONTENT_TYPE_MAX] = "";
  struct m3b_buf body;
  enum MHD_Result result;
  int status;

  m3b_buf_init(&body, M3B_HTTP_BODY_MAX);
  status = route->handler(route->opaque, &request, &body, content_type,
                          sizeof(content_type));
  content_type[sizeof(content_type) - 1] = 0;
  if (status < 200 || status > 599) {
    M3B_LOG(http->log, M3B_LOG_ERROR, MODULE,
            "route %s returned status %d; answering 500", route->path, status);
    m3b_buf_cleanup(&body);
    return respond_text(connection, MHD_HTTP_INTERNAL_SERVER_ERROR,
                        "internal error");
  }
  result = respond(connection, (unsigned int)status, &body,
                   content_type[0] ? content_type : TEXT_PLAIN);
  m3b_buf_cleanup(&body);
  return result;
}

m3b_err_t m3b_http_route(m3b_http_t *http, const char *path,
                         m3b_http_handler_fn handler, void *opaque) {
  struct route *route;
  m3b_err_t err = M3B_OK;
  size_t len;
  size_t i;

  assert(http);
  if (!path || path[0] != '/' || !handler)
    return M3B_ERR_INVALID_ARG;
  len = strlen(path);
  if (len > M3B_HTTP_PATH_MAX)
    return M3B_ERR_LIMIT;
  for (i = 0; i < sizeof(builtin_paths) / sizeof(builtin_paths[0]); i++)
    if (strcmp(builtin_paths[i], path) == 0)
      return M3B_ERR_INVALID_ARG;

  pthread_mutex_lock(&http->routes_lock);
  for (i = 0; i < http->route_count; i++) {
    if (strcmp(http->routes[i].path, path) == 0) {
      err = M3B_ERR_INVALID_ARG;
      goto out;
    }
  }
  if (http->route_count == M3B_HTTP_MAX_ROUTES) {
    err = M3B_ERR_LIMIT;
    goto out;
  }
  route = &http->routes[http->route_count];
  memcpy(route->path, path, len + 1);
  route->path_len = len;
  route->subtree = path[len - 1] == '/';
  route->handler = handler;
  route->opaque = opaque;
  http->route_count++;
out:
  pthread_mutex_unlock(&http->routes_lock);
  return err;
}

/* ---- dispatch ------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *connection,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
  m3b_http_t *http = cls;
  struct route route;

  (void)version;
  (void)upload_data;
  (void)upload_data_size;
  (void)con_cls;
  if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
      strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
    return respond_text(connection, MHD_HTTP_METHOD_NOT_ALLOWED,
                        "method not allowed");
  if (strcmp(url, "/healthz") == 0)
    return respond_text(connection, MHD_HTTP_OK, "ok");
  if (strcmp(url, "/readyz") == 0)
    return serve_readyz(http, connection);
  if (strcmp(url, "/metrics") == 0)
    return serve_metrics(http, connection);
  if (route_find(http, url, &route))
    return serve_route(http, connection, &route, url);
  return respond_text(connection, MHD_HTTP_NOT_FOUND, "not found");
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void
on_mhd_log(void *cls, const char *fmt, va_list ap) {
  m3b_http_t *http = cls;
  char message[512];
  char *newline;

  vsnprintf(message, sizeof(message), fmt, ap);
  newline = strchr(message, '\n');
  if (newline)
    *newline = 0;
  M3B_LOG(http->log, M3B_LOG_WARN, MODULE, "libmicrohttpd: %s", message);
}

/* ---- start and stop ------------------------------------------------------ */

/* Splits "HOST:PORT" or "[V6]:PORT" into host (may be "": all addresses)
 * and port digits. */
static m3b_err_t address_split(const char *address, char *host,
                               size_t host_size, char *port, size_t port_size,
                               char *errstr, size_t errstr_size) {
  const char *colon;
  const char *host_start = address;
  size_t host_len;
  size_t port_len;
  size_t i;
  unsigned long value = 0;

  if (!address || strlen(address) >= ADDRESS_MAX)
    return m3b__errstr_set(M3B_ERR_INVALID_ARG, errstr, errstr_size,
                           "http address is missing or too long");
  colon = strrchr(address, ':');
  if (!colon)
    return m3b__errstr_set(M3B_ERR_INVALID_ARG, errstr, errstr_size,
                           "http address \"%s\" is not HOST:PORT", address);
  host_len = (size_t)(colon - address);
  if (address[0] == '[') {
    if (host_len < 2 || address[host_len - 1] != ']')
      return m3b__errstr_set(M3B_ERR_INVALID_ARG, errstr, errstr_size,
                             "http address \"%s\": bad [IPv6] host", address);
    host_start = address + 1;
    host_len -= 2;
  } else if (memchr(address, ':', host_len)) {
    return m3b__errstr_set(M3B_ERR_INVALID_ARG, errstr, errstr_size,
                           "http address \"%s\": write IPv6 hosts as [addr]",
                           address);
  }
  port_len = strlen(colon + 1);
  if (port_len == 0 || port_len > 5)
    goto bad_port;
  for (i = 0; i < port_len; i++) {
    char c = colon[1 + i];
    if (c < '0' || c > '9')
      goto bad_port;
    value = value * 10 + (unsigned long)(c - '0');
  }
  if (value > 65535)
    goto bad_port;
  if (host_len >= host_size || port_len >= port_size)
    return m3b__errstr_set(M3B_ERR_LIMIT, errstr, errstr_size,
                           "http address \"%s\" is too long", address);
  memcpy(host, host_start, host_len);
  host[host_len] = 0;
  memcpy(port, colon + 1, port_len + 1);
  return M3B_OK;
bad_port:
  return m3b__errstr_set(M3B_ERR_INVALID_ARG, errstr, errstr_size,
                         "http address \"%s\": port must be 0..65535", address);
}

/* A bound, listening, non-blocking socket for address; -1 on failure. */
static int listen_socket(const char *address, int *port_out, char *errstr,
                         size_t errstr_size) {
  char host[ADDRESS_MAX] = "";
  char port[8] = "";
  struct addrinfo hints;
  struct addrinfo *info = NULL;
  struct sockaddr_storage bound;
  socklen_t bound_len = sizeof(bound);
  int fd = -1;
  int one = 1;
  int flags;
  int rc;

  if (address_split(address, host, sizeof(host), port, sizeof(port), errstr,
                    errstr_size))
    return -1;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &info);
  if (rc != 0) {
    m3b__errstr(errstr, errstr_size, "http address \"%s\": %s", address,
                gai_strerror(rc));
    return -1;
  }
  fd = socket(info->ai_family, info->ai_socktype, info->ai_protocol);
  if (fd < 0) {
    m3b__errstr(errstr, errstr_size, "http address \"%s\": socket: %s", address,
                strerror(errno));
    goto fail;
  }
  flags = fcntl(fd, F_GETFL, 0);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
    m3b__errstr(errstr, errstr_size, "http address \"%s\": socket setup: %s",
                address, strerror(errno));
    goto fail;
  }
  if (bind(fd, info->ai_addr, info->ai_addrlen) < 0) {
    m3b__errstr(errstr, errstr_size, "cannot listen on %s: %s%s", address,
                strerror(errno),
                errno == EADDRINUSE ? " (another process has this port)" : "");
    goto fail;
  }
  if (listen(fd, 16) < 0 ||
      getsockname(fd, (struct sockaddr *)&bound, &bound_len) < 0) {
    m3b__errstr(errstr, errstr_size, "cannot listen on %s: %s", address,
                strerror(errno));
    goto fail;
  }
  if (bound.ss_family == AF_INET6)
    *port_out = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
  else
    *port_out = ntohs(((struct sockaddr_in *)&bound)->sin_port);
  freeaddrinfo(info);
  return fd;
fail:
  if (fd >= 0)
    close(fd);
  freeaddrinfo(info);
  return -1;
}

m3b_http_t *m3b_http_start(const char *address, m3b_metrics_t *metrics,
                           m3b_http_ready_fn ready, void *opaque,
                           m3b_log_t *log, char *errstr, size_t errstr_size) {
  m3b_http_t *http;
  int fd;

  assert(metrics);
  http = calloc(1, sizeof(*http));
  if (!http) {
    m3b__errstr(errstr, errstr_size, "out of memory");
    return NULL;
  }
  if (pthread_mutex_init(&http->routes_lock, NULL) != 0) {
    m3b__errstr(errstr, errstr_size, "cannot create a mutex");
    free(http);
    return NULL;
  }
  http->metrics = metrics;
  http->ready = ready;
  http->opaque = opaque;
  http->log = log;
  fd = listen_socket(address, &http->port, errstr, errstr_size);
  if (fd < 0)
    goto fail;
  /* From here libmicrohttpd owns fd and closes it in MHD_stop_daemon. */
  http->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
      NULL, NULL, on_request, http, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log,
      http, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned int)M3B_HTTP_MAX_CONNECTIONS,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)M3B_HTTP_TIMEOUT_SECONDS,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
      MHD_OPTION_END);
  if (!http->daemon) {
    /* Not closed: whether libmicrohttpd already closed fd on its failure
     * path is not documented, and a double close could hit another
     * thread's descriptor; leaking one descriptor on this rare path is the
     * lesser harm. */
    m3b__errstr(errstr, errstr_size,
                "cannot start the HTTP server on %s (libmicrohttpd failed)",
                address);
    goto fail;
  }
  M3B_LOG(log, M3B_LOG_INFO, MODULE,
          "serving /healthz /readyz /metrics on %s (port %d)", address,
          http->port);
  return http;
fail:
  pthread_mutex_destroy(&http->routes_lock);
  free(http);
  return NULL;
}

int m3b_http_port(const m3b_http_t *http) {
  assert(http);
  return http->port;
}

void m3b_http_stop(m3b_http_t *http) {
  if (!http)
    return;
  MHD_stop_daemon(http->daemon);
  pthread_mutex_destroy(&http->routes_lock);
  free(http);
}
