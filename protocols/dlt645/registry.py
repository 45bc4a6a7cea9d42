"""Data identifiers (DI) → how their values look on the wire, and the typed values themselves.

A :class:`DataItem` describes one DI by its format string as the standard prints it:
``XXXXXX.XX`` (8 BCD digits, 2 decimals → 4 bytes), ``NNNNNNNNNNNN`` (a 12-digit number kept
as text, e.g. a meter number), ``YYMMDDWW`` (date + weekday), ``hhmmss``, ``YYMMDDhhmm`` and
``YYMMDDhhmmss``. Numbers decode to :class:`~decimal.Decimal` with exactly the format's
decimals, because the accuracy clause compares significant digits with the meter's own display.
Block DIs (``…FF…``) carry several elements of the same format.

:data:`DEFAULT_REGISTRY` holds the DIs the bench uses; :func:`register` adds more.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from typing import Final, Literal, cast

from protocols import bcd
from protocols.dlt645.frame import DLT645Error, Edition

__all__ = [
    "DEFAULT_REGISTRY",
    "DataItem",
    "Registry",
    "Value",
    "ValueType",
    "decode_values",
    "encode_values",
    "register",
]

ValueType = Decimal | str | date | time | datetime | bytes
Kind = Literal["number", "digits", "date", "time", "datetime"]

_NUMBER = re.compile(r"X+(?:\.X+)?")
_DIGITS = re.compile(r"N+")
_PATTERNS: Final[dict[str, tuple[Kind, int]]] = {
    "YYMMDDWW": ("date", 4),
    "hhmmss": ("time", 3),
    "YYMMDDhhmm": ("datetime", 5),
    "YYMMDDhhmmss": ("datetime", 6),
}


@dataclass(frozen=True, slots=True)
class Value:
    """One decoded value: ``name``, typed ``value``, ``unit`` and its plain wire bytes."""

    name: str
    value: ValueType
    unit: str = ""
    raw: bytes = b""


@dataclass(frozen=True, slots=True)
class DataItem:
    """How one DI's data looks on the wire.

    ``length`` (bytes per element), ``scale`` (decimals) and ``kind`` follow from ``format``.
    ``signed``: bit 7 of the most significant byte is the sign (currents, powers).
    ``elements``: names of the elements of a block DI, in wire order; empty for one value.
    """

    di: int
    name: str
    format: str
    unit: str = ""
    signed: bool = False
    edition: Edition = "2007"
    elements: tuple[str, ...] = ()
    length: int = field(init=False)
    scale: int = field(init=False)
    kind: Kind = field(init=False)
    total_length: int = field(init=False)  # bytes after the DI in a read reply

    def __post_init__(self) -> None:
        kind, length, scale = _parse_format(self.format)
        if self.signed and kind != "number":
            raise DLT645Error(
                f"format: only numbers can be signed, not {self.format!r}", reason="format"
            )
        top = 0xFFFFFFFF if self.edition == "2007" else 0xFFFF
        if not 0 <= self.di <= top:
            raise DLT645Error(
                f"DI 0x{self.di:X} does not fit edition {self.edition}", reason="registry"
            )
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "length", length)
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "total_length", length * (len(self.elements) or 1))

    @property
    def count(self) -> int:
        return len(self.elements) or 1

    @property
    def names(self) -> tuple[str, ...]:
        return self.elements or (self.name,)

    @property
    def di_hex(self) -> str:
        return f"{self.di:08X}" if self.edition == "2007" else f"{self.di:04X}"


def _parse_format(fmt: str) -> tuple[Kind, int, int]:
    if _NUMBER.fullmatch(fmt):
        # An odd count ("XXX", 1997 voltages) leaves the top nibble of the top byte unused.
        _, _, decimals = fmt.partition(".")
        return "number", (fmt.count("X") + 1) // 2, len(decimals)
    if _DIGITS.fullmatch(fmt) and len(fmt) % 2 == 0:
        return "digits", len(fmt) // 2, 0
    if fmt in _PATTERNS:
        kind, length = _PATTERNS[fmt]
        return kind, length, 0
    raise DLT645Error(
        f"format: expected X…X[.X…X], N…N or one of {sorted(_PATTERNS)}, found {fmt!r}",
        reason="format",
    )


# Values ------------------------------------------------------------------------------------
def _decode_element(item: DataItem, chunk: bytes, name: str) -> ValueType:
    if item.kind == "number":
        return bcd.decimal_from_bcd(chunk, item.scale, name, DLT645Error, signed=item.signed)
    digits = bcd.check_digits(chunk, name, DLT645Error)
    if item.kind == "digits":
        return digits
    try:
        if item.kind == "date":  # YYMMDDWW: the weekday is kept in Value.raw, not checked
            return date(2000 + int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
        if item.kind == "time":
            return time(int(digits[0:2]), int(digits[2:4]), int(digits[4:6]))
    except ValueError as exc:
        raise DLT645Error(
            f"{name}: {digits} is not a valid {item.format} ({exc})", reason="time"
        ) from exc
    return bcd.datetime_from_digits(digits.ljust(12, "0"), name, DLT645Error)


def decode_values(item: DataItem, payload: bytes) -> list[Value]:
    """A read reply's data after the DI → one :class:`Value` per element."""
    if len(payload) != item.total_length:
        raise DLT645Error(
            f"length: {item.name} (DI {item.di_hex}, {item.count} × {item.format}) needs "
            f"{item.total_length} data bytes after the DI, found {len(payload)}",
            reason="length",
        )
    if not item.elements:  # the common case, without the block machinery
        return [Value(item.name, _decode_element(item, payload, item.name), item.unit, payload)]
    size = item.length
    return [
        Value(name, _decode_element(item, chunk, name), item.unit, chunk)
        for name, chunk in zip(
            item.names,
            (payload[i : i + size] for i in range(0, len(payload), size)),
            strict=True,
        )
    ]


