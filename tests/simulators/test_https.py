"""HTTPS collectors, read with httpx verifying the generated CA: pull, push, faults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import Receive, Scope, Send

from simulators.fleet import FleetRuntime, quantize
from simulators.fleet.schema import Fleet, HttpsCollector, NamedPoint
from simulators.meters.https import https_endpoint, serve_https

pytestmark = pytest.mark.anyio

START = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(hours=8)  # local midnight, UTC+8
HOUR = 3600.0


class ShiftedClock:
    """Wall-clock pace from a plant time the test sets, so it can jump into fault windows."""

    def __init__(self, t: float) -> None:
        self.jump(t)

    def jump(self, t: float) -> None:
        self._base, self._at = t, time.monotonic()

    def time(self) -> float:
        return self._base + time.monotonic() - self._at

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class Receiver:
    """The terminal's HTTPS intake, as far as a push needs one: it keeps what arrives."""

    socket: socket.socket
    bodies: list[bytes] = field(default_factory=list)

    @property
    def url(self) -> str:
        host, port = self.socket.getsockname()
        return f"http://{host}:{port}/intake"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        assert (scope["method"], scope["path"]) == ("POST", "/intake")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def fleet_spec(push_url: str) -> Fleet:
    return Fleet.model_validate(
        {
            "name": "https",
            "start": START.isoformat(),
            "plant": {"sources": [{"id": "grid", "kind": "electricity", "rated_kw": 500}]},
            "meters": [
                {
                    "id": "ems",
                    "protocol": "https",
                    "push_url": push_url,
                    "interval_s": 0.1,
                    "points": [
                        {
                            "name": "energy",
                            "quantity": "grid.energy_import_kwh",
                            "decimals": 2,
                            "rounding": "floor",
                        },
                        {"name": "power", "quantity": "grid.power_kw", "decimals": 1},
                    ],
                }
            ],
            "faults": [
                {"meter": "ems", "kind": "no_answer", "start": "PT1H", "end": "PT2H"},
                {"meter": "ems", "kind": "slow", "start": "PT2H", "end": "PT3H", "delay_ms": 400},
                {"meter": "ems", "kind": "exception", "start": "PT3H", "end": "PT4H"},
                {"meter": "ems", "kind": "garbled", "start": "PT4H", "end": "PT5H"},
                {"meter": "ems", "kind": "truncated", "start": "PT5H", "end": "PT6H"},
            ],
        }
    )


@dataclass
class Bench:
    fleet: FleetRuntime
    clock: ShiftedClock
    receiver: Receiver
    url: str
    ca: Path
    client: httpx.AsyncClient

    def jump(self, offset_h: float) -> float:
        t = START.timestamp() + offset_h * HOUR
        self.clock.jump(t)
        return t

    def point(self, name: str) -> NamedPoint:
        spec = self.fleet.spec.meter("ems")
        assert isinstance(spec, HttpsCollector)
        return next(p for p in spec.points if p.name == name)


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def bench(anyio_backend: str) -> AsyncIterator[Bench]:
    # The receiver's port is bound but not listening yet: pushes are refused until it starts.
    intake = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    intake.bind(("127.0.0.1", 0))
    receiver = Receiver(intake)
    clock = ShiftedClock(START.timestamp() + 0.5 * HOUR)
    fleet = FleetRuntime(fleet_spec(receiver.url), clock)
    task = asyncio.create_task(serve_https(fleet))
    try:
        await until(lambda: bool(fleet.endpoints) or task.done())
        url, ca = https_endpoint(fleet, "ems")
        verify = ssl.create_default_context(cafile=str(ca))
        async with httpx.AsyncClient(base_url=url, verify=verify, timeout=5.0) as client:
            yield Bench(fleet, clock, receiver, url, ca, client)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        intake.close()


def reading_instant(text: str) -> float:
    stamp = datetime.fromisoformat(text)
    assert stamp.utcoffset() == timedelta(hours=8)  # the plant's local offset
    return stamp.timestamp()


def check_document(bench: Bench, document: dict[str, Any], names: list[str]) -> float:
    """The values are what the meter read at the document's time, digit for digit."""
    assert document["collector"] == "ems"
    t = reading_instant(document["time"])
    assert list(document["values"]) == names
    for name, shown in document["values"].items():
        point = bench.point(name)
        (seen,) = [
            o
            for o in bench.fleet.observations
            if o.quantity == point.quantity and t - 1e-6 <= o.t < t + 0.001 and not o.faults
        ][-1:]
        exact = quantize(bench.fleet.plant.value(point.quantity, seen.t), point)
        assert shown["value"] == format(exact, "f") == format(seen.value, "f")
        assert Decimal(shown["value"]).as_tuple().exponent == -point.decimals
        assert shown["quantity"] == point.quantity
        assert shown["unit"] == {"energy": "kWh", "power": "kW"}[name]
    return t


