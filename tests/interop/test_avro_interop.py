"""Interop of the C codec with fastavro, an independent Avro implementation.

(a) Events encoded by the C codec (m3b_contract_tool encode) decode with
    fastavro using nothing but schemas/*.avsc: magic, fingerprint of the
    schema's Parsing Canonical Form, and a body that is exactly one record.
(b) Events written by fastavro per the protocol (C3 01, fingerprint, body)
    decode in C, also across schema versions (tests/unit/data).

The tool's JSON model writes bytes and fixed as strings of code points
U+0000..U+00FF; fastavro uses Python bytes, so the tests convert with
latin-1. timestamp-millis fields are compared as milliseconds.

Environment: M3B_CONTRACT_TOOL (path of the tool), M3B_SOURCE_DIR.
"""
import datetime
import io
import json
import os
import struct
import subprocess
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import fingerprint, to_parsing_canonical_form

SRC = Path(os.environ.get("M3B_SOURCE_DIR", Path(__file__).resolve().parents[2]))
TOOL = os.environ.get("M3B_CONTRACT_TOOL")
SCHEMAS = SRC / "schemas"
DATA = SRC / "tests" / "unit" / "data"
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

if not TOOL:
    pytest.fail("M3B_CONTRACT_TOOL is not set (run through ctest)", pytrace=False)

SHA = bytes(range(32))
SAMPLES = {
    "DesiredState": {
        "plane": "eu1",
        "key": "apps/v1/Deployment/shop/web",
        "generation": 2**62,
        "op": "DELETE",
        "manifest": b'{"apiVersion":"apps/v1","kind":"Deployment"}\x00\xff\x80',
        "manifest_sha256": SHA,
        "release_id": "rel-\u00e9\u4e16",
        "issued_at": 1700000000123,
        "correlation_id": "c-1",
    },
    "Status": {
        "plane": "eu1",
        "key": "/v1/Namespace//shop",
        "generation": 9,
        "phase": "STALE_SKIPPED",
        "reason": "STALE",
        "message": None,
        "observed_uid": "4f1c",
        "observed_resource_version": None,
        "readiness": "NOT_READY",
        "readiness_detail": "0/3 replicas ready",
        "source_partition": -1,
        "source_offset": -1,
        "listener_id": "l-0",
        "applied_at": 1700000000999,
        "apply_latency_ms": 0,
    },
    "Heartbeat": {
        "plane": "eu1",
        "listener_id": "l-0",
        "version": "0.1.0",
        "state": "DEGRADED",
        "sent_at": 1,
        "partitions": [
            {"topic": "m3.eu1.desired", "partition": 0, "committed_offset": 10,
             "high_watermark": 12, "lag_messages": 2, "lag_ms": 1500},
            {"topic": "m3.eu1.desired", "partition": 5, "committed_offset": -1,
             "high_watermark": -1, "lag_messages": 0, "lag_ms": 0},
        ],
    },
    "Registration": {
        "plane": "eu1",
        "listener_id": "l-0",
        "public_key_alg": "X25519",
        "public_key": bytes(range(200, 232)),
        "namespaces": ["shop", "payments"],
        "capabilities": [],
        "version": "0.1.0",
        "registered_at": -5,
    },
}


def load_schema(path):
    with open(path) as f:
        return fastavro.parse_schema(json.load(f))


