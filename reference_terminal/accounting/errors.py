"""What can go wrong in an emission calculation, each as its own exception.

Every message is meant for the person who wrote the input: it names the source and the field
that is wrong and, where the rule comes from a formula, quotes it (GB/T 32150 as FACTS.md
states it). All derive from :class:`AccountingError`, itself a :class:`ValueError`, so a caller
that only wants "bad input" catches one class.
"""

from __future__ import annotations


class AccountingError(ValueError):
    """Any input that cannot be accounted for."""


class UnitError(AccountingError):
    """A quantity or unit string that cannot be read (the message quotes the text)."""


class IncompatibleUnits(UnitError):
    """A conversion between units of different dimensions (e.g. GJ to t)."""


class LibraryError(AccountingError):
    """A factor library file or entry that is malformed (names the file and the field)."""


class UnknownFactor(AccountingError):
    """A fuel or factor name the library does not have (in the vintage asked for)."""


class AmbiguousFactor(AccountingError):
    """A name the library has in several vintages or data years, with none chosen."""


class VintageMix(AccountingError):
    """A calculation that would take factors from two vintages (FACTS.md: never mix them)."""


class SourceError(AccountingError):
    """A problem with one field of one emission source.

    ``source`` and ``field`` are kept as attributes so a CLI or an API can point at them.
    """

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source = source
        self.field = field
        self.detail = message
        super().__init__(f"source {source!r}: {field}: {message}")


class MissingParameter(SourceError):
    """A parameter the source's formula needs and neither the input nor the library gives."""


class InvalidParameter(SourceError):
    """A parameter present but unusable: wrong unit, out of range, or in conflict with another."""
