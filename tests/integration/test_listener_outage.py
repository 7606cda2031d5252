"""test_listener_outage.py - m3bridge-listener while the real broker or the
real kube-apiserver of the test bed is stopped (tests/testbed/testbed stop)
and started again (DESIGN.md 6.5-6.7, docs/OPERATIONS.md "Failure
behaviour"):

* broker down for 60 s: nothing is deleted or changed, /readyz says 503
  with a kafka reason while /healthz stays 200; afterwards the listener
  re-publishes every managed object's status (status resync), applies
  what is published and its statuses arrive;
* apiserver down for 30 s: /readyz says 503 with a kubernetes reason, the
  group's committed offsets never pass the events that could not be
  applied, and everything is applied once the apiserver is back.

Plane "outage", namespace m3-out. These tests stop a component that
every other test needs, so CMake marks them RUN_SERIAL; each one starts
the component again in a finally block, also when it fails.
"""
import time
import uuid

import pytest
from listener_run import (Plane, configmaps, free_port, http_get, kubectl,
                          metric, release_yaml, testbed_run, wait_for)
from testbed_py import read_testbed_env

PLANE = "outage"
NS = "m3-out"
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


@pytest.fixture(scope="module")
def plane(tb, tmp_path_factory):
    return Plane(tb, tmp_path_factory.mktemp("outage"), PLANE, [NS],
                 f"outage-{RUN}")


def keys_of(names):
    return [f"/v1/ConfigMap/{NS}/{n}" for n in names]


def cleanup(tb, names):
    for n in names:
        kubectl(tb, "delete", "configmap", "-n", NS, n, "--wait=false")


def test_broker_down_60s(tb, plane):
    port = free_port()
    before_names = [f"kd-{RUN}-{i}" for i in range(4)]
    after_names = [f"ka-{RUN}-{i}" for i in range(4)]
    listener = plane.listener(port)
    kafka_stopped = False
    try:
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, 60,
                 "/healthz to answer")
        plane.publish(release_yaml(before_names, NS), f"kd-{RUN}")
        plane.wait_applied(f"kd-{RUN}", listener)
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 60,
                 "/readyz to say ready before the outage")
        objects = configmaps(tb, NS, f"kd-{RUN}")
        assert sorted(objects) == sorted(before_names), objects
        resyncs = metric(port, "m3bridge_status_resync_runs_total")
        assert resyncs >= 1, "a status resync at start"

        # the broker goes away for 60 s
        testbed_run(tb, "stop", "kafka")
        kafka_stopped = True
        down_at = time.time()
        saw_kafka_503 = None
        healthz = []
        while time.time() - down_at < 60:
            healthz.append(http_get(port, "/healthz"))
            status, body = http_get(port, "/readyz")
            if status == 503 and "kafka" in body.lower():
                saw_kafka_503 = body
            assert listener.alive(), listener.text()[-4000:]
            time.sleep(2)
        assert saw_kafka_503, ("/readyz never said 503 with a kafka reason "
                               "while the broker was down")
        assert all(h == (200, "ok") for h in healthz), healthz
        # nothing was deleted or changed while Kafka was away
        assert configmaps(tb, NS, f"kd-{RUN}") == objects
        back_at_ms = int(time.time() * 1000)
        testbed_run(tb, "start", "kafka")
        kafka_stopped = False

        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 120,
                 "/readyz to say ready again after the broker returned")
        # status resync: the statuses of the objects applied before the
        # outage are published again, as resync records (partition -1)
        wait_for(lambda: metric(port, "m3bridge_status_resync_runs_total") >=
                 resyncs + 1, 120, "a status resync after the reconnect")

        def resynced():
            got = plane.statuses(keys_of(before_names), back_at_ms)
            return {s["key"] for s in got if s["source_partition"] == -1 and
                    s["phase"] == "APPLIED"} == set(keys_of(before_names))
        wait_for(resynced, 120, "the resync statuses on the status topic")

        # what is published after the broker returned is applied
        plane.publish(release_yaml(after_names, NS), f"ka-{RUN}")
        out = plane.wait_applied(f"ka-{RUN}", listener)
        assert "APPLIED" in out
        assert sorted(configmaps(tb, NS, f"ka-{RUN}")) == sorted(after_names)
        # and still nothing of the first release was touched
        assert configmaps(tb, NS, f"kd-{RUN}") == objects
        assert listener.alive(), listener.text()[-4000:]
    finally:
        if kafka_stopped:
            testbed_run(tb, "start", "kafka")
        rc = listener.stop()
    assert rc == 0, listener.text()[-6000:]
    cleanup(tb, before_names + after_names)


def test_apiserver_down_30s(tb, plane):
    port = free_port()
    first = [f"ad-{RUN}-{i}" for i in range(3)]
    during = [f"aw-{RUN}-{i}" for i in range(6)]
    listener = plane.listener(port)
    api_stopped = False
    try:
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, 60,
                 "/healthz to answer")
        plane.publish(release_yaml(first, NS), f"ad-{RUN}")
        plane.wait_applied(f"ad-{RUN}", listener)
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 60,
                 "/readyz to say ready before the outage")
        retries_before = metric(port, "m3bridge_retries_total")

        testbed_run(tb, "stop", "apiserver")
        api_stopped = True
        down_at = time.time()
        # published while the apiserver is away: cannot be applied yet
        plane.publish(release_yaml(during, NS), f"aw-{RUN}")
        want = set(keys_of(during))
        first_offset = {}
        for p, off, _, key, _, _ in plane.read_topic(plane.desired):
            if key and key.decode() in want:
                first_offset[p] = min(first_offset.get(p, off), off)
        assert len(first_offset) >= 1, "the release's records not found"

        saw_kube_503 = None
        samples = 0
        while time.time() - down_at < 30:
            status, body = http_get(port, "/readyz")
            if status == 503 and "kubernetes" in body.lower():
                saw_kube_503 = body
            assert http_get(port, "/healthz") == (200, "ok")
            committed = plane.committed()
            for p, off in first_offset.items():
                # never committed past an event that was not applied
                assert committed[p] <= off, (p, committed[p], off)
            samples += 1
            assert listener.alive(), listener.text()[-4000:]
            time.sleep(2)
        assert samples >= 5
        assert saw_kube_503, ("/readyz never said 503 with a kubernetes "
                              "reason while the apiserver was down")
        assert metric(port, "m3bridge_retries_total") > retries_before
        testbed_run(tb, "start", "apiserver")
        api_stopped = False

        # everything is applied once it is back, and committed past it
        plane.wait_applied(f"aw-{RUN}", listener)
        assert sorted(configmaps(tb, NS, f"aw-{RUN}")) == sorted(during)
        ends = plane.high_watermarks()

        def committed_to_end():
            c = plane.committed()
            return all(c[p] >= ends[p] for p in first_offset)
        wait_for(committed_to_end, 60, "the offsets to be committed to the end")
        wait_for(lambda: http_get(port, "/readyz")[0] == 200, 60,
                 "/readyz to say ready again")
        assert listener.alive(), listener.text()[-4000:]
    finally:
        if api_stopped:
            testbed_run(tb, "start", "apiserver")
        rc = listener.stop()
    assert rc == 0, listener.text()[-6000:]
    cleanup(tb, first + during)
