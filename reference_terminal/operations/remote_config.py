"""Remote configuration by parts (ISC-2 §8.3 「远程配置上传地址、数据项、计算公式、排放因子、
网络参数」): a change names the field it changes instead of sending the whole document.

A path is JSON-Pointer-like (RFC 6901) with one convenience: a list element may be named by
its ``id``, ``name`` or ``point`` instead of its index, so ``/uplink/centres/provincial/port``
is the port of the centre named ``provincial`` wherever it is in the list, and
``/points/boiler.coal_t/max`` a point's range. Operations (after RFC 6902): ``replace`` a
value, ``add`` a key or append to a list (``/points/-``), ``remove`` a key or an element.

:func:`changed_fields` lists what differs between two configuration documents, by the same
kind of path, for the configuration log; secrets show as ``********``.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from reference_terminal.security.redaction import redact

#: Keys naming a list element (tried in this order).
KEYS = ("id", "name", "point")
#: Sections read at start only: a running terminal cannot change them (``security``: its
#: security cannot be switched off remotely; ``apps``: its trust anchors for applications;
#: ``identity``: its signing of uploads cannot be switched off or moved to another key).
START_ONLY = ("security", "apps", "identity")
#: Sections a running terminal takes, but only a restart puts into effect (its management
#: API's own listening address).
RESTART = ("api",)
MAX_SHOWN = 80


class PatchError(ValueError):
    """A change that does not fit the document; the message names the path."""


class Operation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    op: Literal["replace", "add", "remove"]
    path: str = Field(
        pattern=r"^(/[^/]*)+$", max_length=500, examples=["/uplink/centres/provincial/port"]
    )
    value: Any = None


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~")


def _key_of(item: Any) -> str | None:
    if isinstance(item, dict):
        for key in KEYS:
            if isinstance(item.get(key), str):
                return str(item[key])
    return None


def _index(items: list[Any], token: str, path: str) -> int:
    for i, item in enumerate(items):
        if _key_of(item) == token:
            return i
    if token.isdigit() and int(token) < len(items):
        return int(token)
    names = [k for k in map(_key_of, items) if k is not None]
    raise PatchError(
        f"{path}: no element {token!r} (elements: {', '.join(names) or f'{len(items)} unnamed'})"
    )


def apply_operations(document: dict[str, Any], operations: list[Operation]) -> dict[str, Any]:
    """A copy of ``document`` with ``operations`` applied in order (all or none)."""
    out = copy.deepcopy(document)
    for operation in operations:
        tokens = [_unescape(t) for t in operation.path.split("/")[1:]]
        parent: Any = out
        for depth, token in enumerate(tokens[:-1]):
            where = "/" + "/".join(tokens[: depth + 1])
            if isinstance(parent, dict):
                if token not in parent:
                    raise PatchError(f"{where}: no such field")
                parent = parent[token]
            elif isinstance(parent, list):
                parent = parent[_index(parent, token, where)]
            else:
                raise PatchError(f"{where}: {type(parent).__name__} has no fields")
        last = tokens[-1]
        if isinstance(parent, dict):
            if operation.op == "remove":
                if last not in parent:
                    raise PatchError(f"{operation.path}: no such field")
                del parent[last]
            elif operation.op == "replace" and last not in parent:
                raise PatchError(f"{operation.path}: no such field (use add)")
            else:
                parent[last] = copy.deepcopy(operation.value)
        elif isinstance(parent, list):
            if operation.op == "add" and last == "-":
                parent.append(copy.deepcopy(operation.value))
            elif operation.op == "add":
                parent.insert(_index(parent, last, operation.path), copy.deepcopy(operation.value))
            elif operation.op == "remove":
                del parent[_index(parent, last, operation.path)]
            else:
                parent[_index(parent, last, operation.path)] = copy.deepcopy(operation.value)
        else:
            raise PatchError(f"{operation.path}: {type(parent).__name__} has no fields")
    return out


def _shown(value: Any) -> str:
    if isinstance(value, dict | list):
        text = f"{type(value).__name__}({len(value)})"
    else:
        text = "null" if value is None else str(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _diff(old: Any, new: Any, shown_old: Any, shown_new: Any, path: str, out: list[str]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        so = shown_old if isinstance(shown_old, dict) else {}
        sn = shown_new if isinstance(shown_new, dict) else {}
        for key in list(old) + [k for k in new if k not in old]:
            if key not in new:
                out.append(f"{path}/{key} removed")
            elif key not in old:
                out.append(f"{path}/{key} added: {_shown(sn.get(key))}")
            else:
                _diff(old[key], new[key], so.get(key), sn.get(key), f"{path}/{key}", out)
        return
    if isinstance(old, list) and isinstance(new, list):
        named = all(_key_of(i) is not None for i in old + new)
        if named:
            olds = {_key_of(i): (i, s) for i, s in zip(old, shown_old or old, strict=False)}
            news = {_key_of(i): (i, s) for i, s in zip(new, shown_new or new, strict=False)}
            for key, (item, shown) in olds.items():
                if key not in news:
                    out.append(f"{path}/{key} removed")
                else:
                    _diff(item, news[key][0], shown, news[key][1], f"{path}/{key}", out)
            out.extend(f"{path}/{key} added" for key in news if key not in olds)
            return
        if old != new:
            out.append(f"{path}: {_shown(shown_old)} → {_shown(shown_new)}")
        return
    if old != new:
        out.append(f"{path}: {_shown(shown_old)} → {_shown(shown_new)}")


def changed_fields(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """What differs from ``old`` to ``new`` (configuration documents), one line per field,
    secrets shown as ``********``."""
    out: list[str] = []
    _diff(old, new, redact(old), redact(new), "", out)
    return out


def sections_changed(
    old: dict[str, Any], new: dict[str, Any], sections: tuple[str, ...]
) -> list[str]:
    return [s for s in sections if old.get(s) != new.get(s)]
