"""Judging a point by what reached the centres against what its meter gave (the meters' logs),
and the few read-backs through the management profile the item-level suites share (not a
test module)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from conformance.bench import Bench, local, posix
from conformance.dut import PointBinding
from conformance.oracle.minutes import GAP_FACTOR
from protocols.hj212 import Command
from simulators.fleet import Observation
from simulators.platform import ReadingRow

#: Protocols of the fleet's serial buses.
SERIAL = ("dlt645-2007", "dlt645-1997", "modbus-rtu", "cjt188")
#: Fields of an uploaded item that carry a number.
FIGURES = ("Rtd", "Avg", "Cou", "Min", "Max")
#: How long a stretch of a point's minute windows is judged (s).
WINDOW_S = 300.0
#: How long a stretch of uploaded values is judged (s): two real-time frames at the 15-minute
#: interval of ISC-2 §7.2.4(1).
UPLOADS_S = 1800.0
USABLE = ("good", "backup")


@dataclass(frozen=True, slots=True)
class Uploaded:
    """One value of a point as a centre received it (a real-time Rtd, a gauge's minute Min or
    Max: each is one reading, not a figure worked out from several), and every value its meter
    gave out in the time that reading can have been taken."""

    binding: PointBinding
    where: str  # "Rtd 20270101001500"
    text: str
    shown: tuple[Observation, ...]

    @property
    def value(self) -> Decimal | None:
        try:
            return Decimal(self.text)
        except InvalidOperation:
            return None

    def equal(self) -> list[Observation]:
        """What the meter showed that equals the uploaded value (digits aside)."""
        return [o for o in self.shown if self.value is not None and o.value == self.value]

    def as_shown(self) -> bool:
        """Whether the meter gave out this very text: the value with its significant digits."""
        return any(str(o.value) == self.text for o in self.shown)

    def __str__(self) -> str:
        near = sorted({str(o.value) for o in self.shown})[:4]
        return f"{self.binding.point} {self.where}: {self.text}, its meter gave {near}"


async def uploaded_values(bench: Bench, bindings: Sequence[PointBinding]) -> list[Uploaded]:
    """The values of ``bindings`` the first centre receives over the next
    :data:`UPLOADS_S` seconds (real-time Rtd; a gauge's minute Min and Max), each paired with
    what its meter gave out from one and a half periods before the frame's DataTime to just
    after it (a reading is stamped when it was taken or when the frame was made). Judged from
    the wire and the meters' logs alone: a fresh window, so what an earlier test did to a meter
    is not judged here."""
    by_code = {b.code: b for b in bindings if b.code and bench.fleet_meter(b)}
    centre = bench.rig.centres[0].name
    start = bench.now()
    await bench.wait(UPLOADS_S)
    end = bench.now()
    await bench.rig.sleep_until(end + bench.settled_after())
    lag = bench.tolerances.stamp_lag_s
    out: list[Uploaded] = []
    streams = [(Command.REALTIME_DATA, ("Rtd",)), (Command.MINUTE_DATA, ("Min", "Max"))]
    for cn, fields in streams:
        for row in bench.readings(centre, int(cn), since=start, before=end):
            binding = by_code.get(row.code)
            if binding is None or (cn == Command.MINUTE_DATA and binding.kind == "counter"):
                continue
            assert binding.meter is not None and binding.quantity is not None
            t = posix(row.data_time)
            period = bench.longest_period(binding.group, start, end)
            before = GAP_FACTOR * period + lag
            # a minute figure is stamped with its window's start and spans the minute
            after = lag + (60.0 if cn == Command.MINUTE_DATA else 0.0)
            shown = tuple(
                bench.rig.meter_log.shown(
                    binding.meter, binding.quantity, t - before, t + after + 1
                )
            )
            for name in fields:
                text = row.fields.get(name)
                if text is not None:
                    where = f"{name} {row.data_time:%Y%m%d%H%M%S}"
                    out.append(Uploaded(binding, where, text, shown))
    return out


def full_scale(bench: Bench, binding: PointBinding) -> Decimal | None:
    """Where the fleet meter's register for ``binding`` rolls over (None: it does not)."""
    assert binding.meter is not None
    for point in bench.rig.fleet.meters[binding.meter].points:
        if point.quantity == binding.quantity or binding.quantity in getattr(
            point, "quantities", []
        ):
            return point.full_scale
    return None


async def judge_points(
    bench: Bench, bindings: Sequence[PointBinding]
) -> tuple[list[str], dict[str, int]]:
    """Problems of the points' minute windows of the next few minutes at the first centre,
    judged against what the meters' logs owe (``Bench.minutes_arrive``): missing, without
    their value, or not what the meters gave; and how many windows of each point were judged.
    Fresh windows, not the last ones: a test judges its own time, not what an earlier test
    did to the meters. A point without a data item code shows nothing on the wire and is a
    problem here."""
    problems = [f"{b.point}: uploaded under no data item code" for b in bindings if not b.code]
    coded = {b.code: b for b in bindings if b.code}
    if not coded:
        return problems, {}
    centre = bench.rig.centres[0].name
    start = bench.now()
    await bench.wait(WINDOW_S)
    owed, result = await bench.minutes_arrive(
        centre, start, bench.now(), within=900, codes=set(coded)
    )
    judged = {coded[code].point: len(windows.owed) for code, windows in owed.points.items()}
    for code, windows in owed.points.items():
        if not windows.owed and not windows.excused:
            problems.append(
                f"{coded[code].point}: its meter's log shows no reading of it in "
                f"{WINDOW_S / 60:g} minutes ({len(windows.unpolled)} windows never measured)"
            )
    if not result.complete:
        problems.append(f"at {centre}: {result.summary()}")
    return problems, judged


async def judge_point(bench: Bench, binding: PointBinding) -> tuple[list[str], int]:
    """:func:`judge_points` of one point."""
    problems, judged = await judge_points(bench, [binding])
    return problems, judged.get(binding.point, 0)


def plant_text(bench: Bench, binding: PointBinding, t: float) -> str:
    """The plant's value of ``binding``'s quantity at ``t`` as a meter of its digits would show
    it: what an operator copies off a ticket (a counter entered by hand stays plausible, so the
    terminal's second check has nothing to object to)."""
    assert binding.quantity is not None
    value = max(0.0, bench.rig.fleet.plant.value(binding.quantity, t))
    return str(Decimal(repr(value)).quantize(Decimal(1).scaleb(-binding.decimals)))


async def entered(bench: Bench, binding: PointBinding, value: str, t: float) -> list[str]:
    """Problems with a value entered by hand for ``binding`` at ``t``: not stored as typed
    (digits kept), or neither flagged manual nor logged as a manual entry."""
    stored = [
        r for r in await bench.management.readings(binding.point, t - 1, t + 1) if abs(r.t - t) < 1
    ]
    if not stored:
        return [f"{binding.point}: the value {value} entered for {t:.0f} is not stored"]
    same = [r for r in stored if r.value is not None and str(r.value) == value]
    if not same:
        return [f"{binding.point}: entered {value}, stored {[str(r.value) for r in stored]}"]
    if any(r.quality == "manual" for r in same):
        return []
    # the entry is logged when it is made, which for a back-dated value is after ``t``
    events = await bench.management.events("manual_entry", binding.point, t - 1, bench.now() + 1)
    if events:
        return []  # flagged otherwise (e.g. suspect by the second check), entry logged
    return [f"{binding.point}: {value} stored as {same[0].quality}, no manual entry logged"]


def declared_period(bench: Bench, binding: PointBinding) -> float:
    """``binding``'s declared acquisition period (s)."""
    return float(bench.dut.target.parameters.periods.get(binding.group, 60))


def uploaded(
    bench: Bench,
    centre: str,
    code: str,
    start: float,
    end: float,
    *,
    cn: int = int(Command.MINUTE_DATA),
) -> dict[float, ReadingRow]:
    """The first copy of each ``code`` item of ``centre``'s CN ``cn`` data with DataTime in
    ``[start, end)``, by DataTime (POSIX)."""
    out: dict[float, ReadingRow] = {}
    rows = bench.readings(centre, cn, since=start, before=end)
    for row in sorted(rows, key=lambda r: r.frame_id):
        if row.code == code:
            out.setdefault(posix(row.data_time), row)
    return out


def figures(row: ReadingRow) -> dict[str, Decimal]:
    """The figures of an uploaded item that are numbers."""
    out = {}
    for name in FIGURES:
        text = row.fields.get(name)
        if text is None:
            continue
        try:
            out[name] = Decimal(text)
        except InvalidOperation:
            continue
    return out


async def arrive(bench: Bench, centre: str, code: str, windows: Sequence[float]) -> None:
    """Wait (up to 15 minutes) until the minutes ``windows`` of ``code`` reached ``centre``."""
    wanted = {local(w) for w in windows}

    async def arrived() -> bool:
        rows = bench.readings(
            centre, int(Command.MINUTE_DATA), since=windows[0], before=windows[-1] + 60
        )
        return wanted <= {r.data_time for r in rows if r.code == code}

    await bench.until(arrived, within=900, every=30)
