"""testbed_py.py - what the Python integration tests share: the test bed's
env file (written by `tests/testbed/testbed up`), a work folder with keys
and the publisher's and listener's configurations for one of its planes
(write_configs), the publisher run as a program, a Kafka client as the
control plane's principal, the publisher's partitioner, polling with a
deadline, the admin kubectl, HTTP probes, and Kafka watermark queries that
ride out leader elections on a just-created topic.

Tests fail, never skip, when the test bed or the built programs are missing.
"""
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import KafkaError, KafkaException

SOURCE = os.environ.get("M3B_SOURCE_DIR", os.getcwd())
PUBLISHER = os.environ.get("M3B_PUBLISHER", "")
LISTENER = os.environ.get("M3B_LISTENER", "")

TRANSIENT = (KafkaError.NOT_LEADER_FOR_PARTITION,
             KafkaError.LEADER_NOT_AVAILABLE,
             KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT,
             KafkaError._TIMED_OUT)


def read_testbed_env():
    """The KEY=VALUE lines of $M3B_TESTBED_DIR/env as a dict."""
    d = os.environ.get("M3B_TESTBED_DIR") or os.environ.get(
        "M3B_TESTBED_DIR_DEFAULT") or os.path.join(SOURCE, ".testbed")
    path = os.path.join(d, "env")
    if not os.path.exists(path):
        pytest.fail(f"the test bed is not up ({path} missing): run "
                    "tests/testbed/testbed up", pytrace=False)
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
    return env


def wait_for(predicate, timeout, what, interval=0.5, state=None):
    """predicate()'s first true value, asked every interval seconds for
    timeout seconds and once more at the end; else fails, saying what it
    waited for and, when given, state() (the last state seen)."""
    deadline = time.time() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.time() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}" +
                        (f"; last seen: {state()}" if state else ""),
                        pytrace=False)
        time.sleep(interval)


def free_port():
    """A loopback TCP port free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path):
    """(status, body) of GET http://127.0.0.1:port/path; (0, error) when
    nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}",
                                    timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except (urllib.error.URLError, ConnectionError, socket.timeout) as e:
        return 0, str(e)


def kubectl(tb, *args, stdin=None):
    """The test bed's kubectl with the admin kubeconfig, output as text."""
    return subprocess.run([tb["M3B_TB_KUBECTL"], "--kubeconfig",
                           tb["M3B_TB_KUBE_ADMIN_KUBECONFIG"]] + list(args),
                          input=stdin, capture_output=True, text=True,
                          timeout=60)


def murmur2_partition(key, partitions):
    """The Java client's default partition of key (bytes): murmur2, positive
    modulo; the publisher's partitioner, written here from Kafka's code."""
    data, length = bytearray(key), len(key)
    m, seed = 0x5bd1e995, 0x9747b28c
    h = (seed ^ length) & 0xffffffff
    for i in range(0, length - length % 4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * m) & 0xffffffff
        k ^= k >> 24
        k = (k * m) & 0xffffffff
        h = ((h * m) & 0xffffffff) ^ k
    rest = length % 4
    tail = length - rest
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & 0xffffffff
    h ^= h >> 13
    h = (h * m) & 0xffffffff
    h ^= h >> 15
    return (h & 0x7fffffff) % partitions


def watermarks(consumer, tp):
    """(low, high) of a partition, retried for up to 30 s while a new
    topic's leaders are elected."""
    deadline = time.time() + 30
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as e:
            transient = e.args[0].code() in TRANSIENT or e.args[0].retriable()
            if not transient or time.time() > deadline:
                raise
            time.sleep(0.2)


def require_programs(*names):
    """Fails unless each environment variable in names (M3B_PUBLISHER,
    M3B_LISTENER; ctest sets them) names an executable."""
    for name in names:
        exe = os.environ.get(name, "")
        if not exe or not os.access(exe, os.X_OK):
            pytest.fail(f"{name} does not name the built program (build "
                        "it and run the test through ctest)", pytrace=False)


def _broker(tb, user):
    """librdkafka properties of a SASL_SSL client of the test bed's broker
    as principal user, all but its password."""
    return {"bootstrap.servers": tb["M3B_TB_KAFKA_SASL_BOOTSTRAP"],
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": tb["M3B_TB_KAFKA_SASL_MECHANISM"],
            "sasl.username": user,
            "ssl.ca.location": tb["M3B_TB_KAFKA_CA"]}


def kafka_settings(tb, user, password_file):
    """The kafka.* settings of the publisher or listener as principal user
    (its password in password_file, which they read themselves)."""
    conf = dict(_broker(tb, user), **{"sasl.password_file": password_file})
    return {f"kafka.{k}": v for k, v in conf.items()}


