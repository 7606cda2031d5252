# bench/lib.sh - what the bench scripts share; sourced, not run.
#
#   bench_init NAME          say/die prefixed with NAME; the test bed's env
#                            (fails saying how to start it); KUBECTL, kc
#   bench_need EXE...        fails naming the build command when one is missing
#   bench_python MODULE...   PY: the test bed's python, checked for modules
#   bench_publisher_config WORK PLANE
#                            keys in WORK, WORK/trusted, WORK/publisher.yaml
#                            for PLANE as the control principal (SASL_SSL)
#   bench_listener_principal WORK PLANE
#                            the plane's topics, ACLs and listener principal,
#                            its password in WORK/listener.password
#   bench_listener_kafka WORK PLANE
#                            prints the kafka: block of a listener.yaml for
#                            that principal
#   bench_namespaces NS...   the namespaces, each with a Role letting the
#                            listener's service account write everything
#   bench_empty NS           every ConfigMap of NS deleted (one request)
#   machine                  a line naming the machine, for reports
#
# Callers cd to the repository and set PUBLISHER first.

say() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
die() { printf '%s: %s\n' "${BENCH_NAME:-bench}" "$*" >&2; exit 1; }

bench_init() {
  BENCH_NAME=$1
  tests/testbed/testbed status >/dev/null || die "the test bed is not up: tests/testbed/testbed up"
  eval "$(tests/testbed/testbed env)"
  KUBECTL=$M3B_TB_KUBECTL
  kc=("$KUBECTL" --kubeconfig "$M3B_TB_KUBE_ADMIN_KUBECONFIG")
}

machine() {
  echo "machine: $(uname -srm), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs, $(free -g | awk '/Mem:/ {print $2}') GiB"
}

bench_need() {
  local exe
  for exe in "$@"; do
    [[ -x $exe ]] || die "$exe missing: cmake --preset release && cmake --build --preset release"
  done
}

bench_python() {
  local imports
  PY=${M3B_BENCH_PYTHON:-$M3B_PYTHON}
  imports=$(IFS=,; echo "$*")
  "$PY" -c "import $imports" 2>/dev/null ||
    die "$PY lacks one of $*: run tests/testbed/install-deps (pinned in tests/testbed/requirements.txt)"
}

bench_publisher_config() { # WORK PLANE
  "$PUBLISHER" keygen --out "$1" >/dev/null
  mkdir -p "$1/trusted" && cp "$1/signing.pub.pem" "$1/trusted/"
  cat >"$1/publisher.yaml" <<EOF
plane: $2
signing.key_file: $1/signing.key
publish.timeout_ms: 300000
topics: {replication_factor: 1, partitions: 6}
kafka:
  bootstrap.servers: $M3B_TB_KAFKA_SASL_BOOTSTRAP
  security.protocol: SASL_SSL
  sasl.mechanisms: $M3B_TB_KAFKA_SASL_MECHANISM
  sasl.username: $M3B_TB_KAFKA_CONTROL_USER
  sasl.password_file: $M3B_TB_KAFKA_CONTROL_PASSWORD_FILE
  ssl.ca.location: $M3B_TB_KAFKA_CA
EOF
}

bench_listener_principal() { # WORK PLANE
  openssl rand -hex 24 >"$1/listener.password"
  "$PY" bench/bench_listener.py provision --bootstrap "$M3B_TB_KAFKA_BOOTSTRAP" --plane "$2" \
    --password-file "$1/listener.password" >/dev/null
}

bench_listener_kafka() { # WORK PLANE
  cat <<EOF
kafka:
  bootstrap.servers: $M3B_TB_KAFKA_SASL_BOOTSTRAP
  security.protocol: SASL_SSL
  sasl.mechanisms: $M3B_TB_KAFKA_SASL_MECHANISM
  sasl.username: m3-listener-$2
  sasl.password_file: $1/listener.password
  ssl.ca.location: $M3B_TB_KAFKA_CA
EOF
}

bench_namespaces() { # NS...
  local ns
  for ns in "$@"; do
    cat <<EOF
---
apiVersion: v1
kind: Namespace
metadata: {name: $ns}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: m3bridge-listener, namespace: $ns}
rules:
- {apiGroups: ["*"], resources: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: m3bridge-listener, namespace: $ns}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: m3bridge-listener}
subjects:
- {kind: ServiceAccount, name: m3bridge-listener, namespace: m3bridge-system}
EOF
  done | "${kc[@]}" apply -f - >/dev/null
}

bench_empty() { # NS: one deletecollection (kubectl deletes one at a time)
  local out code
  out=$(mktemp)
  code=$(curl -sS -o "$out" -w '%{http_code}' --cacert "$M3B_TB_KUBE_CA" \
    -H "Authorization: Bearer $(cat "$M3B_TB_KUBE_ADMIN_TOKEN_FILE")" \
    -X DELETE "$M3B_TB_KUBE_SERVER/api/v1/namespaces/$1/configmaps")
  [[ $code == 200 ]] || { cat "$out" >&2; rm -f "$out"; die "emptying $1: HTTP $code"; }
  rm -f "$out"
}
