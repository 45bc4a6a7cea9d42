"""Mutation check (issue 7 acceptance): a deliberately broken reference terminal — one fault
switched on in its target file — fails exactly the clauses concerned, and the healthy one
passes the same tests. A suite that cannot fail proves nothing.

Each case runs a selection of suite tests (the one the fault must fail and a control; the
healthy terminal runs them all) in a pytest process of its own against
``fixtures/targets/reference[-broken-*].yaml`` and reads the verdicts from the results JSON:
the quick profile's rig, in virtual time.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.mutation_cmd import load_mutations
from conformance.results import Verdict
from tests.conformance.suite_runs import TARGETS, run_tests

WALL_LIMIT_S = 900

UPLOAD = "conformance/suites/test_upload.py::"
FRAMES = UPLOAD + "test_every_frame_is_hj212_conformant"
REALTIME = UPLOAD + "test_realtime_indicators_every_15_minutes"
TWO_CENTRES = UPLOAD + "test_at_least_two_centres_at_once"
RETRANSMISSION = UPLOAD + "test_retransmission_after_network_errors"
POWER_LOSS = "conformance/suites/test_storage.py::test_data_survives_48_hours_without_power"
ACCURACY = "conformance/suites/test_accuracy.py::test_stored_values_equal_the_meters_readings"
FIGURES = (
    "conformance/suites/test_processing.py::"
    "test_minute_figures_are_the_meters_increments_and_extremes"
)
ACCOUNTING = "conformance/suites/test_accounting.py::"
EMISSIONS = ACCOUNTING + "test_emissions_per_minute_follow_activity_and_factor"
CERTIFICATES = "conformance/suites/test_security.py::test_platform_connections_use_certificates"
TIMELY = "conformance/suites/test_accuracy_items.py::test_collected_data_are_timely_and_true"
OUT_OF_RANGE = (
    "conformance/suites/test_security.py::test_platform_requests_out_of_range_change_nothing"
)

#: mutation → the tests run against it: the healthy terminal runs them all; a broken one runs
#: the test it must fail and a control that must still pass (the 48-hour power-loss scenario,
#: the costly one, only where it is the test concerned)
SELECTION = {
    "none": [
        FRAMES,
        FIGURES,
        REALTIME,
        TWO_CENTRES,
        RETRANSMISSION,
        POWER_LOSS,
        ACCURACY,
        EMISSIONS,
        CERTIFICATES,
        TIMELY,
        OUT_OF_RANGE,
    ],
    "sync-off": [POWER_LOSS, FRAMES],
    "no-retransmission": [RETRANSMISSION, FRAMES],
    "bad-crc": [FRAMES, ACCURACY],
    "no-extremes": [FIGURES, TWO_CENTRES],
    "rt-20min": [REALTIME, TWO_CENTRES],
    # the control judges none of its clauses: the boundary's set-up test passes CSMT §9.3's
    # items that the wire's roll-up of the wrong emissions fails in a whole run
    "wrong-factor": [EMISSIONS, FRAMES],
    "no-client-certificate": [CERTIFICATES, FRAMES],
    "no-readings": [TWO_CENTRES, FRAMES],
    "ram-store": [POWER_LOSS, FRAMES],
    "late-upload": [TIMELY, FIGURES],
    # the frames test judges ISC-2 §7.2.4, which the negative suite fails in a whole run
    "accepts-bad-requests": [OUT_OF_RANGE, FIGURES],
}

#: mutation → the tests it must fail (every other test of its selection must pass)
EXPECTED = {
    "none": set(),
    "sync-off": {"test_data_survives_48_hours_without_power"},
    "no-retransmission": {"test_retransmission_after_network_errors"},
    "bad-crc": {"test_every_frame_is_hj212_conformant"},
    # every window arrives with its figure, as sound HJ 212: only its extremes are missing
    "no-extremes": {"test_minute_figures_are_the_meters_increments_and_extremes"},
    "rt-20min": {"test_realtime_indicators_every_15_minutes"},
    "wrong-factor": {"test_emissions_per_minute_follow_activity_and_factor"},
    "no-client-certificate": {"test_platform_connections_use_certificates"},
    # it boots, connects and uploads on schedule, every item a flag without a value
    "no-readings": {"test_at_least_two_centres_at_once"},
    "ram-store": {"test_data_survives_48_hours_without_power"},
    # every window arrives whole and right, each two minutes after the healthy one would
    "late-upload": {"test_collected_data_are_timely_and_true"},
    # its answers say yes; what it does is what the healthy one does
    "accepts-bad-requests": {"test_platform_requests_out_of_range_change_nothing"},
}
#: the clauses each must fail, as the clause matrix shows them (the whole-run check's own list)
EXPECTED_CLAUSES = {m.name: set(m.fails) for m in load_mutations()}


def target_file(mutation: str) -> Path:
    name = "reference.yaml" if mutation == "none" else f"reference-broken-{mutation}.yaml"
    return TARGETS / name


@pytest.mark.timeout(WALL_LIMIT_S + 60)
@pytest.mark.parametrize("mutation", list(EXPECTED))
def test_a_broken_terminal_fails_exactly_the_clauses_concerned(
    mutation: str, tmp_path: Path
) -> None:
    results = run_tests(
        SELECTION[mutation], target_file(mutation), tmp_path, wall_limit_s=WALL_LIMIT_S
    )
    verdicts = {t.nodeid.split("::")[-1]: t for t in results.tests}
    assert len(verdicts) == len(SELECTION[mutation]), sorted(verdicts)
    failed = {name for name, t in verdicts.items() if t.verdict is Verdict.FAIL}
    others = {
        name: (t.verdict.value, t.reason[:300])
        for name, t in verdicts.items()
        if name not in failed and t.verdict is not Verdict.PASS
    }
    assert not others, f"{mutation}: neither pass nor fail: {others}"
    assert failed == EXPECTED[mutation], {n: verdicts[n].reason[:400] for n in failed}
    verdicts_by_clause = results.clause_verdicts()
    failing_clauses = {c for c, v in verdicts_by_clause.items() if v is Verdict.FAIL}
    # of the clauses the whole run must fail, those this selection judges
    assert failing_clauses == EXPECTED_CLAUSES[mutation] & set(verdicts_by_clause)
    assert results.manifest["adapter"]["mutation"] == mutation
