"""test_listener.py - m3bridge-listener run against the real test bed: the
real broker (SASL_SSL as the plane's listener principal m3-listener-it) and
the real kube-apiserver (the listener's bound service account, namespaces
shop and m3-it). Releases are published with m3bridge-publisher; the
tampered record, the dlq check and the offset reset use confluent-kafka;
objects are checked with the admin kubeconfig.

Needs the test bed (tests/testbed/testbed up); fails, never skips, without it.
"""
import json
import math
import os
import re
import signal
import socket
import subprocess
import time
import uuid

import pytest
from testbed_py import (BRISK, LISTENER, control_client, free_port, http_get,
                        kubectl, publisher, read_testbed_env,
                        require_programs, wait_for, watermarks, write_configs)
from confluent_kafka import Consumer, Producer, TopicPartition

PLANE = "it"
DESIRED = f"m3.{PLANE}.desired"
DLQ = f"m3.{PLANE}.dlq"
RUN = uuid.uuid4().hex[:8]
NAMESPACES = ("shop", "m3-it")


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tb):
    require_programs("M3B_PUBLISHER", "M3B_LISTENER")
    d = write_configs(
        tb, tmp_path_factory.mktemp("listener"), PLANE,
        {"publisher.id": f"it-listener-{os.getpid()}"},
        {**BRISK, "listener.id": f"it-{RUN}",
         "listener.namespaces": NAMESPACES,
         # tests run side by side: no fixed port
         "http.address": "127.0.0.1:0"})
    # creates what is missing (status, dlq); an existing desired topic with
    # other configs is reported, not changed
    publisher(d, ["topics", "create"])
    return d


def configmaps(tb):
    """name -> (resourceVersion, labels) of this run's ConfigMaps."""
    out = {}
    for ns in NAMESPACES:
        r = kubectl(tb, "get", "configmaps", "-n", ns, "-o", "json")
        assert r.returncode == 0, r.stderr
        for item in json.loads(r.stdout)["items"]:
            name = item["metadata"]["name"]
            if RUN in name:
                out[f"{ns}/{name}"] = (item["metadata"]["resourceVersion"],
                                       item["metadata"].get("labels", {}))
    return out


class Listener:
    def __init__(self, d, extra=()):
        self.log = open(d / f"listener-{time.time_ns()}.log", "w+")
        self.proc = subprocess.Popen(
            [LISTENER, "run", "--config", str(d / "listener.yaml")] +
            list(extra), stdout=subprocess.DEVNULL, stderr=self.log)

    def stop(self, timeout=20):
        self.proc.send_signal(signal.SIGTERM)
        start = time.time()
        rc = self.proc.wait(timeout=timeout)
        self.log.flush()
        return rc, time.time() - start

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


def release_yaml(count):
    docs = []
    for i in range(count):
        ns = NAMESPACES[i % 2]
        docs.append(f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: cm-{RUN}-{i}, namespace: {ns}}}
data: {{index: "{i}"}}
""")
    return "---\n".join(docs)


def dlq_records(tb):
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": f"it-dlq-{uuid.uuid4()}",
                  "enable.auto.commit": False,
                  "enable.partition.eof": True})
    md = c.list_topics(DLQ, timeout=10)
    parts = list(md.topics[DLQ].partitions)
    c.assign([TopicPartition(DLQ, p, 0) for p in parts])
    out, eof = [], set()
    deadline = time.time() + 30
    while len(eof) < len(parts) and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:
                eof.add(m.partition())
            continue
        out.append((m.key(), dict(m.headers() or [])))
    c.close()
    return out


def committed_all(tb, group):
    """True when the group's committed offsets reach the high watermarks."""
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": group, "enable.auto.commit": False})
    md = c.list_topics(DESIRED, timeout=10)
    tps = [TopicPartition(DESIRED, p) for p in md.topics[DESIRED].partitions]
    committed = c.committed(tps, timeout=10)
    ok = True
    for tp in committed:
        lo, hi = watermarks(c, tp)
        if hi > 0 and tp.offset < hi:
            ok = False
    c.close()
    return ok


