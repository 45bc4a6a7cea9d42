"""The HTTPS uploader (ISC-2 §7.2.3(6)): JSON over verified TLS, resent with the same QN until a
success reply, each frame acknowledged once."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from common.clock import RealClock
from reference_terminal.app import Terminal
from reference_terminal.security.secrets import SecretBox
from reference_terminal.security.tls_client import (
    certificate_request,
    create_tls_key,
    install_tls_certificate,
)
from simulators.meters.https import make_tls
from simulators.platform import HttpsCentre, HttpsServer, Record
from simulators.platform.client_tls import ClientCa
from simulators.platform.https_schema import UploadBody
from simulators.platform.record import FrameRow

from .helpers import MN_A, ScaledClock, config, minute_rows, running


@contextlib.asynccontextmanager
async def https_centre(tmp_path: Path, failures: int) -> AsyncIterator[tuple[str, Path, list[str]]]:
    """A centre answering 503 to its first ``failures`` uploads, then ``{"ok": true}``."""
    tls = make_tls(tmp_path / "tls")
    received: list[str] = []
    app = FastAPI()

    @app.post("/hj212/upload")
    async def upload(request: Request) -> JSONResponse:
        body = UploadBody.model_validate_json(await request.body())
        received.append(body.qn)
        if len(received) <= failures:
            return JSONResponse({"ok": False, "error": "busy"}, status_code=503)
        return JSONResponse({"ok": True, "QN": body.qn, "values": len(body.values)})

    listener = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ssl_certfile=str(tls.cert),
            ssl_keyfile=str(tls.key),
        )
    )
    task = asyncio.create_task(server.serve(sockets=[listener]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield f"https://127.0.0.1:{listener.getsockname()[1]}/hj212/upload", tls.ca, received
    finally:
        server.should_exit = True
        await task
        listener.close()


def hq(url: str, ca: Path, **more: Any) -> dict[str, Any]:
    """The HTTPS centre "hq" of these tests, at ``url``, trusting ``ca``."""
    return {
        "name": "hq",
        "protocol": "https",
        "url": url,
        "ca_file": str(ca),
        "mn": MN_A,
        "streams": {"realtime": False, "minute": True},
        "backoff": {"initial_s": 1, "max_s": 2},
        **more,
    }


def test_https_uploads_are_resent_with_the_same_qn_until_a_success_reply(tmp_path: Path) -> None:
    async def main() -> None:
        async with https_centre(tmp_path, failures=2) as (url, ca, received):
            centre = hq(url, ca)
            clock = ScaledClock(60.0)
            terminal = Terminal(config(tmp_path, [centre]), clock=clock)
            async with running(terminal) as store:
                now = clock.time()
                await store.write_derived(minute_rows(now - now % 60 - 180, 3))
                assert terminal.uplink is not None
                await terminal.uplink.send_now("hq")
                outbox = terminal.uplink.centres["hq"].outbox
                async with asyncio.timeout(10):
                    while outbox.stats.acknowledged < 3:
                        await asyncio.sleep(0.02)
                await outbox.flush()
                assert await outbox.size() == 0
            # refused twice, then every frame once more under its first QN
            first, again = received[:3], received[3:]
            assert len(set(first)) == 3 and len(again) == 2
            assert set(again) <= set(first)

    asyncio.run(main())


def test_a_refusing_centre_costs_each_retry_one_batch_of_backlog(tmp_path: Path) -> None:
    """Retries against a centre that refuses read no more backlog than one batch (the window);
    once it takes a batch, the rest follows in whole chunks, each frame once."""

    async def main() -> None:
        async with https_centre(tmp_path, failures=24) as (url, ca, received):
            centre = hq(url, ca, outbox={"window": 4})
            clock = ScaledClock(60.0)
            terminal = Terminal(config(tmp_path, [centre]), clock=clock)
            async with running(terminal) as store:
                assert terminal.uplink is not None
                outbox = terminal.uplink.centres["hq"].outbox
                loads: list[tuple[int, int]] = []  # (limit, acknowledged before the load)
                read = outbox.load

                async def load(after: Any, upto_id: int | None, limit: int) -> Any:
                    loads.append((limit, outbox.stats.acknowledged))
                    return await read(after, upto_id, limit)

                outbox.load = load  # type: ignore[method-assign]
                now = clock.time()
                await store.write_derived(minute_rows(now - now % 60 - 40 * 60, 40))
                await terminal.uplink.send_now("hq")
                async with asyncio.timeout(20):
                    while outbox.stats.acknowledged < 40:
                        await asyncio.sleep(0.02)
            refused = [limit for limit, acknowledged in loads if acknowledged == 0]
            assert len(refused) >= 6 and set(refused) == {4}, loads  # 24 refusals, 4 a batch
            assert max(limit for limit, _ in loads) > 4, loads
            assert len(set(received[24:])) == len(received[24:]) == 40

    asyncio.run(main())


async def _deliver_to_a_mutual_tls_centre(tmp_path: Path, *, enrolled: bool) -> list[FrameRow]:
    """Three minutes uploaded to a centre taking uploads over mutual TLS only (ISC-2 §7.4.1),
    by a terminal presenting a certificate of the centre's CA or none; the frames it got."""
    ca = ClientCa.create(tmp_path / "client-ca")
    master = tmp_path / "keys" / "terminal.key"
    record = Record("sqlite://", flush_interval=0.01)
    centre = HttpsCentre.model_validate(
        {"name": "hq", "client_certificates": {"ca_file": str(ca.certificate_file)}}
    )
    async with HttpsServer(centre, record, RealClock()) as server:
        settings: dict[str, Any] = {
            "name": "hq",
            "protocol": "https",
            "url": server.url,
            "ca_file": str(server.ca_file),
            "mn": MN_A,
            "streams": {"realtime": False, "minute": True},
            "backoff": {"initial_s": 1, "max_s": 2},
        }
        if enrolled:
            key = create_tls_key(tmp_path / "keys" / "tls.sealed", SecretBox.from_key_file(master))
            issued = ca.issue(certificate_request(key, "hq terminal"))
            install_tls_certificate(tmp_path / "keys" / "tls.cert.pem", issued, key)
            settings["client_certificate"] = {
                "certificate_file": str(tmp_path / "keys" / "tls.cert.pem"),
                "key_file": str(tmp_path / "keys" / "tls.sealed"),
            }
        terminal_config = config(tmp_path, [settings])
        security = terminal_config.security.model_copy(update={"key_file": str(master)})
        clock = ScaledClock(60.0)
        terminal = Terminal(terminal_config.model_copy(update={"security": security}), clock=clock)
        async with running(terminal) as store:
            now = clock.time()
            await store.write_derived(minute_rows(now - now % 60 - 180, 3))
            assert terminal.uplink is not None
            await terminal.uplink.send_now("hq")
            outbox = terminal.uplink.centres["hq"].outbox
            async with asyncio.timeout(10):
                while outbox.stats.acknowledged < 3 and len(record.frames(direction="in")) < 3:
                    await asyncio.sleep(0.02)
    frames = record.frames(direction="in")
    record.close()
    return frames


def test_a_terminal_with_its_certificate_uploads_over_mutual_tls(tmp_path: Path) -> None:
    frames = asyncio.run(_deliver_to_a_mutual_tls_centre(tmp_path, enrolled=True))
    assert len(frames) >= 3 and {f.note for f in frames} == {"ack"}


def test_a_terminal_without_a_certificate_is_refused_by_such_a_centre(tmp_path: Path) -> None:
    frames = asyncio.run(_deliver_to_a_mutual_tls_centre(tmp_path, enrolled=False))
    assert frames and all(
        (f.note or "").startswith("refused: no client certificate") for f in frames
    )
