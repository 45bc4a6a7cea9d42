"""HJ 212 codec speed: decode (CRC checked, CP typed) and encode of a 2051 frame, 20 pollutants;
and the backlog path of issue 6: a 189-item minute record built into its split packets by the
terminal, and received (reassembled, typed, acknowledged) by a platform session.

Run: ``.venv/bin/python -m benchmarks.bench_hj212`` (prints JSON).

The record figures are timed in CPU time (``time.process_time``), best of several runs: on a
shared 2-core machine wall time measures the neighbours too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from benchmarks.harness import Figure, cpu_rate, rate, report
from protocols import hj212
from protocols.hj212 import Cp, Flag, Packet, Pollutant
from protocols.hj212.crc import crc16, crc16_reference
from reference_terminal.uplink.frames import Frame, Item

MN = "010000A8900016F000169DC0"
RECORD_ITEMS = 189  # the works fleet's minute record
UTC_OFFSET_S = 8 * 3600
RECORD_TIME = datetime(2026, 11, 21, 2, 0, tzinfo=UTC).timestamp()  # 10:00 plant-local


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
        mn=MN,
        pw="123456",
        cp=Cp.build(data_time=datetime(2026, 11, 21, 10, 0), pollutants=values),
        qn="20261121100100123",
        flag=Flag(1, False, True),
    )


def record_items(
    count: int = RECORD_ITEMS,
) -> list[tuple[str, tuple[tuple[str, Decimal], ...], str]]:
    """A minute record as the terminal's outbox holds it (``uplink/frames.py`` ``Item``s):
    structured CSMT §7.2 codes; counters as Cou/Min/Max, gauges as Avg/Min/Max, with the
    meters' own decimals; a few flag-only items (no usable value in the minute)."""
    items = []
    for i in range(count):
        code = f"C3011{1 + i % 7:02d}{1 + i // 7 % 40:03d}e{i % 30:02d}{1 + i % 99:02d}"
        digits = 2 + i % 3
        main = Decimal(1_000 + 37 * i).scaleb(-digits)
        if i % 23 == 22:
            values: tuple[tuple[str, Decimal], ...] = ()
            flag = "D"
        elif i % 3 == 0:  # a counter: the minute's increment
            values = (("Cou", main), ("Min", Decimal(i).scaleb(-digits)), ("Max", main + 1))
            flag = "N"
        else:  # a gauge: the minute's mean
            low = Decimal(700 + 37 * i).scaleb(-digits)
            values = (("Avg", main), ("Min", low), ("Max", main + Decimal("2.5")))
            flag = "N" if i % 17 else "T"
        items.append((code, values, flag))
    return items


def record_packet(items: list[tuple[str, tuple[tuple[str, Decimal], ...], str]]) -> Packet:
    """The record as the terminal's session uploads it (``Frame.cp``, then ``upload``)."""
    frame = Frame(
        int(hj212.Command.MINUTE_DATA),
        RECORD_TIME,
        tuple(Item(code, values, flag) for code, values, flag in items),
    )
    return Packet(
        cn=hj212.Command.MINUTE_DATA,
        st="31",
        mn=MN,
        pw="123456",
        cp=frame.cp(UTC_OFFSET_S),
        qn="20261121100100123",
        flag=Flag(1, False, True),
    )


def build_record(items: list[tuple[str, tuple[tuple[str, Decimal], ...], str]]) -> list[bytes]:
    """(a) typed items -> CP -> split packets -> their bytes, CRC and all."""
    return [part.encode() for part in hj212.split(record_packet(items))]


def receive_record(frames: list[bytes]) -> Packet:
    """(b) a platform session receiving the parts one frame at a time (as the simulated
    centre's ``data_received`` hands them over), reassembling, acknowledging the whole, and
    the typed values read."""
    config = hj212.SessionConfig(mn=MN, pw="123456", st="31")
    session = hj212.PlatformSession(config)
    now = datetime(2026, 11, 21, 10, 1)
    whole = None
    for raw in frames:
        session.receive_data(raw, now)
        session.data_to_send()
        for event in session.events():
            if isinstance(event, hj212.events.DataReceived):
                whole = event.packet
    assert whole is not None
    for p in whole.cp.pollutants.values():
        p.values.items()  # what the platform's record stores
    return whole


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

    items = record_items()
    frames = build_record(items)
    record_items_total = sum(len(values) + 1 for _, values, _ in items)

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
            Figure(
                f"(a) build a {RECORD_ITEMS}-item 2051 record into split packets (CPU time)",
                cpu_rate(lambda: build_record(items)),
                "records/s",
            ),
            Figure(
                f"(b) receive a {RECORD_ITEMS}-item 2051 record's packets (CPU time)",
                cpu_rate(lambda: receive_record(frames)),
                "records/s",
            ),
        ],
        frame_bytes=len(raw),
        pollutants=len(packet.cp.pollutants),
        record_packets=len(frames),
        record_data_items=record_items_total,
    )


if __name__ == "__main__":
    main()
