"""HTTPS collectors: an energy-management system's or data concentrator's web API, over TLS.

For each :class:`~simulators.fleet.schema.HttpsCollector`, a FastAPI app served by uvicorn on
the collector's ``host:port`` (port 0: a free port) with TLS:

* ``GET /readings``: every point's value now, as the reading document of
  :mod:`simulators.meters.mqtt` (``{"collector", "time", "values": {name: {"value", "unit",
  "quantity"}}}``, values as exact decimal text);
* ``GET /readings/{name}``: the same document with that one point (404 with a JSON ``error``
  for a name the collector does not have);
* push: with ``push_url`` set, the document is POSTed there (``application/json``) every
  ``interval_s``; a receiver that is down or answers an error is logged and tried again at
  the next interval (nothing is queued, as with a simple collector).

TLS: a private CA and a server certificate for ``127.0.0.1``, ``localhost`` and the
collectors' hosts, made with ``cryptography`` (EC P-256) in a temporary directory unless the
caller passes its own (:func:`make_tls`). The validity runs from 2000 to 2099 so that neither the
wall clock nor a virtual one ever sees it expired. A client verifies the server with the CA file,
announced with the endpoint: ``fleet.listening(id, "https", "https://127.0.0.1:PORT (ca: …)")``;
:func:`https_endpoint` gives the URL and the CA path back.

Communication faults, drawn once per request (pull) or per push, for the whole answer:

* ``no_answer``: pull — no response at all; the connection stays open, silent, until the
  client gives up (its timeout); push — nothing is sent that interval. (When the server stops,
  uvicorn waits ``GRACEFUL_STOP_S`` for such requests, then answers them 500 and logs it.)
* ``slow``: pull — the answer leaves ``delay_ms`` late, its values read when it leaves;
  push — the POST leaves ``delay_ms`` late with the values read on time (as over MQTT);
* ``exception``: pull — HTTP 503 with ``{"collector", "time", "error"}``; push — that
  document is POSTed instead of values;
* ``garbled``, ``bad_checksum``, ``truncated``: the body is damaged as in MQTT (it never
  parses as JSON); HTTP framing stays valid (status 200, Content-Length of the damaged body),
  so the terminal must reject the body itself.
"""

from __future__ import annotations

import asyncio  # TaskGroup and shielding only: time comes from fleet.clock
import contextlib
import ipaddress
import logging
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import httpx
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from simulators.fleet.runtime import FleetRuntime, MeterRuntime
from simulators.fleet.schema import HttpsCollector
from simulators.meters.mqtt import (
    DAMAGING,
    damage,
    encode,
    error_document,
    named_points,
    reading_document,
)
from simulators.network.listener import tcp_listener

log = logging.getLogger(__name__)

PROTOCOL: Final = "https"
#: Certificates valid far into the past and future: no clock, real or virtual, sees them expire.
VALID_FROM: Final = datetime(2000, 1, 1, tzinfo=UTC)
VALID_UNTIL: Final = datetime(2099, 12, 31, tzinfo=UTC)
#: How long a stopping server waits for answers in flight (a silent no_answer never ends).
GRACEFUL_STOP_S: Final = 1
PUSH_TIMEOUT_S: Final = 10.0


# ---- TLS -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files: the CA a client trusts, the server's certificate and its private key."""

    ca: Path
    cert: Path
    key: Path


