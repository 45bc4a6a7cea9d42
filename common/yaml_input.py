"""Reading YAML a person wrote. PyYAML's safe loader (libyaml's when it is there) builds
numbers and dates with Python, whose ValueError carries no position: a 5000-digit integer or
``2026-13-45`` escaped every loader's ``except yaml.YAMLError`` as a traceback. Here they are
YAML errors at the scalar's line, like every other mistake, and :func:`where` says any of them
in one line: ``file:line: not valid YAML: problem``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

_BASE: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_GUARDED = ("int", "float", "timestamp")


class InputLoader(_BASE):  # type: ignore[misc]
    """The safe loader, its number and date constructors answering with YAML errors."""


def _guarded(construct: Callable[[Any, yaml.Node], Any]) -> Callable[[Any, yaml.Node], Any]:
    def guarded(loader: Any, node: yaml.Node) -> Any:
        try:
            return construct(loader, node)
        except (ValueError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"{node.tag.rsplit(':', 1)[-1]} {str(exc).split(';')[0]}",
                node.start_mark,
            ) from None  # fmt: skip

    return guarded


for _name in _GUARDED:
    _tag = f"tag:yaml.org,2002:{_name}"
    InputLoader.add_constructor(_tag, _guarded(_BASE.yaml_constructors[_tag]))


def load(text: str) -> Any:
    """The document in ``text``; any mistake in it is a :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=InputLoader)  # InputLoader is a safe loader


def where(name: str, exc: yaml.YAMLError) -> str:
    """``exc`` in one line, at the line of ``name`` it points to."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = f":{mark.line + 1}" if mark is not None else ""
    problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
    return f"{name}{line}: not valid YAML: {problem}"
