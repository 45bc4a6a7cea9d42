"""The ``carbench`` command: decode captured frames, and the self-check main job."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bench.cli import main

V0 = (
    "##0101QN=20160801085857223;ST=32;CN=1062;PW=100000;MN=010000A8900016F000169DC0;"
    "Flag=5;CP=&&RtdInterval=30&&1C80"
)
ENERGY_REPLY = "FE FE FE FE 68 94 35 21 90 88 55 68 91 08 33 33 34 33 59 35 33 33 81 16"
WATER_READ = "FE FE FE FE 68 10 44 33 22 11 00 33 78 01 03 1F 90 00 80 16"


def run(*args: str, stdin: str | None = None) -> tuple[int, list[dict[str, object]], str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return result.exit_code, lines, result.stderr


def test_decode_hj212_names_every_field() -> None:
    code, (out,), _ = run("decode", "hj212", V0 + "\\r\\n")
    assert code == 0
    assert out["ok"] is True
    assert out["cn"] == 1062 and out["command"] == "set_rtd_interval"
    assert out["flag"] == {"value": 5, "version": 1, "split": False, "ack": True}
    assert out["cp"] == {
        "text": "RtdInterval=30",
        "data_time": None,
        "params": {"RtdInterval": "30"},
        "pollutants": [],
    }
    assert out["crc"] == {"found": "1C80", "computed": "1C80", "algorithm": "hj212-appendix-a"}
    assert "cli_notes" not in out


def test_a_frame_without_trailer_gets_one_and_says_so() -> None:
    _, (out,), _ = run("decode", "hj212", V0)
    assert out["cli_notes"] == ["no <CR><LF> given: the CLI appended one"]


def test_a_broken_frame_exits_1_and_says_what_is_wrong() -> None:
    code, (out,), err = run("decode", "hj212", V0.replace("RtdInterval=30", "RtdInterval=31"))
    assert code == 1
    assert out["ok"] is False
    assert out["error"]["reason"] == "crc"  # type: ignore[index]
    assert "computed 2080" in err and "carries 1C80" in err


def test_length_mismatch_gives_both_values() -> None:
    code, (out,), _ = run("decode", "hj212", V0.replace("##0101", "##0102"))
    assert code == 1
    assert "declares a data segment of 102 bytes, the frame has 101" in out["error"]["message"]  # type: ignore[index]


def test_meter_frames_in_hex() -> None:
    code, (energy,), _ = run("decode", "dlt645", ENERGY_REPLY)
    assert code == 0
    assert energy["values"] == [
        {
            "name": "forward active energy total",
            "value": "2.26",
            "unit": "kWh",
            "raw_hex": "26 02 00 00",
        }
    ]
    code, (water,), _ = run("decode", "cjt188", WATER_READ)
    assert code == 0 and water["meter_type"] == "0x10" and water["di"] == "901F"


def test_frames_from_stdin_one_per_line_and_any_failure_fails_the_run() -> None:
    code, outs, _ = run(
        "decode", "dlt645", "-", stdin=f"{ENERGY_REPLY}\n\n{ENERGY_REPLY[:-5]} 80 16\n"
    )
    assert code == 1
    assert [o["ok"] for o in outs] == [True, False]
    assert outs[1]["error"]["reason"] == "checksum"  # type: ignore[index]


def test_not_hex_is_an_input_error() -> None:
    code, (out,), _ = run("decode", "cjt188", "68 ZZ 16")
    assert code == 1 and out["error"]["protocol"] == "input"  # type: ignore[index]


def test_selfcheck_passes_and_writes_its_report(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["selfcheck", "--report-dir", str(tmp_path)])
    assert result.exit_code == 0, result.stdout
    (report_file,) = tmp_path.glob("selfcheck-*/selfcheck.json")
    report = json.loads(report_file.read_text())
    assert report["failed"] == 0
    assert report["total"] == len(report["checks"]) >= 70


def test_scenario_run_refuses_a_run_directory_that_is_not_empty(tmp_path: Path) -> None:
    scenario = Path(__file__).resolve().parents[2] / "fixtures" / "scenarios" / "retention-6h.yaml"
    (tmp_path / "outcome.json").write_text("{}", encoding="utf-8")
    code, _, err = run("scenario", "run", str(scenario), "--out", str(tmp_path), "--quiet")
    assert code != 0
    assert "not empty" in err and (tmp_path / "outcome.json").read_text() == "{}"


def test_a_small_command_starts_without_importing_the_bench() -> None:
    """`carbench decode` and `--help` answer at once: the scenario engine, the terminal and
    the simulators (seconds to import) are imported only by the commands that use them."""
    script = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from bench.cli import main\n"
        f"assert CliRunner().invoke(main, ['decode', 'hj212', {V0!r}]).exit_code == 0\n"
        "assert CliRunner().invoke(main, ['--help']).exit_code == 0\n"
        "heavy = ('bench.scenario', 'reference_terminal.app', 'simulators.fleet', 'sqlalchemy')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.stdout.strip() == "[]", done.stderr
