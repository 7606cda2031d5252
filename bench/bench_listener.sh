#!/usr/bin/env bash
# bench_listener.sh - the listener's speed and size (issue 5), with every
# baseline measured side by side in one run on the test bed's real Kafka
# broker and kube-apiserver:
#
#   throughput  N ConfigMaps (~1 KB of data each) published with
#               m3bridge-publisher (not timed), then applied by
#     (a) m3bridge-listener (W workers, SASL_SSL, its own principal and
#         service account): from the moment the release is committed
#         until its /metrics count N APPLIED;
#     (b) bench_kube_apply, the raw ceiling: a plain libcurl SSA loop with
#         W threads over the same objects (manifest + the label and
#         annotations the listener adds), same token, no Kafka; run once
#         before and once after (a), into fresh namespaces;
#     (a2, b2) the same two on an update of the N objects (changed data):
#         new objects miss the listener's index and cost it a GET before
#         the apply, updates of objects it applied do not;
#     (c) kcat -C | one `kubectl apply --server-side` per message, the way a
#         user would script it (sequential; a subset of KCAT_N objects);
#     (d) a Python consumer (confluent-kafka + the kubernetes client) doing
#         one SSA per message, sequential (a subset of PY_N objects);
#   latency     publish -> APPLIED at half the listener's measured rate: LAT_S
#               seconds of events, signed by m3bridge-publisher into a
#               staging topic, re-produced to the desired topic at a fixed
#               rate; per event, status applied_at minus the record's Kafka
#               timestamp (p50, p90, p99);
#   size        VmRSS/VmHWM of the listener idle (empty plane), after (a),
#               and after loading RSS_N managed ConfigMaps into its index
#               (plane 'benchrss', namespace bench-rss; created with
#               bench_kube_apply when not already there from an earlier run).
#   CPU         per object, user+sys from /proc: the listener's own (or the
#               raw loop's), the apiserver's + etcd's and the broker's, for
#               (a), (b), (a2), (b2).
#
# Usage: bench/bench_listener.sh [N]          (default 10000)
# Env:   W (listener.workers and raw threads, default 4), KCAT_N (300),
#        PY_N (2000), LAT_S (20), RSS_N (100000); 0 skips that part,
#        KEEP_WORK (set: keep the work dir with the logs), M3B_BENCH_BUILD (build/release), M3B_BENCH_PYTHON (the test bed's
#        python; needs confluent-kafka, fastavro and kubernetes).
# Needs: cmake --preset release && cmake --build --preset release;
#        tests/testbed/install-deps; tests/testbed/testbed up.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${1:-10000}
W=${W:-4}
KCAT_N=${KCAT_N:-300}
PY_N=${PY_N:-2000}
LAT_S=${LAT_S:-20}
RSS_N=${RSS_N:-100000}
BUILD=${M3B_BENCH_BUILD:-build/release}
PUBLISHER=$BUILD/producer/m3bridge-publisher
LISTENER=$BUILD/consumer/m3bridge-listener
RAW=$BUILD/bench/bench_kube_apply

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need "$PUBLISHER" "$LISTENER" "$RAW"
command -v kcat >/dev/null || die "kcat not found: run tests/testbed/install-deps"
bench_init bench_listener
bench_python confluent_kafka fastavro kubernetes
HELPER=(bench/bench_listener.py)

work=$(mktemp -d /tmp/m3b-bench-listener.XXXXXX)
listener_pid=
stop_listener() {
  if [[ -n $listener_pid ]] && kill -0 "$listener_pid" 2>/dev/null; then
    kill -TERM "$listener_pid"
    wait "$listener_pid" || true
  fi
  listener_pid=
}
trap 'stop_listener; if [[ -n ${KEEP_WORK:-} ]]; then say "kept $work"; else rm -rf "$work"; fi' EXIT
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
run_id=$(date +%s)
plane=bench$run_id
main_plane=$plane
say "plane $plane, N=$N, W=$W; work dir $work"

# --- Kafka: topics, the listener's principal ---------------------------------
bench_listener_principal "$work" "$plane"
bench_publisher_config "$work" "$plane"
sasl_control=(--bootstrap "$M3B_TB_KAFKA_SASL_BOOTSTRAP" --sasl-user "$M3B_TB_KAFKA_CONTROL_USER"
  --sasl-password-file "$M3B_TB_KAFKA_CONTROL_PASSWORD_FILE" --ca "$M3B_TB_KAFKA_CA")
