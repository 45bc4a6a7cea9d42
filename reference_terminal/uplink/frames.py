"""What a frame reports, built from the store: real-time (2011), minute (2051), hourly (2061),
daily (2031) and monthly data, with data flags (HJ 212-2017 表 8).

A :class:`Frame` is protocol-neutral — command code, DataTime and one :class:`Item` per data item
code — so the outbox stores it once and each client renders it: HJ 212 CP (:meth:`Frame.cp`) or
the HTTPS JSON body (:meth:`Frame.json_body`).

Where the figures come from (``reference_terminal/app.py:window_rows``): processing writes each
closed window's main figure as ``minute``/``hour``/``day``/``month`` (a counter's increment, a
gauge's mean), which the store shows with ``<period>_min``/``<period>_max`` beside it (its
figures; ``storage/schema.py``, "windows"). A counter's main figure goes
out as ``Cou`` (the period's total), a gauge's as ``Avg``; real-time data is the latest reading
as ``Rtd``. DataTime is the period's start in plant-local time (HJ 212-2017 表 4).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import orjson

from protocols.hj212 import Command, Cp, DataFlag, Pollutant
from protocols.hj212.cp import FIELD_ORDER, NUMERIC_FIELDS
from protocols.hj212.record_signature import SIGN_FIELD, with_signature
from reference_terminal.model import Quality, Reading
from reference_terminal.storage.schema import Derived, as_shown


class Stream(StrEnum):
    REALTIME = "realtime"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


#: HJ 212-2017 表 9 command of each stream (monthly has none; the centre configures one).
STREAM_CN: dict[Stream, int] = {
    Stream.REALTIME: Command.REALTIME_DATA,
    Stream.MINUTE: Command.MINUTE_DATA,
    Stream.HOUR: Command.HOUR_DATA,
    Stream.DAY: Command.DAY_DATA,
}

#: Derived kinds a stream's frame is made of: the main figure, then min and max.
STREAM_KINDS: dict[Stream, tuple[str, str, str]] = {
    s: (s.value, f"{s.value}_min", f"{s.value}_max")
    for s in (Stream.MINUTE, Stream.HOUR, Stream.DAY, Stream.MONTH)
}

#: A value's quality as the HJ 212 data flag (表 8); see ``reference_terminal.model.Quality``.
#: A suspect value (over twice its history, CSMT §8.1.2) is flagged like one over its range.
DEFAULT_FLAGS: Mapping[Quality, str] = MappingProxyType(
    {
        Quality.GOOD: DataFlag.NORMAL,
        Quality.BACKUP: DataFlag.NORMAL,
        Quality.MANUAL: DataFlag.MANUAL,
        Quality.INTERPOLATED: DataFlag.FAULT,
        Quality.OUT_OF_RANGE: DataFlag.OVER_RANGE,
        Quality.SUSPECT: DataFlag.OVER_RANGE,
        Quality.COMM_FAULT: DataFlag.COMMUNICATION_FAULT,
    }
)


class FrameError(ValueError):
    """A stored frame that cannot be read back (the outbox row is damaged)."""


@dataclass(frozen=True, slots=True)
class Item:
    """One data item of a frame: its code, its figures (``Rtd``, ``Avg``/``Cou``, ``Min``,
    ``Max``; the first is the main one) and its data flag. No figures: a flag-only item (a
    period without a usable value still reports why)."""

    code: str
    values: tuple[tuple[str, Decimal], ...]
    flag: str

    @property
    def value(self) -> Decimal | None:
        return self.values[0][1] if self.values else None


@dataclass(frozen=True, slots=True)
class Frame:
    cn: int
    data_time: float  # POSIX seconds: the period's start (real-time: the sampling instant)
    items: tuple[Item, ...]
    #: ``SM2Sign`` (128 hex digits) made when the frame was built (``uplink/signing.py``), so a
    #: record is signed once and its resends carry the same signature; "": unsigned.
    signature: str = ""
    #: :meth:`cp` already made, by UTC offset: every centre is sent the same frame (one
    #: object, :meth:`from_row`), and rendering it was a fifth of a backlog's drain.
    _cps: dict[int, Cp] = field(default_factory=dict, init=False, repr=False, compare=False)

    # ---- HJ 212 ------------------------------------------------------------------------
    def cp(self, utc_offset_s: int) -> Cp:
        """The frame's CP: what ``Cp.build`` makes of its DataTime and one ``Pollutant`` per
        item, made as text with its typed view beside it (a drain renders every frame it
        sends: parsing the text back cost as much again as building it)."""
        made = self._cps.get(utc_offset_s)
        if made is None:
            cp = self._cp_plain(utc_offset_s) or self._cp_built(utc_offset_s)
            made = self._cps[utc_offset_s] = (
                with_signature(cp, self.signature) if self.signature else cp
            )
        return made

    def _cp_built(self, utc_offset_s: int) -> Cp:
        pollutants = [Pollutant(i.code, dict(i.values), i.flag) for i in self.items]
        return Cp.build(data_time=local_time(self.data_time, utc_offset_s), pollutants=pollutants)

    def _cp_plain(self, utc_offset_s: int) -> Cp | None:
        """CP as ``Cp.build`` renders it (fields in ``FIELD_ORDER``, numbers as
        ``format(value, "f")``), typed as parsing it would (the items' own decimals, equal to
        the parsed ones; the pollutants made when first looked at); None when an item is out
        of the ordinary (a non-finite value, a code, field name or flag that is not a plain
        one): ``Cp.build`` then says what is wrong."""
        data_time = local_time(self.data_time, utc_offset_s).strftime("%Y%m%d%H%M%S")
        groups = ["DataTime=" + data_time]
        add = groups.append
        codes: set[str] = set()
        orders = _FIELD_ORDERS
        for item in self.items:
            code, values, flag = item.code, item.values, item.flag
            if flag not in _PLAIN_FLAGS or not _PLAIN_CODE.fullmatch(code):
                return None
            names = tuple([name for name, _ in values])
            order = orders.get(names)
            if order is None:
                order = _field_order(names)
                if order is None:
                    return None
            fields = []
            for at in order:
                name, value = values[at]
                if type(value) is not Decimal or not value.is_finite():
                    return None
                fields.append(f"{code}-{name}={value:f}")
            fields.append(f"{code}-Flag={flag}")
            add(",".join(fields))
            codes.add(code)
        text = ";".join(groups)
        if len(codes) < len(self.items):  # a code twice: the parser's view (or error)
            return Cp.parse(text)
        items = self.items
        return Cp.deferred(
            text,
            {"DataTime": data_time},
            lambda: {i.code: Pollutant(i.code, dict(i.values), i.flag) for i in items},
        )

    # ---- HTTPS -------------------------------------------------------------------------
    def json_body(self, qn: str, mn: str, pw: str, st: str, utc_offset_s: int) -> dict[str, Any]:
        """The HTTPS centre's body (mirrors the bench's ``simulators/platform/https_schema.py``):
        ``{"QN", "MN", "PW", "ST", "CN", "DataTime", "values": [{"code", "value", "flag",
        "min", "max", "cou"}]}``, numbers as exact decimal text. ``value`` is the main figure
        (``Rtd``, ``Avg``; a counter's total, also given as ``cou``). Items without a value
        (flag only) have no JSON form there and are left out."""
        values = []
        for item in self.items:
            if item.value is None:
                continue
            body: dict[str, Any] = {"code": item.code, "value": format(item.value, "f")}
            body["flag"] = item.flag
            for name, value in item.values:
                if name in ("Min", "Max", "Cou"):
                    body[name.lower()] = format(value, "f")
            values.append(body)
        return {
            "QN": qn,
            "MN": mn,
            "PW": pw,
            "ST": st,
            "CN": self.cn,
            "DataTime": local_time(self.data_time, utc_offset_s).strftime("%Y%m%d%H%M%S"),
            "values": values,
        }

    # ---- the outbox's row ----------------------------------------------------------------
    def payload(self) -> str:
        """The items as JSON (a list); a signed frame's as ``{"items": […], "SM2Sign": …}``."""
        items = [[i.code, [[n, str(v)] for n, v in i.values], i.flag] for i in self.items]
        document: Any = {"items": items, SIGN_FIELD: self.signature} if self.signature else items
        # orjson: json.dumps(separators=(",", ":"), ensure_ascii=False)'s text, in a fraction
        # of the time (a fifth of the writer's scan of a closed minute went to json.dumps)
        return orjson.dumps(document).decode()

    @classmethod
    def from_row(cls, cn: int, data_time: float, payload: str) -> Frame:
        """The frame an outbox row holds. Every centre's outbox holds the same frames and a
        drain reads them at about the same time: the same row gives the same (immutable)
        object, whose CP is then made once."""
        return _from_row(cn, data_time, payload)

    @classmethod
    def _read(cls, cn: int, data_time: float, payload: str) -> Frame:
        try:
            document = orjson.loads(payload)
            signature = ""
            if isinstance(document, dict):
                document, signature = document["items"], str(document[SIGN_FIELD])
            items = tuple(
                [
                    Item(code, tuple([(n, Decimal(v)) for n, v in values]), flag)
                    for code, values, flag in document
                ]
            )
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            raise FrameError(f"outbox frame CN {cn} at {data_time}: unreadable ({exc})") from None
        return cls(cn, data_time, items, signature)


@functools.lru_cache(maxsize=1024)
def _from_row(cn: int, data_time: float, payload: str) -> Frame:
    return Frame._read(cn, data_time, payload)


#: The order ``Pollutant.items`` gives the fields of each tuple of field names seen.
_FIELD_ORDERS: dict[tuple[str, ...], tuple[int, ...]] = {}
#: Flags that render as they are (every data flag of 表 8); any other goes through Cp.build.
_PLAIN_FLAGS = frozenset(f.value for f in DataFlag)
#: Codes that render as they are (no CP separator, no space); any other goes through Cp.build.
_PLAIN_CODE = re.compile(r"[0-9A-Za-z_.]+")


def _field_order(names: tuple[str, ...]) -> tuple[int, ...] | None:
    """Where ``Pollutant.items`` puts fields ``names``; None unless they are distinct numeric
    fields of ``FIELD_ORDER`` (anything else is rare: it takes Cp.build's own path)."""
    if len(set(names)) != len(names) or not all(
        n in FIELD_ORDER and n in NUMERIC_FIELDS for n in names
    ):
        return None
    order = tuple(sorted(range(len(names)), key=lambda i: FIELD_ORDER.index(names[i])))
    if len(_FIELD_ORDERS) < 64:
        _FIELD_ORDERS[names] = order
    return order


def local_time(t: float, utc_offset_s: int) -> datetime:
    """POSIX seconds as the plant-local naive time HJ 212 carries (DataTime, QN)."""
    return datetime.fromtimestamp(t + utc_offset_s, UTC).replace(tzinfo=None)


def posix_time(local: datetime, utc_offset_s: int) -> float:
    """A plant-local naive time (BeginTime, SystemTime) as POSIX seconds."""
    return local.replace(tzinfo=UTC).timestamp() - utc_offset_s


@dataclass(frozen=True, slots=True)
class Coding:
    """How a centre files values: point → code, which points are counters, flag per quality."""

    codes: Mapping[str, str]
    counters: frozenset[str]
    flags: Mapping[Quality, str] = field(default_factory=lambda: DEFAULT_FLAGS)

    def flag(self, quality: Quality) -> str:
        return data_flag(quality, self.flags)


def data_flag(quality: Quality, flags: Mapping[Quality, str] = DEFAULT_FLAGS) -> str:
    """The HJ 212 data flag a value of ``quality`` goes up with."""
    return flags.get(quality, DataFlag.FAULT)


def realtime_frame(latest: Iterable[Reading], t: float, coding: Coding) -> Frame | None:
    """CN 2011 at ``t`` from each point's latest reading; None when no coded point has one."""
    items = []
    for r in sorted(latest, key=lambda r: coding.codes.get(r.point, "")):
        code = coding.codes.get(r.point)
        if code is None:
            continue
        values = () if r.value is None else (("Rtd", r.value),)
        items.append(Item(code, values, coding.flag(r.quality)))
    if not items:
        return None
    return Frame(STREAM_CN[Stream.REALTIME], t, tuple(items))


def period_frames(rows: Iterable[Derived], stream: Stream, cn: int, coding: Coding) -> list[Frame]:
    """One frame per period start from derived rows of ``stream``'s kinds (rows of other
    kinds and of points without a code are left out), oldest period first."""
    return stored_period_frames(
        (
            (v.point, v.kind, v.start, v.value, v.quality)
            for d in rows
            for v in (as_shown(d) if d.figures is not None else (d,))
        ),
        stream,
        cn,
        coding,
    )


#: A derived value as a frame needs it: point, kind, period start, value (a Decimal, or its
#: text as stored; None: no value) and quality (a ``Quality`` or its text).
StoredValue = tuple[str, str, float, Decimal | str | None, str]


def stored_period_frames(
    rows: Iterable[StoredValue], stream: Stream, cn: int, coding: Coding
) -> list[Frame]:
    """:func:`period_frames` of values as the store gives them (no ``Derived`` made)."""
    main_kind, min_kind, max_kind = STREAM_KINDS[stream]
    kinds = (main_kind, min_kind, max_kind)
    codes = coding.codes
    periods: dict[float, dict[str, dict[str, StoredValue]]] = {}
    for row in rows:
        point, kind, start = row[0], row[1], row[2]
        if point in codes and kind in kinds:
            by_point = periods.get(start)
            if by_point is None:
                by_point = periods[start] = {}
            of_point = by_point.get(point)
            if of_point is None:
                by_point[point] = {kind: row}
            else:
                of_point[kind] = row
    if not periods:
        return []
    flags = {q.value: coding.flag(q) for q in Quality}
    counters = coding.counters
    frames = []
    for start in sorted(periods):
        items = []
        by_point = periods[start]
        for point in sorted(by_point, key=codes.__getitem__):
            of_point = by_point[point]
            main = of_point.get(main_kind)
            if main is None:
                continue  # min/max without the main figure: the main row comes in a later scan
            values: list[tuple[str, Decimal]] = []
            if main[3] is not None:
                values.append(("Cou" if point in counters else "Avg", Decimal(main[3])))
                for name, kind in (("Min", min_kind), ("Max", max_kind)):
                    extreme = of_point.get(kind)
                    if extreme is not None and extreme[3] is not None:
                        values.append((name, Decimal(extreme[3])))
            items.append(Item(codes[point], tuple(values), flags[main[4]]))
        if items:
            frames.append(Frame(cn, start, tuple(items)))
    return frames


def frames_size(frames: Sequence[Frame]) -> int:
    """Items in ``frames`` (for logs and the benchmark)."""
    return sum(len(f.items) for f in frames)
