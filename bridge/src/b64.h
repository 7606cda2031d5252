/*
 * b64.h - strict standard base64 (RFC 4648 section 4, alphabet A-Z a-z 0-9
 * + /, '=' padding required, no whitespace, no line breaks), internal to
 * libm3bridge.
 *
 * The decoder refuses everything that is not the canonical encoding of some
 * byte string (bad characters, missing or misplaced padding, non-zero
 * trailing bits), so one byte string has exactly one accepted text form.
 * Used by the sealed-secret text form and the Secret manifest walk.
 */
#ifndef M3B_B64_H
#define M3B_B64_H

#include <stddef.h>
#include <stdint.h>

#include <m3b/buf.h>
#include <m3b/err.h>

/* Length of the encoding of n bytes, or 0 when it would overflow size_t. */
size_t m3b__b64_encoded_len(size_t n);

/* Appends the encoding of in[0..n) to out (reserving the exact size first,
 * so a secret buffer is never reallocated half-written). */
m3b_err_t m3b__b64_encode(const uint8_t *in, size_t n, struct m3b_buf *out);

/* Appends the decoding of text[0..n) to out. M3B_ERR_DECODE when text is
 * not canonical base64; out is unchanged then. */
m3b_err_t m3b__b64_decode(const char *text, size_t n, struct m3b_buf *out);

#endif