plain=(--bootstrap "$M3B_TB_KAFKA_BOOTSTRAP")
# the staging topics of the latency run: same plane, prefix 'stage', over
# the PLAINTEXT admin listener (the control principal may only use m3.*)
cat >"$work/stage.yaml" <<EOF
plane: $plane
topic.prefix: stage
signing.key_file: $work/signing.key
publish.timeout_ms: 300000
topics: {replication_factor: 1, partitions: 6}
kafka: {bootstrap.servers: $M3B_TB_KAFKA_BOOTSTRAP}
EOF
"$PUBLISHER" topics create --config "$work/publisher.yaml" >/dev/null
"$PUBLISHER" topics create --config "$work/publisher.yaml" --plane "$plane-plain" >/dev/null
"$PUBLISHER" topics create --config "$work/stage.yaml" >/dev/null

# --- Kubernetes: namespaces the listener's service account may write --------
NS_L=bench-listener NS_RAW1=bench-raw-1 NS_RAW2=bench-raw-2 NS_KCAT=bench-kcat
NS_PY=bench-python NS_RSS=bench-rss
bench_namespaces $NS_L $NS_RAW1 $NS_RAW2 $NS_KCAT $NS_PY $NS_RSS
say "emptying the bench namespaces (ConfigMaps of earlier runs)"
for ns in $NS_L $NS_RAW1 $NS_RAW2 $NS_KCAT $NS_PY; do bench_empty "$ns"; done

# --- objects -----------------------------------------------------------------
say "generating $N ConfigMaps"
"$PY" "${HELPER[@]}" objects --count "$N" --prefix cm --plane "$plane" --namespace "$NS_L" \
  --yaml "$work/release.yaml" --jsonl "$work/objects.jsonl"
raw_args=(--server "$M3B_TB_KUBE_SERVER" --cacert "$M3B_TB_KUBE_CA"
  --token-file "$M3B_TB_KUBE_LISTENER_TOKEN_FILE" --workers "$W" --json)

# --- the listener ------------------------------------------------------------
port=$("$PY" "${HELPER[@]}" free-port)
metrics=http://127.0.0.1:$port/metrics
write_listener_config() { # NAMESPACE
  cat >"$work/listener.yaml" <<EOF
plane: $plane
listener.id: bench-listener
listener.namespaces: [$1]
listener.trusted_keys_dir: $work/trusted
listener.workers: $W
kube.kubeconfig: $M3B_TB_KUBE_LISTENER_KUBECONFIG
http.address: 127.0.0.1:$port
$(bench_listener_kafka "$work" "$plane")
EOF
}
# start_listener NAMESPACE LOG: returns once it consumes and /readyz is 200
start_listener() {
  write_listener_config "$1"
  "$LISTENER" run --config "$work/listener.yaml" >"$2" 2>&1 &
  listener_pid=$!
  local deadline=$((SECONDS + 600))
  until curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && grep -q '"consuming ' "$2"; do
    kill -0 "$listener_pid" 2>/dev/null || { tail -5 "$2" >&2; die "the listener exited"; }
    ((SECONDS < deadline)) || die "the listener did not become ready in 600 s"
    sleep 0.2
  done
}
rss() { # prints "VmRSS_kB VmHWM_kB" of the listener
  awk '/^VmRSS/ {r=$2} /^VmHWM/ {h=$2} END {print r, h}' "/proc/$listener_pid/status"
}
# CPU per object, from /proc (clock ticks, user + system): what the
# listener, the raw loop, the apiserver + etcd and the broker spent. On a
# shared machine this is the figure the other work cannot skew: every ms a
# client spends per object is taken from the apiserver it shares the CPUs with.
hz=$(getconf CLK_TCK)
ticks() { # PID...: user+sys clock ticks of these processes
  local t=0 p
  for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
  echo "$t"
}
tb_pid() { cat "$M3B_TESTBED_DIR/$1.pid"; }
cpu_snap() { # "listener server broker" ticks now
  echo "$(ticks "$listener_pid") $(ticks "$(tb_pid apiserver)" "$(tb_pid etcd)") $(ticks "$(tb_pid kafka)")"
}
# raw_timed OUTVAR ARGS...: the raw loop; OUTVAR gets its JSON line,
# OUTVAR_cpu "own server broker" CPU seconds
raw_timed() {
  local var=$1 s0 s1 u s out
  shift
  s0="$(ticks "$(tb_pid apiserver)" "$(tb_pid etcd)") $(ticks "$(tb_pid kafka)")"
  out=$(/usr/bin/time -f "%U %S" -o "$work/raw.cpu" "$RAW" "$@")
  s1="$(ticks "$(tb_pid apiserver)" "$(tb_pid etcd)") $(ticks "$(tb_pid kafka)")"
  read -r u s <"$work/raw.cpu"
  printf -v "$var" '%s' "$out"
  printf -v "${var}_cpu" '%s' "$(awk -v a="$s0" -v b="$s1" -v hz="$hz" -v c="$u $s" \
    'BEGIN {split(a, x); split(b, y); split(c, z); print z[1] + z[2], (y[1] - x[1]) / hz, (y[2] - x[2]) / hz}')"
}
cpu_delta() { # BEFORE AFTER: "listener server broker" CPU seconds
  awk -v a="$1" -v b="$2" -v hz="$hz" \
    'BEGIN {split(a, x); split(b, y); print (y[1] - x[1]) / hz, (y[2] - x[2]) / hz, (y[3] - x[3]) / hz}'
}

