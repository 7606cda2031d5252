/*
 * log.c - JSON-lines logger behind <m3b/log.h>.
 *
 * Each line is formatted into a stack buffer of bounded size and written with
 * a single locked fwrite, so concurrent writers never interleave and a huge
 * message cannot grow memory.
 */
#include <m3b/log.h>

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define LOG_MSG_MAX 4096
#define LOG_LINE_MAX (LOG_MSG_MAX * 2 + 256)

struct m3b_log {
  FILE *out;
  m3b_log_level_t level;
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

m3b_log_t *m3b_log_new(FILE *out, m3b_log_level_t level) {
  m3b_log_t *log = calloc(1, sizeof(*log));
  if (!log)
    return NULL;
  log->out = out ? out : stderr;
  log->level = level;
  return log;
}

void m3b_log_destroy(m3b_log_t *log) {
  free(log);
}

m3b_err_t m3b_log_level_parse(const char *name, m3b_log_level_t *level_out) {
  size_t i;
  if (!name || !level_out)
    return M3B_ERR_INVALID_ARG;
  for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
    if (strcasecmp(name, level_names[i]) == 0) {
      *level_out = (m3b_log_level_t)i;
      return M3B_OK;
    }
  }
  return M3B_ERR_INVALID_ARG;
}

const char *m3b_log_level_name(m3b_log_level_t level) {
  if ((unsigned)level > (unsigned)M3B_LOG_DEBUG)
    return "unknown";
  return level_names[level];
}

int m3b_log_enabled(const m3b_log_t *log, m3b_log_level_t level) {
  m3b_log_level_t threshold = log ? log->level : M3B_LOG_INFO;
  return level <= threshold;
}

/* Appends src to dst[*pos..cap) as the inside of a JSON string. Stops
 * (without splitting an escape) when the buffer is full. */
static void json_escape_into(char *dst, size_t cap, size_t *pos,
                             const char *src) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)src;
  for (; *p; p++) {
    char esc[7];
    size_t n = 0;
    switch (*p) {
    case '"':
      esc[n++] = '\\';
      esc[n++] = '"';
      break;
    case '\\':
      esc[n++] = '\\';
      esc[n++] = '\\';
      break;
    case '\n':
      esc[n++] = '\\';
      esc[n++] = 'n';
      break;
    case '\r':
      esc[n++] = '\\';
      esc[n++] = 'r';
      break;
    case '\t':
      esc[n++] = '\\';
      esc[n++] = 't';
      break;
    default:
      if (*p < 0x20) {
        esc[n++] = '\\';
        esc[n++] = 'u';
        esc[n++] = '0';
        esc[n++] = '0';
        esc[n++] = hex[*p >> 4];
        esc[n++] = hex[*p & 0xf];
      } else {
        esc[n++] = (char)*p;
      }
    }
    if (*pos + n >= cap)
      return;
    memcpy(dst + *pos, esc, n);
    *pos += n;
  }
}

/* Appends src to dst[*pos..cap), truncating, and keeps dst terminated. */
static void append_raw(char *dst, size_t cap, size_t *pos, const char *src) {
  while (*src && *pos + 1 < cap)
    dst[(*pos)++] = *src++;
  dst[*pos] = '\0';
}

static void write_line(const m3b_log_t *log, m3b_log_level_t level,
                       const char *module, const char *msg);

void m3b__log_write(const m3b_log_t *log, m3b_log_level_t level,
                    const char *module, const char *fmt, ...) {
  char msg[LOG_MSG_MAX];
  va_list ap;
  int n;

  va_start(ap, fmt);
  /* clang-analyzer 14 misreports ap as uninitialized here (va_start is
   * right above); the suppression is for that false positive only. */
  n = vsnprintf(msg, sizeof(msg), fmt, ap); // NOLINT(clang-analyzer-valist.*)
  if (n < 0)
    msg[0] = '\0';
  va_end(ap);
  write_line(log, level, module, msg);
}

static void write_line(const m3b_log_t *log, m3b_log_level_t level,
                       const char *module, const char *msg) {
  char line[LOG_LINE_MAX];
  char ts[40];
  size_t pos = 0;
  struct timespec now;
  struct tm tm_utc;
  FILE *out = log ? log->out : stderr;

  clock_gettime(CLOCK_REALTIME, &now);
  gmtime_r(&now.tv_sec, &tm_utc);
  strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm_utc);

  append_raw(line, sizeof(line), &pos, "{\"ts\":\"");
  append_raw(line, sizeof(line), &pos, ts);
  {
    char frac[32];
    snprintf(frac, sizeof(frac), ".%03dZ", (int)(now.tv_nsec / 1000000L));
    append_raw(line, sizeof(line), &pos, frac);
  }
  append_raw(line, sizeof(line), &pos, "\",\"level\":\"");
  append_raw(line, sizeof(line), &pos, m3b_log_level_name(level));
  append_raw(line, sizeof(line), &pos, "\",\"module\":\"");
  json_escape_into(line, sizeof(line), &pos, module ? module : "");
  append_raw(line, sizeof(line), &pos, "\",\"msg\":\"");
  json_escape_into(line, sizeof(line) - 3, &pos, msg);
  append_raw(line, sizeof(line), &pos, "\"}\n");

  flockfile(out);
  fwrite(line, 1, pos, out);
  fflush(out);
  funlockfile(out);
}
