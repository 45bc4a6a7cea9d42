"""The command-parameter area ``CP=&&…&&`` (HJ 212-2017 §6.3.3): its wire structure and typed view.

On the wire CP is a list of groups separated by ``;``, each a list of ``Key=Value`` items separated
by ``,``. :class:`Cp` keeps the text as received (so a decoded packet re-encodes byte for byte),
gives that structure as ``groups``, and offers the typed view: ``DataTime``, one
:class:`Pollutant` per ``xxxxxx-Field`` code, and the parameters of 表 4 (OverTime, ReCount,
RtdInterval, …) as ints, times and decimals.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from types import MappingProxyType
from typing import Final, NamedTuple, TypeVar

from protocols.hj212.errors import CpError

Item = tuple[str, str]
Group = tuple[Item, ...]
_K = TypeVar("_K")
_V = TypeVar("_V")

#: Parameters of 表 4 holding a time ``YYYYMMDDhhmmss``.
TIME_PARAMS: Final = frozenset({"DataTime", "SystemTime", "RestartTime", "BeginTime", "EndTime"})
#: Parameters of 表 4 holding an integer.
INT_PARAMS: Final = frozenset(
    {
        "QnRtn",
        "ExeRtn",
        "RtdInterval",
        "MinInterval",
        "OverTime",
        "ReCount",
        "VaseNo",
        "Ctime",
        "Stime",
    }
)
#: Pollutant fields that must be numeric (表 4); other numeric-looking custom fields become
#: numbers too, anything else stays text.
NUMERIC_FIELDS: Final = frozenset(
    {
        "Rtd",
        "Avg",
        "Min",
        "Max",
        "Cou",
        "ZsRtd",
        "ZsAvg",
        "ZsMin",
        "ZsMax",
        "RS",
        "RT",
        "Data",
        "DayData",
        "NightData",
        "ValidNum",
        "TotalNum",
    }
)
TEXT_FIELDS: Final = frozenset({"Flag", "EFlag", "Info", "SN"})
#: Canonical order of a pollutant's fields when building from typed values.
FIELD_ORDER: Final = (
    "SampleTime",
    "Rtd",
    "Min",
    "Avg",
    "Max",
    "ZsRtd",
    "ZsMin",
    "ZsAvg",
    "ZsMax",
    "Cou",
    "Flag",
    "EFlag",
)

# Possessive quantifiers: a long digit run that fails to match fails in linear time (the
# backtracking form took 0.28 s over 10 000 digits).
_NUMBER = re.compile(r"[+-]?(?:[0-9]++(?:\.[0-9]*+)?|\.[0-9]++)")
_DIGITS = re.compile(r"[0-9]+")
#: Digits an integer parameter may have (表 4's are N1–N5; int() refuses over 4 300 anyway).
MAX_INT_DIGITS = 18
_TIME = re.compile(r"[0-9]{14}(?:[0-9]{3})?")


def is_time(text: str) -> bool:
    """Whether ``text`` is ``YYYYMMDDhhmmss`` (or 17 digits with milliseconds), cheaply: the
    decoder checks every DataTime and QN, and a link's frames share a handful of dates."""
    return (
        (len(text) == 14 or len(text) == 17)
        and text.isascii()
        and text.isdigit()
        and _is_date(text[:8])
        and text[8:10] <= "23"
        and text[10:12] <= "59"
        and text[12:14] <= "59"
    )


@lru_cache(maxsize=4096)
def _is_date(text: str) -> bool:
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def parse_time(text: str, what: str) -> datetime:
    """``YYYYMMDDhhmmss``; 17 digits (with milliseconds, sent by some devices) are accepted."""
    if not _TIME.fullmatch(text):
        raise CpError(f"{what}={text!r}: expected YYYYMMDDhhmmss (14 digits, 表 4)")
    try:
        moment = datetime(
            int(text[0:4]),
            int(text[4:6]),
            int(text[6:8]),
            int(text[8:10]),
            int(text[10:12]),
            int(text[12:14]),
            int(text[14:17] or 0) * 1000,
        )
    except ValueError as exc:
        raise CpError(f"{what}={text!r}: not a valid date and time ({exc})") from None
    return moment


