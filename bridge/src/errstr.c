/*
 * errstr.c - detail messages for the caller's errstr buffer (errstr.h).
 */
#include "errstr.h"

#include <stdarg.h>
#include <stdio.h>

m3b_err_t m3b__errstr_set(m3b_err_t err, char *errstr, size_t errstr_size,
                          const char *fmt, ...) {
  va_list ap;
  if (!errstr || !errstr_size)
    return err;
  va_start(ap, fmt);
  vsnprintf(errstr, errstr_size, fmt, ap); // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
  return err;
}

void m3b__errstr(char *errstr, size_t errstr_size, const char *fmt, ...) {
  va_list ap;
  if (!errstr || !errstr_size)
    return;
  va_start(ap, fmt);
  vsnprintf(errstr, errstr_size, fmt, ap); // NOLINT(clang-analyzer-valist.*)
  va_end(ap);
}
