"""HTTPS collectors: pulled (the terminal GETs ``url``) or pushing to the terminal's intake.

Both carry the reading document of :mod:`reference_terminal.acquisition.mqtt` and turn it into
RawValues the same way (:func:`~reference_terminal.acquisition.mqtt.parse_document`).

Pull (:class:`HttpsPullDriver`, a polled :class:`Driver`): GET ``url``, the server verified
against ``ca_file`` (or the system's CAs when none is given), ``timeout_s`` per request. No
answer, a connection failure, a 5xx answer or a body that is not a reading document is retried
``retries`` times, then raises :class:`DriverError`. A collector's error document (503 with
``{"error"}``) is the collector's word: its points get the error, no retry. A 4xx answer is a
configuration problem and is not retried.

Push (:class:`HttpsIntake`): a FastAPI router the terminal mounts on its own HTTPS server,
``POST /intake/{device}`` with the document as the body. Answers 200 ``{"accepted": n}``; 404 for
a device that is not a push device here; 400 for a malformed body (counted in the device's
:class:`IntakeStats`, never raised); 413 for a body over 1 MiB; a refusal in the management API's
error shape, ``{"error": code, "detail": text}``. Readings go to the device's ``deliver`` before
the answer, so a collector's retry policy covers a failed store.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from common.clock import Clock
from reference_terminal.acquisition.driver import DriverError
from reference_terminal.acquisition.mqtt import (
    MAX_DOCUMENT_BYTES,
    Deliver,
    IntakeStats,
    MalformedDocument,
    parse_document,
)
from reference_terminal.config import HttpsDevice, Point, Source
from reference_terminal.model import RawValue

__all__ = ["INTAKE_PATH", "HttpsIntake", "HttpsPullDriver"]

log = logging.getLogger(__name__)

INTAKE_PATH = "/intake/{device}"


class HttpsPullDriver:
    """One HTTPS collector, pulled."""

    def __init__(
        self,
        device: HttpsDevice,
        clock: Clock,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if device.mode != "pull":
            raise ValueError(f"device {device.id}: a push device is not polled (HttpsIntake)")
        if not device.url:
            raise ValueError(f"device {device.id}: url: a pulled collector needs its URL")
        self.device_id = device.id
        self.device = device
        self.clock = clock
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            verify: ssl.SSLContext | bool = True
            if self.device.ca_file:
                try:
                    verify = ssl.create_default_context(cafile=self.device.ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise DriverError(
                        self.device_id,
                        f"ca_file {self.device.ca_file}: cannot load: {exc}",
                        kind="configuration",
                    ) from exc
            self._client = httpx.AsyncClient(
                verify=verify, timeout=self.device.timeout_s, transport=self._transport
            )
        return self._client

    async def read(self, requests: Sequence[tuple[Point, Source]]) -> list[RawValue]:
        client = self._http()
        url = self.device.url
        kind, problem = "error", ""
        attempts = self.device.retries + 1
        for _ in range(attempts):
            try:
                response = await client.get(url)
            except httpx.TimeoutException:
                kind, problem = "timeout", f"no answer within {self.device.timeout_s:g} s"
                continue
            except httpx.HTTPError as exc:
                kind, problem = "connection", repr(exc)
                continue
            if 400 <= response.status_code < 500:
                raise DriverError(
                    self.device_id, f"GET {url}: HTTP {response.status_code}", kind="http"
                )
            try:
                raws, failed = parse_document(response.content, self.device_id, requests)
            except MalformedDocument as exc:
                if response.is_error:
                    kind, problem = "http", f"HTTP {response.status_code}"
                else:
                    kind, problem = "garbled", str(exc)
                continue
            if response.is_error and not failed:
                kind, problem = "http", f"HTTP {response.status_code}"
                continue
            return raws
        raise DriverError(
            self.device_id, f"GET {url}: {problem} ({attempts} attempt(s))", kind=kind
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


@dataclass
class _PushDevice:
    device: HttpsDevice
    requests: list[tuple[Point, Source]]
    deliver: Deliver
    stats: IntakeStats


def _refused(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


class HttpsIntake:
    """The push intake: ``router`` serves ``POST /intake/{device}`` for the devices added."""

    def __init__(self) -> None:
        self._devices: dict[str, _PushDevice] = {}
        self.router = APIRouter()
        self.router.add_api_route(
            INTAKE_PATH,
            self._receive,
            methods=["POST"],
            summary="A collector pushes a reading document",
            response_model=None,
        )

    def add(
        self, device: HttpsDevice, requests: Sequence[tuple[Point, Source]], deliver: Deliver
    ) -> IntakeStats:
        """Accept pushes for ``device`` (mode push); returns its counters."""
        if device.mode != "push":
            raise ValueError(f"device {device.id}: a pulled device does not push")
        stats = IntakeStats()
        self._devices[device.id] = _PushDevice(device, list(requests), deliver, stats)
        return stats

    def clear(self) -> None:
        """Forget every device (a new configuration adds its own)."""
        self._devices.clear()

    def stats(self, device: str) -> IntakeStats:
        return self._devices[device].stats

    async def _receive(self, device: str, request: Request) -> JSONResponse:
        target = self._devices.get(device)
        if target is None:
            return _refused(404, "unknown_device", f"no push device {device!r}")
        stats = target.stats
        body = bytearray()
        try:
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES:
                    stats.messages += 1
                    stats.malformed_seen(device, f"body over {MAX_DOCUMENT_BYTES} bytes")
                    limit = f"a reading document is at most {MAX_DOCUMENT_BYTES} bytes"
                    return _refused(413, "too_large", limit)
        except ClientDisconnect:
            # Never acknowledged, so the collector still holds it: not a message, not malformed.
            log.info("%s: the collector hung up before its push was whole", device)
            return _refused(400, "incomplete", "the body ended early")
        stats.messages += 1
        try:
            raws, failed = parse_document(bytes(body), device, target.requests)
        except MalformedDocument as exc:
            stats.malformed_seen(device, str(exc))
            return _refused(400, "malformed_document", str(exc))
        if failed:
            stats.collector_errors += 1
        if raws:
            await target.deliver(raws)
            stats.delivered += len(raws)
        return JSONResponse({"accepted": sum(1 for r in raws if r.error is None)})
