"""The terminal's device identity and the records it signs (ISC-2 §7.4.1, §7.4.2; CSMT §7.4,
§12.3): the key sealed at rest, the certificate matched to it, every frame signed when built
and the signature kept with the frame in the outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from protocols.hj212.record_signature import SIGN_FIELD, Verdict, verify_record
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.config import Identity
from reference_terminal.operations.remote_config import START_ONLY, sections_changed
from reference_terminal.security.identity import (
    DeviceIdentity,
    IdentityError,
    create_device_key,
    install_certificate,
    load_device_key,
    main,
)
from reference_terminal.security.secrets import SecretBox
from reference_terminal.uplink.frames import Frame, Item
from reference_terminal.uplink.signing import RecordSigner
from simulators.pki import TestCa
from simulators.power import VolatileMount
from tests.simulators.power.conftest import needs_fuse, on_mount

MN = "010000A8900016F000100000"
OFFSET = 8 * 3600
NOW = datetime(2027, 1, 1)
FRAME = Frame(
    2051,
    1_798_732_800.0,
    (
        Item("e10101", (("Cou", Decimal("12.5")),), "N"),
        Item("a21026", (("Avg", Decimal("1.50")), ("Min", Decimal("1.2"))), "N"),
    ),
)


@pytest.fixture
def box(tmp_path: Path) -> SecretBox:
    return SecretBox.from_key_file(tmp_path / "keys" / "terminal.key")


@pytest.fixture
def enrolled(tmp_path: Path, box: SecretBox) -> tuple[Path, Path]:
    """A device key sealed on disk and its certificate from a test CA."""
    key = create_device_key(tmp_path / "device.sealed", box)
    ca = TestCa.create(tmp_path / "pki", now=NOW)
    certificate = ca.issue_device(key.public_key(), subject="terminal", now=NOW)
    (tmp_path / "device.pem").write_text(certificate.to_pem())
    return tmp_path / "device.sealed", tmp_path / "device.pem"


# ---- the key at rest ---------------------------------------------------------------------------


def test_the_device_key_is_sealed_at_rest(tmp_path: Path, box: SecretBox) -> None:
    key = create_device_key(tmp_path / "device.sealed", box)
    stored = (tmp_path / "device.sealed").read_bytes()
    assert key.secret not in stored and key.secret.hex().encode() not in stored
    assert (tmp_path / "device.sealed").stat().st_mode & 0o077 == 0
    assert load_device_key(tmp_path / "device.sealed", box) == key


def test_the_device_key_opens_only_under_its_master_key(tmp_path: Path, box: SecretBox) -> None:
    create_device_key(tmp_path / "device.sealed", box)
    stranger = SecretBox.from_key_file(tmp_path / "other.key")
    with pytest.raises(IdentityError, match="cannot be opened") as caught:
        load_device_key(tmp_path / "device.sealed", stranger)
    assert "ISC-2 §7.4.1" in str(caught.value)


def test_an_altered_key_file_is_refused(tmp_path: Path, box: SecretBox) -> None:
    path = tmp_path / "device.sealed"
    create_device_key(path, box)
    data = bytearray(path.read_bytes())
    data[40] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IdentityError, match="HMAC-SM3"):
        load_device_key(path, box)


def test_a_device_key_is_never_replaced_silently(tmp_path: Path, box: SecretBox) -> None:
    create_device_key(tmp_path / "device.sealed", box)
    with pytest.raises(IdentityError, match="already holds"):
        create_device_key(tmp_path / "device.sealed", box)


def test_the_enrolment_tool_prints_the_public_key_for_the_ca(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = [str(tmp_path / "device.sealed"), str(tmp_path / "terminal.key")]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0  # the second run shows the same key, it makes no new one
    assert capsys.readouterr().out == first and first.startswith("-----BEGIN PUBLIC KEY-----")


# ---- key and certificate -----------------------------------------------------------------------


def test_the_identity_loads_when_the_certificate_certifies_the_key(
    enrolled: tuple[Path, Path], box: SecretBox
) -> None:
    identity = DeviceIdentity.load(*enrolled, box)
    assert identity.certificate.public_key == identity.key.public_key()


def test_a_certificate_for_another_key_is_refused(
    enrolled: tuple[Path, Path], box: SecretBox, tmp_path: Path
) -> None:
    key_file, _ = enrolled
    ca = TestCa.create(tmp_path / "pki")
    other = ca.issue_device(Sm2PrivateKey.generate().public_key(), subject="other", now=NOW)
    (tmp_path / "other.pem").write_text(other.to_pem())
    with pytest.raises(IdentityError, match="another key"):
        DeviceIdentity.load(key_file, tmp_path / "other.pem", box)


def test_the_enrolment_tool_installs_the_certificate_the_ca_issued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], box: SecretBox
) -> None:
    key_file, master = tmp_path / "device.sealed", tmp_path / "keys" / "terminal.key"
    assert main([str(key_file), str(master)]) == 0
    capsys.readouterr()
    key = load_device_key(key_file, box)
    issued = TestCa.create(tmp_path / "pki", now=NOW).issue_device(
        key.public_key(), subject="t", now=NOW
    )
    (tmp_path / "issued.pem").write_text(issued.to_pem())
    installed = tmp_path / "etc" / "device.pem"
    assert (
        main(
            [
                str(key_file),
                str(master),
                "--certificate",
                str(tmp_path / "issued.pem"),
                str(installed),
            ]
        )
        == 0
    )
    assert DeviceIdentity.load(key_file, installed, box).certificate == issued


def test_a_certificate_for_another_key_is_not_installed(tmp_path: Path, box: SecretBox) -> None:
    key = create_device_key(tmp_path / "device.sealed", box)
    other = TestCa.create(tmp_path / "pki").issue_device(
        Sm2PrivateKey.generate().public_key(), subject="other", now=NOW
    )
    with pytest.raises(IdentityError, match="another key"):
        install_certificate(tmp_path / "device.pem", other.to_pem(), key)
    with pytest.raises(IdentityError, match="not a device certificate"):
        install_certificate(tmp_path / "device.pem", "-----BEGIN CERTIFICATE-----\n", key)
    assert not (tmp_path / "device.pem").exists()


@needs_fuse
def test_an_installed_certificate_survives_a_power_cut(tmp_path: Path, box: SecretBox) -> None:
    """Enrolment comes before the power cuts: a certificate only in the page cache would be
    gone after the first, and the terminal could not boot again."""
    key = create_device_key(tmp_path / "device.sealed", box)
    pem = TestCa.create(tmp_path / "pki", now=NOW).issue_device(
        key.public_key(), subject="t", now=NOW
    )

    async def body(mount: VolatileMount, mnt: Path, backing: Path) -> None:
        install_certificate(mnt / "keys" / "device.pem", pem.to_pem(), key)
        (mnt / "keys" / "plain.pem").write_text(pem.to_pem())  # what enrolment once did
        await mount.cut()
        await mount.restore()
        assert (mnt / "keys" / "device.pem").read_text() == pem.to_pem()
        assert (mnt / "keys" / "plain.pem").read_text() == ""

    on_mount(tmp_path, body)


def test_signing_needs_a_certificate_in_the_configuration() -> None:
    with pytest.raises(ValidationError, match="certificate_file"):
        Identity(sign_uploads=True)
    assert not Identity().sign_uploads  # off unless configured


# ---- frames ------------------------------------------------------------------------------------

KEY = Sm2PrivateKey.generate()
SIGNER = RecordSigner(KEY, MN, OFFSET)


def test_a_signed_frame_carries_sm2sign_and_verifies_at_a_platform() -> None:
    frame = SIGNER.sign(FRAME)
    cp = frame.cp(OFFSET)
    assert len(cp.get(SIGN_FIELD) or "") == 128
    assert verify_record(KEY.public_key(), MN, frame.cn, cp).verified


def test_an_unsigned_frame_has_no_sm2sign() -> None:
    assert FRAME.cp(OFFSET).get(SIGN_FIELD) is None


def test_the_signature_survives_the_outbox_row() -> None:
    frame = SIGNER.sign(FRAME)
    again = Frame.from_row(frame.cn, frame.data_time, frame.payload())
    assert again == frame
    assert Frame.from_row(FRAME.cn, FRAME.data_time, FRAME.payload()) == FRAME  # unsigned rows


def test_a_value_altered_in_the_outbox_fails_at_the_platform() -> None:
    """CSMT §12.3: the signature guards the record at rest too, from the moment it is built."""
    frame = SIGNER.sign(FRAME)
    altered = Frame.from_row(frame.cn, frame.data_time, frame.payload().replace("12.5", "11.5"))
    check = verify_record(KEY.public_key(), MN, altered.cn, altered.cp(OFFSET))
    assert check.verdict is Verdict.FAILED


def test_signing_again_gives_a_signature_that_verifies_the_same_record() -> None:
    once = SIGNER.sign(FRAME)
    twice = SIGNER.sign(once)  # a signed frame re-signed: the old signature is not signed over
    assert verify_record(KEY.public_key(), MN, twice.cn, twice.cp(OFFSET)).verified
    assert once.with_signature("") == twice.with_signature("")


def test_signing_cannot_be_switched_off_remotely() -> None:
    """The identity section is read at start only: PUT/PATCH /config refuses to change it."""
    signing = {"identity": {"sign_uploads": True, "certificate_file": "device.pem"}}
    off = {"identity": {"sign_uploads": False, "certificate_file": "device.pem"}}
    assert sections_changed(signing, off, START_ONLY) == ["identity"]
