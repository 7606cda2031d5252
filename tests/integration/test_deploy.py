"""test_deploy.py - every metric that deploy/'s Grafana dashboard and
Prometheus alert rules name is exported by a real m3bridge-listener, with
the labels their selectors match on.

The listener runs against the test bed (plane ui); it applies one
ConfigMap and rejects one unsigned record first, so that the families that
only appear after an event (latency histograms, events by phase and
reason, per-partition lag and verdicts) are in the scrape. Names are found
by tests/deploy/promql_names.py (tested in tests/deploy); histogram
suffixes need no special case since the scrape holds the _bucket, _sum and
_count samples themselves.

Needs the test bed (tests/testbed/testbed up); fails, never skips, without it.
"""
import json
import os
import sys
import time
import uuid

import pytest
import yaml
from testbed_py import read_testbed_env

from listener_py import (DESIRED, GROUP, Listener, NAMESPACE, configmaps_yaml,
                         kubectl, make_workdir, produce_unsigned, publisher,
                         series, wait_for)

SOURCE = os.environ.get("M3B_SOURCE_DIR", os.getcwd())
sys.path.insert(0, os.path.join(SOURCE, "tests", "deploy"))
from promql_names import (dashboard_queries, metric_names,  # noqa: E402
                          rule_queries)

RUN = uuid.uuid4().hex[:8]
DASHBOARD = os.path.join(SOURCE, "deploy/grafana/m3bridge-lag.json")
RULES = os.path.join(SOURCE, "deploy/prometheus/m3bridge-alerts.yaml")


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


def queries():
    """(where, expr, label_values label or None) of the dashboard and the
    rules."""
    with open(DASHBOARD) as f:
        out = dashboard_queries(json.load(f))
    with open(RULES) as f:
        out += [(w, e, None) for w, e in rule_queries(yaml.safe_load(f))]
    return out


def test_every_named_metric_is_exported(tb, tmp_path, capsys):
    d = make_workdir(tmp_path, tb, RUN)
    name = f"deploy-{RUN}"
    listener = Listener(d)
    try:
        listener.wait_http()
        r = publisher(d, ["publish", "-f", "-", "--release", name],
                      stdin=configmaps_yaml([name]))
        assert r.returncode == 0, r.stderr
        produce_unsigned(tb, f"/v1/ConfigMap/{NAMESPACE}/unsigned-{RUN}")

        def settled():
            s = listener.metrics()
            return (series(s, "m3bridge_events_total", phase="APPLIED") and
                    series(s, "m3bridge_events_total", phase="REJECTED") and
                    series(s, "kafka_consumergroup_group_lag", group=GROUP,
                           topic=DESIRED) and s)
        samples = wait_for(settled, 60, "an APPLIED and a REJECTED record "
                           "and lag series on /metrics")
        # one more heartbeat (1 s), so that everything refreshed per
        # heartbeat (lag, verdicts) has been exported after the events
        time.sleep(1.5)
        samples = listener.metrics()
        assert listener.proc.poll() is None, listener.text()
    finally:
        rc = listener.stop()
        kubectl(tb, "delete", "configmap", "-n", NAMESPACE, name,
                "--wait=false")
    assert rc == 0, listener.text()

    exported = {}
    for n, labels, _ in samples:
        exported.setdefault(n, set()).update(labels)
    problems, checked = [], set()
    for where, expr, label in queries():
        names = metric_names(expr)
        if not names:
            problems.append(f"{where}: names no metric: {expr}")
        for metric, labels in names:
            checked.add(metric)
            if metric not in exported:
                problems.append(f"{where}: {metric} is not exported")
                continue
            for lab in sorted(set(labels) | ({label} if label else set())):
                if lab not in exported[metric]:
                    problems.append(f"{where}: {metric} has no label {lab!r} "
                                    f"(it has {sorted(exported[metric])})")
    with capsys.disabled():
        print(f"checked {len(checked)} metric names against the scrape: "
              + ", ".join(sorted(checked)), flush=True)
    assert not problems, "\n".join(problems)
    # the check above is only as good as its coverage
    assert len(checked) >= 10, checked