say "raw libcurl loop, first run ($NS_RAW1)"
raw_timed raw1 "${raw_args[@]}" --objects "$work/objects.jsonl" --namespace "$NS_RAW1"
say "raw 1: $raw1"

say "starting the listener (empty plane)"
t_start=$(date +%s.%N)
start_listener "$NS_L" "$work/listener.log"
t_ready=$(date +%s.%N)
sleep 3
rss_idle=$(rss)

say "publishing $N ConfigMaps (not timed)"
"$PUBLISHER" publish --config "$work/publisher.yaml" --log-level warn -f "$work/release.yaml" \
  --release "bench-$run_id" --json >"$work/publish.json" 2>"$work/publish.err" ||
  { tail -5 "$work/publish.err" >&2; die "publishing failed"; }
t_visible=$(date +%s.%N)
cpu0=$(cpu_snap) # after the publish: the broker's share of it is not the listener's
say "release committed; waiting for $N APPLIED"
read -r t_done _ < <("$PY" "${HELPER[@]}" wait-applied --url "$metrics" --count "$N")
cpu_a=$(cpu_delta "$cpu0" "$(cpu_snap)")
listener_st=$("$PY" "${HELPER[@]}" statuses "${plain[@]}" --topic "m3.$plane.status" \
  --prefix "/v1/ConfigMap/$NS_L/cm-" --count "$N")
rss_after=$(rss)
say "listener: $N in $(awk "BEGIN {print $t_done - $t_visible}") s; statuses: $listener_st"

say "raw libcurl loop, second run ($NS_RAW2)"
raw_timed raw2 "${raw_args[@]}" --objects "$work/objects.jsonl" --namespace "$NS_RAW2"
say "raw 2: $raw2"

# --- updates: the same N objects with changed data --------------------------
# A new object misses the listener's index, so the listener first reads it
# (GET, 404) before applying it; an update of an object it applied hits
# the index and costs the apply alone. Both paths are measured.
say "publishing an update of the $N ConfigMaps (not timed)"
"$PY" "${HELPER[@]}" objects --count "$N" --prefix cm --plane "$plane" --namespace "$NS_L" \
  --variant 2 --yaml "$work/release2.yaml" --jsonl "$work/objects2.jsonl"
"$PUBLISHER" publish --config "$work/publisher.yaml" --log-level warn -f "$work/release2.yaml" \
  --release "bench-$run_id-2" --json >/dev/null 2>"$work/publish.err" ||
  { tail -5 "$work/publish.err" >&2; die "publishing the update failed"; }
t_visible2=$(date +%s.%N)
cpu0=$(cpu_snap)
read -r t_done2 _ < <("$PY" "${HELPER[@]}" wait-applied --url "$metrics" --count "$((2 * N))")
cpu_a2=$(cpu_delta "$cpu0" "$(cpu_snap)")
say "raw libcurl loop, updates ($NS_RAW1)"
say "listener updates: $N in $(awk "BEGIN {print $t_done2 - $t_visible2}") s"
raw_timed raw_upd "${raw_args[@]}" --objects "$work/objects2.jsonl" --namespace "$NS_RAW1"
say "raw updates: $raw_upd"