def _encode_element(item: DataItem, value: ValueType, name: str) -> bytes:
    if item.kind == "number":
        if not isinstance(value, Decimal | int | str):
            raise DLT645Error(
                f"{name}: expected a Decimal, found {type(value).__name__}", reason="value"
            )
        return bcd.decimal_to_bcd(
            value,
            item.length,
            item.scale,
            name,
            DLT645Error,
            signed=item.signed,
            digits=item.format.count("X"),
        )
    if item.kind == "digits":
        if not (
            isinstance(value, str)
            and value.isascii()
            and value.isdigit()
            and len(value) == 2 * item.length
        ):
            raise DLT645Error(
                f"{name}: expected {2 * item.length} digits, found {value!r}", reason="value"
            )
        return bcd.digits_to_wire(value)
    if item.kind == "date":
        if not isinstance(value, date) or isinstance(value, datetime):
            raise DLT645Error(f"{name}: expected a date, found {value!r}", reason="value")
        _check_century(value.year, name)
        weekday = value.isoweekday() % 7  # WW: 0 = Sunday
        text = f"{value.year - 2000:02d}{value.month:02d}{value.day:02d}{weekday:02d}"
    elif item.kind == "time":
        if not isinstance(value, time):
            raise DLT645Error(f"{name}: expected a time, found {value!r}", reason="value")
        text = f"{value.hour:02d}{value.minute:02d}{value.second:02d}"
    else:
        if not isinstance(value, datetime):
            raise DLT645Error(f"{name}: expected a datetime, found {value!r}", reason="value")
        _check_century(value.year, name)
        text = value.strftime("%y%m%d%H%M%S")[: 2 * item.length]
    return bcd.digits_to_wire(text)


def _check_century(year: int, name: str) -> None:
    if not 2000 <= year <= 2099:
        raise DLT645Error(f"{name}: two-digit years cover 2000-2099, found {year}", reason="range")


def encode_values(item: DataItem, values: ValueType | Sequence[ValueType]) -> bytes:
    """Typed value(s) → the plain data bytes that follow the DI (one per block element)."""
    # Blocks take a list or tuple; a str or bytes is one value, not a sequence of them.
    many: Sequence[ValueType] = (
        values if isinstance(values, list | tuple) else [cast("ValueType", values)]
    )
    if len(many) != item.count:
        raise DLT645Error(
            f"{item.name} (DI {item.di_hex}) takes {item.count} value(s), found {len(many)}",
            reason="value",
        )
    return b"".join(
        _encode_element(item, value, name) for name, value in zip(item.names, many, strict=True)
    )


