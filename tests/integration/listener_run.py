"""listener_run.py - what the listener failure tests share: a plane's
keys and configurations, m3bridge-publisher runs, a running
m3bridge-listener with its HTTP endpoints, the admin kubectl, the test
bed's own stop/start, and independent reads of the status topic
(fastavro) and of the group's committed offsets (confluent-kafka).

Tests fail, never skip, when the test bed or the built programs are
missing.
"""
import io
import json
import os
import signal
import subprocess
import time
import uuid

import fastavro
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
# free_port, http_get, kubectl and wait_for: for the tests importing them
# from here
from testbed_py import (BRISK, LISTENER, SOURCE, free_port, http_get,  # noqa
                        kubectl, publisher, require_programs, wait_for,
                        watermarks, write_configs)

TESTBED = os.path.join(SOURCE, "tests", "testbed", "testbed")


def metric(port, name):
    """Sum of the samples of one metric family on /metrics."""
    status, text = http_get(port, "/metrics")
    assert status == 200, text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def testbed_run(tb, *args, timeout=300):
    """Runs tests/testbed/testbed on this test bed's instance."""
    env = dict(os.environ, M3B_TESTBED_DIR=tb["M3B_TESTBED_DIR"])
    r = subprocess.run([TESTBED] + list(args), capture_output=True,
                       text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"testbed {' '.join(args)}: {r.stderr}"
    return r


def configmaps(tb, namespace, marker):
    """name -> (uid, resourceVersion, data) of the ConfigMaps in namespace
    whose name contains marker."""
    r = kubectl(tb, "get", "configmaps", "-n", namespace, "-o", "json")
    assert r.returncode == 0, r.stderr
    out = {}
    for item in json.loads(r.stdout)["items"]:
        md = item["metadata"]
        if marker in md["name"]:
            out[md["name"]] = (md["uid"], md["resourceVersion"],
                               item.get("data", {}))
    return out


def release_yaml(names, namespace, value="v1"):
    return "---\n".join(f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: {n}, namespace: {namespace}}}
data: {{value: "{value}"}}
""" for n in names)


class Plane:
    """A plane's keys, publisher and listener configurations in workdir."""

    def __init__(self, tb, workdir, plane, namespaces, listener_id):
        require_programs("M3B_PUBLISHER", "M3B_LISTENER")
        self.tb, self.d, self.plane = tb, workdir, plane
        self.desired = f"m3.{plane}.desired"
        self.status_topic = f"m3.{plane}.status"
        self.group = f"m3bridge-{plane}"
        write_configs(tb, workdir, plane, {
            "publisher.id": f"{plane}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        }, {**BRISK, "listener.id": listener_id,
            "listener.namespaces": namespaces})
        r = self.publisher(["topics", "create"])
        assert r.returncode == 0, r.stderr

    def publisher(self, args, stdin=None, timeout=180):
        return publisher(self.d, args, stdin, timeout)

    def publish(self, text, release):
        r = self.publisher(["publish", "-f", "-", "--release", release],
                           stdin=text)
        assert r.returncode == 0, r.stdout + r.stderr

    def wait_applied(self, release, listener, timeout=120):
        r = self.publisher(["status", "--release", release, "--wait",
                            "--timeout", str(timeout)], timeout=timeout + 60)
        assert r.returncode == 0, (r.stdout + r.stderr + "\n--- listener:\n" +
                                   listener.text()[-6000:])
        return r.stdout

    def admin_consumer(self, **extra):
        conf = {"bootstrap.servers": self.tb["M3B_TB_KAFKA_BOOTSTRAP"],
                "group.id": f"outage-reader-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "isolation.level": "read_committed"}
        conf.update(extra)
        return Consumer(conf)

    def committed(self):
        """partition -> the listener group's committed offset (-1 none)."""
        c = self.admin_consumer(**{"group.id": self.group})
        try:
            md = c.list_topics(self.desired, timeout=10)
            tps = [TopicPartition(self.desired, p)
                   for p in md.topics[self.desired].partitions]
            return {tp.partition: tp.offset
                    for tp in c.committed(tps, timeout=10)}
        finally:
            c.close()

    def high_watermarks(self):
        c = self.admin_consumer()
        try:
            md = c.list_topics(self.desired, timeout=10)
            return {p: watermarks(c, TopicPartition(self.desired, p))[1]
                    for p in md.topics[self.desired].partitions}
        finally:
            c.close()

    def read_topic(self, topic, since_ms=0):
        """[(partition, offset, timestamp_ms, key, value, headers)] of every
        record of topic (read_committed) with a timestamp from since_ms
        on; headers as a list of (name, bytes)."""
        c = self.admin_consumer(**{"enable.partition.eof": True})
        try:
            md = c.list_topics(topic, timeout=10)
            parts = list(md.topics[topic].partitions)
            c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
            out, eof = [], set()
            deadline = time.time() + 60
            while len(eof) < len(parts) and time.time() < deadline:
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == -191:  # _PARTITION_EOF
                        eof.add(m.partition())
                    continue
                ts = m.timestamp()[1]
                if ts >= since_ms:
                    out.append((m.partition(), m.offset(), ts, m.key(),
                                m.value(), m.headers() or []))
            assert len(eof) == len(parts), f"{topic}: not read to its end"
            return out
        finally:
            c.close()

    def statuses(self, keys, since_ms=0):
        """Decoded Status records (fastavro) of the given object keys."""
        want = {k.encode() for k in keys}
        return [decode_status(v) for _, _, _, k, v, _ in
                self.read_topic(self.status_topic, since_ms)
                if k in want and v is not None]

    def listener(self, port, extra=()):
        return Listener(self.d, ["--set", f"http.address=127.0.0.1:{port}"] +
                        list(extra))


def status_schema():
    with open(os.path.join(SOURCE, "schemas", "Status.avsc")) as f:
        return fastavro.parse_schema(json.load(f))


def decode_status(value):
    """Avro single-object encoding: C3 01, CRC-64-AVRO fingerprint, body."""
    s = status_schema()
    assert value[:2] == b"\xc3\x01", value[:10]
    want = fastavro.schema.fingerprint(
        fastavro.schema.to_parsing_canonical_form(s), "CRC-64-AVRO")
    assert value[2:10] == bytes.fromhex(want)
    return fastavro.schemaless_reader(io.BytesIO(value[10:]), s)


class Listener:
    def __init__(self, d, extra=()):
        self.log = open(d / f"listener-{time.time_ns()}.log", "w+")
        self.proc = subprocess.Popen(
            [LISTENER, "run", "--config", str(d / "listener.yaml")] +
            list(extra), stdout=subprocess.DEVNULL, stderr=self.log)

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()
