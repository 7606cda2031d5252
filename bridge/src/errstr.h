/*
 * errstr.h - filling the caller's (errstr, errstr_size) detail buffer.
 *
 * Constructors and codec calls take an optional buffer for a human-readable
 * detail next to the m3b_err_t they return. These helpers write into it
 * safely: NULL or zero-sized buffers are ignored, text is truncated.
 */
#ifndef M3B_ERRSTR_H
#define M3B_ERRSTR_H

#include <stddef.h>

#include <m3b/err.h>

#if defined(__GNUC__)
#define M3B__PRINTF(fmt_index, first_arg)                                      \
  __attribute__((format(printf, fmt_index, first_arg)))
#else
#define M3B__PRINTF(fmt_index, first_arg)
#endif

/* Formats into errstr (when errstr && errstr_size) and returns err, so
 * callers can write `return m3b__errstr_set(err, errstr, size, ...)`. */
m3b_err_t m3b__errstr_set(m3b_err_t err, char *errstr, size_t errstr_size,
                          const char *fmt, ...) M3B__PRINTF(4, 5);

/* Formats into errstr (when errstr && errstr_size), for callers that
 * return their error code separately. */
void m3b__errstr(char *errstr, size_t errstr_size, const char *fmt, ...)
    M3B__PRINTF(3, 4);

#endif