# --- (c) kcat | kubectl, (d) Python: from a topic of plain JSON manifests ----
kcat_s=0 py='{"objects": 0}'
if ((KCAT_N > 0 || PY_N > 0)); then
  say "producing the plain manifests for the user-script baselines (not timed)"
  awk '{ match($0, /"name":"[^"]*"/); print substr($0, RSTART + 8, RLENGTH - 9) "\t" $0 }' \
    "$work/objects.jsonl" >"$work/plain.tsv"
  kafka_control=(-X security.protocol=SASL_SSL -X sasl.mechanisms="$M3B_TB_KAFKA_SASL_MECHANISM"
    -X sasl.username="$M3B_TB_KAFKA_CONTROL_USER" -X ssl.ca.location="$M3B_TB_KAFKA_CA"
    -X sasl.password="$(cat "$M3B_TB_KAFKA_CONTROL_PASSWORD_FILE")")
  kcat -b "$M3B_TB_KAFKA_SASL_BOOTSTRAP" "${kafka_control[@]}" -P -t "m3.$plane-plain.desired" \
    -K $'\t' -l "$work/plain.tsv"
fi
if ((KCAT_N > 0)); then
  say "kcat | kubectl apply --server-side, one kubectl per message ($KCAT_N objects)"
  t0=$(date +%s.%N)
  kcat -b "$M3B_TB_KAFKA_SASL_BOOTSTRAP" "${kafka_control[@]}" -C -t "m3.$plane-plain.desired" \
    -o beginning -c "$KCAT_N" -e -q -f '%s\n' |
    while IFS= read -r manifest; do
      printf '%s\n' "$manifest" | "$KUBECTL" --kubeconfig "$M3B_TB_KUBE_LISTENER_KUBECONFIG" \
        apply --server-side --field-manager=m3bridge --force-conflicts -n "$NS_KCAT" -f - >/dev/null
    done
  t1=$(date +%s.%N)
  kcat_applied=$("${kc[@]}" get configmaps -n "$NS_KCAT" -l app.kubernetes.io/managed-by=m3bridge -o name | wc -l)
  [[ $kcat_applied == "$KCAT_N" ]] || die "kcat | kubectl applied $kcat_applied of $KCAT_N"
  kcat_s=$(awk "BEGIN {print $t1 - $t0}")
  say "kcat | kubectl: $KCAT_N in $kcat_s s"
fi
if ((PY_N > 0)); then
  say "Python consumer + kubernetes client ($PY_N objects)"
  py=$("$PY" "${HELPER[@]}" python-baseline "${sasl_control[@]}" --topic "m3.$plane-plain.desired" \
    --group "m3bridge-publisher-bench-py-$run_id" --kubeconfig "$M3B_TB_KUBE_LISTENER_KUBECONFIG" \
    --namespace "$NS_PY" --count "$PY_N")
  say "python: $py"
fi

# --- latency at half the listener's rate ----------------------------------------
lat='{"events": 0}' stage='{}' hist=""
if ((LAT_S > 0)); then
  rate=$("$PY" -c "import sys; print(round($N / ($t_done - $t_visible) / 2, 1))")
  lat_n=$("$PY" -c "print(max(200, int($rate * $LAT_S)))")
  say "latency: $lat_n events at $rate/s (half the listener's measured rate)"
  "$PY" "${HELPER[@]}" objects --count "$lat_n" --prefix lat --plane "$plane" --namespace "$NS_L" \
    --yaml "$work/lat.yaml"
  "$PUBLISHER" publish --config "$work/stage.yaml" --log-level warn -f "$work/lat.yaml" \
    --release "bench-lat-$run_id" --json >/dev/null 2>"$work/stage.err" ||
    { tail -5 "$work/stage.err" >&2; die "publishing to the staging topic failed"; }
  stage=$("$PY" "${HELPER[@]}" stage-to-desired "${plain[@]}" --source "stage.$plane.desired" \
    --target "m3.$plane.desired" --count "$lat_n" --rate "$rate" --out "$work/stamps.json")
  "$PY" "${HELPER[@]}" wait-applied --url "$metrics" --count "$((2 * N + lat_n))" >/dev/null
  lat=$("$PY" "${HELPER[@]}" latency "${plain[@]}" --topic "m3.$plane.status" \
    --prefix "/v1/ConfigMap/$NS_L/lat-" --stamps "$work/stamps.json")
  say "latency: $lat"
  hist=$(curl -fsS "$metrics" | awk '/^m3bridge_publish_to_applied_seconds_(sum|count)/ {print $2}' | paste -sd' ')
