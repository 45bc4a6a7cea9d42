"""Reading a fleet file: YAML in, a validated :class:`Fleet` out, or errors naming field + line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from common import yaml_input
from simulators.fleet.schema import Fleet

#: libyaml where PyYAML has it: a works fleet's 58 KB in 0.02 s, not the pure-Python 0.15 s
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FleetFileError(ValueError):
    """A fleet file that is not valid YAML or not a valid fleet; the message lists each problem
    as ``file:line: field.path: what is wrong``."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(f"{path}: invalid fleet file\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def load_fleet(path: str | Path) -> Fleet:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetFileError(str(path), [f"cannot read: {exc.strerror}"]) from None
    return parse_fleet(text, str(path))


def parse_fleet(text: str, name: str = "<fleet>") -> Fleet:
    try:
        data = yaml_input.load(text)
    except yaml.YAMLError as exc:
        raise FleetFileError(name, [yaml_input.where(name, exc)]) from None
    if not isinstance(data, dict):
        raise FleetFileError(
            name, [f"{name}:1: a fleet file is a mapping (name:, plant:, meters: …)"]
        )
    try:
        return Fleet.model_validate(data)
    except ValidationError as exc:
        root = yaml.compose(text, Loader=_LOADER)  # the nodes, for the lines of the errors
        problems = []
        for error in exc.errors():
            loc = tuple(error["loc"])
            message = error["msg"]
            if not loc:  # a cross-field check: its message starts with the field's path
                loc = _path(message)
                message = _PATH.sub("", message)
            line = _line(root, loc)
            field = _dotted(loc, data)
            found = ""
            if error["type"] not in ("missing", "value_error") and "input" in error:
                found = f" (found {error['input']!r})"
            problems.append(f"{name}:{line}: {field or '(top)'}: {message}{found}")
        raise FleetFileError(name, problems) from None


def _walk(node: yaml.Node | None, loc: tuple[Any, ...]) -> yaml.Node | None:
    """Follow ``loc`` through the YAML nodes (skipping pydantic's union tags)."""
    for key in loc:
        if isinstance(node, yaml.MappingNode):
            match = next((v for k, v in node.value if k.value == str(key)), None)
            if match is not None:  # else a discriminator tag such as 'modbus-tcp'
                node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
    return node


def _line(root: yaml.Node | None, loc: tuple[Any, ...]) -> int:
    node = _walk(root, loc)
    return 1 if node is None else node.start_mark.line + 1


_PATH = re.compile(r"^Value error, ((?:[a-z_]+)(?:\[\d+\]|\.[a-z_]+)*): ")


def _path(message: str) -> tuple[Any, ...]:
    """The ``meters[3].bus``-style path a cross-field check puts first in its message."""
    match = _PATH.match(message)
    if match is None:
        return ()
    return tuple(
        int(part) if part.isdigit() else part for part in re.findall(r"[a-z_]+|\d+", match.group(1))
    )


def _dotted(loc: tuple[Any, ...], data: Any) -> str:
    out = ""
    for key in loc:
        if isinstance(key, int):
            out += f"[{key}]"
            data = data[key] if isinstance(data, list) and key < len(data) else None
        elif isinstance(data, dict) and key in data:
            out += f".{key}"
            data = data[key]
        elif isinstance(data, dict):
            out += f".{key}" if not _is_tag(key) else ""
            data = None if not _is_tag(key) else data
        else:
            out += f".{key}"
    return out.lstrip(".")


def _is_tag(key: str) -> bool:
    # pydantic names the union member it tried by its discriminator value.
    return "-" in key or key in {
        "electricity",
        "heat",
        "steam",
        "gas",
        "liquid",
        "water",
        "belt_scale",
        "weighbridge",
        "cems",
        "production",
        "cjt188",
        "opcua",
        "mqtt",
        "https",
        "manual",
        "analog",
        "sql",
        "function-after",
    }
