"""Application modules installed, upgraded, rolled back and uninstalled remotely (ISC-2 §8.4,
§4.3): :class:`AppHost`.

- **Checked before anything is written**: size, SM2 signature against the trusted keys, then
  the manifest (:mod:`.packages`).
- **Each application is a process of its own** (``python -I entry`` in its version's
  directory, its own session, an environment of its own with nothing of the terminal's: no
  store URL, no key file, no configuration). The terminal's acquisition runs in the terminal's
  process and never waits for an application, so installing, upgrading or a crashing
  application does not stop it, nor another application (§4.3 「某一应用模块的升级不影响其他
  模块运行」). The host never opens the store: it cannot read, copy or change emission data
  (§8.4), and neither can what it runs through it.
- **Ready or rolled back**: an application says ``ready`` on its standard output once it
  runs. An upgrade stops the old version, starts the new one and, if the new one does not say
  ``ready`` within ``apps.start_timeout_s`` (wall seconds: a bound on a process, not terminal
  time), stops it, starts the old version again and removes the new one. Two versions are
  kept: the current one and the one before it, for a rollback on request.
- **Durable**: files are fsynced before ``state.json`` names them, and ``state.json`` is
  replaced atomically; at start, whatever a power cut left half-done is removed.

Layout of ``apps.dir``::

    <name>/state.json          {"current": "1.1.0", "previous": "1.0.0"}
    <name>/<version>/          the package's files
    <name>/<version>.json      SM3 of the package, signer, install time, entry, description

Every operation, refused ones included, is logged (``app_*`` events, the ``apps`` log).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.clock import Clock
from protocols.smcrypto import sm3
from reference_terminal.config import Apps
from reference_terminal.durable import fsync_dir, write_file
from reference_terminal.model import Event
from reference_terminal.operations.packages import (
    NAME,
    Manifest,
    PackageError,
    load_trusted_keys,
    open_package,
    unpack,
    verify,
    version_key,
)
from reference_terminal.tasks import cancel_and_wait

log = logging.getLogger(__name__)

READY = b"ready"
STATE = "state.json"
STOP_GRACE_S = 2.0  # wall seconds a stopped application has to exit before it is killed
OUTPUT_LINES = 20
Recorder = Callable[[Sequence[Event]], Awaitable[None]]


class AppError(Exception):
    """A refused or failed operation; ``code`` is stable (``unknown_app``, ``app_exists``,
    ``not_newer``, ``signature``, ``manifest``, ``package``, ``untrusted``, ``too_large``,
    ``start_failed``, ``no_previous``, ``apps_disabled``, ``storage``)."""

    def __init__(self, code: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.code = code
        self.extra = extra


@dataclass
class _Running:
    version: str
    process: asyncio.subprocess.Process
    started_at: float
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_LINES))
    drain: asyncio.Task[None] | None = None
    stopping: bool = False
    exit_code: int | None = None


@dataclass(frozen=True, slots=True)
class AppStatus:
    name: str
    version: str
    state: str  # running | exited | stopped | failed
    previous_version: str | None
    description: str
    entry: str
    sm3: str
    signer: str
    installed_at: float | None
    started_at: float | None
    pid: int | None
    exit_code: int | None
    output: tuple[str, ...]


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_file(path, json.dumps(data, ensure_ascii=False, indent=2).encode())


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


class AppHost:
    def __init__(self, settings: Apps, clock: Clock, record: Recorder | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.record = record
        self.root = Path(settings.dir)
        self._running: dict[str, _Running] = {}
        self._failed: dict[str, str] = {}  # name → why its start failed
        self._lock = asyncio.Lock()
        self._boot: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    # ---- the terminal's life -------------------------------------------------------------
    async def start(self) -> None:
        """Tidy what a cut left, then start the installed applications in the background
        (the terminal does not wait for them)."""
        if not self.enabled:
            return
        try:
            await asyncio.to_thread(self._tidy)
        except OSError as exc:  # the applications' disk; the terminal runs on without them
            log.error("apps: cannot tidy %s: %s", self.root, exc)
        self._boot = asyncio.create_task(self._start_installed(), name="apps boot")

    async def stop(self) -> None:
        if self._boot is not None:
            await cancel_and_wait(self._boot)
        for name in list(self._running):
            await self._stop(name)

    async def _start_installed(self) -> None:
        for name in self.names():
            current = self._state(name).get("current")
            if not isinstance(current, str):
                continue
            async with self._lock:
                try:
                    await self._launch(name, current)
                except AppError as exc:
                    self._failed[name] = str(exc)
                    await self._log("app_failed", name, current, message=str(exc))

    def _tidy(self) -> None:
        if not self.root.is_dir():
            return
        for app in self.root.iterdir():
            if not app.is_dir():
                continue
            state = _read_json(app / STATE)
            kept = {v for v in (state.get("current"), state.get("previous")) if isinstance(v, str)}
            if not kept:
                shutil.rmtree(app, ignore_errors=True)  # never finished installing
                continue
            for entry in app.iterdir():
                version = entry.name.removesuffix(".json")
                if entry.name in (STATE,) or version in kept:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)

    # ---- what is installed -----------------------------------------------------------------
    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and (p / STATE).is_file())

    def _state(self, name: str) -> dict[str, Any]:
        return _read_json(self.root / name / STATE)

    def _meta(self, name: str, version: str) -> dict[str, Any]:
        return _read_json(self.root / name / f"{version}.json")

    def status(self, name: str) -> AppStatus:
        state = self._state(name)
        current = state.get("current")
        if not isinstance(current, str):
            raise AppError("unknown_app", f"no application {name!r} is installed")
        meta = self._meta(name, current)
        running = self._running.get(name)
        if running is not None and running.version == current:
            if running.exit_code is None:
                how, pid = "running", running.process.pid
            else:
                how, pid = "exited", None
        else:
            how, pid = ("failed" if name in self._failed else "stopped"), None
        previous = state.get("previous")
        return AppStatus(
            name=name,
            version=current,
            state=how,
            previous_version=previous if isinstance(previous, str) else None,
            description=str(meta.get("description", "")),
            entry=str(meta.get("entry", "")),
            sm3=str(meta.get("sm3", "")),
            signer=str(meta.get("signer", "")),
            installed_at=meta.get("installed_at"),
            started_at=None if running is None else running.started_at,
            pid=pid,
            exit_code=None if running is None else running.exit_code,
            output=tuple(running.output) if running is not None else (),
        )

    def statuses(self) -> list[AppStatus]:
        return [self.status(n) for n in self.names()]

    # ---- operations ------------------------------------------------------------------------
    async def install(self, package: bytes, signature: bytes, *, user: str = "") -> AppStatus:
        """A new application (``app_exists`` if one of that name is installed)."""
        async with self._lock:
            manifest, archive_sm3, signer, archive = await self._checked(package, signature, user)
            if (self.root / manifest.name / STATE).exists():
                raise await self._refuse(
                    "app_exists",
                    manifest.name,
                    f"{manifest.name} is installed already (version "
                    f"{self._state(manifest.name).get('current')}); upgrade it instead",
                    user,
                )
            await self._disk(self._unpack, manifest, archive, archive_sm3, signer, True)
            try:
                await self._launch(manifest.name, manifest.version)
            except AppError as exc:
                await asyncio.to_thread(shutil.rmtree, self.root / manifest.name, True)
                await self._log("app_failed", manifest.name, manifest.version, user, str(exc))
                raise
            await self._disk(
                _write_json, self.root / manifest.name / STATE, {"current": manifest.version}
            )
            self._failed.pop(manifest.name, None)
            await self._log("app_installed", manifest.name, manifest.version, user, signer)
            return self.status(manifest.name)

    async def upgrade(
        self, name: str, package: bytes, signature: bytes, *, user: str = ""
    ) -> AppStatus:
        """A newer version of ``name``; the running one comes back if the new one fails."""
        async with self._lock:
            state = self._state(name)
            current = state.get("current")
            if not isinstance(current, str):
                raise AppError("unknown_app", f"no application {name!r} is installed")
            manifest, archive_sm3, signer, archive = await self._checked(package, signature, user)
            if manifest.name != name:
                raise await self._refuse(
                    "manifest", name, f"the package is {manifest.name!r}, not {name!r}", user
                )
            if manifest.version_key <= version_key(current):
                raise await self._refuse(
                    "not_newer",
                    name,
                    f"version {manifest.version} is not newer than the installed {current} "
                    "(go back with a rollback)",
                    user,
                )
            await self._disk(self._unpack, manifest, archive, archive_sm3, signer)
            await self._stop(name)
            try:
                await self._launch(name, manifest.version)
            except AppError as exc:
                await self._stop(name)
                await asyncio.to_thread(self._remove_version, name, manifest.version)
                back = await self._restart(name, current)
                await self._log(
                    "app_rolled_back",
                    name,
                    manifest.version,
                    user,
                    f"{exc}; {current} {'runs again' if back else 'did not start either'}",
                )
                raise AppError(
                    "start_failed",
                    f"{name} {manifest.version} did not start ({exc}); rolled back to {current}",
                    rolled_back_to=current,
                ) from None
            await self._disk(self._commit, name, {"current": manifest.version, "previous": current})
            self._failed.pop(name, None)
            await self._log(
                "app_upgraded", name, manifest.version, user, f"from {current}; signed by {signer}"
            )
            return self.status(name)

    async def rollback(self, name: str, *, user: str = "") -> AppStatus:
        """Back to the version before the current one."""
        async with self._lock:
            state = self._state(name)
            current, previous = state.get("current"), state.get("previous")
            if not isinstance(current, str):
                raise AppError("unknown_app", f"no application {name!r} is installed")
            if not isinstance(previous, str):
                raise AppError("no_previous", f"{name} keeps no version before {current}")
            await self._stop(name)
            try:
                await self._launch(name, previous)
            except AppError as exc:
                await self._stop(name)
                await self._restart(name, current)
                raise AppError(
                    "start_failed", f"{name} {previous} did not start ({exc}); {current} kept"
                ) from None
            await self._disk(self._commit, name, {"current": previous, "previous": current})
            await self._log("app_rolled_back", name, previous, user, f"from {current} on request")
            return self.status(name)

    async def uninstall(self, name: str, *, user: str = "") -> str:
        """Stop ``name`` and remove every version of it; the version that ran."""
        async with self._lock:
            current = self._state(name).get("current")
            if not isinstance(current, str) or not NAME.match(name):
                raise AppError("unknown_app", f"no application {name!r} is installed")
            await self._stop(name)
            self._running.pop(name, None)
            self._failed.pop(name, None)
            await self._disk(self._remove, name)
            await self._log("app_uninstalled", name, current, user)
            return current

    # ---- inside ------------------------------------------------------------------------------
    async def _checked(
        self, package: bytes, signature: bytes, user: str
    ) -> tuple[Manifest, str, str, Any]:
        if not self.enabled:
            raise AppError(
                "apps_disabled", "this terminal installs no applications (apps.enabled: false)"
            )
        if len(package) > self.settings.max_package_bytes:
            raise await self._refuse(
                "too_large",
                None,
                f"the package has {len(package)} bytes: at most "
                f"{self.settings.max_package_bytes} (apps.max_package_bytes)",
                user,
            )
        try:
            keys = load_trusted_keys(self.settings.trusted_keys)
            signer = verify(package, signature, keys)
            archive, manifest = open_package(package, self.settings.max_package_bytes)
        except PackageError as exc:
            raise await self._refuse(exc.code, None, str(exc), user) from None
        return manifest, sm3(package).hex(), f"{signer.fingerprint} ({signer.source})", archive

    async def _disk(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the applications' disk, in a thread; a failure of the disk (full,
        read-only) is an :class:`AppError` ``storage``."""
        try:
            return await asyncio.to_thread(fn, *args)
        except OSError as exc:
            raise AppError(
                "storage", f"the applications' disk ({self.root}): {exc.strerror or exc}"
            ) from None

    async def _refuse(self, code: str, name: str | None, message: str, user: str) -> AppError:
        await self._log("app_refused", name, None, user, f"{code}: {message}")
        return AppError(code, message)

    def _unpack(
        self, manifest: Manifest, archive: Any, digest: str, signer: str, fresh: bool = False
    ) -> None:
        app = self.root / manifest.name
        if fresh and app.exists():
            shutil.rmtree(app)  # leftovers of an install that never finished
        app.mkdir(parents=True, exist_ok=True)
        target = app / manifest.version
        part = app / f"{manifest.version}.part"
        for leftover in (part, target):
            if leftover.exists():
                shutil.rmtree(leftover)
        unpack(archive, part)
        part.replace(target)
        meta = {
            "name": manifest.name,
            "version": manifest.version,
            "entry": manifest.entry,
            "description": manifest.description,
            "sm3": digest,
            "signer": signer,
            "installed_at": self.clock.time(),
        }
        _write_json(app / f"{manifest.version}.json", meta)
        fsync_dir(self.root)

    def _commit(self, name: str, state: dict[str, str]) -> None:
        _write_json(self.root / name / STATE, state)
        keep = set(state.values())
        app = self.root / name
        for entry in app.iterdir():
            version = entry.name.removesuffix(".json")
            if entry.name != STATE and version not in keep:
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()

    def _remove_version(self, name: str, version: str) -> None:
        app = self.root / name
        shutil.rmtree(app / version, ignore_errors=True)
        (app / f"{version}.json").unlink(missing_ok=True)

    def _remove(self, name: str) -> None:
        # state.json first: a cut half-way leaves a directory that start-up removes
        (self.root / name / STATE).unlink(missing_ok=True)
        shutil.rmtree(self.root / name)
        fsync_dir(self.root)

    async def _restart(self, name: str, version: str) -> bool:
        try:
            await self._launch(name, version)
        except AppError as exc:
            self._failed[name] = str(exc)
            return False
        return True

    def _environment(self, name: str, version: str, home: Path) -> dict[str, str]:
        """Nothing of the terminal's environment: no paths, no credentials."""
        return {
            "PATH": os.defpath,
            "LANG": "C.UTF-8",
            "HOME": str(home),
            "CARBENCH_APP": name,
            "CARBENCH_APP_VERSION": version,
        }

    async def _launch(self, name: str, version: str) -> None:
        directory = self.root / name / version
        entry = str(self._meta(name, version).get("entry", ""))
        if not entry or not (directory / entry).is_file():
            raise AppError("start_failed", f"{name} {version}: its entry {entry!r} is missing")
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",  # isolated: no user site, no PYTHONPATH, not the terminal's own modules
                entry,
                cwd=directory,
                env=self._environment(name, version, directory),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped with its children
            )
        except OSError as exc:
            raise AppError("start_failed", f"{name} {version}: cannot start: {exc}") from None
        running = _Running(version, process, self.clock.time())
        self._running[name] = running
        assert process.stdout is not None
        try:
            async with asyncio.timeout(self.settings.start_timeout_s):
                while True:
                    line = await process.stdout.readline()
                    if not line:
                        code = await process.wait()
                        running.exit_code = code
                        tail = " | ".join(running.output)[-500:]
                        raise AppError(
                            "start_failed",
                            f"{name} {version} exited with status {code} before it was ready"
                            + (f": {tail}" if tail else ""),
                        )
                    text = line.decode("utf-8", "replace").rstrip()
                    running.output.append(text)
                    if line.strip() == READY:
                        break
        except TimeoutError:
            await self._stop(name)
            raise AppError(
                "start_failed",
                f"{name} {version} did not say ready within {self.settings.start_timeout_s:g} s",
            ) from None
        except AppError:
            self._running.pop(name, None)
            raise
        self._failed.pop(name, None)
        running.drain = asyncio.create_task(self._drain(name, running), name=f"app {name}")

    async def _drain(self, name: str, running: _Running) -> None:
        stream = running.process.stdout
        assert stream is not None
        while line := await stream.readline():
            running.output.append(line.decode("utf-8", "replace").rstrip())
        running.exit_code = await running.process.wait()
        if not running.stopping:
            tail = " | ".join(running.output)[-300:]
            await self._log(
                "app_exited",
                name,
                running.version,
                message=f"exited with status {running.exit_code}: {tail}",
            )

    async def _stop(self, name: str) -> None:
        running = self._running.get(name)
        if running is None:
            return
        running.stopping = True
        process = running.process
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                async with asyncio.timeout(STOP_GRACE_S):
                    await process.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
        if running.drain is not None:
            await asyncio.wait({running.drain})  # never raises the drain's own cancellation
        running.exit_code = process.returncode
        self._running.pop(name, None)

    async def _log(
        self,
        kind: str,
        name: str | None,
        version: str | None,
        user: str = "",
        message: str = "",
    ) -> None:
        details = {"app": name or "", "version": version or "", "user": user}
        if message:
            details["message"] = message[:500]
        log.log(
            logging.WARNING
            if kind in ("app_failed", "app_rolled_back", "app_exited")
            else logging.INFO,
            "%s %s %s %s",
            kind,
            name or "",
            version or "",
            message,
        )
        if self.record is None:
            return
        try:
            await self.record([Event(self.clock.time(), kind, details=details)])
        except Exception as exc:  # the store closed (a shutdown): the log line stays
            log.warning("apps log not written (%s): %s", kind, exc)
