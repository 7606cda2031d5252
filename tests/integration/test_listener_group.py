"""test_listener_group.py - two listeners in one consumer group share the
six partitions of m3.robust.desired (disjoint halves, as their heartbeats
say, and each writes the statuses of its own partitions' events); SIGTERM
to one while releases are being applied hands its partitions to the other
without loss: every event is applied exactly once (one status each, no
redelivery: the stopping listener finishes its in-flight events and
commits before it leaves), the survivor ends with all six partitions, and
every object ends at the last release.

Real broker, real kube-apiserver (tests/testbed); plane `robust`,
namespaces m3-rb-a, m3-rb-b, m3-rb-c. Fails, never skips, without them.
"""
from robust_py import (ANN_GENERATION, NAMESPACES, PARTITIONS, Statuses,
                       bed_fixture, configmap, group_caught_up, wait_for)

# small queues: a stopping listener has few events in flight, and leaves
# the rest of its partitions to the other
bed = bed_fixture("group", {"listener.queue_depth": 4})
OBJECTS = 300


def release(bed, rev):
    return [configmap(NAMESPACES[i % 3], bed.name(i),
                      {"i": str(i), "rev": str(rev)}) for i in range(OBJECTS)]


def owns(statuses, listener_id):
    statuses.update(0.2)
    return statuses.partitions_of(listener_id)


def test_two_listeners_share_and_hand_over(bed):
    bed.start_group_at_end()
    statuses = Statuses(bed.tb)
    a = bed.listener(f"rb-group-{bed.run}-a")
    b = None
    try:
        wait_for(lambda: owns(statuses, a.id) == set(range(PARTITIONS)), 60,
                 "the first listener to own all partitions")
        b = bed.listener(f"rb-group-{bed.run}-b")

        def shared():
            pa, pb = owns(statuses, a.id), owns(statuses, b.id)
            return pa and pb and not pa & pb and \
                len(pa | pb) == PARTITIONS and (pa, pb)
        owned_a, owned_b = wait_for(shared, 60, "both listeners to own "
                                    "partitions")

        # 1. shared: each listener answers the events of its partitions
        events = {}
        r1 = bed.publish(release(bed, 1), f"{bed.run}-r1")
        events.update({(k, g): p for k, (g, p, _) in r1.items()})
        have = statuses.wait_events([(k, g) for k, (g, _, _) in r1.items()],
                                    90, "release 1")
        writers = set()
        for key, (gen, part, _) in r1.items():
            s = have[(key, gen)]
            assert [x["phase"] for x in s] == ["APPLIED"], s
            writers.add(s[0]["listener_id"])
            assert s[0]["listener_id"] == (a.id if part in owned_a else b.id)
        assert writers == {a.id, b.id}

        # 2. SIGTERM to the first while two more releases are applied
        r2 = bed.publish(release(bed, 2), f"{bed.run}-r2")
        r3 = bed.publish(release(bed, 3), f"{bed.run}-r3")
        for res in (r2, r3):
            events.update({(k, g): p for k, (g, p, _) in res.items()})

        def some_of_r2():
            statuses.update(0.05)
            return sum(1 for s in statuses.all
                       if s["listener_id"] == a.id and
                       (s["key"], s["generation"]) in r2_events) >= 20
        r2_events = {(k, g) for k, (g, _, _) in r2.items()}
        wait_for(some_of_r2, 60, "the first listener to apply part of r2",
                 interval=0)
        rc, took = a.stop()
        assert rc == 0, a.tail()
        have = statuses.wait_events(list(events), 120, "every event")
        wait_for(lambda: owns(statuses, b.id) == set(range(PARTITIONS)), 60,
                 "the second listener to own all partitions")
        wait_for(lambda: group_caught_up(bed.tb), 60, "offsets committed")
        statuses.update(1)
        have = statuses.by_event()
        assert b.alive(), b.tail()
    finally:
        for lst in (a, b):
            if lst:
                lst.stop()
        statuses.close()

    after_a = [ev for ev in events if ev in have and
               have[ev][0]["listener_id"] == b.id and events[ev] in owned_a]
    assert after_a, "the second listener took over none of the first's events"
    for ev in events:
        sts = have[ev]
        assert [s["phase"] for s in sts] == ["APPLIED"], (ev, sts)
    final = {k: g for k, (g, _, _) in r3.items()}
    for ns in NAMESPACES:
        for name, obj in bed.kube.configmaps(ns).items():
            if bed.run in name:
                assert obj["data"]["rev"] == "3", name
                key = f"/v1/ConfigMap/{ns}/{name}"
                assert int(obj["metadata"]["annotations"][ANN_GENERATION]) \
                    == final[key], name
    print(f"first listener: partitions {sorted(owned_a)}, stopped in "
          f"{took:.1f} s; the second applied {len(after_a)} events of them")
