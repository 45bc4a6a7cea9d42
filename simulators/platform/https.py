"""An HTTPS JSON centre: FastAPI behind uvicorn, TLS, recording into the same record.

``POST {path}`` takes one :class:`~.https_schema.UploadBody`; the answer follows the centre's
behaviour (:mod:`.behaviour`):

* ``ack``: 200 ``{"ok": true, "QN", "values"}`` at once; ``ack_late``: the same, ``delay_s``
  later; ``never_ack``: no answer at all (the request stays open until the client gives up);
* ``server_error``: HTTP ``status`` with ``{"ok": false, "error"}``;
* ``drop``: the connection is closed unanswered on its ``after_frames``-th upload;
* ``refuse``: the port is closed (or, with ``reset``, each connection reset at its first
  request).

Bodies that do not validate get 422 (recorded with ``ok`` false and pydantic's message), an
MN/PW the centre does not accept gets 403.

``GET {factors_path}`` serves the emission-factor library the centre publishes (CSMT §11.4
online methodology configuration; the signed envelope of :mod:`.factor_library`): set it with
``centre.publisher.publish(text, version, at)``; 404 while nothing is published. Each download
is noted in ``centre.library_downloads`` (not in the record of uploads).

Each upload request is one ``in`` frame (its body as ``raw``) and each answer one ``out`` frame
(``HTTP <status> <body>``) in the record, and a valid upload's values become readings exactly
as an HJ 212 upload's do.

TLS: a private CA and a server certificate for 127.0.0.1/localhost, made with ``cryptography``
in a temporary directory at start (``ca_file`` is what a client verifies with); or pass files.

Client certificates (ISC-2 §7.4.1, ``client_certificates: {ca_file}``): the centre asks every
connection for one. A certificate the CA did not issue (or an expired one) fails the TLS
handshake itself (alert ``unknown_ca`` …): no request ever arrives. A connection without a
certificate completes the handshake, so that its uploads can be refused with a reason: 403,
recorded with the note ``refused: no client certificate …``. The certificate each connection
presented is kept in ``centre.client_certificates`` by the record's connection number.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import socket
import ssl
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from common.clock import Clock
from simulators.meters.https import TlsFiles, make_tls
from simulators.network.listener import tcp_listener
from simulators.platform.behaviour import (
    AcknowledgeLate,
    Behaviour,
    DropConnection,
    NeverAcknowledge,
    RefuseConnections,
    ServerError,
    check_for,
    parse_behaviour,
)
from simulators.platform.client_tls import CLAUSE, PeerCertificate
from simulators.platform.config import HttpsCentre
from simulators.platform.factor_library import FactorPublisher
from simulators.platform.https_schema import UploadBody
from simulators.platform.record import Record

log = logging.getLogger(__name__)

TRANSPORT: Final = "https"
#: How long a stopping server waits for answers in flight (a never_ack request never ends).
GRACEFUL_STOP_S: Final = 1
_POLL_S: Final = 0.1  # how often a held (never_ack) request looks for the client's hang-up


@dataclass(frozen=True, slots=True)
class LibraryDownload:
    """One download of the published library: when (centre clock), by whom, which version."""

    at: float
    peer: str
    version: str | None  # None: nothing was published (answered 404)


class _EmbeddedServer(uvicorn.Server):
    """uvicorn inside the bench's loop: signals belong to the bench."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpsServer:
    """One HTTPS centre. ``async with HttpsServer(config, record, clock) as centre:``."""

    def __init__(
        self, config: HttpsCentre, record: Record, clock: Clock, *, tls: TlsFiles | None = None
    ) -> None:
        self.config = config
        self.name = config.name
        self.record = record
        self.clock = clock
        self.behaviour: Behaviour = config.behaviour
        self.port = config.port
        self.frames_in = 0
        self.acks_sent = 0
        self._tls = tls
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self._server: _EmbeddedServer | None = None
        self._serving: asyncio.Task[None] | None = None
        self._conn_ids: dict[tuple[str, int], int] = {}
        self._uploads_on: dict[tuple[str, int], int] = {}
        self._ids = itertools.count(1)
        #: The factor library this centre publishes (its own SM2 publishing key).
        self.publisher = FactorPublisher.create(config.name)
        self.library_downloads: list[LibraryDownload] = []
        #: connection number (the record's ``conn``) → the client certificate it presented
        #: (None: none), when the centre asks for them
        self.client_certificates: dict[int, PeerCertificate | None] = {}
        self.app = self._make_app()

    # ---- life ------------------------------------------------------------------------------
    @property
    def tls(self) -> TlsFiles:
        if self._tls is None:
            self._tls_dir = tempfile.TemporaryDirectory(prefix="carbench-platform-tls-")
            self._tls = make_tls(Path(self._tls_dir.name), [self.config.host])
        return self._tls

    @property
    def ca_file(self) -> Path:
        """The CA certificate a client verifies this centre with."""
        return self.tls.ca

    @property
    def url(self) -> str:
        return f"https://{self.config.host}:{self.port}{self.config.path}"

    @property
    def address(self) -> tuple[str, int]:
        return self.config.host, self.port

    @property
    def factors_url(self) -> str:
        return f"https://{self.config.host}:{self.port}{self.config.factors_path}"

    def describe(self) -> str:
        clients = self.config.client_certificates
        mutual = "" if clients is None else f", client certificates of {clients.ca_file}"
        return f"https {self.url} (ca: {self.ca_file}{mutual}, {self.behaviour.kind})"

    async def start(self) -> None:
        _ = self.tls
        if self.behaviour.kind == "refuse" and not getattr(self.behaviour, "reset", False):
            self.port = self.port or _free_port(self.config.host)
        else:
            await self._listen()

    async def stop(self) -> None:
        await self._unlisten()
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None

    async def __aenter__(self) -> HttpsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def set_behaviour(self, behaviour: Behaviour | str | dict[str, Any]) -> None:
        """As :meth:`.server.Hj212Server.set_behaviour`, for the kinds that apply to HTTPS."""
        new = check_for("https", parse_behaviour(behaviour))
        old, self.behaviour = self.behaviour, new
        if new.kind == "refuse" and not getattr(new, "reset", False):
            await self._unlisten()
        elif self._server is None:
            await self._listen()
        log.info("centre %s: behaviour %s → %s", self.name, old.kind, new.kind)

    # ---- the app ---------------------------------------------------------------------------
    def _make_app(self) -> FastAPI:
        app = FastAPI(title=f"carbench HTTPS centre {self.name}", openapi_url=None)

        @app.post(self.config.path)
        async def upload(request: Request) -> Response:
            return await self._upload(request)

        @app.get(self.config.factors_path)
        async def factor_library(request: Request) -> Response:
            return self._factor_library(request)

        return app

    def _factor_library(self, request: Request) -> Response:
        client = request.client
        peer = f"{client.host}:{client.port}" if client else "?"
        publication = self.publisher.current
        version = None if publication is None else publication.version
        self.library_downloads.append(LibraryDownload(self.clock.time(), peer, version))
        if publication is None:
            error = f"centre {self.name} publishes no factor library (CSMT §11.4)"
            return JSONResponse({"ok": False, "error": error}, status_code=404)
        return Response(publication.body(), media_type="application/json")

    async def _upload(self, request: Request) -> Response:
        client = request.client
        peer_key = (client.host, client.port) if client else ("?", 0)
        conn = self._conn_ids.setdefault(peer_key, next(self._ids))
        peer = f"{peer_key[0]}:{peer_key[1]}"
        raw = await request.body()
        self.frames_in += 1
        count = self._uploads_on[peer_key] = self._uploads_on.get(peer_key, 0) + 1
        behaviour = self.behaviour
        try:
            body = UploadBody.model_validate_json(raw)
        except ValidationError as exc:
            message = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
            )
            self._record_in(conn, peer, raw, None, ok=False, error=message, note="rejected (422)")
            return self._answer(conn, peer, 422, {"ok": False, "error": message})
        if isinstance(behaviour, RefuseConnections):
            self._record_in(conn, peer, raw, body, note="connection reset (refuse)")
            self._drop(peer_key, reset=True)
            return Response(status_code=204)  # never reaches the client
        if isinstance(behaviour, DropConnection) and count >= behaviour.after_frames:
            self._record_in(conn, peer, raw, body, note="connection dropped (drop)")
            self._drop(peer_key, reset=behaviour.reset)
            return Response(status_code=204)
        problem = self._certificate_problem(conn, peer_key) or self.config.password_problem(
            body.mn, body.pw
        )
        if problem is not None:
            self._record_in(conn, peer, raw, body, note=f"refused: {problem}")
            return self._answer(conn, peer, 403, {"ok": False, "error": problem})
        match behaviour:
            case NeverAcknowledge():
                self._record_in(conn, peer, raw, body, note="not answered (never_ack)")
                while not await request.is_disconnected():
                    await self.clock.sleep(_POLL_S)
                return Response(status_code=204)
            case ServerError(status=status):
                self._record_in(conn, peer, raw, body, note=f"HTTP {status} (server_error)")
                error = f"centre {self.name} answers {status} (server_error behaviour)"
                return self._answer(conn, peer, status, {"ok": False, "error": error})
            case AcknowledgeLate(delay_s=delay):
                self._record_in(conn, peer, raw, body, note=f"ack in {delay:g} s (ack_late)")
                await self.clock.sleep(delay)
            case _:
                self._record_in(conn, peer, raw, body, note="ack")
        self.acks_sent += 1
        answer = {"ok": True, "QN": body.qn, "values": len(body.values)}
        return self._answer(conn, peer, 200, answer, qn=body.qn, mn=body.mn, cn=body.cn)

    def _certificate_problem(self, conn: int, peer: tuple[str, int]) -> str | None:
        """Why this connection may not upload for want of a client certificate, or None."""
        if self.config.client_certificates is None:
            return None
        if conn not in self.client_certificates:
            der = self._peer_certificate(peer)
            self.client_certificates[conn] = None if der is None else PeerCertificate.from_der(der)
        if self.client_certificates[conn] is None:
            return (
                f"no client certificate: centre {self.name} takes uploads over mutual TLS only "
                f"({CLAUSE})"
            )
        return None

    def _peer_certificate(self, peer: tuple[str, int]) -> bytes | None:
        """The DER of the certificate the connection from ``peer`` presented (verified by the
        handshake against the CA), None if it presented none."""
        server = self._server
        for protocol in list(server.server_state.connections) if server else []:
            if tuple(getattr(protocol, "client", None) or ()) == peer:
                transport = getattr(protocol, "transport", None)
                tls = None if transport is None else transport.get_extra_info("ssl_object")
                if isinstance(tls, ssl.SSLObject):
                    return tls.getpeercert(binary_form=True)
        return None

    def _record_in(
        self,
        conn: int,
        peer: str,
        raw: bytes,
        body: UploadBody | None,
        *,
        ok: bool = True,
        error: str | None = None,
        note: str | None = None,
    ) -> None:
        at = self.clock.time()
        frame_id = self.record.add_frame(
            at=at,
            centre=self.name,
            transport=TRANSPORT,
            conn=conn,
            peer=peer,
            direction="in",
            raw=raw.decode("utf-8", "replace"),
            mn=None if body is None else body.mn,
            cn=None if body is None else body.cn,
            qn=None if body is None else body.qn,
            data_time=None if body is None else body.data_time,
            ok=ok,
            error_reason=None if ok else "body",
            error=error,
            note=note,
        )
        if body is not None and (note is None or not note.startswith("refused")):
            self.record.add_readings(
                frame_id,
                at=at,
                centre=self.name,
                mn=body.mn,
                cn=body.cn,
                qn=body.qn,
                data_time=body.data_time,
                pollutants=body.pollutants(),
            )

    def _answer(
        self,
        conn: int,
        peer: str,
        status: int,
        document: dict[str, Any],
        *,
        qn: str | None = None,
        mn: str | None = None,
        cn: int | None = None,
    ) -> JSONResponse:
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        self.record.add_frame(
            at=self.clock.time(),
            centre=self.name,
            transport=TRANSPORT,
            conn=conn,
            peer=peer,
            direction="out",
            raw=f"HTTP {status} {text}",
            mn=mn,
            cn=cn,
            qn=qn,
            ok=True,
        )
        return JSONResponse(document, status_code=status)

    def _drop(self, peer: tuple[str, int], *, reset: bool) -> None:
        server = self._server
        if server is None:
            return
        for protocol in list(server.server_state.connections):
            if tuple(getattr(protocol, "client", None) or ()) == peer:
                transport = getattr(protocol, "transport", None)
                if transport is not None:
                    transport.abort() if reset else transport.close()

    # ---- listening -----------------------------------------------------------------------
    async def _listen(self) -> None:
        try:
            listener = tcp_listener(self.config.host, self.port)
        except OSError as error:
            raise OSError(
                error.errno,
                f"HTTPS centre {self.name}: cannot listen on {self.config.host}:{self.port}: "
                f"{error}",
            ) from error
        self.port = listener.getsockname()[1]
        clients = self.config.client_certificates
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(self.tls.cert),
            ssl_keyfile=str(self.tls.key),
            # optional, not required: a connection without a certificate gets as far as a
            # request, refused with a reason in the record; a foreign one fails the handshake
            ssl_cert_reqs=ssl.CERT_NONE if clients is None else ssl.CERT_OPTIONAL,
            ssl_ca_certs=None if clients is None else str(clients.ca_file),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=GRACEFUL_STOP_S,
        )
        server = _EmbeddedServer(config)
        self._server = server
        self._serving = asyncio.ensure_future(self._serve(server, listener))
        while not server.started and not self._serving.done():
            await self.clock.sleep(0.005)
        if self._serving.done():
            self._serving.result()

    @staticmethod
    async def _serve(server: _EmbeddedServer, listener: socket.socket) -> None:
        with listener:
            await server.serve(sockets=[listener])

    async def _unlisten(self) -> None:
        server, serving = self._server, self._serving
        self._server = self._serving = None
        if server is None or serving is None:
            return
        server.should_exit = True
        if self.behaviour.kind == "refuse":
            server.force_exit = True  # refuse: the connections go now, answered or not
            for protocol in list(server.server_state.connections):
                transport = getattr(protocol, "transport", None)
                if transport is not None:
                    transport.abort()
        await serving


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
