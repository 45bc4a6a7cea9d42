"""The reproducibility manifest merged into results.json."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.report import manifest
from protocols.smcrypto import sm3

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 1, 8, 7, 30, tzinfo=UTC)


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
        check=True,
        capture_output=True,
    )


@pytest.fixture
def target(tmp_path: Path) -> Path:
    (tmp_path / "fleet.yaml").write_text("meters: []\n")
    path = tmp_path / "reference.yaml"
    path.write_text("name: reference\nplant_seed: 42\nfleet: fleet.yaml\nmn: 'x: y'\n")
    return path


def _build(target: Path, repo: Path, **plugin: object) -> dict[str, Any]:
    return manifest.build(
        plugin_manifest=plugin,
        target=target,
        profile="full",
        clock="real",
        suites=["upload"],
        command=["carbench", "run", "--target", str(target)],
        pytest_command=[sys.executable, "-m", "pytest"],
        started=T0,
        ended=T1,
        durations={"wall_s": 450.0},
        repo=repo,
    )


def test_fields(target: Path, tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "reference.yaml")
    _git(tmp_path, "commit", "-q", "-m", "x")
    m = _build(target, tmp_path)
    assert m["bench"] == {"name": "carbench", "version": manifest.bench_version()}
    git = m["git"]
    assert isinstance(git, dict) and len(git["revision"]) == 40 and git["dirty"] is False
    assert m["python"] == {"version": sys.version.split()[0], "implementation": "cpython"}
    assert isinstance(m["platform"], dict) and m["platform"]["system"]
    t = m["target"]
    assert isinstance(t, dict)
    assert t["sm3"] == sm3(target.read_bytes()).hex()
    assert t["declaration"]["fleet"] == "fleet.yaml"
    assert [Path(f["path"]).name for f in t["referenced_files"]] == ["fleet.yaml"]
    assert m["seeds"] == {"plant_seed": 42}  # from the target when the plugin gave none
    assert (m["profile"], m["clock"], m["suites"]) == ("full", "real", ["upload"])
    assert m["started"] == "2025-03-01T08:00:00+00:00" and m["ended"].startswith("2025-03-01T08:07")
    assert m["durations"] == {"wall_s": 450.0}
    assert m["command"][:2] == ["carbench", "run"]


def test_dirty_flag(target: Path, tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", "reference.yaml")
    _git(tmp_path, "commit", "-q", "-m", "x")
    target.write_text("name: changed\n")
    git = _build(target, tmp_path)["git"]
    assert isinstance(git, dict) and git["dirty"] is True


def test_not_a_checkout(target: Path, tmp_path: Path) -> None:
    git = _build(target, tmp_path / "nowhere")["git"]
    assert isinstance(git, dict) and git["revision"] is None and "not a git checkout" in git["note"]


def test_plugin_entries_kept_and_hashed(target: Path, tmp_path: Path) -> None:
    scenario = tmp_path / "outage.yaml"
    scenario.write_text("name: outage\n")
    m = _build(
        target,
        tmp_path,
        seeds={"plant": 7},
        fleet={"file": str(tmp_path / "fleet.yaml"), "name": "small"},
        scenario_files=[str(scenario)],
        extra="kept",
    )
    assert m["seeds"] == {"plant": 7} and m["extra"] == "kept"
    fleet = {"path": str(tmp_path / "fleet.yaml"), "sm3": sm3(b"meters: []\n").hex()}
    assert m["fleet"] == {"file": fleet, "name": "small"}
    assert m["scenario_files"] == [{"path": str(scenario), "sm3": sm3(b"name: outage\n").hex()}]


def test_bad_target(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [unclosed\n")
    with pytest.raises(manifest.ManifestError, match="not valid YAML"):
        manifest.target_entry(bad)
    with pytest.raises(manifest.ManifestError, match="cannot read target file"):
        manifest.target_entry(tmp_path / "none.yaml")


def test_evidence_hashes(tmp_path: Path) -> None:
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "a.txt").write_text("a")
    (tmp_path / "results.json").write_text("{}")
    assert manifest.evidence_hashes(tmp_path, ("results.json",)) == (
        {"evidence/a.txt": sm3(b"a").hex()},
        {},
    )


def test_an_unreadable_run_file_is_listed_and_the_others_still_hashed(tmp_path: Path) -> None:
    (tmp_path / "evidence").mkdir()
    (tmp_path / "evidence" / "a.txt").write_text("a")
    (tmp_path / "evidence" / "dangling").symlink_to(tmp_path / "nowhere")  # not followed
    with socket.socket(socket.AF_UNIX) as sock:  # a file no one can open, root included
        sock.bind(str(tmp_path / "evidence" / "control.sock"))
        files = manifest.evidence_hashes(tmp_path, ())
    assert files.sm3 == {"evidence/a.txt": sm3(b"a").hex()}
    assert files.unreadable == {"evidence/control.sock": "No such device or address"}


def test_the_target_files_secrets_are_hashed_never_shown(tmp_path: Path) -> None:
    target = tmp_path / "box.yaml"
    target.write_text(
        "name: box\nparameters: {pw: '123456', mn: M1}\n"
        "management: {accounts: {administrator: {user: admin, password: 'S3cret!'}}}\n"
    )
    entry = manifest.target_entry(target)
    shown = json.dumps(entry)
    assert "S3cret!" not in shown and "123456" not in shown
    assert entry["declaration"]["parameters"] == {"pw": "(redacted)", "mn": "M1"}
    assert entry["declaration"]["management"]["accounts"]["administrator"]["user"] == "admin"
    assert entry["sm3"] == manifest.sm3_file(target)  # the file as it is
