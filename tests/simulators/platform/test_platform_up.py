"""``carbench platform up``: the example file validates; a file's centres come up, answer, and
stop on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bench.cli import main
from protocols.hj212.codes import Command
from protocols.hj212.packet import decode
from protocols.hj212.session import DeviceSession, SessionConfig
from tests.simulators.platform.device import MN, PW, T0, data_cp

ROOT = Path(__file__).parents[3]


def test_the_example_file_validates() -> None:
    result = CliRunner().invoke(main, ["platform", "check", "fixtures/platforms/two-centres.yaml"])
    assert result.exit_code == 0, result.output
    assert "2 centres: provincial (hj212, ack), group (https, ack)" in result.output


def test_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("centres:\n  - name: a\n    protocol: hj212\n    behaviour: server_error\n")
    result = CliRunner().invoke(main, ["platform", "check", str(path)])
    assert result.exit_code == 1
    assert f"{path}: centres.0.hj212: Value error, behaviour 'server_error'" in result.output


def test_up_serves_until_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    path.write_text("centres:\n  - {name: c1, protocol: hj212}\n  - {name: w, protocol: https}\n")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "carbench"), "platform", "up", str(path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline(), process.stdout.readline()]
        match = re.search(r"hj212 127\.0\.0\.1:(\d+)", lines[0])
        assert match, lines
        assert re.search(r"https https://127\.0\.0\.1:\d+/hj212/upload \(ca: .*ca\.pem", lines[1])
        device = DeviceSession(SessionConfig(mn=MN, pw=PW, st="32"))
        qn = device.upload(Command.REALTIME_DATA, data_cp(T0, [("a05001", "1")]), T0)
        with socket.create_connection(("127.0.0.1", int(match.group(1))), timeout=5) as sock:
            sock.sendall(device.data_to_send())
            answer = decode(sock.recv(1024))
        assert (answer.cn, answer.qn) == (9014, qn)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            _, err = process.communicate(timeout=60)  # a loaded machine: seen > 10 s
        except subprocess.TimeoutExpired:
            process.kill()  # never leave it serving after the test
            process.communicate()
            raise
    assert "serving; Ctrl-C stops" in err and "stopped" in err
    assert process.returncode == 0
