"""A pytest plugin loaded into the run's subprocess to tell ``carbench run`` what finished.

It writes one JSON line per event to the file descriptor named by ``CARBENCH_PROGRESS_FD``
(a pipe the parent reads). A pipe, not stdout, because pytest captures and the conformance
plugin may print; a line per finished test lets the parent show progress and, if the
subprocess dies, still say which tests had run.
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import pytest

ENV = "CARBENCH_PROGRESS_FD"


def _emit(event: dict[str, Any]) -> None:
    fd = os.environ.get(ENV)
    if not fd:
        return
    # the parent may have gone away (Ctrl-C): the run itself must go on
    with contextlib.suppress(OSError):
        os.write(int(fd), (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8"))


def pytest_collection_finish(session: pytest.Session) -> None:
    _emit({"event": "collected", "count": len(session.items)})


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # a test is over after its call phase, or after setup when setup failed or skipped
    done = report.when == "call" or (report.when == "setup" and not report.passed)
    if report.when == "teardown" and report.failed:
        done = True
    if done:
        _emit(
            {
                "event": "test",
                "nodeid": report.nodeid,
                "when": report.when,
                "outcome": report.outcome,
                "seconds": round(report.duration, 4),
            }
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _emit({"event": "finished", "exitstatus": int(exitstatus)})
