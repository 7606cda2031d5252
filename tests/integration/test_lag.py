"""test_lag.py - lag you can see, on the real test bed: `m3bridge-listener lag`
against an independent client (confluent-kafka), each lag verdict produced by
the scenario that causes it, the listener's verdict gauges, and a real
Prometheus (Debian's `prometheus`) scraping the listener.

Plane `lag` (its own Kafka principal, group m3bridge-lag, namespace m3-lag)
so stopping and rewinding the group disturbs no other test. The listener
reaches the apiserver through a TCP proxy owned by this test: cutting it
makes every apply fail in transport, so records retry, the partition stops
moving and its lag grows while the listener (and its /metrics) stays up;
slowing it makes the listener slower than the publisher. SIGSTOP would
freeze /metrics too, and stopping the listener is the STOP scenario.

What each scenario showed is printed and written to lag-scenarios.txt in
the working directory (build/tests under ctest).

Needs the test bed (tests/testbed/testbed up) and Debian's prometheus
package (tests/testbed/install-deps); fails, never skips, without them.
"""
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
import uuid

import pytest
import yaml
from confluent_kafka import Consumer, TopicPartition
import testbed_py
from testbed_py import (LISTENER, free_port, murmur2_partition, publisher,
                        read_testbed_env, require_programs, watermarks,
                        write_configs)

PLANE = "lag"
GROUP = f"m3bridge-{PLANE}"
DESIRED = f"m3.{PLANE}.desired"
NAMESPACE = "m3-lag"
RUN = uuid.uuid4().hex[:8]
REPORT = os.path.join(os.getcwd(), "lag-scenarios.txt")
EXIT = {"OK": 0, "WARN": 3, "STALL": 4, "STOP": 5, "REWIND": 6}
# polls often: the scenarios change within seconds
wait_for = functools.partial(testbed_py.wait_for, interval=0.25)


def say(text):
    print(text)
    with open(REPORT, "a") as f:
        f.write(text + "\n")


def http_get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


class KubeProxy:
    """TCP proxy to the apiserver. cut(): refuses and drops connections
    (the listener's applies fail in transport and retry); slow(s): delays
    each chunk the listener sends; restore(): back to a plain pipe."""

    def __init__(self, host, port):
        self.target = (host, port)
        self.port = free_port()
        self.delay = 0.0
        self.lock = threading.Lock()
        self.conns = set()
        self.lsock = None
        self.restore()

    def restore(self):
        self.delay = 0.0
        with self.lock:
            if self.lsock:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", self.port))
            s.listen(64)
            s.settimeout(0.2)
            self.lsock = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def slow(self, seconds):
        self.delay = seconds

    def cut(self):
        with self.lock:
            s, self.lsock = self.lsock, None
            conns, self.conns = self.conns, set()
        if s:
            s.close()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def _accept(self, lsock):
        while True:
            with self.lock:
                if self.lsock is not lsock:
                    return
            try:
                client, _ = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.conns.update((client, server))
            threading.Thread(target=self._pump, args=(client, server, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src, dst, slowed):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if slowed and self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass


class Listener:
    def __init__(self, d):
        self.log = open(d / f"listener-{time.time_ns()}.log", "w+")
        self.proc = subprocess.Popen(
            [LISTENER, "run", "--config", str(d / "listener.yaml")],
            stdout=subprocess.DEVNULL, stderr=self.log)
        self.port = None

        def serving():
            assert self.proc.poll() is None, self.text()
            for line in self.text().splitlines():
                if "serving /healthz" in line and "(port " in line:
                    self.port = int(line.split("(port ")[1].split(")")[0])
                    return True
            return False
        wait_for(serving, 30, "the listener to serve /metrics")

    def metrics(self):
        return http_get(f"http://127.0.0.1:{self.port}/metrics")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=20)
        return self.proc.returncode

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


class Prometheus:
    def __init__(self, d, target_port):
        exe = shutil.which("prometheus")
        if not exe:
            pytest.fail("prometheus not found: install Debian's prometheus "
                        "package (tests/testbed/install-deps does)",
                        pytrace=False)
        self.port = free_port()
        (d / "prometheus.yml").write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: m3bridge-listener
    static_configs: [{{targets: ["127.0.0.1:{target_port}"]}}]
