/*
 * utf8.h - strict UTF-8 validation (RFC 3629): no overlong forms, no
 * surrogates, nothing above U+10FFFF. Used on every string that enters
 * the library from the wire.
 */
#ifndef M3B_UTF8_H
#define M3B_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Returns len when data[0..len) is valid UTF-8, otherwise the offset of the
 * first byte of the first invalid sequence. */
size_t m3b__utf8_valid_prefix(const uint8_t *data, size_t len);

#endif
