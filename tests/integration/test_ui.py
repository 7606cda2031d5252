"""test_ui.py - the listener's /ui page in headless Chromium (Debian's
/usr/bin/chromium driven by Playwright; no browser download) against a
listener that is behind, compared with /metrics scraped at the same time.

How the listener is kept behind, on the real test bed: a backlog is
published before it starts, and one of the records is a ConfigMap that a
ValidatingWebhookConfiguration (selecting only this run's label) sends to
a webhook address where nothing listens. The real kube-apiserver then
answers that apply with 500 (failed calling webhook), which the listener
retries with backoff while its partition's committed offset stays in
front of that record: a stable lag in messages, a lag in seconds that
grows, while /metrics and /ui keep answering (SIGSTOP would freeze them).
Deleting the webhook lets it catch up, and the page must then show 0.

Checked: the page loads nothing but itself and its data.json; each
partition's lag, lag seconds, committed offset, high watermark and verdict
equal those of one /metrics scrape taken around the page's last refresh;
the counts by phase and reason equal m3bridge_events_total; the latest
outcomes list the rejected record with its reason. A screenshot of the
page while behind is saved to $M3B_ARTIFACTS_DIR/ui.png (the build
folder's artifacts/) and its path printed.

Needs the test bed (tests/testbed/testbed up), /usr/bin/chromium and the
venv's playwright (tests/testbed/install-deps); fails, never skips,
without them.
"""
import os
import time
import uuid

import pytest
from testbed_py import read_testbed_env

from listener_py import (DESIRED, GROUP, NAMESPACE, Listener,
                         blocking_webhook, configmaps_yaml, kubectl,
                         make_workdir, produce_unsigned, publisher, series,
                         wait_for)

RUN = uuid.uuid4().hex[:8]
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = os.environ.get("M3B_ARTIFACTS_DIR") or os.path.join(
    os.getcwd(), "artifacts")
VERDICTS = {0: "OK", 1: "WARN", 2: "STALL", 3: "STOP", 4: "REWIND"}
BLOCK_LABEL = "m3bridge-test-ui-block"

WEBHOOK = blocking_webhook(f"m3b-ui-block-{RUN}", BLOCK_LABEL, RUN)

# One snapshot of what the page shows, taken in one JavaScript task so
# that it cannot mix two refreshes.
SNAPSHOT_JS = """() => {
  const text = (root, sel) => { const e = root.querySelector(sel);
                                return e ? e.textContent : null; };
  return {
    now: document.body.getAttribute('data-now-ms'),
    groupVerdict: text(document, '#group-verdict'),
    sumLag: text(document, '#sum-lag'),
    appliedTotal: text(document, '#applied-total'),
    partitions: [...document.querySelectorAll('#partitions tr')].map(tr => ({
      partition: tr.getAttribute('data-partition'),
      verdict: text(tr, '[data-field=verdict]'),
      lag: text(tr, '[data-field=lag]'),
      lagSeconds: tr.querySelector('[data-field=lag_seconds]')
                    .getAttribute('data-value'),
      lagSecondsShown: text(tr, '[data-field=lag_seconds]'),
      committed: text(tr, '[data-field=committed]'),
      highWatermark: text(tr, '[data-field=high_watermark]')})),
    totals: [...document.querySelectorAll('#totals tr')].map(tr => ({
      phase: tr.getAttribute('data-phase'),
      reason: tr.getAttribute('data-reason'),
      count: text(tr, '[data-field=count]')})),
    recent: [...document.querySelectorAll('#recent tr')].map(tr => ({
      key: tr.getAttribute('data-key'), phase: tr.getAttribute('data-phase'),
      reason: tr.getAttribute('data-reason')})),
    lagLines: document.querySelectorAll('#chart-lag polyline, #chart-lag circle').length,
    throughputLines: document.querySelectorAll('#chart-throughput polyline').length,
  };
}"""


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


@pytest.fixture(scope="module")
def playwright_api():
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} not found: run tests/testbed/install-deps "
                    "(Debian package chromium)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not in the test venv: run "
                    "tests/testbed/install-deps", pytrace=False)
    with sync_playwright() as api:
        yield api


def metric_view(samples):
    """What the page should show, from one scrape: {partition: fields},
    {(phase, reason): count}."""
    parts = {}
    for name, field in (("kafka_consumergroup_group_lag", "lag"),
                        ("kafka_consumergroup_group_lag_seconds",
                         "lag_seconds"),
                        ("m3bridge_committed_offset", "committed"),
                        ("m3bridge_high_watermark", "high_watermark"),
                        ("m3bridge_lag_verdict", "verdict")):
        for lab, v in series(samples, name, group=GROUP, topic=DESIRED):
            parts.setdefault(lab["partition"], {})[field] = v
    totals = {(lab["phase"], lab["reason"]): v
              for lab, v in series(samples, "m3bridge_events_total")}
    return parts, totals


