"""Alarms on emissions (ISC-2 §7.2.6, SSEA §5.4.6): thresholds, anomalies against the recent
past, periods short of data; raised once, cleared once, each a clear event record."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from reference_terminal.accounting.alarms import (
    AlarmEvent,
    AlarmMonitor,
    AlarmType,
    AnomalyRule,
    CoverageRule,
    Severity,
    ThresholdRule,
    anomaly_breach,
)
from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.live import LiveAccounting
from reference_terminal.accounting.methods import spec_from_text
from reference_terminal.accounting.statistics import (
    BEIJING,
    MinuteSeries,
    Period,
    SourceRate,
    minute_of,
    source_rates,
    totals,
)

LIBRARY = Path(__file__).resolve().parents[3] / "fixtures" / "factors"
D = Decimal
T0 = minute_of(datetime(2024, 3, 1, 0, 0, tzinfo=BEIJING))


@pytest.fixture(scope="module")
def rates() -> dict[str, SourceRate]:
    lib = FactorLibrary.load(LIBRARY)
    return source_rates(
        [
            spec_from_text("grid", "electricity", "1 kWh", factor="0.5703 tCO2/MWh"),
            spec_from_text("boiler", "combustion", "1 Nm3", fuel="natural_gas"),
        ],
        lib,
    )


def test_a_threshold_is_raised_once_and_cleared_once(rates: dict[str, SourceRate]) -> None:
    rule = ThresholdRule(
        "hourly-cap", "total", Period.HOUR, above=D("1"), severity=Severity.CRITICAL
    )
    monitor = AlarmMonitor([rule], meters={"grid": ["M-01", "M-02"]})
    kwh = {0: "1000", 60: "2000", 120: "3000", 180: "500"}  # 0.57, 1.14, 1.71, 0.29 t
    grid = MinuteSeries.from_values("grid", "kWh", [(T0 + m, v) for m, v in kwh.items()])
    events = [
        e for h in totals({"grid": grid}, rates, Period.HOUR) for e in monitor.observe_totals(h)
    ]
    assert [(e.state, e.span) for e in events] == [
        ("raised", "2024-03-01 01:00"),
        ("cleared", "2024-03-01 03:00"),
    ]
    raised = events[0]
    assert raised.type is AlarmType.THRESHOLD and raised.severity is Severity.CRITICAL
    assert raised.value == D("1.1406") and raised.limit == D(1)
    assert raised.meters == ("M-01", "M-02")  # every meter behind the total
    assert raised.t == (T0 + 120) * 60  # judged when the hour closed
    assert "total 1.1406 > 1" in raised.message
    event = raised.to_event()
    assert event.kind == "alarm" and event.details["rule"] == "hourly-cap"
    assert event.details["value"] == "1.1406" and event.details["meters"] == "M-01,M-02"


def test_a_fiftyfold_minute_is_an_anomaly(rates: dict[str, SourceRate]) -> None:
    """The conformance suite's spike: a counter fifty times its usual increment."""
    rule = AnomalyRule("spike", "source:grid", "minute", window=30, ratio=D(5), min_history=10)
    live = LiveAccounting(rates, monitor=AlarmMonitor([rule], meters={"grid": ["M-01"]}))
    raised: list[AlarmEvent] = []
    for i in range(40):
        kwh = D(50) if 20 <= i < 22 else D(1)
        raised += live.update(T0 + i, {"grid": kwh, "boiler": D(1)}).alarms
    assert [(e.state, e.span) for e in raised] == [
        ("raised", str(T0 + 20)),
        ("cleared", str(T0 + 22)),
    ]
    assert raised[0].type is AlarmType.ANOMALY and raised[0].meters == ("M-01",)
    assert raised[0].baseline == D("0.0005703") and raised[0].value == D("0.028515")


def test_anomalies_wait_for_history_and_ignore_an_idle_baseline() -> None:
    rule = AnomalyRule("a", "total", Period.HOUR, window=5, ratio=D(3), min_history=3, floor=D(1))
    assert anomaly_breach(rule, D(100), [D(1), D(1)]) is None  # too little history
    assert anomaly_breach(rule, D(100), [D(1), D(1), D(1)]) is not None
    assert anomaly_breach(rule, D("2.5"), [D(0), D(0), D(0)]) is None  # under 3 × floor
    robust = AnomalyRule("z", "total", Period.HOUR, ratio=None, z=D(4), min_history=3)
    history = [D(10), D(11), D(9), D(10), D(12)]
    assert anomaly_breach(robust, D(11), history) is None
    assert anomaly_breach(robust, D(20), history) is not None


def test_a_period_short_of_data_is_an_alarm(rates: dict[str, SourceRate]) -> None:
    monitor = AlarmMonitor([CoverageRule("gaps", Period.HOUR, D("0.9"), sources=("grid",))])
    grid = MinuteSeries.from_values("grid", "kWh", [(T0 + m, "1") for m in range(0, 50)])
    (hour,) = totals({"grid": grid}, rates, Period.HOUR)
    (event,) = monitor.observe_totals(hour)
    assert event.type is AlarmType.COVERAGE and event.subject == "coverage:grid"
    assert "83.333333 %" in event.message and "incomplete" in event.message


def test_rules_are_checked() -> None:
    with pytest.raises(AccountingError, match="above, below or both"):
        ThresholdRule("t", "total", Period.DAY)
    with pytest.raises(AccountingError, match="ratio must be above 1"):
        AnomalyRule("a", "total", Period.DAY, ratio=D(1))
    with pytest.raises(AccountingError, match="unique"):
        AlarmMonitor([CoverageRule("x", Period.DAY), CoverageRule("x", Period.HOUR)])
