"""test_publisher.py - m3bridge-publisher against the real test bed broker,
checked with independent peers: confluent-kafka (reading), fastavro
(decoding) and cryptography (verifying signatures), following only
docs/PROTOCOL.md and schemas/.

Needs the test bed (tests/testbed/testbed up); fails, never skips, without it.
"""
import base64
import hashlib
import io
import json
import os
import signal
import struct
import subprocess
import time
import uuid

import fastavro
import pytest
from testbed_py import (PUBLISHER, murmur2_partition, read_testbed_env,
                        watermarks, write_configs)
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

SOURCE = os.environ.get("M3B_SOURCE_DIR", os.getcwd())
PLANE = "pubit"
TOPIC = f"m3.{PLANE}.desired"


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tb):
    d = tmp_path_factory.mktemp("publisher")
    write_configs(tb, d, PLANE, {"publisher.id": f"it-{os.getpid()}"})
    assert oct(os.stat(d / "signing.key").st_mode & 0o777) == "0o600"
    config = d / "publisher.yaml"
    r = run(["topics", "create", "--config", str(config)])
    assert r.returncode == 0, r.stderr
    assert f"m3.{PLANE}.desired" in r.stdout
    return d


def run(args, stdin=None, timeout=120):
    return subprocess.run([PUBLISHER] + args, input=stdin, capture_output=True,
                          text=True, timeout=timeout)


def high_watermarks(tb, topic):
    """{partition: high watermark}, uncommitted records included."""
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": "it-watermarks",
                  "isolation.level": "read_uncommitted"})
    md = c.list_topics(topic, timeout=10)
    marks = {p: watermark(c, topic, p) for p in md.topics[topic].partitions}
    c.close()
    return marks


def watermark(consumer, topic, partition):
    return watermarks(consumer, TopicPartition(topic, partition))[1]


def consume_all(tb, topic, since=None):
    """Every committed record of topic (from the offsets in since, else from
    the beginning), as (partition, offset, key, value, headers), read with
    confluent-kafka over PLAINTEXT."""
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": f"it-reader-{uuid.uuid4()}",
                  "isolation.level": "read_committed",
                  "enable.auto.commit": False,
                  "enable.partition.eof": True})
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, (since or {}).get(p, 0))
              for p in parts])
    out, eof = [], set()
    deadline = time.time() + 60
    while len(eof) < len(parts) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # partition EOF
                eof.add(m.partition())
                continue
            raise RuntimeError(m.error())
        out.append((m.partition(), m.offset(), m.key(), m.value(),
                    dict(m.headers() or [])))
    c.close()
    return out, len(parts)


def schema():
    with open(os.path.join(SOURCE, "schemas", "DesiredState.avsc")) as f:
        return fastavro.parse_schema(json.load(f))


def decode(value):
    """Avro single-object encoding: C3 01, CRC-64-AVRO fingerprint, body."""
    s = schema()
    assert value[:2] == b"\xc3\x01"
    # fastavro's hex is the 8 fingerprint bytes as they appear on the wire
    # (little-endian CRC-64-AVRO)
    want = fastavro.schema.fingerprint(
        fastavro.schema.to_parsing_canonical_form(s), "CRC-64-AVRO")
    assert value[2:10] == bytes.fromhex(want)
    return fastavro.schemaless_reader(io.BytesIO(value[10:]), s)


def verify(pub_pem, key, value, headers):
    """Signing input per docs/PROTOCOL.md."""
    pub = load_pem_public_key(pub_pem)
    assert isinstance(pub, Ed25519PublicKey)
    raw = pub.public_bytes_raw()
    assert headers["m3-kid"].decode() == hashlib.sha256(raw).hexdigest()[:16]
    data = (b"m3bridge-sig-v1\x00" + struct.pack(">I", len(key)) + key +
            struct.pack(">Q", len(value)) + value)
    pub.verify(headers["m3-sig"], data)


SECRET_PLAIN = "s3cr3t-plaintext-" + uuid.uuid4().hex


