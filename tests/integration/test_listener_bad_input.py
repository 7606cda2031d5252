"""test_listener_bad_input.py - every bad input of DESIGN.md section 10 gets
a specific answer and loses nothing: the original record (key, value,
headers) in m3.robust.dlq with m3-error-reason, m3-error-message,
m3-source-topic, -partition, -offset and m3-listener-id; a REJECTED or
FAILED status with the same reason when the record key is an object key;
a log line naming the reason. The good event produced right after each
bad one, on the same partition, is applied, and the group's offsets reach
the end: no bad input blocks a partition or stops the listener.

The records are produced raw with confluent-kafka as the control plane's
principal (the publisher refuses to write most of them) and signed here
from docs/PROTOCOL.md.

Real broker, real kube-apiserver (tests/testbed); plane `robust`,
namespaces m3-rb-a, m3-rb-b, m3-rb-c. Fails, never skips, without them.
"""
import hashlib
import time

from robust_py import (DESIRED, DLQ, MANAGED, NAMESPACES, PARTITIONS, PLANE,
                       Signer, Statuses, Tail, bed_fixture, cm_key, configmap,
                       encode_desired, group_caught_up, murmur2_partition,
                       produce_raw, wait_for)

MAX_MANIFEST = 8192
bed = bed_fixture("bad", {"publish.max_manifest_bytes": MAX_MANIFEST})
NS = NAMESPACES[0]


def bad_records(bed):
    """[(what, key bytes or None, value, headers, reason, phase)]: phase
    None when the record key is not an object key (no status then)."""
    gen = time.time_ns() // 1000
    out = []

    def add(what, key, value, headers, reason, phase="REJECTED"):
        out.append((what, key.encode() if isinstance(key, str) else key,
                    value, headers, reason, phase))

    def signed(what, key, value, reason, phase="REJECTED", signer=None):
        k = key.encode()
        add(what, k, value, (signer or bed.signer).headers(k, value),
            reason, phase)

    def event(name, manifest=None, **kw):
        key = kw.pop("key", cm_key(NS, name))
        plane = kw.pop("plane", PLANE)
        m = manifest if manifest is not None else configmap(NS, name,
                                                            {"a": "b"})
        return key, encode_desired(plane, key, gen, m, **kw)

    key, value = event(bed.name("unsigned"))
    add("unsigned", key, value, [], "SIG_MISSING")

    key, value = event(bed.name("tampered"))
    headers = bed.signer.headers(key.encode(), value)
    add("tampered", key, value[:-1] + bytes([value[-1] ^ 1]), headers,
        "SIG_INVALID")

    key, value = event(bed.name("unknown-key"))
    signed("unknown key", key, value, "SIG_UNKNOWN_KEY",
           signer=Signer.generate())

    key, value = event(bed.name("bad-sig"))
    add("malformed signature", key, value,
        [("m3-sig", b"\x01" * 10), ("m3-kid", bed.signer.kid)],
        "SIG_MALFORMED")

    key, value = event(bed.name("plane"), plane="another-plane")
    signed("wrong plane", key, value, "PLANE_MISMATCH")

    name = bed.name("unbound")
    key, value = event(name, configmap("default", name, {"a": "b"}),
                       key=cm_key("default", name))
    signed("namespace not bound", key, value, "NAMESPACE_NOT_BOUND")

    name = bed.name("cluster")
    key = f"rbac.authorization.k8s.io/v1/ClusterRole//{name}"
    key, value = event(name, {"apiVersion": "rbac.authorization.k8s.io/v1",
                              "kind": "ClusterRole", "metadata": {"name": name},
                              "rules": []}, key=key)
    signed("cluster-scoped kind not allowed", key, value, "KIND_NOT_ALLOWED")

    name = bed.name("mismatch")
    key, value = event(name, configmap(NS, bed.name("other"), {"a": "b"}))
    signed("manifest names another object", key, value, "KEY_MISMATCH")

    _, value = event(bed.name("event-key"))
    signed("record key differs from the event key",
           cm_key(NS, bed.name("record-key")), value, "KEY_MISMATCH")

    key = cm_key(NS, bed.name("not-avro"))
    signed("undecodable: not Avro", key, b'{"kind": "ConfigMap"}',
           "BAD_MAGIC")
    key = cm_key(NS, bed.name("unknown-schema"))
    signed("undecodable: unknown schema", key,
           b"\xc3\x01" + b"\x5a" * 8 + b"\x00" * 20, "UNKNOWN_SCHEMA")
    key, value = event(bed.name("truncated"))
    signed("undecodable: truncated", key, value[:40], "TRUNCATED")

    name = bed.name("oversized")
    key, value = event(name, configmap(NS, name,
                                       {"big": "x" * (2 * MAX_MANIFEST)}))
    signed("oversized manifest", key, value, "LIMIT")

    key, value = event(bed.name("hash"), sha256=hashlib.sha256(b"x").digest())
    signed("manifest does not match its sha-256", key, value, "HASH_MISMATCH")

    key, value = event(bed.name("json"), b"this is not JSON")
    signed("manifest is not JSON", key, value, "BAD_MANIFEST")

    name = bed.name("no-namespace")
    key, value = event(name, {"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": name}},
                       key=f"/v1/ConfigMap//{name}")
    # without a namespace the key claims a cluster-scoped kind
    signed("namespaced kind without a namespace", key, value,
           "KIND_NOT_ALLOWED")

    name = bed.name("plain-secret")
    key, value = event(name, {"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": name, "namespace": NS},
                              "data": {"password": "czNjcmV0IQ=="}},
                       key=f"/v1/Secret/{NS}/{name}")
    signed("Secret data not sealed", key, value, "SEAL_MALFORMED")

    name = bed.name("invalid")
    key, value = event(name, configmap(NS, name, {"not a valid key!": "x"}))
    signed("invalid object (apiserver 422)", key, value, "KUBE_INVALID",
           "FAILED")

    key, value = event(bed.name("any"))
    signed("record key is not an object key", "not an object key", value,
           "BAD_KEY", None)

    # as large as the control plane's producer lets a record be
    # (message.max.bytes 1000000 counts key, value and headers): the dlq
    # copy with its error headers is larger than that
    name = bed.name("largest")
    key = cm_key(NS, name)
    _, small = event(name, configmap(NS, name, {"big": ""}))
    headers_len = sum(len(n) + len(v) for n, v in
                      bed.signer.headers(key.encode(), small))
    size = 999800  # and the few header overheads librdkafka counts
    pad = size - len(key) - headers_len - len(small)
    for _ in range(3):  # the Avro length prefix grows with the manifest
        key, value = event(name, configmap(NS, name, {"big": "x" * pad}))
        pad -= len(key) + len(value) + headers_len - size
    assert len(key) + len(value) + headers_len == size
    signed("largest record Kafka carries, manifest over the limit", key,
           value, "LIMIT")
    return out


