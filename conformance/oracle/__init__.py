"""The black-box oracle: what a conforming terminal owes, worked out from the bench's own
truth (the meters' logs, the plant, the bench's power cuts), never from the device's report."""

from conformance.oracle.arrivals import Owed, judge
from conformance.oracle.meter_log import Answer, MeterLog
from conformance.oracle.minutes import OwedWindow, PointWindows, owed_windows
from conformance.target import Tolerances

__all__ = [
    "Answer",
    "MeterLog",
    "Owed",
    "OwedWindow",
    "PointWindows",
    "Tolerances",
    "judge",
    "owed_windows",
]
