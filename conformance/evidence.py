"""What a test leaves behind as evidence: announced steps with timings, attached files and
measured figures, recorded for the run's results (``conformance.results``) and, when
allure-pytest is active, mirrored into its report.

Tests run one at a time, on the bench's event loop thread (``conformance.loop``) or on pytest's
own; the plugin opens one :class:`TestLog` per test and the module-level helpers write to it::

    with step("cut the power while the uplink is down"):
        ...
    attach("frames.txt", text, "text/plain")
    record_measurement("p95_ms", 3.1)

allure-pytest keeps its current test per thread, so allure calls made on the loop thread are
handed to the thread pytest runs on (:data:`allure_calls`), which runs them while it waits.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# allure-pytest (a dependency): without --alluredir its hooks have no listener and do nothing.
import allure
import allure_commons

from conformance.results import Attachment, Step

#: allure calls waiting for pytest's thread (see the module text).
allure_calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()


def _on_pytest_thread(call: Callable[[], None]) -> None:
    if threading.current_thread() is threading.main_thread():
        call()
    else:
        allure_calls.put(call)


def run_allure_calls() -> None:
    """Run the allure calls queued by other threads (pytest's thread calls this)."""
    while True:
        try:
            call = allure_calls.get_nowait()
        except queue.Empty:
            return
        with contextlib.suppress(Exception):  # a report decoration never fails a test
            call()


def slug(text: str) -> str:
    """A file-system-safe name for a test id or an attachment name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "test"


@dataclass
class TestLog:
    """One test's steps, attachments and measurements (the plugin makes and reads it)."""

    __test__ = False

    nodeid: str
    root: Path  # the run's evidence directory; attachment paths are relative to it
    steps: list[Step] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    measurements: dict[str, float] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return self.root / slug(self.nodeid)

    # ---- steps ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def step(self, title: str) -> Iterator[None]:
        """An announced step; its outcome is ``failed`` on an assertion, ``broken`` on any
        other exception, ``skipped`` on a verdict other than pass/fail."""
        from conformance.verdicts import VerdictException  # noqa: PLC0415 - no cycle at import

        step_id = uuid.uuid4().hex
        _on_pytest_thread(
            lambda: allure_commons.plugin_manager.hook.start_step(
                uuid=step_id, title=title, params={}
            )
        )
        started = time.perf_counter()
        outcome = "passed"
        error: BaseException | None = None
        try:
            yield
        except AssertionError as exc:
            outcome, error = "failed", exc
            raise
        except VerdictException as exc:
            outcome, error = "skipped", exc
            raise
        except BaseException as exc:
            outcome, error = "broken", exc
            raise
        finally:
            self.steps.append(Step(title, round(time.perf_counter() - started, 6), outcome))
            kind = None if error is None else type(error)
            _on_pytest_thread(
                lambda: allure_commons.plugin_manager.hook.stop_step(
                    uuid=step_id, exc_type=kind, exc_val=error, exc_tb=None
                )
            )

    # ---- attachments ---------------------------------------------------------------------
    def attach(
        self, name: str, data: bytes | str | Path, media_type: str = "text/plain"
    ) -> Attachment:
        """Write ``data`` (bytes, text, or a file to copy) under this test's evidence directory
        as ``name``; returns the attachment as recorded (path relative to the run's root)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.directory / slug(name)
        if isinstance(data, Path):
            target.write_bytes(data.read_bytes())
        elif isinstance(data, str):
            target.write_text(data, encoding="utf-8")
        else:
            target.write_bytes(data)
        attachment = Attachment(name, str(target.relative_to(self.root)), media_type)
        self.attachments.append(attachment)
        path = str(target)
        _on_pytest_thread(
            lambda: allure.attach.file(path, name=name, attachment_type=media_type)  # type: ignore[no-untyped-call]
        )
        return attachment

    def attach_json(self, name: str, data: Any) -> Attachment:
        import json  # noqa: PLC0415 - rarely needed

        text = json.dumps(data, ensure_ascii=False, indent=1, default=str)
        return self.attach(name, text, "application/json")

    # ---- measurements --------------------------------------------------------------------
    def record_measurement(self, name: str, value: float) -> None:
        self.measurements[name] = float(value)


#: The running test's log. One slot, not a context variable: the test runs on the bench's loop
#: thread while pytest's thread opened the log.
_running: list[TestLog] = []


def begin(log: TestLog) -> None:
    _running[:] = [log]


def end() -> TestLog | None:
    log = _running[0] if _running else None
    _running.clear()
    return log


def current() -> TestLog:
    """The running test's log (outside a test: an error of the bench)."""
    if not _running:
        raise RuntimeError("no conformance test is running: evidence has nowhere to go")
    return _running[0]


def step(title: str) -> contextlib.AbstractContextManager[None]:
    return current().step(title)


def attach(name: str, data: bytes | str | Path, media_type: str = "text/plain") -> Attachment:
    return current().attach(name, data, media_type)


def attach_json(name: str, data: Any) -> Attachment:
    return current().attach_json(name, data)


def record_measurement(name: str, value: float) -> None:
    current().record_measurement(name, value)
