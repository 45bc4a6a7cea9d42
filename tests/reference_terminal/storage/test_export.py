"""Exports to CSV, JSON lines and Parquet, read back with csv, json and pyarrow: exact value
text, the time range half-open, a subset of points, events and derived values."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from reference_terminal.storage.export import columns, export, export_store
from reference_terminal.storage.store import Store
from tests.reference_terminal.storage.helpers import T0, derived, event, reading

pytestmark = pytest.mark.anyio

VALUES = ["0.00", "-0.00", "123456.780", "1E+3", None, "7", "0.1"]


def read_back(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return list(pq.read_table(path).to_pylist())


async def _fill(store: Store) -> None:
    await store.write(
        [
            reading(p, T0 + i, v, note="说明" if i == 2 else "")
            for p in ("A", "B", "C")
            for i, v in enumerate(VALUES)
        ],
        events=[event("gap", T0 + i, "A" if i % 2 else "B", n=str(i)) for i in range(6)],
        derived=[
            derived(p, "hour", T0 + h * 3600, f"{h}.50") for p in ("A", "B") for h in range(3)
        ],
    )


async def test_readings_export_keeps_exact_values(url: str, tmp_path: Path) -> None:
    counts = {}
    async with await Store.open(url) as store:
        await _fill(store)
        for suffix in (".csv", ".jsonl", ".parquet"):
            counts[suffix] = await export_store(
                store,
                tmp_path / f"readings{suffix}",
                start=T0 + 1,
                end=T0 + 6,
                points=["A", "C"],
                chunk_rows=2,
            )
    for suffix, n in counts.items():
        rows = read_back(tmp_path / f"readings{suffix}")
        assert n == len(rows) == 2 * 5
        assert list(rows[0]) == columns("readings")
        assert [r["point"] for r in rows] == ["A"] * 5 + ["C"] * 5
        empty = "" if suffix == ".csv" else None
        values = [v if v is not None else empty for v in VALUES[1:6]]
        assert [r["value"] for r in rows[:5]] == values
        assert [float(r["t"]) for r in rows[:5]] == [T0 + i for i in range(1, 6)]
        assert rows[1]["note"] == "说明"
        assert rows[0]["time"] == "2026-01-01T00:00:01.000000+00:00"
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
async def test_events_and_derived_export(sqlite_url: str, tmp_path: Path, suffix: str) -> None:
    async with await Store.open(sqlite_url) as store:
        await _fill(store)
        n_events = await export_store(
            store, tmp_path / f"e{suffix}", start=T0, end=T0 + 4, what="events"
        )
        n_a = await export_store(
            store, tmp_path / f"ea{suffix}", start=T0, end=T0 + 100, points=["A"], what="events"
        )
        n_derived = await export_store(
            store, tmp_path / f"d{suffix}", start=T0, end=T0 + 2 * 3600, what="derived"
        )
    events = read_back(tmp_path / f"e{suffix}")
    assert n_events == len(events) == 4
    details = events[3]["details"]
    assert (details if suffix == ".jsonl" else json.loads(details)) == {"n": "3"}
    assert n_a == 3
    rows = read_back(tmp_path / f"d{suffix}")
    assert n_derived == 4
    assert [(r["point"], r["value"]) for r in rows] == [
        ("A", "0.50"),
        ("A", "1.50"),
        ("B", "0.50"),
        ("B", "1.50"),
    ]


def test_export_of_nothing_is_an_empty_file_with_a_header(sqlite_url: str, tmp_path: Path) -> None:
    import asyncio

    async def go() -> None:
        async with await Store.open(sqlite_url) as store:
            for suffix in (".csv", ".jsonl", ".parquet"):
                assert await export_store(store, tmp_path / f"x{suffix}", start=0, end=1) == 0

    asyncio.run(go())
    assert (tmp_path / "x.csv").read_text() == ",".join(columns("readings")) + "\n"
    assert (tmp_path / "x.jsonl").read_text() == ""
    assert pq.read_table(tmp_path / "x.parquet").column_names == columns("readings")


async def test_bad_format_or_table_is_refused(sqlite_url: str, tmp_path: Path) -> None:
    async with await Store.open(sqlite_url) as store:
        with pytest.raises(ValueError, match="suffix"):
            await export_store(store, tmp_path / "x.xlsx", start=0, end=1)
        with pytest.raises(ValueError, match="unknown export format"):
            await export_store(store, tmp_path / "x", start=0, end=1, fmt="xml")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="cannot export 'meters'"):
            await store.run_in_reader(
                lambda c: export(c, tmp_path / "x.csv", start=0, end=1, what="meters")  # type: ignore[arg-type]
            )
    assert not list(tmp_path.glob("x*"))