def good_name(bed, partition, i):
    """A ConfigMap name whose key the publisher would put in partition."""
    j = 0
    while True:
        name = bed.name(f"ok{i}-{j}")
        if murmur2_partition(cm_key(NS, name).encode(), PARTITIONS) == partition:
            return name
        j += 1


def test_bad_input_is_answered_and_the_rest_applied(bed):
    bed.start_group_at_end()
    statuses = Statuses(bed.tb)
    dlq = Tail(bed.tb, DLQ)
    listener = bed.listener()
    try:
        bad = bad_records(bed)
        records, goods = [], []
        for i, (_, key, value, headers, _, _) in enumerate(bad):
            records.append((key, value, headers))
            # the next event of the same partition is a good one
            name = good_name(bed, murmur2_partition(key, PARTITIONS), i)
            gkey = cm_key(NS, name)
            gvalue = encode_desired(PLANE, gkey, time.time_ns() // 1000,
                                    configmap(NS, name, {"after": str(i)}))
            records.append(bed.signed(gkey, gvalue))
            goods.append((gkey, name))
        where = produce_raw(bed.producer, records)
        bad_at, good_at = where[0::2], where[1::2]
        for (b, g) in zip(bad_at, good_at):
            assert b[0] == g[0], "murmur2 here and in librdkafka disagree"

        # every good event is applied
        got = statuses.wait_sources(good_at, 90, "the good events' statuses")
        for at, (gkey, name) in zip(good_at, goods):
            assert got[at]["phase"] == "APPLIED", got[at]
            obj = bed.kube.get(NS, name)
            assert obj and obj["metadata"]["labels"][MANAGED] == "m3bridge"

        # every bad one: a status (object keys only) ...
        with_status = [at for at, b in zip(bad_at, bad) if b[5]]
        got = statuses.wait_sources(with_status, 60, "the bad events' statuses")
        for at, (what, key, _, _, reason, phase) in zip(bad_at, bad):
            if phase is None:
                assert at not in got, (what, got.get(at))
                continue
            s = got[at]
            assert (s["key"].encode(), s["phase"], s["reason"]) == \
                (key, phase, reason), (what, s)
            assert s["message"] and s["listener_id"] == listener.id, s

        # ... and the original record in the dlq with the error headers
        def dlq_by_source():
            dlq.poll()
            return {(int(h["m3-source-partition"]),
                     int(h["m3-source-offset"])): (k, v, h)
                    for k, v, h in dlq.records
                    if h.get("m3-source-topic") == DESIRED.encode()}
        found = wait_for(lambda: set(bad_at) <= set(dlq_by_source()) and
                         dlq_by_source(), 60, "every bad record in the dlq")
        for at, (what, key, value, headers, reason, _) in zip(bad_at, bad):
            k, v, h = found[at]
            if "largest" in what:  # no room for the value with the headers
                assert (k, v) == (key, None), what
                assert h["m3-dlq-value-omitted"] == str(len(value)).encode()
            else:
                assert (k, v) == (key, value), what
                assert "m3-dlq-value-omitted" not in h, what
            assert h["m3-error-reason"] == reason.encode(), (what, h)
            assert h["m3-error-message"], what
            assert h["m3-listener-id"] == listener.id.encode(), what
            for name, hv in headers:
                assert h[name] == hv, (what, name)
        goods_in_dlq = set(good_at) & set(found)
        assert not goods_in_dlq, goods_in_dlq

        log = listener.text()
        for what, _, _, _, reason, _ in bad:
            assert reason in log, f"{what}: no log line names {reason}"
        for secret in ("czNjcmV0IQ==", "s3cret"):
            assert secret not in log
        # nothing of them reached the apiserver
        assert bed.kube.get("default", bed.name("unbound")) is None
        status, _ = bed.kube.request(
            "GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/" +
            bed.name("cluster"), ok=(200, 404))
        assert status == 404
        for what in ("invalid", "plain-secret", "mismatch", "other"):
            assert bed.kube.get(NS, bed.name(what)) is None, what
        assert bed.kube.get(NS, bed.name("plain-secret"), "secrets") is None
        wait_for(lambda: group_caught_up(bed.tb), 60,
                 "the group's offsets to reach the end")
        assert listener.alive(), listener.tail()
    finally:
        rc, _ = listener.stop()
        statuses.close()
        dlq.close()
    assert rc == 0, listener.tail()
