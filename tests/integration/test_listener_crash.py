"""test_listener_crash.py - kill -9 of the listener in the middle of 2,000
events (five releases of the same 400 ConfigMaps), then a restart: every
event is applied (a watch of the apiserver sees each object at each of
its five generations), no object's generation annotation ever goes
backwards, every event has an APPLIED or STALE_SKIPPED status (and none
is REJECTED or FAILED), and the objects end at the last release.

Real broker, real kube-apiserver (tests/testbed); plane `robust`,
namespaces m3-rb-a, m3-rb-b, m3-rb-c. Fails, never skips, without them.
"""
from robust_py import (ANN_GENERATION, NAMESPACES, Statuses, Watch,
                       bed_fixture, configmap, end_offsets, group_caught_up,
                       group_offsets, wait_for)

bed = bed_fixture("crash")
OBJECTS = 400
RELEASES = 5
KILL_AT = 600  # statuses seen before the SIGKILL


def test_kill_9_in_the_middle_of_2000_events(bed):
    bed.start_group_at_end()
    start = end_offsets(bed.tb)
    statuses = Statuses(bed.tb)
    watches = [Watch(bed.kube, ns, bed.run) for ns in NAMESPACES]
    names = {i: (NAMESPACES[i % 3], bed.name(i)) for i in range(OBJECTS)}
    events = {}  # (key, generation) -> release number
    gens = []
    for rev in range(1, RELEASES + 1):
        res = bed.publish([configmap(ns, name, {"i": str(i), "rev": str(rev)})
                           for i, (ns, name) in names.items()],
                          f"{bed.run}-r{rev}")
        assert len(res) == OBJECTS
        gens.append(next(iter(res.values()))[0])
        events.update({(k, g): rev for k, (g, _, _) in res.items()})
    assert len(events) == OBJECTS * RELEASES == 2000

    # commits every 0.5 s (librdkafka's default is 5 s): the first listener
    # commits part of its work before it is killed
    commit_often = ["--set", "kafka.auto.commit.interval.ms=500"]
    first = bed.listener(f"rb-crash-{bed.run}-first", commit_often)
    try:
        def answered():
            return sum(1 for s in statuses.all
                       if (s["key"], s["generation"]) in events)

        def enough():
            statuses.update(0.05)
            return answered() >= KILL_AT
        wait_for(enough, 90, f"{KILL_AT} statuses", interval=0)
        first.kill()
        statuses.update(1)
        at_kill = answered()
        assert at_kill < len(events), \
            "the listener finished before it was killed: nothing was tested"
        assert first.proc.returncode == -9
        committed = group_offsets(bed.tb)
        assert any(committed[p] > start[p] for p in start), \
            "nothing was committed before the kill: nothing was tested"
        second = bed.listener(f"rb-crash-{bed.run}-second", commit_often)
        have = statuses.wait_events(events, 120, "a status for every event")
        wait_for(lambda: group_caught_up(bed.tb), 60, "offsets committed")
        assert second.alive(), second.tail()
        rc, _ = second.stop()
        assert rc == 0, second.tail()
    finally:
        for w in watches:
            w.stop()
        statuses.close()

    # every event has a status, none refused
    redelivered = 0
    for ev in events:
        phases = [s["phase"] for s in have[ev]]
        assert set(phases) <= {"APPLIED", "STALE_SKIPPED"}, (ev, have[ev])
        redelivered += len(phases) - 1
    print(f"statuses at the kill: {at_kill}; events with a second status "
          f"after the restart: {redelivered}")
    assert any(s["listener_id"] == second.id for s in statuses.all)

    # the watch: every generation of every object written, in order
    seen = {}
    for w in watches:
        assert w.events, f"the watch saw nothing: {w.error}"
        for name, gen, kind, data in w.events:
            assert gen is not None, (name, kind)
            history = seen.setdefault(name, [])
            assert not history or gen > history[-1], \
                f"{name}: generation {gen} after {history}"
            history.append(gen)
    for i, (ns, name) in names.items():
        assert seen.get(name) == gens, (name, seen.get(name), gens)

    # the objects end at the last release
    for ns in NAMESPACES:
        live = {n: o for n, o in bed.kube.configmaps(ns).items()
                if bed.run in n}
        assert len(live) == sum(1 for n in names.values() if n[0] == ns)
        for name, obj in live.items():
            assert obj["data"]["rev"] == str(RELEASES), name
            assert int(obj["metadata"]["annotations"][ANN_GENERATION]) == \
                gens[-1], name