def fp_bytes(schema):
    """Little-endian CRC-64-AVRO as it appears in the header."""
    return bytes.fromhex(fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO"))


def to_tool_json(value):
    """Python (fastavro) value -> the tool's JSON model."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, dict):
        return {k: to_tool_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_tool_json(v) for v in value]
    return value


def normalise(value):
    """fastavro read value -> comparable (datetimes back to ms)."""
    if isinstance(value, datetime.datetime):
        return (value - EPOCH) // datetime.timedelta(milliseconds=1)
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def tool(*args, data=b""):
    proc = subprocess.run([TOOL, *args], input=data, capture_output=True, timeout=30)
    return proc.returncode, proc.stdout


def c_encode(record, value, *args):
    rc, out = tool("encode", record, *args,
                   data=json.dumps(to_tool_json(value)).encode())
    assert rc == 0, out
    return out


def c_decode(data, *args):
    rc, out = tool("decode", *args, data=data)
    return rc, json.loads(out)


def fastavro_encode(schema, value):
    body = io.BytesIO()
    fastavro.schemaless_writer(body, schema, value)
    return b"\xc3\x01" + fp_bytes(schema) + body.getvalue()


@pytest.mark.parametrize("record", sorted(SAMPLES))
def test_canonical_form_and_fingerprint_match(record):
    text = (SCHEMAS / f"{record}.avsc").read_bytes()
    rc, out = tool("canonical", data=text)
    assert rc == 0, out
    c_fp, c_form = out.decode().rstrip("\n").split(" ", 1)
    schema = load_schema(SCHEMAS / f"{record}.avsc")
    assert c_form == to_parsing_canonical_form(schema)
    # the tool prints the fingerprint as a number; the header is little-endian
    assert struct.pack("<Q", int(c_fp, 16)) == fp_bytes(schema)


@pytest.mark.parametrize("record", sorted(SAMPLES))
def test_c_encoded_decodes_with_fastavro(record):
    schema = load_schema(SCHEMAS / f"{record}.avsc")
    data = c_encode(record, SAMPLES[record])
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == fp_bytes(schema)
    body = io.BytesIO(data[10:])
    value = fastavro.schemaless_reader(body, schema, None)
    assert body.tell() == len(data) - 10, "body holds more than one record"
    assert normalise(value) == SAMPLES[record]


@pytest.mark.parametrize("record", sorted(SAMPLES))
def test_fastavro_encoded_decodes_in_c(record):
    schema = load_schema(SCHEMAS / f"{record}.avsc")
    data = fastavro_encode(schema, SAMPLES[record])
    rc, result = c_decode(data)
    assert rc == 0, result
    assert result["record"] == f"io.m3bridge.v1.{record}"
    assert bytes.fromhex(result["fingerprint"])[::-1] == fp_bytes(schema)
    assert result["value"] == to_tool_json(SAMPLES[record])


def test_c_fills_defaults_fastavro_omits():
    """fastavro writes a record without correlation_id using the older
    (v0) schema; the C v1 reader fills the default."""
    v0 = load_schema(DATA / "DesiredState.v0.avsc")
    value = dict(SAMPLES["DesiredState"])
    del value["correlation_id"]
    rc, result = c_decode(fastavro_encode(v0, value),
                          "--schema", str(DATA / "DesiredState.v0.avsc"))
    assert rc == 0, result
    assert result["value"]["correlation_id"] == ""
    # without the v0 schema the fingerprint is unknown
    rc, result = c_decode(fastavro_encode(v0, value))
    assert rc == 1 and result["error"] == "UNKNOWN_SCHEMA"


def test_newer_writer_older_reader():
    """fastavro writes v2 (an extra optional field); C (v1) reads it, and
    fastavro reading C's v1 bytes with a v2 reader fills the new field."""
    v1 = load_schema(SCHEMAS / "DesiredState.avsc")
    v2 = load_schema(DATA / "DesiredState.v2.avsc")
    value = dict(SAMPLES["DesiredState"], requested_by="alice")
    rc, result = c_decode(fastavro_encode(v2, value),
                          "--schema", str(DATA / "DesiredState.v2.avsc"))
    assert rc == 0, result
    assert result["value"] == to_tool_json(SAMPLES["DesiredState"])

    data = c_encode("DesiredState", SAMPLES["DesiredState"])
    back = fastavro.schemaless_reader(io.BytesIO(data[10:]), v1, v2)
    assert back["requested_by"] is None

    # an enum symbol the v1 reader does not know
    rc, result = c_decode(fastavro_encode(v2, dict(value, op="ADOPT")),
                          "--schema", str(DATA / "DesiredState.v2.avsc"))
    assert rc == 1 and result["error"] == "BAD_ENUM"


def test_damaged_fastavro_bytes_fail_cleanly():
    schema = load_schema(SCHEMAS / "Status.avsc")
    data = fastavro_encode(schema, SAMPLES["Status"])
    cases = {
        data[:-1]: "TRUNCATED",
        data + b"\x00": "TRAILING_BYTES",
        b"\xc3\x00" + data[2:]: "BAD_MAGIC",
        data[:2] + bytes(8) + data[10:]: "UNKNOWN_SCHEMA",
        b"": "TRUNCATED",
    }
    for damaged, error in cases.items():
        rc, result = c_decode(damaged)
        assert rc == 1 and result["error"] == error, (damaged[:12], result)
