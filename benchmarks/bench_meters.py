"""Meter codec speed: DL/T 645 and CJ/T 188 decode (checksum checked, values typed) and encode.

Run: ``.venv/bin/python -m benchmarks.bench_meters`` (prints JSON). The DL/T 645 decode figure
carries the acceptance target (100 000 frames/s): it decodes the frame *and* its value to a
Decimal, what a receiver actually does, not the framing alone.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from benchmarks.harness import Figure, rate, report
from protocols import cjt188, dlt645

# The energy reply of the public capture in fixtures/vectors/meters.txt (2.26 kWh, 4 × FE).
ENERGY_REPLY = bytes.fromhex(
    "FE FE FE FE 68 94 35 21 90 88 55 68 91 08 33 33 34 33 59 35 33 33 81 16"
)
METER = dlt645.Address("558890213594")
WATER = cjt188.WaterReading(
    cjt188.Quantity(Decimal("556677.00"), 0x2C),
    cjt188.Quantity(Decimal("556600.00"), 0x2C),
    datetime(2015, 5, 11, 22, 1, 31),
    b"\x21\x84",
)
HEAT = cjt188.HeatReading(
    cjt188.Quantity(Decimal("123.45"), 0x05),
    cjt188.Quantity(Decimal("130.00"), 0x05),
    cjt188.Quantity(Decimal("2.50"), 0x17),
    cjt188.Quantity(Decimal("1.2345"), 0x35),
    cjt188.Quantity(Decimal("10.34"), 0x2C),
    Decimal("55.20"),
    Decimal("40.05"),
    8760,
    datetime(2025, 11, 21, 8, 30),
    b"\x00\x00",
)


def main() -> None:
    frame = dlt645.decode(ENERGY_REPLY)
    assert str(dlt645.read_values(frame)[0].value) == "2.26"
    address = cjt188.Address("78330011223344")
    water_raw = cjt188.encode(cjt188.read_reply(0x10, address, WATER))
    heat_raw = cjt188.encode(cjt188.read_reply(0x20, address, HEAT))
    assert cjt188.parse_reading(cjt188.decode(heat_raw)) == HEAT

    def dlt645_decode() -> None:
        dlt645.read_values(dlt645.decode(ENERGY_REPLY))

    def dlt645_decode_frame() -> None:
        dlt645.decode(ENERGY_REPLY)

    def dlt645_encode() -> None:
        dlt645.encode(frame)

    def dlt645_build_encode() -> None:
        dlt645.encode(dlt645.read_reply(METER, 0x00010000, Decimal("2.26")))

    stream_bytes = ENERGY_REPLY * 200
    stream = dlt645.StreamDecoder()

    def dlt645_stream() -> None:
        stream.feed(stream_bytes)

    def cjt188_water() -> None:
        cjt188.parse_reading(cjt188.decode(water_raw))

    def cjt188_heat() -> None:
        cjt188.parse_reading(cjt188.decode(heat_raw))

    report(
        "meters",
        [
            Figure(
                "dlt645 decode energy reply (FE preamble, CS checked, value as Decimal)",
                rate(dlt645_decode),
                "frames/s",
                100_000,
            ),
            Figure(
                "dlt645 decode energy reply, framing only", rate(dlt645_decode_frame), "frames/s"
            ),
            Figure("dlt645 encode energy reply (Frame → bytes)", rate(dlt645_encode), "frames/s"),
            Figure(
                "dlt645 build + encode energy reply from a Decimal",
                rate(dlt645_build_encode),
                "frames/s",
            ),
            Figure(
                "dlt645 stream decode (200 frames per feed)", rate(dlt645_stream) * 200, "frames/s"
            ),
            Figure(
                "cjt188 decode water 901F reply (reading typed)", rate(cjt188_water), "frames/s"
            ),
            Figure("cjt188 decode heat 901F reply (reading typed)", rate(cjt188_heat), "frames/s"),
        ],
        frames={
            "dlt645": ENERGY_REPLY.hex(" ").upper(),
            "cjt188_water": water_raw.hex(" ").upper(),
            "cjt188_heat": heat_raw.hex(" ").upper(),
        },
    )


if __name__ == "__main__":
    main()
