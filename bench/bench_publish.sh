#!/usr/bin/env bash
# bench_publish.sh - publish throughput of m3bridge-publisher against kcat,
# side by side in one run, on the test bed's real broker.
#
#   m3bridge-publisher: N realistic manifests (~2 KB Deployments) read from
#     YAML, validated, encoded, signed (Ed25519) and produced in one Kafka
#     transaction (idempotent, acks=all) to m3.bench.desired;
#   kcat (the baseline): the very bytes the publisher produced (keys and
#     values, dumped from that topic), produced by kcat with the same
#     guarantees (idempotent, acks=all) over the same SASL_SSL listener to a
#     topic of the same shape.
#
# Reports events/s and MB/s of both and the ratio publisher/kcat; the goal
# (issue 4) is a ratio of at least 0.5. Both are timed as whole commands
# (the publisher's time includes parsing the YAML; kcat's includes reading
# its input file). Absolute numbers depend on the machine; compare ratios.
#
# Usage: bench/bench_publish.sh [N]       (default 100000; needs the test bed up
#        and a build: cmake --preset release && cmake --build --preset release)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N=${1:-100000}
BUILD=${M3B_BENCH_BUILD:-build/release}
PUBLISHER=$BUILD/producer/m3bridge-publisher
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_need "$PUBLISHER"
bench_init bench_publish

work=$(mktemp -d /tmp/m3b-bench-publish.XXXXXX)
trap 'rm -rf "$work"' EXIT
run_id=$(date +%s)
plane=bench$run_id
kcat_topic=m3.kcat$run_id.desired

bench_publisher_config "$work" "$plane"
"$PUBLISHER" topics create --config "$work/publisher.yaml" >/dev/null
# the baseline topic: same shape
"$PUBLISHER" topics create --config "$work/publisher.yaml" --plane "kcat$run_id" >/dev/null

echo "generating $N manifests..." >&2
"$M3B_PYTHON" - "$N" >"$work/release.yaml" <<'EOF'
import sys
n = int(sys.argv[1])
env = "".join(f"        - {{name: SETTING_{j}, value: \"value-{j}-abcdefghijklmnop\"}}\n"
              for j in range(24))
for i in range(n):
    sys.stdout.write(f"""---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: svc-{i}
  namespace: ns-{i % 50}
  labels: {{app: svc-{i}, tier: backend, team: payments}}
spec:
  replicas: 3
  selector: {{matchLabels: {{app: svc-{i}}}}}
  template:
    metadata: {{labels: {{app: svc-{i}}}}}
    spec:
      containers:
      - name: app
        image: registry.example.com/payments/svc:1.{i % 97}.0
        ports: [{{containerPort: 8080}}]
        resources: {{requests: {{cpu: 250m, memory: 256Mi}}, limits: {{memory: 512Mi}}}}
        env:
{env}""")
EOF

echo "publishing with m3bridge-publisher..." >&2
t0=$(date +%s.%N)
if ! "$PUBLISHER" publish --config "$work/publisher.yaml" --log-level warn \
  -f "$work/release.yaml" --json >"$work/report.json" 2>"$work/publisher.err"; then
  echo "bench_publish: the publisher failed:" >&2
  grep -v '"rdkafka"' "$work/publisher.err" | tail -5 >&2
  exit 1
fi
t1=$(date +%s.%N)

# dump exactly what was produced: key, value, with multi-byte delimiters
kafka_args=(-X security.protocol=SASL_SSL -X sasl.mechanisms="$M3B_TB_KAFKA_SASL_MECHANISM"
  -X sasl.username="$M3B_TB_KAFKA_CONTROL_USER" -X ssl.ca.location="$M3B_TB_KAFKA_CA"
  -X sasl.password="$(cat "$M3B_TB_KAFKA_CONTROL_PASSWORD_FILE")")
kcat -b "$M3B_TB_KAFKA_SASL_BOOTSTRAP" "${kafka_args[@]}" -C -t "m3.$plane.desired" -e -q \
  -X isolation.level=read_committed -f '%k\x1f\x1eK%s\x1e\x1dM3BREC\x1d\x1e' >"$work/records.bin"
bytes=$(stat -c %s "$work/records.bin")
count=$("$M3B_PYTHON" -c "import sys; print(open(sys.argv[1],'rb').read().count(b'\x1e\x1dM3BREC\x1d\x1e'))" "$work/records.bin")
[[ $count == "$N" ]] || { echo "bench_publish: expected $N records on m3.$plane.desired, found $count" >&2; exit 1; }

echo "producing the same bytes with kcat..." >&2
t2=$(date +%s.%N)
kcat -b "$M3B_TB_KAFKA_SASL_BOOTSTRAP" "${kafka_args[@]}" -P -t "$kcat_topic" \
  -X enable.idempotence=true -X acks=all -X partitioner=murmur2_random \
  -K '\x1f\x1eK' -D '\x1e\x1dM3BREC\x1d\x1e' -l "$work/records.bin"
t3=$(date +%s.%N)
got=$(kcat -b "$M3B_TB_KAFKA_SASL_BOOTSTRAP" "${kafka_args[@]}" -C -t "$kcat_topic" -e -q -f 'x\n' | wc -l)
[[ $got == "$N" ]] || { echo "bench_publish: kcat produced $got of $N records" >&2; exit 1; }

"$M3B_PYTHON" - "$N" "$bytes" "$t0" "$t1" "$t2" "$t3" <<'EOF'
import os, platform, sys
n, nbytes = int(sys.argv[1]), int(sys.argv[2])
t0, t1, t2, t3 = map(float, sys.argv[3:7])
pub, kc = t1 - t0, t3 - t2
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
            if l.startswith("model name")), "?")
mb = nbytes / 1e6
print(f"bench_publish: {n} events, {mb:.1f} MB of keys+values "
      f"({nbytes / n:.0f} B/event)")
print(f"{'':22}{'seconds':>10}{'events/s':>12}{'MB/s':>9}")
print(f"{'m3bridge-publisher':22}{pub:10.2f}{n / pub:12.0f}{mb / pub:9.1f}")
print(f"{'kcat (same bytes)':22}{kc:10.2f}{n / kc:12.0f}{mb / kc:9.1f}")
ratio = (n / pub) / (n / kc)
print(f"ratio publisher/kcat: {ratio:.3f} (goal >= 0.5: "
      f"{'PASS' if ratio >= 0.5 else 'FAIL'})")
print(f"machine: {platform.system()} {platform.release()} {platform.machine()}, "
      f"{cpu}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
print("reproduce: cmake --preset release && cmake --build --preset release && "
      "tests/testbed/testbed up && bench/bench_publish.sh " + str(n))
EOF
