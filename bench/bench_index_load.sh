#!/usr/bin/env bash
# bench_index_load.sh - the listener's index load (issue 6: the converged
# replay), the new path against the old one side by side in one run on the
# test bed's real kube-apiserver, with the listener's service account:
#
#   serial    the load as it was: the 17 default kinds one after the other,
#             JSON PartialObjectMetadataList pages of 500
#             (m3b_index_load_kinds with M3B_INDEX_LOAD_SERIAL)
#   parallel  the load now (m3b_index_load): 4 threads, a kind each,
#             protobuf PartialObjectMetadataList pages of 500
#   list:F:P  where the time goes: one LIST of the N ConfigMaps alone
#             (m3b_kube_list_pages, metadata, format F, page size P), items
#             counted and dropped, no index
#
# Then serial and parallel again for a listener bound to 1 + EXTRA_NS
# namespaces (bench-index and EXTRA_NS empty ones, bench-index-e1...):
# 17 kinds in each namespace, mostly empty lists.
#
# Each run is a fresh process with a fresh kube client and an empty index
# (discovery and connection set-up included); the modes alternate ROUNDS
# times and their medians are compared. N ConfigMaps (~1.2 KB of data
# each, the listener's label and annotations, made by bench_kube_apply) are
# kept in namespace bench-index for the next run.
#
# Usage: bench/bench_index_load.sh [N]      (default 10000)
# Env:   ROUNDS (default 7), EXTRA_NS (default 11: like the test bed's
#        listener, bound to 12 namespaces), MODES (default "serial parallel list:json:500
#        list:proto:500 list:proto:2000"),
#        M3B_BENCH_BUILD (build/release)
# Needs: cmake --preset release && cmake --build --preset release;
#        tests/testbed/install-deps; tests/testbed/testbed up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${1:-10000}
ROUNDS=${ROUNDS:-7}
MODES=${MODES:-serial parallel list:json:500 list:proto:500 list:proto:2000}
BUILD=${M3B_BENCH_BUILD:-build/release}
LOAD=$BUILD/bench/bench_index_load
RAW=$BUILD/bench/bench_kube_apply
NS=bench-index
EXTRA_NS=${EXTRA_NS:-11}
PLANE=benchindex

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need "$LOAD" "$RAW"
bench_init bench_index_load
PY=$M3B_PYTHON

work=$(mktemp -d /tmp/m3b-bench-index.XXXXXX)
trap 'rm -rf "$work"' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the namespace, the listener's Role in it, and N managed ConfigMaps ------
all_ns=$NS
for ((i = 1; i <= EXTRA_NS; i++)); do all_ns+=",$NS-e$i"; done
# shellcheck disable=SC2086 # one word per namespace
bench_namespaces ${all_ns//,/ }
have=$("${kc[@]}" get configmaps -n "$NS" -l app.kubernetes.io/managed-by=m3bridge -o name | wc -l)
if ((have != N)); then
  say "$NS holds $have managed ConfigMaps; making it $N (not timed)"
  curl -fsS --cacert "$M3B_TB_KUBE_CA" -H "Authorization: Bearer $(cat "$M3B_TB_KUBE_ADMIN_TOKEN_FILE")" \
    -X DELETE "$M3B_TB_KUBE_SERVER/api/v1/namespaces/$NS/configmaps?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dm3bridge" >/dev/null
  while [[ -n $("${kc[@]}" get configmaps -n "$NS" -l app.kubernetes.io/managed-by=m3bridge -o name | head -1) ]]; do
    sleep 0.5
  done
  "$PY" bench/bench_listener.py objects --count "$N" --prefix cm --plane "$PLANE" \
    --namespace "$NS" --jsonl "$work/objects.jsonl"
  "$RAW" --server "$M3B_TB_KUBE_SERVER" --cacert "$M3B_TB_KUBE_CA" \
    --token-file "$M3B_TB_KUBE_LISTENER_TOKEN_FILE" --workers 4 \
    --objects "$work/objects.jsonl" --namespace "$NS" >&2
fi

# --- the runs ------------------------------------------------------------------
mode_args=()
for m in $MODES; do mode_args+=(--mode "$m"); done
say "timing $MODES, $ROUNDS rounds each, alternating"
"$LOAD" --kubeconfig "$M3B_TB_KUBE_LISTENER_KUBECONFIG" --plane "$PLANE" \
  --namespaces "$NS" --rounds "$ROUNDS" --expect "$N" "${mode_args[@]}" >"$work/out.txt"
if ((EXTRA_NS > 0)); then
  say "timing serial parallel over $((EXTRA_NS + 1)) namespaces"
  "$LOAD" --kubeconfig "$M3B_TB_KUBE_LISTENER_KUBECONFIG" --plane "$PLANE" \
    --namespaces "$all_ns" --rounds "$ROUNDS" --expect "$N" --mode serial --mode parallel >"$work/many.txt"
fi

echo "bench_index_load: $N managed ConfigMaps (~1.2 KB of data each) in one namespace, $ROUNDS rounds"
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%a %b %d %H:%M UTC %Y')"
machine
echo "load average: start $load_start, end $(cut -d' ' -f1-3 /proc/loadavg)"
grep -v '^machine:\|^cpu:\|^load' "$work/out.txt" | grep -v '^ratio' || true
awk -v n="$N" '
  $2 ~ /^[0-9]+$/ && $3 == "objects" { ms[$1] = $5 }
  END {
    if (("serial" in ms) && ("parallel" in ms)) {
      printf "index load, old (serial JSON) / new (parallel protobuf), median time: %.2f\n", ms["serial"] / ms["parallel"]
      printf "  old %.0f ms = %.0f objects/s; new %.0f ms = %.0f objects/s\n", ms["serial"], n / ms["serial"] * 1000, ms["parallel"], n / ms["parallel"] * 1000
    }
    if (("list:json:500" in ms) && ("list:proto:500" in ms))
      printf "one LIST, JSON / protobuf, pages of 500: %.2f\n", ms["list:json:500"] / ms["list:proto:500"]
  }' "$work/out.txt"
if ((EXTRA_NS > 0)); then
  echo "bound to $((EXTRA_NS + 1)) namespaces (the same $N objects, $EXTRA_NS empty namespaces more):"
  grep -v '^machine:\|^cpu:\|^load\|^ratio' "$work/many.txt" | sed 's/^/  /' || true
  awk '$2 ~ /^[0-9]+$/ && $3 == "objects" { ms[$1] = $5 }
    END { if (("serial" in ms) && ("parallel" in ms)) printf "  old / new, median time: %.2f\n", ms["serial"] / ms["parallel"] }' "$work/many.txt"
fi
echo "reproduce: cmake --preset release && cmake --build --preset release && tests/testbed/testbed up && ROUNDS=$ROUNDS EXTRA_NS=$EXTRA_NS bench/bench_index_load.sh $N"