def format_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def format_number(value: Decimal | int | float | str) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, Decimal):
        text = format(value, "f")
    elif isinstance(value, float):
        text = format(Decimal(repr(value)), "f")
    else:
        text = str(value)
    if not _NUMBER.fullmatch(text):
        raise CpError(f"{value!r} is not a finite decimal number (N14.2 style, 表 4)")
    return text


def _number(text: str, what: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise CpError(f"{what}={text!r}: expected a decimal number (表 4 N14.2 style)")
    return Decimal(text)


def _int(text: str, what: str) -> int:
    if len(text) > MAX_INT_DIGITS or not _DIGITS.fullmatch(text):
        shown = text if len(text) <= 40 else f"{text[:20]}… ({len(text)} characters)"
        raise CpError(
            f"{what}={shown!r}: expected an unsigned integer of at most "
            f"{MAX_INT_DIGITS} digits (表 4)"
        )
    return int(text)


class Pollutant(NamedTuple):
    """The fields of one factor code (``a05001-Avg=…,a05001-Flag=N``).

    ``values`` holds the numeric fields (Rtd, Avg, Min, Max, Cou, Zs…, and any custom numeric
    field such as the electricity profile's ``Ia`` or ``Ept``) as exact decimals: the meter's
    significant digits are kept (``Decimal("2.26")``, ``Decimal("0.00")``). A named tuple rather
    than a dataclass because a decoder makes one per factor per frame and this is 3x cheaper.
    """

    code: str
    values: Mapping[str, Decimal] = MappingProxyType({})
    flag: str | None = None
    eflag: str | None = None
    sample_time: datetime | None = None
    texts: Mapping[str, str] = MappingProxyType({})  # other non-numeric fields

    @property
    def rtd(self) -> Decimal | None:
        return self.values.get("Rtd")

    @property
    def avg(self) -> Decimal | None:
        return self.values.get("Avg")

    @property
    def min(self) -> Decimal | None:
        return self.values.get("Min")

    @property
    def max(self) -> Decimal | None:
        return self.values.get("Max")

    @property
    def cou(self) -> Decimal | None:
        return self.values.get("Cou")

    def items(self) -> Group:
        """The wire items in the canonical order of :data:`FIELD_ORDER`, custom fields after."""
        code = self.code
        fields: dict[str, str] = {}
        if self.sample_time is not None:
            fields["SampleTime"] = format_time(self.sample_time)
        for name, value in self.values.items():
            fields[name] = format_number(value)
        if self.flag is not None:
            fields["Flag"] = self.flag
        if self.eflag is not None:
            fields["EFlag"] = self.eflag
        fields.update(self.texts)
        ordered: list[str] = [name for name in FIELD_ORDER if name in fields]
        ordered += [name for name in fields if name not in FIELD_ORDER]
        return tuple((f"{code}-{name}", fields[name]) for name in ordered)


ParamValue = str | int | Decimal | datetime


def _format_param(key: str, value: ParamValue) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, bool):
        raise CpError(f"{key}: a bool is not a parameter value")
    if isinstance(value, int | Decimal):
        return format_number(value)
    return value


