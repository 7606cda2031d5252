"""robust_py.py - what the listener correctness tests (test_listener_*.py,
plane `robust`, namespaces m3-rb-a, m3-rb-b, m3-rb-c) share.

- Bed: a work folder with keys and configurations for the publisher (as
  the m3-control principal) and the listener (as m3-listener-robust, with
  the test bed's listener service account), the topics, and the group
  offsets moved to the end of the desired topic so that each test's
  listener sees only that test's events.
- Listener: one `m3bridge-listener run` process (SIGTERM or SIGKILL).
- Raw records signed here, independently of the C library, with
  `cryptography` and `fastavro` from docs/PROTOCOL.md (Avro single-object
  encoding; Ed25519 over "m3bridge-sig-v1\\0" || u32be(len key) || key ||
  u64be(len value) || value; headers m3-sig and m3-kid), produced with
  confluent-kafka: the publisher refuses to write most bad input.
- Tail: an incremental reader of the status and dlq topics from the
  offsets they had when the test began; statuses decoded with fastavro.
- Kube: the apiserver's REST API with the admin token (list, create,
  delete, watch), so that checks do not go through the code under test.

Tests fail, never skip, when the test bed is not up.
"""
import hashlib
import http.client
import io
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

import fastavro
import pytest
from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding, PublicFormat, load_pem_private_key)
from fastavro.schema import fingerprint, to_parsing_canonical_form

# murmur2_partition: for the tests importing it from here
from testbed_py import (BRISK, LISTENER, SOURCE, control_client,  # noqa
                        murmur2_partition, publisher, read_testbed_env,
                        require_programs, wait_for, watermarks, write_configs)

PLANE = "robust"
DESIRED = f"m3.{PLANE}.desired"
STATUS = f"m3.{PLANE}.status"
DLQ = f"m3.{PLANE}.dlq"
GROUP = f"m3bridge-{PLANE}"
NAMESPACES = ("m3-rb-a", "m3-rb-b", "m3-rb-c")
PARTITIONS = 6  # topics.partitions: spread over two listeners in one group
MANAGED = "app.kubernetes.io/managed-by"
ANN_GENERATION = "m3bridge.io/generation"
ANN_PLANE = "m3bridge.io/plane"
TERMINAL = ("REJECTED", "FAILED")


def fail(message):
    pytest.fail(message, pytrace=False)


# --- Avro and signatures, from docs/PROTOCOL.md --------------------------

def _schema(name):
    with open(Path(SOURCE) / "schemas" / f"{name}.avsc") as f:
        return fastavro.parse_schema(json.load(f))


DESIRED_SCHEMA = _schema("DesiredState")
STATUS_SCHEMA = _schema("Status")


def _fingerprint(schema):
    # CRC-64-AVRO, little-endian as it appears after C3 01
    return bytes.fromhex(
        fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


HEARTBEAT_SCHEMA = _schema("Heartbeat")
STATUS_PREFIX = b"\xc3\x01" + _fingerprint(STATUS_SCHEMA)
HEARTBEAT_PREFIX = b"\xc3\x01" + _fingerprint(HEARTBEAT_SCHEMA)


def encode_desired(plane, key, generation, manifest, op="APPLY",
                   release="raw", sha256=None):
    """A DesiredState value; manifest is bytes (or a dict, as JSON)."""
    if isinstance(manifest, dict):
        manifest = json.dumps(manifest).encode()
    body = io.BytesIO()
    fastavro.schemaless_writer(body, DESIRED_SCHEMA, {
        "plane": plane, "key": key, "generation": generation, "op": op,
        "manifest": manifest,
        "manifest_sha256": sha256 or hashlib.sha256(manifest).digest(),
        "release_id": release,
        "issued_at": int(time.time() * 1000),
        "correlation_id": ""})
    return b"\xc3\x01" + _fingerprint(DESIRED_SCHEMA) + body.getvalue()


def decode_status(value):
    if not value.startswith(STATUS_PREFIX):
        return None  # a heartbeat
    return fastavro.schemaless_reader(io.BytesIO(value[10:]), STATUS_SCHEMA,
                                      None)


def decode_heartbeat(value):
    assert value.startswith(HEARTBEAT_PREFIX), value[:10]
    return fastavro.schemaless_reader(io.BytesIO(value[10:]),
                                      HEARTBEAT_SCHEMA, None)


class Signer:
    """An Ed25519 key as the control plane uses it."""

    def __init__(self, private_key):
        self.key = private_key
        raw = private_key.public_key().public_bytes(Encoding.Raw,
                                                    PublicFormat.Raw)
        self.kid = hashlib.sha256(raw).hexdigest()[:16].encode()

    @classmethod
    def from_pem(cls, path):
        return cls(load_pem_private_key(Path(path).read_bytes(), None))

    @classmethod
    def generate(cls):
        return cls(Ed25519PrivateKey.generate())

    def headers(self, key, value):
        signing_input = (b"m3bridge-sig-v1\x00" + len(key).to_bytes(4, "big")
                         + key + len(value).to_bytes(8, "big") + value)
        return [("m3-sig", self.key.sign(signing_input)), ("m3-kid", self.kid)]


def configmap(ns, name, data, labels=None):
    md = {"name": name, "namespace": ns}
    if labels:
        md["labels"] = labels
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md,
            "data": data}


