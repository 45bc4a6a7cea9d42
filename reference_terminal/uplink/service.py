"""The uplink as the terminal runs it: for every configured centre an outbox, a producer on the
centre's schedule and a client (HJ 212 or HTTPS), all on the terminal's store and clock.

``Terminal`` calls ``await uplink.prepare()`` before acquisition starts (so a new centre's
cursors begin before any new data) and runs ``await uplink.run()`` beside acquisition, inside
the store's lifetime. The management API calls :meth:`Uplink.resend`,
:meth:`Uplink.backfill_corrected`, :meth:`Uplink.send_now` and :meth:`Uplink.status`.

Besides the data, each centre is sent the emission figures the accounting uploads
(``accounting.uploads``: derived values of the points ``co2@<code>``,
:mod:`reference_terminal.accounting.uploads`), and the uplink asks the platform publishing the
factor library for a new one on the accounting's schedule
(:mod:`reference_terminal.accounting.scheduled_download`).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from common.clock import Clock
from reference_terminal.accounting.scheduled_download import ScheduledDownload
from reference_terminal.accounting.uploads import upload_point
from reference_terminal.config import CentreBase, Hj212Centre, HttpsCentre, TerminalConfig
from reference_terminal.model import Event
from reference_terminal.processing.virtual import plan
from reference_terminal.security.identity import DeviceIdentity
from reference_terminal.security.secrets import SecretBox
from reference_terminal.security.tls_client import client_context
from reference_terminal.storage.store import Store, StoreClosed
from reference_terminal.uplink.codes import render_code
from reference_terminal.uplink.commands import Commands
from reference_terminal.uplink.frames import Coding, Stream
from reference_terminal.uplink.hj212_client import ClientStatus, Hj212Client
from reference_terminal.uplink.https_client import HttpsClient
from reference_terminal.uplink.outbox import CORRECTED, RESEND, Outbox
from reference_terminal.uplink.producer import Producer
from reference_terminal.uplink.settings import CentreSettings
from reference_terminal.uplink.signing import RecordSigner

log = logging.getLogger(__name__)

#: Virtual seconds before a centre's producer or client that failed unexpectedly runs again.
RESTART_S = 60.0


class UnknownCentre(KeyError):
    """A manual upload names a centre that is not configured (or not enabled)."""


@dataclass(frozen=True, slots=True)
class CentreStatus:
    name: str
    protocol: str
    outbox: int  # frames not yet acknowledged
    outbox_full: bool
    link: ClientStatus


class _Centre:
    def __init__(
        self,
        centre: CentreBase,
        coding: Coding,
        store: Store,
        clock: Clock,
        uplink_offset: int,
        grace_s: float,
        identity: DeviceIdentity | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.config = centre
        self.tls = tls
        self.coding = coding
        self.store = store
        self.clock = clock
        self.offset = uplink_offset
        self.grace_s = grace_s
        self.identity = identity
        self.outbox = Outbox(store, centre.name, centre.outbox.max_entries, clock, uplink_offset)
        self.settings = CentreSettings.configured(centre)
        self.producer: Producer | None = None
        self.client: Hj212Client | HttpsClient | None = None

    async def prepare(self) -> None:
        self.settings = await CentreSettings.load(self.store, self.config)
        await self.outbox.open()
        self.producer = Producer(
            self.config,
            self.coding,
            self.store,
            self.clock,
            self.outbox,
            self.settings,
            utc_offset_s=self.offset,
            grace_s=self.grace_s,
            signer=self._signer(),
        )
        await self.producer.prepare()
        if isinstance(self.config, Hj212Centre):
            commands = Commands(
                self.config,
                self.settings,
                self.producer,
                self.store,
                self.clock,
                utc_offset_s=self.offset,
                on_change=self._changed,
            )
            self.client = Hj212Client(
                self.config,
                self.outbox,
                commands,
                self.settings,
                self.clock,
                utc_offset_s=self.offset,
            )
        else:
            assert isinstance(self.config, HttpsCentre)
            self.client = HttpsClient(
                self.config,
                self.outbox,
                self.clock,
                utc_offset_s=self.offset,
                tls=self.tls,
            )
        client = self.client
        self.producer.linked = lambda: client.status.connected
        if isinstance(client, Hj212Client):
            client.on_connected = self.producer.catch_up
            self.producer.slow_while_unlinked = True

    def _signer(self) -> RecordSigner | None:
        """HJ 212 records are signed (CSMT §7.4); the HTTPS body has no field for it yet."""
        if self.identity is None or not isinstance(self.config, Hj212Centre):
            return None
        return RecordSigner(self.identity.key, self.config.mn, self.offset)

    def _changed(self) -> None:
        assert self.producer is not None
        self.producer.wake.set()
        if isinstance(self.client, Hj212Client):
            self.client.timing_changed()


def coding_for(config: TerminalConfig, centre: CentreBase) -> Coding:
    table = centre.codes if centre.codes is not None else config.uplink.codes
    wanted = None if centre.points is None else set(centre.points)
    codes = {e.point: render_code(e.code) for e in table if wanted is None or e.point in wanted}
    # virtual points' kinds too: a virtual counter's window figures go up as totals (Cou)
    kinds = plan(config.points, config.virtual_points).kinds
    counters = {point for point, kind in kinds.items() if kind == "counter"}
    for code in emission_codes(config):
        point = upload_point(code)
        if wanted is None or point in wanted:
            if code in codes.values():
                raise ValueError(
                    f"uplink {centre.name}: accounting.uploads code {code!r} is also a point's "
                    "code: a platform could not tell the two apart (CSMT §7.2)"
                )
            codes[point] = code
            counters.add(point)  # tCO2 in the period: a total (Cou)
    return Coding(codes, frozenset(counters))


def emission_codes(config: TerminalConfig) -> list[str]:
    """The codes the accounting's emission figures are uploaded under."""
    if config.accounting is None:
        return []
    return [render_code(u.code) for u in config.accounting.uploads]


