"""test_listener_shutdown.py - SIGTERM while a record is retrying.

A ConfigMap that a ValidatingWebhookConfiguration sends to a webhook
address where nothing listens is answered 500 by the real kube-apiserver,
so the listener retries it with backoff. SIGTERM then must end the
listener cleanly (exit 0, within the grace period): closing the consumer
runs the revoke callback, which once polled the already destroyed
producer and crashed (SIGSEGV). The record it gave up on must not be
committed: once the webhook is gone, a new listener applies it.

Uses the test bed's plane "ui" (shared with test_ui and test_deploy under
a ctest RESOURCE_LOCK) and fails, never skips, without the test bed.
"""
import time
import uuid

import pytest
from testbed_py import read_testbed_env

from listener_py import (NAMESPACE, Listener, blocking_webhook,
                         configmaps_yaml, kubectl, make_workdir, publisher,
                         series, wait_for)

RUN = uuid.uuid4().hex[:8]
BLOCK_LABEL = "m3bridge-test-shutdown-block"

WEBHOOK = blocking_webhook(f"m3b-shutdown-block-{RUN}", BLOCK_LABEL, RUN)


@pytest.fixture(scope="module")
def tb():
    return read_testbed_env()


def test_sigterm_while_retrying_exits_cleanly(tb, tmp_path):
    d = make_workdir(tmp_path, tb, RUN, {"retry.initial_backoff_ms": 200,
                                         "retry.max_backoff_ms": 1000})
    name = f"shutdown-{RUN}"
    r = kubectl(tb, "apply", "-f", "-", stdin=WEBHOOK)
    assert r.returncode == 0, r.stderr
    listener = None
    try:
        r = publisher(d, ["publish", "-f", "-", "--release", f"sd-{RUN}"],
                      stdin=configmaps_yaml([name], {BLOCK_LABEL: RUN}))
        assert r.returncode == 0, r.stderr
        listener = Listener(d)
        listener.wait_http()
        wait_for(lambda: sum(v for _, v in series(
            listener.metrics(), "m3bridge_retries_total")) >= 2,
            60, "the blocked record to be retried")

        started = time.time()
        rc = listener.stop(timeout=30)
        took = time.time() - started
        log = listener.text()
        listener = None
        # -11 is SIGSEGV: the revoke callback polled a freed producer
        assert rc == 0, f"exit {rc} after SIGTERM while retrying:\n{log}"
        assert took < 10, f"stopping took {took:.1f} s (grace 5 s):\n{log}"

        r = kubectl(tb, "get", "configmap", "-n", NAMESPACE, name)
        assert r.returncode != 0, "the blocked ConfigMap exists already"
        r = kubectl(tb, "delete", "validatingwebhookconfiguration",
                    f"m3b-shutdown-block-{RUN}")
        assert r.returncode == 0, r.stderr

        # the abandoned record was not committed: the next run applies it
        listener = Listener(d)
        listener.wait_http()
        wait_for(lambda: kubectl(tb, "get", "configmap", "-n", NAMESPACE,
                                 name).returncode == 0,
                 60, "the record given up at shutdown to be applied")
    finally:
        kubectl(tb, "delete", "validatingwebhookconfiguration",
                f"m3b-shutdown-block-{RUN}", "--ignore-not-found")
        if listener:
            listener.stop()
        kubectl(tb, "delete", "configmap", "-n", NAMESPACE, "--wait=false",
                "--ignore-not-found", name)