def cm_key(ns, name):
    return f"/v1/ConfigMap/{ns}/{name}"


# --- the apiserver, through its REST API as admin --------------------------

class Kube:
    def __init__(self, tb):
        u = urllib.parse.urlparse(tb["M3B_TB_KUBE_SERVER"])
        self.host, self.port = u.hostname, u.port
        self.ctx = ssl.create_default_context(cafile=tb["M3B_TB_KUBE_CA"])
        self.token = Path(tb["M3B_TB_KUBE_ADMIN_TOKEN_FILE"]).read_text().strip()

    def _conn(self, timeout=60):
        return http.client.HTTPSConnection(self.host, self.port,
                                           context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, ok=(200, 201)):
        conn = self._conn()
        headers = {"Authorization": f"Bearer {self.token}",
                   "Accept": "application/json"}
        if body is not None:
            body = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        conn.close()
        if r.status not in ok:
            raise AssertionError(f"{method} {path}: HTTP {r.status} {data[:300]}")
        return r.status, json.loads(data) if data else None

    @staticmethod
    def path(ns, kind="configmaps", name=None, api="/api/v1"):
        p = f"{api}/namespaces/{ns}/{kind}"
        return p + (f"/{name}" if name else "")

    def configmaps(self, ns, selector=MANAGED + "=m3bridge"):
        """name -> object of the ConfigMaps of ns (by label selector)."""
        q = "?labelSelector=" + urllib.parse.quote(selector) if selector else ""
        _, body = self.request("GET", self.path(ns) + q)
        return {o["metadata"]["name"]: o for o in body["items"]}

    def get(self, ns, name, kind="configmaps", api="/api/v1"):
        status, body = self.request("GET", self.path(ns, kind, name, api),
                                    ok=(200, 404))
        return body if status == 200 else None

    def create(self, ns, obj, kind="configmaps", api="/api/v1"):
        return self.request("POST", self.path(ns, kind, api=api), obj)[1]

    def delete_managed(self, names_with):
        """Deletes the ConfigMaps, Secrets and PodTemplates of this suite's
        namespaces whose names contain names_with."""
        for ns in NAMESPACES:
            for kind in ("configmaps", "secrets", "podtemplates"):
                _, body = self.request("GET", self.path(ns, kind))
                for o in body["items"]:
                    name = o["metadata"]["name"]
                    if names_with in name:
                        self.request("DELETE", self.path(ns, kind, name),
                                     ok=(200, 202, 404))

    def list_version(self, ns):
        _, body = self.request("GET", self.path(ns) + "?limit=1")
        return body["metadata"]["resourceVersion"]


