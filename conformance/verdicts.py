"""Verdicts other than pass and fail, raised by tests (or the bench) and mapped by the plugin.

DESIGN.md "Terms used throughout": a test ends in one of six verdicts. *pass* and *fail* come
from pytest itself (an assertion about the terminal failed: fail). The others are raised:

- :class:`Inconclusive` — the clause could not be judged (the measurement's uncertainty
  straddles the limit, the DUT's management interface did not answer, the run was too short);
- :class:`PendingOperator` — a lab step awaits a person (a prompt nobody answered);
- :class:`NotApplicable` — the implementation statement does not declare the feature.

:class:`LeftOut` is no verdict: the profile did not give the test the time it needs, and the
report lists it as not run.

Any other exception is *error*: the bench itself failed and the run says nothing about the
terminal. :class:`ClauseFailure` is the explicit way for a helper outside the suites to say
"the terminal failed this clause" (a bare ``assert`` deep in bench code is a bench bug, not a
verdict about the terminal, and is classed as error).

Every message names the clause it is about, so a report line reads on its own.
"""

from __future__ import annotations

from collections.abc import Sequence


def _quote(clauses: Sequence[str], message: str) -> str:
    where = ", ".join(clauses)
    return f"{where}: {message}" if where else message


class VerdictException(Exception):
    """A verdict other than pass/fail, with the clauses it is about."""

    verdict = ""

    def __init__(self, message: str, *clauses: str) -> None:
        self.clauses = tuple(clauses)
        self.message = message
        super().__init__(_quote(self.clauses, message))


class Inconclusive(VerdictException):
    """The clause could not be judged (say why, and what would let it be judged)."""

    verdict = "inconclusive"


class PendingOperator(VerdictException):
    """A lab step awaits a person: the prompt, and what the bench would have done next."""

    verdict = "pending-operator"


class NotApplicable(VerdictException):
    """The implementation statement does not declare what this test judges."""

    verdict = "not-applicable"


class LeftOut(VerdictException):
    """The run's profile leaves this test out (its budget of time is spent): no verdict, the
    test is listed as not run with the reason."""

    verdict = "not-run"


class ClauseFailure(AssertionError):
    """The terminal failed a clause (raised by judging helpers outside the suites' own code)."""

    def __init__(self, message: str, *clauses: str) -> None:
        self.clauses = tuple(clauses)
        super().__init__(_quote(self.clauses, message))


def judge(condition: bool, message: str, *clauses: str) -> None:
    """Fail the clauses unless ``condition`` holds (for helpers; tests may use ``assert``)."""
    if not condition:
        raise ClauseFailure(message, *clauses)
