"""The record: frames and readings written in batches, queries, the de-duplicated view, on SQLite
(memory and file) and PostgreSQL when reachable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocols.hj212.cp import Pollutant
from simulators.platform import Expected, Record, check
from simulators.platform.record import VALUE_FIELDS, _own_values, fields_json, format_data_time
from tests.reference_terminal.storage.conftest import postgres_url
from tests.simulators.platform.device import MN, T0


@pytest.fixture(params=["memory", "file", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "postgresql":
        yield from postgres_url()
    elif request.param == "file":
        yield f"sqlite:///{tmp_path / 'record.sqlite'}"
    else:
        yield "sqlite://"


def upload(
    record: Record,
    qn: str,
    minute: int,
    value: str,
    *,
    at: float = 0.0,
    other: str = "a19001",
    mn: str = MN,
) -> int:
    moment = format_data_time(T0 + timedelta(minutes=minute))
    raw = f"##0000QN={qn};ST=32;CN=2051;PW=1;MN={mn};Flag=5;CP=&&DataTime={moment};…&&0000\r\n"
    frame_id = record.add_frame(
        at=at,
        centre="c1",
        transport="hj212",
        conn=1,
        peer="127.0.0.1:5000",
        direction="in",
        raw=raw,
        mn=mn,
        cn=2051,
        qn=qn,
        data_time=moment,
        note="ack",
    )
    record.add_readings(
        frame_id,
        at=at,
        centre="c1",
        mn=mn,
        cn=2051,
        qn=qn,
        data_time=moment,
        pollutants=[
            Pollutant("a05001", {"Avg": Decimal(value), "Max": Decimal("9.00")}, "N"),
            Pollutant(other, {"Avg": Decimal("20.9")}, "N"),
        ],
    )
    return frame_id


def test_frames_and_readings_round_trip_with_exact_values(url: str) -> None:
    with Record(url) as record:
        first = upload(record, "20260101120100001", 0, "1.50", at=100.25)
        record.add_frame(
            at=100.5,
            centre="c1",
            transport="hj212",
            conn=1,
            peer="127.0.0.1:5000",
            direction="out",
            raw="##…9014…\r\n",
            cn=9014,
            qn="20260101120100001",
            ok=False,
            error_reason="crc",
            error="spoiled",
        )
        frames = record.frames()
        assert [(f.id, f.direction, f.cn, f.at) for f in frames] == [
            (first, "in", 2051, 100.25),
            (first + 1, "out", 9014, 100.5),
        ]
        assert frames[0].data_time == T0 and frames[0].raw.startswith("##0000QN=")
        assert (frames[1].ok, frames[1].error_reason) == (False, "crc")
        readings = record.readings(cn=2051)
        assert [(r.code, r.value, r.fields) for r in readings] == [
            ("a05001", Decimal("1.50"), {"Avg": "1.50", "Max": "9.00", "Flag": "N"}),
            ("a19001", Decimal("20.9"), {"Avg": "20.9", "Flag": "N"}),
        ]
        assert record.frames(direction="out", ok=False)[0].cn == 9014
        assert record.count_frames(centre="c1") == 2


def test_readings_chosen_by_data_time_are_those_the_times_compare_in(url: str) -> None:
    """The range is chosen in the database on the DataTime text; it must agree with comparing
    the times themselves, a bound with a fraction of a second included."""
    minute, half = timedelta(minutes=1), timedelta(seconds=0.5)
    with Record(url) as record:
        for m in range(5):
            upload(record, f"202601011200000{m:02d}", m, "1.00")
        every = record.readings(cn=2051)
        for since, before in [
            (T0 + minute, T0 + 3 * minute),
            (T0 + minute + half, T0 + 3 * minute + half),
            (T0 + minute - half, T0 + 3 * minute - half),
            (None, T0 + 2 * minute),
            (T0 + 4 * minute, None),
        ]:
            chosen = record.readings(cn=2051, since=since, before=before)
            windows = {(r.code, r.data_time) for r in chosen}
            counted = record.count_readings(cn=2051, since=since, before=before, distinct=True)
            assert counted == len(windows)
            assert chosen == [
                r
                for r in every
                if (since is None or r.data_time >= since)
                and (before is None or r.data_time < before)
            ]
        assert len(record.readings(since=T0 + minute, before=T0 + 3 * minute)) == 4


def test_a_poll_reads_only_the_readings_of_frames_after_the_last_it_read(url: str) -> None:
    """What a drain's poll adds to what it has seen: the readings of newer frames, the range
    still applied."""
    minute = timedelta(minutes=1)
    with Record(url) as record:
        first = upload(record, "20260101120000001", 0, "1.00")
        second = upload(record, "20260101120100002", 1, "2.00")
        upload(record, "20260101120200003", 2, "3.00")
        newer = record.readings(cn=2051, after_frame=first)
        assert {(r.frame_id, r.data_time) for r in newer} == {
            (second, T0 + minute),
            (second + 1, T0 + 2 * minute),
        }
        assert [r.frame_id for r in record.readings(before=T0 + 2 * minute, after_frame=first)] == [
            second,
            second,
        ]
        assert record.readings(after_frame=second + 1) == []


def test_the_codes_received_are_those_of_the_readings_chosen(url: str) -> None:
    minute = timedelta(minutes=1)
    with Record(url) as record:
        for m, other in enumerate(("a19001", "a21026", "a21002")):
            upload(record, f"202601011200000{m:02d}", m, "1.00", other=other)
        assert record.codes() == {"a05001", "a19001", "a21026", "a21002"}
        assert record.codes(cn=2051, since=T0 + minute) == {"a05001", "a21026", "a21002"}
        assert record.codes(centre="c2") == set()
        assert record.codes(cn=2011) == set()


def test_the_deduplicated_view_counts_copies_qns_and_disagreeing_values(url: str) -> None:
    with Record(url) as record:
        upload(record, "20260101120100001", 0, "1.50", at=1)
        upload(record, "20260101120100001", 0, "1.50", at=2)  # a resend: same QN
        upload(record, "20260101120500009", 0, "1.60", at=3)  # again, new QN, other value
        upload(record, "20260101120200002", 1, "2.50", at=4)
        rows = record.deduplicated(centre="c1")
        co2 = [r for r in rows if r.code == "a05001"]
        assert [(r.data_time, r.value, r.copies, r.qns, r.n_values) for r in co2] == [
            (T0, Decimal("1.50"), 3, 2, 2),
            (T0 + timedelta(minutes=1), Decimal("2.50"), 1, 1, 1),
        ]
        assert (co2[0].first_at, co2[0].last_at) == (1.0, 3.0)
        assert len(rows) == 4 and record.deduplicated(centre="other") == []
        # Counting needs no reading parsed: every copy counts, as readings() lists them.
        assert record.count_readings(centre="c1", cn=2051) == len(record.readings()) == 8
        assert record.count_readings(centre="other") == 0
        # Distinct windows: each (MN, CN, code, DataTime) once, however many copies came.
        assert record.count_readings(centre="c1", distinct=True) == len(rows) == 4
        assert record.count_readings(centre="c1", distinct=True, before=T0) == 0
        later = T0 + timedelta(minutes=1)
        assert record.count_readings(centre="c1", distinct=True, before=later) == 2
        assert record.count_readings(centre="c1", before=later) == 6
        # What arrived, each (code, DataTime) once: what a drain compares with what is owed.
        assert record.keys(centre="c1", cn=2051) == {(r.code, r.data_time) for r in rows}
        assert record.keys(centre="other") == set()


def test_a_reopened_file_record_keeps_its_frames_and_numbers_on(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    with Record(url) as record:
        first = upload(record, "20260101120100001", 0, "1")
    with Record(url) as record:
        second = upload(record, "20260101120200002", 1, "2")
        assert second == first + 1
        assert [f.id for f in record.frames()] == [first, second]


def test_records_sharing_a_file_number_their_frames_apart(tmp_path: Path) -> None:
    """One centre's process each, one file: the second of two takes the even ids, whatever
    the file already held."""
    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    with Record(url) as record:
        upload(record, "20260101120000001", 0, "1")  # id 1
    with Record(url, ids=(0, 2)) as even, Record(url, ids=(1, 2)) as odd:
        ids = [
            upload(even, "20260101120100001", 1, "1"),
            upload(odd, "20260101120100002", 1, "2"),
            upload(even, "20260101120200001", 2, "1"),
            upload(odd, "20260101120200002", 2, "2"),
        ]
        assert ids == [2, 3, 4, 5]
        odd.flush()
        assert sorted(f.id for f in even.frames()) == [1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="remainder"):
        Record(url, ids=(2, 2))


def test_writes_are_batched_by_the_writer_thread_not_the_caller() -> None:
    with Record("sqlite://", flush_interval=0.05) as record:
        for i in range(2000):
            upload(record, f"2026010112{i // 60 % 60:02d}{i % 60:02d}{i % 1000:03d}", i, str(i))
        # a query flushes first: everything added before it is there
        assert record.count_frames() == 2000
        assert len(record.readings()) == 4000


def test_a_long_runs_copies_carry_every_field_for_the_check(url: str) -> None:
    """``Record.copies`` (plain tuples, what a scenario's check of a million reads) keeps each
    copy's fields, so a window sent without its Max, or with another, is caught."""
    with Record(url) as record:
        upload(record, "20260101120100001", 0, "1.50")
        record.flush()
        received = record.copies(centre="c1", cn=2051)

    def wanting(**others: str) -> list[Expected]:
        fields = tuple((name, Decimal(text)) for name, text in others.items())
        return [Expected(MN, 2051, T0, "a05001", Decimal("1.50"), "Avg", fields)]

    assert check(wanting(Max="9.00"), received).wrong_value == ()
    assert check(wanting(Max="9"), received).wrong_value == ()  # the same number
    assert [
        (w.field, w.expected, w.received) for w in check(wanting(Max="8"), received).wrong_value
    ] == [("Max", Decimal(8), Decimal("9.00"))]
    assert [(w.field, w.received) for w in check(wanting(Min="1"), received).wrong_value] == [
        ("Min", None)
    ]


@given(st.dictionaries(st.text(), st.text()))
def test_a_readings_fields_are_written_as_json_dumps_writes_them(fields: dict[str, str]) -> None:
    """Checks look for a field by its text (``field_json``), so the text never changes with
    the encoder: non-ASCII and control characters escaped as ``json.dumps`` escapes them."""
    assert fields_json(fields) == json.dumps(fields, separators=(",", ":"))


_NAMES = st.sampled_from(["Rtd", "Avg", "Cou", "Min", "Max", "Zs", "Ia", "é", "\x7f"])
_DECIMALS = st.decimals(allow_nan=False, allow_infinity=False, places=None) | st.sampled_from(
    [Decimal("1E+3"), Decimal("1.5E-7"), Decimal("0.00"), Decimal("-0"), Decimal("12e2")]
)
_TEXTS = st.text(max_size=4)


@given(
    st.dictionaries(_NAMES, _DECIMALS, max_size=4),
    st.none() | _TEXTS,
    st.none() | _TEXTS,
    st.dictionaries(_NAMES | _TEXTS, _TEXTS, max_size=2),
)
def test_a_readings_own_columns_are_what_the_record_says(
    values: dict[str, Decimal], flag: str | None, eflag: str | None, texts: dict[str, str]
) -> None:
    """The writer's own columns of a reading (code, value, flag, fields, value_field), written
    out for speed, are what the contract says: exact decimals never in exponent form, value
    from Rtd, Avg, Cou or the first field, and value_field null where fields no longer say it."""
    fields = {name: format(v, "f") for name, v in values.items()}
    name = next((n for n in VALUE_FIELDS if n in values), next(iter(values), None))
    value = None if name is None else fields[name]
    if flag is not None:
        fields["Flag"] = flag
    if eflag is not None:
        fields["EFlag"] = eflag
    fields.update(texts)
    if name is not None and fields[name] != value:
        name = None
    pollutant = Pollutant("a05001", values, flag, eflag, None, texts)
    assert _own_values([pollutant]) == [
        "a05001",
        value,
        flag,
        json.dumps(fields, separators=(",", ":")),
        name,
    ]
