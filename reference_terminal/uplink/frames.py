"""What a frame reports, built from the store: real-time (2011), minute (2051), hourly (2061),
daily (2031) and monthly data, with data flags (HJ 212-2017 表 8).

A :class:`Frame` is protocol-neutral — command code, DataTime and one :class:`Item` per data item
code — so the outbox stores it once and each client renders it: HJ 212 CP (:meth:`Frame.cp`) or
the HTTPS JSON body (:meth:`Frame.json_body`).

Where the figures come from (``reference_terminal/app.py:derived_rows``): processing writes each
closed window as one-value rows ``minute``/``hour``/``day``/``month`` (a counter's increment, a
gauge's mean) with ``<period>_min``/``<period>_max`` beside them. A counter's main figure goes
out as ``Cou`` (the period's total), a gauge's as ``Avg``; real-time data is the latest reading
as ``Rtd``. DataTime is the period's start in plant-local time (HJ 212-2017 表 4).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from protocols.hj212 import Command, Cp, DataFlag, Pollutant
from protocols.hj212.record_signature import SIGN_FIELD, with_signature
from reference_terminal.model import Quality, Reading
from reference_terminal.storage.schema import Derived


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

    # ---- HJ 212 ------------------------------------------------------------------------
    def cp(self, utc_offset_s: int) -> Cp:
        pollutants = [Pollutant(i.code, dict(i.values), i.flag) for i in self.items]
        cp = Cp.build(data_time=local_time(self.data_time, utc_offset_s), pollutants=pollutants)
        return with_signature(cp, self.signature) if self.signature else cp

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
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_row(cls, cn: int, data_time: float, payload: str) -> Frame:
        try:
            document = json.loads(payload)
            signature = ""
            if isinstance(document, dict):
                document, signature = document["items"], str(document[SIGN_FIELD])
            items = tuple(
                Item(code, tuple((n, Decimal(v)) for n, v in values), flag)
                for code, values, flag in document
            )
        except (ValueError, TypeError, KeyError, ArithmeticError) as exc:
            raise FrameError(f"outbox frame CN {cn} at {data_time}: unreadable ({exc})") from None
        return cls(cn, data_time, items, signature)


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
        return self.flags.get(quality, DataFlag.FAULT)


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
    main_kind, min_kind, max_kind = STREAM_KINDS[stream]
    periods: dict[float, dict[str, dict[str, Derived]]] = {}
    for row in rows:
        if row.point in coding.codes and row.kind in (main_kind, min_kind, max_kind):
            periods.setdefault(row.start, {}).setdefault(row.point, {})[row.kind] = row
    frames = []
    for start in sorted(periods):
        items = []
        by_point = periods[start]
        for point in sorted(by_point, key=lambda p: coding.codes[p]):
            kinds = by_point[point]
            main = kinds.get(main_kind)
            if main is None:
                continue  # min/max without the main figure: the main row comes in a later scan
            items.append(_item(coding, point, main, kinds.get(min_kind), kinds.get(max_kind)))
        if items:
            frames.append(Frame(cn, start, tuple(items)))
    return frames


def _item(
    coding: Coding, point: str, main: Derived, low: Derived | None, high: Derived | None
) -> Item:
    values: list[tuple[str, Decimal]] = []
    if main.value is not None:
        values.append(("Cou" if point in coding.counters else "Avg", main.value))
        for name, row in (("Min", low), ("Max", high)):
            if row is not None and row.value is not None:
                values.append((name, row.value))
    return Item(coding.codes[point], tuple(values), coding.flag(main.quality))


def frames_size(frames: Sequence[Frame]) -> int:
    """Items in ``frames`` (for logs and the benchmark)."""
    return sum(len(f.items) for f in frames)
