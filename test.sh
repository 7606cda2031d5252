#!/usr/bin/env bash
# test.sh - runs every m3bridge test from nothing: installs dependencies,
# builds (warnings are errors), checks the format, starts the real test bed
# (Kafka, etcd, kube-apiserver), runs the whole ctest suite, runs it again
# in an ASan+UBSan build, and stops the test bed it started.
#
# Usage: ./test.sh            (CI runs exactly this through .ci/run)
# Env:   M3B_CACHE            cache of downloads and builds (~/.cache/m3bridge)
#        M3B_TEST_NO_ASAN=1   skip the sanitizer pass (local quick runs only)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

step() { printf '\n==> %s\n' "$*"; }
t0=$SECONDS

step "dependencies"
tests/testbed/install-deps

step "format check (clang-format)"
mapfile -t sources < <(git ls-files 'bridge/*.[ch]' 'producer/*.[ch]' 'consumer/*.[ch]' \
  'tests/*.[ch]' 'bench/*.[ch]')
clang-format --dry-run -Werror "${sources[@]}"

step "build (warnings are errors)"
cmake --preset ci >/dev/null
cmake --build --preset ci

step "static checks (clang-tidy, cppcheck)"
tests/lint.sh build/ci

step "test bed up"
started_testbed=0
if ! tests/testbed/testbed status >/dev/null 2>&1; then
  started_testbed=1
fi
cleanup() {
  if ((started_testbed)); then
    step "test bed down"
    tests/testbed/testbed down || true
  fi
}
trap cleanup EXIT
tests/testbed/testbed up

step "tests"
ctest --preset ci -j2

if [[ ${M3B_TEST_NO_ASAN:-0} != 1 ]]; then
  step "tests again under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake --preset asan >/dev/null
  cmake --build --preset asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --preset asan -j2
fi

step "all tests passed in $((SECONDS - t0))s"
