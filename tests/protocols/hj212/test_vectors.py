"""Every public example packet gives the verdict recorded in fixtures/vectors/hj212.txt."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

from bench.vectors import FlowFrame, HJ212Vector, hj212_flows, hj212_vectors
from protocols import hj212
from protocols.hj212 import CrcMismatch, DataTooLong, DecodeOptions, Lenience

VECTORS = {v.id: v for v in hj212_vectors()}
VALID = [v for v in VECTORS.values() if v.valid]
BROKEN = [v for v in VECTORS.values() if not v.valid]


def test_the_file_holds_the_expected_vectors() -> None:
    assert len(VECTORS) == 17
    assert {v.id for v in BROKEN} == {"V3", "V30", "V31"}


@pytest.mark.parametrize("vector", VALID, ids=lambda v: v.id)
def test_valid_packets_decode_and_reencode_byte_for_byte(vector: HJ212Vector) -> None:
    packet = hj212.decode(vector.raw)
    assert hj212.encode(packet) == vector.raw


@pytest.mark.parametrize("vector", BROKEN, ids=lambda v: v.id)
def test_broken_packets_are_rejected_for_their_crc(vector: HJ212Vector) -> None:
    with pytest.raises(CrcMismatch) as caught:
        hj212.decode(vector.raw)
    assert caught.value.found == vector.raw[-6:-2].decode()
    assert ("CRC-16/MODBUS" in str(caught.value)) is vector.modbus_crc


def test_v3_hand_edited_after_its_crc_names_both_values() -> None:
    with pytest.raises(CrcMismatch, match=r"computed 2D00.*carries 1100"):
        hj212.decode(VECTORS["V3"].raw)


def test_modbus_crc_devices_are_accepted_only_when_asked_and_it_is_reported() -> None:
    lenient = DecodeOptions(lenient_modbus_crc=True)
    v30 = hj212.decode(VECTORS["V30"].raw, lenient)
    assert v30.lenience == {Lenience.CRC_MODBUS}
    assert hj212.encode(v30) == VECTORS["V30"].raw
    # V31 also breaks the 1024-byte limit: a second, separate permission.
    with pytest.raises(DataTooLong, match="1025 bytes, the limit is 1024"):
        hj212.decode(VECTORS["V31"].raw, lenient)
    v31 = hj212.decode(
        VECTORS["V31"].raw, DecodeOptions(lenient_modbus_crc=True, allow_oversize=True)
    )
    assert v31.lenience == {Lenience.CRC_MODBUS, Lenience.DATA_TOO_LONG}
    assert hj212.encode(v31) == VECTORS["V31"].raw


def test_v0_the_standards_own_example() -> None:
    packet = hj212.decode(VECTORS["V0"].raw)
    assert packet.qn == "20160801085857223"
    assert packet.qn_time == datetime(2016, 8, 1, 8, 58, 57, 223000)
    assert (packet.st, packet.cn, packet.pw) == ("32", hj212.Command.SET_RTD_INTERVAL, "100000")
    assert packet.mn == "010000A8900016F000169DC0"
    assert packet.flag == hj212.Flag(version=1, split=False, ack=True)
    assert packet.edition is hj212.HJ212_2017
    assert packet.cp.rtd_interval == 30
    assert hj212.crc16(VECTORS["V0"].raw[6:-6]) == 0x1C80


def test_v1_hourly_averages_keep_their_significant_digits() -> None:
    packet = hj212.decode(VECTORS["V1"].raw)
    assert packet.cn == hj212.Command.HOUR_DATA
    assert packet.cp.data_time == datetime(2019, 9, 24, 22, 0, 0)
    so2 = packet.cp.pollutants["a34006"]
    assert so2.avg == Decimal("2.69700") and str(so2.avg) == "2.69700"
    assert so2.flag == "N"
    assert list(packet.cp.pollutants) == ["a34006", "a34007", "a34048", "a34047", "a34049"]


def test_v2_lowercase_crc_is_accepted_and_reported() -> None:
    packet = hj212.decode(VECTORS["V2"].raw)
    assert Lenience.CRC_LOWERCASE in packet.lenience
    assert packet.cp.pollutants["a21005"].rtd == Decimal("0.00")
    assert packet.flag is not None and not packet.flag.ack


def test_v12_split_packet_without_flag_in_its_own_field_order() -> None:
    packet = hj212.decode(VECTORS["V12"].raw)
    assert (packet.pnum, packet.pno) == (2, 2)
    assert packet.flag is None
    assert packet.edition is hj212.HJ212_2005
    assert packet.field_order == ("QN", "ST", "CN", "PW", "MN", "PNO", "PNUM")
    assert Lenience.HEADER_ORDER in packet.lenience
    pressure = packet.cp.pollutants["a01006"]
    assert (pressure.avg, pressure.min, pressure.max) == (
        Decimal("101.85"),
        Decimal("101.84"),
        Decimal("101.87"),
    )
    assert pressure.values["ValidNum"] == 10


def test_v13_flag_before_value_keeps_its_order() -> None:
    packet = hj212.decode(VECTORS["V13"].raw)
    assert packet.cp.groups[1] == (("l01001-Flag", "N"), ("l01001-Rtd", "119.90287"))
    assert packet.cp.pollutants["l01001"].rtd == Decimal("119.90287")


def test_v14_sample_time() -> None:
    water = hj212.decode(VECTORS["V14"].raw).cp.pollutants["w01008"]
    assert water.sample_time == datetime(2023, 10, 8, 12, 33, 40)
    assert water.rtd == Decimal("123.456")


def test_v15_request_answer_and_v16_restart_time() -> None:
    assert hj212.decode(VECTORS["V15"].raw).cp.qn_rtn == hj212.QnRtn.READY
    restart = hj212.decode(VECTORS["V16"].raw)
    assert restart.cn == hj212.Command.RESTART_TIME
    assert restart.cp.time("RestartTime") == datetime(2023, 10, 7, 13, 4, 52)


def test_v18_2005_packet_without_qn_and_with_millisecond_datatime() -> None:
    packet = hj212.decode(VECTORS["V18"].raw)
    assert packet.qn is None and packet.flag is None
    assert packet.edition is hj212.HJ212_2005
    assert packet.cp.data_time == datetime(2016, 8, 24, 0, 38, 17)
    assert Lenience.CP_DEPARTURES in packet.lenience
    assert packet.cp.notes == ("DataTime has milliseconds (17 digits, the standard has 14)",)
    assert packet.cp.pollutants["B01"].rtd == Decimal("36.91")
    assert packet.cp.pollutants["011"].flag == "N"


def test_v33_electricity_profile_custom_fields_are_numbers() -> None:
    meter = hj212.decode(VECTORS["V33"].raw).cp.pollutants["100000"]
    assert meter.values["Ia"] == Decimal("401.400")
    assert meter.values["Ept"] == Decimal("162762.484")
    assert meter.values["Pa_ave"] == Decimal("0.3964")
    assert meter.flag == "N"


@pytest.mark.parametrize("frame", hj212_flows(), ids=lambda f: f"{f.section[:5]} {f.direction}")
def test_every_flow_frame_decodes_and_reencodes(frame: FlowFrame) -> None:
    assert hj212.encode(hj212.decode(frame.raw)) == frame.raw
