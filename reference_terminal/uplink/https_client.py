"""One HTTPS data centre: JSON uploads from the same durable outbox (ISC-2 §7.2.3(6)).

Each frame is one POST; only ``200 {"ok": true}`` is a success reply and takes the frame out of
the outbox. Anything else — no answer, a timeout, a 5xx, a refusal — is resent "until a success
reply", with the same QN, after a backoff (ISC-2 §7.2.3(6); HJ 212's bounded ReCount does not
apply here: see CLAUSES.md, "Where the standards disagree"). A 403 or 422 is also raised as an
alarm, once per frame: resending the same body will not help until someone acts.

Live frames go first and the backlog follows oldest-first, at most ``outbox.window`` requests
in flight, as for HJ 212.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import deque

import httpx

from common.clock import Clock
from reference_terminal.config import HttpsCentre
from reference_terminal.model import Event
from reference_terminal.uplink.hj212_client import BACKLOG_CHUNK, ClientStatus
from reference_terminal.uplink.outbox import START, BacklogCursor, Entry, Feed, Outbox
from reference_terminal.uplink.retry import Backoff

log = logging.getLogger(__name__)


class UploadRefused(Exception):
    """The centre did not give a success reply; the frame stays in the outbox."""


class HttpsClient:
    def __init__(
        self,
        centre: HttpsCentre,
        outbox: Outbox,
        clock: Clock,
        *,
        utc_offset_s: int,
        backoff: Backoff | None = None,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.centre = centre
        #: The TLS context presenting the terminal's client certificate (ISC-2 §7.4.1), made
        #: at start by :func:`~reference_terminal.uplink.service.client_tls`; None: none.
        self.tls = tls
        self.outbox = outbox
        self.clock = clock
        self.utc_offset_s = utc_offset_s
        self.backoff = backoff or Backoff(centre.backoff)
        self.status = ClientStatus()
        self._alarmed: set[int] = set()

    def _verify(self) -> ssl.SSLContext | bool:
        if self.tls is not None:
            return self.tls
        if not self.centre.verify:
            return False
        return ssl.create_default_context(cafile=self.centre.ca_file)

    async def run(self) -> None:
        async with httpx.AsyncClient(
            verify=self._verify(), timeout=self.centre.timeout_s
        ) as client:
            while True:
                try:
                    await self._round(client)
                except (UploadRefused, httpx.HTTPError, OSError) as exc:
                    self.status.connected = False
                    self.status.last_error = str(exc) or type(exc).__name__
                    delay = self.backoff.next()
                    log.info("uplink %s: %s; again in %.1f s", self.centre.name, exc, delay)
                    await self.clock.sleep(delay)
                finally:
                    self.status.in_flight = 0

    async def _round(self, client: httpx.AsyncClient) -> None:
        """Send until something fails: the live frames, then the backlog oldest-first."""
        await self.outbox.flush()
        feed = await self.outbox.open_feed()
        try:
            await self._send(client, feed)
        finally:
            self.outbox.close_feed(feed)

    async def _send(self, client: httpx.AsyncClient, feed: Feed) -> None:
        boundary = feed.boundary
        cursor: BacklogCursor = START
        done = boundary == 0
        backlog: deque[Entry] = deque()
        window = self.centre.outbox.window
        # Until the centre takes a batch, read one batch of backlog at a time: against a dead
        # link every round fails on its first batch, and a whole chunk read per retry was a
        # tenth of the bench process's time in the full profile's 48-hour outage (py-spy).
        chunk_size = window
        while True:
            feed.wake.clear()
            batch: list[Entry] = []
            while len(batch) < window:
                if feed.live:  # live frames first
                    batch.append(feed.live.popleft())
                    continue
                if not backlog and not done:
                    chunk = await self.outbox.load(cursor, boundary, chunk_size)
                    done = len(chunk) < chunk_size
                    if chunk:
                        cursor = chunk[-1].frame.data_time, chunk[-1].id
                        backlog.extend(chunk)
                if not backlog:
                    break
                batch.append(backlog.popleft())
            self.status.backlog_left = bool(backlog) or not done
            if not batch:
                await feed.wake.wait()
                continue
            resent = sum(1 for e in batch if e.qn is not None)
            batch = await self.outbox.assign_qns(batch)
            self.status.sent += len(batch)
            self.status.resent += resent
            self.status.in_flight = len(batch)
            results = await asyncio.gather(
                *(self._post(client, e) for e in batch), return_exceptions=True
            )
            failure: BaseException | None = None
            for entry, result in zip(batch, results, strict=True):
                if isinstance(result, BaseException):
                    failure = failure or result
                else:
                    self.outbox.acknowledge(entry.id)
                    self.status.acknowledged += 1
                    self.status.last_ack_at = self.clock.time()
            self.status.in_flight = 0
            if failure is not None:
                raise failure
            self.status.connected = True
            self.backoff.reset()
            chunk_size = BACKLOG_CHUNK

    async def _post(self, client: httpx.AsyncClient, entry: Entry) -> None:
        assert entry.qn is not None
        c = self.centre
        body = entry.frame.json_body(entry.qn, c.mn, c.pw, c.st, self.utc_offset_s)
        if not body["values"]:
            return  # flag-only frame: nothing this transport can carry
        response = await client.post(c.url, json=body)
        if response.status_code == 200:
            try:
                ok = response.json().get("ok") is True
            except ValueError:
                ok = False
            if ok:
                return
        text = response.text[:300]
        if response.status_code in (403, 422) and entry.id not in self._alarmed:
            self._alarmed.add(entry.id)
            details = {
                "alarm": "uplink_upload_refused",
                "centre": c.name,
                "qn": entry.qn,
                "status": str(response.status_code),
                "answer": text,
            }
            await self.outbox.store.write_events(
                [Event(self.clock.time(), "alarm", details=details)]
            )
        raise UploadRefused(f"POST {c.url}: HTTP {response.status_code} {text}")
