"""Interop of m3bridge's signatures and sealed secrets with an independent
implementation: Python's `cryptography`, following only
docs/PROTOCOL.md ("Signing" and "Sealed secrets"). Signatures made in C verify here and
the reverse, secrets sealed here unseal in C and the reverse, and PEM keys
cross both ways. The C side is tests/interop/m3b_crypto_tool.c, found
through the environment variable M3B_CRYPTO_TOOL (set by ctest)."""

import base64
import hashlib
import json
import os
import subprocess

import pytest
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TOOL = os.environ.get("M3B_CRYPTO_TOOL", "")
OBJECT_KEY = "/v1/Secret/shop/db"
RECORD_KEY = "apps/v1/Deployment/shop/web"
RAW = (serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def tool(*args, stdin=b"", check=True):
    assert TOOL, "M3B_CRYPTO_TOOL is not set (run through ctest)"
    proc = subprocess.run(
        [TOOL, *[str(a) for a in args]], input=stdin, capture_output=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{args[0]} failed: {proc.stderr.decode()}")
    return proc


def error_name(proc):
    """The m3b error name the tool printed ("error: NAME: detail")."""
    assert proc.returncode == 1, proc.stderr
    return proc.stderr.decode().split(":")[1].strip()


# ---- the protocol, written from the document ----


def signing_input(key: bytes, value: bytes) -> bytes:
    return (
        b"m3bridge-sig-v1\x00"
        + len(key).to_bytes(4, "big")
        + key
        + len(value).to_bytes(8, "big")
        + value
    )


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(public.public_bytes(*RAW)).hexdigest()[:16]


def derive(shared: bytes, eph_pub: bytes, listener_pub: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=eph_pub + listener_pub,
        info=b"m3bridge-seal-v1",
    ).derive(shared)


def seal(listener: X25519PublicKey, plain: bytes, aad: str) -> str:
    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(*RAW)
    key = derive(eph.exchange(listener), eph_pub, listener.public_bytes(*RAW))
    nonce = os.urandom(12)
    sealed = AESGCM(key).encrypt(nonce, plain, aad.encode())  # ct || tag
    envelope = b"m3s\x01" + eph_pub + nonce + sealed
    return "m3bridge:sealed:v1:" + base64.b64encode(envelope).decode()


def unseal(listener: X25519PrivateKey, text: str, aad: str) -> bytes:
    prefix = "m3bridge:sealed:v1:"
    assert text.startswith(prefix)
    envelope = base64.b64decode(text[len(prefix) :], validate=True)
    assert envelope[:4] == b"m3s\x01" and len(envelope) >= 64
    eph_pub, nonce, sealed = envelope[4:36], envelope[36:48], envelope[48:]
    shared = listener.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    key = derive(shared, eph_pub, listener.public_key().public_bytes(*RAW))
    return AESGCM(key).decrypt(nonce, sealed, aad.encode())


def write_private(path, key, passphrase=None):
    enc = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc
        )
    )


def write_public(path, key):
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    )


VALUES = [b"", b"x", os.urandom(2048), bytes(range(256)) * 40]

# ---- signatures ----


@pytest.mark.parametrize("value", VALUES, ids=["empty", "1", "2k", "10k"])
def test_signing_input_is_as_documented(value):
    got = tool("sign-input", RECORD_KEY, stdin=value).stdout
    assert got == signing_input(RECORD_KEY.encode(), value)


@pytest.mark.parametrize("passphrase", [None, "pässphrase"])
def test_c_signs_python_verifies(tmp_path, passphrase):
    priv, pub = tmp_path / "sign.key", tmp_path / "sign.pub"
    args = [passphrase] if passphrase else []
    kid = tool("keygen-sign", priv, pub, *args).stdout.decode().strip()
    assert (priv.stat().st_mode & 0o777) == 0o600
    public = serialization.load_pem_public_key(pub.read_bytes())
    assert kid == key_id(public)
    # the private PEM crosses too, encrypted or not
    loaded = serialization.load_pem_private_key(
        priv.read_bytes(), passphrase.encode() if passphrase else None
    )
    assert key_id(loaded.public_key()) == kid
    for value in VALUES:
        sig_hex, sig_kid = tool("sign", priv, RECORD_KEY, *args, stdin=value)\
            .stdout.decode().split()
        assert sig_kid == kid
        sig = bytes.fromhex(sig_hex)
        assert len(sig) == 64
        public.verify(sig, signing_input(RECORD_KEY.encode(), value))
        with pytest.raises(InvalidSignature):
            public.verify(sig, signing_input(b"apps/v1/Deployment/x/y", value))