def page_view(snap):
    parts = {}
    for p in snap["partitions"]:
        parts[p["partition"]] = {
            "lag": float(p["lag"]), "lag_seconds": float(p["lagSeconds"]),
            "committed": float(p["committed"]),
            "high_watermark": float(p["highWatermark"]),
            "verdict": p["verdict"]}
    totals = {(t["phase"], t["reason"]): float(t["count"])
              for t in snap["totals"]}
    return parts, totals


def differences(snap, samples):
    """Where the page differs from one scrape ([] when it matches)."""
    want_parts, want_totals = metric_view(samples)
    got_parts, got_totals = page_view(snap)
    diffs = []
    if set(got_parts) != set(want_parts):
        return [f"partitions {sorted(got_parts)} != {sorted(want_parts)}"]
    for p, want in want_parts.items():
        got = got_parts[p]
        for field in ("lag", "lag_seconds", "committed", "high_watermark"):
            if got[field] != want.get(field):
                diffs.append(f"partition {p} {field}: page {got[field]} "
                             f"metrics {want.get(field)}")
        verdict = VERDICTS.get(int(want["verdict"])) if "verdict" in want \
            else "n/a"
        if got["verdict"] != verdict:
            diffs.append(f"partition {p} verdict: page {got['verdict']} "
                         f"metrics {verdict}")
    if got_totals != want_totals:
        diffs.append(f"totals: page {got_totals} metrics {want_totals}")
    return diffs


def matching_scrape(page, listener, tries=20):
    """Snapshots the page until it equals one of the scrapes taken around
    it (the page refreshes every 0.5 s, the metrics every 1 s heartbeat).
    Returns (snapshot, samples)."""
    scrapes, last = [], None
    for _ in range(tries):
        scrapes.append(listener.metrics())
        snap = page.evaluate(SNAPSHOT_JS)
        scrapes.append(listener.metrics())
        scrapes = scrapes[-6:]
        for samples in scrapes:
            last = differences(snap, samples)
            if not last:
                return snap, samples
        time.sleep(0.3)
    pytest.fail("the page never matched /metrics:\n" + "\n".join(last),
                pytrace=False)


