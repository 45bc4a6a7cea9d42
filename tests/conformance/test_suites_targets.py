"""The target files shipped in fixtures/targets load, and say what they are."""

from __future__ import annotations

from pathlib import Path

import pytest

from conformance.target import FEATURES, load_target

TARGETS = Path(__file__).resolve().parents[2] / "fixtures" / "targets"


@pytest.mark.parametrize("path", sorted(TARGETS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_target_file_loads(path: Path) -> None:
    target = load_target(path)
    assert target.name and target.implementation.vendor
    assert set(target.implementation.features) <= set(FEATURES)
    if path.stem.startswith("reference-broken-"):
        assert target.adapter.kind == "reference"
        assert target.adapter.mutation == path.stem.removeprefix("reference-broken-")
        # the mutation is the only difference, but for features a mutant cannot keep, each
        # with the reason in its notes
        reference = load_target(TARGETS / "reference.yaml").implementation
        statement = target.implementation
        dropped = set(reference.features) - set(statement.features)
        assert all(f"feature:{f}" in statement.notes for f in dropped), dropped
        same = {"features": reference.features, "notes": reference.notes}
        assert statement.model_copy(update=same) == reference


def test_the_reference_target_runs_in_virtual_time_with_power_cuts() -> None:
    target = load_target(TARGETS / "reference.yaml")
    assert target.clocks[0] == "virtual" and target.power.switch == "fuse"
    assert len(target.uplink.centres) >= 3  # CSMT §7.3: the internet platform and two more
    assert target.implementation.declares("protocol:dlt645-2007")
    assert target.implementation.declares("feature:accounting")
    # ISC-2 §7.4.1: it uploads over mutual TLS with the certificate the platforms' CA issued
    assert target.implementation.declares("feature:pki")
    assert "feature:pki" not in target.implementation.notes
