"""The factor library downloaded on the terminal's own schedule (CSMT §11.4 a): the platform
configures the methodology, "配置后由碳计量数据终端进行搜索下载"): every
``accounting.factor_download.every_s`` the terminal asks the platform for its publication and
takes a new one as ``POST /accounting/factors/download`` does (:mod:`.download`'s checks of the
SM3 digest and the SM2 signature first; every binding must still resolve with it), keeps it in
``imports_dir``, logs it (``method_download``, or ``method_download_refused`` once per refused
publication) and has the running accounting bind its points again from the next minute booked
(:func:`library_generation`).

A publication already taken, or one that changes nothing, is left alone: no event, no rebinding.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from pathlib import Path

import httpx

from common.clock import Clock
from protocols.smcrypto import sm3
from reference_terminal.accounting.bindings import load_library, resolve
from reference_terminal.accounting.download import (
    DownloadRefused,
    check,
    load_keys,
    parse_library,
    save_library,
)
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.config import TerminalConfig
from reference_terminal.model import Event
from reference_terminal.storage.store import Store

log = logging.getLogger(__name__)

MAX_LIBRARY_BYTES = 4 * 1024 * 1024
TIMEOUT_S = 30.0

#: How many times each ``imports_dir`` (absolute) had a library taken by a scheduled download
#: in this process: the running accounting binds again when the count it knows is behind.
_GENERATIONS: dict[str, int] = {}


def library_key(imports_dir: str) -> str:
    """What :func:`library_generation` knows ``imports_dir`` by."""
    return os.path.abspath(imports_dir)


def library_generation(key: str) -> int:
    """How many libraries scheduled downloads kept in the ``imports_dir`` of ``key`` (a
    dictionary look-up: the accounting asks at every booking)."""
    return _GENERATIONS.get(key, 0)


def _library_changed(imports_dir: str) -> None:
    key = library_key(imports_dir)
    _GENERATIONS[key] = _GENERATIONS.get(key, 0) + 1


class ScheduledDownload:
    """Looks for a new publication every ``every_s`` (see the module text)."""

    def __init__(self, config: TerminalConfig, store: Store, clock: Clock) -> None:
        accounting = config.accounting
        assert accounting is not None and accounting.factor_download is not None
        self.config = config
        self.accounting = accounting
        self.platform = accounting.factor_download
        self.store = store
        self.clock = clock
        self._seen: str | None = None  # SM3 of the last answer taken or refused

    async def run(self) -> None:
        every = self.platform.every_s
        assert every is not None
        while True:
            try:
                await self.once()
            except (OSError, AccountingError) as exc:
                log.warning("factor library: the scheduled download failed: %s", exc)
            await self.clock.sleep(every)

    async def once(self) -> str:
        """One look: ``taken``, ``unchanged``, ``refused``, ``none`` (nothing published) or
        ``failed`` (the platform could not be asked)."""
        url = self.platform.url
        verify: ssl.SSLContext | bool = True
        if self.platform.ca_file:
            verify = ssl.create_default_context(cafile=self.platform.ca_file)
        try:
            async with httpx.AsyncClient(timeout=TIMEOUT_S, verify=verify) as client:
                answer = await client.get(url)
        except httpx.HTTPError as exc:
            log.info("factor library: %s: %r", url, exc)
            return "failed"
        if answer.status_code == 404:
            return "none"
        if answer.status_code != 200 or len(answer.content) > MAX_LIBRARY_BYTES:
            log.info("factor library: %s: HTTP %d", url, answer.status_code)
            return "failed"
        digest = sm3(answer.content).hex()
        if digest == self._seen:
            return "unchanged"
        self._seen = digest
        try:
            got = check(answer.content, load_keys(self.platform.trusted_keys))
            imported = parse_library(got.library, "the downloaded library")
            current = load_library(self.accounting)
            merged = current.merged(imported, replace=True)
            manual = frozenset(d.id for d in self.config.devices if d.protocol == "manual")
            resolve(
                self.accounting,
                self.config.points,
                self.config.virtual_points,
                library=merged,
                manual_devices=manual,
            )
        except AccountingError as exc:
            code = exc.code if isinstance(exc, DownloadRefused) else "library_refused"
            details = {"origin": url, "code": code, "error": str(exc), "trigger": "scheduled"}
            await self._log("method_download_refused", details)
            log.warning("factor library: the publication at %s is refused: %s", url, exc)
            return "refused"
        if merged.to_data() == current.to_data():
            return "unchanged"
        imports = Path(self.accounting.imports_dir)
        await asyncio.to_thread(save_library, imports, imported)
        details = {
            "vintages": ", ".join(imported.vintages),
            "revisions": ", ".join(f"{v.name}: {v.revision}" for v in imported.vintages.values()),
            "changed": "true",
            "origin": url,
            "trigger": "scheduled",
            "publisher": got.publisher or "",
            "version": got.version or "",
            "published_at": got.published_at or "",
            "sm3": got.sm3,
            "signature": got.signature,
        }
        await self._log("method_download", details)
        _library_changed(self.accounting.imports_dir)
        log.info("factor library: version %s taken from %s", got.version, url)
        return "taken"

    async def _log(self, kind: str, details: dict[str, str]) -> None:
        await self.store.write_events([Event(self.clock.time(), kind, details=details)])