fi
rss_after_lat=$(rss)
stop_listener

# --- size with RSS_N managed objects ----------------------------------------------
# A plane of its own with a fixed name, so that a later run finds the
# RSS_N objects already there and does not spend minutes creating them again.
rss_big="skipped" rss_raw='{"objects_per_s": 0}' index_s=""
if ((RSS_N > 0)); then
  rss_plane=benchrss
  "$PY" "${HELPER[@]}" provision --bootstrap "$M3B_TB_KAFKA_BOOTSTRAP" --plane "$rss_plane" \
    --password-file "$work/listener.password" >/dev/null
  "$PUBLISHER" topics create --config "$work/publisher.yaml" --plane "$rss_plane" >/dev/null
  # the namespace holds nothing else; without a label selector the
  # apiserver reports remainingItemCount
  have=$(curl -sS --cacert "$M3B_TB_KUBE_CA" -H "Authorization: Bearer $(cat "$M3B_TB_KUBE_ADMIN_TOKEN_FILE")" \
    "$M3B_TB_KUBE_SERVER/api/v1/namespaces/$NS_RSS/configmaps?limit=1" |
    "$PY" -c 'import json, sys; d = json.load(sys.stdin); print(len(d["items"]) + d["metadata"].get("remainingItemCount", 0))')
  if ((have >= RSS_N)); then
    say "$NS_RSS already holds $have ConfigMaps (RSS_N=$RSS_N)"
  else
    # server-side apply creates what is missing and leaves the rest as is
    say "applying $RSS_N managed ConfigMaps to $NS_RSS with bench_kube_apply (it has $have)"
    "$PY" "${HELPER[@]}" objects --count "$RSS_N" --prefix rss --plane "$rss_plane" --namespace "$NS_RSS" \
      --jsonl "$work/rss.jsonl"
    # setup, not a measurement: more threads to get there sooner
    rss_raw=$("$RAW" "${raw_args[@]}" --workers 8 --objects "$work/rss.jsonl" --namespace "$NS_RSS")
    rm -f "$work/rss.jsonl"
  fi
  say "starting the listener of plane $rss_plane bound to $NS_RSS (index load + status resync)"
  plane=$rss_plane
  t0=$(date +%s.%N)
  start_listener "$NS_RSS" "$work/listener-rss.log"
  t1=$(date +%s.%N)
  index_s=$(awk "BEGIN {print $t1 - $t0}")
  grep -o '"index loaded: [0-9]* managed object(s)' "$work/listener-rss.log" | head -1 >&2 || true
  sleep 5
  rss_big=$(rss)
  stop_listener
fi
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# --- report --------------------------------------------------------------------
"$PY" - <<EOF
import json
N, W = $N, $W
raw1, raw2 = json.loads('''$raw1'''), json.loads('''$raw2''')
rawu = json.loads('''$raw_upd''')
wall2 = $t_done2 - $t_visible2
lisu = N / wall2
lst = json.loads('''$listener_st''')
py = json.loads('''$py''')
lat = json.loads('''$lat''')
stage = json.loads('''$stage''')
wall = $t_done - $t_visible
lis = N / wall
raw = (raw1["objects_per_s"] + raw2["objects_per_s"]) / 2
kcat = $KCAT_N / $kcat_s if $KCAT_N else 0
def mb(pair):
    r, h = map(int, pair.split())
    return f"VmRSS {r/1024:.1f} MiB, VmHWM {h/1024:.1f} MiB"
