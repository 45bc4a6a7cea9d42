"""Did every expected reading arrive exactly once? A set checker in Jepsen's spirit.

Given what the plant produced (the expected readings: MN, CN, DataTime, code and value) and
what a centre received (every copy, from :meth:`Record.readings`), :func:`check` reports

* ``lost``: expected but never received (expected − received);
* ``unexpected``: received but never expected (received − expected);
* ``wrong_value``: received with a value other than the expected one (first copy compared);
* ``duplicated``: received more than once, split into ``resends`` (extra copies carrying a QN
  already seen: a retry after a missing or late 9014, which a platform de-duplicates by QN) and
  ``new_qn_copies`` (copies under new QNs: the terminal sent the reading again as new data,
  which only the (MN, CN, DataTime, code) key reveals; after a crash the issue allows these
  only for frames never acknowledged);
* ``conflicting``: copies that disagree on the value;
* ``out_of_order``: readings whose first copy arrived after a reading of the same stream
  (centre, MN, CN, code) with a later DataTime — backfill must go oldest-first;
* ``gaps``: runs of consecutive lost DataTimes per stream (what an operator would see as a hole).

A reading is keyed by (MN, CN, DataTime, code); readings of different centres are checked
separately (call once per centre).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from simulators.platform.record import ReadingRow


class ReadingKey(NamedTuple):
    """A tuple, so hashing and comparing are the interpreter's own: a 48-hour scenario checks
    over a million of them (a frozen dataclass's generated ``__hash__`` took a quarter of it)."""

    mn: str
    cn: int
    code: str
    data_time: datetime

    def __str__(self) -> str:
        return f"{self.mn} CN={self.cn} {self.code} @ {self.data_time:%Y-%m-%d %H:%M:%S}"


@dataclass(frozen=True, slots=True)
class Expected:
    """A reading the terminal should deliver. ``value`` None: only its arrival is checked.
    ``field`` names the field to compare (``Avg``, ``Cou`` …); None compares the recorded
    ``value`` (Rtd, else Avg, else Cou)."""

    mn: str
    cn: int
    data_time: datetime
    code: str
    value: Decimal | None = None
    field: str | None = None

    @property
    def key(self) -> ReadingKey:
        return ReadingKey(self.mn, self.cn, self.code, self.data_time)


@dataclass(frozen=True, slots=True)
class Duplicate:
    key: ReadingKey
    copies: int
    qns: tuple[str, ...]  # distinct QNs, in arrival order

    @property
    def resends(self) -> int:
        """Extra copies under a QN already received (retries of the same frame)."""
        return self.copies - len(self.qns)

    @property
    def new_qn_copies(self) -> int:
        """Copies under a new QN: the same reading sent again as new data."""
        return len(self.qns) - 1


@dataclass(frozen=True, slots=True)
class WrongValue:
    key: ReadingKey
    expected: Decimal
    received: Decimal | None


@dataclass(frozen=True, slots=True)
class Conflict:
    key: ReadingKey
    values: tuple[Decimal | None, ...]


@dataclass(frozen=True, slots=True)
class OutOfOrder:
    key: ReadingKey
    after: datetime  # the later DataTime of the same stream that arrived first


@dataclass(frozen=True, slots=True)
class Gap:
    mn: str
    cn: int
    code: str
    first: datetime
    last: datetime
    count: int

    def __str__(self) -> str:
        return (
            f"{self.mn} CN={self.cn} {self.code}: {self.count} missing from "
            f"{self.first:%Y-%m-%d %H:%M:%S} to {self.last:%Y-%m-%d %H:%M:%S}"
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    expected: int
    received: int  # copies, duplicates included
    distinct: int  # distinct keys received
    lost: tuple[ReadingKey, ...] = ()
    unexpected: tuple[ReadingKey, ...] = ()
    wrong_value: tuple[WrongValue, ...] = ()
    duplicated: tuple[Duplicate, ...] = ()
    conflicting: tuple[Conflict, ...] = ()
    out_of_order: tuple[OutOfOrder, ...] = ()
    gaps: tuple[Gap, ...] = field(default=())

    @property
    def resends(self) -> int:
        return sum(d.resends for d in self.duplicated)

    @property
    def new_qn_copies(self) -> int:
        return sum(d.new_qn_copies for d in self.duplicated)

    @property
    def complete(self) -> bool:
        """Every expected reading arrived, with its value, and nothing else did."""
        return not (self.lost or self.unexpected or self.wrong_value or self.conflicting)

    @property
    def exactly_once(self) -> bool:
        """Complete, and no reading sent twice under different QNs (resends of one QN are
        the protocol working: a platform de-duplicates them by QN)."""
        return self.complete and self.new_qn_copies == 0

    def summary(self) -> str:
        parts = [
            f"{self.expected} expected, {self.distinct} distinct received ({self.received} copies)",
            f"{len(self.lost)} lost",
            f"{len(self.unexpected)} unexpected",
            f"{len(self.wrong_value)} wrong value",
            f"{len(self.duplicated)} duplicated ({self.resends} resends, "
            f"{self.new_qn_copies} under new QNs)",
            f"{len(self.conflicting)} conflicting",
            f"{len(self.out_of_order)} out of order",
            f"{len(self.gaps)} gaps",
        ]
        lines = [", ".join(parts)]
        lines += [f"  gap: {gap}" for gap in self.gaps[:10]]
        lines += [f"  lost: {key}" for key in self.lost[:10]]
        lines += [f"  unexpected: {key}" for key in self.unexpected[:10]]
        lines += [
            f"  wrong value: {w.key}: expected {w.expected}, got {w.received}"
            for w in self.wrong_value[:10]
        ]
        return "\n".join(lines)


def check(expected: Iterable[Expected], received: Sequence[ReadingRow]) -> CheckResult:
    """Compare expected readings with every copy received (in arrival order)."""
    wanted: dict[ReadingKey, Expected] = {}
    for item in expected:
        wanted.setdefault(item.key, item)
    copies: dict[ReadingKey, list[ReadingRow]] = defaultdict(list)
    for row in sorted(received, key=lambda r: (r.frame_id, r.code)):
        copies[ReadingKey(row.mn, row.cn, row.code, row.data_time)].append(row)

    lost = sorted(k for k in wanted if k not in copies)
    unexpected = sorted(k for k in copies if k not in wanted)
    wrong: list[WrongValue] = []
    duplicated: list[Duplicate] = []
    conflicting: list[Conflict] = []
    for key, rows in copies.items():
        first = rows[0]
        want = wanted.get(key)
        if want is not None and want.value is not None:
            got = _field(first, want.field)
            if got is None or got != want.value:
                wrong.append(WrongValue(key, want.value, got))
        if len(rows) > 1:
            qns = tuple(dict.fromkeys(r.qn or "" for r in rows))
            duplicated.append(Duplicate(key, len(rows), qns))
            values = tuple(dict.fromkeys(r.value for r in rows))
            if len(values) > 1:
                conflicting.append(Conflict(key, values))
    return CheckResult(
        expected=len(wanted),
        received=sum(len(rows) for rows in copies.values()),
        distinct=len(copies),
        lost=tuple(lost),
        unexpected=tuple(unexpected),
        wrong_value=tuple(sorted(wrong, key=lambda w: w.key)),
        duplicated=tuple(sorted(duplicated, key=lambda d: d.key)),
        conflicting=tuple(sorted(conflicting, key=lambda c: c.key)),
        out_of_order=tuple(_out_of_order(copies)),
        gaps=tuple(_gaps(wanted, set(lost))),
    )


def _field(row: ReadingRow, name: str | None) -> Decimal | None:
    if name is None:
        return row.value
    text = row.fields.get(name)
    return None if text is None else Decimal(text)


def _out_of_order(copies: dict[ReadingKey, list[ReadingRow]]) -> list[OutOfOrder]:
    streams: dict[tuple[str, int, str], list[tuple[int, ReadingKey]]] = defaultdict(list)
    for key, rows in copies.items():
        streams[(key.mn, key.cn, key.code)].append((rows[0].frame_id, key))
    out: list[OutOfOrder] = []
    for arrivals in streams.values():
        latest: datetime | None = None
        for _, key in sorted(arrivals):
            if latest is not None and key.data_time < latest:
                out.append(OutOfOrder(key, latest))
            elif latest is None or key.data_time > latest:
                latest = key.data_time
    return sorted(out, key=lambda o: o.key)


def _gaps(wanted: dict[ReadingKey, Expected], lost: set[ReadingKey]) -> list[Gap]:
    """Runs of lost readings that are consecutive in each stream's expected sequence."""
    if not lost:
        return []
    streams: dict[tuple[str, int, str], list[ReadingKey]] = defaultdict(list)
    for key in wanted:
        streams[(key.mn, key.cn, key.code)].append(key)
    gaps: list[Gap] = []
    for (mn, cn, code), keys in sorted(streams.items()):
        run: list[ReadingKey] = []
        for key in sorted(keys):
            if key in lost:
                run.append(key)
                continue
            if run:
                gaps.append(Gap(mn, cn, code, run[0].data_time, run[-1].data_time, len(run)))
                run = []
        if run:
            gaps.append(Gap(mn, cn, code, run[0].data_time, run[-1].data_time, len(run)))
    return gaps
