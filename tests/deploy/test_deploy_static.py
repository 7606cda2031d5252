"""test_deploy_static.py - deploy/'s Grafana dashboard and Prometheus
rules, without a listener: promtool checks and unit-tests the alert rules,
every dashboard query parses as PromQL (promtool again, as recording
rules), the dashboard is well-formed and covers what issue 7 asks for, and
the name extractor that tests/integration/test_deploy.py relies on finds
the right names. Whether the listener really exports every name is checked
by that integration test.

Needs promtool (Debian's prometheus package, installed by
tests/testbed/install-deps); fails, never skips, without it.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from promql_names import (dashboard_queries, grafana_to_promql,  # noqa: E402
                          label_values_query, metric_names, rule_queries)

SOURCE = os.environ.get("M3B_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
DASHBOARD = os.path.join(SOURCE, "deploy/grafana/m3bridge-lag.json")
RULES = os.path.join(SOURCE, "deploy/prometheus/m3bridge-alerts.yaml")
RULE_TESTS = os.path.join(SOURCE, "deploy/prometheus/m3bridge-alerts.test.yaml")


@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool") or "/usr/bin/promtool"
    if not os.access(path, os.X_OK):
        pytest.fail("promtool not found: run tests/testbed/install-deps "
                    "(Debian package prometheus)", pytrace=False)
    return path


@pytest.fixture(scope="module")
def dashboard():
    with open(DASHBOARD) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def rules():
    with open(RULES) as f:
        return yaml.safe_load(f)


def run(args):
    r = subprocess.run(args, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout + r.stderr


def test_rules_check(promtool):
    rc, out = run([promtool, "check", "rules", RULES])
    assert rc == 0, out
    assert "SUCCESS" in out


def test_rules_unit_tests(promtool):
    rc, out = run([promtool, "test", "rules", RULE_TESTS])
    assert rc == 0, out
    assert "SUCCESS" in out


def test_every_dashboard_query_parses(promtool, dashboard, tmp_path):
    """promtool parses each query (Grafana variables substituted) as the
    expression of a recording rule."""
    queries = [(w, e) for w, e, _ in dashboard_queries(dashboard) if e]
    assert len(queries) >= 10
    doc = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"m3b:dashboard_query_{i}", "expr": grafana_to_promql(e)}
        for i, (_, e) in enumerate(queries)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(doc))
    rc, out = run([promtool, "check", "rules", str(path)])
    assert rc == 0, out + "\n" + "\n".join(f"{i}: {w}: {e}" for i, (w, e)
                                           in enumerate(queries))


def test_dashboard_shape(dashboard):
    assert dashboard["uid"] == "m3bridge-lag"
    assert any(i["type"] == "datasource" and i["pluginId"] == "prometheus"
               for i in dashboard["__inputs"])
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for p in dashboard["panels"]:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] == "row":
            continue
        assert p["targets"], f"panel {p['title']!r} has no query"
        for t in p["targets"]:
            assert t["expr"].strip(), p["title"]
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert metric_names(t["expr"]), f"{p['title']}: names no metric"
    names = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"datasource", "group", "topic"} <= names


def names_in(queries):
    return {n for _, e in queries for n, _ in metric_names(e)}


def test_dashboard_covers_issue_7(dashboard):
    """Lag by partition in messages and seconds, verdicts, apply latency,
    throughput, rejects by reason."""
    queries = [(w, e) for w, e, _ in dashboard_queries(dashboard)]
    names = names_in(queries)
    for wanted in ("kafka_consumergroup_group_lag",
                   "kafka_consumergroup_group_lag_seconds",
                   "m3bridge_lag_verdict", "m3bridge_group_lag_verdict",
                   "m3bridge_apply_latency_seconds_bucket",
                   "m3bridge_events_total"):
        assert wanted in names, wanted
    exprs = " ".join(e for _, e in queries)
    assert "by (phase, reason)" in exprs  # rejects by reason
    assert 'phase=~"REJECTED|FAILED"' in exprs


def test_rules_cover_issue_7(rules):
    """Lag seconds above a threshold for 10 minutes, STALL or STOP, rejects
    rising."""
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    lag = by_name["M3bridgeLagHigh"]
    assert "kafka_consumergroup_group_lag_seconds" in lag["expr"]
    assert lag["for"] == "10m"
    assert by_name["M3bridgeLagStalled"]["expr"].endswith("== 2")
    assert by_name["M3bridgeLagStopped"]["expr"].endswith("== 3")
    assert "m3bridge_events_total" in by_name["M3bridgeRejectsRising"]["expr"]
    for r in by_name.values():
        assert r["labels"]["severity"] in ("warning", "critical"), r["alert"]
        assert r["annotations"]["summary"] and r["annotations"]["description"]


@pytest.mark.parametrize("expr,want", [
    ('kafka_consumergroup_group_lag{group=~"$group",topic=~"$topic"}',
     [("kafka_consumergroup_group_lag", {"group", "topic"})]),
    ('histogram_quantile(0.95, sum by (le) (rate('
     'm3bridge_apply_latency_seconds_bucket[$__rate_interval])))',
     [("m3bridge_apply_latency_seconds_bucket", set())]),
    ('sum by (phase, reason) (increase(m3bridge_events_total'
     '{phase=~"REJECTED|FAILED"}[15m])) > 0',
     [("m3bridge_events_total", {"phase"})]),
    ('max by (group, topic) (m3bridge_group_lag_verdict) == 2',
     [("m3bridge_group_lag_verdict", set())]),
    ('a_total / on (instance) group_left (x) b offset 5m + 1e3 * sum(c)',
     [("a_total", set()), ("b", set()), ("c", set())]),
    ('{__name__="up",job="x"} and absent(nope{a="}"})',
     [("up", {"job"}), ("nope", {"a"})]),
    ('label_replace(m, "dst", "$1", "src", "(.*)")', [("m", set())]),
])
def test_metric_names(expr, want):
    assert [(n, set(l)) for n, l in metric_names(expr)] == want


def test_label_values_query():
    assert label_values_query("label_values(kafka_x{group=~\"$g\"}, topic)") \
        == ('kafka_x{group=~"$g"}', "topic")
    assert label_values_query("label_values(group)") == (None, "group")
    assert label_values_query("up") is None
    assert names_in(rule_queries({"groups": [{"rules": [
        {"alert": "A", "expr": "x > 1"}]}]})) == {"x"}
