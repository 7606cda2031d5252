"""test_replay.py - m3bridge-listener replay (disaster recovery) against the
real test bed: the real broker (SASL_SSL as the dr plane's listener
principal m3-listener-dr) and the real kube-apiserver (the listener's bound
service account, namespaces m3-dr-a, m3-dr-b and m3-dr-c, and write access
to the one CustomResourceDefinition the test bed names for it).

The tests run in order and build on each other: the first publishes 2,000
objects with updates and deletes and lets `run` apply them; the others
wipe parts of the cluster and replay.

"Wiping" deletes every object of the kinds the tests publish in the three
namespaces with the admin credentials (a deletecollection per kind and
namespace). Deleting the namespaces themselves never finishes on the test
bed (no controller-manager finalizes them), and restarting etcd on an
empty data dir would break tests running in parallel; what the replay has
to restore is the same either way.

At the start the plane's topics and consumer group are deleted and created
again (through the test bed's PLAINTEXT admin door), so every run starts
from an empty desired topic and an empty group.

Needs the test bed (tests/testbed/testbed up); fails, never skips, without it.
"""
import base64
import functools
import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from confluent_kafka import (Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic
import testbed_py
from testbed_py import (BRISK, LISTENER, control_client, read_testbed_env,
                        require_programs, watermarks, write_configs)

# each poll lists 2,000 objects or reads every partition: once a second
wait_for = functools.partial(testbed_py.wait_for, interval=1)

PLANE = "dr"
DESIRED = f"m3.{PLANE}.desired"
STATUS = f"m3.{PLANE}.status"
DLQ = f"m3.{PLANE}.dlq"
GROUP = f"m3bridge-{PLANE}"
NAMESPACES = ("m3-dr-a", "m3-dr-b", "m3-dr-c")
RUN = uuid.uuid4().hex[:6]
CRD_GROUP = "dr.m3bridge.test"
CRD_NAME = f"widgets.{CRD_GROUP}"
# (apiVersion, kind, plural) of everything the tests publish, namespaced
KINDS = (("v1", "ConfigMap", "configmaps"), ("v1", "Secret", "secrets"),
         ("v1", "Service", "services"),
         ("v1", "ServiceAccount", "serviceaccounts"),
         ("apps/v1", "Deployment", "deployments"))
COUNT = 2000

# state handed from one test to the next
STATE = {}


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


# --- the Kubernetes API with admin credentials --------------------------------

def kube(tb, method, path, body=None, ok=(200, 201, 202), timeout=120):
    """(status, decoded JSON or None) of an admin request."""
    ctx = ssl.create_default_context(cafile=tb["M3B_TB_KUBE_CA"])
    token = open(tb["M3B_TB_KUBE_ADMIN_TOKEN_FILE"]).read().strip()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(tb["M3B_TB_KUBE_SERVER"] + path, data=data,
                                 method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=timeout) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    if ok and status not in ok:
        pytest.fail(f"{method} {path}: HTTP {status}: {text[:500]!r}")
    return status, (json.loads(text) if text else None)


def api_root(api_version):
    return "/api/v1" if api_version == "v1" else f"/apis/{api_version}"


def list_objects(tb, namespaces=NAMESPACES, kinds=KINDS):
    """key -> object of every object of kinds in namespaces."""
    out = {}
    for ns in namespaces:
        for api_version, kind, plural in kinds:
            _, body = kube(tb, "GET",
                           f"{api_root(api_version)}/namespaces/{ns}/{plural}")
            for item in body["items"]:
                group = api_version.rpartition("/")[0]
                version = api_version.rpartition("/")[2]
                key = f"{group}/{version}/{kind}/{ns}/{item['metadata']['name']}"
                out[key] = item
    return out


def comparable(obj):
    """What a restore must reproduce: everything but what the apiserver
    assigns to a new object (uid, resourceVersion, timestamps, generation,
    managedFields, a Service's cluster IPs) and status."""
    o = json.loads(json.dumps(obj))
    md = o["metadata"]
    for f in ("uid", "resourceVersion", "creationTimestamp", "generation",
              "managedFields"):
        md.pop(f, None)
    o.pop("status", None)
    spec = o.get("spec")
    if isinstance(spec, dict):  # a Service's (the only kind that has them)
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    return o


def wipe(tb, namespaces=NAMESPACES, kinds=KINDS, selector=None):
    """Deletes every object of kinds in namespaces (deletecollection) and
    waits until they are gone."""
    q = f"?labelSelector={selector}" if selector else ""
    for ns in namespaces:
        for api_version, _, plural in kinds:
            kube(tb, "DELETE",
                 f"{api_root(api_version)}/namespaces/{ns}/{plural}{q}")
    deadline = time.time() + 120
    while time.time() < deadline:
        left = [k for k, o in list_objects(tb, namespaces, kinds).items()
                if not selector or all(
                    o["metadata"].get("labels", {}).get(a) == b
                    for a, b in (s.split("=") for s in selector.split(",")))]
        if not left:
            return
        time.sleep(0.5)
    pytest.fail(f"wipe: objects left: {left[:5]}")


def delete_crd(tb):
    kube(tb, "DELETE",
         f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD_NAME}",
         ok=(200, 202, 404))
    deadline = time.time() + 90
    while time.time() < deadline:
        status, _ = kube(tb, "GET", "/apis/apiextensions.k8s.io/v1/"
                         f"customresourcedefinitions/{CRD_NAME}", ok=None)
        if status == 404:
            return
        time.sleep(0.5)
    pytest.fail(f"{CRD_NAME} was not deleted")


