"""One frame as a JSON-able dict with every field named (what ``carbench decode hj212`` prints)."""

from __future__ import annotations

from typing import Any

from protocols.hj212.codes import SYSTEM_CODES
from protocols.hj212.crc import crc16
from protocols.hj212.packet import STRICT, DecodeOptions, Lenience, Packet, decode


def describe(raw: bytes, options: DecodeOptions = STRICT) -> dict[str, Any]:
    """Decode ``raw`` (one frame) and name everything in it; raises the codec's error."""
    packet = decode(raw, options)
    data = raw[6:-6]
    out: dict[str, Any] = {
        "protocol": "hj212",
        "edition": packet.edition.key,
        "edition_title": packet.edition.title,
        "length": {"declared": int(raw[2:6]), "actual": len(data)},
        "crc": {
            "found": raw[-6:-2].decode("ascii"),
            "computed": f"{crc16(data):04X}",
            "algorithm": "crc16-modbus-wire-order"
            if Lenience.CRC_MODBUS in packet.lenience
            else "hj212-appendix-a",
        },
    }
    out.update(describe_packet(packet))
    return out


def describe_packet(packet: Packet) -> dict[str, Any]:
    flag = packet.flag
    cp = packet.cp
    data_time = cp.data_time
    return {
        "header": dict(packet.header_fields()),
        "qn": packet.qn,
        "qn_time": None if packet.qn_time is None else packet.qn_time.isoformat(),
        "st": packet.st,
        "st_name": SYSTEM_CODES.get(packet.st),
        "cn": packet.cn,
        "command": packet.command_name,
        "pw": packet.pw,
        "mn": packet.mn,
        "flag": None
        if flag is None
        else {"value": int(flag), "version": flag.version, "split": flag.split, "ack": flag.ack},
        "pnum": packet.pnum,
        "pno": packet.pno,
        "extra_header": dict(packet.extra),
        "cp": {
            "text": cp.render(),
            "data_time": None if data_time is None else data_time.isoformat(),
            "params": dict(cp.params),
            "pollutants": [
                {
                    "code": p.code,
                    **{name: format(value, "f") for name, value in p.values.items()},
                    **({"Flag": p.flag} if p.flag is not None else {}),
                    **({"EFlag": p.eflag} if p.eflag is not None else {}),
                    **(
                        {"SampleTime": p.sample_time.isoformat()}
                        if p.sample_time is not None
                        else {}
                    ),
                    **p.texts,
                }
                for p in cp.pollutants.values()
            ],
        },
        "lenience": [
            {"code": item.value, "description": item.description}
            for item in sorted(packet.lenience)
        ],
        "notes": list(cp.notes),
    }
