/*
 * buf.c - bounded growable buffer (<m3b/buf.h>).
 *
 * Growth doubles the capacity but never beyond max; one byte more than the
 * capacity is always allocated so the contents can be used as a C string.
 */
#include <m3b/buf.h>

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

void m3b_buf_init(struct m3b_buf *buf, size_t max) {
  assert(buf && max > 0);
  buf->data = NULL;
  buf->len = 0;
  buf->cap = 0;
  buf->max = max;
}

void m3b_buf_cleanup(struct m3b_buf *buf) {
  if (!buf)
    return;
  free(buf->data);
  buf->data = NULL;
  buf->len = 0;
  buf->cap = 0;
}

void m3b_buf_cleanup_secret(struct m3b_buf *buf) {
  if (!buf)
    return;
  if (buf->data)
    OPENSSL_cleanse(buf->data, buf->cap + 1);
  m3b_buf_cleanup(buf);
}

void m3b_buf_reset(struct m3b_buf *buf) {
  buf->len = 0;
  if (buf->data)
    buf->data[0] = 0;
}

m3b_err_t m3b_buf_reserve(struct m3b_buf *buf, size_t extra) {
  size_t need;
  size_t cap;
  uint8_t *data;

  if (extra > buf->max || buf->len > buf->max - extra)
    return M3B_ERR_LIMIT;
  need = buf->len + extra;
  if (need <= buf->cap && buf->data)
    return M3B_OK;
  cap = buf->cap ? buf->cap : 64;
  while (cap < need)
    cap = cap > buf->max / 2 ? buf->max : cap * 2;
  if (cap > buf->max)
    cap = buf->max;
  data = realloc(buf->data, cap + 1);
  if (!data)
    return M3B_ERR_NOMEM;
  buf->data = data;
  buf->cap = cap;
  buf->data[buf->len] = 0;
  return M3B_OK;
}

m3b_err_t m3b_buf_append(struct m3b_buf *buf, const void *data, size_t n) {
  m3b_err_t err = m3b_buf_reserve(buf, n);
  if (err)
    return err;
  if (n)
    memcpy(buf->data + buf->len, data, n);
  buf->len += n;
  buf->data[buf->len] = 0;
  return M3B_OK;
}

m3b_err_t m3b_buf_append_str(struct m3b_buf *buf, const char *str) {
  return m3b_buf_append(buf, str, strlen(str));
}

m3b_err_t m3b_buf_appendf(struct m3b_buf *buf, const char *fmt, ...) {
  va_list ap;
  int n;
  m3b_err_t err;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap); // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
  if (n < 0)
    return M3B_ERR_INVALID_ARG;
  err = m3b_buf_reserve(buf, (size_t)n);
  if (err)
    return err;
  va_start(ap, fmt);
  vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  buf->len += (size_t)n;
  return M3B_OK;
}

m3b_err_t m3b_buf_detach(struct m3b_buf *buf, uint8_t **data_out,
                         size_t *len_out) {
  m3b_err_t err;
  if (!buf->data) {
    err = m3b_buf_reserve(buf, 0);
    if (err)
      return err;
  }
  *data_out = buf->data;
  if (len_out)
    *len_out = buf->len;
  buf->data = NULL;
  buf->len = 0;
  buf->cap = 0;
  return M3B_OK;
}
