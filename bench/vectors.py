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
    tag: str  # "645-2007", "645-1997" or "188"
    checksum_ok: bool
    reencode: str  # the file's re-encode verdict: "same", "False", "n/a (…)"
    raw: bytes
    fields: dict[str, str]  # the key=value pairs of the summary line after "frame:"
    text: str  # the whole block, to find a vector by what the file says about it
    line: int

    @property
    def protocol(self) -> str:
        return "cjt188" if self.tag == "188" else "dlt645"

    @property
    def edition(self) -> str:
        return "2004" if self.tag == "188" else self.tag[4:]

    @property
    def id(self) -> str:
        return f"line{self.line}-{self.tag}"


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


_METER_HEAD = re.compile(
    r"^\[(?P<tag>645-2007|645-1997|188)\] CS (?P<cs>OK|BAD)\s+reencode=(?P<re>.*)$"
)


def meter_vectors(path: Path = VECTORS / "meters.txt") -> list[MeterVector]:
    """A header line per vector, then indented ``key: value`` lines."""
    vectors: list[MeterVector] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        match = _METER_HEAD.match(line)
        if not match:
            continue
        block = [line]
        for following in lines[index + 1 :]:
            if not following.startswith("  "):
                break
            block.append(following)
        frame_line = next(b for b in block if b.strip().startswith("frame:"))
        summary = block[block.index(frame_line) + 1].strip()
        fields = dict(re.findall(r"([\w()-]+)=(\S+(?: [0-9a-fA-F]{2}\b)*)", summary))
        vectors.append(
            MeterVector(
                tag=match["tag"],
                checksum_ok=match["cs"] == "OK",
                reencode=match["re"].strip(),
                raw=bytes.fromhex(frame_line.split(":", 1)[1]),
                fields=fields,
                text="\n".join(block),
                line=index + 1,
            )
        )
    return vectors
