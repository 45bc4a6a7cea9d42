"""What goes in comes back exactly: decimal text with the meter's digits, raw text, quality,
times to the last bit of the float, events with Chinese details, derived values."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reference_terminal.model import Event, Quality, Reading
from reference_terminal.storage.schema import Derived, _checked_derived_tuple, derived_tuple
from reference_terminal.storage.store import Store
from tests.reference_terminal.storage.helpers import T0, derived, event, reading

pytestmark = pytest.mark.anyio

decimals = st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: len(str(d)) <= 64)
texts = st.text(st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]))
readings = st.lists(
    st.builds(
        Reading,
        point=st.just("p"),
        t=st.floats(min_value=0, max_value=4e9, allow_nan=False),
        raw=texts,
        value=st.none()
        | decimals
        | st.sampled_from(["0.00", "-0.00", "100.10", "1E+3"]).map(Decimal),
        quality=st.sampled_from(list(Quality)),
        digits=st.integers(0, 6),
        device=st.text(
            st.characters(blacklist_characters="\x00", blacklist_categories=["Cs"]), max_size=64
        ),
        note=texts,
    ),
    min_size=1,
    max_size=20,
)


def _roundtrip(url: str, examples: int) -> None:
    store = asyncio.run(Store.open(url))

    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(batch=readings)
    def check(batch: list[Reading]) -> None:
        point = f"p{uuid.uuid4().hex[:12]}"
        batch = [
            Reading(point, r.t, r.raw, r.value, r.quality, r.digits, r.device, r.note)
            for r in batch
        ]

        async def go() -> list[Reading]:
            await store.write(batch)
            return await store.readings(point, 0, 5e9)

        back = asyncio.run(go())
        assert sorted(back, key=_key) == sorted(batch, key=_key)
        for got in back:  # the same digits, not just the same number
            want = next(r for r in batch if _key(r) == _key(got))
            assert str(got.value) == str(want.value)

    try:
        check()
    finally:
        asyncio.run(store.close())


def _key(r: Reading) -> tuple[float, str, str, str, str]:
    return (r.t, r.raw, str(r.value), r.note, r.device)


def test_readings_round_trip_exactly_sqlite(sqlite_url: str) -> None:
    _roundtrip(sqlite_url, 40)


def test_readings_round_trip_exactly_on_every_backend(url: str) -> None:
    _roundtrip(url, 15)


async def test_digits_and_missing_values_kept(url: str) -> None:
    async with await Store.open(url) as store:
        values = ["0.00", "-0.00", "0", "0E-7", "123456.780", "1E+3", "-9999999.999999", None]
        batch = [reading("EM01.ep", T0 + i, v) for i, v in enumerate(values)]
        await store.write(batch)
        back = await store.readings("EM01.ep", T0, T0 + 100)
        assert [None if r.value is None else str(r.value) for r in back] == values
        assert back == batch


async def test_events_and_derived_round_trip(url: str) -> None:
    async with await Store.open(url) as store:
        gap = event("gap", T0, reason="超时 timeout", missing="12")
        plain = Event(t=T0 + 1, kind="restart")
        await store.write(events=[gap, plain], derived=[derived(value="0.00"), derived(kind="day")])
        assert await store.events() == [gap, plain]
        got = await store.derived("EM01.ep")
        assert {(d.kind, str(d.value)) for d in got} == {("hour", "0.00"), ("day", "12.50")}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (Reading("EM01.ep", float("nan"), "", None, Quality.GOOD, 0, "m"), "finite"),
        (Reading("EM01.ep", T0, "", Decimal("NaN"), Quality.GOOD, 0, "m"), "finite"),
        (Reading("EM01.ep", T0, "", 1.5, Quality.GOOD, 0, "m"), "Decimal"),  # type: ignore[arg-type]
        (Reading("EM01.ep", T0, "", Decimal("1" * 70), Quality.GOOD, 0, "m"), "characters"),
        (Reading("EM01.ep", T0, "", None, "excellent", 0, "m"), "excellent"),  # type: ignore[arg-type]
        (Reading("", T0, "", None, Quality.GOOD, 0, "m"), "non-empty"),
        (Reading("EM01.ep", T0, "a\x00b", None, Quality.GOOD, 0, "m"), "NUL"),
        (Reading("EM01.ep", T0, "", None, Quality.GOOD, -1, "m"), "decimal places"),
    ],
)
async def test_invalid_reading_fails_alone_with_a_clear_message(
    sqlite_url: str, bad: Reading, message: str
) -> None:
    async with await Store.open(sqlite_url) as store:
        good = [reading("EM01.ep", T0 + i) for i in range(1, 4)]
        results = await asyncio.gather(
            store.write(good[:1]), store.write([bad]), store.write(good[1:]), return_exceptions=True
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], ValueError | TypeError)
        assert message in str(results[1])
        assert await store.readings("EM01.ep", 0, 5e9) == good


def _bad(**change: object) -> Derived:
    return replace(derived(), **change)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (_bad(start=float("nan")), "finite"),
        (_bad(end=float("inf")), "finite"),
        (_bad(end=T0 - 1), "before it starts"),
        (_bad(computed_at=float("nan")), "finite"),
        (_bad(value=Decimal("Infinity")), "finite"),
        (_bad(value=1.5), "Decimal"),
        (_bad(value=Decimal("1" * 70)), "characters"),
        (_bad(quality="excellent"), "excellent"),
        (_bad(point=""), "non-empty"),
        (_bad(kind="x" * 200), "characters"),
        (_bad(note="a\x00b"), "NUL"),
        ("not a value", "expected a Derived"),
    ],
)
async def test_an_invalid_derived_value_fails_alone_with_a_clear_message(
    sqlite_url: str, bad: Derived, message: str
) -> None:
    async with await Store.open(sqlite_url) as store:
        good = [derived(start=T0 + 3600 * i) for i in range(1, 4)]
        results = await asyncio.gather(
            store.write(derived=good[:1]),
            store.write(derived=[bad]),
            store.write(derived=good[1:]),
            return_exceptions=True,
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], ValueError | TypeError)
        assert message in str(results[1])
        assert await store.derived("EM01.ep", "hour") == good


@given(
    start=st.floats(allow_nan=False, allow_infinity=False, min_value=0, max_value=4e9),
    length=st.sampled_from([0.0, 1.0, 60.0, 3600.0]),
    value=st.none() | st.decimals(min_value=-(10**12), max_value=10**12, places=3),
    quality=st.sampled_from(list(Quality)),
    note=st.text(max_size=20).filter(lambda s: "\x00" not in s),
)
def test_the_fast_check_of_a_derived_value_agrees_with_the_full_one(
    start: float, length: float, value: Decimal | None, quality: Quality, note: str
) -> None:
    d = Derived("EM01.ep", "hour", start, start + length, value, quality, note, start)
    assert derived_tuple(d) == _checked_derived_tuple(d)


async def test_derived_value_for_the_same_period_is_replaced(url: str) -> None:
    async with await Store.open(url) as store:
        await store.write_derived([derived(value="1.00"), derived(start=T0 + 3600, value="2.00")])
        await store.write_derived([derived(value="1.50", note="recomputed after backfill")])
        # two values for one period in one group: the last one wins
        await asyncio.gather(
            store.write_derived([derived(start=T0 + 7200, value="3.00")]),
            store.write_derived([derived(start=T0 + 7200, value="3.10")]),
        )
        got = await store.derived("EM01.ep", "hour")
        assert [(d.start, str(d.value)) for d in got] == [
            (T0, "1.50"),
            (T0 + 3600, "2.00"),
            (T0 + 7200, "3.10"),
        ]
        assert got[0].note == "recomputed after backfill"
