"""The GB/T 32150 source kinds are written twice on purpose: in the bench's plant
(``simulators.fleet.accounting``, which target files use) and in the reference terminal
(``reference_terminal.accounting.methods``), which imports nothing of the bench. The reference
adapter hands a target's kinds to the terminal as they are, so the two lists must stay one."""

from __future__ import annotations

from typing import get_args

from reference_terminal.accounting.methods import SourceKindName
from simulators.fleet.accounting import SourceKind


def test_the_plant_and_the_reference_terminal_name_the_same_source_kinds() -> None:
    assert get_args(SourceKind) == get_args(SourceKindName)