def release_yaml(suffix):
    return f"""
apiVersion: v1
kind: Namespace
metadata: {{name: shop}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: web-config-{suffix}, namespace: shop}}
data: {{greeting: hello, replicas: "3"}}
---
apiVersion: v1
kind: Secret
metadata: {{name: web-secret-{suffix}, namespace: shop}}
type: Opaque
data:
  password: {base64.b64encode(SECRET_PLAIN.encode()).decode()}
stringData:
  token: {SECRET_PLAIN}-token
---
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web-{suffix}, namespace: shop}}
spec:
  replicas: 2
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers: [{{name: web, image: "nginx:1.27"}}]
---
apiVersion: v1
kind: Service
metadata: {{name: web-{suffix}, namespace: shop}}
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: web-{suffix}, namespace: shop}}
spec:
  parentRefs: [{{name: gateway}}]
  rules: [{{backendRefs: [{{name: web-{suffix}, port: 80}}]}}]
"""


def test_release_of_mixed_kinds(tb, workdir):
    suffix = uuid.uuid4().hex[:8]
    release = f"it-{suffix}"
    since = high_watermarks(tb, TOPIC)
    r = run(["publish", "--config", str(workdir / "publisher.yaml"), "-f", "-",
             "--release", release, "--json"], stdin=release_yaml(suffix))
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["release"] == release
    keys = [o["key"] for o in report["objects"]]
    assert keys == [
        "/v1/Namespace//shop",
        f"/v1/ConfigMap/shop/web-config-{suffix}",
        f"/v1/Secret/shop/web-secret-{suffix}",
        f"apps/v1/Deployment/shop/web-{suffix}",
        f"/v1/Service/shop/web-{suffix}",
        f"gateway.networking.k8s.io/v1/HTTPRoute/shop/web-{suffix}",
    ]
    generations = {o["generation"] for o in report["objects"]}
    assert len(generations) == 1  # one release, one generation

    records, nparts = consume_all(tb, TOPIC, since)
    mine = {}
    pub_pem = (workdir / "signing.pub.pem").read_bytes()
    for part, offset, key, value, headers in records:
        if value is None:
            continue
        event = decode(value)
        if event["release_id"] != release:
            continue
        # the key is the record key, the event key and the manifest's key
        assert event["key"] == key.decode()
        assert event["plane"] == PLANE
        assert event["op"] == "APPLY"
        assert hashlib.sha256(event["manifest"]).digest() == \
            event["manifest_sha256"]
        verify(pub_pem, key, value, headers)
        assert part == murmur2_partition(key, nparts)
        mine[key.decode()] = (part, offset, event)
    assert sorted(mine) == sorted(keys)
    # the report's partitions and offsets are where the records are
    for o in report["objects"]:
        assert (o["partition"], o["offset"]) == mine[o["key"]][:2]
    # the Secret is sealed: no plaintext, stringData folded into data
    secret = json.loads(mine[keys[2]][2]["manifest"])
    assert "stringData" not in secret
    assert set(secret["data"]) == {"password", "token"}
    for v in secret["data"].values():
        assert v.startswith("m3bridge:sealed:v1:")


def test_secret_plaintext_never_in_topic_bytes(tb, workdir):
    since = high_watermarks(tb, TOPIC)
    test_release_of_mixed_kinds(tb, workdir)
    records, _ = consume_all(tb, TOPIC, since)
    blob = b"".join((k or b"") + (v or b"") for _, _, k, v, _ in records)
    assert len(blob) > 0
    for needle in (SECRET_PLAIN.encode(),
                   base64.b64encode(SECRET_PLAIN.encode()),
                   (SECRET_PLAIN + "-token").encode()):
        assert needle not in blob


def test_generations_increase_per_key(tb, workdir):
    suffix = uuid.uuid4().hex[:8]
    doc = (f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: gen-{suffix},"
           f" namespace: shop}}\ndata: {{v: \"1\"}}\n")
    gens = []
    for _ in range(3):
        r = run(["publish", "--config", str(workdir / "publisher.yaml"), "-f",
                 "-", "--json"], stdin=doc)
        assert r.returncode == 0, r.stderr
        gens.append(json.loads(r.stdout)["objects"][0]["generation"])
    assert gens[0] < gens[1] < gens[2]