def test_listener_end_to_end(tb, workdir):
    d = workdir
    listener = Listener(d)
    try:
        # 1. a release of 50 ConfigMaps across both bound namespaces
        release = f"rel-{RUN}"
        r = publisher(d, ["publish", "-f", "-", "--release", release],
                      stdin=release_yaml(50))
        assert r.returncode == 0, r.stderr
        r = publisher(d, ["status", "--release", release, "--wait",
                          "--timeout", "90"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr + listener.text()
        assert "APPLIED" in r.stdout
        cms = configmaps(tb)
        assert len(cms) == 50, cms
        for rv, labels in cms.values():
            assert labels.get("app.kubernetes.io/managed-by") == "m3bridge"

        # 2. an unsigned and a tampered record end in the dlq; it goes on
        ctl = Producer(control_client(tb))
        bad_unsigned = f"/v1/ConfigMap/shop/unsigned-{RUN}".encode()
        bad_tampered = f"/v1/ConfigMap/shop/tampered-{RUN}".encode()
        ctl.produce(DESIRED, key=bad_unsigned, value=b"\xc3\x01junk")
        ctl.produce(DESIRED, key=bad_tampered, value=b"\xc3\x01junk",
                    headers=[("m3-sig", b"\x00" * 64),
                             ("m3-kid", b"0123456789abcdef")])
        assert ctl.flush(30) == 0

        def dlq_has_both():
            got = {k: h for k, h in dlq_records(tb)}
            return bad_unsigned in got and bad_tampered in got
        wait_for(dlq_has_both, 60, "the bad records in the dlq")
        got = {k: h for k, h in dlq_records(tb)}
        assert got[bad_unsigned]["m3-error-reason"] == b"SIG_MISSING"
        assert got[bad_tampered]["m3-error-reason"] in (b"SIG_UNKNOWN_KEY",
                                                        b"SIG_INVALID")
        assert got[bad_unsigned]["m3-listener-id"] == f"it-{RUN}".encode()
        assert got[bad_unsigned]["m3-source-topic"] == DESIRED.encode()

        # 3. a DELETE removes the managed object, never an unmanaged one
        r = kubectl(tb, "create", "configmap", f"unmanaged-{RUN}", "-n", "shop",
                    "--from-literal=a=b")
        assert r.returncode == 0, r.stderr
        r = publisher(d, ["delete", f"/v1/ConfigMap/shop/cm-{RUN}-0",
                          f"/v1/ConfigMap/shop/unmanaged-{RUN}",
                          "--release", f"del-{RUN}"])
        assert r.returncode == 0, r.stderr

        def deleted():
            return f"shop/cm-{RUN}-0" not in configmaps(tb)
        wait_for(deleted, 60, "the managed ConfigMap to be deleted")
        wait_for(lambda: any(k == f"/v1/ConfigMap/shop/unmanaged-{RUN}".encode()
                             for k, _ in dlq_records(tb)), 60,
                 "the unmanaged DELETE in the dlq")
        assert kubectl(tb, "get", "configmap", f"unmanaged-{RUN}", "-n",
                       "shop").returncode == 0
        assert listener.proc.poll() is None, listener.text()
        wait_for(lambda: committed_all(tb, f"m3bridge-{PLANE}"), 60,
                 "committed offsets to reach the end")
    finally:
        rc, took = listener.stop()
    assert rc == 0, listener.text()
    assert took < 12, took

    # 4. restart: nothing is re-applied
    before = configmaps(tb)
    listener = Listener(d)
    try:
        time.sleep(5)
        assert listener.proc.poll() is None, listener.text()
    finally:
        rc, _ = listener.stop()
    assert rc == 0, listener.text()
    assert configmaps(tb) == before

    # 5. redelivery: the group reset to the earliest offsets changes nothing
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": f"m3bridge-{PLANE}", "enable.auto.commit": False})
    md = c.list_topics(DESIRED, timeout=10)
    tps = []
    for p in md.topics[DESIRED].partitions:
        lo, _ = watermarks(c, TopicPartition(DESIRED, p))
        tps.append(TopicPartition(DESIRED, p, lo))
    c.commit(offsets=tps, asynchronous=False)
    c.close()
    listener = Listener(d)
    try:
        wait_for(lambda: committed_all(tb, f"m3bridge-{PLANE}"), 90,
                 "the replayed topic to be committed again")
        assert listener.proc.poll() is None, listener.text()
    finally:
        rc, _ = listener.stop()
    assert rc == 0, listener.text()
    assert configmaps(tb) == before
    for key in before:
        ns, name = key.split("/")
        kubectl(tb, "delete", "configmap", "-n", ns, name, "--wait=false")
    kubectl(tb, "delete", "configmap", f"unmanaged-{RUN}", "-n", "shop")


METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({METRIC_NAME})(?:\{{((?:{LABEL})(?:,{LABEL})*)?\}})? "
                    r"(\S+)$")
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text):
    """Checks the Prometheus text format 0.0.4 strictly enough to catch
    what promtool would, and returns [(name, {label: value}, value)]."""
    assert text.endswith("\n"), "exposition must end with a newline"
    types, samples = {}, []
    for n, line in enumerate(text.splitlines(), 1):
        assert line, f"line {n}: empty line"
        if line.startswith("#"):
            parts = line.split(" ", 3)
            assert parts[1] in ("HELP", "TYPE"), f"line {n}: {line}"
            assert re.fullmatch(METRIC_NAME, parts[2]), f"line {n}: {line}"
            if parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram"), line
                assert parts[2] not in types, f"line {n}: second TYPE"
                types[parts[2]] = parts[3]
            continue
        m = SAMPLE.match(line)
        assert m, f"line {n}: malformed sample: {line}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        kind = types.get(name) or types.get(family)
        assert kind, f"line {n}: {name} has no # TYPE before it"
        v = float(value)  # accepts NaN, +Inf, -Inf
        lab = dict(LABEL_RE.findall(labels))
        if kind == "counter":
            assert v >= 0 and not math.isnan(v), f"line {n}: {line}"
        samples.append((name, lab, v))
    for family, kind in types.items():
        if kind != "histogram":
            continue
        buckets = [(s[1]["le"], s[2]) for s in samples
                   if s[0] == family + "_bucket"]
        assert buckets and buckets[-1][0] == "+Inf", family
        counts = [b[1] for b in buckets]
        assert counts == sorted(counts), f"{family}: buckets not cumulative"
        count = [s[2] for s in samples if s[0] == family + "_count"]
        assert count and count[0] == counts[-1], family
    return samples


