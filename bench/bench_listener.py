#!/usr/bin/env python3
"""bench_listener.py - the Python half of bench/bench_listener.sh.

Subcommands (each prints what the shell script needs on stdout, one JSON
object or plain values; diagnostics on stderr):

  provision   a SCRAM user and the ACLs of tests/testbed/kafka_admin.py
              for a fresh bench plane (over the PLAINTEXT admin listener)
  objects     the benchmark's ConfigMaps: a YAML release for the publisher
              and the very objects the listener would write (the manifest
              plus its managed-by label and m3bridge.io annotations) as
              JSON lines for the baselines
  wait-applied  polls the listener's /metrics until APPLIED reaches a count
  python-baseline  what a user would script instead of the listener: a
              confluent-kafka consumer that server-side-applies each
              message with the official kubernetes client, one at a time
  stage-to-desired  re-produces signed events from a staging topic to the
              plane's desired topic at a fixed rate (for the latency run)
  latency     joins those events with the listener's statuses
  statuses    the APPLIED statuses of a set of keys, with applied-at span

Only the test bed's own Kafka and apiserver are touched.
"""
import argparse
import hashlib
import io
import json
import os
import socket
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def die(msg):
    print(f"bench_listener.py: {msg}", file=sys.stderr)
    sys.exit(1)


# --- objects -----------------------------------------------------------------

def configmap(name, ns, i, variant=1):
    """A ConfigMap of about 1 KB of data: an application's settings."""
    data = {f"setting-{j:02d}.properties":
            f"key{j}=value-{i}-{j}-v{variant}-"
            + "abcdefghijklmnopqrstuvwxyz0123456789" * 2
            for j in range(12)}
    md = {"name": name, "labels": {"app": name.rsplit("-", 1)[0],
                                   "tier": "config", "team": "payments"}}
    if ns:
        md["namespace"] = ns
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md,
            "data": data}


def marked(obj, plane, ns, generation, release):
    """obj as the listener writes it (applier_kube.c mark_managed)."""
    manifest = json.dumps(obj, separators=(",", ":")).encode()
    out = json.loads(manifest)
    md = out["metadata"]
    md.setdefault("labels", {})["app.kubernetes.io/managed-by"] = "m3bridge"
    md.setdefault("annotations", {}).update({
        "m3bridge.io/plane": plane,
        "m3bridge.io/key": f"/v1/ConfigMap/{ns}/{md['name']}",
        "m3bridge.io/generation": str(generation),
        "m3bridge.io/manifest-sha256": hashlib.sha256(manifest).hexdigest(),
        "m3bridge.io/release-id": release,
    })
    md.pop("namespace", None)  # the baselines choose their namespace
    return out


def cmd_objects(a):
    generation = int(time.time() * 1e6)
    release = f"bench-{a.prefix}-{generation}"
    if a.yaml:
        with open(a.yaml, "w") as f:
            for i in range(a.count):
                # JSON is YAML; one document per object
                f.write("---\n")
                f.write(json.dumps(configmap(f"{a.prefix}-{i}", a.namespace, i,
                                             a.variant)))
                f.write("\n")
    if a.jsonl:
        with open(a.jsonl, "w") as f:
            for i in range(a.count):
                obj = configmap(f"{a.prefix}-{i}", a.namespace, i, a.variant)
                f.write(json.dumps(marked(obj, a.plane, a.namespace, generation,
                                          release), separators=(",", ":")))
                f.write("\n")


# --- Kafka identities -------------------------------------------------------

def cmd_provision(a):
    sys.path.insert(0, os.path.join(ROOT, "tests", "testbed"))
    import kafka_admin  # the test bed's own ACL definitions
    from confluent_kafka.admin import (AdminClient, ScramCredentialInfo,
                                       ScramMechanism,
                                       UserScramCredentialUpsertion)
    client = AdminClient({"bootstrap.servers": a.bootstrap})
    user = f"m3-listener-{a.plane}"
    password = kafka_admin.read_secret(a.password_file)
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    kafka_admin.wait_all(client.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, info, password)]), "SCRAM user")
    kafka_admin.wait_all(client.create_acls(
        kafka_admin.listener_acls(a.plane, user)), "ACL")
    print(user)


# --- the listener's metrics --------------------------------------------------

