"""Work run side by side in forked children: each result comes back in order, a child's
failure comes back as an error with its traceback, and a centre's check forked finds what it
finds in the parent."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bench.scenario.config import mn_of
from bench.scenario.engine import Arrivals, check_centre, check_centres
from bench.scenario.forked import ForkedWorkError, in_forks
from simulators.platform import Record, Want
from simulators.platform.record import format_data_time
from tests.simulators.platform.device import T0
from tests.simulators.platform.test_record import upload

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="this system cannot fork")


@needs_fork
def test_each_result_comes_back_in_order_from_its_own_process() -> None:
    parent = os.getpid()
    pids = in_forks([os.getpid, os.getpid, os.getpid])

    assert pids[0] == parent
    assert len(set(pids)) == 3


@needs_fork
def test_a_child_that_fails_says_how() -> None:
    def broken() -> int:
        raise ValueError("no such window")

    with pytest.raises(ForkedWorkError, match="ValueError: no such window"):
        in_forks([lambda: 1, broken])


@needs_fork
def test_a_child_that_dies_is_reported() -> None:
    with pytest.raises(ForkedWorkError, match="exit status 3"):
        in_forks([lambda: 1, lambda: os._exit(3)])


@needs_fork
def test_a_centre_checked_in_a_child_is_checked_as_in_the_parent(tmp_path: Path) -> None:
    """The record's centre c1 has a minute sent twice and one never (two codes each); its
    check forked (c1 as the second centre) finds what the parent finds."""
    mn = mn_of(1)
    owed = {
        (code, format_data_time(T0 + timedelta(minutes=m))): Want(None)
        for m in range(3)
        for code in ("a05001", "a19001")
    }
    until = datetime(2100, 1, 1)
    with Record(f"sqlite:///{tmp_path / 'record.sqlite'}") as record:
        upload(record, "20260101120000001", 0, "1.5", mn=mn)
        upload(record, "20260101120100001", 1, "1.5", mn=mn)
        upload(record, "20260101120100002", 1, "1.5", mn=mn)
        here = check_centre(Arrivals(record), owed, "c1", mn, until)
        forked = check_centres(Arrivals(record), owed, ["nobody", "c1"], until)

    assert len(here.lost) == 2 and len(here.duplicated) == 2
    assert forked["c1"] == here