def test_python_signs_c_verifies(tmp_path):
    ring = tmp_path / "trusted"
    ring.mkdir()
    old, new = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    write_public(ring / "old.pem", old.public_key())
    write_public(ring / "new.pem", new.public_key())
    value = os.urandom(2048)
    for key in (old, new):  # rotation: both trusted at once
        sig = key.sign(signing_input(RECORD_KEY.encode(), value))
        kid = key_id(key.public_key())
        out = tool("verify", ring, RECORD_KEY, sig.hex(), kid, stdin=value)
        assert out.stdout.strip() == b"OK"
        assert tool("kid", ring / ("old.pem" if key is old else "new.pem"))\
            .stdout.decode().strip() == kid

    sig = new.sign(signing_input(RECORD_KEY.encode(), value))
    kid = key_id(new.public_key())
    stranger = Ed25519PrivateKey.generate()
    cases = [
        ("SIG_INVALID", RECORD_KEY, sig.hex(), kid, value[:-1] + b"!"),
        ("SIG_INVALID", "apps/v1/Deployment/shop/api", sig.hex(), kid, value),
        ("SIG_INVALID", RECORD_KEY, sig.hex(), key_id(old.public_key()), value),
        ("SIG_UNKNOWN_KEY", RECORD_KEY, sig.hex(),
         key_id(stranger.public_key()), value),
        ("SIG_MALFORMED", RECORD_KEY, sig.hex()[:-2], kid, value),
        ("SIG_MALFORMED", RECORD_KEY, sig.hex() + "00", kid, value),
        ("SIG_MALFORMED", RECORD_KEY, sig.hex(), kid.upper(), value),
        ("SIG_MISSING", RECORD_KEY, "-", kid, value),
        ("SIG_MISSING", RECORD_KEY, sig.hex(), "-", value),
    ]
    for want, rkey, sig_hex, k, v in cases:
        proc = tool("verify", ring, rkey, sig_hex, k, stdin=v, check=False)
        assert error_name(proc) == want, (want, proc.stderr)


def test_python_private_keys_load_in_c(tmp_path):
    key = Ed25519PrivateKey.generate()
    value = b"hello"
    for passphrase in (None, "s3cret"):
        path = tmp_path / f"k-{passphrase}.pem"
        write_private(path, key, passphrase)
        args = [passphrase] if passphrase else []
        sig_hex, kid = tool("sign", path, RECORD_KEY, *args, stdin=value)\
            .stdout.decode().split()
        assert kid == key_id(key.public_key())
        key.public_key().verify(
            bytes.fromhex(sig_hex), signing_input(RECORD_KEY.encode(), value)
        )
    proc = tool("sign", tmp_path / "k-s3cret.pem", RECORD_KEY, "wrong",
                stdin=value, check=False)
    assert error_name(proc) == "KEY_PASSPHRASE"
    # an X25519 key is not a signing key
    write_private(tmp_path / "x.pem", X25519PrivateKey.generate())
    proc = tool("sign", tmp_path / "x.pem", RECORD_KEY, stdin=value,
                check=False)
    assert error_name(proc) == "KEY_MALFORMED"


# ---- sealed secrets ----

SECRETS = [b"", b"p", os.urandom(64), os.urandom(4096)]


@pytest.mark.parametrize("plain", SECRETS, ids=["0", "1", "64", "4k"])
def test_python_seals_c_unseals(tmp_path, plain):
    priv, pub = tmp_path / "listener.key", tmp_path / "listener.pub"
    tool("keygen-seal", priv, pub)
    assert (priv.stat().st_mode & 0o777) == 0o600
    listener_pub = serialization.load_pem_public_key(pub.read_bytes())
    text = seal(listener_pub, plain, OBJECT_KEY)
    assert tool("unseal", priv, OBJECT_KEY, stdin=text.encode()).stdout == plain
    proc = tool("unseal", priv, "/v1/Secret/shop/other", stdin=text.encode(),
                check=False)
    assert error_name(proc) == "SEAL_AUTH"
    raw = bytearray(base64.b64decode(text.split(":", 3)[3]))
    raw[3] = 2
    bad = "m3bridge:sealed:v1:" + base64.b64encode(bytes(raw)).decode()
    proc = tool("unseal", priv, OBJECT_KEY, stdin=bad.encode(), check=False)
    assert error_name(proc) == "SEAL_VERSION"


@pytest.mark.parametrize("plain", SECRETS, ids=["0", "1", "64", "4k"])
def test_c_seals_python_unseals(tmp_path, plain):
    listener = X25519PrivateKey.generate()
    write_public(tmp_path / "listener.pub", listener.public_key())
    write_private(tmp_path / "listener.key", listener, "pw")
    text = tool("seal", tmp_path / "listener.pub", OBJECT_KEY, stdin=plain)\
        .stdout.decode().strip()
    assert unseal(listener, text, OBJECT_KEY) == plain
    with pytest.raises(InvalidTag):
        unseal(listener, text, "/v1/Secret/shop/other")
    # and the Python-made (encrypted) private PEM loads in C
    out = tool("unseal", tmp_path / "listener.key", OBJECT_KEY, "pw",
               stdin=text.encode())
    assert out.stdout == plain


def test_secret_manifest_both_ways(tmp_path):
    listener = X25519PrivateKey.generate()
    write_public(tmp_path / "listener.pub", listener.public_key())
    write_private(tmp_path / "listener.key", listener)
    manifest = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "db", "namespace": "shop"},
        "data": {"password": base64.b64encode(b"hunter2").decode()},
        "stringData": {"user": "admin"},
    }
    out = tool("seal-manifest", tmp_path / "listener.pub", OBJECT_KEY,
               stdin=json.dumps(manifest).encode())
    sealed = json.loads(out.stdout)
    assert "stringData" not in sealed
    assert unseal(listener, sealed["data"]["password"], OBJECT_KEY) == b"hunter2"
    assert unseal(listener, sealed["data"]["user"], OBJECT_KEY) == b"admin"

    mine = dict(manifest, data={
        "password": seal(listener.public_key(), b"hunter2", OBJECT_KEY),
        "user": seal(listener.public_key(), b"admin", OBJECT_KEY),
    })
    del mine["stringData"]
    out = tool("unseal-manifest", tmp_path / "listener.key", OBJECT_KEY,
               stdin=json.dumps(mine).encode())
    opened = json.loads(out.stdout)["data"]
    assert base64.b64decode(opened["password"]) == b"hunter2"
    assert base64.b64decode(opened["user"]) == b"admin"
