"""A pytest plugin loaded into the run's subprocess to tell ``carbench run`` what finished.

It writes one JSON line per event through ``conformance.progress`` (a pipe the parent reads);
a line per finished test lets the parent show progress and, if the subprocess dies, still say
which tests had run.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.progress import ENV
from conformance.progress import emit as _emit

__all__ = ["ENV"]


def pytest_collection_finish(session: pytest.Session) -> None:
    # the ids too: a run that ends early can then say which tests never ran
    _emit(
        {
            "event": "collected",
            "count": len(session.items),
            "nodeids": [item.nodeid for item in session.items],
        }
    )


_running: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # one event per test, after its teardown: only then is the conformance verdict known
    # (the conformance plugin puts it in the teardown report's user_properties)
    state = _running.setdefault(report.nodeid, {"outcome": "passed", "when": "call", "s": 0.0})
    state["s"] += report.duration
    if state["outcome"] != "failed" and (report.failed or report.skipped):
        state["outcome"], state["when"] = report.outcome, report.when
    if report.when != "teardown":
        return
    del _running[report.nodeid]
    properties = dict(report.user_properties)
    _emit(
        {
            "event": "test",
            "nodeid": report.nodeid,
            "when": state["when"],
            "outcome": state["outcome"],
            "verdict": properties.get("verdict"),
            "seconds": round(state["s"], 4),
        }
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _emit({"event": "finished", "exitstatus": int(exitstatus)})