""")
        self.log = open(d / "prometheus.log", "w+")
        self.proc = subprocess.Popen(
            [exe, f"--config.file={d / 'prometheus.yml'}",
             f"--storage.tsdb.path={d / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)

        def ready():
            assert self.proc.poll() is None, self.text()
            try:
                http_get(f"http://127.0.0.1:{self.port}/-/ready", timeout=1)
                return True
            except OSError:
                return False
        wait_for(ready, 30, "Prometheus to be ready")

    def query(self, promql):
        """[(labels, value)] of an instant query."""
        url = (f"http://127.0.0.1:{self.port}/api/v1/query?" +
               urllib.parse.urlencode({"query": promql}))
        body = json.loads(http_get(url))
        assert body["status"] == "success", body
        return [(r["metric"], float(r["value"][1]))
                for r in body["data"]["result"]]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=20)

    def text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


@pytest.fixture(scope="module")
def bed(tmp_path_factory, tb):
    """Keys, configurations, topics, the apiserver proxy and a running
    listener caught up with the desired topic."""
    d = tmp_path_factory.mktemp("lag")
    require_programs("M3B_PUBLISHER", "M3B_LISTENER")
    open(REPORT, "w").close()
    write_configs(tb, d, PLANE, {"publisher.id": f"it-lag-{os.getpid()}"}, {
        "listener.id": f"it-lag-{RUN}", "listener.namespaces": [NAMESPACE],
        "listener.workers": 1, "listener.queue_depth": 4096,
        "heartbeat.interval_ms": 500, "lag.verdict_window_ms": 4000,
        "retry.initial_backoff_ms": 100, "retry.max_backoff_ms": 500,
        "shutdown.grace_ms": 5000, "http.address": "127.0.0.1:0",
        "kube.kubeconfig": f"{d}/kubeconfig",
        "kafka.auto.commit.interval.ms": 500}, seal=False)
    kubeconfig = yaml.safe_load(open(tb["M3B_TB_KUBE_LISTENER_KUBECONFIG"]))
    server = urllib.parse.urlparse(kubeconfig["clusters"][0]["cluster"]["server"])
    proxy = KubeProxy(server.hostname, server.port)
    kubeconfig["clusters"][0]["cluster"]["server"] = (
        f"https://{server.hostname}:{proxy.port}")
    (d / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    r = publisher(d, ["topics", "create"])
    assert r.returncode == 0, r.stdout + r.stderr
    state = {"d": d, "proxy": proxy}
    state["listener"] = Listener(d)
    placed = publish(d, 20, "r0")
    # the WARN scenario loads one partition, chosen by this copy of the
    # partitioner: check it agrees with the publisher's
    assert placed == {f"/v1/ConfigMap/{NAMESPACE}/{n}": partition_of(n)
                      for n in names(20)}, placed
    wait_for(lambda: caught_up(tb), 90, "the listener to catch up")
    yield state
    state["listener"].stop()
    proxy.cut()
    # leave the group at the end of the topic for the next run
    reset_group(tb, lambda tp, lo, hi: hi)


def partition_of(name, partitions=3):
    key = f"/v1/ConfigMap/{NAMESPACE}/{name}".encode()
    return murmur2_partition(key, partitions)


def names(count, partition=None):
    """count ConfigMap names of this run, all on one partition if asked."""
    out, i = [], 0
    while len(out) < count:
        name = f"lag-{RUN}-{i}"
        if partition is None or partition_of(name) == partition:
            out.append(name)
        i += 1
    return out


def publish(d, count, tag, partition=None):
    """One release of count ConfigMaps whose data differs per tag (so every
    record is a real write, not a no-op); {key: partition} it reported."""
    docs = "---\n".join(f"""apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: {NAMESPACE}}}