# --- Kafka --------------------------------------------------------------------

def admin_client(tb):
    return AdminClient({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"]})


def reset_plane(tb):
    """Deletes the plane's topics and consumer group (PLAINTEXT admin
    door), so this run starts from nothing."""
    a = admin_client(tb)
    topics = [t for t in (DESIRED, STATUS, DLQ)
              if t in a.list_topics(timeout=30).topics]
    if topics:
        for f in a.delete_topics(topics, operation_timeout=60).values():
            f.result()
    delete_group(tb)
    deadline = time.time() + 60
    while time.time() < deadline:
        if not any(t in a.list_topics(timeout=30).topics for t in topics):
            return
        time.sleep(0.5)
    pytest.fail(f"topics {topics} were not deleted")


def delete_group(tb):
    """Deletes the listener group (absent is fine), retrying while a fresh
    broker's group coordinator comes up."""
    a = admin_client(tb)
    deadline = time.time() + 60
    while True:
        try:
            for f in a.delete_consumer_groups([GROUP],
                                              request_timeout=30).values():
                f.result()
            return
        except KafkaException as e:
            code = e.args[0].code()
            if code == KafkaError.GROUP_ID_NOT_FOUND:
                return
            if code not in (KafkaError.NOT_COORDINATOR,
                            KafkaError.COORDINATOR_NOT_AVAILABLE,
                            KafkaError.COORDINATOR_LOAD_IN_PROGRESS) or \
                    time.time() > deadline:
                raise
            time.sleep(0.5)


def group_committed(tb):
    """partition -> committed offset of the listener group (-1: none)."""
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": GROUP, "enable.auto.commit": False})
    md = c.list_topics(DESIRED, timeout=10)
    tps = [TopicPartition(DESIRED, p) for p in md.topics[DESIRED].partitions]
    out = {tp.partition: tp.offset for tp in c.committed(tps, timeout=10)}
    c.close()
    return {p: (o if o >= 0 else -1) for p, o in out.items()}


def high_watermarks(tb):
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": f"dr-probe-{uuid.uuid4()}",
                  "isolation.level": "read_committed"})
    md = c.list_topics(DESIRED, timeout=10)
    out = {p: watermarks(c, TopicPartition(DESIRED, p))[1]
           for p in md.topics[DESIRED].partitions}
    c.close()
    return out


def read_topic(tb, topic):
    """Every record of topic: (partition, offset, key, value, headers)."""
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": f"dr-read-{uuid.uuid4()}",
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": "read_committed"})
    md = c.list_topics(topic, timeout=10)
    parts = list(md.topics[topic].partitions)
    c.assign([TopicPartition(topic, p, 0) for p in parts])
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
        out.append((m.partition(), m.offset(), m.key(), m.value(),
                    dict(m.headers() or [])))
    c.close()
    return out


def control_producer(tb):
    return Producer(control_client(tb))


