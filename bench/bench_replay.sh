#!/usr/bin/env bash
# bench_replay.sh - disaster recovery by replay (issue 6), with every
# baseline measured side by side in one run on the test bed's real Kafka
# broker and kube-apiserver:
#
#   restore     N ConfigMaps (~1.2 KB of data each) published with
#               m3bridge-publisher (not timed) into a fresh plane, then
#     (a) m3bridge-listener replay into the empty namespace (W workers,
#         SASL_SSL, the listener's principal and service account): wall
#         time of the whole command (Kafka connect, read and check of every
#         record, index LIST, apply, statuses, handover commit), and its
#         apply phase alone;
#     (b) bench_kube_apply, the raw ceiling: a plain libcurl SSA loop with
#         W threads over the same objects (manifest + the label and
#         annotations the listener adds), same token, no Kafka; (a) and
#         (b) alternate ROUNDS times, each into an emptied namespace;
#     (c) kubectl apply --server-side -f DIR of the same N manifests, one
#         file per object, what an operator would do from a backup;
#   converged   the replay again onto the restored namespace:
#     (d) m3bridge-listener replay: every record read and peeked at,
#         every object skipped by generation and hash, no signature
#         verified (nothing is written): records per second;
#     (e) a naive replay that re-applies everything: (d)'s read time plus
#         bench_kube_apply re-applying all N objects onto its converged
#         namespace (no-op server-side applies: the cheapest way to apply
#         everything again, so the ratio is a lower bound);
#     (f) the Ed25519 verify ceiling (bench_contract's verify row): what a
#         replay that verifies every record cannot go above;
#     (g) m3bridge-listener replay --verify-all onto the same namespace:
#         (d) with every record's signature verified, as `run` checks it
#         (and as every replay did before it verified only what it writes).
#
# Usage: bench/bench_replay.sh [N]          (default 10000)
# Env:   W (listener.workers and raw threads, default 4), ROUNDS (3: the
#        restore, the raw loop and the converged replay are each run this
#        often, alternating, and their medians compared), KUBECTL_N (objects
#        for kubectl, default N), KEEP_WORK (keep the work dir),
#        M3B_BENCH_BUILD (build/release), M3B_BENCH_PYTHON (the test bed's).
# Needs: cmake --preset release && cmake --build --preset release;
#        tests/testbed/install-deps; tests/testbed/testbed up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${1:-10000}
W=${W:-4}
ROUNDS=${ROUNDS:-3}
KUBECTL_N=${KUBECTL_N:-$N}
BUILD=${M3B_BENCH_BUILD:-build/release}
PUBLISHER=$BUILD/producer/m3bridge-publisher
LISTENER=$BUILD/consumer/m3bridge-listener
RAW=$BUILD/bench/bench_kube_apply
CONTRACT=$BUILD/bench/bench_contract

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need "$PUBLISHER" "$LISTENER" "$RAW" "$CONTRACT"
bench_init bench_replay
bench_python confluent_kafka
HELPER=(bench/bench_listener.py)

work=$(mktemp -d /tmp/m3b-bench-replay.XXXXXX)
trap 'if [[ -n ${KEEP_WORK:-} ]]; then say "kept $work"; else rm -rf "$work"; fi' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
run_id=$(date +%s)
plane=replay$run_id
say "plane $plane, N=$N, W=$W; work dir $work"

# --- Kafka: a fresh plane and its listener principal --------------------------
bench_listener_principal "$work" "$plane"
bench_publisher_config "$work" "$plane"
"$PUBLISHER" topics create --config "$work/publisher.yaml" >/dev/null

# --- Kubernetes: namespaces the listener's service account may write --------
NS_R=bench-replay NS_RAW1=bench-replay-raw-1 NS_RAW2=bench-replay-raw-2 NS_KC=bench-replay-kubectl
# shellcheck disable=SC2086 # one word per namespace
bench_namespaces $NS_R $NS_RAW1 $NS_RAW2 $NS_KC
empty() { # NAMESPACE: every ConfigMap deleted, and gone
  bench_empty "$1"
  local deadline=$((SECONDS + 300))
  while [[ -n $("${kc[@]}" get configmaps -n "$1" -o name | head -1) ]]; do
    ((SECONDS < deadline)) || die "namespace $1 did not empty"
    sleep 0.5
  done
}
say "emptying the bench namespaces"
for ns in $NS_R $NS_RAW1 $NS_RAW2 $NS_KC; do empty "$ns"; done

# --- objects -----------------------------------------------------------------
say "generating and publishing $N ConfigMaps (not timed)"
"$PY" "${HELPER[@]}" objects --count "$N" --prefix cm --plane "$plane" --namespace "$NS_R" \
  --yaml "$work/release.yaml" --jsonl "$work/objects.jsonl"
"$PUBLISHER" publish --config "$work/publisher.yaml" --log-level warn -f "$work/release.yaml" \
  --release "bench-$run_id" --json >"$work/publish.json" 2>"$work/publish.err" ||
  { tail -5 "$work/publish.err" >&2; die "publishing failed"; }