data: {{v: "{tag}-{name}"}}
""" for name in names(count, partition))
    r = publisher(d, ["publish", "-f", "-", "--json"], stdin=docs)
    assert r.returncode == 0, r.stderr
    return {o["key"]: o["partition"]
            for o in json.loads(r.stdout)["objects"]}


def admin_consumer(tb, group=GROUP):
    """An independent client (confluent-kafka, PLAINTEXT admin door); its
    group.id only names what committed() reads, it never subscribes."""
    return Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                     "group.id": group, "enable.auto.commit": False,
                     "enable.partition.eof": True})


def broker_view(tb):
    """{partition: (committed or None, low, high)} read by confluent-kafka."""
    c = admin_consumer(tb)
    md = c.list_topics(DESIRED, timeout=10)
    tps = [TopicPartition(DESIRED, p) for p in md.topics[DESIRED].partitions]
    out = {}
    for tp in c.committed(tps, timeout=10):
        lo, hi = watermarks(c, TopicPartition(DESIRED, tp.partition))
        out[tp.partition] = (tp.offset if tp.offset >= 0 else None, lo, hi)
    c.close()
    return out


def caught_up(tb):
    return all(c is not None and c >= hi or hi == 0
               for c, _, hi in broker_view(tb).values())


def record_timestamp(tb, partition, offset):
    """Kafka timestamp (ms) of the first record at or after offset."""
    c = admin_consumer(tb, f"it-lag-reader-{uuid.uuid4()}")
    c.assign([TopicPartition(DESIRED, partition, offset)])
    deadline = time.time() + 20
    try:
        while time.time() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            return m.timestamp()[1]
    finally:
        c.close()
    pytest.fail(f"no record at {DESIRED} [{partition}] @ {offset}")


def reset_group(tb, offset_of):
    """Commits offset_of(partition, low, high) for every partition (the
    group must have no members)."""
    c = admin_consumer(tb)
    view = broker_view(tb)
    c.commit(offsets=[TopicPartition(DESIRED, p, offset_of(p, lo, hi))
                      for p, (_, lo, hi) in view.items()], asynchronous=False)
    c.close()


def lag_cli(d, config, *args, timeout=60):
    """(exit code, parsed --json output, stderr) of m3bridge-listener lag."""
    r = subprocess.run([LISTENER, "lag", "--config", str(d / config), "--json"]
                       + list(args), capture_output=True, text=True,
                       timeout=timeout)
    out = r.stdout.strip().splitlines()
    assert out, f"lag printed nothing (exit {r.returncode}): {r.stderr}"
    return r.returncode, json.loads(out[-1]), r.stderr


def summary(doc):
    parts = ", ".join(
        f"p{p['partition']} committed {p['committed']} hwm "
        f"{p['high_watermark']} lag {p['lag']} ({p['lag_seconds']} s) "
        f"{p['verdict']}" for p in doc["partitions"])
    return (f"group {doc['group']} {doc['state']} ({doc['members']} member"
            f"s): {parts}; group lag {doc['lag']} -> {doc['verdict']}")


def assert_matches_broker(tb, doc):
    view = broker_view(tb)
    assert len(doc["partitions"]) == len(view)
    for p in doc["partitions"]:
        committed, lo, hi = view[p["partition"]]
        assert p["committed"] == committed, (p, view)
        assert p["low_watermark"] == lo, (p, view)
        assert p["high_watermark"] == hi, (p, view)
        want = hi - committed if committed is not None else hi
        assert p["lag"] == max(want, 0), (p, view)


def test_lag_json_agrees_with_confluent_kafka(tb, bed):
    d = bed["d"]
    # either plane: the control plane's principal and the listener's
    for config in ("publisher.yaml", "listener.yaml"):
        rc, doc, err = lag_cli(d, config, "--window", "0")
        assert rc == 0, err
        assert (doc["group"], doc["topic"]) == (GROUP, DESIRED)
        assert doc["state"] == "Stable" and doc["members"] == 1, doc
        assert doc["verdict"] is None  # --window 0: no verdict
        assert_matches_broker(tb, doc)
        for p in doc["partitions"]:
            assert p["owned"] is True, p
            assert p["lag"] == 0 and p["lag_seconds"] == 0, p
    say(f"caught up, --window 0: {summary(doc)}")


def gauge(listener, name, partition=None):
    """Value of one of the listener's lag series from /metrics."""
    for line in listener.metrics().splitlines():
        if not line.startswith(name + "{") or f'group="{GROUP}"' not in line:
            continue
        if partition is None or f'partition="{partition}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return None