# Registry ----------------------------------------------------------------------------------
class Registry:
    """DI → :class:`DataItem`, per edition. Extensible: :meth:`register` more."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[DataItem] = ()) -> None:
        self._items: dict[Edition, dict[int, DataItem]] = {"2007": {}, "1997": {}}
        for item in items:
            self.add(item)

    def add(self, item: DataItem, *, replace: bool = False) -> DataItem:
        table = self._items[item.edition]
        if not replace and item.di in table and table[item.di] != item:
            raise DLT645Error(
                f"DI {item.di_hex} ({item.edition}) is already registered as "
                f"{table[item.di].name!r}; pass replace=True to override",
                reason="registry",
            )
        table[item.di] = item
        return item

    def register(
        self,
        di: int,
        name: str,
        format: str,
        unit: str = "",
        *,
        signed: bool = False,
        edition: Edition = "2007",
        elements: Sequence[str] = (),
        replace: bool = False,
    ) -> DataItem:
        """Describe one more DI, e.g. ``register(0x00010100, "forward active T1", "XXXXXX.XX",
        "kWh")``."""
        return self.add(
            DataItem(di, name, format, unit, signed, edition, tuple(elements)), replace=replace
        )

    def remove(self, di: int, edition: Edition = "2007") -> DataItem | None:
        """Forget a DI (returns what was registered, if anything)."""
        return self._items[edition].pop(di, None)

    def get(self, di: int, edition: Edition = "2007") -> DataItem | None:
        return self._items[edition].get(di)

    def copy(self) -> Registry:
        return Registry(iter(self))

    def __iter__(self) -> Iterator[DataItem]:
        for table in self._items.values():
            yield from table.values()

    def __len__(self) -> int:
        return sum(len(table) for table in self._items.values())

    def __contains__(self, key: object) -> bool:
        if isinstance(key, tuple) and len(key) == 2:
            edition, di = key
            return edition in self._items and di in self._items[edition]
        return False


_PHASES = ("A", "B", "C")
_STANDARD: Final[list[DataItem]] = [
    # 2007 energy, XXXXXX.XX kWh. Combined energy is forward ± reverse per the meter's
    # combination word and can be negative: the top bit is its sign [R].
    DataItem(0x00000000, "combined active energy total", "XXXXXX.XX", "kWh", signed=True),
    DataItem(0x00010000, "forward active energy total", "XXXXXX.XX", "kWh"),
    DataItem(0x00020000, "reverse active energy total", "XXXXXX.XX", "kWh"),
    # 2007 instantaneous values
    *(
        DataItem(0x02010000 | n << 8, f"phase {p} voltage", "XXX.X", "V")
        for n, p in enumerate(_PHASES, 1)
    ),
    DataItem(
        0x0201FF00,
        "voltage block",
        "XXX.X",
        "V",
        elements=tuple(f"phase {p} voltage" for p in _PHASES),
    ),
    *(
        DataItem(0x02020000 | n << 8, f"phase {p} current", "XXX.XXX", "A", signed=True)
        for n, p in enumerate(_PHASES, 1)
    ),
    DataItem(
        0x0202FF00,
        "current block",
        "XXX.XXX",
        "A",
        signed=True,
        elements=tuple(f"phase {p} current" for p in _PHASES),
    ),
    DataItem(0x02030000, "total active power", "XX.XXXX", "kW", signed=True),
    *(
        DataItem(0x02030000 | n << 8, f"phase {p} active power", "XX.XXXX", "kW", signed=True)
        for n, p in enumerate(_PHASES, 1)
    ),
    DataItem(
        0x0203FF00,
        "active power block",
        "XX.XXXX",
        "kW",
        signed=True,
        elements=("total active power", *(f"phase {p} active power" for p in _PHASES)),
    ),
    DataItem(0x02040000, "total reactive power", "XX.XXXX", "kvar", signed=True),
    DataItem(0x02060000, "total power factor", "X.XXX", "", signed=True),
    DataItem(0x02800002, "grid frequency", "XX.XX", "Hz"),
    DataItem(0x04000101, "date", "YYMMDDWW"),
    DataItem(0x04000102, "time", "hhmmss"),
    DataItem(0x04000401, "communication address", "NNNNNNNNNNNN"),
    DataItem(0x04000402, "meter number", "NNNNNNNNNNNN"),
    # 1997: two-byte DIs, fewer digits
    DataItem(0x9010, "forward active energy total", "XXXXXX.XX", "kWh", edition="1997"),
    DataItem(0x9020, "reverse active energy total", "XXXXXX.XX", "kWh", edition="1997"),
    *(
        DataItem(0xB610 + n, f"phase {p} voltage", "XXX", "V", edition="1997")
        for n, p in enumerate(_PHASES, 1)
    ),
    *(
        DataItem(0xB620 + n, f"phase {p} current", "XX.XX", "A", edition="1997")
        for n, p in enumerate(_PHASES, 1)
    ),
    DataItem(0xB630, "total active power", "XX.XXXX", "kW", edition="1997"),
    *(
        DataItem(0xB630 + n, f"phase {p} active power", "XX.XXXX", "kW", edition="1997")
        for n, p in enumerate(_PHASES, 1)
    ),
    DataItem(0xC010, "date", "YYMMDDWW", edition="1997"),
    DataItem(0xC011, "time", "hhmmss", edition="1997"),
    DataItem(0xC032, "meter number", "NNNNNNNNNNNN", edition="1997"),
]

DEFAULT_REGISTRY: Final = Registry(_STANDARD)


def register(
    di: int,
    name: str,
    format: str,
    unit: str = "",
    *,
    signed: bool = False,
    edition: Edition = "2007",
    elements: Sequence[str] = (),
    replace: bool = False,
) -> DataItem:
    """Add a DI to :data:`DEFAULT_REGISTRY` (use a :class:`Registry` of your own to keep the
    default untouched)."""
    return DEFAULT_REGISTRY.register(
        di,
        name,
        format,
        unit,
        signed=signed,
        edition=edition,
        elements=elements,
        replace=replace,
    )