# --- the programs -------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tb):
    d = tmp_path_factory.mktemp("replay")
    require_programs("M3B_PUBLISHER", "M3B_LISTENER")
    if CRD_NAME not in tb.get("M3B_TB_KUBE_LISTENER_CRDS", "").split():
        pytest.fail(f"the test bed does not let the listener write {CRD_NAME}: "
                    "restart it (tests/testbed/testbed down && up)",
                    pytrace=False)
    write_configs(tb, d, PLANE, {"publisher.id": f"dr-{os.getpid()}",
                                 "publish.timeout_ms": 120000}, {
        **BRISK, "listener.id": f"dr-{RUN}",
        "listener.namespaces": NAMESPACES,
        "listener.cluster_kinds":
            ["apiextensions.k8s.io/CustomResourceDefinition"],
        # tests run side by side: no fixed port
        "http.address": "127.0.0.1:0", "log.level": "warn"})
    reset_plane(tb)
    wipe(tb)
    delete_crd(tb)
    deadline = time.time() + 60
    while True:
        r = publisher(d, ["topics", "create"])
        if r.returncode == 0:
            break
        if time.time() > deadline:
            pytest.fail("topics create: " + r.stdout + r.stderr)
        time.sleep(1)
    return d


def publisher(d, args, stdin=None, timeout=300):
    return testbed_py.publisher(d, args, stdin, timeout)


def publish(d, docs, release):
    # YAML documents (JSON is YAML): a stream of several needs the YAML
    # reader, which a leading "---" selects
    r = publisher(d, ["publish", "-f", "-", "--release", release],
                  stdin="".join("---\n" + json.dumps(x) + "\n" for x in docs))
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]


def replay(d, *args, timeout=600):
    """(exit code, --json summary or None, stderr) of one replay."""
    r = subprocess.run([LISTENER, "replay", "--config",
                        str(d / "listener.yaml"), "--json"] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    try:
        summary = json.loads(r.stdout)
    except ValueError:
        summary = None
    return r.returncode, summary, r.stderr


def written(summary):
    """Objects the replay wrote (created, changed, deleted, pruned)."""
    return sum(summary["results"][a].get("done", 0)
               for a in ("create", "change", "delete", "prune"))


# --- what is published ----------------------------------------------------------

def manifest(i, version):
    """Object i of the big release at a version (1: first, 2: updated)."""
    ns = NAMESPACES[i % 3]
    name = f"o-{i}"
    labels = {"app": f"a{i % 7}", "tier": "dr"}
    ann = {"example.com/version": str(version)}
    md = {"name": name, "namespace": ns, "labels": labels, "annotations": ann}
    kind = ("Secret" if i % 20 == 1 else "Service" if i % 20 == 2 else
            "ServiceAccount" if i % 40 == 3 else
            "Deployment" if i % 40 == 4 else "ConfigMap")
    if kind == "Secret":
        value = base64.b64encode(f"secret {i} v{version}".encode()).decode()
        return {"apiVersion": "v1", "kind": "Secret", "metadata": md,
                "type": "Opaque", "data": {"password": value}}
    if kind == "Service":
        return {"apiVersion": "v1", "kind": "Service", "metadata": md,
                "spec": {"selector": {"app": labels["app"]},
                         "ports": [{"port": 80 + version,
                                    "targetPort": 8080}]}}
    if kind == "ServiceAccount":
        return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": md}
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": md,
                "spec": {"replicas": version,
                         "selector": {"matchLabels": {"app": name}},
                         "template": {
                             "metadata": {"labels": {"app": name}},
                             "spec": {"containers": [{
                                 "name": "web",
                                 "image": f"example.com/web:{version}"}]}}}}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md,
            "data": {"index": str(i), "version": str(version),
                     "blob": "x" * (i % 300)}}


def key_of(doc):
    api = doc["apiVersion"]
    group, _, version = api.rpartition("/")
    return (f"{group}/{version}/{doc['kind']}/{doc['metadata']['namespace']}/"
            f"{doc['metadata']['name']}")


def caught_up(tb):
    committed = group_committed(tb)
    return all(committed.get(p, -1) >= hi
               for p, hi in high_watermarks(tb).items() if hi > 0)


# --- the tests ------------------------------------------------------------------

