"""SM2 signature fingerprints of HJ 212 records (CSMT §7.4, GB/T 37025; CSMT §12.3): what a
platform verifies, and what it must refuse."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocols.hj212 import Command, Cp, Pollutant
from protocols.hj212.packet import Packet, decode
from protocols.hj212.record_signature import (
    SIGN_FIELD,
    RecordSignatureError,
    Verdict,
    canonical_form,
    sign_record,
    verify_record,
    with_signature,
)
from protocols.hj212.split import merge, split
from protocols.smcrypto import Sm2PrivateKey, signature_to_der
from tests.protocols.hj212.strategies import pollutants, seconds

KEY = Sm2PrivateKey.generate()
OTHER = Sm2PrivateKey.generate()
MN = "010000A8900016F000100000"
CN = int(Command.MINUTE_DATA)
T0 = datetime(2027, 1, 1, 0, 0, 0)


def record(*values: tuple[str, str, str]) -> Cp:
    return Cp.build(
        data_time=T0,
        pollutants=[Pollutant(code, {field: Decimal(v)}, "N") for code, field, v in values],
    )


RECORD = record(("e10101", "Cou", "12.5"), ("a21026", "Avg", "1.50"))


def signed(cp: Cp = RECORD, key: Sm2PrivateKey = KEY, mn: str = MN) -> Cp:
    return with_signature(cp, sign_record(key, mn, CN, cp))


# ---- the canonical form ------------------------------------------------------------------------


def test_the_canonical_form_is_mn_cn_then_the_items_sorted_by_key_with_values_as_sent() -> None:
    assert canonical_form(MN, CN, RECORD) == (
        b"MN=010000A8900016F000100000;CN=2051;DataTime=20270101000000;"
        b"a21026-Avg=1.50;a21026-Flag=N;e10101-Cou=12.5;e10101-Flag=N"
    )


def test_the_canonical_form_leaves_out_the_signature_itself() -> None:
    assert canonical_form(MN, CN, signed()) == canonical_form(MN, CN, RECORD)


def test_the_canonical_form_does_not_depend_on_grouping_or_order() -> None:
    regrouped = Cp.parse(
        "e10101-Flag=N;a21026-Avg=1.50,a21026-Flag=N;DataTime=20270101000000;e10101-Cou=12.5"
    )
    assert canonical_form(MN, CN, regrouped) == canonical_form(MN, CN, RECORD)


def test_a_key_twice_has_no_canonical_form() -> None:
    twice = Cp("DataTime=20270101000000;e10101-Cou=1;e10101-Cou=2")
    with pytest.raises(RecordSignatureError, match="appears twice"):
        canonical_form(MN, CN, twice)


# ---- signing and verifying ---------------------------------------------------------------------


def test_a_signed_record_verifies_with_the_signers_public_key() -> None:
    cp = signed()
    assert len(cp.get(SIGN_FIELD) or "") == 128
    assert verify_record(KEY.public_key(), MN, CN, cp).verified


def test_a_signature_verifies_after_the_record_was_split_and_merged() -> None:
    many = record(*[(f"a{n:05d}", "Avg", f"{n}.25") for n in range(60)])
    packet = Packet(qn="20270101000000000", st="32", cn=CN, pw="123456", mn=MN, cp=signed(many))
    parts = split(packet)
    assert len(parts) > 1, "the record should need several packets"
    whole = merge([decode(p.encode()) for p in parts])
    assert verify_record(KEY.public_key(), MN, CN, whole.cp).verified


def test_a_tampered_value_is_detected() -> None:
    cp = signed()
    tampered = Cp(cp.text.replace("e10101-Cou=12.5", "e10101-Cou=11.5"))
    check = verify_record(KEY.public_key(), MN, CN, tampered)
    assert check.verdict is Verdict.FAILED and "altered" in check.reason


@pytest.mark.parametrize(
    "change",
    [
        ("a21026-Avg=1.50", "a21026-Avg=1.5"),  # the same number, other text: still a change
        ("a21026-Flag=N", "a21026-Flag=D"),
        ("DataTime=20270101000000", "DataTime=20270101000100"),
        (";a21026-Avg=1.50,a21026-Flag=N", ""),  # an item dropped
        ("e10101-Flag=N", "e10101-Flag=N,e10101-Max=13"),  # an item added
    ],
)
def test_every_kind_of_change_to_the_record_is_detected(change: tuple[str, str]) -> None:
    cp = signed()
    assert change[0] in cp.text
    assert not verify_record(KEY.public_key(), MN, CN, Cp(cp.text.replace(*change))).verified


def test_a_record_replayed_under_another_mn_or_cn_is_detected() -> None:
    cp = signed()
    assert not verify_record(KEY.public_key(), "010000A8900016F000100001", CN, cp).verified
    assert not verify_record(KEY.public_key(), MN, int(Command.HOUR_DATA), cp).verified


def test_a_signature_by_another_key_is_detected() -> None:
    check = verify_record(KEY.public_key(), MN, CN, signed(key=OTHER))
    assert check.verdict is Verdict.FAILED


def test_an_unsigned_record_is_missing_not_verified() -> None:
    check = verify_record(KEY.public_key(), MN, CN, RECORD)
    assert check.verdict is Verdict.MISSING and SIGN_FIELD in check.reason


@pytest.mark.parametrize(
    ("value", "why"),
    [("00" * 63, "126 characters"), ("zz" * 64, "not hexadecimal"), ("ab" * 64, "altered")],
)
def test_a_malformed_signature_fails_with_its_reason(value: str, why: str) -> None:
    check = verify_record(KEY.public_key(), MN, CN, with_signature(RECORD, value))
    assert check.verdict is Verdict.FAILED and why in check.reason


def test_upper_case_hex_verifies_too() -> None:
    cp = signed()
    upper = with_signature(RECORD, (cp.get(SIGN_FIELD) or "").upper())
    assert verify_record(KEY.public_key(), MN, CN, upper).verified


@given(pollutants=st.lists(pollutants(), min_size=1, max_size=6, unique_by=lambda p: p.code))
@settings(max_examples=60, deadline=None)
def test_any_record_round_trips(pollutants: list[Pollutant]) -> None:
    cp = Cp.build(data_time=T0, pollutants=pollutants)
    assert verify_record(KEY.public_key(), MN, CN, signed(cp)).verified


@given(
    text=st.text(max_size=300),
    mn=st.text(max_size=30),
    cn=st.integers(min_value=-1, max_value=100_000),
)
@settings(max_examples=300, deadline=None)
def test_the_verifier_never_crashes_on_garbage(text: str, mn: str, cn: int) -> None:
    check = verify_record(KEY.public_key(), mn, cn, Cp(text))
    assert check.verdict in (Verdict.MISSING, Verdict.FAILED)


@given(
    moment=seconds, digits=st.text(alphabet="0123456789abcdefABCDEF", min_size=128, max_size=128)
)
@settings(max_examples=100, deadline=None)
def test_a_random_signature_never_verifies(moment: datetime, digits: str) -> None:
    cp = replace(
        RECORD, text=RECORD.text.replace("20270101000000", moment.strftime("%Y%m%d%H%M%S"))
    )
    assert not verify_record(KEY.public_key(), MN, CN, with_signature(cp, digits)).verified


# ---- a third party verifies with OpenSSL alone -------------------------------------------------

OPENSSL = shutil.which("openssl")


@pytest.mark.skipif(OPENSSL is None, reason="needs the openssl 3 command line")
def test_openssl_verifies_a_record_from_the_documented_canonical_form(tmp_path: Path) -> None:
    """The module text's recipe, followed to the letter by a tool that shares no code with us."""
    assert OPENSSL is not None
    cp = signed()
    (tmp_path / "canonical").write_bytes(canonical_form(MN, CN, cp))
    signature = bytes.fromhex(cp.get(SIGN_FIELD) or "")
    (tmp_path / "sig.der").write_bytes(signature_to_der(signature))
    (tmp_path / "pub.pem").write_text(KEY.public_key().to_pem())
    command = [OPENSSL, "pkeyutl", "-verify", "-pubin", "-inkey", str(tmp_path / "pub.pem")]
    command += ["-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"]
    command += ["-in", str(tmp_path / "canonical"), "-sigfile", str(tmp_path / "sig.der")]
    result = subprocess.run(command, capture_output=True, check=False, timeout=30)
    assert result.returncode == 0, result.stderr
    assert b"Signature Verified Successfully" in result.stdout