@dataclass(frozen=True, slots=True, eq=False)
class Cp:
    """CP as on the wire (``text``) plus its typed view, computed once when made.

    ``groups`` (the ``;``/``,`` structure) is derived from the text on demand: decoding does
    not need it, and it is what splitting and comparing packets use.
    """

    text: str = ""
    params: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    pollutants: Mapping[str, Pollutant] = field(default_factory=lambda: _EMPTY_POLLUTANTS)
    #: Lenient readings the parser made (whitespace around a field name, …); empty when strict.
    notes: tuple[str, ...] = ()
    #: :meth:`parts` already made, by selection: one CP sent to several platforms is split
    #: the same way for each (the CP is immutable, and so are its parts).
    _parts: dict[tuple[tuple[int, ...], ...], list[Cp]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    #: Made by :meth:`parse` without notes: each item went to exactly one parameter or one
    #: code's field, so its view is its text's (joining parts need not count them).
    _parsed: bool = field(default=False, init=False, repr=False, compare=False)

    @property
    def groups(self) -> tuple[Group, ...]:
        groups = []
        for group_text in self.text.split(";"):
            items = []
            for item in group_text.split(","):
                key, eq, value = item.partition("=")
                if eq:
                    items.append((key.strip(), value))
            if items:
                groups.append(tuple(items))
        return tuple(groups)

    @property
    def parsed(self) -> bool:
        """Made by :meth:`parse` without notes: each item went to exactly one parameter or one
        code's field, so its view is its text's."""
        return self._parsed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cp) and other.groups == self.groups

    def __hash__(self) -> int:
        return hash(self.groups)

    # ---- making one ------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> Cp:
        """Parse the text between ``CP=&&`` and the closing ``&&``."""
        if not text:
            return _EMPTY_CP
        plain = _parse_plain(text)
        cp = cls(text, *plain) if plain is not None else cls(text, *_parse_general(text))
        if not cp.notes:
            object.__setattr__(cp, "_parsed", True)  # frozen: set as __init__ sets fields
        return cp

    @classmethod
    def build(
        cls,
        *,
        data_time: datetime | None = None,
        pollutants: Iterable[Pollutant] = (),
        params: Mapping[str, ParamValue] | None = None,
        **more_params: ParamValue,
    ) -> Cp:
        """CP from typed values: DataTime, then parameters in the order given, then pollutants.

        Parameters use the standard's own names: ``Cp.build(OverTime=5, ReCount=3)``.
        """
        groups: list[Group] = []
        if data_time is not None:
            groups.append((("DataTime", format_time(data_time)),))
        for key, value in {**(params or {}), **more_params}.items():
            if not key or any(c in key for c in ";,=&"):
                raise CpError(f"parameter name {key!r} cannot be written in CP")
            groups.append(((key, _check_text(key, _format_param(key, value))),))
        for pollutant in pollutants:
            items = pollutant.items()
            for key, value in items:
                _check_text(key, value)
            groups.append(items)
        return cls.from_groups(groups)

    @classmethod
    def deferred(
        cls, text: str, params: Mapping[str, str], pollutants: Callable[[], Mapping[str, Pollutant]]
    ) -> Cp:
        """A CP whose pollutants ``pollutants()`` makes when they are first looked at. The
        caller vouches that ``params`` and those are exactly what parsing ``text`` gives (a
        frame rendered for sending: a sender only writes the text, and typing a 188-code
        minute frame's items as it was rendered made a sixth of a drain's garbage)."""
        return cls(text, params, _OwnView(pollutants))

    @classmethod
    def from_groups(cls, groups: Iterable[Iterable[Item]]) -> Cp:
        """CP from raw groups, validated and typed exactly as a parsed one would be."""
        cp = cls.parse(render_groups(tuple(tuple(g) for g in groups)))
        return cp

    # ---- cutting it into parts and joining them (split packets) --------------------------
    def group_texts(self) -> tuple[str, ...]:
        """Each of :attr:`groups` as ``render_groups`` writes it."""
        if self.notes:  # lenient text: the groups as they were read (names stripped, …)
            return tuple(render_groups((group,)) for group in self.groups)
        return tuple(self.text.split(";")) if self.text else ()

    def parts(self, selections: Iterable[Sequence[int]]) -> list[Cp]:
        """CPs of some of this one's groups each (indexes into :meth:`group_texts`,
        increasing), as ``from_groups`` makes them: typed from this one's view, not parsed
        again, when no code has fields both in and out of a part (``build`` gives each code a
        group of its own). A part's view is made when first looked at: a sender of a split
        CP only renders its parts (typing them took a tenth of a 48-hour backlog's drain)."""
        key = tuple(tuple(selection) for selection in selections)
        made = self._parts.get(key)
        if made is None:
            piece = _Piece.of(self)
            made = self._parts[key] = [_part(self, piece, selection) for selection in key]
        return list(made)

    @classmethod
    def joined(cls, pieces: Iterable[tuple[Cp, Sequence[int]]]) -> Cp:
        """One CP of chosen groups of several (each CP with indexes into its
        :meth:`group_texts`, increasing), as ``from_groups`` makes it: typed from theirs when
        no parameter or code is in two of them, else parsed (a duplicate is then refused)."""
        return _joined([(_Piece.of(cp), selection) for cp, selection in pieces])

    # ---- reading it ------------------------------------------------------------------
    def render(self) -> str:
        return self.text

    def get(self, key: str) -> str | None:
        return self.params.get(key)

    def time(self, key: str) -> datetime | None:
        text = self.params.get(key)
        return None if text is None else parse_time(text, key)

    def integer(self, key: str) -> int | None:
        text = self.params.get(key)
        return None if text is None else _int(text, key)

    @property
    def data_time(self) -> datetime | None:
        return self.time("DataTime")

    @property
    def begin_time(self) -> datetime | None:
        return self.time("BeginTime")

    @property
    def end_time(self) -> datetime | None:
        return self.time("EndTime")

    @property
    def system_time(self) -> datetime | None:
        return self.time("SystemTime")

    @property
    def over_time(self) -> int | None:
        return self.integer("OverTime")

    @property
    def re_count(self) -> int | None:
        return self.integer("ReCount")

    @property
    def rtd_interval(self) -> int | None:
        return self.integer("RtdInterval")

    @property
    def min_interval(self) -> int | None:
        return self.integer("MinInterval")

    @property
    def qn_rtn(self) -> int | None:
        return self.integer("QnRtn")

    @property
    def exe_rtn(self) -> int | None:
        return self.integer("ExeRtn")

    def __repr__(self) -> str:
        return f"Cp({self.render()!r})"