def test_restore_after_wipe(tb, workdir):
    """2,000 objects with updates and deletes across three namespaces,
    applied by `run`; the cluster wiped; the replay restores it object by
    object, deleted objects stay deleted, and `run` takes over from the
    fence without writing anything."""
    d = workdir
    first = [manifest(i, 1) for i in range(COUNT)]
    # three releases of the first versions, then updates, then deletes
    for part in range(3):
        publish(d, first[part::3], f"dr-{RUN}-v1-{part}")
    updated = [manifest(i, 2) for i in range(0, COUNT, 4)]
    publish(d, updated, f"dr-{RUN}-v2")
    deleted = [key_of(first[i]) for i in range(5, COUNT, 10)]
    for chunk in range(0, len(deleted), 100):
        r = publisher(d, ["delete"] + deleted[chunk:chunk + 100] +
                      ["--release", f"dr-{RUN}-del-{chunk}"])
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    log = open(d / "run.log", "w+")
    proc = subprocess.Popen([LISTENER, "run", "--config",
                             str(d / "listener.yaml")],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for(lambda: caught_up(tb), 400, "the listener to apply it all")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, open(d / "run.log").read()[-3000:]

    before = list_objects(tb)
    want = COUNT - len(deleted)
    assert len(before) == want, f"{len(before)} objects, want {want}"
    for key in deleted:
        assert key not in before
    for doc in updated:
        if key_of(doc) in before:
            got = before[key_of(doc)]["metadata"]["annotations"]
            assert got["example.com/version"] == "2"
            assert got["m3bridge.io/plane"] == PLANE

    # a new cluster and a new group: nothing there, no offsets
    wipe(tb)
    delete_group(tb)
    assert all(o == -1 for o in group_committed(tb).values())
    fence = high_watermarks(tb)

    rc, summary, err = replay(d)
    assert rc == 0, err[-3000:]
    print(f"restore of {want} objects: read {summary['read_ms']} ms, index "
          f"{summary['index_ms']} ms, apply {summary['apply_ms']} ms")
    assert summary["totals"]["create"] == want, summary["totals"]
    assert summary["totals"]["absent"] == len(deleted)
    assert summary["totals"]["failed"] == 0 and not summary["failures"]
    assert summary["results"]["create"] == {"done": want}
    assert summary["refused"] == 0
    assert {int(p): o for p, o in summary["fence"].items()} == fence

    after = list_objects(tb)
    assert sorted(after) == sorted(before)
    for key, obj in before.items():
        assert comparable(after[key]) == comparable(obj), key
    for key in deleted:
        assert key not in after

    # handover: the group had no offsets, so the fence was committed and
    # `run` starts after it, applying nothing again
    assert summary["handover"]["committed"] is True
    assert group_committed(tb) == fence
    versions = {k: o["metadata"]["resourceVersion"] for k, o in after.items()}
    log = open(d / "run2.log", "w+")
    proc = subprocess.Popen([LISTENER, "run", "--config",
                             str(d / "listener.yaml")],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        time.sleep(8)
        assert proc.poll() is None, open(d / "run2.log").read()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert {k: o["metadata"]["resourceVersion"]
            for k, o in list_objects(tb).items()} == versions
    STATE["objects"] = before
    STATE["deleted"] = deleted


def test_replay_onto_healthy_cluster_writes_nothing(tb, workdir):
    """A second replay finds every object at its generation and hash: no
    write (every resourceVersion stays), nothing but unchanged and absent."""
    before = {k: o["metadata"]["resourceVersion"]
              for k, o in list_objects(tb).items()}
    rc, summary, err = replay(workdir)
    assert rc == 0, err[-3000:]
    assert written(summary) == 0, summary["results"]
    t = summary["totals"]
    assert t["create"] == t["change"] == t["delete"] == t["prune"] == 0, t
    assert t["unchanged"] == len(before)
    assert summary["statuses"]["sent"] == 0
    # the group already had offsets: left alone unless --commit
    assert summary["handover"]["committed"] is False
    assert {k: o["metadata"]["resourceVersion"]
            for k, o in list_objects(tb).items()} == before


def test_dry_run_lists_and_writes_nothing(tb, workdir):
    """--dry-run names what would be created and left, exits 0, writes
    nothing (and sends no status)."""
    victims = sorted(STATE["objects"])[:25]
    for key in victims:
        group, version, kind, ns, name = key.split("/")
        plural = {k: p for _, k, p in KINDS}[kind]
        api = f"{group}/{version}" if group else version
        kube(tb, "DELETE", f"{api_root(api)}/namespaces/{ns}/{plural}/{name}")
    status_before = len(read_topic(tb, STATUS))
    r = subprocess.run([LISTENER, "replay", "--config",
                        str(workdir / "listener.yaml"), "--dry-run"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    listed = [line.split()[1] for line in r.stdout.splitlines()
              if line.startswith("create ")]
    assert sorted(listed) == victims, r.stdout[:2000]
    assert "dry run" in r.stdout
    left = list_objects(tb)
    for key in victims:
        assert key not in left
    assert len(read_topic(tb, STATUS)) == status_before
    # and the replay puts them back
    rc, summary, err = replay(workdir)
    assert rc == 0, err[-3000:]
    assert summary["results"]["create"] == {"done": len(victims)}


def test_point_in_time(tb, workdir):
    """--to-time between two releases restores the first release's state."""
    d = workdir
    ns = NAMESPACES[1]
    first = [{"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": f"pit-{i}", "namespace": ns},
              "data": {"release": "one"}} for i in range(10)]
    publish(d, first, f"pit-{RUN}-1")
    time.sleep(1.5)
    between = time.time()
    time.sleep(1.5)
    second = [dict(x, data={"release": "two"}) for x in first] + [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": f"pit-new-{i}", "namespace": ns},
         "data": {"release": "two"}} for i in range(5)]
    publish(d, second, f"pit-{RUN}-2")
    # the cluster is wiped of these objects, then restored as of `between`
    wipe(tb, [ns], KINDS[:1])
    at = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(between)) + \
        ".%03dZ" % int((between % 1) * 1000)
    STATE["between"], STATE["between_text"] = between, at
    rc, summary, err = replay(d, "--to-time", at)
    assert rc == 0, err[-3000:]
    cms = list_objects(tb, [ns], KINDS[:1])
    for i in range(10):
        key = f"/v1/ConfigMap/{ns}/pit-{i}"
        assert cms[key]["data"] == {"release": "one"}, key
    for i in range(5):
        assert f"/v1/ConfigMap/{ns}/pit-new-{i}" not in cms
    # everything else of the namespace (before the time) is back too
    for key, obj in STATE["objects"].items():
        if f"/ConfigMap/{ns}/" in key:
            assert comparable(cms[key]) == comparable(obj), key
    # a replay up to now then moves them to the second release
    rc, summary, err = replay(d)
    assert rc == 0, err[-3000:]
    assert summary["results"]["change"] == {"done": 10}
    assert summary["results"]["create"] == {"done": 5}
    cms = list_objects(tb, [ns], KINDS[:1])
    assert cms[f"/v1/ConfigMap/{ns}/pit-3"]["data"] == {"release": "two"}


def test_crd_and_custom_resource_in_one_release(tb, workdir):
    """A CRD and a custom resource of it in the same release: the replay
    applies the CRD, waits until it is Established and served, then the
    custom resource (published first, so topic order alone would fail)."""
    d = workdir
    ns = NAMESPACES[2]
    crd = {"apiVersion": "apiextensions.k8s.io/v1",
           "kind": "CustomResourceDefinition",
           "metadata": {"name": CRD_NAME},
           "spec": {"group": CRD_GROUP, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget",
                              "kind": "Widget", "listKind": "WidgetList"},
                    "versions": [{"name": "v1", "served": True,
                                  "storage": True,
                                  "schema": {"openAPIV3Schema": {
                                      "type": "object",
                                      "properties": {"spec": {
                                          "type": "object",
                                          "properties": {"size": {
                                              "type": "integer"}}}}}}}]}}
    widgets = [{"apiVersion": f"{CRD_GROUP}/v1", "kind": "Widget",
                "metadata": {"name": f"w-{i}", "namespace": ns},
                "spec": {"size": i}} for i in range(3)]
    publish(d, widgets + [crd], f"crd-{RUN}")
    rc, summary, err = replay(d)
    assert rc == 0, f"{summary and summary['failures']} {err[-3000:]}"
    assert summary["tiers"]["namespaces"]["create"] == 1
    assert summary["tiers"]["other"]["create"] == 3
    _, got = kube(tb, "GET", f"/apis/{CRD_GROUP}/v1/namespaces/{ns}/widgets")
    sizes = sorted(w["spec"]["size"] for w in got["items"])
    assert sizes == [0, 1, 2]
    for w in got["items"]:
        assert w["metadata"]["annotations"]["m3bridge.io/plane"] == PLANE
    # again: the CRD and its resources are in the index, nothing is written
    rc, summary, err = replay(d)
    assert rc == 0, err[-3000:]
    assert written(summary) == 0, summary["results"]


