"""The uplink's configuration, data item codes (CSMT §7.2), frames and QNs."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from protocols.hj212 import Packet, decode
from protocols.hj212.packet import qn_to_datetime
from reference_terminal.config import ConfigError, TerminalConfig, load_config
from reference_terminal.model import Quality, Reading
from reference_terminal.uplink.codes import ItemCode, ItemCodeError, render_code
from reference_terminal.uplink.frames import (
    Coding,
    Frame,
    Item,
    Stream,
    period_frames,
    realtime_frame,
)
from reference_terminal.uplink.outbox import QnSource
from simulators.platform.https_schema import UploadBody

from .helpers import MN_A, T0, config, minute_rows

EXAMPLE = """
devices: [{id: manual, protocol: manual}]
groups: [{id: g, period_s: 60}]
points:
  - {id: P1, kind: counter, group: g, source: {device: manual}}
  - {id: P2, group: g, source: {device: manual}}
uplink:
  codes:
    - point: P1
      code: {industry: C3011, activity: "03", source: "001", parameter: e01, point: 1}
    - {point: P2, code: a05001}
  centres:
    - name: national
      protocol: hj212
      host: 127.0.0.1
      port: 9001
      mn: 010000A8900016F000169DC0
      pw: "123456"
      edition: "2017"
      streams: {realtime_interval_s: 900, minute: true, hourly: true, daily: true}
    - name: provincial
      protocol: hj212
      host: 127.0.0.1
      port: 9002
      mn: 010000A8900016F000169DC1
      over_time_s: 5
      re_count: 3
      backoff: {initial_s: 1, max_s: 120, jitter: 0.2}
    - name: group-hq
      protocol: https
      url: https://127.0.0.1:8443/hj212/upload
      ca_file: /etc/carbench/ca.pem
      mn: 010000A8900016F000169DC2
      points: [P1]
      outbox: {max_entries: 20000, window: 16}