class Watch:
    """Every change of the ConfigMaps of ns whose name contains marker, in
    order: (name, m3bridge generation annotation or None, event type,
    data)."""

    def __init__(self, kube, ns, marker):
        self.kube, self.ns, self.marker = kube, ns, marker
        self.events = []
        self.error = None
        self.stopping = False
        self.conn = None
        self.rv = kube.list_version(ns)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                self._watch_once()
            except (OSError, http.client.HTTPException, ValueError) as e:
                if not self.stopping:
                    self.error = repr(e)
                    time.sleep(0.5)

    def _watch_once(self):
        self.conn = self.kube._conn(timeout=None)
        q = urllib.parse.urlencode({"watch": "1", "resourceVersion": self.rv,
                                    "timeoutSeconds": "600"})
        self.conn.request("GET", self.kube.path(self.ns) + "?" + q,
                          headers={"Authorization": f"Bearer {self.kube.token}"})
        r = self.conn.getresponse()
        if r.status != 200:
            raise ValueError(f"watch: HTTP {r.status}")
        while not self.stopping:
            line = r.readline()
            if not line:
                return
            ev = json.loads(line)
            if ev["type"] == "ERROR":
                raise ValueError(f"watch error: {ev['object']}")
            md = ev["object"]["metadata"]
            self.rv = md["resourceVersion"]
            if ev["type"] == "BOOKMARK" or self.marker not in md["name"]:
                continue
            ann = md.get("annotations") or {}
            gen = ann.get(ANN_GENERATION)
            self.events.append((md["name"], int(gen) if gen else None,
                                ev["type"], ev["object"].get("data")))

    def stop(self):
        self.stopping = True
        try:
            if self.conn and self.conn.sock:
                self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(timeout=10)


# --- Kafka -------------------------------------------------------------------

def _plain(tb, extra=None):
    conf = {"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"]}
    conf.update(extra or {})
    return conf


class Tail:
    """Reads a topic from the end offsets it had when created."""

    def __init__(self, tb, topic):
        self.topic = topic
        self.consumer = Consumer(_plain(tb, {
            "group.id": f"robust-tail-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed"}))
        md = self.consumer.list_topics(topic, timeout=30)
        parts = sorted(md.topics[topic].partitions)
        start = []
        for p in parts:
            _, hi = watermarks(self.consumer, TopicPartition(topic, p))
            start.append(TopicPartition(topic, p, hi))
        self.consumer.assign(start)
        self.records = []  # (key bytes, value bytes, headers dict)

    def poll(self, seconds=0.5):
        """Reads what has arrived within about seconds; returns the count."""
        deadline = time.time() + seconds
        n = 0
        while time.time() < deadline:
            msgs = self.consumer.consume(500, timeout=0.2)
            for m in msgs:
                if m.error():
                    continue
                self.records.append((m.key(), m.value(),
                                     dict(m.headers() or [])))
                n += 1
        return n

    def close(self):
        self.consumer.close()


class Statuses(Tail):
    """The status topic: decoded statuses that answer a record (all); those
    of a status resync (source partition -1) apart (resync); the latest
    heartbeat of each listener (heartbeats)."""

    def __init__(self, tb):
        super().__init__(tb, STATUS)
        self.seen = 0
        self.all = []
        self.resync = []
        self.heartbeats = {}

    def update(self, seconds=0.5):
        self.poll(seconds)
        for key, value, _ in self.records[self.seen:]:
            if key and key.startswith(b"_listener/"):
                hb = decode_heartbeat(value)
                self.heartbeats[hb["listener_id"]] = hb
                continue
            st = decode_status(value) if value else None
            if st:
                (self.resync if st["source_partition"] < 0
                 else self.all).append(st)
        self.seen = len(self.records)
        return self.all

    def partitions_of(self, listener_id):
        """Partitions in the listener's latest heartbeat."""
        hb = self.heartbeats.get(listener_id)
        return {p["partition"] for p in hb["partitions"]} if hb else set()

    def by_event(self):
        """(key, generation) -> [status, ...]."""
        out = {}
        for s in self.all:
            out.setdefault((s["key"], s["generation"]), []).append(s)
        return out

    def by_source(self, listener_id=None):
        """(source partition, source offset) -> the latest status of it
        (written by listener_id, when given)."""
        return {(s["source_partition"], s["source_offset"]): s
                for s in self.all
                if listener_id is None or s["listener_id"] == listener_id}

    def wait_sources(self, sources, timeout, what="statuses",
                     listener_id=None):
        """Waits until every (partition, offset) of sources has a status;
        returns by_source()."""
        want = set(sources)

        def done():
            self.update()
            got = self.by_source(listener_id)
            return got if want <= set(got) else None
        return wait_for(done, timeout, what, interval=0)

    def wait_events(self, events, timeout, what="statuses"):
        """Waits until every (key, generation) of events has a status."""
        want = set(events)

        def done():
            self.update()
            have = self.by_event()
            return not [e for e in want if e not in have]
        try:
            wait_for(done, timeout, what, interval=0)
        finally:
            self.update(0)
        return self.by_event()


