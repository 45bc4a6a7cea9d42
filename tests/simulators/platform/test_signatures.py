"""A centre verifying every record's SM2 signature against the device certificate it was given
(CSMT §7.4, §12.3; ISC-2 §7.4.1): verified, tampered, unsigned and unknown signers are each
recorded with their verdict, never silently accepted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from protocols.hj212 import events as ev
from protocols.hj212.codes import Command
from protocols.hj212.cp import Cp
from protocols.hj212.record_signature import sign_record, with_signature
from protocols.smcrypto import Sm2PrivateKey
from simulators.pki import TestCa
from simulators.platform import Hj212Server, Record
from simulators.platform.signatures import TrustError
from tests.simulators.platform.conftest import CentreFactory, DeviceFactory
from tests.simulators.platform.device import MN, T0, acknowledges, data_cp

pytestmark = pytest.mark.anyio

KEY = Sm2PrivateKey.generate()
CN = int(Command.MINUTE_DATA)
VALUES = [("e10101", "12.5"), ("a21026", "1.50")]


@pytest.fixture
def ca(tmp_path: Path) -> TestCa:
    return TestCa.create(tmp_path / "pki", now=datetime.now())


@pytest.fixture
async def centre(centre_factory: CentreFactory, ca: TestCa) -> Hj212Server:
    server = await centre_factory(signatures={"ca_file": str(ca.certificate_file)})
    server.trust_device(MN, ca.issue_device(KEY.public_key(), subject="terminal").to_pem())
    return server


def signed(cp: Cp, key: Sm2PrivateKey = KEY) -> Cp:
    return with_signature(cp, sign_record(key, MN, CN, cp))


async def until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def upload(centre: Hj212Server, device_factory: DeviceFactory, cp: Cp) -> None:
    device = await device_factory(centre)
    qn = device.upload(CN, cp)
    await device.wait_for(ev.UploadAcknowledged, acknowledges(qn))


def verdicts(record: Record, centre: Hj212Server) -> list[tuple[str | None, str | None]]:
    return [
        (f.signature, f.signature_error) for f in record.frames(centre=centre.name, direction="in")
    ]


async def test_a_signed_record_is_verified(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    await upload(centre, device_factory, signed(data_cp(T0, VALUES, "Avg")))
    assert verdicts(record, centre) == [("verified", None)]


async def test_a_tampered_record_is_recorded_as_failed(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    good = signed(data_cp(T0, VALUES, "Avg"))
    tampered = Cp.parse(good.text.replace("e10101-Avg=12.5", "e10101-Avg=10.5"))
    await upload(centre, device_factory, tampered)
    ((verdict, why),) = verdicts(record, centre)
    assert verdict == "failed" and why is not None and "CSMT §12.3" in why
    # recorded as received, with the verdict beside it: the platform decides what to trust
    assert {str(r.value) for r in record.readings(centre=centre.name)} == {"10.5", "1.50"}


async def test_an_unsigned_record_is_recorded_as_missing(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    await upload(centre, device_factory, data_cp(T0, VALUES, "Avg"))
    ((verdict, why),) = verdicts(record, centre)
    assert verdict == "missing" and why is not None and "SM2Sign" in why


async def test_a_record_signed_by_another_key_fails(
    centre: Hj212Server, device_factory: DeviceFactory, record: Record
) -> None:
    await upload(
        centre, device_factory, signed(data_cp(T0, VALUES, "Avg"), Sm2PrivateKey.generate())
    )
    assert verdicts(record, centre)[0][0] == "failed"


async def test_a_terminal_without_a_certificate_fails(
    centre_factory: CentreFactory, ca: TestCa, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory(signatures={"ca_file": str(ca.certificate_file)})
    await upload(centre, device_factory, signed(data_cp(T0, VALUES, "Avg")))
    ((verdict, why),) = verdicts(record, centre)
    assert verdict == "failed" and why is not None and "no device certificate" in why


async def test_a_certificate_from_another_ca_is_not_trusted(
    centre: Hj212Server, tmp_path: Path
) -> None:
    rogue = TestCa.create(tmp_path / "rogue", now=datetime.now())
    with pytest.raises(TrustError, match="does not verify"):
        centre.trust_device(MN, rogue.issue_device(KEY.public_key(), subject="terminal").to_pem())


async def test_device_certificates_can_come_from_the_platform_file(
    centre_factory: CentreFactory, ca: TestCa, device_factory: DeviceFactory, record: Record
) -> None:
    path = ca.directory / "terminal.pem"
    path.write_text(ca.issue_device(KEY.public_key(), subject="terminal").to_pem())
    centre = await centre_factory(
        signatures={"ca_file": str(ca.certificate_file), "devices": {MN: str(path)}}
    )
    await upload(centre, device_factory, signed(data_cp(T0, VALUES, "Avg")))
    assert verdicts(record, centre) == [("verified", None)]


async def test_a_centre_without_a_ca_checks_nothing(
    centre_factory: CentreFactory, device_factory: DeviceFactory, record: Record
) -> None:
    centre = await centre_factory()
    await upload(centre, device_factory, signed(data_cp(T0, VALUES, "Avg")))
    assert verdicts(record, centre) == [(None, None)]
