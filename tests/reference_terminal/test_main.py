"""``python -m reference_terminal --config FILE``: the terminal runs alone, as on a gateway."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml

from bench.terminal_for_fleet import terminal_config
from reference_terminal.security.secrets import SealedFile, SecretBox
from reference_terminal.security.users import USERS_FILE
from simulators.fleet.runner import running_fleet
from tests.reference_terminal.security.harness import secure_config

ROOT = Path(__file__).resolve().parents[2]
SMALL = ROOT / "fixtures" / "fleets" / "small.yaml"


def _stored_readings(database: Path) -> int:
    """0 while the terminal is still creating its tables (the file exists before they do)."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        try:
            return int(db.execute("select count(*) from readings").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise
            return 0


def test_runs_from_a_config_file_stores_readings_and_stops_on_sigterm(tmp_path: Path) -> None:
    database = tmp_path / "terminal.db"

    async def main() -> None:
        async with running_fleet(SMALL) as fleet:
            config = terminal_config(fleet, storage_url=f"sqlite:///{database}", serial=2.0)
            path = tmp_path / "terminal.yaml"
            path.write_text(yaml.safe_dump(config.model_dump(mode="json"), allow_unicode=True))
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "reference_terminal",
                "--config",
                str(path),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            try:
                deadline = time.monotonic() + 30
                stored = 0
                while time.monotonic() < deadline and stored < 20:
                    await asyncio.sleep(0.5)
                    if database.exists():
                        stored = _stored_readings(database)
                assert stored >= 20
            finally:
                process.send_signal(signal.SIGTERM)
                _, err = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, err.decode()

    asyncio.run(main())


def run_main(config: Path) -> subprocess.CompletedProcess[str]:
    """``python -m reference_terminal --config FILE`` for a configuration it must refuse."""
    return subprocess.run(
        [sys.executable, "-m", "reference_terminal", "--config", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bad_config_exits_2_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("groups: [{id: g, period_s: 0.1}]\n")
    result = run_main(path)
    assert result.returncode == 2
    assert "groups.0.period_s" in result.stderr


def test_a_management_api_is_never_served_open_unless_the_file_says_so(tmp_path: Path) -> None:
    path = tmp_path / "silent.yaml"
    path.write_text("api: {host: 127.0.0.1, port: 0}\n")  # says nothing about security
    result = run_main(path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"{path}: security: the management API at 127.0.0.1:0 would be open to anyone: give "
        "security.enabled: true with an administrator (security.initial_users), or write "
        "security.enabled: false to run it open on purpose"
    )


def test_altered_stored_accounts_stop_it_with_exit_3_naming_the_clause(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.4(1): its accounts file, changed behind its back, is not taken as its own."""
    config = secure_config(tmp_path).model_dump(mode="json")
    config["api"] = {"host": "127.0.0.1", "port": 0}
    box = SecretBox.from_key_file(config["security"]["key_file"])
    accounts = SealedFile(Path(config["security"]["state_dir"]) / USERS_FILE, box, "users")
    accounts.write({"version": 1, "users": []})
    sealed = bytearray(accounts.path.read_bytes())
    sealed[len(sealed) // 2] ^= 1
    accounts.path.write_bytes(bytes(sealed))
    path = tmp_path / "terminal.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True))
    result = run_main(path)
    assert result.returncode == 3, result.stderr
    assert "refuses to start" in result.stderr
    assert "fails its HMAC-SM3 check" in result.stderr
    assert "ISC-2 §7.4.1.4(1)" in result.stderr