def render_groups(groups: tuple[Group, ...]) -> str:
    return ";".join(",".join(f"{k}={v}" for k, v in group) for group in groups)


class _Piece(NamedTuple):
    cp: Cp
    texts: tuple[str, ...]  # its group_texts
    #: its typed view is its text's: each item one parameter or one code's field (a CP made
    #: by hand may have a view of its own, or none)
    typed: bool

    @classmethod
    def of(cls, cp: Cp) -> _Piece:
        texts = cp.group_texts()
        if cp._parsed or isinstance(cp.pollutants, _OwnView):  # vouched for (``deferred``)
            return cls(cp, texts, True)
        fields = len(cp.params) + sum(_field_count(p) for p in cp.pollutants.values())
        return cls(cp, texts, fields == sum(text.count(",") + 1 for text in texts))


def _joined(pieces: Sequence[tuple[_Piece, Sequence[int]]]) -> Cp:
    texts: list[str] = []
    params: dict[str, str] = {}
    pollutants: dict[str, Pollutant] = {}
    typed = True
    for piece, selection in pieces:
        texts += map(piece.texts.__getitem__, selection)
        cp = piece.cp
        view = (
            _view(cp.params, cp.pollutants, piece.texts, selection)
            if typed and piece.typed
            else None
        )
        if (
            view is None
            or not params.keys().isdisjoint(view[0])
            or not pollutants.keys().isdisjoint(view[1])
        ):
            typed = False
            continue
        params.update(view[0])
        pollutants.update(view[1])
    text = ";".join(texts)
    return Cp(text, params, pollutants) if typed and text else Cp.parse(text)


def _part(whole: Cp, piece: _Piece, selection: Sequence[int]) -> Cp:
    """The CP of ``whole``'s groups ``selection``. Its view is made when first looked at
    where making it cannot fail (the whole's view is its text's, the groups in order), else
    now, as ``_joined`` makes it."""
    if not piece.typed or whole.notes or not _increasing(selection):
        return _joined([(piece, selection)])
    text = ";".join(map(piece.texts.__getitem__, selection))
    if not text:
        return _EMPTY_CP
    # The whole's mappings, not the whole: the whole keeps its parts, and a cycle would wait
    # for the cyclic collector. Where a code has fields both in and out of the part, parsed.
    params, pollutants, texts, chosen = (
        whole.params,
        whole.pollutants,
        piece.texts,
        tuple(selection),
    )

    made: list[tuple[Mapping[str, str], Mapping[str, Pollutant]]] = []

    def view() -> tuple[Mapping[str, str], Mapping[str, Pollutant]]:
        # Memoised by hand: functools.cache's wrapper, made per part, cost more than this.
        if not made:
            taken = _view(params, pollutants, texts, chosen)
            if taken is None:
                parsed = Cp.parse(text)
                made.append((parsed.params, parsed.pollutants))
            else:
                made.append(taken)
        return made[0]

    return Cp(text, _Lazy(lambda: view()[0]), _Lazy(lambda: view()[1]))


