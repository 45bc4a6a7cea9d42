"""The reproducibility manifest: everything needed to re-run a run and get the same verdicts.

It is merged into ``RunResults.manifest`` before signing, so a signature also vouches for which
bench, target declaration, seeds and scenario files produced the verdicts. Files are named by
path and SM3 hash: a lab re-running years later can tell whether it has the same inputs.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from common import yaml_input
from protocols.smcrypto import Sm3

#: manifest keys the conformance plugin knows better than the bench (it ran the scenarios)
PLUGIN_OWNED = ("seeds", "fleet", "scenario_files", "scenarios", "platforms")


class ManifestError(Exception):
    """An input of the manifest (the target file) cannot be read."""


def sm3_file(path: Path) -> str:
    h = Sm3()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def bench_version() -> str:
    try:
        return metadata.version("carbench")
    except metadata.PackageNotFoundError:  # run from a bare checkout
        return "unknown"


def git_state(repo: Path) -> dict[str, Any]:
    """Revision and dirty flag; a run from an exported tree says so instead of failing."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(repo), *args], check=False, capture_output=True, text=True, timeout=30
        )
        if done.returncode:
            raise OSError(done.stderr.strip())
        return done.stdout.strip()

    try:
        revision = git("rev-parse", "HEAD")
        changed = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError) as exc:
        return {"revision": None, "dirty": None, "note": f"not a git checkout: {exc}"}
    return {"revision": revision, "dirty": bool(changed)}


def _referenced_files(value: Any, base: Path) -> Iterable[Path]:
    """Files a target declaration points at (fleet, scenarios, certificates...)."""
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _referenced_files(item, base)
    elif isinstance(value, list):
        for item in value:
            yield from _referenced_files(item, base)
    elif isinstance(value, str) and "\n" not in value and len(value) < 300:
        for candidate in (base / value, Path(value)):
            try:
                if candidate.suffix and candidate.is_file():
                    yield candidate
                    break
            except OSError:
                break


def describe_file(path: Path) -> dict[str, Any]:
    try:
        return {"path": str(path), "sm3": sm3_file(path)}
    except OSError as exc:
        return {"path": str(path), "sm3": None, "note": f"unreadable: {exc.strerror or exc}"}


#: keys whose values are secrets: the reports and the dossier show that there is one, not it
SECRET_KEY = re.compile(r"(^|_)(password|passwd|pw|secret|token|private_key)$", re.IGNORECASE)
REDACTED = "(redacted)"


def redacted(value: Any) -> Any:
    """``value`` with every secret (a password, an HJ 212 PW, a token) replaced."""
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and SECRET_KEY.search(k) and v else redacted(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def target_entry(path: Path) -> dict[str, Any]:
    """The target file: path, hash and its declaration (implementation statement, PIXIT)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ManifestError(f"cannot read target file {path}: {exc.strerror or exc}") from None
    try:
        declaration = yaml_input.load(raw.decode("utf-8"))
    except yaml.YAMLError as exc:
        raise ManifestError(f"target file {yaml_input.where(str(path), exc)}") from None
    except UnicodeDecodeError as exc:
        raise ManifestError(f"target file {path} is not UTF-8 at byte {exc.start}") from None
    h = Sm3(raw)
    files = sorted({str(p): p for p in _referenced_files(declaration, path.parent)}.items())
    return {
        "path": str(path),
        "sm3": h.hexdigest(),  # of the file as it is: the secrets below are hashed, not shown
        "declaration": redacted(declaration),
        "referenced_files": [describe_file(p) for _, p in files],
    }


def _with_hashes(value: Any) -> Any:
    """Plugin entries naming files (``fleet: path``, ``scenario_files: [paths]``) get hashes."""
    if isinstance(value, str) and Path(value).is_file():
        return describe_file(Path(value))
    if isinstance(value, list):
        return [_with_hashes(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _with_hashes(v) for k, v in value.items()}
    return value


def build(
    *,
    plugin_manifest: Mapping[str, Any],
    target: Path,
    profile: str,
    clock: str,
    suites: list[str],
    command: list[str],
    pytest_command: list[str],
    started: datetime,
    ended: datetime,
    durations: Mapping[str, Any],
    repo: Path,
) -> dict[str, Any]:
    """The plugin's manifest with the bench's facts on top (the bench saw the whole run)."""
    merged: dict[str, Any] = dict(plugin_manifest)
    for key in PLUGIN_OWNED:
        if key in merged:
            merged[key] = _with_hashes(merged[key])
    target_info = target_entry(target)
    seeds = merged.get("seeds")
    if seeds is None and isinstance(target_info["declaration"], Mapping):
        seeds = {k: v for k, v in target_info["declaration"].items() if "seed" in str(k)}
    merged.update(
        {
            "bench": {"name": "carbench", "version": bench_version()},
            "git": git_state(repo),
            "python": {
                "version": sys.version.split()[0],
                "implementation": sys.implementation.name,
            },
            "platform": {
                "system": platform.system(),
                "release": platform.release(),
                "machine": platform.machine(),
                "node": platform.node(),
            },
            "target": target_info,
            "profile": profile,
            "clock": clock,
            "suites": suites or ["all"],
            "seeds": seeds or {},
            "command": command,
            "pytest_command": pytest_command,
            "started": started.isoformat(),
            "ended": ended.isoformat(),
            "durations": dict(durations),
        }
    )
    return merged


class RunFiles(NamedTuple):
    sm3: dict[str, str]
    #: Files that could not be read (path → why): listed, not signed, and the run goes on.
    unreadable: dict[str, str]


def evidence_hashes(run_dir: Path, exclude: Iterable[str]) -> RunFiles:
    """SM3 of every file the run left (evidence, junit.xml, allure-results/, the log), so the
    signature vouches for them too. Paths are relative to the run directory, '/'-separated.
    A filesystem mounted inside (a terminal's power-cut disk left behind by a crash) is not
    entered: what it shows lives in its backing directory."""
    skip = set(exclude)
    hashes: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for top, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if not os.path.ismount(os.path.join(top, d)))
        for name in sorted(files):
            path = Path(top, name)
            rel = path.relative_to(run_dir).as_posix()
            if path.is_symlink() or rel in skip:
                continue
            try:
                hashes[rel] = sm3_file(path)
            except OSError as exc:
                unreadable[rel] = exc.strerror or str(exc)
    return RunFiles(dict(sorted(hashes.items())), unreadable)