def control_client(tb, extra=None):
    """confluent-kafka configuration as the control plane's principal (the
    publisher's), plus the properties in extra."""
    with open(tb["M3B_TB_KAFKA_CONTROL_PASSWORD_FILE"]) as f:
        password = f.read().strip()
    return {**_broker(tb, tb["M3B_TB_KAFKA_CONTROL_USER"]),
            "sasl.password": password, **(extra or {})}


def _yaml(settings):
    """Flat `name: value` lines (the loader flattens nested maps to the
    same dotted names); lists in flow style, everything else plain."""
    def value(v):
        return "[" + ", ".join(map(str, v)) + "]" if isinstance(
            v, (list, tuple)) else str(v)
    return "".join(f"{k}: {value(v)}\n" for k, v in settings.items())


def write_configs(tb, d, plane, publisher_settings,
                  listener_settings=None, seal=True):
    """Keys and configurations for one test bed plane in folder d.

    Writes (keygen) signing.key, signing.pub.pem, sealing.key and
    sealing.pub.pem, trusted/control.pem (the signing key the listener
    trusts), and:
    - publisher.yaml: plane, the signing key, the listener's sealing key
      (unless seal is False: test_lag's publisher never had one), topics
      with replication factor 1 and 3 partitions, and the broker as the
      control principal;
    - listener.yaml, when listener_settings is given (test_publisher has
      no listener): plane, the trusted keys, the sealing key, the test
      bed's listener kubeconfig and the broker as the plane's own listener
      principal (M3B_TB_KAFKA_LISTENER_USER_<PLANE>, so that its ACLs are
      the ones under test).
    publisher_settings and listener_settings are what each test chooses
    (ids, namespaces, timing, ports...) as {dotted name: value}: they come
    after the common ones and replace any of them (e.g. topics.partitions,
    kube.kubeconfig). Returns d."""
    require_programs("M3B_PUBLISHER")
    up = plane.upper().replace("-", "_")
    if listener_settings is not None and \
            f"M3B_TB_KAFKA_LISTENER_USER_{up}" not in tb:
        pytest.fail(f"the test bed has no plane {plane!r} (M3B_TB_PLANES): "
                    "restart it with tests/testbed/testbed down && "
                    "tests/testbed/testbed up", pytrace=False)
    for args in (["keygen", "--out", str(d)],
                 ["keygen", "--seal", "--out", str(d)]):
        subprocess.run([PUBLISHER] + args, check=True, capture_output=True)
    os.makedirs(os.path.join(d, "trusted"), exist_ok=True)
    with open(os.path.join(d, "signing.pub.pem"), "rb") as src, open(
            os.path.join(d, "trusted", "control.pem"), "wb") as dst:
        dst.write(src.read())
    common = {"plane": plane, "signing.key_file": f"{d}/signing.key"}
    if seal:
        common["sealing.listener_key_file"] = f"{d}/sealing.pub.pem"
    common.update({"topics.replication_factor": 1, "topics.partitions": 3})
    common.update(kafka_settings(tb, tb["M3B_TB_KAFKA_CONTROL_USER"],
                                 tb["M3B_TB_KAFKA_CONTROL_PASSWORD_FILE"]))
    with open(os.path.join(d, "publisher.yaml"), "w") as f:
        f.write(_yaml({**common, **publisher_settings}))
    if listener_settings is None:
        return d
    common = {"plane": plane,
              "listener.trusted_keys_dir": f"{d}/trusted",
              "listener.sealing_key_file": f"{d}/sealing.key",
              "kube.kubeconfig": tb["M3B_TB_KUBE_LISTENER_KUBECONFIG"]}
    common.update(kafka_settings(
        tb, tb[f"M3B_TB_KAFKA_LISTENER_USER_{up}"],
        tb[f"M3B_TB_KAFKA_LISTENER_PASSWORD_FILE_{up}"]))
    with open(os.path.join(d, "listener.yaml"), "w") as f:
        f.write(_yaml({**common, **listener_settings}))
    return d


def publisher(d, args, stdin=None, timeout=120):
    """m3bridge-publisher COMMAND --config d/publisher.yaml ARGS... (args[0]
    is the command), output captured as text."""
    return subprocess.run([PUBLISHER] + args[:1] +
                          ["--config", os.path.join(d, "publisher.yaml")] +
                          args[1:], input=stdin, capture_output=True,
                          text=True, timeout=timeout)


# The listener timing most tests run with: four workers, a heartbeat a
# second, quick retries (100 ms doubling to 2 s) so that a retried record
# does not outlast a test's wait, and ten seconds to drain on SIGTERM.
BRISK = {"listener.workers": 4, "heartbeat.interval_ms": 1000,
         "shutdown.grace_ms": 10000, "retry.initial_backoff_ms": 100,
         "retry.max_backoff_ms": 2000}
