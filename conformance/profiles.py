"""The run profiles: which fleet a run stands up, how long a test may take, what runs.

- ``quick``: the small fleet; every test, long clauses shortened (minutes in virtual time).
- ``full``: the works fleet; long clauses at full length (the 48-hour cut, a week offline).
- ``hil``: hardware-in-the-loop on the wall clock in at most 30 minutes: the small fleet on
  real sockets and pseudo-terminals, only the tests marked ``hil`` (those that judge in a few
  minutes of plant time), each held to its budget as it goes; what it leaves out, and why, is
  listed in the report.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    fleet: str  # a file of fixtures/fleets/
    help: str
    #: Wall seconds an ``async def`` test may take before the bench counts as stalled.
    test_wall_limit_s: float
    #: Longest plant time (s) a test may ask for on the wall clock.
    real_budget_s: float
    clocks: tuple[str, ...] = ("virtual", "real")
    #: Only the tests marked with the profile's name run (the others are listed as not run).
    marked_only: bool = False
    #: Wall seconds the whole run may spend on tests; later ones are left out (listed).
    session_budget_s: float | None = None


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        "quick",
        "small.yaml",
        "quick: minutes, small fleet",
        test_wall_limit_s=900.0,
        real_budget_s=15 * 60.0,
    ),
    # the full profile plays the 48-hour power-loss scenario on the works fleet (13 minutes
    # here beside other work; 94 on a busier day with the meters' wire) and a week offline on
    # it (35 minutes), with room for a slower machine
    "full": Profile(
        "full",
        "works.yaml",
        "full: long clauses at full length, works fleet",
        test_wall_limit_s=8 * 3600.0,
        real_budget_s=8 * 3600.0,
    ),
    "hil": Profile(
        "hil",
        "small.yaml",
        "hil: the wall clock, at most 30 minutes, the tests marked hil",
        test_wall_limit_s=900.0,
        real_budget_s=300.0,
        clocks=("real",),
        marked_only=True,
        session_budget_s=27 * 60.0,  # the warm-up and the report take the rest of 30
    ),
}