class _Lazy(Mapping[_K, _V]):
    """A mapping made by ``make`` when first read."""

    __slots__ = ("_made", "_make")

    def __init__(self, make: Callable[[], Mapping[_K, _V]]) -> None:
        self._make = make
        self._made: Mapping[_K, _V] | None = None

    def _mapping(self) -> Mapping[_K, _V]:
        made = self._made
        if made is None:
            made = self._made = self._make()
        return made

    def __getitem__(self, key: _K) -> _V:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[_K]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __contains__(self, key: object) -> bool:
        return key in self._mapping()

    def __repr__(self) -> str:
        return repr(self._mapping())


class _OwnView(_Lazy[str, Pollutant]):
    """The pollutants of a :meth:`Cp.deferred`: what parsing its text gives, made later."""

    __slots__ = ()


def _view(
    params: Mapping[str, str],
    pollutants: Mapping[str, Pollutant],
    texts: Sequence[str],
    selection: Sequence[int],
) -> tuple[dict[str, str], dict[str, Pollutant]] | None:
    """The typed view of groups ``selection`` of a CP (indexes into its group ``texts``,
    increasing), taken from its own (``params``, ``pollutants``): None where that cannot be
    done (a code with fields both in and out of them).

    Only the smaller side is read: the groups chosen, or those left out (merging parts leaves
    out a DataTime each)."""
    if not _increasing(selection):
        return None
    if 2 * len(selection) <= len(texts):  # increasing, so len(texts) - len(selection) left out
        side = selection
    else:
        chosen = set(selection)
        side = [i for i in range(len(texts)) if i not in chosen]
    names, codes = _owners([texts[i] for i in side])
    try:
        if any(_field_count(pollutants[code]) != n for code, n in codes.items()):
            return None  # the code has fields on the other side too
        if side is selection:
            return {key: params[key] for key in names}, {code: pollutants[code] for code in codes}
    except KeyError:
        return None
    return (
        {key: value for key, value in params.items() if key not in names},
        {code: p for code, p in pollutants.items() if code not in codes},
    )


def _increasing(selection: Sequence[int]) -> bool:
    """Whether the indexes increase strictly (compared in C: a generator over the pairs was
    a fifth of reassembling a split upload)."""
    return all(itertools.starmap(operator.lt, itertools.pairwise(selection)))


def _owners(texts: Iterable[str]) -> tuple[set[str], dict[str, int]]:
    """The parameters in group ``texts``, and their codes with how many fields each."""
    params: set[str] = set()
    codes: dict[str, int] = {}
    for text in texts:
        for item in text.split(","):
            key = item.partition("=")[0]
            code, dash, _ = key.rpartition("-")  # as the parsers tell a code's field
            if dash and code:
                codes[code] = codes.get(code, 0) + 1
            else:
                params.add(key)
    return params, codes


def _field_count(p: Pollutant) -> int:
    """How many fields of its code made ``p`` (each went to exactly one place)."""
    return (
        len(p.values)
        + len(p.texts)
        + (p.flag is not None)
        + (p.eflag is not None)
        + (p.sample_time is not None)
    )


def _check_text(key: str, value: str) -> str:
    # ';' ',' split CP and '&&' ends it: a value containing them would change the packet's
    # structure, so refuse rather than escape (the standard has no escaping).
    if any(c in value for c in ";,") or "&&" in value or "\r" in value or "\n" in value:
        raise CpError(f"value of {key} ({value!r}) contains a CP separator (';', ',', '&&')")
    return value


def _check_params(params: dict[str, str], notes: list[str]) -> None:
    for key, value in params.items():
        if key in TIME_PARAMS:
            if not is_time(value):
                parse_time(value, key)  # raises, saying what is wrong
            if len(value) == 17:
                notes.append(f"{key} has milliseconds (17 digits, the standard has 14)")
        elif key in INT_PARAMS:
            _int(value, key)


