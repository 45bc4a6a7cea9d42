"""What a platform may change at run time, per centre, kept across restarts: RtdInterval (1062),
MinInterval (1064), OverTime/ReCount (1000) and whether real-time data is on (2011/2012).

The configuration gives the starting values; a value the platform set is stored in the
centre's upload state and wins over the configuration until the configuration itself changes
it (a new configured value is taken as the operator's newer word).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from reference_terminal.config import CentreBase, Hj212Centre
from reference_terminal.storage.store import Store
from reference_terminal.uplink.outbox import all_state, set_state

_FIELDS = ("realtime_interval_s", "minute_interval_min", "over_time_s", "re_count")


@dataclass
class CentreSettings:
    realtime_interval_s: int
    minute_interval_min: int
    over_time_s: int
    re_count: int
    realtime_on: bool = True

    @classmethod
    def configured(cls, centre: CentreBase) -> CentreSettings:
        timing = (
            (centre.over_time_s, centre.re_count) if isinstance(centre, Hj212Centre) else (10, 3)
        )
        return cls(centre.streams.realtime_interval_s, centre.streams.minute_interval_min, *timing)

    @classmethod
    async def load(cls, store: Store, centre: CentreBase) -> CentreSettings:
        settings = cls.configured(centre)
        state = await store.run_in_reader(lambda c: all_state(c, centre.name))
        for name in _FIELDS:
            configured = str(getattr(settings, name))
            stored = state.get(f"set.{name}")
            # the platform's value holds while the configured one is the one it replaced
            if stored is not None and state.get(f"cfg.{name}") == configured:
                setattr(settings, name, int(stored))
        settings.realtime_on = state.get("set.realtime_on", "1") == "1"
        return settings

    async def save(self, store: Store, centre: CentreBase, **changes: int | bool) -> None:
        """Apply values a platform command set, durably."""
        configured = CentreSettings.configured(centre)

        def write(conn: Connection) -> None:
            for name, value in changes.items():
                if name == "realtime_on":
                    set_state(conn, centre.name, "set.realtime_on", "1" if value else "0")
                else:
                    set_state(conn, centre.name, f"set.{name}", str(int(value)))
                    set_state(conn, centre.name, f"cfg.{name}", str(getattr(configured, name)))

        await store.run_in_writer(write)
        for name, value in changes.items():
            setattr(self, name, value)