"""


def test_the_example_configuration_loads(tmp_path: Path) -> None:
    path = tmp_path / "terminal.yaml"
    path.write_text(EXAMPLE, encoding="utf-8")
    cfg = load_config(path)
    assert [c.name for c in cfg.uplink.centres] == ["national", "provincial", "group-hq"]
    assert cfg.uplink.centres[0].streams.realtime_interval_s == 900


def test_existing_configurations_have_no_centres() -> None:
    assert TerminalConfig().uplink.centres == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["uplink"]["centres"][2].update(outbox={"max_entries": 100}), "max_entries"),
        (lambda d: d["uplink"]["centres"][0].update(mn="short"), "mn"),
        (lambda d: d["uplink"]["centres"][1].update(name="national"), "centres[1].name"),
        (lambda d: d["uplink"]["codes"][1].update(code="CO2"), "code"),
        (lambda d: d["uplink"]["codes"][1].update(point="P9"), "uplink.codes[1].point"),
        (lambda d: d["uplink"]["centres"][2].update(points=["P2"], codes=[]), "points[0]"),
        (
            lambda d: d["uplink"]["centres"][0]["streams"].update(minute_interval_min=7),
            "minute_interval_min",
        ),
        (lambda d: d["uplink"]["centres"][1].update(over_time_s=100), "over_time_s"),
    ],
)
def test_errors_name_the_field(tmp_path: Path, change: object, field: str) -> None:
    data = yaml.safe_load(EXAMPLE)
    assert callable(change)
    change(data)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(ConfigError, match=field.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_an_item_code_carries_industry_activity_source_parameter_and_point() -> None:
    code = ItemCode(industry="C3011", activity="03", source="001", parameter="e01", point=2)
    assert code.render() == "C301103001e0102"
    assert ItemCode.parse("C301103001e0102") == code
    assert render_code("a05001") == "a05001"
    with pytest.raises(ItemCodeError, match=r"CSMT §7\.2"):
        ItemCode.parse("C3011-03")
    with pytest.raises(ItemCodeError, match="附录 B"):
        render_code("co2")


CODING = Coding({"P1": "C301103001e0101", "P2": "a05001"}, frozenset({"P1"}))


def _packet(frame: Frame) -> Packet:
    raw = Packet(frame.cn, "32", MN_A, "123456", frame.cp(8 * 3600), "20270115160000000").encode()
    return decode(raw)


def test_minute_frames_carry_totals_for_counters_averages_for_gauges_and_flags() -> None:
    rows = minute_rows(T0, 2) + minute_rows(T0 + 120, 1, quality=Quality.INTERPOLATED)
    frames = period_frames(rows, Stream.MINUTE, 2051, CODING)
    assert [f.data_time for f in frames] == [T0, T0 + 60, T0 + 120]
    cp = _packet(frames[0]).cp
    assert cp.data_time == datetime(2027, 1, 15, 16, 0)
    counter, gauge = cp.pollutants["C301103001e0101"], cp.pollutants["a05001"]
    assert (counter.cou, counter.min, counter.max, counter.flag) == (
        Decimal("1.25"),
        Decimal("0.25"),
        Decimal("2.25"),
        "N",
    )
    assert (gauge.avg, gauge.flag) == (Decimal("400.5"), "N")
    assert _packet(frames[2]).cp.pollutants["a05001"].flag == "D"  # interpolated (model.py)


def test_realtime_frames_flag_what_could_not_be_measured() -> None:
    latest = [
        Reading("P2", T0 - 3, "", Decimal("401.25"), Quality.GOOD, 2, "m"),
        Reading("P1", T0 - 1, "timeout", None, Quality.COMM_FAULT, 2, "m"),
    ]
    frame = realtime_frame(latest, T0, CODING)
    assert frame is not None
    cp = _packet(frame).cp
    assert cp.pollutants["a05001"].rtd == Decimal("401.25")
    assert cp.pollutants["C301103001e0101"].flag == "B"
    assert cp.pollutants["C301103001e0101"].rtd is None


def test_the_https_body_is_what_the_centre_accepts() -> None:
    (frame,) = period_frames(minute_rows(T0, 1), Stream.MINUTE, 2051, CODING)
    body = UploadBody.model_validate(frame.json_body("20270115160100123", MN_A, "pw", "32", 28800))
    assert body.data_time == "20270115160000" and body.cn == 2051
    assert [(v.code, v.value, v.flag) for v in body.values] == [
        ("C301103001e0101", Decimal("1.25"), "N"),
        ("a05001", Decimal("400.5"), "N"),
    ]


def test_a_frame_survives_the_outbox_row_exactly() -> None:
    (frame,) = period_frames(minute_rows(T0, 1), Stream.MINUTE, 2051, CODING)
    assert Frame.from_row(frame.cn, frame.data_time, frame.payload()) == frame


_TEXT = st.text(st.characters(codec="utf-8"), max_size=12)  # quotes, controls, CJK, …
_ITEMS = st.lists(
    st.builds(
        Item,
        _TEXT,
        st.lists(
            st.tuples(_TEXT, st.decimals(allow_nan=False, allow_infinity=False)), max_size=4
        ).map(tuple),
        _TEXT,
    ),
    max_size=6,
).map(tuple)


@given(items=_ITEMS, signature=st.sampled_from(["", "ab" * 64]))
def test_any_frame_survives_the_outbox_row_exactly(items: tuple[Item, ...], signature: str) -> None:
    frame = Frame(2051, T0, items, signature)
    row = frame.payload()
    assert Frame.from_row(2051, T0, row) == frame
    if row.startswith(("[", "{")):  # items a CP text would not give back as they are
        # the text the json module writes, as rows made before orjson wrote it were
        assert row == json.dumps(json.loads(row), separators=(",", ":"), ensure_ascii=False)
    else:
        assert row == frame.body and not signature


def test_qns_increase_and_stay_valid_times_within_one_millisecond() -> None:
    source = QnSource("20270115235959999")
    now = datetime(2027, 1, 15, 23, 59, 59, 999000)
    qns = [source.next(now) for _ in range(3)]
    assert qns == sorted(qns) and len(set(qns)) == 3
    assert [qn_to_datetime(q) for q in qns][-1] == datetime(2027, 1, 16, 0, 0, 0, 2000)


def test_the_helper_configuration_is_valid(tmp_path: Path) -> None:
    assert config(tmp_path, []).uplink.codes[0].point == "P1"
