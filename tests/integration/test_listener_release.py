"""test_listener_release.py - a release of 500 objects across three bound
namespaces becomes exactly those objects, each with an APPLIED status; an
update of five of them writes only those five (the other 495 keep their
resourceVersion); a DELETE removes only an object
that carries this plane's managed-by label and plane annotation, never an
unmanaged object or another plane's object of the same name.

Real broker, real kube-apiserver (tests/testbed); plane `robust`,
namespaces m3-rb-a, m3-rb-b, m3-rb-c. Fails, never skips, without them.
"""
from robust_py import (ANN_GENERATION, ANN_PLANE, DLQ, MANAGED, NAMESPACES,
                       Statuses, Tail, bed_fixture, cm_key, configmap,
                       wait_for)

bed = bed_fixture("rel")
COUNT = 500
CHANGED = (7, 123, 250, 377, 499)


def objects(bed, rev_of):
    return [configmap(NAMESPACES[i % 3], bed.name(i),
                      {"index": str(i), "rev": str(rev_of(i))})
            for i in range(COUNT)]


def ours(bed):
    """ns/name -> object of this run's ConfigMaps, as the apiserver has
    them (all of them, managed or not)."""
    out = {}
    for ns in NAMESPACES:
        for name, obj in bed.kube.configmaps(ns, selector=None).items():
            if bed.run in name:
                out[f"{ns}/{name}"] = obj
    return out


def test_release_update_and_managed_delete(bed):
    bed.start_group_at_end()
    statuses = Statuses(bed.tb)
    dlq = Tail(bed.tb, DLQ)
    listener = bed.listener()
    try:
        # 1. 500 objects, one release: exactly those objects, all APPLIED
        first = bed.publish(objects(bed, lambda i: 1), f"{bed.run}-v1")
        assert len(first) == COUNT
        have = statuses.wait_events(
            [(k, g) for k, (g, _, _) in first.items()], 120,
            "a status for each of the 500 objects")
        for (key, gen), sts in have.items():
            if key in first:
                assert [s["phase"] for s in sts] == ["APPLIED"], (key, sts)
                assert sts[0]["listener_id"] == listener.id
                assert sts[0]["observed_resource_version"], sts
        live = ours(bed)
        want = {f"{NAMESPACES[i % 3]}/{bed.name(i)}" for i in range(COUNT)}
        assert set(live) == want
        for name, obj in live.items():
            md = obj["metadata"]
            ns, n = name.split("/")
            assert md["labels"][MANAGED] == "m3bridge", name
            assert md["annotations"][ANN_PLANE] == "robust", name
            assert int(md["annotations"][ANN_GENERATION]) == \
                first[cm_key(ns, n)][0], name
            i = int(obj["data"]["index"])
            assert obj["data"] == {"index": str(i), "rev": "1"}, name
        versions = {k: o["metadata"]["resourceVersion"] for k, o in live.items()}

        # 2. an update of five objects
        second = bed.publish([o for i, o in enumerate(
            objects(bed, lambda i: 2)) if i in CHANGED], f"{bed.run}-v2")
        assert len(second) == len(CHANGED)
        have = statuses.wait_events(
            [(k, g) for k, (g, _, _) in second.items()], 120,
            "a status for each object of the second release")
        for key, (gen, _, _) in second.items():
            sts = have[(key, gen)]
            assert [s["phase"] for s in sts] == ["APPLIED"], (key, sts)
        live = ours(bed)
        assert set(live) == want
        for i in range(COUNT):
            name = f"{NAMESPACES[i % 3]}/{bed.name(i)}"
            obj = live[name]
            if i in CHANGED:
                assert obj["data"]["rev"] == "2", name
                assert obj["metadata"]["resourceVersion"] != versions[name]
            else:
                assert obj["data"]["rev"] == "1", name
                assert obj["metadata"]["resourceVersion"] == versions[name], (
                    f"{name} was written although the update left it out")

        # 3. DELETE: only the object managed by this plane goes
        ns_a, ns_b = NAMESPACES[0], NAMESPACES[1]
        shared = bed.name("shared")
        bed.kube.create(ns_a, configmap(ns_a, shared, {"owner": "someone"}))
        other_plane = bed.name("other-plane")
        bed.kube.create(ns_a, {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": other_plane, "namespace": ns_a,
                         "labels": {MANAGED: "m3bridge"},
                         "annotations": {ANN_PLANE: "x"}},
            "data": {"owner": "plane x"}})
        managed = bed.publish([configmap(ns_b, shared, {"owner": "m3"})],
                              f"{bed.run}-shared")
        statuses.wait_events([(k, g) for k, (g, _, _) in managed.items()], 60)
        gone = [cm_key(ns_b, shared), cm_key(NAMESPACES[2], bed.name(2))]
        kept = [cm_key(ns_a, shared), cm_key(ns_a, other_plane)]
        dels = bed.delete(gone + kept, f"{bed.run}-del")
        have = statuses.wait_events(
            [(k, g) for k, (g, _, _) in dels.items()], 60,
            "a status for each DELETE")
        for key in gone:
            assert [s["phase"] for s in have[(key, dels[key][0])]] == \
                ["DELETED"], key
        for key in kept:
            sts = have[(key, dels[key][0])]
            assert [(s["phase"], s["reason"]) for s in sts] == \
                [("REJECTED", "NOT_MANAGED")], (key, sts)
        live = ours(bed)
        assert f"{ns_b}/{shared}" not in live
        assert f"{NAMESPACES[2]}/{bed.name(2)}" not in live
        assert live[f"{ns_a}/{shared}"]["data"] == {"owner": "someone"}
        assert live[f"{ns_a}/{other_plane}"]["data"] == {"owner": "plane x"}
        assert len(live) == COUNT - 1 + 2  # 500 - 1 deleted + 2 not ours

        def in_dlq():
            dlq.poll()
            return {k.decode(): h for k, _, h in dlq.records
                    if k and k.decode() in kept}
        got = wait_for(lambda: len(in_dlq()) == 2 and in_dlq(), 60,
                       "the refused DELETEs in the dlq")
        for key, headers in got.items():
            assert headers["m3-error-reason"] == b"NOT_MANAGED", headers
            assert (int(headers["m3-source-partition"]),
                    int(headers["m3-source-offset"])) == dels[key][1:], key
        assert listener.alive(), listener.tail()
    finally:
        rc, _ = listener.stop()
        statuses.close()
        dlq.close()
    assert rc == 0, listener.tail()
