"""results.json integrity: SM3 of the canonical content, SM2 signature, the bench key."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from bench.report import signing
from bench.report.manifest import evidence_hashes
from conformance.results import RunResults
from protocols.smcrypto import Sm2PrivateKey, sm3


@pytest.fixture(scope="module")
def key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


@pytest.fixture
def signed(results: RunResults, key: Sm2PrivateKey) -> dict[str, Any]:
    return signing.sign(results.to_json(), key)


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "results.json"
    signing.write(path, document)
    return path


def test_round_trip(signed: dict[str, Any], key: Sm2PrivateKey, tmp_path: Path) -> None:
    path = _write(tmp_path, signed)
    done = signing.verify(signing.read(path), public_key=key.public_key())
    assert done.sm3 == sm3(signing.canonical_bytes(signed)).hex() == signed["integrity"]["sm3"]
    assert done.key_given and done.fingerprint == signing.fingerprint(key.public_key())
    # the file is still plain results for everyone else
    assert len(RunResults.load(path).tests) == 6


def test_reindenting_keeps_it_valid(signed: dict[str, Any], tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(signed, indent=4, ensure_ascii=True))
    signing.verify(signing.read(path))


def test_one_byte_of_a_reason_changed_fails(signed: dict[str, Any], tmp_path: Path) -> None:
    path = _write(tmp_path, signed)
    data = bytearray(path.read_bytes())
    at = data.index(b"why fail") + 4
    data[at] ^= 0x01  # "why fail" → "why gail"
    path.write_bytes(bytes(data))
    with pytest.raises(signing.VerificationError, match="content changed after signing"):
        signing.verify(signing.read(path))


def test_re_hashed_content_still_fails_the_signature(signed: dict[str, Any]) -> None:
    forged = json.loads(json.dumps(signed))
    forged["tests"][0]["verdict"] = "pass"
    forged["integrity"]["sm3"] = sm3(signing.canonical_bytes(forged)).hex()
    with pytest.raises(signing.VerificationError, match="signature does not verify"):
        signing.verify(forged)


def test_swapped_embedded_key_fails(signed: dict[str, Any]) -> None:
    other = Sm2PrivateKey.generate().public_key()
    forged = json.loads(json.dumps(signed))
    forged["integrity"]["public_key"] = other.to_pem()
    with pytest.raises(signing.VerificationError, match="signature does not verify"):
        signing.verify(forged)


def test_other_given_key_fails(signed: dict[str, Any]) -> None:
    other = Sm2PrivateKey.generate().public_key()
    with pytest.raises(signing.VerificationError, match="not with the given key"):
        signing.verify(signed, public_key=other)


def test_resigned_by_someone_else_fails_against_the_bench_key(
    signed: dict[str, Any], key: Sm2PrivateKey
) -> None:
    forged = json.loads(json.dumps(signed))
    forged["tests"][0]["reason"] = "all good"
    forged = signing.sign(forged, Sm2PrivateKey.generate())
    signing.verify(forged)  # intact, but…
    with pytest.raises(signing.VerificationError, match="not with the given key"):
        signing.verify(forged, public_key=key.public_key())


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b.replace(b"{", b"[", 1), "not valid JSON"),
        (lambda b: b.replace(b"why fail", b"why \xfeail", 1), "not valid UTF-8"),
        (lambda b: b.replace(b'"tests"', b'"manifest": {}, "tests"', 1), "appears twice"),
    ],
)
def test_broken_files_say_what_is_wrong(
    signed: dict[str, Any], tmp_path: Path, mangle: Any, message: str
) -> None:
    path = _write(tmp_path, signed)
    path.write_bytes(mangle(path.read_bytes()))
    with pytest.raises(signing.VerificationError, match=message):
        signing.verify(signing.read(path))


def test_unsigned_fails(results: RunResults) -> None:
    with pytest.raises(signing.VerificationError, match="never signed"):
        signing.verify(results.to_json())


def test_run_files_are_checked(results: RunResults, key: Sm2PrivateKey, tmp_path: Path) -> None:
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "frames.txt").write_text("##0101…\n")
    (tmp_path / "junit.xml").write_text("<testsuites/>")
    results.manifest["files_sm3"] = evidence_hashes(tmp_path, ("results.json",)).sm3
    path = _write(tmp_path, signing.sign(results.to_json(), key))
    assert signing.verify(signing.read(path), run_dir=tmp_path).files_checked == 2
    (tmp_path / "evidence" / "frames.txt").write_text("##0101 forged\n")
    (tmp_path / "junit.xml").unlink()
    with pytest.raises(signing.VerificationError) as caught:
        signing.verify(signing.read(path), run_dir=tmp_path)
    assert "evidence/frames.txt: changed" in str(caught.value)
    assert "junit.xml: missing" in str(caught.value)


def test_bench_key_made_once_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    key, where, created = signing.load_or_create_key()
    assert created and where == tmp_path / "carbench" / signing.KEY_FILE
    assert stat.S_IMODE(where.stat().st_mode) == 0o600
    public = (where.parent / signing.PUBLIC_KEY_FILE).read_text()
    assert public == key.public_key().to_pem()
    again, _, created_again = signing.load_or_create_key()
    assert not created_again and again.secret == key.secret


def test_given_key(tmp_path: Path, key: Sm2PrivateKey) -> None:
    path = tmp_path / "lab.pem"
    path.write_text(key.to_pem())
    loaded, where, created = signing.load_or_create_key(path)
    assert loaded.secret == key.secret and where == path and not created
    path.write_text("not a key")
    with pytest.raises(signing.SigningError, match="not an SM2 private key"):
        signing.load_or_create_key(path)
    with pytest.raises(signing.SigningError, match="cannot read signing key"):
        signing.load_or_create_key(tmp_path / "missing.pem")
