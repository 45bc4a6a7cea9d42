"""What a frame reports, built from the store: real-time (2011), minute (2051), hourly (2061),
daily (2031) and monthly data, with data flags (HJ 212-2017 表 8).

A :class:`Frame` is protocol-neutral — command code, DataTime and one :class:`Item` per data item
code — so the outbox stores it once and each client renders it: HJ 212 CP (:meth:`Frame.cp`) or
the HTTPS JSON body (:meth:`Frame.json_body`). The outbox row of a plain frame is its CP groups
(:attr:`Frame.body`), which the HJ 212 client sends as they are.

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


class Frame:
    """One frame's content: command code, DataTime (POSIX seconds: the period's start; real-time:
    the sampling instant), one :class:`Item` per data item and, for a signed record, its
    ``SM2Sign`` (128 hex digits, made when the frame was built (``uplink/signing.py``), so that
    its resends carry the same signature; "": unsigned).

    The items are kept as given or as the CP text they render to (:attr:`body`, the groups
    after DataTime): a frame built from the store's text (:func:`stored_period_frames`) or read
    back from the outbox (:meth:`from_row`) goes on the wire without one figure being typed,
    and its items are read from that text only when something looks at them (an HTTPS body,
    signing). Typing a 48-hour backlog's frames back from JSON and rendering them again was a
    third of the terminal's work in the drain. Immutable: every centre is sent the same object.
    """

    __slots__ = ("_body", "_cn", "_cps", "_data_time", "_items", "_signature")

    def __init__(
        self, cn: int, data_time: float, items: tuple[Item, ...], signature: str = ""
    ) -> None:
        self._cn = cn
        self._data_time = data_time
        self._signature = signature
        self._items: tuple[Item, ...] | None = items
        self._body: str | _Unset | None = _UNSET
        #: :meth:`cp` already made, by UTC offset.
        self._cps: dict[int, Cp] = {}

    @classmethod
    def of_body(cls, cn: int, data_time: float, body: str, signature: str = "") -> Frame:
        """The frame whose items render as ``body`` (plain groups, as :attr:`body` is)."""
        frame = cls(cn, data_time, (), signature)
        frame._items, frame._body = None, body
        return frame

    @property
    def cn(self) -> int:
        return self._cn

    @property
    def data_time(self) -> float:
        return self._data_time

    @property
    def signature(self) -> str:
        return self._signature

    @property
    def items(self) -> tuple[Item, ...]:
        items = self._items
        if items is None:
            body = self._body
            assert isinstance(body, str)
            items = self._items = _items_of(body)
        return items

    @property
    def body(self) -> str | None:
        """The items as the CP groups ``Cp.build`` renders (fields in ``FIELD_ORDER``, numbers
        as ``format(value, "f")``), when reading that text back gives the very same items:
        plain codes and flags, no code twice, finite Decimals, and each item's figures in the
        order a text gives them back (its main one, then Min, then Max). None otherwise."""
        body = self._body
        if isinstance(body, _Unset):
            body = self._body = _plain_body(self.items)
        return body

    def with_signature(self, signature: str) -> Frame:
        """This frame signed with ``signature`` ("": unsigned)."""
        frame = Frame(self._cn, self._data_time, (), signature)
        frame._items, frame._body = self._items, self._body
        return frame

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Frame):
            return NotImplemented
        return (self._cn, self._data_time, self._signature) == (
            other._cn,
            other._data_time,
            other._signature,
        ) and (
            (self._body is other._body and self._items is None and other._items is None)
            or self.items == other.items
        )

    def __hash__(self) -> int:
        return hash((self._cn, self._data_time, self.items, self._signature))

    def __repr__(self) -> str:
        return (
            f"Frame(cn={self._cn!r}, data_time={self._data_time!r}, items={self.items!r}, "
            f"signature={self._signature!r})"
        )

    # ---- HJ 212 ------------------------------------------------------------------------
    def cp(self, utc_offset_s: int) -> Cp:
        """The frame's CP: what ``Cp.build`` makes of its DataTime and one ``Pollutant`` per
        item, made as text with its typed view beside it (a drain renders every frame it
        sends: parsing the text back cost as much again as building it)."""
        made = self._cps.get(utc_offset_s)
        if made is None:
            cp = self._cp_plain(utc_offset_s) or self._cp_built(utc_offset_s)
            made = self._cps[utc_offset_s] = (
                with_signature(cp, self._signature) if self._signature else cp
            )
        return made

    def _cp_built(self, utc_offset_s: int) -> Cp:
        pollutants = [Pollutant(i.code, dict(i.values), i.flag) for i in self.items]
        return Cp.build(data_time=local_time(self.data_time, utc_offset_s), pollutants=pollutants)

    def _cp_plain(self, utc_offset_s: int) -> Cp | None:
        """CP as ``Cp.build`` renders it, from :attr:`body`, typed as parsing it would (the
        items' own decimals, equal to the parsed ones; the pollutants made when first looked
        at); None without a plain body: ``Cp.build`` then renders it or says what is wrong."""
        body = self.body
        if body is None:
            return None
        data_time = local_time(self._data_time, utc_offset_s).strftime("%Y%m%d%H%M%S")
        text = f"DataTime={data_time};{body}" if body else "DataTime=" + data_time
        items = self._items  # not self: the frame keeps its CP, and a cycle waits for the GC

        def pollutants() -> dict[str, Pollutant]:
            typed = _items_of(body) if items is None else items
            return {i.code: Pollutant(i.code, dict(i.values), i.flag) for i in typed}

        return Cp.deferred(text, {"DataTime": data_time}, pollutants)

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
        """An unsigned frame with a plain :attr:`body`: that text. Otherwise the items as JSON
        (a list; a signed frame's as ``{"items": […], "SM2Sign": …}``), which no body starts
        as."""
        if not self._signature:
            body = self.body
            if body is not None:
                return body
        items = [[i.code, [[n, str(v)] for n, v in i.values], i.flag] for i in self.items]
        document: Any = {"items": items, SIGN_FIELD: self._signature} if self._signature else items
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
        if not payload.startswith(("[", "{")):
            if payload and _BODY_GROUPS.fullmatch(payload + ";") is None:
                raise FrameError(f"outbox frame CN {cn} at {data_time}: unreadable CP groups")
            return cls.of_body(cn, data_time, payload)
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


class _Unset:
    """:attr:`Frame.body` not worked out yet."""


_UNSET = _Unset()


@functools.lru_cache(maxsize=1024)
def _from_row(cn: int, data_time: float, payload: str) -> Frame:
    return Frame._read(cn, data_time, payload)


#: Where a figure goes in an item's values when read back from text: the main one first.
_RANK = {"Rtd": 0, "Avg": 0, "Cou": 0, "Min": 1, "Max": 2}
#: Field names, in their values' order, that reading the body back gives in that order.
_CANONICAL = frozenset(
    names
    for main in ((), ("Rtd",), ("Avg",), ("Cou",))
    for extremes in ((), ("Min",), ("Max",), ("Min", "Max"))
    for names in [(*main, *extremes)]
)
_PLAIN_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?")


def _plain_body(items: Sequence[Item]) -> str | None:
    """:attr:`Frame.body` of ``items``."""
    groups = []
    codes: set[str] = set()
    for item in items:
        code, values, flag = item.code, item.values, item.flag
        if flag not in _PLAIN_FLAGS or code in codes or not _PLAIN_CODE.fullmatch(code):
            return None
        if tuple([name for name, _ in values]) not in _CANONICAL:
            return None
        texts = []
        for name, value in values:
            if type(value) is not Decimal or not value.is_finite():
                return None
            texts.append((name, f"{value:f}"))
        groups.append(_group(code, texts, flag))
        codes.add(code)
    return ";".join(groups)


def _group(code: str, texts: Sequence[tuple[str, str]], flag: str) -> str:
    """One item's CP group as ``Cp.build`` renders it: its figures (name, number text) in
    ``FIELD_ORDER``, then its flag."""
    order = _FIELD_ORDERS.get(names := tuple([name for name, _ in texts])) or _field_order(names)
    assert order is not None  # distinct numeric fields: the callers' figures are
    fields = [f"{code}-{name}={text}" for name, text in map(texts.__getitem__, order)]
    fields.append(f"{code}-Flag={flag}")
    return ",".join(fields)


def _items_of(body: str) -> tuple[Item, ...]:
    """The items a plain body renders (:attr:`Frame.body`), each item's figures main first."""
    if not body:
        return ()
    items = []
    for group in body.split(";"):
        values = []
        code = flag = ""
        for field_text in group.split(","):
            key, _, text = field_text.partition("=")
            code, _, name = key.rpartition("-")
            if name == "Flag":
                flag = text
            else:
                values.append((name, Decimal(text)))
        values.sort(key=lambda v: _RANK[v[0]])
        items.append(Item(code, tuple(values), flag))
    return tuple(items)


#: The order ``Pollutant.items`` gives the fields of each tuple of field names seen.
_FIELD_ORDERS: dict[tuple[str, ...], tuple[int, ...]] = {}
#: Flags that render as they are (every data flag of 表 8); any other goes through Cp.build.
_PLAIN_FLAGS = frozenset(f.value for f in DataFlag)
#: Codes that render as they are (no CP separator, no space); any other goes through Cp.build.
_PLAIN_CODE = re.compile(r"[0-9A-Za-z_.]+")


def _body_groups() -> re.Pattern[str]:
    """Groups of a plain body, each followed by ";": its figures with one code, then its flag."""
    code, number, flag = r"[0-9A-Za-z_.]+", _PLAIN_NUMBER.pattern, "|".join(sorted(_PLAIN_FLAGS))
    figure = rf"-(?:Rtd|Avg|Cou|Min|Max)={number},"
    group = (
        rf"(?P<c>{code}){figure}(?:(?P=c){figure})*(?P=c)-Flag=(?:{flag})|{code}-Flag=(?:{flag})"
    )
    return re.compile(rf"(?:(?:{group});)*")


#: What an outbox row's body must be (a damaged row is a ``FrameError``, not a garbled CP).
_BODY_GROUPS = _body_groups()


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
    plain = _plain_coding(codes, flags)
    counters = coding.counters
    frames = []
    for start in sorted(periods):
        items: list[_StoredItem] = []
        by_point = periods[start]
        for point in sorted(by_point, key=codes.__getitem__):
            of_point = by_point[point]
            main = of_point.get(main_kind)
            if main is None:
                continue  # min/max without the main figure: the main row comes in a later scan
            values: list[tuple[str, Decimal | str]] = []
            if main[3] is not None:
                values.append(("Cou" if point in counters else "Avg", main[3]))
                for name, kind in (("Min", min_kind), ("Max", max_kind)):
                    extreme = of_point.get(kind)
                    if extreme is not None and extreme[3] is not None:
                        values.append((name, extreme[3]))
            items.append((codes[point], values, flags[main[4]]))
        if items:
            frames.append(_period_frame(cn, start, items, plain))
    return frames


#: An item as stored: code, figures (name, Decimal or its stored text), data flag.
_StoredItem = tuple[str, list[tuple[str, Decimal | str]], str]


def _plain_coding(codes: Mapping[str, str], flags: Mapping[str, str]) -> bool:
    """Whether every code and flag renders as it is, no code twice (a frame's groups can then
    be written straight from the store's text)."""
    return (
        len(set(codes.values())) == len(codes)
        and all(_PLAIN_CODE.fullmatch(c) for c in codes.values())
        and all(f in _PLAIN_FLAGS for f in flags.values())
    )


def _period_frame(cn: int, start: float, items: list[_StoredItem], plain: bool) -> Frame:
    """One period's frame: its body written from the stored text when the coding is
    ``plain`` and every figure a plain number (no figure typed: a scan builds a minute's
    frame for every centre), else its items typed."""
    if plain:
        groups = []
        for code, values, flag in items:
            texts = _number_texts(values)
            if texts is None:
                break
            groups.append(_group(code, texts, flag))
        else:
            return Frame.of_body(cn, start, ";".join(groups))
    typed = [
        Item(code, tuple([(name, Decimal(v)) for name, v in values]), flag)
        for code, values, flag in items
    ]
    return Frame(cn, start, tuple(typed))


def _number_texts(values: list[tuple[str, Decimal | str]]) -> list[tuple[str, str]] | None:
    """Figures with their numbers as ``format(Decimal(value), "f")`` writes them; None when
    one is not finite."""
    texts = []
    for name, given in values:
        if type(given) is str and _PLAIN_NUMBER.fullmatch(given):
            texts.append((name, given))  # a Decimal's text without an exponent is that
            continue
        number = Decimal(given)
        if not number.is_finite():
            return None
        texts.append((name, format(number, "f")))
    return texts


def frames_size(frames: Sequence[Frame]) -> int:
    """Items in ``frames`` (for logs and the benchmark)."""
    return sum(len(f.items) for f in frames)
