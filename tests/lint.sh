#!/usr/bin/env bash
# lint.sh - static checks on the project's own C code (bridge/, producer/,
# consumer/): clang-tidy with .clang-tidy (clang-analyzer-*, bugprone-*) and
# cppcheck. Needs a configured build for compile_commands.json.
# Usage: tests/lint.sh [BUILD_DIR]   (default build/ci)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build/ci}
[[ -f $build/compile_commands.json ]] || { echo "lint.sh: configure $build first (cmake --preset ci)" >&2; exit 2; }
mapfile -t files < <(git ls-files 'bridge/src/*.c' 'producer/*.c' 'consumer/*.c')
echo "clang-tidy: ${#files[@]} files"
# one run: its output is shown, its exit code counts (WarningsAsErrors)
rc=0
clang-tidy -p "$build" --quiet "${files[@]}" >"$build/clang-tidy.log" 2>&1 || rc=$?
grep -v "warnings generated" "$build/clang-tidy.log" || true
if ((rc)); then
  echo "lint: clang-tidy found problems (above)" >&2
  exit "$rc"
fi
echo "cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability \
  --inline-suppr --suppress=missingIncludeSystem \
  -I bridge/include -I "$build/bridge/include" -I bridge/src "${files[@]}"
echo "lint: clean"
