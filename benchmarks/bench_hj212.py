"""HJ 212 codec speed: decode (CRC checked, CP typed) and encode of a 2051 frame, 20 pollutants.

Run: ``.venv/bin/python -m benchmarks.bench_hj212`` (prints JSON).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from benchmarks.harness import Figure, rate, report
from protocols import hj212
from protocols.hj212 import Cp, Flag, Packet, Pollutant
from protocols.hj212.crc import crc16, crc16_reference


def minute_frame(pollutants: int = 20) -> Packet:
    values = [
        Pollutant(
            f"a{21001 + i:05d}",
            # Cou (a cumulative amount) on a quarter of them keeps CP within its 950 bytes.
            {"Avg": Decimal("123.456") + i, **({"Cou": Decimal("7.39") * i} if i % 4 == 0 else {})},
            flag="N",
        )
        for i in range(pollutants)
    ]
    return Packet(
        cn=hj212.Command.MINUTE_DATA,
        st="31",
        mn="010000A8900016F000169DC0",
        pw="123456",
        cp=Cp.build(data_time=datetime(2026, 11, 21, 10, 0), pollutants=values),
        qn="20261121100100123",
        flag=Flag(1, False, True),
    )


def main() -> None:
    packet = minute_frame()
    raw = packet.encode()
    data = raw[6:-6]

    def decode_typed() -> None:
        decoded = hj212.decode(raw)
        for p in decoded.cp.pollutants.values():
            p.avg  # noqa: B018 - the typed values are what a receiver reads

    stream = raw * 200
    decoder = hj212.StreamDecoder()

    def stream_decode() -> None:
        decoder.feed(stream)

    decode_rate = rate(decode_typed)
    report(
        "hj212",
        [
            Figure(
                "decode 2051 frame, 20 pollutants, CRC checked", decode_rate, "frames/s", 20_000
            ),
            Figure("encode 2051 frame, 20 pollutants", rate(packet.encode), "frames/s"),
            Figure("stream decode (200 frames per feed)", rate(stream_decode) * 200, "frames/s"),
            Figure("CRC, fast (folded)", rate(lambda: crc16(data)), "frames/s"),
            Figure(
                "CRC, Appendix A bit by bit",
                rate(lambda: crc16_reference(data), min_seconds=0.3),
                "frames/s",
            ),
        ],
        frame_bytes=len(raw),
        pollutants=len(packet.cp.pollutants),
    )


if __name__ == "__main__":
    main()