def test_interrupted_replay_resumes(tb, workdir):
    """Killed (SIGKILL) halfway through, the replay run again completes the
    state and does not touch what the first run already wrote."""
    d = workdir
    wipe(tb)
    # what the desired state has now: the first test's objects and the
    # point-in-time test's ConfigMaps
    want = set(STATE["objects"]) | {
        f"/v1/ConfigMap/{NAMESPACES[1]}/pit-{i}" for i in range(10)} | {
        f"/v1/ConfigMap/{NAMESPACES[1]}/pit-new-{i}" for i in range(5)}
    proc = subprocess.Popen([LISTENER, "replay", "--config",
                             str(d / "listener.yaml"), "--set",
                             "listener.workers=1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    progress = re.compile(r"^replay: apply(?: tier \S+)? (\d+)/(\d+) objects")
    seen, killed = [], False
    for line in proc.stderr:
        seen.append(line)
        m = progress.match(line)
        if m and int(m.group(1)) >= int(m.group(2)) // 2:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=60)
    assert killed, "the replay ended before half of it was applied: " + \
        "".join(seen[-20:])
    partial = list_objects(tb)
    assert len(want) // 2 <= len(partial) < len(want), len(partial)
    partial_versions = {k: o["metadata"]["resourceVersion"]
                        for k, o in partial.items()}

    rc, summary, err = replay(d)
    assert rc == 0, err[-3000:]
    after = list_objects(tb)
    assert set(after) == want
    for key, obj in STATE["objects"].items():
        assert comparable(after[key]) == comparable(obj), key
    for key, version in partial_versions.items():
        assert after[key]["metadata"]["resourceVersion"] == version, key
    assert summary["results"]["create"] == {"done": len(want) - len(partial)}


def test_prune_removes_managed_stray_only(tb, workdir):
    """--prune deletes an object managed by this plane that the desired
    state does not have, and leaves an unmanaged object alone; without
    --prune the stray is only reported."""
    d = workdir
    ns = NAMESPACES[0]
    stray = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {
                 "name": f"stray-{RUN}", "namespace": ns,
                 "labels": {"app.kubernetes.io/managed-by": "m3bridge"},
                 "annotations": {
                     "m3bridge.io/plane": PLANE,
                     "m3bridge.io/key": f"/v1/ConfigMap/{ns}/stray-{RUN}",
                     "m3bridge.io/generation": "1",
                     "m3bridge.io/manifest-sha256": "ab" * 32}},
             "data": {"a": "b"}}
    unmanaged = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"unmanaged-{RUN}", "namespace": ns},
                 "data": {"a": "b"}}
    other_plane = json.loads(json.dumps(stray))
    other_plane["metadata"]["name"] = f"other-{RUN}"
    other_plane["metadata"]["annotations"]["m3bridge.io/plane"] = "elsewhere"
    for obj in (stray, unmanaged, other_plane):
        kube(tb, "POST", f"/api/v1/namespaces/{ns}/configmaps", obj)

    rc, summary, err = replay(d)
    assert rc == 0, err[-3000:]
    assert summary["totals"]["stray"] == 1
    assert summary["totals"]["prune"] == 0
    cms = list_objects(tb, [ns], KINDS[:1])
    assert f"/v1/ConfigMap/{ns}/stray-{RUN}" in cms

    rc, summary, err = replay(d, "--prune")
    assert rc == 0, err[-3000:]
    assert summary["results"]["prune"] == {"done": 1}
    cms = list_objects(tb, [ns], KINDS[:1])
    assert f"/v1/ConfigMap/{ns}/stray-{RUN}" not in cms
    assert f"/v1/ConfigMap/{ns}/unmanaged-{RUN}" in cms
    assert f"/v1/ConfigMap/{ns}/other-{RUN}" in cms
    # everything the control plane wants is still there
    for key in STATE["objects"]:
        if f"/ConfigMap/{ns}/" in key:
            assert key in cms, key
    pruned = [s for s in read_topic(tb, STATUS)
              if s[2] == f"/v1/ConfigMap/{ns}/stray-{RUN}".encode()]
    assert pruned, "no status for the pruned object"

    # the desired state names the other plane's object: refused, untouched
    # (the replay trusts its index instead of reading each new object, so
    # this is what the index load remembered of other planes)
    other_key = f"/v1/ConfigMap/{ns}/other-{RUN}"
    publish(d, [{"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": f"other-{RUN}", "namespace": ns},
                 "data": {"mine": "no"}}], f"other-{RUN}")
    rc, summary, err = replay(d)
    assert rc == 1, err[-3000:]
    assert [(f["key"], f["reason"]) for f in summary["failures"]] == \
        [(other_key, "NOT_MANAGED")], summary["failures"]
    cms = list_objects(tb, [ns], KINDS[:1])
    assert cms[other_key]["data"] == {"a": "b"}
    assert cms[other_key]["metadata"]["annotations"][
        "m3bridge.io/plane"] == "elsewhere"
    # the control plane takes it back; the tombstone leaves it absent
    r = publisher(d, ["delete", other_key, "--release", f"other-del-{RUN}"])
    assert r.returncode == 0, r.stderr
    for name in (f"unmanaged-{RUN}", f"other-{RUN}"):
        kube(tb, "DELETE", f"/api/v1/namespaces/{ns}/configmaps/{name}")
    rc, summary, err = replay(d)
    assert rc == 0, err[-3000:]
    assert written(summary) == 0, summary["results"]


