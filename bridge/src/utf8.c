/*
 * utf8.c - strict UTF-8 validation (utf8.h), following the well-formed
 * byte sequence table of the Unicode standard (table 3-7).
 */
#include "utf8.h"

size_t m3b__utf8_valid_prefix(const uint8_t *data, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = data[i];
    size_t n;
    uint8_t lo = 0x80;
    uint8_t hi = 0xBF;
    size_t k;

    if (c < 0x80) {
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      if (c == 0xE0)
        lo = 0xA0; /* overlong */
      else if (c == 0xED)
        hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      if (c == 0xF0)
        lo = 0x90; /* overlong */
      else if (c == 0xF4)
        hi = 0x8F; /* above U+10FFFF */
    } else {
      return i;
    }
    if (len - i - 1 < n)
      return i;
    for (k = 1; k <= n; k++) {
      uint8_t cc = data[i + k];
      if (k == 1 ? (cc < lo || cc > hi) : (cc < 0x80 || cc > 0xBF))
        return i;
    }
    i += n + 1;
  }
  return len;
}
