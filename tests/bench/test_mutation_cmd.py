"""The mutations file: every broken terminal with the clauses it must fail; a bad file is
refused with its path, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.mutation_cmd import Checked, MutationsError, as_process, load_mutations
from conformance.catalogue import load_catalogue
from conformance.target import load_target


def test_the_shipped_file_names_a_target_for_every_mutation_and_the_healthy_one() -> None:
    mutations = {m.name: m for m in load_mutations()}
    assert mutations["none"].fails == frozenset()
    assert all(m.target.is_file() for m in mutations.values())
    assert {"sync-off", "ram-store", "no-readings"} <= set(mutations)


def test_the_shipped_file_names_requirements_never_headings() -> None:
    catalogue = load_catalogue()
    named = {c for m in load_mutations() for c in m.fails}
    assert not {c for c in named if c not in catalogue}, "clauses the catalogue does not know"
    assert not {c for c in named if not catalogue.get(c).is_requirement}, "headings"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("- a list", "a mapping of mutation name"),
        ("sync-off: {fails: []}", "sync-off.target"),
        ("sync-off: {target: x.yaml, fails: ISC-2 §9.2}", "sync-off.fails"),
        ("sync-off: {target: x.yaml, fails: [], at_least: maybe}", "sync-off.at_least"),
    ],
)
def test_a_bad_file_is_refused_naming_the_key(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "mutations.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MutationsError, match=str(path)) as refused:
        load_mutations(path)
    assert where in str(refused.value)


def test_a_run_is_exact_only_when_it_fails_what_it_must_and_nothing_else() -> None:
    def checked(failed: list[str], *, at_least: bool = False) -> Checked:
        return Checked("m", "/run", 1.0, ["A", "B"], failed, [], at_least)

    assert checked(["A", "B"]).exact
    assert not checked(["A"]).exact  # one missing
    assert not checked(["A", "B", "C"]).exact  # one beyond its clauses
    assert checked(["A", "B", "C"], at_least=True).exact  # broken at its root
    assert not checked(["A", "C"], at_least=True).exact


def test_as_a_process_each_mutant_runs_with_no_management_profile(tmp_path: Path) -> None:
    mutation = {m.name: m for m in load_mutations()}["sync-off"]
    target = load_target(as_process(mutation.target, tmp_path))
    assert target.adapter.kind == "process"
    assert target.adapter.mutation == "sync-off"  # the mutant's own fault, kept
    assert target.management.profile == "none"