async def test_tls_verifies_with_the_announced_ca_only(bench: Bench) -> None:
    assert bench.url.startswith("https://127.0.0.1:")
    assert bench.ca.is_file()
    (endpoint,) = bench.fleet.endpoints
    assert endpoint.protocol == "https"
    assert endpoint.address == f"{bench.url} (ca: {bench.ca})"
    async with httpx.AsyncClient() as stranger:  # the system's CAs do not know ours
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.get(f"{bench.url}/readings")
    by_name = bench.url.replace("127.0.0.1", "localhost")
    verify = ssl.create_default_context(cafile=str(bench.ca))
    async with httpx.AsyncClient(verify=verify) as client:
        assert (await client.get(f"{by_name}/readings")).status_code == 200


async def test_pull_gives_every_point_at_its_resolution_now(bench: Bench) -> None:
    bench.jump(0.5)
    asked = bench.fleet.now()
    response = await bench.client.get("/readings")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    t = check_document(bench, response.json(), ["energy", "power"])
    assert asked - 0.001 <= t <= bench.fleet.now()


async def test_pull_one_point_and_an_unknown_one(bench: Bench) -> None:
    bench.jump(0.6)
    response = await bench.client.get("/readings/power")
    assert response.status_code == 200
    check_document(bench, response.json(), ["power"])
    missing = await bench.client.get("/readings/steam")
    assert missing.status_code == 404
    assert "no point 'steam'" in missing.json()["error"]


async def test_no_answer_leaves_the_client_waiting(bench: Bench) -> None:
    bench.jump(1.5)
    began = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await bench.client.get("/readings", timeout=0.5)
    assert time.monotonic() - began >= 0.5


async def test_slow_answers_late_with_values_read_when_it_leaves(bench: Bench) -> None:
    asked = bench.jump(2.5)
    response = await bench.client.get("/readings")
    assert bench.fleet.now() - asked >= 0.4
    t = check_document(bench, response.json(), ["energy", "power"])
    assert t >= asked + 0.4


async def test_exception_is_a_503_with_a_json_error(bench: Bench) -> None:
    bench.jump(3.5)
    response = await bench.client.get("/readings")
    assert response.status_code == 503
    body = response.json()
    assert body["collector"] == "ems"
    assert "error" in body
    assert "values" not in body


@pytest.mark.parametrize(("offset_h", "kind"), [(4.5, "garbled"), (5.5, "truncated")])
async def test_damaged_bodies_never_parse(bench: Bench, offset_h: float, kind: str) -> None:
    bench.jump(0.5)
    whole = len((await bench.client.get("/readings")).content)
    bench.jump(offset_h)
    for _ in range(5):
        response = await bench.client.get("/readings")
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(response.content)
        with pytest.raises(ValueError):
            json.loads(response.content)
        if kind == "truncated":
            assert len(response.content) < whole
        else:
            assert abs(len(response.content) - whole) <= 3  # same length, other bytes


async def test_push_survives_a_receiver_that_is_down_then_delivers(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    bench.jump(0.5)
    # The receiver has been down since the start: one warning then, a debug line per retry.
    caplog.set_level(logging.DEBUG, logger="simulators.meters.https")
    await until(lambda: "push to" in caplog.text and "failed again" in caplog.text)
    assert (await bench.client.get("/readings")).status_code == 200  # pull is unaffected
    config = uvicorn.Config(bench.receiver, log_config=None, lifespan="off")
    receiver = uvicorn.Server(config)
    serving = asyncio.create_task(receiver.serve(sockets=[bench.receiver.socket]))
    try:
        await until(lambda: len(bench.receiver.bodies) >= 3)
        assert "delivered again" in caplog.text
        times = [
            check_document(bench, json.loads(b), ["energy", "power"])
            for b in bench.receiver.bodies[:3]
        ]
        assert times == sorted(times)
        assert 0.05 < times[2] - times[1] < 0.5  # every interval_s (0.1 s)
        window = bench.jump(3.5)  # exception: the collector pushes its error instead
        await until(
            lambda: any(b"error" in b and b'"values"' not in b for b in bench.receiver.bodies)
        )
        errors = [json.loads(b) for b in bench.receiver.bodies if b'"error"' in b]
        assert all(reading_instant(e["time"]) >= window for e in errors)
    finally:
        receiver.should_exit = True
        await serving
