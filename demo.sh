#!/usr/bin/env bash
# demo.sh - the main job end to end on this machine: builds m3bridge, starts
# the real test bed (Kafka, etcd, kube-apiserver) and runs the smoke path:
# signed-in Kafka round trip as the control plane and the listener, and a
# server-side apply as the listener's Kubernetes identity; then shows what
# exists. The test bed stays up for you to explore; stop it with
# `tests/testbed/testbed down`, or pass --down to stop it at the end.
#
# As later work lands this grows into publish -> apply -> status -> lag.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

down_at_end=0
case ${1:-} in
--down) down_at_end=1 ;;
-h | --help)
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
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
if ((down_at_end)); then trap 'tests/testbed/testbed down' EXIT; fi
eval "$(tests/testbed/testbed env)"

step "smoke: Kafka over SASL_SSL with ACLs, transactions, offsets-for-times"
M3B_TESTBED_DIR=$M3B_TESTBED_DIR build/tests/it_test_testbed_kafka

step "smoke: server-side apply as the listener's service account"
M3B_TESTBED_DIR=$M3B_TESTBED_DIR build/tests/it_test_testbed_kube

step "what the listener identity applied (kubectl)"
kubectl get configmaps -A -l app.kubernetes.io/managed-by=m3bridge

step "topics on the broker (kcat, as the control plane over SASL_SSL)"
kcat -b "$M3B_TB_KAFKA_SASL_BOOTSTRAP" -X security.protocol=SASL_SSL \
  -X sasl.mechanisms="$M3B_TB_KAFKA_SASL_MECHANISM" -X sasl.username="$M3B_TB_KAFKA_CONTROL_USER" \
  -X sasl.password="$(cat "$M3B_TB_KAFKA_CONTROL_PASSWORD_FILE")" -X ssl.ca.location="$M3B_TB_KAFKA_CA" \
  -L | grep -E 'topic "m3' || true

step "versions"
build/consumer/m3bridge-listener --version
build/producer/m3bridge-publisher --version
echo
if ((down_at_end)); then
  echo "done."
else
  echo "The test bed is still up: eval \"\$(tests/testbed/testbed env)\" to use it,"
  echo "tests/testbed/testbed down to stop it."
fi