print(f"bench_listener: {N} ConfigMaps (~1.2 KB each), listener.workers = {W}, plane $main_plane")
print(f"{'':44}{'objects':>8}{'seconds':>9}{'objects/s':>11}")
print(f"{'(a) m3bridge-listener (commit -> N APPLIED)':44}{N:8}{wall:9.2f}{lis:11.1f}")
print(f"{'    same, first->last applied_at':44}{lst['applied']:8}{lst['span_s']:9.2f}{lst['objects_per_s']:11.1f}")
print(f"{'(b) raw libcurl SSA loop, run 1':44}{raw1['objects']:8}{raw1['seconds']:9.2f}{raw1['objects_per_s']:11.1f}")
print(f"{'    raw libcurl SSA loop, run 2':44}{raw2['objects']:8}{raw2['seconds']:9.2f}{raw2['objects_per_s']:11.1f}")
print(f"{'(a2) listener, updates (index hit)':44}{N:8}{wall2:9.2f}{lisu:11.1f}")
print(f"{'(b2) raw libcurl SSA loop, updates':44}{rawu['objects']:8}{rawu['seconds']:9.2f}{rawu['objects_per_s']:11.1f}")
if kcat:
    print(f"{'(c) kcat | kubectl apply, 1 per message':44}{$KCAT_N:8}{$kcat_s:9.2f}{kcat:11.1f}")
if py['objects']:
    print(f"{'(d) Python confluent-kafka + kubernetes':44}{py['objects']:8}{py['seconds']:9.2f}{py['objects_per_s']:11.1f}")
def cpu(triple, n):  # CPU seconds "own server broker" -> ms per object
    return [1000 * float(x) / n for x in triple.split()]
print(f"CPU per object, ms (user+sys from /proc){'own':>8}{'apiserver+etcd':>16}{'broker':>8}")
for name, triple, n in (("(a) listener, creates", "$cpu_a", N),
                        ("(b) raw loop, run 1", "$raw1_cpu", raw1["objects"]),
                        ("    raw loop, run 2", "$raw2_cpu", raw2["objects"]),
                        ("(a2) listener, updates", "$cpu_a2", N),
                        ("(b2) raw loop, updates", "$raw_upd_cpu", rawu["objects"])):
    o, sv, b = cpu(triple, n)
    print(f"{'  ' + name:40}{o:8.2f}{sv:16.2f}{b:8.2f}")
def verdict(x, goal):
    return f"{x:.2f} (goal >= {goal}: {'PASS' if x >= goal else 'FAIL'})"
print(f"ratio listener/raw (mean of both runs): {verdict(lis / raw, 0.8)}")
print(f"ratio listener/raw, updates:             {verdict(lisu / rawu['objects_per_s'], 0.8)}")
if kcat:
    print(f"ratio listener/kcat+kubectl:            {verdict(lis / kcat, 20)}")
if py['objects']:
    print(f"ratio listener/python:                  {verdict(lis / py['objects_per_s'], 5)}")
if lat['events']:
  print(f"latency publish -> APPLIED at {stage['rate']:.1f} events/s ({lat['events']} events, "
      f"half of {lis:.1f}/s): p50 {lat['p50_ms']} ms, p90 {lat['p90_ms']} ms, "
      f"p99 {lat['p99_ms']} ms, max {lat['max_ms']} ms")
  print("  (per event: the status's applied_at minus the desired record's Kafka timestamp)")
hs = "$hist".split()
if len(hs) == 2 and float(hs[1]) > 0:
    print(f"  listener histogram m3bridge_publish_to_applied_seconds, all events: mean {1000*float(hs[0])/float(hs[1]):.0f} ms")
print(f"listener start -> consuming and ready: {$t_ready - $t_start:.2f} s (empty plane)")
print(f"RSS idle (empty plane): {mb('$rss_idle')}")
print(f"RSS after (a), {N} objects indexed: {mb('$rss_after')}")
if lat['events']:
    print(f"RSS after the latency run, {N + lat['events']} indexed: {mb('$rss_after_lat')}")
if "$rss_big" != "skipped":
    rr = json.loads('''$rss_raw''')
    r, h = map(int, "$rss_big".split())
    print(f"RSS with {$RSS_N} managed objects indexed: {mb('$rss_big')} "
          f"(goal < 64 MB: {'PASS' if h * 1024 < 64e6 else 'FAIL'} on VmHWM); "
          f"start -> consuming {float('$index_s' or 0):.1f} s")
    if rr["objects_per_s"]:
        print(f"  ({$RSS_N} objects created by bench_kube_apply at {rr['objects_per_s']:.0f}/s)")
EOF
machine
echo "load: $load_start at start, $load_end at end"
echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- bridge consumer producer bench || echo ' (modified)')"
echo "reproduce: cmake --preset release && cmake --build --preset release && tests/testbed/testbed up && bench/bench_listener.sh $N"
