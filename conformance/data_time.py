"""HJ 212 DataTime and the bench's clock: a wire DataTime is plant-local time, naive (the
uplink's UTC offset, China's by default); the bench counts POSIX seconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PLANT_OFFSET = timedelta(hours=8)


def local(t: float) -> datetime:
    """POSIX seconds as a wire DataTime (plant-local, naive)."""
    return (datetime.fromtimestamp(t, UTC) + PLANT_OFFSET).replace(tzinfo=None)


def posix(data_time: datetime) -> float:
    return (data_time - PLANT_OFFSET).replace(tzinfo=UTC).timestamp()
