"""Fast constructors for the frozen slotted dataclasses made once per reading.

A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__`` (its own
``__setattr__`` refuses): a global lookup, an attribute lookup and a call per field, ~0.9 µs for
an 8-field :class:`~reference_terminal.model.Reading`. Every reading makes several such records
(its RawValue, Reading, Increment, windows, the stored rows), and in virtual time a process
makes a day's worth of them in seconds, so they were ~5 % of a scenario's CPU. :func:`frozen`
builds a function with the same signature that sets the slots through their descriptors
directly, about twice as fast, and returns an instance of the class itself: equal, hashing and
printing alike, as frozen as one made by the class.

Only for plain records: a class with ``__post_init__`` (or ``InitVar`` or ``init=False``
fields) is refused, since its ``__init__`` does more than set fields.

Use it as ``new_x = frozen(X)`` under ``if not TYPE_CHECKING`` with ``new_x = X`` in the
``TYPE_CHECKING`` branch, so the type checker checks every call against the class itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from reference_terminal.model import RawValue, Reading

T = TypeVar("T")

_MISSING = dataclasses.MISSING


def frozen(cls: type[T]) -> Callable[..., T]:
    """A constructor of ``cls`` (a frozen dataclass with slots) with its ``__init__``'s
    signature that skips its per-field ``object.__setattr__`` calls."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: only frozen dataclasses with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__}: its __post_init__ would be skipped")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]  # checked just above
    if len(fields) != len(cls.__dict__["__dataclass_fields__"]) or not all(
        f.init and not f.kw_only for f in fields
    ):
        raise TypeError(f"{cls.__name__}: every field must be a positional init field")
    namespace: dict[str, Any] = {"_new": object.__new__, "_cls": cls, "_MISSING": _MISSING}
    params_src: list[str] = []
    body: list[str] = ["    o = _new(_cls)"]
    for i, f in enumerate(fields):
        namespace[f"_set{i}"] = getattr(cls, f.name).__set__
        if f.default is not _MISSING:
            namespace[f"_default{i}"] = f.default
            params_src.append(f"{f.name}=_default{i}")
        elif f.default_factory is not _MISSING:
            namespace[f"_factory{i}"] = f.default_factory
            params_src.append(f"{f.name}=_MISSING")
            body.append(f"    if {f.name} is _MISSING: {f.name} = _factory{i}()")
        else:
            params_src.append(f.name)
        body.append(f"    _set{i}(o, {f.name})")
    source = f"def new_{cls.__name__}({', '.join(params_src)}):\n" + "\n".join(body)
    source += "\n    return o\n"
    exec(source, namespace)  # the same technique dataclasses uses for __init__
    made: Callable[..., T] = namespace[f"new_{cls.__name__}"]
    made.__qualname__ = f"frozen({cls.__qualname__})"
    made.__doc__ = f"A {cls.__name__}, made without its per-field setattr calls."
    return made


if TYPE_CHECKING:
    new_raw_value = RawValue
    new_reading = Reading
else:  # one of each per value read
    new_raw_value = frozen(RawValue)
    new_reading = frozen(Reading)
