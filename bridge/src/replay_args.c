/*
 * replay_args.c - the argument parsers of <m3b/replay.h>: RFC 3339 times
 * (by hand, so the result never depends on the process's time zone or
 * locale) and "P:O,..." partition offsets.
 */
#include <m3b/replay.h>

#include <stdio.h>
#include <string.h>

#include "errstr.h"

/* Reads exactly n decimal digits at *p. */
static int digits(const char **p, int n, int *out) {
  int v = 0, i;
  for (i = 0; i < n; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9')
      return -1;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return 0;
}

static int expect(const char **p, char c) {
  if (**p != c)
    return -1;
  (*p)++;
  return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int y, int m, int d) {
  int64_t era, yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = y - era * 400;
  doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

m3b_err_t m3b_parse_rfc3339(const char *text, int64_t *ms_out, char *errstr,
                            size_t errstr_size) {
  const char *p = text;
  int y, mo, d, h, mi, s, ms = 0, off_h = 0, off_m = 0, sign = 0;
  int64_t total;

  if (!text || !ms_out)
    return M3B_ERR_INVALID_ARG;
  if (digits(&p, 4, &y) || expect(&p, '-') || digits(&p, 2, &mo) ||
      expect(&p, '-') || digits(&p, 2, &d) || (*p != 'T' && *p != 't'))
    goto malformed;
  p++;
  if (digits(&p, 2, &h) || expect(&p, ':') || digits(&p, 2, &mi) ||
      expect(&p, ':') || digits(&p, 2, &s))
    goto malformed;
  if (*p == '.') {
    int scale = 100, n = 0;
    p++;
    while (*p >= '0' && *p <= '9') {
      ms += scale * (*p - '0');
      scale /= 10;
      p++;
      n++;
    }
    if (n == 0)
      goto malformed;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p == '-' ? -1 : 1;
    p++;
    if (digits(&p, 2, &off_h) || expect(&p, ':') || digits(&p, 2, &off_m))
      goto malformed;
  } else {
    goto malformed;
  }
  if (*p)
    goto malformed;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
      mi > 59 || s > 60 || off_h > 23 || off_m > 59) {
    m3b__errstr(errstr, errstr_size,
                "\"%.64s\": a field is out of range (month, day, hour, "
                "minute, second or offset)",
                text);
    return M3B_ERR_INVALID_ARG;
  }
  if (s == 60)
    s = 59; /* a leap second: the last millisecond before it is as close */
  total = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 +
          (int64_t)mi * 60 + s;
  total -= (int64_t)sign * (off_h * 3600 + off_m * 60);
  *ms_out = total * 1000 + ms;
  return M3B_OK;

malformed:
  m3b__errstr(errstr, errstr_size,
              "\"%.64s\" is not an RFC 3339 time like "
              "2026-11-27T04:41:09Z or 2026-11-27T06:41:09.250+02:00",
              text);
  return M3B_ERR_INVALID_ARG;
}

/* Reads a decimal number at *p into *out (at most 18 digits). */
static int number(const char **p, int64_t *out) {
  int64_t v = 0;
  int n = 0;
  while (**p >= '0' && **p <= '9') {
    if (++n > 18)
      return -1;
    v = v * 10 + (**p - '0');
    (*p)++;
  }
  if (n == 0)
    return -1;
  *out = v;
  return 0;
}

m3b_err_t m3b_parse_partition_offsets(const char *text, int64_t *offsets,
                                      size_t max, int32_t *highest_out,
                                      char *errstr, size_t errstr_size) {
  const char *p = text;
  int32_t highest = -1;
  size_t i;

  if (!text || !offsets || max == 0)
    return M3B_ERR_INVALID_ARG;
  for (i = 0; i < max; i++)
    offsets[i] = -1;
  for (;;) {
    int64_t partition, offset;
    const char *start = p;
    if (number(&p, &partition) || expect(&p, ':')) {
      m3b__errstr(errstr, errstr_size,
                  "offsets \"%.64s\": expected PARTITION:OFFSET at \"%.32s\"",
                  text, start);
      return M3B_ERR_INVALID_ARG;
    }
    if (*p == '-' || number(&p, &offset)) {
      m3b__errstr(errstr, errstr_size,
                  "offsets \"%.64s\": partition %lld needs an offset of 0 "
                  "or more",
                  text, (long long)partition);
      return M3B_ERR_INVALID_ARG;
    }
    if ((uint64_t)partition >= max) {
      m3b__errstr(errstr, errstr_size,
                  "offsets \"%.64s\": partition %lld is beyond %zu", text,
                  (long long)partition, max - 1);
      return M3B_ERR_INVALID_ARG;
    }
    if (offsets[partition] >= 0) {
      m3b__errstr(errstr, errstr_size,
                  "offsets \"%.64s\": partition %lld named twice", text,
                  (long long)partition);
      return M3B_ERR_INVALID_ARG;
    }
    offsets[partition] = offset;
    if (partition > highest)
      highest = (int32_t)partition;
    if (*p == '\0')
      break;
    if (expect(&p, ',')) {
      m3b__errstr(errstr, errstr_size,
                  "offsets \"%.64s\": expected ',' at \"%.32s\"", text, p);
      return M3B_ERR_INVALID_ARG;
    }
  }
  if (highest_out)
    *highest_out = highest;
  return M3B_OK;
}
