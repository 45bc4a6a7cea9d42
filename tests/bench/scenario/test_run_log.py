"""A run's ``run.log``: every logger's INFO and above, stamped with the scenario's virtual time,
for the run's length only."""

from __future__ import annotations

import logging
from pathlib import Path

from bench.scenario.run_log import run_log

VIRTUAL = 1_767_196_800.0  # 2025-12-31T16:00:00Z


def test_records_carry_the_virtual_time_and_the_logger(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    with run_log(path, lambda: VIRTUAL + 0.25):
        logging.getLogger("reference_terminal.storage").warning("disk %s", "gone")
        logging.getLogger("simulators.power").info("cut")
        logging.getLogger("reference_terminal.app").debug("too fine to keep")

    assert path.read_text(encoding="utf-8").splitlines() == [
        "2025-12-31T16:00:00.250+00:00 WARNING reference_terminal.storage: disk gone",
        "2025-12-31T16:00:00.250+00:00 INFO simulators.power: cut",
    ]


def test_the_root_logger_is_as_it_was_after_the_run(tmp_path: Path) -> None:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    root.setLevel(logging.WARNING)
    try:
        with run_log(tmp_path / "run.log", lambda: VIRTUAL):
            assert root.getEffectiveLevel() == logging.INFO
        assert root.handlers == handlers and root.level == logging.WARNING
        logging.getLogger("after").warning("not the run's")
        assert "not the run's" not in (tmp_path / "run.log").read_text(encoding="utf-8")
    finally:
        root.setLevel(level)