def test_stall_and_prometheus_lag_seconds(tb, bed):
    """Apiserver cut: the listener retries, its offsets stop, lag and lag
    seconds grow: STALL in the gauges and the CLI, and Prometheus reads the
    lag in seconds that the record timestamps say; 0 after catching up."""
    d, proxy, listener = bed["d"], bed["proxy"], bed["listener"]
    prom = Prometheus(d, listener.port)
    try:
        wait_for(lambda: prom.query(
            f'kafka_consumergroup_group_lag{{group="{GROUP}"}}'), 30,
            "Prometheus to scrape the listener")
        proxy.cut()
        publish(d, 30, "stall")
        view = broker_view(tb)
        behind = {p: v for p, v in view.items() if v[2] > v[0]}
        assert behind, view
        oldest = {p: record_timestamp(tb, p, c)
                  for p, (c, _, _) in behind.items()}
        lag_q = f'kafka_consumergroup_group_lag{{group="{GROUP}",topic="{DESIRED}"}}'

        def prom_lag_is_backlog():
            got = {int(m["partition"]): v for m, v in prom.query(lag_q)}
            return all(got.get(p) == hi - c for p, (c, _, hi) in behind.items())
        wait_for(prom_lag_is_backlog, 30,
                 "Prometheus to show the backlog in messages")
        time.sleep(2)  # lag seconds well above the scrape and refresh steps
        t = time.time()
        got = {int(m["partition"]): v for m, v in prom.query(
            f'kafka_consumergroup_group_lag_seconds{{group="{GROUP}"}}')}
        for p, ts in oldest.items():
            want = t - ts / 1000.0
            # one scrape (1 s) and one lag refresh (0.5 s) may lie between
            assert want - 2.5 <= got[p] <= want + 0.5, (p, got[p], want)
            say(f"STALL: Prometheus lag seconds of p{p} = {got[p]:.2f}, "
                f"expected {want:.2f} from the record timestamp")

        # the listener's own verdict after one window (4 s) of no progress
        wait_for(lambda: gauge(listener, "m3bridge_group_lag_verdict") == 2,
                 30, "m3bridge_group_lag_verdict to be STALL (2)")
        for p in behind:
            assert gauge(listener, "m3bridge_lag_verdict", p) == 2
        backlog = [v for line in listener.metrics().splitlines()
                   if line.startswith("m3bridge_retry_backlog ")
                   for v in [float(line.split()[1])]]
        assert backlog and backlog[0] >= 1, backlog
        wait_for(lambda: prom.query(
            f'm3bridge_group_lag_verdict{{group="{GROUP}"}} == 2'), 10,
            "Prometheus to see the STALL verdict")
        rc, doc, err = lag_cli(d, "publisher.yaml", "--window", "2",
                               "--interval", "0.5")
        say(f"STALL scenario (apiserver cut, listener running), exit {rc}: "
            f"{summary(doc)}")
        assert rc == EXIT["STALL"] and doc["verdict"] == "STALL", (doc, err)
        for p in doc["partitions"]:
            assert p["verdict"] == ("STALL" if p["partition"] in behind
                                    else "OK"), p
        text = listener.metrics()
        r = subprocess.run(["promtool", "check", "metrics"], input=text,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stdout + r.stderr

        proxy.restore()

        def prom_caught_up():
            lag = prom.query(f'sum(kafka_consumergroup_group_lag'
                             f'{{group="{GROUP}"}})')
            secs = prom.query(f'max(kafka_consumergroup_group_lag_seconds'
                              f'{{group="{GROUP}"}})')
            return lag and secs and lag[0][1] == 0 and secs[0][1] == 0
        wait_for(prom_caught_up, 60, "Prometheus to read lag 0 after catch-up")
        say("after the apiserver came back: Prometheus sum(lag) = 0, "
            "max(lag seconds) = 0")
        wait_for(lambda: gauge(listener, "m3bridge_group_lag_verdict") == 0,
                 30, "the verdict to return to OK")
    finally:
        proxy.restore()
        prom.stop()
    assert listener.proc.poll() is None, listener.text()


def test_warn_when_outpaced(tb, bed):
    """The publisher outpaces a listener whose apiserver calls are slowed:
    offsets move, the lag grows: WARN. Only partition 0 gets records: with
    one worker taking records in fetch order, partitions loaded together
    take turns, and one waiting for its turn longer than the window is
    rightly STALL."""
    d, proxy, listener = bed["d"], bed["proxy"], bed["listener"]
    proxy.slow(0.25)
    stop = threading.Event()

    def keep_publishing():
        n = 0
        while not stop.is_set():
            publish(d, 40, f"warn{n}", partition=0)
            n += 1
    publisher = threading.Thread(target=keep_publishing, daemon=True)
    publisher.start()
    try:
        # behind already when sampling starts: a lag of 0 anywhere in the
        # window means OK (rule 3)
        def behind():
            committed, _, hi = broker_view(tb)[0]
            return hi - committed >= 30
        wait_for(behind, 30, "partition 0 to fall behind")
        rc, doc, err = lag_cli(d, "publisher.yaml", "--window", "6",
                               "--interval", "0.5")
        say(f"WARN scenario (publisher outpacing a slowed listener), exit "
            f"{rc}: {summary(doc)}")
        assert rc == EXIT["WARN"] and doc["verdict"] == "WARN", (doc, err)
        p0 = doc["partitions"][0]
        assert p0["verdict"] == "WARN" and p0["lag"] > 0, p0
        wait_for(lambda: gauge(listener, "m3bridge_group_lag_verdict") == 1,
                 20, "the listener's own verdict to be WARN (1)")
    finally:
        stop.set()
        publisher.join(timeout=60)
        proxy.restore()
    wait_for(lambda: caught_up(tb), 90, "the listener to catch up")
    assert listener.proc.poll() is None, listener.text()


def test_stop_when_listener_is_gone(tb, bed):
    """No member, no progress, lag > 0: STOP; the numbers agree with
    confluent-kafka, and the lag in seconds with the record's timestamp."""
    d = bed["d"]
    assert bed["listener"].stop() == 0, bed["listener"].text()
    publish(d, 10, "stop")
    rc, doc, err = lag_cli(d, "publisher.yaml", "--window", "2",
                           "--interval", "0.5")
    say(f"STOP scenario (listener stopped), exit {rc}: {summary(doc)}")
    assert rc == EXIT["STOP"] and doc["verdict"] == "STOP", (doc, err)
    assert doc["state"] == "Empty" and doc["members"] == 0, doc
    assert_matches_broker(tb, doc)
    for p in doc["partitions"]:
        assert p["owned"] is False, p
        if p["lag"] == 0:
            assert p["verdict"] == "OK" and p["lag_seconds"] == 0, p
            continue
        assert p["verdict"] == "STOP", p
        ts = record_timestamp(tb, p["partition"], p["committed"])
        want = (doc["time_ms"] - ts) / 1000.0
        # the CLI reads the clock just before printing time_ms
        assert abs(p["lag_seconds"] - want) < 0.05, (p, want)

    # --watch: one JSON line per refresh (not a terminal), OK until the
    # window holds evidence, then STOP; SIGINT ends it with that verdict
    watch = subprocess.Popen([LISTENER, "lag", "--config",
                              str(d / "publisher.yaml"), "--json", "--watch",
                              "--window", "1", "--interval", "0.2"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    time.sleep(2.5)
    watch.send_signal(signal.SIGINT)
    out, err = watch.communicate(timeout=20)
    docs = [json.loads(line) for line in out.splitlines()]
    say(f"--watch: {len(docs)} refreshes, verdicts "
        f"{[x['verdict'] for x in docs]}, exit {watch.returncode}")
    assert len(docs) >= 5, (out, err)
    assert docs[0]["verdict"] == "OK" and not docs[0]["window_complete"]
    assert docs[-1]["verdict"] == "STOP" and docs[-1]["window_complete"]
    assert watch.returncode == EXIT["STOP"], err


def test_rewind_when_offsets_go_back(tb, bed):
    """Offsets reset to earlier ones while the command samples: REWIND."""
    d = bed["d"]
    before = broker_view(tb)
    cli = subprocess.Popen([LISTENER, "lag", "--config",
                            str(d / "publisher.yaml"), "--json", "--window",
                            "3", "--interval", "0.5"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    time.sleep(1.2)
    reset_group(tb, lambda p, lo, hi: max(lo, before[p][0] - 5))
    out, err = cli.communicate(timeout=60)
    doc = json.loads(out.strip().splitlines()[-1])
    say(f"REWIND scenario (offsets reset by 5 while sampling), exit "
        f"{cli.returncode}: {summary(doc)}")
    assert cli.returncode == EXIT["REWIND"] and doc["verdict"] == "REWIND", (
        doc, err)
    for p in doc["partitions"]:
        if before[p["partition"]][0] > before[p["partition"]][1]:
            assert p["verdict"] == "REWIND", p
