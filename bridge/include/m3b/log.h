/*
 * log.h - structured logging: one JSON object per line on a stream
 * (stderr by default).
 *
 * A logger is an opaque handle created by the program and passed to every
 * component that logs; there is no global logger and no global level. A NULL
 * logger is valid everywhere and behaves as "stderr at level info".
 *
 * Rules for callers: never log tokens, passwords, private keys, secret data
 * or whole payloads. Log keys, ids, offsets and error names instead.
 */
#ifndef M3B_LOG_H
#define M3B_LOG_H

#include <stdio.h>

#include <m3b/err.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum m3b_log_level {
  M3B_LOG_ERROR = 0,
  M3B_LOG_WARN = 1,
  M3B_LOG_INFO = 2,
  M3B_LOG_DEBUG = 3
} m3b_log_level_t;

typedef struct m3b_log m3b_log_t;

/* Creates a logger writing to out (borrowed; must outlive the logger).
 * Returns NULL only when memory is exhausted. */
m3b_log_t *m3b_log_new(FILE *out, m3b_log_level_t level);

/* Destroys a logger; NULL is a no-op. Does not close the stream. */
void m3b_log_destroy(m3b_log_t *log);

/* Parses "error", "warn", "info" or "debug" (case-insensitive). */
m3b_err_t m3b_log_level_parse(const char *name, m3b_log_level_t *level_out);

/* Name of a level ("info"); never NULL. */
const char *m3b_log_level_name(m3b_log_level_t level);

/* Non-zero when a message of this level would be written. */
int m3b_log_enabled(const m3b_log_t *log, m3b_log_level_t level);

/* Writes one line: {"ts":"...","level":"...","module":"...","msg":"..."}.
 * The message is JSON-escaped and truncated to 4 KiB. Thread-safe: lines
 * from several threads never interleave. Use M3B_LOG, which skips the
 * formatting when the level is disabled. */
void m3b__log_write(const m3b_log_t *log, m3b_log_level_t level,
                    const char *module, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* M3B_LOG(log, level, module, fmt, ...): each argument is evaluated at most
 * once, and the format arguments not at all when the level is disabled. */
#define M3B_LOG(log, level, module, ...)                                       \
  do {                                                                         \
    const m3b_log_t *m3b__log_ = (log);                                        \
    m3b_log_level_t m3b__lvl_ = (level);                                       \
    if (m3b_log_enabled(m3b__log_, m3b__lvl_))                                 \
      m3b__log_write(m3b__log_, m3b__lvl_, (module), __VA_ARGS__);             \
  } while (0)

#ifdef __cplusplus
}
#endif

#endif
