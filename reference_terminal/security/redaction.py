"""Secrets kept out of what the management API shows (ISC-2 §7.4.1.4(2)), and put back when a
shown document comes back.

``redact`` replaces every secret of a configuration document (as ``model_dump(mode="json")``
gives it) by :data:`REDACTED`: the values of keys named like a password or key (``pw``,
``cp_key``, ``password_hash`` …) and the password inside a URL
(``postgresql://u:********@db/x``). ``restore`` is its inverse for a document a client edits
and sends back (GET /config, change one thing, PUT /config): a :data:`REDACTED` value takes
the running configuration's value at the same place, so a round trip never wipes a secret.
List items are matched by their ``id`` or ``name`` when they have one (a centre inserted in
front does not shift the others' passwords), else by position.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "********"
#: Configuration keys whose values are secrets.
SECRET_KEYS = frozenset(
    {"pw", "cp_key", "password", "password_hash", "passphrase", "secret", "token", "api_key"}
)


def _url_password(value: str) -> str | None:
    if "://" not in value or "@" not in value:
        return None
    try:
        return urlsplit(value).password
    except ValueError:
        return None


def _redact_url(value: str) -> str:
    parts = urlsplit(value)
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:{REDACTED}@{host}"))


def redact(document: Any) -> Any:
    """A copy of ``document`` with every secret replaced by :data:`REDACTED`."""
    if isinstance(document, dict):
        out = {}
        for key, value in document.items():
            if key in SECRET_KEYS and value not in (None, ""):
                out[key] = REDACTED
            else:
                out[key] = redact(value)
        return out
    if isinstance(document, list):
        return [redact(v) for v in document]
    if isinstance(document, str) and _url_password(document):
        return _redact_url(document)
    return document


def _key(item: Any) -> tuple[str, Any] | None:
    if isinstance(item, dict):
        for name in ("id", "name"):
            if isinstance(item.get(name), str):
                return name, item[name]
    return None


def restore(document: Any, current: Any) -> Any:
    """``document`` with each :data:`REDACTED` secret taken from ``current`` (the running
    configuration's document) at the same place; a placeholder with nothing to take stays."""
    if isinstance(document, dict):
        base = current if isinstance(current, dict) else {}
        return {k: restore(v, base.get(k)) for k, v in document.items()}
    if isinstance(document, list):
        olds = current if isinstance(current, list) else []
        keyed = {_key(o): o for o in olds if _key(o) is not None}
        out = []
        for i, item in enumerate(document):
            key = _key(item)
            by_position = olds[i] if i < len(olds) else None
            old = keyed.get(key) if key is not None else by_position
            out.append(restore(item, old))
        return out
    if document == REDACTED:
        return current if current is not None else document
    if isinstance(document, str) and isinstance(current, str):
        old = _url_password(current)
        if old and _url_password(document) == REDACTED:
            parts = urlsplit(document)  # the URL as sent, with the running one's password
            host = parts.netloc.rpartition("@")[2]
            return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{old}@{host}"))
    return document
