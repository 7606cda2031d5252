#!/usr/bin/env bash
# demo.sh - the main job end to end on this machine:
#
#   1. installs what is missing and builds m3bridge;
#   2. starts the real test bed (Kafka, etcd, kube-apiserver);
#   3. creates the demo plane's topics and keys;
#   4. publishes the example release (examples/shop) as the control plane;
#   5. runs the listener as the data plane's identity, which applies it to
#      the kube-apiserver and reports status;
#   6. shows what was applied (kubectl), the statuses and the lag.
#
# The test bed stays up afterwards for you to explore; stop it with
# `tests/testbed/testbed down`, or pass --down to stop it at the end.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

down_at_end=0
case ${1:-} in
--down) down_at_end=1 ;;
-h | --help)
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
  ;;
"") ;;
*) echo "demo.sh: unknown option '$1' (try --help)" >&2 && exit 2 ;;
esac

step() { printf '\n==> %s\n' "$*"; }

step "dependencies"
tests/testbed/install-deps

step "build"
cmake --preset default >/dev/null
cmake --build --preset default

step "test bed"
tests/testbed/testbed up
listener_pid=
cleanup() {
  if [[ -n $listener_pid ]] && kill -0 "$listener_pid" 2>/dev/null; then
    kill -TERM "$listener_pid" && wait "$listener_pid" || true
  fi
  if ((down_at_end)); then tests/testbed/testbed down; fi
}
trap cleanup EXIT
eval "$(tests/testbed/testbed env)"

PUBLISHER=build/producer/m3bridge-publisher
LISTENER=build/consumer/m3bridge-listener
demo=$M3B_TESTBED_DIR/demo
mkdir -p "$demo/trusted"

step "keys: the control plane's signing key, the listener's sealing key"
[[ -f $demo/signing.key ]] || $PUBLISHER keygen --out "$demo"
[[ -f $demo/sealing.key ]] || $PUBLISHER keygen --seal --out "$demo"
cp "$demo/signing.pub.pem" "$demo/trusted/"

cat >"$demo/publisher.yaml" <<CONF
# the control plane (vendor side)
plane: demo
signing.key_file: $demo/signing.key
sealing.listener_key_file: $demo/sealing.pub.pem
topics: {replication_factor: 1, partitions: 3}
kafka:
  bootstrap.servers: $M3B_TB_KAFKA_SASL_BOOTSTRAP
  security.protocol: SASL_SSL
  sasl.mechanisms: $M3B_TB_KAFKA_SASL_MECHANISM
  sasl.username: $M3B_TB_KAFKA_CONTROL_USER
  sasl.password_file: $M3B_TB_KAFKA_CONTROL_PASSWORD_FILE
  ssl.ca.location: $M3B_TB_KAFKA_CA
CONF

step "topics of plane 'demo' (idempotent)"
$PUBLISHER topics create --config "$demo/publisher.yaml"

step "publish the example release (examples/shop) as one signed transaction"
release=demo-$(date +%Y%m%d-%H%M%S)
$PUBLISHER publish --config "$demo/publisher.yaml" -f examples/shop --release "$release"

if $LISTENER help run >/dev/null 2>&1; then
  cat >"$demo/listener.yaml" <<CONF
# the data plane (customer side): its own Kafka principal and Kubernetes
# service account, both limited to what the listener needs
plane: demo
listener.id: demo-listener
listener.namespaces: [shop]
listener.trusted_keys_dir: $demo/trusted
listener.sealing_key_file: $demo/sealing.key
kube.kubeconfig: $M3B_TB_KUBE_LISTENER_KUBECONFIG
http.address: 127.0.0.1:9464
kafka:
  bootstrap.servers: $M3B_TB_KAFKA_SASL_BOOTSTRAP
  security.protocol: SASL_SSL
  sasl.mechanisms: $M3B_TB_KAFKA_SASL_MECHANISM
  sasl.username: $M3B_TB_KAFKA_LISTENER_USER_DEMO
  sasl.password_file: $M3B_TB_KAFKA_LISTENER_PASSWORD_FILE_DEMO
  ssl.ca.location: $M3B_TB_KAFKA_CA
CONF
  step "run the listener (logs: $demo/listener.log)"
  $LISTENER run --config "$demo/listener.yaml" >"$demo/listener.log" 2>&1 &
  listener_pid=$!

  step "wait for the statuses of the release"
  $PUBLISHER status --config "$demo/publisher.yaml" --release "$release" --wait --timeout 120

  step "what the listener applied (kubectl, admin view)"
  kubectl get configmaps,secrets,serviceaccounts,deployments,services,httproutes \
    -n shop -l app.kubernetes.io/managed-by=m3bridge

  step "lag as Prometheus sees it (/metrics)"
  curl -fsS http://127.0.0.1:9464/metrics | grep -E '^kafka_consumergroup_group_lag' || true
  step "lag of the listener's group, with verdicts (m3bridge-listener lag, sampled over 3 s)"
  $LISTENER lag --config "$demo/listener.yaml" --window 3 --interval 0.5 ||
    echo "(lag exits non-zero when a partition is not OK: see docs/OPERATIONS.md, Watching lag)"
  ui_page=$(curl -fsS http://127.0.0.1:9464/ui 2>/dev/null || true)
  if [[ $ui_page == *'<title>m3bridge listener'* ]]; then
    step "the listener's page: http://127.0.0.1:9464/ui (lag per partition over the last hour, throughput, verdicts, latest statuses)"
    ui_note="The listener stopped with this script; to look at its page again, run
  $LISTENER run --config $demo/listener.yaml
and open http://127.0.0.1:9464/ui (its data: http://127.0.0.1:9464/ui/data.json)."
  fi
else
  step "statuses (no listener in this build: every object stays PENDING)"
  $PUBLISHER status --config "$demo/publisher.yaml" --release "$release"
fi

echo
if [[ -n ${ui_note:-} ]] && ! ((down_at_end)); then echo "$ui_note"; fi
if ((down_at_end)); then
  echo "done."
else
  echo "The test bed is still up: eval \"\$(tests/testbed/testbed env)\" to use it,"
  echo "tests/testbed/testbed down to stop it."
fi
