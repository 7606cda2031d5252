/*
 * buf.h - a growable byte buffer with a hard size limit.
 *
 * Every buffer filled from the network, Kafka or Kubernetes is an m3b_buf
 * with a maximum: appending past it fails with M3B_ERR_LIMIT and leaves the
 * buffer unchanged, so oversized input is refused instead of exhausting
 * memory. The struct is caller-owned (m3b_buf_init / m3b_buf_cleanup); its
 * fields may be read, and are written only through these functions.
 */
#ifndef M3B_BUF_H
#define M3B_BUF_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

struct m3b_buf {
  uint8_t *data; /* owned; NULL until the first append; NUL after len */
  size_t len;    /* bytes in use */
  size_t cap;    /* bytes allocated (excluding the trailing NUL) */
  size_t max;    /* hard limit on len */
};

/* Initialises an empty buffer that may grow to max bytes (max > 0). */
void m3b_buf_init(struct m3b_buf *buf, size_t max);

/* Frees the memory; the buffer is empty afterwards and may be reused. */
void m3b_buf_cleanup(struct m3b_buf *buf);

/* Like m3b_buf_cleanup, but wipes the bytes first (for secrets). */
void m3b_buf_cleanup_secret(struct m3b_buf *buf);

/* Empties the buffer, keeping its memory. */
void m3b_buf_reset(struct m3b_buf *buf);

/* Makes room for at least extra more bytes. M3B_ERR_LIMIT past max. */
m3b_err_t m3b_buf_reserve(struct m3b_buf *buf, size_t extra);

/* Appends n bytes (data may be NULL when n == 0). */
m3b_err_t m3b_buf_append(struct m3b_buf *buf, const void *data, size_t n);

/* Appends a NUL-terminated string without its NUL. */
m3b_err_t m3b_buf_append_str(struct m3b_buf *buf, const char *str);

/* Appends printf-formatted text. */
m3b_err_t m3b_buf_appendf(struct m3b_buf *buf, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Hands the bytes over: *data_out is owned by the caller (free() it) and is
 * NUL-terminated; the buffer is left empty. An empty buffer yields a
 * 1-byte allocation holding "", never NULL. */
m3b_err_t m3b_buf_detach(struct m3b_buf *buf, uint8_t **data_out,
                         size_t *len_out);

#ifdef __cplusplus
}
#endif

#endif
