"""test_listener_redelivery.py - the stale guard of a running listener.

- An event with an older generation, produced after a newer one (signed
  here, since the publisher only ever moves generations up), is
  STALE_SKIPPED and never applied: lower than the applied generation,
  and equal to it with another manifest; before and after a restart (the
  index then comes from the LIST of managed ConfigMaps, and from the live
  object for a kind the LIST does not cover, PodTemplate).
- Redelivery: the group's offsets reset to where the test began, a new
  listener reads every event again and changes nothing: each event gets
  an APPLIED no-op or STALE_SKIPPED status with no time spent writing,
  no object changes (resourceVersions, and a watch that sees no write).

Real broker, real kube-apiserver (tests/testbed); plane `robust`,
namespaces m3-rb-a, m3-rb-b, m3-rb-c. Fails, never skips, without them.
"""
import json

from robust_py import (ANN_GENERATION, NAMESPACES, PLANE, Statuses, Watch,
                       bed_fixture, commit_group, configmap, encode_desired,
                       end_offsets, group_caught_up, produce_raw, wait_for)

bed = bed_fixture("redo")
COUNT = 30


def podtemplate(ns, name, image):
    return {"apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": name, "namespace": ns},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c",
                                                  "image": image}]}}}


def release(bed, rev):
    """COUNT ConfigMaps (half of them change with rev) and 3 PodTemplates
    (the first changes with rev)."""
    objs = [configmap(NAMESPACES[i % 3], bed.name(i),
                      {"i": str(i), "rev": str(rev if i % 2 else 1)})
            for i in range(COUNT)]
    objs += [podtemplate(NAMESPACES[i], bed.name(f"pt{i}"),
                         f"busybox:1.{rev if i == 0 else 1}")
             for i in range(3)]
    return objs


def key_of(obj):
    md = obj["metadata"]
    return f"/v1/{obj['kind']}/{md['namespace']}/{md['name']}"


def live(bed, obj):
    md = obj["metadata"]
    kind = "configmaps" if obj["kind"] == "ConfigMap" else "podtemplates"
    return bed.kube.get(md["namespace"], md["name"], kind)


def versions(bed, objs):
    return {key_of(o): live(bed, o)["metadata"]["resourceVersion"]
            for o in objs}


def stale_events(bed, targets, gens, tag):
    """For each target object: one event below the applied generation and
    one at it with another manifest, both with changed content."""
    records, expected = [], []
    for obj in targets:
        key = key_of(obj)
        for gen in (gens[key] - 1, gens[key]):
            changed = json.loads(json.dumps(obj))
            if obj["kind"] == "ConfigMap":
                changed["data"]["rev"] = f"old-{tag}"
            else:
                changed["template"]["spec"]["containers"][0]["image"] = \
                    f"busybox:old-{tag}"
            value = encode_desired(PLANE, key, gen, changed,
                                   release=f"{bed.run}-old-{tag}")
            records.append(bed.signed(key, value))
            expected.append((key, gen))
    return records, expected


def check_stale(bed, statuses, targets, gens, tag, offsets):
    records, expected = stale_events(bed, targets, gens, tag)
    sources = produce_raw(bed.producer, records)
    offsets |= set(sources)
    got = statuses.wait_sources(sources, 60, f"statuses of stale events {tag}")
    for where, (key, gen) in zip(sources, expected):
        s = got[where]
        assert (s["key"], s["generation"], s["phase"], s["reason"]) == \
            (key, gen, "STALE_SKIPPED", "STALE"), s


def test_older_generation_and_redelivery(bed):
    bed.start_group_at_end()
    start = end_offsets(bed.tb)
    statuses = Statuses(bed.tb)
    watches = [Watch(bed.kube, ns, bed.run) for ns in NAMESPACES]
    offsets = set()  # (partition, offset) of every event of the test
    listener = bed.listener()
    try:
        v1 = bed.publish(release(bed, 1), f"{bed.run}-v1")
        v2 = bed.publish(release(bed, 2), f"{bed.run}-v2")
        for res in (v1, v2):
            offsets |= {(p, o) for _, p, o in res.values()}
        have = statuses.wait_events(
            [(k, g) for res in (v1, v2) for k, (g, _, _) in res.items()], 90,
            "statuses of both releases")
        for key, (gen, _, _) in v2.items():
            assert [s["phase"] for s in have[(key, gen)]] == ["APPLIED"], key
        objs = release(bed, 2)
        gens = {k: g for k, (g, _, _) in v2.items()}
        before = versions(bed, objs)
        # targets: a ConfigMap that changed, one that did not (its object
        # still carries the v1 generation), a PodTemplate
        targets = [objs[1], objs[2], objs[COUNT]]

        # 1. older generations on a running listener
        check_stale(bed, statuses, targets, gens, "a", offsets)
        rc, _ = listener.stop()
        assert rc == 0, listener.tail()

        # 2. and after a restart (index from LIST and from the live object)
        listener = bed.listener(f"rb-redo-{bed.run}-restarted")
        check_stale(bed, statuses, targets, gens, "b", offsets)
        assert versions(bed, objs) == before
        wait_for(lambda: group_caught_up(bed.tb), 60, "offsets committed")
        rc, _ = listener.stop()
        assert rc == 0, listener.tail()
        marks = [len(w.events) for w in watches]

        # 3. redelivery of everything since the test began
        commit_group(bed.tb, start)
        listener = bed.listener(f"rb-redo-{bed.run}-replay")

        got = statuses.wait_sources(offsets, 90,
                                    "a status for every redelivered event",
                                    listener.id)
        latest = {(p, o) for _, p, o in v2.values()}
        for where in offsets:
            s = got[where]
            # the newest event of each key again: a no-op; all others stale
            want = "APPLIED" if where in latest else "STALE_SKIPPED"
            assert s["phase"] == want, (where, s)
            assert s["apply_latency_ms"] == 0, s
        wait_for(lambda: group_caught_up(bed.tb), 60, "offsets committed")
        assert versions(bed, objs) == before
        assert listener.alive(), listener.tail()
    finally:
        rc, _ = listener.stop()
        for w in watches:
            w.stop()
        statuses.close()
    assert rc == 0, listener.tail()

    # the watch saw every write: v1, then v2 of what changed, nothing else
    for w, mark in zip(watches, marks):
        assert w.events, f"the watch saw nothing: {w.error}"
        assert w.events[mark:] == [], f"written during redelivery: {w.events[mark:]}"
        last = {}
        for name, gen, _, data in w.events:
            assert gen is None or gen >= last.get(name, 0), (name, gen)
            assert "old" not in (data or {}).get("rev", ""), (name, data)
            last[name] = gen or last.get(name, 0)
    for obj in objs:
        got = live(bed, obj)
        assert int(got["metadata"]["annotations"][ANN_GENERATION]) <= \
            gens[key_of(obj)]
        if obj["kind"] == "ConfigMap":
            assert got["data"] == obj["data"]
        else:
            assert got["template"]["spec"]["containers"][0]["image"] == \
                obj["template"]["spec"]["containers"][0]["image"]
