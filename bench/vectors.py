"""The public example frames in ``fixtures/vectors/`` as records, with their recorded verdicts."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

VECTORS = Path(__file__).resolve().parent.parent / "fixtures" / "vectors"


@dataclass(frozen=True, slots=True)
class HJ212Vector:
    id: str
    raw: bytes
    valid: bool  # the CRC checks under Appendix A
    verdict: str  # the file's own words
    modbus_crc: bool  # the CRC is CRC-16/MODBUS in wire order


@dataclass(frozen=True, slots=True)
class FlowFrame:
    section: str
    direction: str  # "P->D" or "D->P"
    raw: bytes


@dataclass(frozen=True, slots=True)
class MeterVector:
    protocol: str  # "dlt645" or "cjt188"
    edition: str  # "2007", "1997" or "2004"
    raw: bytes
    checksum_ok: bool
    meaning: str
    notes: tuple[str, ...]  # the decoded/value lines under the frame


def hj212_vectors(path: Path = VECTORS / "hj212.txt") -> list[HJ212Vector]:
    text = path.read_text(encoding="utf-8")
    out = []
    for block in re.split(r"^=== ", text, flags=re.M)[1:]:
        ident = block.split(" ===", 1)[0].split(":")[0].strip()
        packet = re.search(r"^packet: (.*)$", block, re.M)
        verdict = re.search(r"->\s*(.*)$", block, re.M)
        if packet is None or verdict is None:
            raise ValueError(f"vector {ident}: no packet or verdict line")
        raw = packet.group(1).replace("\\r\\n", "\r\n").encode("utf-8")
        words = verdict.group(1)
        out.append(
            HJ212Vector(ident, raw, words.startswith("OK"), words, "CRC-16/MODBUS printed" in words)
        )
    return out


def hj212_flows(path: Path = VECTORS / "hj212-flows.txt") -> list[FlowFrame]:
    out = []
    section = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            section = line[4:].strip()
        elif line[:4] in ("P->D", "D->P") and line[5:7] == "##":
            raw = line[5:].replace("\\r\\n", "\r\n").encode("utf-8")
            out.append(FlowFrame(section, line[:4], raw))
    return out


_METER_HEAD = re.compile(r"^\[(645-2007|645-1997|188)\] CS (OK|BAD)")


def meter_vectors(path: Path = VECTORS / "meters.txt") -> list[MeterVector]:
    out: list[MeterVector] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        head = _METER_HEAD.match(line)
        if head is None:
            continue
        block: list[str] = []
        for follow in lines[i + 1 :]:
            if not follow.strip() or _METER_HEAD.match(follow):
                break
            block.append(follow.strip())
        frame = next(b for b in block if b.startswith("frame:"))
        meaning = next((b for b in block if b.startswith("meaning:")), "meaning: ")
        kind = head.group(1)
        out.append(
            MeterVector(
                protocol="cjt188" if kind == "188" else "dlt645",
                edition="2004" if kind == "188" else kind[4:],
                raw=bytes.fromhex(frame[len("frame:") :]),
                checksum_ok=head.group(2) == "OK",
                meaning=meaning[len("meaning:") :].strip(),
                notes=tuple(
                    b for b in block if not b.startswith(("frame:", "meaning:", "source:"))
                ),
            )
        )
    return out
