"""HTTPS collectors: the pull driver against the simulated collectors over verified TLS (and
their faults), and the push intake receiving the simulators' pushes."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.https import HttpsIntake, HttpsPullDriver
from reference_terminal.config import HttpsDevice
from reference_terminal.model import RawValue
from simulators.fleet.runner import running_fleet
from simulators.meters.https import https_endpoint, make_tls

from .fleets import CLOCK, fault_count, fleet, good, requests, sent_at

POINTS = [
    {"name": "grid_energy", "quantity": "grid.energy_import_kwh", "rounding": "floor"},
    {"name": "pv_energy", "quantity": "pv.energy_export_kwh", "rounding": "floor"},
]
FAULTS = ("exception", "garbled", "no_answer", "truncated")


def collector(meter_id: str, **extra: Any) -> dict[str, Any]:
    return {"id": meter_id, "protocol": "https", "points": POINTS, **extra}


def pull_device(fl: Any, meter_id: str, **extra: Any) -> HttpsDevice:
    url, ca = https_endpoint(fl, meter_id)
    return HttpsDevice(
        id=meter_id, protocol="https", url=f"{url}/readings", ca_file=str(ca), **extra
    )


def test_pull_reads_exact_values_over_verified_tls(tmp_path: Path) -> None:
    spec = fleet(
        [collector("ems"), *(collector(f"f_{k}") for k in FAULTS)],
        faults=[{"meter": f"f_{k}", "kind": k} for k in FAULTS],
    )

    async def main() -> None:
        async with running_fleet(spec) as fl:
            driver = HttpsPullDriver(pull_device(fl, "ems"), CLOCK)
            reqs = requests("ems", [{"name": "grid_energy"}, {"name": "pv_energy"}])
            energy, pv = await driver.read(reqs)
            assert good(energy) == sent_at(fl, "ems", "grid.energy_import_kwh", energy.t, 0.002)
            assert good(pv) == sent_at(fl, "ems", "pv.energy_export_kwh", pv.t, 0.002)
            await driver.close()

            for kind in FAULTS:
                device = pull_device(fl, f"f_{kind}", timeout_s=0.2, retries=1)
                faulty = HttpsPullDriver(device, CLOCK)
                reqs = requests(f"f_{kind}", [{"name": "grid_energy"}])
                if kind == "exception":  # 503 with the collector's error document
                    (raw,) = await faulty.read(reqs)
                    assert raw.value is None and (raw.error or "").startswith("collector error")
                    assert fault_count(fl, f"f_{kind}") == 1
                else:
                    with pytest.raises(DriverError) as caught:
                        await faulty.read(reqs)
                    want = "timeout" if kind == "no_answer" else "garbled"
                    assert caught.value.kind == want, caught.value
                    assert fault_count(fl, f"f_{kind}") == 2
                await faulty.close()

            # A server the CA does not vouch for is refused.
            other = make_tls(tmp_path / "other")
            url, _ = https_endpoint(fl, "ems")
            stranger = HttpsDevice(
                id="ems", protocol="https", url=f"{url}/readings", ca_file=str(other.ca), retries=0
            )
            with pytest.raises(DriverError) as caught:
                await HttpsPullDriver(stranger, CLOCK).read(reqs)
            assert caught.value.kind == "connection" and "CERTIFICATE_VERIFY_FAILED" in str(
                caught.value
            )

    asyncio.run(main())


class Inbox:
    def __init__(self) -> None:
        self.batches: list[Sequence[RawValue]] = []

    async def __call__(self, raws: Sequence[RawValue]) -> None:
        self.batches.append(raws)


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[int]:
    """The app on a free loopback port (plain HTTP: TLS is the terminal server's business)."""
    listener = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        listener.close()


def test_push_intake_takes_the_collectors_pushes() -> None:
    intake = HttpsIntake()
    inboxes = {name: Inbox() for name in ("ems", "f_garbled", "f_exception")}
    for name, inbox in inboxes.items():
        device = HttpsDevice(id=name, protocol="https", mode="push")
        intake.add(device, requests(name, [{"name": "grid_energy"}, {"name": "pv_energy"}]), inbox)
    app = FastAPI()
    app.include_router(intake.router)

    async def main() -> None:
        async with serving(app) as port:
            base = f"http://127.0.0.1:{port}/intake"
            spec = fleet(
                [collector(name, push_url=f"{base}/{name}", interval_s=0.1) for name in inboxes],
                faults=[
                    {"meter": "f_garbled", "kind": "garbled"},
                    {"meter": "f_exception", "kind": "exception"},
                ],
            )
            async with running_fleet(spec) as fl:
                while (
                    len(inboxes["ems"].batches) < 3
                    or intake.stats("f_garbled").malformed < 2
                    or len(inboxes["f_exception"].batches) < 2
                ):
                    await asyncio.sleep(0.02)
                async with httpx.AsyncClient() as client:
                    unknown = await client.post(f"{base}/nobody", content=b"{}")
                    assert unknown.status_code == 404
                    bad = await client.post(f"{base}/ems", content=b"not json")
                    assert bad.status_code == 400 and "not JSON" in bad.json()["detail"]
            for energy, pv in inboxes["ems"].batches:
                assert good(energy) == sent_at(fl, "ems", "grid.energy_import_kwh", energy.t, 0.002)
                assert good(pv) == sent_at(fl, "ems", "pv.energy_export_kwh", pv.t, 0.002)
            assert not inboxes["f_garbled"].batches
            stats = intake.stats("f_garbled")
            assert stats.malformed == stats.messages
            assert intake.stats("f_exception").collector_errors >= 2
            assert intake.stats("ems").malformed == 1  # the one posted by hand

    asyncio.run(main())


def test_a_push_cut_off_mid_body_is_neither_a_message_nor_malformed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("INFO")
    # Never acknowledged, the push is still the collector's to resend: counting it malformed
    # would blame the collector for the line dropping (seen when a fleet stopped mid-push).
    intake = HttpsIntake()
    inbox = Inbox()
    device = HttpsDevice(id="ems", protocol="https", mode="push")
    intake.add(device, requests("ems", [{"name": "grid_energy"}]), inbox)
    app = FastAPI()
    app.include_router(intake.router)

    async def main() -> None:
        async with serving(app) as port:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b'POST /intake/ems HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"time":'
            )
            await writer.drain()
            await asyncio.sleep(0.2)  # the handler is inside the body when the line drops
            writer.close()
            await writer.wait_closed()
            async with httpx.AsyncClient() as client:
                bad = await client.post(f"http://127.0.0.1:{port}/intake/ems", content=b"{")
                assert bad.status_code == 400
        stats = intake.stats("ems")
        assert (stats.messages, stats.malformed, stats.delivered) == (1, 1, 0)
        assert not inbox.batches

    asyncio.run(main())
    assert "hung up before its push was whole" in caplog.text
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_push_devices_are_not_polled() -> None:
    with pytest.raises(ValueError, match="not polled"):
        HttpsPullDriver(HttpsDevice(id="x", protocol="https", mode="push"), CLOCK)