def test_start_options(tb, workdir):
    """--from-offsets and --from-time choose where reading starts (the fence
    stays the end); a partial start refuses --prune; a malformed or
    incomplete start is a clear error."""
    d = workdir
    high = high_watermarks(tb)
    at_end = ",".join(f"{p}:{o}" for p, o in sorted(high.items()))
    rc, summary, err = replay(d, "--from-offsets", at_end)
    assert rc == 0, err[-3000:]
    assert summary["records"] == 0
    assert {int(p): o for p, o in summary["start"].items()} == high
    assert sum(summary["totals"].values()) == 0, summary["totals"]

    # from the point-in-time test's time: each partition starts at the
    # first record at or after it, as Kafka's offsets-for-times says
    c = Consumer({"bootstrap.servers": tb["M3B_TB_KAFKA_BOOTSTRAP"],
                  "group.id": f"dr-probe-{uuid.uuid4()}"})
    at_ms = int(STATE["between"] * 1000)
    want = {tp.partition: (tp.offset if tp.offset >= 0 else high[tp.partition])
            for tp in c.offsets_for_times(
                [TopicPartition(DESIRED, p, at_ms) for p in high], timeout=10)}
    c.close()
    rc, summary, err = replay(d, "--from-time", STATE["between_text"])
    assert rc == 0, err[-3000:]
    assert {int(p): o for p, o in summary["start"].items()} == want
    assert 0 < summary["records"] < sum(high.values())
    assert written(summary) == 0, summary["results"]

    r = subprocess.run([LISTENER, "replay", "--config", str(d / "listener.yaml"),
                        "--from-offsets", "0:0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "partition 1" in r.stderr, r.stderr[-2000:]
    for bad in (["--from-time", "yesterday"], ["--from", "latest"],
                ["--prune", "--from-time", STATE["between_text"]],
                ["--dry-run", "--commit"]):
        r = subprocess.run([LISTENER, "replay", "--config",
                            str(d / "listener.yaml")] + bad,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 2 and r.stderr.strip(), (bad, r.stderr)


def test_tampered_events_are_rejected(tb, workdir):
    """Records tampered with in the topic are never applied. Those a replay
    would write, or cannot even read, are refused as `run` refuses them
    (REJECTED status, dlq copy with the reason; exit 1 names them); a
    tampered copy of an object's event that loses to the valid one is left
    unread by default and refused too with --verify-all, which checks every
    record as `run` does."""
    d = workdir
    records = read_topic(tb, DESIRED)
    victim_key = f"/v1/ConfigMap/{NAMESPACES[0]}/o-0".encode()
    valid = [r for r in records if r[2] == victim_key and r[3] is not None]
    assert valid, "the object o-0 has no event in the topic"
    _, _, key, value, headers = valid[-1]
    forged = bytearray(value)
    forged[-5] ^= 0x01  # one bit near the end of the event
    fresh_key = f"/v1/ConfigMap/{NAMESPACES[1]}/forged-{RUN}".encode()
    unsigned_key = f"/v1/ConfigMap/{NAMESPACES[2]}/unsigned-{RUN}"
    p = control_producer(tb)
    p.produce(DESIRED, key=victim_key, value=bytes(forged),
              headers=list(headers.items()))
    p.produce(DESIRED, key=fresh_key, value=value,  # moved to another key
              headers=list(headers.items()))
    p.produce(DESIRED, key=unsigned_key.encode(), value=b"\xc3\x01junk")
    assert p.flush(30) == 0
    before = list_objects(tb, [NAMESPACES[0]], KINDS[:1])

    rc, summary, err = replay(d)
    assert rc == 1, err[-3000:]
    reasons = {f["key"]: f["reason"] for f in summary["failures"]}
    assert reasons.get(fresh_key.decode()) == "SIG_INVALID", reasons
    assert reasons.get(unsigned_key) == "SIG_MISSING", reasons
    # the tampered copy has the valid event's generation: the first kept
    assert victim_key.decode() not in reasons, reasons
    assert summary["refused"] == 2
    assert written(summary) == 0, summary["results"]

    rc, summary, err = replay(d, "--verify-all")
    assert rc == 1, err[-3000:]
    reasons = {f["key"]: f["reason"] for f in summary["failures"]}
    assert reasons.get(victim_key.decode()) == "SIG_INVALID", reasons
    assert reasons.get(fresh_key.decode()) == "SIG_INVALID", reasons
    assert reasons.get(unsigned_key) == "SIG_MISSING", reasons
    assert summary["refused"] == 3
    assert written(summary) == 0, summary["results"]
    after = list_objects(tb, [NAMESPACES[0]], KINDS[:1])
    assert after[victim_key.decode()] == before[victim_key.decode()]
    assert fresh_key.decode() not in list_objects(tb, [NAMESPACES[1]],
                                                  KINDS[:1])
    dlq = {r[2]: r[4] for r in read_topic(tb, DLQ)}
    assert dlq[victim_key]["m3-error-reason"] == b"SIG_INVALID"
    assert dlq[fresh_key]["m3-error-reason"] == b"SIG_INVALID"


def reencode(value, generation_delta):
    """value (C3 01, fingerprint, DesiredState body) with its generation
    moved by generation_delta, encoded again with the same schema: what a
    forger with write access to the topic could make, the signature
    headers left as they were."""
    import io

    import fastavro
    root = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    with open(os.path.join(root, "schemas", "DesiredState.avsc")) as f:
        schema = fastavro.parse_schema(json.load(f))
    event = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema, None)
    event["generation"] += generation_delta
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, event)
    return value[:10] + body.getvalue()


def test_forged_winner_falls_back_to_the_valid_record(tb, workdir):
    """A replay verifies only the records it would write. A forged record
    that wins the fold (a higher generation, the old signature) fails that
    verification: it is refused as `run` refuses it, its key is read again
    with every record checked, and the object keeps its valid state. A
    tampered record that loses the fold anyway is found by --verify-all,
    which checks every record as `run` does."""
    d = workdir
    records = read_topic(tb, DESIRED)

    def latest(name):
        key = f"/v1/ConfigMap/{NAMESPACES[0]}/{name}".encode()
        valid = [r for r in records if r[2] == key and r[3] is not None
                 and r[4].get("m3-sig")]
        assert valid, f"the object {name} has no event in the topic"
        return key, valid[-1]

    winner_key, (_, _, _, value, headers) = latest("o-6")
    forged = reencode(value, 10**6)  # generations are microsecond times
    loser_key, (_, _, _, lvalue, lheaders) = latest("o-9")
    damaged = dict(lheaders)
    sig = bytearray(damaged["m3-sig"])
    sig[7] ^= 0x01
    damaged["m3-sig"] = bytes(sig)
    p = control_producer(tb)
    p.produce(DESIRED, key=winner_key, value=forged,
              headers=list(headers.items()))
    # the same event again with a broken signature: equal generation, so
    # the first (valid) record keeps the key
    p.produce(DESIRED, key=loser_key, value=lvalue,
              headers=list(damaged.items()))
    assert p.flush(30) == 0
    before = list_objects(tb, [NAMESPACES[0]], KINDS[:1])
    # what test_tampered_events_are_rejected left: 2 refused by default, 3
    # with --verify-all

    rc, summary, err = replay(d)
    assert rc == 1, err[-3000:]
    reasons = {f["key"]: f["reason"] for f in summary["failures"]}
    assert reasons.get(winner_key.decode()) == "SIG_INVALID", reasons
    assert loser_key.decode() not in reasons, reasons
    assert summary["suspects"] == 1, summary
    assert summary["refused"] == 2 + 1, summary
    assert summary["verified"] == 1, summary  # only the forged winner
    assert written(summary) == 0, summary["results"]
    after = list_objects(tb, [NAMESPACES[0]], KINDS[:1])
    assert after[winner_key.decode()] == before[winner_key.decode()]
    dlq = [r for r in read_topic(tb, DLQ) if r[2] == winner_key]
    assert dlq and dlq[-1][4]["m3-error-reason"] == b"SIG_INVALID"

    rc, summary, err = replay(d, "--verify-all")
    assert rc == 1, err[-3000:]
    reasons = {f["key"]: f["reason"] for f in summary["failures"]}
    assert reasons.get(winner_key.decode()) == "SIG_INVALID", reasons
    assert reasons.get(loser_key.decode()) == "SIG_INVALID", reasons
    assert summary["refused"] == 3 + 2, summary
    assert summary["suspects"] == 0 and summary["verified"] == 0, summary
    assert written(summary) == 0, summary["results"]
    assert list_objects(tb, [NAMESPACES[0]], KINDS[:1]) == before
