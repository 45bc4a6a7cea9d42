"""The HJ 212 codec's share of a backlog drain, stage by stage, per minute record.

A drain sends ~2 880 minute records of ~188 data items (~12 KB of CP, split into ~12 packets,
Flag D=1 with PNUM/PNO) to each of two centres. This times, per record, in CPU time (best of
several runs: this machine is shared):

* ``split+encode``: a CP as the terminal renders it (``Cp.deferred``), split and encoded for
  two centres (the second split of one CP finds its parts made);
* ``stream decode``: the packets' bytes through a ``StreamDecoder`` (CRC, header, CP typed);
* ``reassemble``: the decoded parts merged by a ``Reassembler``, the whole's values read;
* ``session receive``: a ``PlatformSession`` fed the bytes one frame at a time, as a centre.

Run: ``.venv/bin/python -m benchmarks.bench_hj212_record`` (prints JSON; ``--repeats N``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import datetime

from benchmarks.harness import Figure, cpu_rate, report
from protocols import hj212
from protocols.hj212 import Cp, Flag, Packet, Pollutant
from protocols.hj212.split import Reassembler

MN = "010000A8900016F000169DC0"
ITEMS = 188


def record_text(items: int = ITEMS, minute: int = 0) -> str:
    """A minute record's CP: DataTime, then per code Avg/Min/Max with a few decimals and a
    flag (``a21026-Avg=12.345,a21026-Min=…,a21026-Max=…,a21026-Flag=N``)."""
    groups = [f"DataTime=20261121{10 + minute // 60:02d}{minute % 60:02d}00"]
    for i in range(items):
        code = f"{'aw'[i % 2]}{21001 + i:05d}"
        digits = 1 + i % 3
        avg = f"{12 + i * 0.731:.{digits}f}"
        low = f"{10 + i * 0.5:.{digits}f}"
        high = f"{15 + i * 0.913:.{digits}f}"
        flag = "N" if i % 17 else "T"
        groups.append(f"{code}-Avg={avg},{code}-Min={low},{code}-Max={high},{code}-Flag={flag}")
    return ";".join(groups)


def record_cp(text: str) -> Cp:
    """The CP as the terminal makes it: its text, typed view deferred (``Frame.cp``)."""
    return Cp.deferred(text, {"DataTime": text[9:23]}, lambda: Cp.parse(text).pollutants)


def record_packet(cp: Cp) -> Packet:
    return Packet(
        cn=hj212.Command.MINUTE_DATA,
        st="31",
        mn=MN,
        pw="123456",
        cp=cp,
        qn="20261121100100123",
        flag=Flag(1, False, True),
    )


def send_twice(text: str) -> list[bytes]:
    cp = record_cp(text)
    frames: list[bytes] = []
    for _centre in range(2):
        packet = record_packet(cp)
        frames += [part.encode() for part in hj212.split(packet)]
    return frames


def stream_decode(frames: list[bytes]) -> list[Packet]:
    decoder = hj212.StreamDecoder()
    out = []
    for raw in frames:
        for item in decoder.feed(raw):
            assert isinstance(item, Packet)
            out.append(item)
    return out


def reassemble(parts: list[Packet]) -> Packet:
    reassembler = Reassembler()
    whole = None
    for part in parts:
        whole = reassembler.add(part)
    assert whole is not None
    read(whole)
    return whole


def read(whole: Packet) -> None:
    """What the centre's record reads of a whole upload."""
    whole.cp.get("DataTime")
    for p in whole.cp.pollutants.values():
        p.values.items()


def session_receive(frames: list[bytes]) -> Packet:
    session = hj212.PlatformSession(hj212.SessionConfig(mn=MN, pw="123456", st="31"))
    now = datetime(2026, 11, 21, 10, 1)
    whole = None
    for raw in frames:
        session.receive_data(raw, now)
        for event in session.events():
            if isinstance(event, hj212.events.DataReceived):
                whole = event.packet
    assert whole is not None
    read(whole)
    return whole


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    text = record_text()
    frames = send_twice(text)
    one_centre = frames[: len(frames) // 2]
    parts = stream_decode(one_centre)
    whole = reassemble(parts)
    assert whole.cp.text == text and whole.cp == Cp.parse(text)
    assert all(isinstance(p, Pollutant) for p in whole.cp.pollutants.values())

    def timed(fn: Callable[[], object]) -> float:
        return round(1e6 / cpu_rate(fn, min_seconds=args.seconds, repeats=args.repeats), 1)

    report(
        "hj212_record",
        [
            Figure("split+encode, 2 centres (µs/record)", timed(lambda: send_twice(text)), "µs"),
            Figure("stream decode (µs/record)", timed(lambda: stream_decode(one_centre)), "µs"),
            Figure("reassemble + read (µs/record)", timed(lambda: reassemble(parts)), "µs"),
            Figure("session receive (µs/record)", timed(lambda: session_receive(one_centre)), "µs"),
        ],
        items=ITEMS,
        cp_bytes=len(text),
        packets=len(one_centre),
    )


if __name__ == "__main__":
    main()
