"""testbed_py.py - what the Python integration tests share: the test bed's
env file (written by `tests/testbed/testbed up`) and Kafka watermark
queries that ride out leader elections on a just-created topic.

Tests fail, never skip, when the test bed is not up.
"""
import os
import time

import pytest
from confluent_kafka import KafkaError, KafkaException

SOURCE = os.environ.get("M3B_SOURCE_DIR", os.getcwd())

TRANSIENT = (KafkaError.NOT_LEADER_FOR_PARTITION,
             KafkaError.LEADER_NOT_AVAILABLE,
             KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT,
             KafkaError._TIMED_OUT)


def read_testbed_env():
    """The KEY=VALUE lines of $M3B_TESTBED_DIR/env as a dict."""
    d = os.environ.get("M3B_TESTBED_DIR") or os.environ.get(
        "M3B_TESTBED_DIR_DEFAULT") or os.path.join(SOURCE, ".testbed")
    path = os.path.join(d, "env")
    if not os.path.exists(path):
        pytest.fail(f"the test bed is not up ({path} missing): run "
                    "tests/testbed/testbed up", pytrace=False)
    env = {}
    with open(path) as f:
        for line in f:
            if "=" in line and not line.startswith("#"):
                k, _, v = line.rstrip("\n").partition("=")
                env[k] = v
    return env


def watermarks(consumer, tp):
    """(low, high) of a partition, retried for up to 30 s while a new
    topic's leaders are elected."""
    deadline = time.time() + 30
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10)
        except KafkaException as e:
            transient = e.args[0].code() in TRANSIENT or e.args[0].retriable()
            if not transient or time.time() > deadline:
                raise
            time.sleep(0.2)