def make_tls(directory: Path, hosts: Iterable[str] = ()) -> TlsFiles:
    """A private CA and a server certificate for 127.0.0.1, localhost and ``hosts``."""
    names = ["127.0.0.1", "localhost", *hosts]
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "carbench"),
            x509.NameAttribute(NameOID.COMMON_NAME, "carbench simulator CA"),
        ]
    )
    ca_cert = (
        _builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "carbench"),
            x509.NameAttribute(NameOID.COMMON_NAME, "carbench HTTPS collectors"),
        ]
    )
    cert = (
        _builder(subject, ca_name, key.public_key())
        .add_extension(x509.SubjectAlternativeName(_alt_names(names)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    files.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key.touch(mode=0o600)
    files.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _builder(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(VALID_FROM)
        .not_valid_after(VALID_UNTIL)
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _alt_names(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):  # unique, in order
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def https_endpoint(fleet: FleetRuntime, meter_id: str) -> tuple[str, Path]:
    """The base URL of a running HTTPS collector and the CA file that verifies it."""
    for endpoint in fleet.endpoints:
        if endpoint.meter == meter_id and endpoint.protocol == PROTOCOL:
            url, _, rest = endpoint.address.partition(" (ca: ")
            return url, Path(rest.removesuffix(")"))
    raise KeyError(f"no HTTPS collector {meter_id!r} is listening")


# ---- the app -----------------------------------------------------------------------------


def collector_app(fleet: FleetRuntime, meter: MeterRuntime) -> ASGIApp:
    """The collector's API, its communication faults played in front of it."""
    points = {point.name: point for point in named_points(meter)}
    api = FastAPI(title=f"carbench HTTPS collector {meter.id}", openapi_url=None)

    @api.get("/readings")
    async def readings() -> JSONResponse:
        return JSONResponse(reading_document(meter, fleet.now()))

    @api.get("/readings/{name}")
    async def reading(name: str) -> JSONResponse:
        point = points.get(name)
        if point is None:
            known = ", ".join(points)
            return JSONResponse(
                {"error": f"no point {name!r} on collector {meter.id}; known: {known}"},
                status_code=404,
            )
        return JSONResponse(reading_document(meter, fleet.now(), [point]))

    return FaultPlayer(api, fleet, meter)


class FaultPlayer:
    """ASGI middleware: loses, delays or damages the answers to ``/readings…``."""

    def __init__(self, app: ASGIApp, fleet: FleetRuntime, meter: MeterRuntime) -> None:
        self.app = app
        self.fleet = fleet
        self.meter = meter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/readings"):
            await self.app(scope, receive, send)
            return
        t = self.fleet.now()
        fault = self.meter.communication_fault(t)
        kind = fault.kind if fault is not None else None
        if kind == "no_answer":
            await _silent_until_disconnect(receive)
            return
        if fault is not None and kind == "slow":
            await self.fleet.clock.sleep(fault.delay_ms / 1000.0)
        if kind == "exception":
            answer = JSONResponse(error_document(self.meter, t), status_code=503)
            await answer(scope, receive, send)
        elif kind in DAMAGING:
            assert kind is not None
            await self._damaged(scope, receive, send, kind)
        else:
            await self.app(scope, receive, send)

    async def _damaged(self, scope: Scope, receive: Receive, send: Send, kind: str) -> None:
        start: Message = {}
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))

        await self.app(scope, receive, capture)
        damaged = damage(bytes(body), kind, self.meter.random())
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(damaged)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": damaged})


async def _silent_until_disconnect(receive: Receive) -> None:
    """Send nothing; return when the client hangs up (or the server shuts the connection)."""
    while (await receive())["type"] != "http.disconnect":
        pass


# ---- serving ---------------------------------------------------------------------------------


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the bench's loop: signals belong to the bench, not to each server."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def https_collectors(fleet: FleetRuntime) -> list[tuple[MeterRuntime, HttpsCollector]]:
    return [(m, m.spec) for m in fleet.meters.values() if isinstance(m.spec, HttpsCollector)]


async def serve_https(
    fleet: FleetRuntime,
    *,
    tls: TlsFiles | None = None,
    push_verify: ssl.SSLContext | bool = True,
) -> None:
    """Serve every HTTPS collector (and push where configured) until cancelled.

    ``tls``: certificate files to use (default: made fresh in a temporary directory, removed on
    exit). ``push_verify``: how pushes verify the receiver's certificate (an SSL context
    trusting the terminal's CA; True: the system's CAs). Returns at once with no collectors.
    """
    collectors = https_collectors(fleet)
    if not collectors:
        return
    async with contextlib.AsyncExitStack() as stack:
        if tls is None:
            directory = stack.enter_context(tempfile.TemporaryDirectory(prefix="carbench-tls-"))
            hosts = [spec.host for _, spec in collectors]
            tls = make_tls(Path(directory), hosts)
        client = await stack.enter_async_context(
            httpx.AsyncClient(verify=push_verify, timeout=PUSH_TIMEOUT_S)
        )
        async with asyncio.TaskGroup() as group:
            for meter, spec in collectors:
                group.create_task(_serve_collector(fleet, meter, spec, tls))
                if spec.push_url is not None:
                    group.create_task(_push_every(fleet, meter, spec, spec.push_url, client))


async def _serve_collector(
    fleet: FleetRuntime, meter: MeterRuntime, spec: HttpsCollector, tls: TlsFiles
) -> None:
    # Bind first, so port 0 is resolved before uvicorn starts and the endpoint can be announced.
    try:
        listener = tcp_listener(spec.host, spec.port)
    except OSError as error:
        raise OSError(
            error.errno,
            f"HTTPS collector {meter.id}: cannot listen on {spec.host}:{spec.port}: {error}",
        ) from error
    config = uvicorn.Config(
        collector_app(fleet, meter),
        ssl_certfile=str(tls.cert),
        ssl_keyfile=str(tls.key),
        log_config=None,  # leave the bench's logging alone
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=GRACEFUL_STOP_S,
    )
    server = _EmbeddedServer(config)
    with listener:
        serving = asyncio.ensure_future(server.serve(sockets=[listener]))
        port = listener.getsockname()[1]
        fleet.listening(meter.id, PROTOCOL, f"https://{spec.host}:{port} (ca: {tls.ca})")
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            # Stop the way uvicorn means to: close the listener, finish or drop answers in
            # flight (bounded by GRACEFUL_STOP_S), then return.
            server.should_exit = True
            await serving
            raise


async def _push_every(
    fleet: FleetRuntime,
    meter: MeterRuntime,
    spec: HttpsCollector,
    url: str,
    client: httpx.AsyncClient,
) -> None:
    clock = fleet.clock
    due = clock.monotonic()
    failing = False  # log when the receiver goes away and comes back, not every interval
    while True:
        problem = await _push_once(fleet, meter, url, client)
        if problem is not None and not failing:
            log.warning(
                "HTTPS collector %s: push to %s failed (%s); next try in one interval",
                meter.id,
                url,
                problem,
            )
        elif problem is not None:
            log.debug("HTTPS collector %s: push to %s failed again (%s)", meter.id, url, problem)
        elif failing:
            log.info("HTTPS collector %s: push to %s delivered again", meter.id, url)
        failing = problem is not None
        due = max(due + spec.interval_s, clock.monotonic())
        await clock.sleep(max(0.0, due - clock.monotonic()))


async def _push_once(
    fleet: FleetRuntime, meter: MeterRuntime, url: str, client: httpx.AsyncClient
) -> str | None:
    """One push; what went wrong on the way, if anything (a fault played is not a failure)."""
    t = fleet.now()
    fault = meter.communication_fault(t)
    kind = fault.kind if fault is not None else None
    if kind == "no_answer":
        return None
    if kind == "exception":
        body = encode(error_document(meter, t))
    else:
        body = encode(reading_document(meter, t))
        if kind in DAMAGING:
            assert kind is not None
            body = damage(body, kind, meter.random())
    if fault is not None and kind == "slow":
        await fleet.clock.sleep(fault.delay_ms / 1000.0)
    try:
        response = await client.post(
            url, content=body, headers={"content-type": "application/json"}
        )
    except httpx.HTTPError as error:
        return repr(error)
    if response.is_error:
        return f"HTTP {response.status_code}"
    return None