@pytest.mark.parametrize("doc,needle", [
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: shop}\n",
     "metadata.name"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: Bad_Name, "
     "namespace: shop}\n", "Bad_Name"),
    ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n"
     "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, "
     "namespace: shop}\n", "twice"),
    ("key: [unclosed\n", "-:"),
])
def test_bad_input_publishes_nothing(tb, workdir, doc, needle):
    before = high_watermarks(tb, TOPIC)
    r = run(["publish", "--config", str(workdir / "publisher.yaml"), "-f",
             "-"], stdin=doc)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    # not a single record, not even an aborted one, reached the broker
    assert high_watermarks(tb, TOPIC) == before


def test_unreachable_broker_fails_clearly(workdir):
    r = run(["publish", "--config", str(workdir / "publisher.yaml"),
             "--set", "kafka.bootstrap.servers=127.0.0.1:1",
             "--set", "publish.timeout_ms=3000", "-f", "-"],
            stdin="apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x, "
                  "namespace: shop}\n", timeout=60)
    assert r.returncode != 0
    assert "Kafka" in r.stderr or "kafka" in r.stderr, r.stderr


def test_killed_publish_leaves_nothing_visible(tb, workdir):
    """SIGKILL the publisher in the middle of a large release: a
    read_committed reader never sees any of it."""
    suffix = uuid.uuid4().hex[:8]
    release = f"killed-{suffix}"
    docs = "".join(
        f"---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: bulk-{i}-"
        f"{suffix}, namespace: shop}}\ndata: {{payload: \"{'x' * 512}\"}}\n"
        for i in range(20000))
    manifest = workdir / f"bulk-{suffix}.yaml"
    manifest.write_text(docs)
    # read_uncommitted: the high watermark grows while the transaction is
    # open (a read_committed reader would see the last stable offset)
    admin = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                      "group.id": "it-watermarks",
                      "isolation.level": "read_uncommitted"})

    parts = list(admin.list_topics(TOPIC, timeout=10)
                 .topics[TOPIC].partitions)

    def high_sum():
        return sum(watermark(admin, TOPIC, p) for p in parts)

    start = high_sum()
    since = high_watermarks(tb, TOPIC)
    proc = subprocess.Popen(
        [PUBLISHER, "publish", "--config", str(workdir / "publisher.yaml"),
         "-f", str(manifest), "--release", release],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while high_sum() <= start and time.time() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert high_sum() > start, "the publisher never started producing"
    admin.close()

    # a new publisher with the same id fences and aborts the open transaction
    r = run(["publish", "--config", str(workdir / "publisher.yaml"), "-f", "-",
             "--release", f"after-{suffix}"],
            stdin=f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: after-"
                  f"{suffix}, namespace: shop}}\n")
    assert r.returncode == 0, r.stderr
    records, _ = consume_all(tb, TOPIC, since)
    releases = [decode(v)["release_id"] for _, _, _, v, _ in records if v]
    assert f"after-{suffix}" in releases
    assert release not in releases


@pytest.mark.parametrize("settings,needle", [
    (["--set", "publish.max_manifest_bytes=1024"], "max_manifest_bytes"),
    (["--set", "signing.key_file=/nonexistent/signing.key"],
     "/nonexistent/signing.key"),
    # an X25519 sealing key is not an Ed25519 signing key
    (["--set", "signing.key_file={workdir}/sealing.key"], "sealing.key: "
     "private key is X25519, expected ED25519"),
    (["--set", "kafka.sasl.password=hunter2"], "kafka.sasl.password_file"),
])
def test_bad_settings_publish_nothing(tb, workdir, settings, needle):
    settings = [s.format(workdir=workdir) for s in settings]
    before = high_watermarks(tb, TOPIC)
    doc = ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big, namespace: "
           "shop}\ndata: {blob: \"" + "x" * 2048 + "\"}\n")
    r = run(["publish", "--config", str(workdir / "publisher.yaml"), "-f",
             "-"] + settings, stdin=doc)
    assert r.returncode != 0
    assert needle in r.stderr, r.stderr
    assert "hunter2" not in r.stderr
    assert high_watermarks(tb, TOPIC) == before