mkdir -p "$work/manifests"
"$PY" - "$work/objects.jsonl" "$work/manifests" "$KUBECTL_N" <<'EOF'
import json, os, sys
src, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src) as f:
    for i, line in enumerate(f):
        if i >= n:
            break
        obj = json.loads(line)
        with open(os.path.join(out, f"{obj['metadata']['name']}.json"), "w") as g:
            json.dump(obj, g)
EOF
cat >"$work/listener.yaml" <<EOF
plane: $plane
listener.id: bench-replay
listener.namespaces: [$NS_R]
listener.trusted_keys_dir: $work/trusted
listener.workers: $W
log.level: warn
kube.kubeconfig: $M3B_TB_KUBE_LISTENER_KUBECONFIG
$(bench_listener_kafka "$work" "$plane")
EOF
raw_args=(--server "$M3B_TB_KUBE_SERVER" --cacert "$M3B_TB_KUBE_CA"
  --token-file "$M3B_TB_KUBE_LISTENER_TOKEN_FILE" --workers "$W" --json)
# CPU seconds the apiserver and etcd spent (clock ticks of the test bed's
# processes): a measure the other helpers' load on the machine cannot skew
server_ticks() {
  local t=0 c
  for c in apiserver etcd; do
    t=$((t + $(awk '{print $14 + $15}' "/proc/$(cat "$M3B_TESTBED_DIR/$c.pid")/stat")))
  done
  echo "$t"
}
hz=$(getconf CLK_TCK)
# timed OUT CMD...: runs CMD with stdout to OUT; appends "wall cpu server_cpu"
# (seconds) to OUT.time
timed() {
  local out=$1 s0 t0 t1 s1
  shift
  s0=$(server_ticks)
  t0=$(date +%s.%N)
  /usr/bin/time -f "%U %S" -o "$out.cpu" "$@" >"$out" 2>"$out.err" ||
    { tail -5 "$out.err" >&2; die "$1 failed (see $out.err)"; }
  t1=$(date +%s.%N)
  s1=$(server_ticks)
  read -r u s <"$out.cpu"
  awk "BEGIN {print $t1 - $t0, $u + $s, ($s1 - $s0) / $hz}" >"$out.time"
}
replay_cmd=("$LISTENER" replay --config "$work/listener.yaml" --json)

# restore: the raw loop and the replay alternate, each into an emptied
# namespace, so both see the same spread of load on a shared machine
for ((r = 1; r <= ROUNDS; r++)); do
  empty "$NS_RAW1"
  say "round $r/$ROUNDS: (b) raw libcurl SSA loop into $NS_RAW1"
  timed "$work/raw-$r.json" "$RAW" "${raw_args[@]}" --objects "$work/objects.jsonl" --namespace "$NS_RAW1"
  empty "$NS_R"
  say "round $r/$ROUNDS: (a) replay into the empty $NS_R"
  timed "$work/restore-$r.json" "${replay_cmd[@]}"
done
for ((r = 1; r <= ROUNDS; r++)); do
  say "round $r/$ROUNDS: (d) replay onto the converged $NS_R; (e) raw re-apply onto $NS_RAW1"
  timed "$work/converged-$r.json" "${replay_cmd[@]}"
  timed "$work/verifyall-$r.json" "${replay_cmd[@]}" --verify-all
  timed "$work/reapply-$r.json" "$RAW" "${raw_args[@]}" --objects "$work/objects.jsonl" --namespace "$NS_RAW1"
done
say "(c) kubectl apply --server-side -f DIR ($KUBECTL_N objects into $NS_KC)"
timed "$work/kubectl.out" "$KUBECTL" --kubeconfig "$M3B_TB_KUBE_LISTENER_KUBECONFIG" apply \
  --server-side --field-manager=m3bridge --force-conflicts -n "$NS_KC" -f "$work/manifests"
kc_count=$("${kc[@]}" get configmaps -n "$NS_KC" -o name | wc -l)
[[ $kc_count == "$KUBECTL_N" ]] || die "kubectl applied $kc_count of $KUBECTL_N"
say "(f) verify+decode per event (bench_contract)"
"$CONTRACT" >"$work/contract.txt" 2>&1 || true
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report --------------------------------------------------------------------
"$PY" - "$work" <<EOF
import json, re, statistics, sys
work = sys.argv[1]
N, W, KN, R = $N, $W, $KUBECTL_N, $ROUNDS
def t(name):  # wall, our CPU, apiserver+etcd CPU (seconds)
    return [float(x) for x in open(f"{work}/{name}.time").read().split()]
def j(name):
    return json.load(open(f"{work}/{name}"))
med = statistics.median
rounds = range(1, R + 1)
for r in rounds:
    d = j(f"restore-{r}.json")
    assert d["results"]["create"] == {"done": N}, d["results"]["create"]
    for c in (j(f"converged-{r}.json"), j(f"verifyall-{r}.json")):
        assert c["totals"]["unchanged"] == N and not any(
            c["results"][a].get("done") for a in ("create", "change")), c["totals"]
