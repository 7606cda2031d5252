"""listener_py.py - what test_ui.py and test_deploy.py share: a work
folder with keys and configurations for one test bed plane, the publisher,
a running m3bridge-listener, its HTTP endpoints and its /metrics parsed.

Both tests use the test bed's plane "ui" (namespace m3-ui); ctest runs
them one at a time (RESOURCE_LOCK in tests/CMakeLists.txt), since they
share its consumer group.
"""
import functools
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
import testbed_py
# kubectl and publisher: for the tests importing them from here
from testbed_py import (LISTENER, control_client, free_port, kubectl,  # noqa
                        publisher, require_programs, watermarks, write_configs)

# polls a little faster than testbed_py's default
wait_for = functools.partial(testbed_py.wait_for, interval=0.3)

PLANE = "ui"
NAMESPACE = "m3-ui"
DESIRED = f"m3.{PLANE}.desired"
GROUP = f"m3bridge-{PLANE}"


def make_workdir(d, tb, run, settings=None):
    """Keys, publisher.yaml and listener.yaml for plane ui in folder d,
    the listener's settings plus settings ({dotted name: value}); creates
    the plane's topics (3 partitions) when missing and moves the group past
    their backlog."""
    require_programs("M3B_PUBLISHER", "M3B_LISTENER")
    write_configs(tb, d, PLANE, {"publisher.id": f"it-ui-{os.getpid()}"}, {
        "listener.id": f"ui-{run}", "listener.namespaces": [NAMESPACE],
        "heartbeat.interval_ms": 1000, "shutdown.grace_ms": 5000,
        **(settings or {})})
    r = publisher(d, ["topics", "create"])
    assert r.returncode == 0, r.stdout + r.stderr
    commit_past_backlog(tb)
    return d


def configmaps_yaml(names, labels=None):
    """A release of ConfigMaps in the plane's namespace."""
    label_text = ""
    if labels:
        label_text = ", labels: {" + ", ".join(
            f'{k}: "{v}"' for k, v in labels.items()) + "}"
    return "---\n".join(f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: {n}, namespace: {NAMESPACE}{label_text}}}
data: {{n: "{i}"}}
""" for i, n in enumerate(names))


def commit_past_backlog(tb):
    """Commits the end of every partition of the desired topic for the
    plane's group, so that a listener starts with nothing left over from
    earlier runs (whose records are signed by keys it does not trust).
    Retried while a member of a killed listener still holds the group."""
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": GROUP, "enable.auto.commit": False})
    try:
        deadline = time.time() + 60
        while True:
            try:
                # read inside the retry: a topic just created may have no
                # leader yet, and an empty partition has nothing to skip
                md = c.list_topics(DESIRED, timeout=10)
                ends = [TopicPartition(DESIRED, p, high) for p, high in (
                    (p, watermarks(c, TopicPartition(DESIRED, p))[1])
                    for p in md.topics[DESIRED].partitions) if high > 0]
                if ends:
                    c.commit(offsets=ends, asynchronous=False)
                return
            except KafkaException:
                if time.time() > deadline:
                    raise
                time.sleep(1)
    finally:
        c.close()


def produce_unsigned(tb, key):
    """An unsigned record on the desired topic, as the control plane's
    principal: the listener rejects it (SIG_MISSING)."""
    p = Producer(control_client(tb))
    p.produce(DESIRED, key=key.encode(), value=b"\xc3\x01not signed")
    assert p.flush(30) == 0


class Listener:
    """m3bridge-listener run on a free HTTP port; stderr to a log file."""

    def __init__(self, d, extra=()):
        self.port = free_port()
        self.log = open(d / f"listener-{time.time_ns()}.log", "w+")
        self.proc = subprocess.Popen(
            [LISTENER, "run", "--config", str(d / "listener.yaml"),
             "--set", f"http.address=127.0.0.1:{self.port}"] + list(extra),
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.url = f"http://127.0.0.1:{self.port}"

    def wait_http(self, timeout=30):
        """Waits for /healthz: the HTTP server starts before the index."""
        deadline = time.time() + timeout
        while self.get("/healthz")[0] != 200:
            if self.proc.poll() is not None or time.time() > deadline:
                pytest.fail("the listener's /healthz never answered:\n" +
                            self.text(), pytrace=False)
            time.sleep(0.1)

    def get(self, path):
        """(status, body) of GET path; (0, error) when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
            return 0, str(e)

    def metrics(self):
        status, text = self.get("/metrics")
        assert status == 200, text + self.text()
        return parse_samples(text)

    def stop(self, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.log.flush()
        return rc

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_samples(text):
    """[(name, {label: value}, value)] of a Prometheus text exposition
    (test_listener.py checks the format itself strictly)."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"malformed sample: {line}"
        out.append((m.group(1), dict(LABEL.findall(m.group(2) or "")),
                    float(m.group(3))))
    return out


def series(samples, name, **labels):
    """{partition or labels tuple: value} of the samples of name that carry
    the given labels."""
    return [(lab, v) for n, lab, v in samples
            if n == name and all(lab.get(k) == w for k, w in labels.items())]


def blocking_webhook(name, label, value):
    """A ValidatingWebhookConfiguration named name that sends CREATE and
    UPDATE of ConfigMaps labelled label=value to an address where nothing
    listens: the real kube-apiserver answers those applies with 500, so
    the listener retries them while /metrics and /ui keep answering."""
    return f"""apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: {name}
webhooks:
  - name: block.m3bridge.test
    clientConfig:
      url: https://127.0.0.1:1/nothing-listens-here
    rules:
      - apiGroups: [""]
        apiVersions: [v1]
        operations: [CREATE, UPDATE]
        resources: [configmaps]
    objectSelector:
      matchLabels: {{{label}: "{value}"}}
    failurePolicy: Fail
    sideEffects: None
    admissionReviewVersions: [v1]
    timeoutSeconds: 2
"""