def control_producer(tb):
    """A producer as the control plane's principal, partitioning like the
    publisher (murmur2)."""
    return Producer(control_client(tb, {"partitioner": "murmur2_random",
                                        "enable.idempotence": True}))


def produce_raw(producer, records):
    """Produces [(key, value, headers)] in order and returns
    [(partition, offset)] of each once the broker acknowledged it."""
    out = [None] * len(records)

    def report(i):
        def cb(err, msg):
            out[i] = err or (msg.partition(), msg.offset())
        return cb
    for i, (key, value, headers) in enumerate(records):
        producer.produce(DESIRED, key=key, value=value, headers=headers,
                         on_delivery=report(i))
        producer.poll(0)
    assert producer.flush(60) == 0, "raw records not delivered"
    for i, r in enumerate(out):
        assert isinstance(r, tuple), f"record {i} not delivered: {r}"
    return out


def group_offsets(tb):
    """partition -> committed offset of the listeners' group (-1001: none)."""
    c = Consumer(_plain(tb, {"group.id": GROUP, "enable.auto.commit": False}))
    try:
        tps = [TopicPartition(DESIRED, p) for p in range(PARTITIONS)]
        return {tp.partition: tp.offset
                for tp in c.committed(tps, timeout=30)}
    finally:
        c.close()


def end_offsets(tb, topic=DESIRED):
    c = Consumer(_plain(tb, {"group.id": f"robust-{uuid.uuid4()}"}))
    try:
        return {p: watermarks(c, TopicPartition(topic, p))[1]
                for p in range(PARTITIONS)}
    finally:
        c.close()


def commit_group(tb, offsets):
    """Sets the group's committed offsets, once no member is left (a
    listener killed earlier stays a member for session.timeout.ms)."""
    c = Consumer(_plain(tb, {"group.id": GROUP, "enable.auto.commit": False}))
    deadline = time.time() + 60
    try:
        while True:
            try:
                c.commit(offsets=[TopicPartition(DESIRED, p, o)
                                  for p, o in offsets.items()],
                         asynchronous=False)
                return
            except KafkaException as e:
                code = e.args[0].code()
                if code not in (KafkaError.UNKNOWN_MEMBER_ID,
                                KafkaError.REBALANCE_IN_PROGRESS,
                                KafkaError.ILLEGAL_GENERATION) or \
                        time.time() > deadline:
                    raise
                time.sleep(1)
    finally:
        c.close()


def group_caught_up(tb):
    ends = end_offsets(tb)
    committed = group_offsets(tb)
    return all(hi == 0 or committed.get(p, -1) >= hi for p, hi in ends.items())


# --- the bed and the processes -------------------------------------------------

