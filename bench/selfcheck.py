"""``carbench selfcheck``: every public example frame against the verdict recorded for it."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from bench.vectors import hj212_flows, hj212_vectors, meter_vectors
from protocols import cjt188, dlt645, hj212
from protocols.errors import CodecError


@dataclass(frozen=True, slots=True)
class Check:
    source: str
    name: str
    expected: str
    observed: str
    passed: bool


def _outcome(decode: Callable[[bytes], Any], encode: Callable[[Any], bytes], raw: bytes) -> str:
    try:
        again = encode(decode(raw))
    except CodecError as exc:
        return f"rejected ({exc.reason}): {exc}"
    return (
        "decoded, re-encodes byte for byte" if again == raw else "decoded, re-encodes DIFFERENTLY"
    )


def _check(source: str, name: str, expected: str, observed: str) -> Check:
    passed = observed.startswith(expected) and "DIFFERENTLY" not in observed
    return Check(source, name, expected, observed, passed)


def checks() -> list[Check]:
    out: list[Check] = []
    lenient = hj212.DecodeOptions(lenient_modbus_crc=True, allow_oversize=True)
    for v in hj212_vectors():
        expected = "decoded" if v.valid else "rejected (crc)"
        out.append(_check("hj212.txt", v.id, expected, _outcome(hj212.decode, hj212.encode, v.raw)))
        if v.modbus_crc:
            seen = _outcome(lambda raw: hj212.decode(raw, lenient), hj212.encode, v.raw)
            out.append(_check("hj212.txt", f"{v.id} lenient", "decoded", seen))
    for i, f in enumerate(hj212_flows(), start=1):
        seen = _outcome(hj212.decode, hj212.encode, f.raw)
        out.append(_check("hj212-flows.txt", f"{f.section.split()[0]} #{i}", "decoded", seen))
    for i, m in enumerate(meter_vectors(), start=1):
        codec = dlt645 if m.protocol == "dlt645" else cjt188
        expected = "decoded" if m.checksum_ok else "rejected (checksum)"
        seen = _outcome(codec.decode, codec.encode, m.raw)
        out.append(_check("meters.txt", f"{m.protocol}-{m.edition} #{i}", expected, seen))
    return out


def run_selfcheck(report_dir: Path) -> int:
    started = time.perf_counter()
    results = checks()
    elapsed = time.perf_counter() - started
    failed = [c for c in results if not c.passed]
    for c in results:
        mark = click.style("ok  ", fg="green") if c.passed else click.style("FAIL", fg="red")
        click.echo(f"{mark} {c.source:16} {c.name:22} {c.observed[:90]}")
    run_dir = report_dir / f"selfcheck-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    run_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "job": "selfcheck",
        "finished": datetime.now(UTC).isoformat(),
        "seconds": round(elapsed, 4),
        "total": len(results),
        "passed": len(results) - len(failed),
        "failed": len(failed),
        "checks": [asdict(c) for c in results],
    }
    (run_dir / "selfcheck.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    click.echo(
        f"\n{len(results) - len(failed)} of {len(results)} example frames give their recorded "
        f"verdict ({elapsed * 1000:.0f} ms); report: {run_dir / 'selfcheck.json'}"
    )
    return 1 if failed else 0
