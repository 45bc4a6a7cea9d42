"""The three codecs under a million hostile inputs: only their documented errors, no input slow,
memory flat (issue 66's robustness acceptance).

Run: ``.venv/bin/python -m benchmarks.bench_codec_fuzz [INPUTS]`` (default 1 000 000; prints
JSON). Inputs are the standard's vectors (``../shared/vectors``) mutated at random (bytes
changed, inserted, deleted; lengths and CRCs repaired for half, so the parsers behind the
framing are reached), random bytes, and the attacks issue 66 names: digit runs of thousands
(a CP number, an integer, Flag), long field names, and 0xFE preambles without end. Each is
decoded as a frame and fed to the codec's stream decoder. Anything but ``CodecError`` is
counted as undocumented, with a sample; each input is timed on its own.
"""

from __future__ import annotations

import random
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from bench.vectors import hj212_flows, hj212_vectors, meter_vectors
from benchmarks.harness import Figure, report
from protocols import cjt188, dlt645, hj212
from protocols.errors import CodecError
from protocols.hj212 import DecodeOptions

LENIENT = DecodeOptions(lenient_modbus_crc=True, allow_oversize=True, allow_unknown_cn=True)
SLOW_MS = 50.0
HJ212_HEAD = b"QN=20260101120000001;ST=32;CN=2051;PW=123456;MN=010000A8900016F000169DC0"


def rss_mib() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096 / 2**20


def mutate(rnd: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        at = rnd.randrange(len(buf) + 1)
        match rnd.randrange(4):
            case 0 if buf:
                buf[min(at, len(buf) - 1)] = rnd.randrange(256)
            case 1:
                buf[at:at] = bytes([rnd.choice(b"#&;,=-\r\n0123456789AF\x68\x16\xfe")])
            case 2 if buf:
                del buf[at : at + rnd.randint(1, 8)]
            case _:
                buf[at:at] = rnd.randbytes(rnd.randint(1, 6))
    return bytes(buf)


def hj212_frame(body: bytes) -> bytes:
    return b"##%04d%s%04X\r\n" % (len(body) % 10000, body, hj212.crc16(body))


def hj212_refit(data: bytes) -> bytes:
    return hj212_frame(data[6:-6]) if len(data) >= 12 else data


def meter_refit(data: bytes) -> bytes:
    """The checksum made right again (the byte sum from the first 0x68 to before CS)."""
    start = data.find(b"\x68")
    if start < 0 or len(data) - start < 3:
        return data
    return data[:-2] + bytes([sum(data[start:-2]) & 0xFF]) + data[-1:]


def hj212_attack(rnd: random.Random) -> bytes:
    run = b"9" * rnd.choice((500, 4301, 5000, 9000))
    cp = b"DataTime=20260101120000;"
    bodies = (
        HJ212_HEAD + b";Flag=5;CP=&&" + cp + b"OverTime=" + run + b"&&",
        HJ212_HEAD + b";Flag=" + run[:5000] + b";CP=&&" + cp[:-1] + b"&&",
        HJ212_HEAD + b";Flag=5;CP=&&" + cp + b"a01-Rtd=" + run + b"x&&",
        HJ212_HEAD + b";Flag=5;CP=&&" + cp + b"a01-Rtd=" + run + b"&&",
        HJ212_HEAD.replace(b"ST=", b"X" * 2000 + b"=1;ST=") + b";Flag=5;CP=&&&&",
    )
    return hj212_frame(rnd.choice(bodies)[:9990])


def meter_attack(rnd: random.Random, seeds: list[bytes]) -> bytes:
    return b"\xfe" * rnd.choice((100, 10_000, 200_000)) + rnd.choice(seeds)


class Stream(Protocol):
    def feed(self, data: bytes) -> object: ...


class Codec:
    def __init__(
        self,
        name: str,
        seeds: list[bytes],
        decode: Callable[[bytes], object],
        stream: Callable[[], Stream],
        refit: Callable[[bytes], bytes],
        attack: Callable[[random.Random], bytes],
    ) -> None:
        self.name, self.seeds, self.decode, self.new_stream = name, seeds, decode, stream
        self.refit, self.attack = refit, attack
        self.stream = stream()
        self.inputs = 0
        self.errors: Counter[str] = Counter()
        self.undocumented: Counter[str] = Counter()
        self.samples: list[str] = []
        self.slowest_ms = 0.0
        self.slow = 0
        self.seconds = 0.0

    def one(self, rnd: random.Random, i: int) -> None:
        kind = i % 10
        if kind == 0:
            data = rnd.randbytes(rnd.randint(0, 200))
        elif kind == 1:
            data = self.attack(rnd)
        else:
            data = mutate(rnd, rnd.choice(self.seeds))
            if kind % 2:
                data = self.refit(data)
        start = time.perf_counter()
        for run in (self.decode, self.stream.feed):
            try:
                run(data)
            except CodecError as exc:
                self.errors[type(exc).__name__] += 1
            except Exception as exc:  # what the acceptance forbids: count and keep a sample
                self.undocumented[type(exc).__name__] += 1
                if len(self.samples) < 5:
                    self.samples.append(f"{type(exc).__name__}: {exc!s:.120} <- {data[:60]!r}")
                self.stream = self.new_stream()
        elapsed = (time.perf_counter() - start) * 1000
        self.seconds += elapsed / 1000
        self.inputs += 1
        self.slowest_ms = max(self.slowest_ms, elapsed)
        self.slow += elapsed > SLOW_MS


def main(total: int) -> None:
    meters = meter_vectors()
    codecs = [
        Codec(
            "hj212",
            [v.raw for v in hj212_vectors()] + [f.raw for f in hj212_flows()],
            lambda d: hj212.decode(d, LENIENT),
            lambda: hj212.StreamDecoder(LENIENT),
            hj212_refit,
            hj212_attack,
        ),
        Codec(
            "dlt645",
            (s645 := [v.raw for v in meters if v.tag.startswith("645")]),
            dlt645.decode,
            dlt645.StreamDecoder,
            meter_refit,
            lambda rnd: meter_attack(rnd, s645),
        ),
        Codec(
            "cjt188",
            (s188 := [v.raw for v in meters if v.tag.startswith("188")]),
            cjt188.decode,
            cjt188.StreamDecoder,
            meter_refit,
            lambda rnd: meter_attack(rnd, s188),
        ),
    ]
    rnd = random.Random(66)
    rss = [rss_mib()]
    start = time.perf_counter()
    for i in range(total):
        codecs[i % 3].one(rnd, i // 3)
        if i + 1 in (total // 10, total):
            rss.append(rss_mib())
    wall = time.perf_counter() - start
    figures = [Figure("inputs", total, "inputs", target=1_000_000)]
    figures.append(Figure("rate", total / wall, "inputs/s"))
    for codec in codecs:
        figures += [
            Figure(f"{codec.name} rate", codec.inputs / codec.seconds, "inputs/s"),
            Figure(f"{codec.name} slowest input", codec.slowest_ms, "ms"),
        ]
    report(
        "codec_fuzz",
        figures,
        slow_limit_ms=SLOW_MS,
        rss_mib={"start": rss[0], "after 10 %": rss[1], "end": rss[-1]},
        codecs={
            c.name: {
                "inputs": c.inputs,
                "documented_errors": dict(c.errors),
                "undocumented_errors": dict(c.undocumented),
                "samples": c.samples,
                "over_limit": c.slow,
            }
            for c in codecs
        },
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
