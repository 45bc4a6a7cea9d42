"""Did every expected reading arrive exactly once? A set checker in Jepsen's spirit.

Given what the plant produced (the expected readings: MN, CN, DataTime, code and value) and
what a centre received (every copy, from :meth:`Record.readings`), :func:`check` reports

* ``lost``: expected but never received (expected − received);
* ``unexpected``: received but never expected (received − expected);
* ``wrong_value``: received with a value other than the expected one, or without or with
  another of the other fields expected (a minute window's Min, Max and Flag; first copy
  compared);
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

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from operator import itemgetter
from typing import Final, NamedTuple

from simulators.platform.record import (
    VALUE_FIELDS,
    Copy,
    CopyDetail,
    ReadingRow,
    Received,
    field_json,
    text_time,
    time_text,
)


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
    ``value`` (Rtd, else Avg, else Cou). ``others``: the other fields it must carry, by name
    (a minute window's ``Min`` and ``Max`` as numbers, its ``Flag`` as text)."""

    mn: str
    cn: int
    data_time: datetime
    code: str
    value: Decimal | None = None
    field: str | None = None
    others: tuple[tuple[str, Decimal | str], ...] = ()

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
    expected: Decimal | str  # text: a field that is not a number (a flag)
    received: Decimal | str | None
    field: str | None = None  # one of the others expected (None: the value)

    @property
    def what(self) -> str:
        """The reading, and the field unless it is the value."""
        return f"{self.key} {self.field}" if self.field else str(self.key)

    def __str__(self) -> str:
        return f"{self.what}: expected {self.expected}, got {self.received}"


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
    def wrong_readings(self) -> int:
        """Readings with a wrong value or field (``wrong_value`` has one entry per field)."""
        return len({w.key for w in self.wrong_value})

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
            f"{self.wrong_readings} with a wrong value ({len(self.wrong_value)} fields)",
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
        lines += [f"  wrong value: {w}" for w in self.wrong_value[:10]]
        return "\n".join(lines)


class Want(NamedTuple):
    """What an expected reading must carry: its value as text (None: only its arrival is
    checked), the field compared (None: the recorded ``value``) and the other fields it must
    carry, each as the record writes it (:func:`~.record.field_json`: ``"Min":"1.5"``). Text,
    because the same text is the same number and a million compared that way (a value, or an
    other field found in a copy's recorded fields) cost nothing; other texts are compared as
    the Decimals they are."""

    text: str | None
    field: str | None = None
    others: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExpectedSet:
    """Expected readings in bulk, as :func:`check` reads them: by (MN, CN), each reading's
    (item code, DataTime text (:func:`~.record.time_text`)) and what it must carry. A scenario
    builds one per centre around the same mapping of what the terminal owes."""

    groups: Mapping[tuple[str, int], Mapping[tuple[str, str], Want]]

    def __len__(self) -> int:
        return sum(len(wants) for wants in self.groups.values())

    @classmethod
    def of(cls, expected: Iterable[Expected]) -> ExpectedSet:
        """``expected`` in this form (of the same key, the first counts)."""
        groups: dict[tuple[str, int], dict[tuple[str, str], Want]] = {}
        for item in expected:
            wants = groups.setdefault((item.mn, item.cn), {})
            # str gives back the very Decimal: a report shows what was expected, as it was
            text = None if item.value is None else str(item.value)
            others = tuple(field_json(name, str(value)) for name, value in item.others)
            wants.setdefault((item.code, time_text(item.data_time)), Want(text, item.field, others))
        return cls(groups)


def check(
    expected: Iterable[Expected] | ExpectedSet, received: Sequence[ReadingRow] | Received
) -> CheckResult:
    """Compare expected readings with every copy received (``Record.readings`` or, for a
    long run's million, ``Record.copies``)."""
    wanted = expected if isinstance(expected, ExpectedSet) else ExpectedSet.of(expected)
    got = received if isinstance(received, Received) else Received.of(received)
    found = _Found()
    for group in sorted(set(wanted.groups) | set(got.groups)):
        copies = got.groups.get(group, ())
        _check_group(group, wanted.groups.get(group, {}), _keyed(copies), got.details, found)
        found.received += len(copies)
    return CheckResult(
        expected=len(wanted),
        received=found.received,
        distinct=found.distinct,
        lost=tuple(found.lost),
        unexpected=tuple(found.unexpected),
        wrong_value=tuple(found.wrong_value),
        duplicated=tuple(found.duplicated),
        conflicting=tuple(found.conflicting),
        out_of_order=tuple(found.out_of_order),
        gaps=tuple(found.gaps),
    )