def test_listener_http_endpoints(tb, workdir):
    d = workdir
    port = free_port()
    listener = Listener(d, ["--set", f"http.address=127.0.0.1:{port}"])
    group = f"m3bridge-{PLANE}"
    count = 5
    try:
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, 30,
                 "/healthz to answer")
        assert http_get(port, "/healthz") == (200, "ok")
        release = f"http-{RUN}"
        docs = release_yaml(count).replace(f"cm-{RUN}-", f"cm-http-{RUN}-")
        r = publisher(d, ["publish", "-f", "-", "--release", release],
                      stdin=docs)
        assert r.returncode == 0, r.stderr
        r = publisher(d, ["status", "--release", release, "--wait",
                          "--timeout", "90"], timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr + listener.text()

        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 30,
                 "/readyz to report ready")
        status, body = http_get(port, "/readyz")
        assert (status, body.strip()) == (200, "ready"), body

        def metrics():
            status, text = http_get(port, "/metrics")
            assert status == 200, text
            return text, parse_exposition(text)

        text, samples = metrics()
        applied = sum(v for name, lab, v in samples
                      if name == "m3bridge_events_total" and
                      lab.get("phase") == "APPLIED")
        assert applied >= count, text
        lag = [(lab, v) for name, lab, v in samples
               if name == "kafka_consumergroup_group_lag"]
        assert lag and all(lab.get("group") == group and
                           lab.get("topic") == DESIRED and "partition" in lab
                           for lab, _ in lag), text
        for name in ("kafka_consumergroup_group_lag_seconds",
                     "m3bridge_committed_offset", "m3bridge_high_watermark",
                     "m3bridge_in_flight", "m3bridge_paused_partitions",
                     "m3bridge_retries_total",
                     "m3bridge_status_resync_runs_total",
                     "m3bridge_apply_latency_seconds_count",
                     "m3bridge_publish_to_applied_seconds_count"):
            assert any(s[0] == name for s in samples), f"{name} missing"

        def caught_up():
            _, now = metrics()
            lags = [v for name, lab, v in now
                    if name in ("kafka_consumergroup_group_lag",
                                "kafka_consumergroup_group_lag_seconds")
                    and lab.get("group") == group]
            return lags and all(v == 0 for v in lags)
        wait_for(caught_up, 60, "the lag gauges to reach 0")

        text, _ = metrics()
        promtool = "/usr/bin/promtool"
        if os.path.exists(promtool):  # optional: the parser above always runs
            r = subprocess.run([promtool, "check", "metrics"], input=text,
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stdout + r.stderr
        assert http_get(port, "/nope")[0] == 404
        assert listener.proc.poll() is None, listener.text()
    finally:
        rc, _ = listener.stop()
    assert rc == 0, listener.text()
    for i in range(count):
        kubectl(tb, "delete", "configmap", "-n", NAMESPACES[i % 2],
                f"cm-http-{RUN}-{i}", "--wait=false")


def test_listener_http_address_in_use(workdir):
    d = workdir
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        listener = Listener(d, ["--set", f"http.address=127.0.0.1:{port}"])
        rc = listener.proc.wait(timeout=30)
    assert rc == 1, listener.text()
    assert "http.address" in listener.text()
