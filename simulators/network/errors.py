"""What can go wrong, one class per Toxiproxy error.

``str(error)`` says in full what is wrong (for Python callers and logs). ``api_message`` and
``status`` are what the HTTP API answers, word for word as Toxiproxy does where Toxiproxy has a
fixed text (``proxy not found``, ``toxic already exists`` …), so clients that match on them keep
working; the API adds the full sentence as ``detail`` when it says more.
"""

from __future__ import annotations

from typing import ClassVar


class NetworkFaultError(Exception):
    """Base of every error of the fault proxy."""

    status: ClassVar[int] = 500

    def __init__(self, message: str, *, api_message: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.api_message = message if api_message is None else api_message


class BadRequest(NetworkFaultError):
    """A proxy or toxic description is not valid; ``field`` names the offending field."""

    status = 400

    def __init__(
        self,
        field: str,
        problem: str,
        *,
        message: str | None = None,
        api_message: str | None = None,
    ) -> None:
        text = message if message is not None else (f"{field}: {problem}" if field else problem)
        super().__init__(
            text,
            api_message=api_message if api_message is not None else f"bad request body: {text}",
        )
        self.field = field
        self.problem = problem


class MissingField(BadRequest):
    """A required field is absent or empty (``name``, ``upstream``)."""

    def __init__(self, field: str, *, where: str = "") -> None:
        text = f"missing required field: {field}" + (f" {where}" if where else "")
        super().__init__(field, "missing required field", message=text, api_message=text)


class InvalidStream(BadRequest):
    def __init__(self, given: object) -> None:
        super().__init__(
            "stream",
            f"must be 'upstream' or 'downstream', got {given!r}",
            api_message="stream was invalid, can be either upstream or downstream",
        )


class InvalidToxicType(BadRequest):
    def __init__(self, given: object, known: list[str]) -> None:
        super().__init__(
            "type",
            f"{given!r} is not a toxic type (known: {', '.join(known)})",
            api_message="invalid toxic type",
        )


class ProxyNotFound(NetworkFaultError):
    status = 404

    def __init__(self, name: str) -> None:
        super().__init__(f"no proxy named {name!r}", api_message="proxy not found")
        self.name = name


class ProxyAlreadyExists(NetworkFaultError):
    status = 409

    def __init__(self, name: str) -> None:
        super().__init__(
            f"a proxy named {name!r} exists already", api_message="proxy already exists"
        )
        self.name = name


class ToxicNotFound(NetworkFaultError):
    status = 404

    def __init__(self, proxy: str, name: str) -> None:
        super().__init__(
            f"proxy {proxy!r} has no toxic named {name!r}", api_message="toxic not found"
        )
        self.name = name


class ToxicAlreadyExists(NetworkFaultError):
    status = 409

    def __init__(self, proxy: str, name: str) -> None:
        super().__init__(
            f"proxy {proxy!r} has a toxic named {name!r} already (names are unique across both "
            "streams)",
            api_message="toxic already exists",
        )
        self.name = name


class ListenError(NetworkFaultError):
    """The proxy could not listen on its address (in use, not ours, cannot resolve).

    Toxiproxy answers this with 500 and the Go error text; so do we, in the same words.
    """

    status = 500

    def __init__(self, proxy: str, listen: str, reason: str) -> None:
        super().__init__(
            f"proxy {proxy!r} cannot listen on {listen}: {reason}",
            api_message=f"listen tcp {listen}: {reason}",
        )
        self.listen = listen
        self.reason = reason