@dataclass
class _Found:
    """What :func:`check` finds, group after group (in key order, so each list is sorted)."""

    received: int = 0
    distinct: int = 0
    lost: list[ReadingKey] = field(default_factory=list)
    unexpected: list[ReadingKey] = field(default_factory=list)
    wrong_value: list[WrongValue] = field(default_factory=list)
    duplicated: list[Duplicate] = field(default_factory=list)
    conflicting: list[Conflict] = field(default_factory=list)
    out_of_order: list[OutOfOrder] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)


_Key = tuple[str, str]  # (item code, DataTime text) within a group
_FIELD_AT: Final = {name: i for i, name in enumerate(VALUE_FIELDS)}


def _check_group(
    group: tuple[str, int],
    wants: Mapping[_Key, Want],
    copies: Sequence[Copy],
    details: Callable[[Sequence[Copy]], list[CopyDetail]],
    found: _Found,
) -> None:
    """One (MN, CN)'s readings: ``copies`` in DataTime order. Everything a million readings
    pass through is a dictionary operation on tuples the database made; what needs more
    (values that differ as text, duplicates, streams out of order, gaps) is looked at after,
    on the few readings concerned."""
    mn, cn = group

    def key(k: _Key) -> ReadingKey:
        return ReadingKey(mn, cn, k[0], text_time(k[1]))

    # The first copy of each key (the earliest frame), and every copy of keys sent again.
    first: dict[_Key, Copy] = {}
    again: dict[_Key, list[Copy]] = {}
    for c in copies:
        k = c[:2]
        seen = first.setdefault(k, c)
        if seen is not c:
            more = again.get(k)
            if more is None:
                again[k] = [seen, c]
            else:
                more.append(c)
            if c[2] < seen[2]:
                first[k] = c
    found.distinct += len(first)

    unexpected: list[_Key] = []
    differ: list[tuple[_Key, Copy, Want]] = []
    others_differ: list[tuple[_Key, Copy, str]] = []
    want_of = wants.get
    for k, c in first.items():
        want = want_of(k)
        if want is None:
            unexpected.append(k)
            continue
        if want.text is not None and not (
            c[3] == want.text and (want.field is None or c[4] == _FIELD_AT.get(want.field))
        ):
            differ.append((k, c, want))
        for other in want.others:
            if other not in c[5]:
                others_differ.append((k, c, other))
    lost: list[_Key] = []
    if len(first) - len(unexpected) < len(wants):
        lost = sorted(k for k in wants if k not in first)
    found.lost += map(key, lost)
    found.unexpected += map(key, sorted(unexpected))
    wrong = [
        WrongValue(key(k), Decimal(want.text), got)
        for k, want, got in _compared(differ, details)
        if want.text is not None and (got is None or got != Decimal(want.text))
    ]
    wrong += [
        WrongValue(key(k), expected, got, name)
        for k, name, expected, got in _others_compared(others_differ)
    ]
    found.wrong_value += sorted(wrong, key=lambda w: (w.key, w.field or ""))
    for k in sorted(again):
        rows = sorted(again[k], key=lambda c: c[2])
        qns = tuple(dict.fromkeys(d.qn or "" for d in details(rows)))
        found.duplicated.append(Duplicate(key(k), len(rows), qns))
        values = tuple(dict.fromkeys(None if c[3] is None else Decimal(c[3]) for c in rows))
        if len(values) > 1:
            found.conflicting.append(Conflict(key(k), values))
    found.out_of_order += [
        OutOfOrder(key(k), text_time(after)) for k, after in sorted(_out_of_order(first))
    ]
    found.gaps += [Gap(mn, cn, *gap) for gap in _gaps(wants, lost)]


def arrived(received: Received, group: tuple[str, int]) -> set[tuple[str, str]]:
    """The (item code, DataTime text) of the readings of ``group`` (MN, CN) received: what a
    drain compares with the keys of an :class:`ExpectedSet` to see whether all have come."""
    return set(map(_KEY_OF, _keyed(received.groups.get(group, ()))))


#: A copy's (item code, DataTime text), picked in C: a drain's poll keys a million.
_KEY_OF: Final = itemgetter(0, 1)