def _parse_general(
    text: str,
) -> tuple[dict[str, str], dict[str, Pollutant], tuple[str, ...]]:
    """Any CP: every field kind, tolerated departures noted, errors explained."""
    if not text:
        return {}, {}, ()
    spaced = " " in text or "\t" in text
    notes: list[str] = []
    params: dict[str, str] = {}
    fields: dict[str, dict[str, str]] = {}
    field_of = fields.get
    for item in text.replace(";", ",").split(","):  # flat, as in _parse_plain
        key, eq, value = item.partition("=")
        if spaced and key != key.strip():
            if not key.strip() and not eq and not value:
                notes.append("empty CP item ignored")
                continue
            notes.append(f"whitespace around CP field name {key!r} ignored")
            key = key.strip()
        if not (eq and key):
            raise CpError(
                f"CP item {item!r} has no '=' (HJ 212-2017 §6.3.3.1)"
                if not eq
                else f"CP item {item!r} has an empty field name"
            )
        code, dash, name = key.rpartition("-")
        if dash and code:
            per_code = field_of(code)
            if per_code is None:
                fields[code] = {name: value}
            elif name in per_code:
                raise CpError(f"CP field {key!r} appears twice")
            else:
                per_code[name] = value
        elif key in params:
            raise CpError(f"CP parameter {key!r} appears twice")
        else:
            params[key] = value
    if params:
        _check_params(params, notes)
    pollutants = {code: _pollutant(code, per_code) for code, per_code in fields.items()}
    return params, pollutants, tuple(notes)


def _parse_plain(
    text: str,
) -> tuple[dict[str, str], dict[str, Pollutant], tuple[str, ...]] | None:
    """The usual upload, parsed in one pass: parameters, and factor fields that are Flag or
    numbers. None for anything else (text fields, whitespace, a duplicate, a malformed
    value …): the general path then parses it and explains what is wrong.

    This is the decoder's hot path — every uploaded value passes through the loop — so it does
    the least per item: numbers become Decimals on the spot, and their text is checked once, in
    bulk, for characters Decimal() would accept but the standard does not (exponents, '_',
    'NaN', non-ASCII digits).
    """
    if " " in text or "\t" in text or any(needle in text for needle in _TEXTUAL_NEEDLES):
        return None
    params: dict[str, str] = {}
    values: dict[str, dict[str, Decimal]] = {}
    flags: dict[str, str] = {}
    numbers: list[str] = []
    values_of = values.get
    try:
        # ';' (between items) and ',' (between one item's fields) mean the same to the typed
        # view, so one flat split serves; ``Cp.groups`` keeps the distinction.
        for item in text.replace(";", ",").split(","):
            key, eq, value = item.partition("=")
            if not (eq and key):
                return None
            code, dash, name = key.rpartition("-")
            if dash and code:
                per_code = values_of(code)
                if per_code is None:
                    values[code] = per_code = {}
                if name == "Flag":
                    if code in flags:
                        return None
                    flags[code] = value
                elif name in per_code:
                    return None
                else:
                    per_code[name] = Decimal(value)
                    numbers.append(value)
            elif key in params:
                return None
            else:
                params[key] = value
    except InvalidOperation:
        return None
    if "".join(numbers).translate(_NUMBER_CHARS):
        return None
    notes: list[str] = []
    if params:
        _check_params(params, notes)
    # tuple.__new__ skips the named tuple's Python-level __new__: half the cost.
    pollutants = {
        code: tuple.__new__(Pollutant, (code, per_code, flags.get(code), None, None, _EMPTY))
        for code, per_code in values.items()
    }
    return params, pollutants, tuple(notes)


def _pollutant(code: str, per_code: dict[str, str]) -> Pollutant:
    """One code's typed view, field by field (any mix of numbers, texts and times)."""
    flag = eflag = sample = None
    values: dict[str, Decimal] = {}
    texts: dict[str, str] = {}
    for name, text in per_code.items():
        if name == "Flag":
            flag = text
        elif name == "EFlag":
            eflag = text
        elif name == "SampleTime":
            sample = text
        elif name in NUMERIC_FIELDS:
            values[name] = _number(text, f"{code}-{name}")
        elif name not in TEXT_FIELDS and _NUMBER.fullmatch(text):
            values[name] = Decimal(text)
        else:
            texts[name] = text
    sample_time = None if sample is None else parse_time(sample, f"{code}-SampleTime")
    return Pollutant(code, values, flag, eflag, sample_time, texts or _EMPTY)


# Factor fields that are neither Flag nor a number: their presence sends CP to the general path.
_TEXTUAL_NEEDLES: Final = tuple(f"-{name}=" for name in (TEXT_FIELDS | {"SampleTime"}) - {"Flag"})
_NUMBER_CHARS = str.maketrans("", "", "0123456789.+-")
_EMPTY: Mapping[str, str] = MappingProxyType({})
_EMPTY_POLLUTANTS: Mapping[str, Pollutant] = MappingProxyType({})
_EMPTY_CP = Cp()
