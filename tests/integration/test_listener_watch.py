"""test_listener_watch.py - the WATCH that keeps the listener's index
current (DESIGN.md 6.4), against the real kube-apiserver of the test bed:
an object deleted or edited by hand (admin kubectl) is no longer
"already applied", so the same event delivered again writes it again,
while an untouched object's redelivery stays a no-op. Redelivery is the
exact signed record copied from the desired topic and produced again
(what a publisher retry or a consumer rewind delivers).

Plane "outage", namespace m3-out (the outage tests' plane: they are
RUN_SERIAL, so never beside this one).
"""
import json
import re
import time
import uuid

import pytest
from confluent_kafka import Producer
from listener_run import (Plane, configmaps, free_port, http_get, kubectl,
                          release_yaml, wait_for)
from testbed_py import read_testbed_env

PLANE = "outage"
NS = "m3-out"
RUN = uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


@pytest.fixture(scope="module")
def plane(tb, tmp_path_factory):
    return Plane(tb, tmp_path_factory.mktemp("watch"), PLANE, [NS],
                 f"watch-{RUN}")


def key(name):
    return f"/v1/ConfigMap/{NS}/{name}"


def redeliver(tb, plane, names):
    """Produces the latest desired record of each name again, byte for
    byte (key, value, signature headers); returns the time it was sent."""
    latest = {}
    for p, off, _, k, v, headers in plane.read_topic(plane.desired):
        if k and v is not None and k.decode() in {key(n) for n in names}:
            latest[k] = (v, headers)
    assert len(latest) == len(names), latest.keys()
    sent_ms = int(time.time() * 1000)
    prod = Producer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"]})
    for k, (v, headers) in latest.items():
        prod.produce(plane.desired, key=k, value=v, headers=headers)
    assert prod.flush(30) == 0
    return sent_ms


def test_watch_finds_hand_made_changes(tb, plane):
    port = free_port()
    gone, edited, kept = (f"wg-{RUN}", f"we-{RUN}", f"wk-{RUN}")
    names = [gone, edited, kept]
    listener = plane.listener(port)
    try:
        wait_for(lambda: http_get(port, "/healthz")[0] == 200, 60,
                 "/healthz to answer")
        plane.publish(release_yaml(names, NS, "desired"), f"w-{RUN}")
        plane.wait_applied(f"w-{RUN}", listener)
        wait_for(lambda: re.search(
            rf"watching the managed v1 ConfigMap objects in {NS}\b",
            listener.text()), 60, "the listener to watch its ConfigMaps")
        before = configmaps(tb, NS, RUN)
        assert sorted(before) == sorted(names), before

        # by hand: one deleted, one edited; the third left alone
        assert kubectl(tb, "delete", "configmap", "-n", NS,
                       gone).returncode == 0
        r = kubectl(tb, "patch", "configmap", "-n", NS, edited, "--type",
                    "merge", "-p", json.dumps({"data": {"value": "by hand"}}))
        assert r.returncode == 0, r.stderr
        wait_for(lambda: key(gone) + " was deleted" in listener.text() and
                 key(edited) + " was changed" in listener.text(), 60,
                 "the watch to see both hand-made changes")

        # the same three events again: the first two are written again
        sent_ms = redeliver(tb, plane, names)

        def answered():
            got = {s["key"]: s for s in plane.statuses(
                [key(n) for n in names], sent_ms) if s["source_offset"] >= 0}
            return got if len(got) == 3 else None
        wait_for(answered, 90, "statuses of the redelivered events")
        statuses = answered()
        for n in names:
            assert statuses[key(n)]["phase"] == "APPLIED", statuses[key(n)]
        assert "already applied" in statuses[key(kept)]["message"]
        for n in (gone, edited):
            assert "again" in statuses[key(n)]["message"], statuses[key(n)]

        after = configmaps(tb, NS, RUN)
        assert sorted(after) == sorted(names), after
        assert after[gone][0] != before[gone][0], "not created anew"
        assert after[gone][2] == {"value": "desired"}
        assert after[edited][2] == {"value": "desired"}, "hand edit not undone"
        assert after[kept] == before[kept], "the untouched one was written"

        # the same manifest at a new generation also brings a deleted
        # object back
        assert kubectl(tb, "delete", "configmap", "-n", NS,
                       kept).returncode == 0
        plane.publish(release_yaml([kept], NS, "desired"), f"w2-{RUN}")
        plane.wait_applied(f"w2-{RUN}", listener)
        assert kept in configmaps(tb, NS, RUN)
        assert listener.alive(), listener.text()[-4000:]
    finally:
        rc = listener.stop()
    assert rc == 0, listener.text()[-6000:]
    for n in names:
        kubectl(tb, "delete", "configmap", "-n", NS, n, "--wait=false")
