/*
 * b64.c - strict base64 encoder and decoder (b64.h).
 *
 * Written here rather than taken from OpenSSL's EVP_DecodeBlock, which skips
 * whitespace and pads its output with zero bytes, so that a sealed value or a
 * Secret data value has exactly one accepted spelling.
 */
#include "b64.h"

#include <string.h>

#include <openssl/crypto.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Value of one alphabet character, or -1. */
static int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z')
    return c - 'A';
  if (c >= 'a' && c <= 'z')
    return c - 'a' + 26;
  if (c >= '0' && c <= '9')
    return c - '0' + 52;
  if (c == '+')
    return 62;
  if (c == '/')
    return 63;
  return -1;
}

size_t m3b__b64_encoded_len(size_t n) {
  size_t groups = n / 3 + (n % 3 != 0);
  if (groups > (size_t)-1 / 4)
    return 0;
  return groups * 4;
}

m3b_err_t m3b__b64_encode(const uint8_t *in, size_t n, struct m3b_buf *out) {
  size_t len = m3b__b64_encoded_len(n);
  size_t i;
  char *dst;
  m3b_err_t err;

  if (n && !len)
    return M3B_ERR_LIMIT;
  err = m3b_buf_reserve(out, len);
  if (err)
    return err;
  dst = (char *)out->data + out->len;
  for (i = 0; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    *dst++ = b64_alphabet[v >> 18 & 63];
    *dst++ = b64_alphabet[v >> 12 & 63];
    *dst++ = b64_alphabet[v >> 6 & 63];
    *dst++ = b64_alphabet[v & 63];
  }
  if (n - i == 1) {
    uint32_t v = (uint32_t)in[i] << 16;
    *dst++ = b64_alphabet[v >> 18 & 63];
    *dst++ = b64_alphabet[v >> 12 & 63];
    *dst++ = '=';
    *dst++ = '=';
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
    *dst++ = b64_alphabet[v >> 18 & 63];
    *dst++ = b64_alphabet[v >> 12 & 63];
    *dst++ = b64_alphabet[v >> 6 & 63];
    *dst++ = '=';
  }
  out->len += len;
  out->data[out->len] = 0;
  return M3B_OK;
}

m3b_err_t m3b__b64_decode(const char *text, size_t n, struct m3b_buf *out) {
  size_t pad = 0;
  size_t i;
  size_t len;
  uint8_t *dst;
  m3b_err_t err;

  if (n % 4 != 0)
    return M3B_ERR_DECODE;
  if (n >= 4 && text[n - 1] == '=') {
    pad++;
    if (text[n - 2] == '=')
      pad++;
  }
  len = n / 4 * 3 - pad;
  err = m3b_buf_reserve(out, len);
  if (err)
    return err;
  dst = out->data + out->len;
  for (i = 0; i < n; i += 4) {
    int last = i + 4 == n;
    int v0 = b64_value((unsigned char)text[i]);
    int v1 = b64_value((unsigned char)text[i + 1]);
    int v2 = (last && pad == 2) ? 0 : b64_value((unsigned char)text[i + 2]);
    int v3 = (last && pad >= 1) ? 0 : b64_value((unsigned char)text[i + 3]);
    uint32_t v;

    if (v0 < 0 || v1 < 0 || v2 < 0 || v3 < 0)
      goto bad;
    v = (uint32_t)v0 << 18 | (uint32_t)v1 << 12 | (uint32_t)v2 << 6 |
        (uint32_t)v3;
    if (last && pad == 2) {
      if (v & 0xffff) /* non-canonical trailing bits */
        goto bad;
      *dst++ = (uint8_t)(v >> 16);
    } else if (last && pad == 1) {
      if (v & 0xff)
        goto bad;
      *dst++ = (uint8_t)(v >> 16);
      *dst++ = (uint8_t)(v >> 8);
    } else {
      *dst++ = (uint8_t)(v >> 16);
      *dst++ = (uint8_t)(v >> 8);
      *dst++ = (uint8_t)v;
    }
  }
  out->len += len;
  out->data[out->len] = 0;
  return M3B_OK;

bad:
  /* the decoded prefix may be secret: wipe it and keep out unchanged */
  OPENSSL_cleanse(out->data + out->len, (size_t)(dst - (out->data + out->len)));
  out->data[out->len] = 0;
  return M3B_ERR_DECODE;
}