def applied_count(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if (line.startswith("m3bridge_events_total{")
                and 'phase="APPLIED"' in line):
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def cmd_wait_applied(a):
    deadline = time.time() + a.timeout
    last = -1
    while True:
        try:
            n = applied_count(a.url)
        except OSError as e:
            die(f"{a.url}: {e}")
        if n >= a.count:
            print(f"{time.time():.3f} {n}")
            return
        if time.time() > deadline:
            die(f"timed out after {a.timeout}s: {n} of {a.count} APPLIED")
        if n != last:
            last = n
        time.sleep(a.interval)


def cmd_free_port(_a):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    print(s.getsockname()[1])
    s.close()


# --- Kafka helpers -----------------------------------------------------------

def kafka_conf(a):
    conf = {"bootstrap.servers": a.bootstrap}
    if a.sasl_user:
        conf.update({"security.protocol": "SASL_SSL",
                     "sasl.mechanisms": "SCRAM-SHA-512",
                     "sasl.username": a.sasl_user,
                     "sasl.password": open(a.sasl_password_file).read().strip(),
                     "ssl.ca.location": a.ca})
    return conf


def read_all(conf, topic, group):
    """Every committed record of topic, from the start to the end."""
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer(dict(conf, **{"group.id": group, "enable.auto.commit": False,
                               "isolation.level": "read_committed",
                               "enable.partition.eof": True}))
    md = c.list_topics(topic, timeout=30).topics[topic]
    if md.error:
        die(f"{topic}: {md.error}")
    parts = [TopicPartition(topic, p, -2) for p in md.partitions]
    c.assign(parts)
    out, eof = [], set()
    deadline = time.time() + 120
    while len(eof) < len(parts):
        m = c.poll(1.0)
        if time.time() > deadline:
            die(f"reading {topic} timed out")
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # _PARTITION_EOF
                eof.add(m.partition())
                continue
            die(f"{topic}: {m.error()}")
        out.append(m)
    c.close()
    return out


def status_schema():
    import fastavro
    with open(os.path.join(ROOT, "schemas", "Status.avsc")) as f:
        return fastavro.parse_schema(json.load(f))


def decode_status(value, schema):
    import fastavro
    if value is None or value[:2] != b"\xc3\x01":
        return None
    try:
        return fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
    except Exception:  # noqa: BLE001 - heartbeats use another schema
        return None


def applied_statuses(conf, topic, prefix):
    """key -> (applied_at ms, status record timestamp ms) of the first
    APPLIED status of each key that starts with prefix."""
    schema = status_schema()
    out = {}
    for m in read_all(conf, topic, "bench-status-reader"):
        key = m.key().decode() if m.key() else ""
        if not key.startswith(prefix):
            continue
        s = decode_status(m.value(), schema)
        if not s or s["phase"] != "APPLIED" or key in out:
            continue
        at = s["applied_at"]
        if hasattr(at, "timestamp"):
            at = int(at.timestamp() * 1000)
        out[key] = (at, m.timestamp()[1])
    return out


def cmd_statuses(a):
    st = applied_statuses(kafka_conf(a), a.topic, a.prefix)
    if len(st) < a.count:
        die(f"{len(st)} of {a.count} keys under {a.prefix} have an APPLIED "
            "status")
    at = sorted(v[0] for v in st.values())
    span = (at[-1] - at[0]) / 1000.0
    print(json.dumps({"applied": len(st), "first_ms": at[0], "last_ms": at[-1],
                      "span_s": span,
                      "objects_per_s": (len(st) - 1) / span if span else 0}))


# --- latency -----------------------------------------------------------------

def cmd_stage_to_desired(a):
    """Re-produces the staged, signed events at a.rate per second. The
    signature covers key and value (which names the plane), not the topic,
    so the copy is exactly what the publisher would have produced."""
    from confluent_kafka import Producer
    conf = kafka_conf(a)
    staged = read_all(conf, a.source, "bench-stage-reader")
    if len(staged) != a.count:
        die(f"{a.source}: {len(staged)} records, expected {a.count}")
    stamps = {}

    def delivered(err, msg):
        if err:
            die(f"produce: {err}")
        stamps[msg.key().decode()] = msg.timestamp()[1]

    p = Producer(dict(conf, **{"linger.ms": 0, "acks": "all",
                               "enable.idempotence": True}))
    t0 = time.time()
    for i, m in enumerate(staged):
        due = t0 + i / a.rate
        while True:
            now = time.time()
            if now >= due:
                break
            p.poll(min(due - now, 0.01))
        p.produce(a.target, key=m.key(), value=m.value(),
                  headers=m.headers(), partition=m.partition(),
                  on_delivery=delivered)
        p.poll(0)
    p.flush(60)
    took = time.time() - t0
    if len(stamps) != a.count:
        die(f"{len(stamps)} of {a.count} delivered")
    with open(a.out, "w") as f:
        json.dump(stamps, f)
    print(json.dumps({"produced": len(stamps), "seconds": took,
                      "rate": len(stamps) / took}))


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1,
                             int(p / 100.0 * len(sorted_values)))]