def _keyed(copies: Sequence[Copy]) -> Sequence[Copy]:
    """``copies`` with each DataTime as the check keys it: the time it is, as
    :func:`~.record.time_text` writes it (a wire DataTime with milliseconds loses them, as
    its ``data_time`` in ``Record.readings`` does), still in DataTime order."""
    texts = {c[1] for c in copies}
    odd = {t: keyed for t in texts if (keyed := time_text(text_time(t))) != t}
    if not odd:
        return copies
    rekeyed = [(c[0], odd.get(c[1], c[1]), *c[2:]) for c in copies]
    return sorted(rekeyed, key=lambda c: c[1])


def _compared(
    differ: list[tuple[_Key, Copy, Want]],
    details: Callable[[Sequence[Copy]], list[CopyDetail]],
) -> list[tuple[_Key, Want, Decimal | None]]:
    """The value compared of each first copy whose text did not simply match: the recorded
    ``value``, or the field asked for (from its fields, when ``value`` is another)."""
    out: list[tuple[_Key, Want, Decimal | None]] = []
    other: list[tuple[_Key, Copy, Want]] = []
    for k, c, want in differ:
        if want.field is None or (c[4] is not None and VALUE_FIELDS[c[4]] == want.field):
            out.append((k, want, None if c[3] is None else Decimal(c[3])))
        else:
            other.append((k, c, want))
    for (k, _, want), detail in zip(other, details([c for _, c, _ in other]), strict=True):
        assert want.field is not None
        text = detail.fields.get(want.field)
        out.append((k, want, None if text is None else Decimal(text)))
    return sorted(out, key=lambda item: item[0])


def _others_compared(
    differ: list[tuple[_Key, Copy, str]],
) -> list[tuple[_Key, str, Decimal | str, Decimal | str | None]]:
    """Of the other fields whose text did not simply match, those that differ: as the numbers
    they are where a number is expected, else as text (a flag); None: missing."""
    out: list[tuple[_Key, str, Decimal | str, Decimal | str | None]] = []
    for k, c, other in differ:
        ((name, text),) = json.loads("{" + other + "}").items()
        got = json.loads(c[5]).get(name)
        expected = _number(text)
        if expected is None:
            if got != text:
                out.append((k, name, text, got))
            continue
        received = None if got is None else _number(got)
        if received != expected:
            out.append((k, name, expected, got if received is None else received))
    return out


def _number(text: str) -> Decimal | None:
    try:
        return Decimal(text)
    except (InvalidOperation, TypeError, ValueError):  # a JSON value other than a string
        return None


def _out_of_order(first: dict[_Key, Copy]) -> list[tuple[_Key, str]]:
    """Keys whose first copy arrived after that of a later DataTime of the same code, with
    the latest DataTime arrived before them. ``first`` is in DataTime order: going back
    through it, a key is out of order when a later one came in an earlier frame, which finds
    the codes concerned in one pass; only their arrivals are then sorted."""
    earliest: dict[str, int] = {}
    late: set[str] = set()
    for (code, _), c in reversed(first.items()):
        frame = earliest.get(code)
        if frame is None or c[2] < frame:
            earliest[code] = c[2]
        elif frame < c[2]:
            late.add(code)
    if not late:
        return []
    streams: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for (code, t), c in first.items():
        if code in late:
            streams[code].append((c[2], t))
    out: list[tuple[_Key, str]] = []
    for code, arrivals in streams.items():
        latest: str | None = None
        for _, t in sorted(arrivals):
            if latest is not None and t < latest:
                out.append(((code, t), latest))
            elif latest is None or t > latest:
                latest = t
    return out


def _gaps(
    wants: Mapping[_Key, Want], lost: list[_Key]
) -> list[tuple[str, datetime, datetime, int]]:
    """Runs of lost readings that are consecutive in each code's expected sequence:
    (code, first, last, count)."""
    if not lost:
        return []
    codes = {code for code, _ in lost}
    missing = set(lost)
    streams: dict[str, list[str]] = defaultdict(list)
    for code, t in wants:
        if code in codes:
            streams[code].append(t)
    gaps: list[tuple[str, datetime, datetime, int]] = []
    for code in sorted(streams):
        runs: list[list[str]] = [[]]
        for t in sorted(streams[code]):
            if (code, t) in missing:
                runs[-1].append(t)
            elif runs[-1]:
                runs.append([])
        gaps += [(code, text_time(r[0]), text_time(r[-1]), len(r)) for r in runs if r]
    return gaps