restore = [N / t(f"restore-{r}.json")[0] for r in rounds]
restore_apply = [N / (j(f"restore-{r}.json")["apply_ms"] / 1000) for r in rounds]
raw = [N / t(f"raw-{r}.json")[0] for r in rounds]
records = j("converged-1.json")["records"]
conv = [records / t(f"converged-{r}.json")[0] for r in rounds]
conv_read = [records / (j(f"converged-{r}.json")["read_ms"] / 1000) for r in rounds]
vall = [records / t(f"verifyall-{r}.json")[0] for r in rounds]
vall_read = [records / (j(f"verifyall-{r}.json")["read_ms"] / 1000) for r in rounds]
naive = [t(f"reapply-{r}.json")[0] + j(f"converged-{r}.json")["read_ms"] / 1000
         for r in rounds]
kubectl_s = t("kubectl.out")[0]
def cpu_ms(name, n):  # ours, server: per object
    w, ours, server = t(name)
    return 1000 * ours / n, 1000 * server / n
m = re.search(r"\\| verify\\s+\\|[^|]*\\|\\s*(\\d+)", open(f"{work}/contract.txt").read())
verify_ns = int(m.group(1)) if m else 0
print(f"bench_replay: {N} ConfigMaps (~1.2 KB each), listener.workers = {W}, "
      f"{R} rounds, plane $plane")
print("per round (objects/s): " + "; ".join(
    f"raw {raw[i]:.0f}, replay {restore[i]:.0f}" for i in range(R)))
print(f"{'':56}{'median/s':>10}{'own CPU':>10}{'server CPU':>12}")
def row(name, rate, cpu=None):
    extra = f"{cpu[0]:8.2f}ms{cpu[1]:10.2f}ms" if cpu else ""
    print(f"{name:56}{rate:10.1f}{extra}")
def cpus(prefix, n):
    return tuple(med(cpu_ms(f"{prefix}-{r}.json", n)[k] for r in rounds) for k in (0, 1))
row("(a) replay into an empty namespace, whole command", med(restore), cpus("restore", N))
row("    its apply phase alone", med(restore_apply))
row("(b) raw libcurl SSA loop (same objects, W threads)", med(raw), cpus("raw", N))
row("(c) kubectl apply --server-side -f DIR (one run)", KN / kubectl_s,
    (1000 * t("kubectl.out")[1] / KN, 1000 * t("kubectl.out")[2] / KN))
row("(d) replay onto the converged namespace, records/s", med(conv), cpus("converged", records))
print(f"      read+peek phase alone: {med(conv_read):.0f} records/s; index LIST "
      f"{med(j(f'converged-{r}.json')['index_ms'] for r in rounds):.0f} ms; "
      f"{med(j(f'converged-{r}.json')['verified'] for r in rounds):.0f} verified; 0 writes")
row("(e) naive replay ((d)'s read + raw re-apply of all)", N / med(naive))
if verify_ns:
    print(f"(f) Ed25519 verify alone: {verify_ns / 1000:.0f} us per event: on "
          f"$(nproc) CPUs at most {1e9 / verify_ns * $(nproc):.0f} records/s")
row("(g) the same with --verify-all (every record verified)", med(vall), cpus("verifyall", records))
print(f"      read+check phase alone: {med(vall_read):.0f} records/s")
def verdict(x, goal):
    return f"{x:.2f} (goal >= {goal}: {'PASS' if x >= goal else 'FAIL'})"
print(f"ratio restore/raw, medians (whole command):  {verdict(med(restore) / med(raw), 0.8)}")
print(f"ratio restore/raw, medians (apply phase):    {med(restore_apply) / med(raw):.2f}")
print(f"ratio restore/raw, per round:                " +
      ", ".join(f"{restore[i] / raw[i]:.2f}" for i in range(R)))
print(f"ratio restore/kubectl apply -f DIR:          {med(restore) / (KN / kubectl_s):.2f}")
print(f"converged replay: {med(conv):.0f} records/s (goal >= 20000: "
      f"{'PASS' if med(conv) >= 20000 else 'FAIL'})")
print(f"ratio converged replay / naive replay:       {med(naive) / (records / med(conv)):.2f} "
      f"(time of the naive one over ours)")
print(f"ratio converged replay / --verify-all:       {med(conv) / med(vall):.2f} "
      f"(per round: " + ", ".join(f"{conv[i] / vall[i]:.2f}" for i in range(R)) + ")")
print("own CPU: user+sys of the command per object; server CPU: kube-apiserver + etcd")
EOF
machine
echo "load: $load_start at start, $load_end at end"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- bridge consumer producer bench || echo ' (modified)')"
echo "reproduce: cmake --preset release && cmake --build --preset release && tests/testbed/testbed up && bench/bench_replay.sh $N"
