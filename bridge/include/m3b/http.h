/*
 * http.h - the listener's HTTP endpoints on libmicrohttpd.
 *
 * One server per process, serving on one internal thread:
 *   GET /healthz  200 "ok" while the process runs
 *   GET /readyz   200 "ready", or 503 with the reason from the ready callback
 *   GET /metrics  the registry in the Prometheus text format (0.0.4)
 * plus routes added with m3b_http_route (the lag UI). Any other path is
 * 404; methods other than GET (and HEAD, which HTTP requires alongside GET
 * and which returns the same headers without a body) are 405.
 *
 * The server is small on purpose: a few concurrent connections, short
 * timeouts, a bounded request header area and bounded response bodies, so a
 * misbehaving scraper cannot starve the listener. Callbacks run on the HTTP
 * thread and must be thread-safe with the rest of the program.
 */
#ifndef M3B_HTTP_H
#define M3B_HTTP_H

#include <stddef.h>

#include <m3b/buf.h>
#include <m3b/err.h>
#include <m3b/log.h>
#include <m3b/metrics.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Concurrent connections, idle timeout (seconds) and the largest response
 * body a route (or /metrics) may produce. */
#define M3B_HTTP_MAX_CONNECTIONS 16
#define M3B_HTTP_TIMEOUT_SECONDS 10
#define M3B_HTTP_BODY_MAX ((size_t)16 * 1024 * 1024)
/* Routes that m3b_http_route may add, and the longest route path. */
#define M3B_HTTP_MAX_ROUTES 16
#define M3B_HTTP_PATH_MAX 128
/* Size of the detail buffer passed to the ready callback, and of the
 * content type buffer passed to route handlers. */
#define M3B_HTTP_DETAIL_MAX 256
#define M3B_HTTP_CONTENT_TYPE_MAX 128

typedef struct m3b_http m3b_http_t;

/* Returns non-zero when ready; writes a one-line reason into detail (shown
 * in the /readyz body; detail is "" on entry). Called from the HTTP thread:
 * must be thread-safe. */
typedef int (*m3b_http_ready_fn)(void *opaque, char *detail,
                                 size_t detail_size);

/* Starts serving on address "HOST:PORT" (e.g. "127.0.0.1:9464",
 * "0.0.0.0:9464", "[::1]:9464"; port 0 = pick a free one). ready may be
 * NULL (always ready). metrics, opaque and log are borrowed and must
 * outlive the server; log may be NULL. Returns NULL with a message in
 * errstr on failure (address in use, malformed address, no memory). */
m3b_http_t *m3b_http_start(const char *address, m3b_metrics_t *metrics,
                           m3b_http_ready_fn ready, void *opaque,
                           m3b_log_t *log, char *errstr, size_t errstr_size);

/* The bound port (useful with port 0). */
int m3b_http_port(const m3b_http_t *http);

/* Stops serving (waits for the HTTP thread) and frees; NULL: no-op. */
void m3b_http_stop(m3b_http_t *http);

/* ---- more routes --------------------------------------------------------- */

/* A request as route handlers see it (valid during the handler call). */
typedef struct m3b_http_request m3b_http_request_t;

/* The request path without the query string ("/ui/data"); never NULL. */
const char *m3b_http_request_path(const m3b_http_request_t *request);

/* The decoded value of query argument key ("?since=60"), or NULL when it
 * is absent. Returned-borrowed: valid during the handler call. */
const char *m3b_http_request_query(const m3b_http_request_t *request,
                                   const char *key);

/* Handles GET (and HEAD) on a route, on the HTTP thread. Appends the body
 * to body (empty on entry, bounded by M3B_HTTP_BODY_MAX), writes the
 * content type into content_type (NUL-terminated; "text/plain;
 * charset=utf-8" when left empty) and returns the HTTP status (200, 404,
 * ...). A status outside 200..599 becomes 500 and the body is discarded. */
typedef int (*m3b_http_handler_fn)(void *opaque,
                                   const m3b_http_request_t *request,
                                   struct m3b_buf *body, char *content_type,
                                   size_t content_type_size);

/* Adds a route; may be called before or while serving. path (copied)
 * starts with '/'; a path ending in '/' ("/ui/") is a subtree route that
 * also matches every path below it ("/ui/app.js"), like Go's ServeMux.
 * Exact routes win over subtree routes, longer subtrees over shorter ones.
 * handler is required; opaque is borrowed. The built-in paths cannot be
 * replaced and a path is routed once: both are M3B_ERR_INVALID_ARG.
 * M3B_ERR_LIMIT past M3B_HTTP_MAX_ROUTES or M3B_HTTP_PATH_MAX. */
m3b_err_t m3b_http_route(m3b_http_t *http, const char *path,
                         m3b_http_handler_fn handler, void *opaque);

#ifdef __cplusplus
}
#endif

#endif
