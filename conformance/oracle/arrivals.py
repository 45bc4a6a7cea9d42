"""What a centre received, judged against the minute windows the oracle owes it.

The set check of ``simulators.platform`` (lost, unexpected, duplicated, conflicting, out of
order) runs on arrival alone; the figures are judged here, with the oracle's slack and bounds:

- an owed window must arrive with its main figure (Cou for a counter, Avg for a gauge): a
  window that arrives with a flag and no value where the meter surely answered is wrong;
- with ``figures``, also its Min, Max and flag N (CSMT §8.2.1);
- a window the oracle does not owe may still arrive when it is excused, when it carries no
  value (a terminal saying "no data, flag B" for a minute its meter was silent is right), or
  when its flag says it was not measured (an interpolated fill, flag D, CSMT §12.4: judged by
  the processing suite); a window passed off as measured (flag N) that no meter gave is
  unexpected.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation

from conformance.data_time import local
from conformance.oracle.minutes import OwedWindow, PointWindows
from simulators.platform import CheckResult, Expected, ReadingKey, ReadingRow, check
from simulators.platform.checker import WrongValue

MINUTE_DATA = 2051
#: Flags of a value measured by a meter (HJ 212-2017 N; a frame without a flag says nothing
#: else either).
MEASURED = frozenset({"N", None})


@dataclasses.dataclass(frozen=True, slots=True)
class Owed:
    """What one terminal owes one centre over a range: per item code, its windows and the field
    its main figure travels in (``Cou`` or ``Avg``)."""

    mn: str
    points: Mapping[str, PointWindows]
    fields: Mapping[str, str]

    def expected(self) -> list[Expected]:
        """Every owed window as the set check takes it (arrival only)."""
        return [
            Expected(self.mn, MINUTE_DATA, local(w), code, None)
            for code, windows in self.points.items()
            for w in sorted(windows.owed)
        ]

    @property
    def windows(self) -> int:
        return sum(len(p.owed) for p in self.points.values())

    @property
    def excused(self) -> int:
        return sum(len(p.excused) for p in self.points.values())

    def unpolled(self) -> list[ReadingKey]:
        """Windows the terminal never asked the meter for within its declared period."""
        return sorted(
            ReadingKey(self.mn, MINUTE_DATA, code, local(w))
            for code, windows in self.points.items()
            for w in windows.unpolled
        )

    def as_json(self) -> dict[str, object]:
        """Evidence: per item code, the windows owed (with their figures), excused and never
        measured, as DataTimes."""

        def when(w: float) -> str:
            return f"{local(w):%Y-%m-%d %H:%M}"

        return {
            "mn": self.mn,
            "points": {
                code: {
                    "field": self.fields[code],
                    "owed": {
                        when(w): [str(o.value), str(o.low), str(o.high)]
                        + (["bounded"] if o.bounded else [])
                        for w, o in sorted(p.owed.items())
                    },
                    "excused": [when(w) for w in sorted(p.excused)],
                    "unpolled": [when(w) for w in sorted(p.unpolled)],
                }
                for code, p in self.points.items()
            },
        }

    def summary(self) -> str:
        unpolled = self.unpolled()
        text = f"owed {self.windows} windows, {self.excused} excused"
        if unpolled:
            text += f", {len(unpolled)} never measured (the meter was not asked), first " + (
                ", ".join(map(str, unpolled[:3]))
            )
        return text

    def keys(self) -> set[ReadingKey]:
        return {e.key for e in self.expected()}


def judge(owed: Owed, rows: Sequence[ReadingRow], *, figures: bool = False) -> CheckResult:
    """The check of ``rows`` (every copy of the terminal's minute data at one centre in the
    range) against ``owed``."""
    judged = [r for r in rows if r.code in owed.points]
    base = check(owed.expected(), judged)
    first: dict[ReadingKey, ReadingRow] = {}
    valued: set[ReadingKey] = set()
    for r in sorted(judged, key=lambda r: r.frame_id):
        key = ReadingKey(r.mn, r.cn, r.code, r.data_time)
        first.setdefault(key, r)
        if r.value is not None and r.flag in MEASURED:
            valued.add(key)
    excused = {
        ReadingKey(owed.mn, MINUTE_DATA, code, local(w))
        for code, windows in owed.points.items()
        for w in windows.excused
    }
    unexpected = tuple(k for k in base.unexpected if k in valued and k not in excused)
    wrong: list[WrongValue] = []
    for code, windows in owed.points.items():
        for w, window in windows.owed.items():
            key = ReadingKey(owed.mn, MINUTE_DATA, code, local(w))
            row = first.get(key)
            if row is not None:
                wrong += _wrong(key, row, window, owed.fields[code], figures=figures)
    # a window the terminal never measured is lost whatever it sent for it
    lost = tuple(sorted({*base.lost, *owed.unpolled()}))
    unexpected = tuple(k for k in unexpected if k not in lost)
    return dataclasses.replace(base, lost=lost, unexpected=unexpected, wrong_value=tuple(wrong))


def _wrong(
    key: ReadingKey, row: ReadingRow, window: OwedWindow, field: str, *, figures: bool
) -> list[WrongValue]:
    out = []
    value = _number(row.fields.get(field))
    if not _within(value, window.value, window):
        out.append(WrongValue(key, window.value, value))
    if not figures:
        return out
    for name, want in (("Min", window.low), ("Max", window.high)):
        got = _number(row.fields.get(name))
        ok = got is not None and window.low <= got <= window.high if window.bounded else got == want
        if not ok:
            out.append(WrongValue(key, want, got, name))
    if row.flag != "N":
        out.append(WrongValue(key, "N", row.flag, "Flag"))
    return out


def _within(got: Decimal | None, want: Decimal, window: OwedWindow) -> bool:
    if got is None:
        return False
    if window.bounded:
        return window.low <= got <= window.high
    return abs(got - want) <= window.slack


def _number(text: str | None) -> Decimal | None:
    if text is None:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None
