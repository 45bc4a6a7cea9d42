"""Operator records through a run: without them a lab clause awaits an operator and the run
exits 1; ``carbench answer`` turns records into verdicts and signs the run again; a person at
the run's terminal answers the prompt (driven through tmux, as a person would type)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.report import signing
from conformance.results import RunResults, Verdict

REPO = Path(__file__).resolve().parents[2]
CARBENCH = str(Path(sys.executable).parent / "carbench")
SUPPLY_TEST = (
    "conformance/suites/test_lab_procedures.py::"
    "test_a_lab_or_declared_clause_is_judged_from_its_record[TC-ISC2-7.1.2-OP]"
)


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The reference terminal as a box with no records of its own yet."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # a bench key of its own
    target = tmp_path / "box.yaml"
    target.write_text(
        f"extends: {REPO / 'fixtures/targets/reference.yaml'}\nname: a box\nrecords: null\n"
    )
    return target


def carbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CARBENCH, *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def verdict(run: Path) -> tuple[Verdict, str]:
    document = signing.read(run / "results.json")
    signing.verify(document, run_dir=run)  # results, every run file and report.html
    (test,) = RunResults.from_json(document).tests
    return test.verdict, test.reason


def test_without_a_record_the_run_awaits_an_operator_until_answered(
    box: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    # chosen by its clause: a lab clause's record is its test case
    done = carbench("run", "--target", str(box), "--clause", "ISC-2 §7.1.2", "--out", str(run),
                    "--no-ask")  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert verdict(run)[0] is Verdict.PENDING_OPERATOR
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        'operator: Li Wei\nanswers:\n  "ISC-2 §7.1.2":\n    result: yes\n'
        "    values: {supply_voltage: [198, 242], supply_frequency: [49, 51]}\n"
    )
    incomplete = tmp_path / "incomplete.yaml"
    incomplete.write_text('operator: Li Wei\nanswers:\n  "ISC-2 §7.1.2": {result: no}\n')
    done = carbench("answer", str(run), "--answers", str(incomplete), "--no-ask")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "not taken: ISC-2 §7.1.2: the record has no supply_voltage" in done.stdout
    assert "nothing changed" in done.stdout and verdict(run)[0] is Verdict.PENDING_OPERATOR
    done = carbench("answer", str(run), "--answers", str(answers), "--no-ask")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 record(s) given; 0 clause(s) still await one" in done.stdout
    result, reason = verdict(run)
    assert result is Verdict.PASS, reason
    assert "supply_voltage 198…242" in reason and "recorded after the run" in reason
    record = next(run.glob("evidence/*TC-ISC2-7.1.2-OP*/record.json"))
    assert '"by": "Li Wei"' in record.read_text()


def _screen(socket: str) -> str:
    return subprocess.run(
        ["tmux", "-L", socket, "capture-pane", "-p", "-t", "bench"],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip


def _when_shown(socket: str, text: str, within: float = 60.0) -> None:
    deadline = time.monotonic() + within
    while text not in _screen(socket):
        assert time.monotonic() < deadline, f"never shown: {text!r}\n{_screen(socket)}"
        time.sleep(0.2)


def _type(socket: str, keys: str) -> None:
    subprocess.run(["tmux", "-L", socket, "send-keys", "-t", "bench", keys, "Enter"], check=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed: no terminal")
def test_a_person_at_the_terminal_answers_the_prompt(box: Path, tmp_path: Path) -> None:
    run, status = tmp_path / "run", tmp_path / "status"
    socket = f"carbench-test-{os.getpid()}"
    command = (
        f"{CARBENCH} run --target {box} --test '{SUPPLY_TEST}' --out {run} --ask "
        f"--operator 'Li Wei'; echo $? > {status}"
    )
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-s", "bench", "-x", "160", "-y", "50",
         "-c", str(REPO), command],
        check=True, env=env,
    )  # fmt: skip
    try:
        _when_shown(socket, "Seen? [y]es / [n]o / [s]kip")
        _type(socket, "y")
        _when_shown(socket, "supply_voltage (the range 198…242 V to cover; low high)")
        _type(socket, "195 245")
        _when_shown(socket, "supply_frequency")
        _type(socket, "49 51")
        _when_shown(socket, "Note (Enter for none)")
        _type(socket, "Chroma 61505, ten minutes at each end")
        deadline = time.monotonic() + 60
        while not status.exists():
            assert time.monotonic() < deadline, _screen(socket)
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False)
    assert status.read_text().strip() == "0"
    result, reason = verdict(run)
    assert result is Verdict.PASS, reason
    record = next(run.glob("evidence/*TC-ISC2-7.1.2-OP*/record.json")).read_text()
    assert '"by": "Li Wei"' in record and "Chroma 61505" in record
