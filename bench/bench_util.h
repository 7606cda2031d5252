/*
 * bench_util.h - timing helpers shared by the bench_*.c programs: a
 * monotonic clock, "median nanoseconds per operation over several runs"
 * with a per-run time budget, and a description of the machine. Header-only
 * (static inline, so a benchmark may use any subset of it) so every
 * benchmark stays a single .c file.
 *
 * A benchmark supplies one operation as a callback; bench_measure() first
 * calibrates the iteration count so that one run lasts about min_run_ns,
 * then times runs of that many iterations and reports the median of the
 * per-run ns/op (plus min and max, to show the spread). The load average
 * is read at start and end because other work on the machine skews every
 * number.
 */
#ifndef M3B_BENCH_UTIL_H
#define M3B_BENCH_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#define BENCH_MAX_RUNS 31

/* One operation; returns 0 on success (a failure aborts the benchmark). */
typedef int (*bench_op_fn)(void *ctx);

struct bench_result {
  double median_ns; /* median over runs of ns per operation */
  double min_ns;
  double max_ns;
  uint64_t iterations; /* per run */
  int runs;
};

static inline uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Times op: runs (<= BENCH_MAX_RUNS) runs of about min_run_ns each. */
static inline struct bench_result bench_measure(bench_op_fn op, void *ctx,
                                                int runs, uint64_t min_run_ns) {
  struct bench_result result;
  double samples[BENCH_MAX_RUNS];
  uint64_t iterations = 1;
  uint64_t start;
  uint64_t elapsed;
  uint64_t i;
  int run;

  if (runs > BENCH_MAX_RUNS)
    runs = BENCH_MAX_RUNS;
  /* calibrate (this also warms caches and OpenSSL's lazy initialisation) */
  for (;;) {
    start = bench_now_ns();
    for (i = 0; i < iterations; i++)
      if (op(ctx) != 0)
        abort();
    elapsed = bench_now_ns() - start;
    if (elapsed >= min_run_ns / 4)
      break;
    iterations *= 2;
  }
  iterations = iterations * min_run_ns / (elapsed ? elapsed : 1) + 1;
  for (run = 0; run < runs; run++) {
    start = bench_now_ns();
    for (i = 0; i < iterations; i++)
      if (op(ctx) != 0)
        abort();
    samples[run] = (double)(bench_now_ns() - start) / (double)iterations;
  }
  qsort(samples, (size_t)runs, sizeof(samples[0]), bench_cmp_double);
  result.median_ns = samples[runs / 2];
  result.min_ns = samples[0];
  result.max_ns = samples[runs - 1];
  result.iterations = iterations;
  result.runs = runs;
  return result;
}

/* Writes the 1, 5 and 15 minute load averages ("0.52 0.61 0.70") to out,
 * or "unknown"; other work on the machine skews every number. */
static inline void bench_loadavg(char *out, size_t size) {
  FILE *file = fopen("/proc/loadavg", "r");
  double one, five, fifteen;

  snprintf(out, size, "unknown");
  if (!file)
    return;
  if (fscanf(file, "%lf %lf %lf", &one, &five, &fifteen) == 3)
    snprintf(out, size, "%.2f %.2f %.2f", one, five, fifteen);
  fclose(file);
}

/* Prints kernel, CPU model and online CPU count. */
static inline void bench_print_machine(FILE *out) {
  struct utsname uts;
  char line[512];
  char model[256] = "unknown";
  FILE *cpuinfo = fopen("/proc/cpuinfo", "r");

  if (cpuinfo) {
    while (fgets(line, sizeof(line), cpuinfo)) {
      if (strncmp(line, "model name", 10) == 0) {
        const char *colon = strchr(line, ':');
        if (colon) {
          snprintf(model, sizeof(model), "%s", colon + 2);
          model[strcspn(model, "\n")] = 0;
        }
        break;
      }
    }
    fclose(cpuinfo);
  }
  if (uname(&uts) == 0)
    fprintf(out, "machine: %s %s %s\n", uts.sysname, uts.release, uts.machine);
  fprintf(out, "cpu:     %s, %ld online\n", model,
          sysconf(_SC_NPROCESSORS_ONLN));
}

#endif