def test_ui_matches_metrics_while_behind(tb, tmp_path, playwright_api, capsys):
    t0 = time.time()

    def say(*args):
        """Shown in the ctest log even when the test passes."""
        with capsys.disabled():
            print(*args, flush=True)
    d = make_workdir(tmp_path, tb, RUN, {
        "ui.sample_interval_ms": 1000, "listener.workers": 2,
        "retry.initial_backoff_ms": 200, "retry.max_backoff_ms": 1000,
        "kafka.auto.commit.interval.ms": 1000,
        # verdicts within seconds: 3 samples over 2 s
        "lag.verdict_window_ms": 4000})
    first = [f"ui-{RUN}-a{i}" for i in range(20)]
    blocked = f"ui-{RUN}-blocked"
    after = [f"ui-{RUN}-b{i}" for i in range(12)]
    unsigned_key = f"/v1/ConfigMap/{NAMESPACE}/unsigned-{RUN}"
    r = kubectl(tb, "apply", "-f", "-", stdin=WEBHOOK)
    assert r.returncode == 0, r.stderr
    listener = None
    try:
        # a backlog published before the listener starts, with one
        # unsigned record; the listener works through it
        r = publisher(d, ["publish", "-f", "-", "--release", f"ui-a-{RUN}"],
                      stdin=configmaps_yaml(first))
        assert r.returncode == 0, r.stderr
        produce_unsigned(tb, unsigned_key)
        marks = {"published": time.time() - t0}
        listener = Listener(d)
        listener.wait_http()
        wait_for(lambda: series(listener.metrics(), "m3bridge_events_total",
                                phase="REJECTED", reason="SIG_MISSING"),
                 60, "the unsigned record to be rejected")
        marks["backlog done"] = time.time() - t0
        # then the blocked record and more behind it: records queued on
        # the retrying record's worker wait too, whatever their partition
        for release, docs in ((f"ui-blocked-{RUN}", configmaps_yaml(
                                  [blocked], {BLOCK_LABEL: RUN})),
                              (f"ui-b-{RUN}", configmaps_yaml(after))):
            r = publisher(d, ["publish", "-f", "-", "--release", release],
                          stdin=docs)
            assert r.returncode == 0, r.stderr

        # Behind and steady: the blocked record retries, and everything
        # else that can finish has finished and been committed (the
        # auto-commit interval is 1 s here): the lag and the event counts
        # stay the same over two seconds, and the partitions behind are
        # judged STALL (offsets not moving while there is lag).
        seen = {}

        def behind_and_steady():
            a = listener.metrics()
            time.sleep(2.2)
            b = listener.metrics()
            seen["lags"] = lags = series(b, "kafka_consumergroup_group_lag",
                                         group=GROUP)
            seen["retries"] = retries = series(b, "m3bridge_retries_total")
            seen["events"] = series(b, "m3bridge_events_total")
            rejected = series(b, "m3bridge_events_total", phase="REJECTED")
            seen["still"] = still = (
                series(a, "m3bridge_events_total") == seen["events"] and
                series(a, "kafka_consumergroup_group_lag", group=GROUP) == lags)
            applied = series(b, "m3bridge_events_total", phase="APPLIED")
            verdicts = {lab["partition"]: v for lab, v in series(
                b, "m3bridge_lag_verdict", group=GROUP)}
            seen["verdicts"] = verdicts
            judged = all(verdicts.get(lab["partition"]) ==
                         (2 if v > 0 else 0) for lab, v in lags)
            return (len(lags) == 3 and any(v > 0 for _, v in lags) and
                    retries and retries[0][1] > 0 and rejected and still and
                    applied and applied[0][1] >= len(first) and judged)
        wait_for(behind_and_steady, 60, "the listener to be behind the "
                 "blocked record, with everything else finished",
                 state=lambda: f"{seen}\n{listener.text()[-3000:]}")
        marks["behind"] = time.time() - t0

        browser = playwright_api.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            requests = []
            page.on("request", lambda req: requests.append(req.url))
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(listener.url + "/ui?refresh_ms=500")
            page.wait_for_selector("#partitions tr[data-partition]",
                                   timeout=15000)
            # two lag samples a second apart make a line, not a dot
            wait_for(lambda: page.evaluate(SNAPSHOT_JS)["lagLines"] >= 3 and
                     page.evaluate("() => document.querySelectorAll("
                                   "'#chart-lag polyline').length") >= 3,
                     15, "a line per partition in the lag chart")

            snap, samples = matching_scrape(page, listener)
            parts, totals = page_view(snap)
            behind = [p for p, v in parts.items() if v["lag"] > 0]
            assert behind, parts
            assert all(parts[p]["lag_seconds"] > 0 for p in behind), parts
            assert all(v["verdict"] == ("STALL" if v["lag"] else "OK")
                       for v in parts.values()), parts
            assert snap["groupVerdict"] == "STALL", snap["groupVerdict"]
            assert float(snap["sumLag"]) == sum(v["lag"]
                                                for v in parts.values())
            applied = sum(v for (phase, _), v in totals.items()
                          if phase in ("APPLIED", "DELETED"))
            assert float(snap["appliedTotal"]) == applied
            assert totals.get(("REJECTED", "SIG_MISSING")) == 1, totals
            assert any(r["phase"] == "REJECTED" and
                       r["reason"] == "SIG_MISSING" for r in snap["recent"]), \
                snap["recent"]
            assert any(r["phase"] == "APPLIED" and
                       r["key"] == f"/v1/ConfigMap/{NAMESPACE}/{first[0]}"
                       for r in snap["recent"]), snap["recent"]
            assert snap["throughputLines"] == 2, snap
            say("page while behind (partition: lag, lag seconds, verdict):",
                {p: (v["lag"], v["lag_seconds"], v["verdict"])
                 for p, v in sorted(parts.items())},
                "group verdict", snap["groupVerdict"])

            os.makedirs(ARTIFACTS, exist_ok=True)
            shot = os.path.join(ARTIFACTS, "ui.png")
            page.screenshot(path=shot, full_page=True)
            assert os.path.getsize(shot) > 10000
            say(f"screenshot of /ui while behind: {shot}")

            marks["page checked"] = time.time() - t0
            # let it catch up: the page follows
            r = kubectl(tb, "delete", "validatingwebhookconfiguration",
                        f"m3b-ui-block-{RUN}")
            assert r.returncode == 0, r.stderr
            wait_for(lambda: all(
                v == 0 for _, v in series(listener.metrics(),
                                          "kafka_consumergroup_group_lag",
                                          group=GROUP)), 30,
                "the listener to catch up")
            wait_for(lambda: all(p["lag"] == "0" for p in
                                 page.evaluate(SNAPSHOT_JS)["partitions"]),
                     10, "the page to show no lag")
            snap, _ = matching_scrape(page, listener)
            assert all(v["lag"] == 0 and v["lag_seconds"] == 0 and
                       v["verdict"] == "OK"
                       for v in page_view(snap)[0].values()), snap
            assert any(r["key"] == f"/v1/ConfigMap/{NAMESPACE}/{blocked}" and
                       r["phase"] == "APPLIED" for r in snap["recent"])

            # nothing but the page and its data was ever requested
            assert requests, "the page made no request"
            foreign = [u for u in requests
                       if not u.startswith(listener.url + "/ui")]
            assert not foreign, foreign
            assert not errors, errors
        finally:
            browser.close()
        marks["caught up, page checked"] = time.time() - t0
        say("test_ui: seconds since start:",
              ", ".join(f"{k} {v:.1f}" for k, v in marks.items()))
        assert listener.proc.poll() is None, listener.text()
    finally:
        kubectl(tb, "delete", "validatingwebhookconfiguration",
                f"m3b-ui-block-{RUN}", "--ignore-not-found")
        rc = listener.stop() if listener else 0
        kubectl(tb, "delete", "configmap", "-n", NAMESPACE, "--wait=false",
                "--ignore-not-found", *(first + after + [blocked]))
    assert rc == 0, listener.text()