def load_identity(config: TerminalConfig) -> DeviceIdentity | None:
    """The device key and certificate when uploads are to be signed (raises ``IdentityError``
    when they cannot be opened or do not match: better not to start than to send records no
    platform can verify)."""
    identity = config.identity
    if not identity.sign_uploads or identity.certificate_file is None:
        return None
    box = SecretBox.from_key_file(config.security.key_file)
    return DeviceIdentity.load(identity.key_file, identity.certificate_file, box)


def client_tls(config: TerminalConfig, centre: CentreBase) -> ssl.SSLContext | None:
    """The TLS context presenting the terminal's client certificate to ``centre`` (ISC-2
    §7.4.1), when it has one configured (raises ``TlsIdentityError`` when the key and the
    certificate cannot be opened or do not match: every upload would be refused)."""
    if not isinstance(centre, HttpsCentre) or centre.client_certificate is None:
        return None
    mine = centre.client_certificate
    return client_context(
        certificate_file=mine.certificate_file,
        key_file=mine.key_file,
        box=SecretBox.from_key_file(config.security.key_file),
        ca_file=centre.ca_file,
        verify=centre.verify,
    )


class Uplink:
    def __init__(self, config: TerminalConfig, store: Store, clock: Clock) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        up = config.uplink
        identity = load_identity(config)
        platform = None if config.accounting is None else config.accounting.factor_download
        #: The factor library looked for on the accounting's schedule (None: only when asked).
        self.factors = (
            ScheduledDownload(config, store, clock)
            if platform is not None and platform.every_s is not None
            else None
        )
        self.centres: dict[str, _Centre] = {
            c.name: _Centre(
                c,
                coding_for(config, c),
                store,
                clock,
                up.utc_offset_s,
                up.grace_s,
                identity,
                client_tls(config, c),
            )
            for c in up.centres
            if c.enabled
        }

    async def prepare(self) -> None:
        for centre in self.centres.values():
            await centre.prepare()

    async def run(self) -> None:
        """Run every centre's producer and client until cancelled; acknowledgements received
        are committed before it returns."""
        try:
            async with asyncio.TaskGroup() as group:
                for name, centre in self.centres.items():
                    assert centre.producer is not None and centre.client is not None
                    for part, run in (
                        ("producer", centre.producer.run),
                        ("client", centre.client.run),
                    ):
                        group.create_task(
                            self._keep_running(centre, part, run), name=f"uplink {name} {part}"
                        )
                if self.factors is not None:
                    group.create_task(self._factors(self.factors), name="factor library")
        finally:
            for centre in self.centres.values():
                try:
                    await asyncio.shield(centre.outbox.flush())
                except Exception as exc:  # the next start resends them: duplicates, not losses
                    log.warning(
                        "uplink %s: acknowledgements not committed: %s", centre.config.name, exc
                    )

    async def _keep_running(
        self, centre: _Centre, part: str, run: Callable[[], Awaitable[None]]
    ) -> None:
        """Run one centre's producer or client again after an unexpected failure: a fault in one
        centre's upload must not stop acquisition, storage or the other centres."""
        assert centre.client is not None
        status = centre.client.status
        while True:
            try:
                await run()
                return
            except StoreClosed:
                raise  # the terminal is stopping: nothing to run again for
            except Exception as exc:
                status.restarts += 1
                status.last_error = f"{part} failed: {exc!r}"
                log.exception(
                    "uplink %s: the %s failed; it runs again in %g s",
                    centre.config.name,
                    part,
                    RESTART_S,
                )
            await self.clock.sleep(RESTART_S)

    async def _factors(self, factors: ScheduledDownload) -> None:
        """The scheduled factor download, run again after an unexpected failure (it must not
        stop the uploads)."""
        while True:
            try:
                await factors.run()
                return
            except StoreClosed:
                raise
            except Exception:
                log.exception("factor library: the scheduled download failed")
            await self.clock.sleep(RESTART_S)

    def _centre(self, name: str) -> _Centre:
        try:
            return self.centres[name]
        except KeyError:
            raise UnknownCentre(
                f"no enabled centre {name!r} (configured: {', '.join(self.centres) or 'none'})"
            ) from None

    # ---- manual uploads (CSMT §7.5) --------------------------------------------------------
    async def resend(self, centre: str, stream: Stream, start: float, end: float) -> int:
        """Send ``stream``'s data for periods starting in ``[start, end]`` to ``centre`` again,
        as the store holds it now (operator's "send now" for a time range). Frames carry new
        QNs and their original DataTime. Returns the number of frames queued."""
        return await self._manual(self._centre(centre), stream, start, end, RESEND)

    async def backfill_corrected(
        self,
        stream: Stream,
        start: float,
        end: float,
        *,
        centres: Iterable[str] | None = None,
        reason: str = "",
    ) -> dict[str, int]:
        """Upload corrected data (CSMT §7.5, ISC-2 §7.2.4(5) manual backfill of corrected data)
        for ``[start, end]`` to ``centres`` (default: all), audited with ``reason``."""
        chosen = [self._centre(n) for n in (self.centres if centres is None else centres)]
        out = {}
        for centre in chosen:
            out[centre.config.name] = await self._manual(
                centre, stream, start, end, CORRECTED, reason
            )
        return out

    async def _manual(
        self,
        centre: _Centre,
        stream: Stream,
        start: float,
        end: float,
        origin: str,
        reason: str = "",
    ) -> int:
        assert centre.producer is not None
        frames = await centre.producer.frames(stream, start, end)
        if frames:
            await centre.outbox.enqueue(frames, origin)
        details = {
            "action": f"uplink_{origin}",
            "centre": centre.config.name,
            "stream": stream.value,
            "start": repr(start),
            "end": repr(end),
            "frames": str(len(frames)),
            "reason": reason,
        }
        await self.store.write_events([Event(self.clock.time(), "audit", details=details)])
        return len(frames)

    async def send_now(self, centre: str | None = None) -> None:
        """Build whatever is due now (CSMT §7.5 manual "send now")."""
        for c in [self._centre(centre)] if centre is not None else self.centres.values():
            assert c.producer is not None
            await c.producer.produce(self.clock.time())

    async def status(self) -> dict[str, CentreStatus]:
        return {
            name: CentreStatus(
                name,
                self.protocol(name),
                await self.outbox_size(name),
                self.centres[name].outbox.full,
                link,
            )
            for name, link in self.links().items()
        }

    def links(self) -> dict[str, ClientStatus]:
        """Each centre's link as its client sees it, from memory: :meth:`status` reads each
        outbox's size in the store too, a read the upload log needs only for a summary."""
        out = {}
        for name, centre in self.centres.items():
            assert centre.client is not None
            out[name] = centre.client.status
        return out

    def protocol(self, centre: str) -> str:
        return "hj212" if isinstance(self.centres[centre].config, Hj212Centre) else "https"

    async def outbox_size(self, centre: str) -> int:
        """Frames not yet acknowledged by ``centre``."""
        return await self.centres[centre].outbox.size()