def cmd_latency(a):
    stamps = json.load(open(a.stamps))
    st = applied_statuses(kafka_conf(a), a.topic, a.prefix)
    missing = [k for k in stamps if k not in st]
    if missing:
        die(f"{len(missing)} of {len(stamps)} events have no APPLIED status "
            f"(first: {missing[0]})")
    lat = sorted(st[k][0] - stamps[k] for k in stamps)
    print(json.dumps({"events": len(lat), "p50_ms": pct(lat, 50),
                      "p90_ms": pct(lat, 90), "p99_ms": pct(lat, 99),
                      "max_ms": lat[-1], "min_ms": lat[0]}))


# --- the Python baseline -----------------------------------------------------

def cmd_python_baseline(a):
    """A user's script: consume, json.loads, server-side apply, next."""
    from confluent_kafka import Consumer
    from kubernetes import client, config
    config.load_kube_config(config_file=a.kubeconfig)
    core = client.CoreV1Api()
    c = Consumer(dict(kafka_conf(a), **{"group.id": a.group,
                                        "auto.offset.reset": "earliest",
                                        "enable.auto.commit": True}))
    c.subscribe([a.topic])
    done, t0, deadline = 0, None, time.time() + a.timeout
    while done < a.count:
        if time.time() > deadline:
            die(f"timed out: {done} of {a.count} applied")
        m = c.poll(1.0)
        if m is None:
            continue
        if m.error():
            die(f"{a.topic}: {m.error()}")
        if t0 is None:
            t0 = time.time()  # the clock starts at the first message
        obj = json.loads(m.value())
        core.patch_namespaced_config_map(
            obj["metadata"]["name"], a.namespace, obj,
            field_manager="m3bridge", force=True,
            _content_type="application/apply-patch+yaml")
        done += 1
    took = time.time() - t0
    c.close()
    print(json.dumps({"objects": done, "seconds": took,
                      "objects_per_s": done / took}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def kafka_args(p):
        p.add_argument("--bootstrap", required=True)
        p.add_argument("--sasl-user")
        p.add_argument("--sasl-password-file")
        p.add_argument("--ca")

    p = sub.add_parser("provision")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--plane", required=True)
    p.add_argument("--password-file", required=True)
    p.set_defaults(fn=cmd_provision)

    p = sub.add_parser("objects")
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--plane", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--yaml")
    p.add_argument("--jsonl")
    p.add_argument("--variant", type=int, default=1,
                   help="changes the data: an update of the same objects")
    p.set_defaults(fn=cmd_objects)

    p = sub.add_parser("wait-applied")
    p.add_argument("--url", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=600)
    p.add_argument("--interval", type=float, default=0.05)
    p.set_defaults(fn=cmd_wait_applied)

    p = sub.add_parser("free-port")
    p.set_defaults(fn=cmd_free_port)

    p = sub.add_parser("statuses")
    kafka_args(p)
    p.add_argument("--topic", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--count", type=int, required=True)
    p.set_defaults(fn=cmd_statuses)

    p = sub.add_parser("stage-to-desired")
    kafka_args(p)
    p.add_argument("--source", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--rate", type=float, required=True)
    p.add_argument("--out", required=True)
    p.set_defaults(fn=cmd_stage_to_desired)

    p = sub.add_parser("latency")
    kafka_args(p)
    p.add_argument("--topic", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--stamps", required=True)
    p.set_defaults(fn=cmd_latency)

    p = sub.add_parser("python-baseline")
    kafka_args(p)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--kubeconfig", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--timeout", type=float, default=1800)
    p.set_defaults(fn=cmd_python_baseline)

    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