class Bed:
    """Keys, configurations and clients of one test module."""

    def __init__(self, tb, folder, tag, settings=None):
        require_programs("M3B_PUBLISHER", "M3B_LISTENER")
        self.tb, self.d = tb, Path(folder)
        self.run = uuid.uuid4().hex[:6]
        self.tag = tag
        # kafka.session.timeout.ms: a listener killed with SIGKILL leaves the
        # group after 6 s (the broker's minimum) instead of librdkafka's 45 s
        write_configs(tb, self.d, PLANE, {
            "publisher.id": f"robust-{tag}-{os.getpid()}",
            "topics.partitions": PARTITIONS,
        }, {**BRISK, "listener.namespaces": NAMESPACES,
            "shutdown.grace_ms": 15000, "http.address": "127.0.0.1:0",
            "kafka.session.timeout.ms": 6000,
            "kafka.heartbeat.interval.ms": 1000, **(settings or {})})
        self.signer = Signer.from_pem(self.d / "signing.key")
        r = self.publisher(["topics", "create"])
        assert r.returncode == 0, r.stdout + r.stderr
        n = len(Consumer(_plain(tb, {"group.id": "robust-md"})).list_topics(
            DESIRED, timeout=30).topics[DESIRED].partitions)
        assert n == PARTITIONS, f"{DESIRED} has {n} partitions, not {PARTITIONS}"
        self.kube = Kube(tb)
        self.producer = control_producer(tb)
        self.listeners = []

    def name(self, what):
        """An object name unique to this test run."""
        return f"rb-{self.tag}-{self.run}-{what}"

    def publisher(self, args, stdin=None, timeout=180):
        return publisher(self.d, args, stdin, timeout)

    def publish(self, objects, release):
        """Publishes manifests (dicts) as one release; returns
        {key: (generation, partition, offset)}."""
        docs = "\n".join(json.dumps(o) for o in objects)
        r = self.publisher(["publish", "-f", "-", "--release", release,
                            "--json"], stdin=docs)
        assert r.returncode == 0, r.stdout + r.stderr
        res = json.loads(r.stdout.strip().splitlines()[-1])
        assert all(o["result"] == "OK" for o in res["objects"]), r.stdout
        return {o["key"]: (o["generation"], o["partition"], o["offset"])
                for o in res["objects"]}

    def delete(self, keys, release):
        r = self.publisher(["delete", *keys, "--release", release, "--json"])
        assert r.returncode == 0, r.stdout + r.stderr
        res = json.loads(r.stdout.strip().splitlines()[-1])
        return {o["key"]: (o["generation"], o["partition"], o["offset"])
                for o in res["objects"]}

    def start_group_at_end(self):
        """Commits the desired topic's end offsets for the group, so the
        listener starts with this test's events only."""
        commit_group(self.tb, end_offsets(self.tb))

    def listener(self, listener_id=None, extra=()):
        lst = Listener(self.d, listener_id or f"rb-{self.tag}-{self.run}",
                       extra)
        self.listeners.append(lst)
        return lst

    def signed(self, key, value, signer=None):
        key = key.encode() if isinstance(key, str) else key
        return (key, value, (signer or self.signer).headers(key, value))

    def close(self):
        """Kills listeners still running and deletes this run's objects
        (also after a failure, so the next run's index stays small)."""
        for lst in self.listeners:
            lst.kill()
        self.producer.flush(10)
        self.kube.delete_managed(self.run)


class Listener:
    def __init__(self, d, listener_id, extra=()):
        self.id = listener_id
        self.log_path = d / f"listener-{listener_id}-{time.time_ns()}.log"
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(
            [LISTENER, "run", "--config", str(d / "listener.yaml"),
             "--set", f"listener.id={listener_id}"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=self.log)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=60):
        """SIGTERM; returns (exit code, seconds it took)."""
        start = time.time()
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        return rc, time.time() - start

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def text(self):
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def tail(self, n=40):
        return "\n".join(self.text().splitlines()[-n:])


def bed_fixture(tag, settings=None):
    """A module fixture factory: the Bed of one test module, its listener
    with settings ({dotted name: value}) besides the common ones."""
    @pytest.fixture(scope="module")
    def bed(tmp_path_factory):
        tb = read_testbed_env()
        b = Bed(tb, tmp_path_factory.mktemp(tag), tag, settings)
        yield b
        b.close()
    return bed

