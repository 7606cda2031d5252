#!/bin/sh
# make_seeds.sh DIR [TOOL]: writes a seed corpus for fuzz_decode into DIR:
# one valid encoding of each event record (made with m3b_contract_tool) and
# a few object keys. TOOL defaults to the tool of the first of the ci,
# release and default builds that has one. The fuzz build cannot provide it:
# its library is instrumented for libFuzzer and only the fuzz_* targets link.
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$here/../..
tool=${2:-}
if [ -z "$tool" ]; then
  for build in build/ci build/release build; do
    if [ -x "$root/$build/tests/interop/m3b_contract_tool" ]; then
      tool=$root/$build/tests/interop/m3b_contract_tool
      break
    fi
  done
fi
if [ -z "$tool" ] || [ ! -x "$tool" ]; then
  echo "make_seeds.sh: no m3b_contract_tool${tool:+ at $tool}; build one, e.g." >&2
  echo "  cmake --preset release && cmake --build build/release --target m3b_contract_tool" >&2
  exit 1
fi
mkdir -p "$dir"
sha='"0123456789abcdef0123456789abcdef"'
echo '{"plane":"eu1","key":"apps/v1/Deployment/shop/web","generation":7,"op":"APPLY","manifest":"{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":\"shop\"}}","manifest_sha256":'"$sha"',"release_id":"r1","issued_at":1700000000000,"correlation_id":"c"}' \
  | "$tool" encode DesiredState > "$dir/desired.bin"
echo '{"plane":"eu1","key":"/v1/Namespace//shop","generation":3,"phase":"REJECTED","reason":"SIG_INVALID","message":"bad","observed_uid":null,"observed_resource_version":"12","readiness":"READY","readiness_detail":"1/1","source_partition":2,"source_offset":99,"listener_id":"l0","applied_at":5,"apply_latency_ms":12}' \
  | "$tool" encode Status > "$dir/status.bin"
echo '{"plane":"eu1","listener_id":"l0","version":"0.1.0","state":"RUNNING","sent_at":1,"partitions":[{"topic":"m3.eu1.desired","partition":0,"committed_offset":5,"high_watermark":9,"lag_messages":4,"lag_ms":100}]}' \
  | "$tool" encode Heartbeat > "$dir/heartbeat.bin"
echo '{"plane":"eu1","listener_id":"l0","public_key":"abcdefghabcdefghabcdefghabcdefgh","namespaces":["shop","pay"],"capabilities":["sealed-secrets"],"version":"0.1.0","registered_at":1}' \
  | "$tool" encode Registration > "$dir/registration.bin"
printf 'apps/v1/Deployment/shop/web' > "$dir/key1"
printf '/v1/Namespace//shop' > "$dir/key2"
printf 'rbac.authorization.k8s.io/v1/ClusterRole//system:x' > "$dir/key3"
# the fuzz target's own test records (same canonical form as in fuzz_decode.c)
t=$(mktemp) p=$(mktemp)
echo '{"type":"record","name":"T","namespace":"t","fields":[{"name":"s","type":"string"},{"name":"b","type":"bytes"},{"name":"e","type":{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}},{"name":"a","type":{"type":"array","items":"long"}},{"name":"m","type":{"type":"map","values":["null","double","string"]}},{"name":"f","type":"float"},{"name":"i","type":"int"},{"name":"x","type":{"type":"fixed","name":"X","size":4}},{"name":"ok","type":"boolean"}]}' > "$t"
echo '{"type":"record","name":"P","namespace":"t","fields":[{"name":"v","type":["null","int","long","string"]},{"name":"next","type":["null","P"]}]}' > "$p"
echo '{"s":"h\u00e9","b":"\u00ff\u0000","e":"B","a":[1,-2,300000],"m":{"k":1.5,"n":null,"s":"v"},"f":0.25,"i":-7,"x":"abcd","ok":true}' \
  | "$tool" encode t.T --current "$t" > "$dir/t.bin"
echo '{"v":5,"next":{"v":"x","next":{"v":null,"next":null}}}' \
  | "$tool" encode t.P --current "$p" > "$dir/p.bin"
rm -f "$t" "$p"
echo "seeds in $dir"
