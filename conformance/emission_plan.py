"""What a terminal's emission codes are and the rate each source must be accounted at, minute
by minute: the target's test parameters (PIXIT ``parameters.emissions``) read against the
bench's plant, its factor library and what its platform published for download (CSMT §11.4).

**Sources.** Each declared source reads some of the bench's meters (its activity: their
counters' increments) and has a method: an explicit factor, or library values (a ``fuel``, a
named ``factor``). Its rate — tCO2 per unit of each read's plant quantity — is the accounting
oracle's own arithmetic (:func:`conformance.accounting_oracle.expected_rate`) on the bench's
library (``fixtures/factors``), or, for a source declared ``published``, on the library the
bench's platform published and the terminal downloaded.

**Publications.** A test that publishes a library registers it here (:func:`publish`): its text,
or that it was tampered with (a terminal must refuse it). The platform notes every download
(when, which version): from the first download of a registered version a published source is
due at that library's rate. A minute that a change may or may not have reached (booked within
:data:`SWITCH_MARGIN_S` before the download, the terminal's booking lagging its window) is
not judged; before any registered version was downloaded a published rate is unknown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import yaml

from conformance.accounting_oracle import (
    LIBRARY,
    OracleError,
    expected_rate,
    library,
    library_of,
)
from conformance.bench import Bench
from conformance.target import (
    MANAGEMENT_PROFILE,
    EmissionCategory,
    EmissionCode,
    Emissions,
    EmissionSource,
    MeterRead,
)
from conformance.verdicts import NotApplicable
from simulators.fleet.accounting import Read, Source
from simulators.fleet.schema import ManualEntry

#: A source's CSMT §9.4 category by its kind (GB/T 32150; exports deduct from their category).
CATEGORY: dict[str, EmissionCategory] = {
    "combustion": "combustion",
    "process": "process",
    "carbonate": "carbonates",
    "recovered": "destruction_recovery",
    "electricity": "electricity",
    "exported_electricity": "electricity",
    "heat": "heat",
    "exported_heat": "heat",
    "biomass": "biomass",
}
SCOPE: dict[str, int | None] = {
    "combustion": 1,
    "process": 1,
    "carbonates": 1,
    "destruction_recovery": 1,
    "sector_specific": 1,
    "electricity": 2,
    "heat": 2,
    "biomass": None,
}
#: CSMT §7.2 as this bench reads a structured code: industry, activity, source, parameter, point.
STRUCTURED = re.compile(r"[A-T][0-9]{4}(?P<activity>[0-9]{2})[0-9]{3}[A-Za-z0-9]{3}[0-9]{2}")
#: Seconds before a download within which a minute window may be booked at either rate (its
#: booking comes a window and a period or two after it starts).
SWITCH_MARGIN_S = 300.0


def activity_digits(code: str) -> str | None:
    """The emission-activity digits of a structured CSMT §7.2 code (None: not structured)."""
    match = STRUCTURED.fullmatch(code)
    return None if match is None else match["activity"]


@dataclass(frozen=True, slots=True)
class PlannedSource:
    """One declared source with what the bench knows of it."""

    spec: EmissionSource
    category: EmissionCategory
    scope: int | None
    reads: tuple[tuple[str, str, str], ...]  # (meter, quantity, the quantity's plant unit)
    manual: bool  # entered by hand: the meters' logs know nothing of its activity

    @property
    def id(self) -> str:
        return self.spec.id

    def method(self) -> Source:
        """The source as the oracle's arithmetic takes it (the fleet's schema)."""
        s = self.spec
        return Source(
            id=s.id,
            kind=s.kind,
            reads=[Read(meter=m, quantity=q) for m, q, _ in self.reads],
            fuel=s.fuel,
            factor=s.factor,
            ncv=s.ncv,
            carbon_content=s.carbon_content,
            oxidation=s.oxidation,
            purity=s.purity,
        )


@dataclass
class Plan:
    """The declared emissions on this bench's plant."""

    emissions: Emissions
    sources: dict[str, PlannedSource]

    @property
    def codes(self) -> list[EmissionCode]:
        return self.emissions.codes

    def members(self, code: EmissionCode) -> list[PlannedSource]:
        """The sources a code adds up (a unit's and the boundary's: scope 1 and 2 only)."""
        if code.of == "source":
            return [self.sources[str(code.id)]]
        return [
            s
            for s in self.sources.values()
            if s.scope is not None and (code.of == "boundary" or s.spec.unit == code.id)
        ]

    def own_code(self, source: str) -> str | None:
        """The code a source's own figure goes up under (None: it has none)."""
        return next((c.code for c in self.codes if c.of == "source" and c.id == source), None)


def _planned(bench: Bench, spec: EmissionSource, manual: set[str]) -> PlannedSource:
    fleet = bench.rig.fleet
    reads = []
    for read in spec.reads:
        if read.meter not in fleet.meters and read.meter not in manual:
            raise NotApplicable(
                f"parameters.emissions: source {spec.id} reads {read.meter}, which is no "
                f"meter of fleet {fleet.spec.name!r}"
            )
        unit = fleet.plant.quantity(read.quantity).unit
        reads.append((read.meter, read.quantity, unit))
    category = spec.category or CATEGORY[spec.kind]
    every_manual = all(m in manual for m, _, _ in reads)
    return PlannedSource(spec, category, SCOPE[category], tuple(reads), every_manual)


def _manual_meters(bench: Bench) -> set[str]:
    return {m.id for m in bench.rig.fleet.spec.meters if isinstance(m, ManualEntry)}


def plan_for(bench: Bench) -> Plan:
    """The target's emission parameters on this bench's plant; not applicable without them."""
    emissions = bench.dut.target.parameters.emissions
    if emissions is None:
        raise NotApplicable(
            "the target declares no parameters.emissions (which codes carry which sources' "
            "emissions, by which method): the uploaded emissions cannot be judged"
        )
    manual = _manual_meters(bench)
    sources = {spec.id: _planned(bench, spec, manual) for spec in emissions.sources}
    return Plan(emissions, sources)


def survey_sources(bench: Bench, plan: Plan) -> list[PlannedSource]:
    """Every source of the plant's survey (the fleet's accounting section) inside a boundary
    (scope 1 or 2): the declared one that reads the same meters, else the survey's own method
    on the bench's library."""
    survey = bench.rig.fleet.spec.accounting
    if survey is None:
        return []
    declared = {frozenset((m, q) for m, q, _ in s.reads): s for s in plan.sources.values()}
    manual = _manual_meters(bench)
    out = []
    for unit, source in survey.sources():
        reads = frozenset((r.meter, r.quantity) for r in source.reads)
        found = declared.get(reads)
        if found is None:
            spec = EmissionSource(
                id=f"survey.{source.id}",
                unit=unit.id,
                kind=source.kind,
                reads=[MeterRead(meter=r.meter, quantity=r.quantity) for r in source.reads],
                fuel=source.fuel,
                factor=source.factor,
                ncv=source.ncv,
                carbon_content=source.carbon_content,
                oxidation=source.oxidation,
                purity=source.purity,
            )
            found = _planned(bench, spec, manual)
        if found.scope is not None:
            out.append(found)
    return out


# ---- publications --------------------------------------------------------------------------

#: version → the library text published under it, or None: published tampered (refused).
_PUBLISHED: dict[str, str | None] = {}


def published_library(revision: int, scale: Mapping[str, Decimal] | None = None) -> str:
    """The bench's library (``fixtures/factors``) with every vintage at ``revision``; the
    entries named in ``scale`` with their ``factor`` and ``carbon_content`` times the scale."""
    vintages = []
    for path in sorted(LIBRARY.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for vintage in data.get("vintages", [data]):
            factors = [_scaled(f, (scale or {}).get(f["name"])) for f in vintage["factors"]]
            vintages.append(vintage | {"revision": revision, "factors": factors})
    return yaml.safe_dump({"vintages": vintages}, allow_unicode=True, sort_keys=False)


def _scaled(entry: dict[str, Any], by: Decimal | None) -> dict[str, Any]:
    if by is None:
        return entry
    out = dict(entry)
    for name in ("factor", "carbon_content"):
        text = entry.get(name)
        if isinstance(text, str):
            number, _, unit = text.partition(" ")
            out[name] = f"{Decimal(number) * by:f} {unit}".strip()
    return out


def publishing_centre(bench: Bench) -> str | None:
    """The first of the bench's centres that publishes a factor library."""
    return next((c.name for c in bench.rig.centres if c.factors_url), None)


def publish(bench: Bench, centre: str, text: str, version: str, *, tamper: bool = False) -> None:
    """Publish ``text`` as ``version`` at ``centre`` (``tamper``: changed after signing, a
    publication every terminal must refuse), registered for the rates' timeline."""
    publisher = bench.rig.platforms.https(centre).publisher
    with bench.rig.hold():
        at = datetime.fromtimestamp(bench.now(), UTC)
        publisher.publish(text, version, at, tamper=tamper)
    _PUBLISHED[version] = None if tamper else text


def downloaded(bench: Bench, centre: str, version: str, since: float) -> bool:
    """Whether the terminal has downloaded ``version`` from ``centre`` since ``since``."""
    downloads = bench.rig.platforms.https(centre).library_downloads
    return any(d.version == version and d.at >= since - 1 for d in downloads)


def next_revision(bench: Bench, centre: str) -> int:
    """A revision above every one the bench published in this run."""
    downloads = len(bench.rig.platforms.https(centre).library_downloads)
    return 1000 + 10 * len(_PUBLISHED) + downloads


@dataclass
class Rates:
    """Each declared source's rate at a minute (see the module text)."""

    plan: Plan
    #: (download instant, the library text then taken, or None: a version the bench does not
    #: know, its values unknown), in order
    changes: list[tuple[float, str | None]] = field(default_factory=list)
    _cache: dict[tuple[str, int, str | None], Decimal | str] = field(default_factory=dict)

    @classmethod
    def now(cls, bench: Bench, plan: Plan) -> Rates:
        """The rates with the publications the terminal downloaded so far."""
        rates = cls(plan)
        centre = publishing_centre(bench)
        if centre is None:
            return rates
        taken: str | None = None
        for d in bench.rig.platforms.https(centre).library_downloads:
            if d.version is None or d.version == taken:
                continue
            if d.version in _PUBLISHED and _PUBLISHED[d.version] is None:
                continue  # tampered: the terminal must keep what it had
            taken = d.version
            rates.changes.append((d.at, _PUBLISHED.get(d.version)))
        return rates

    def switching(self, w: float) -> bool:
        """Whether a library taken may or may not have reached minute ``w`` (see the module
        text)."""
        return any(t - SWITCH_MARGIN_S <= w < t for t, _ in self.changes)

    def at(self, source: PlannedSource, read: int, w: float) -> Decimal | str:
        """tCO2 per unit of read ``read``'s quantity in the minute window starting at ``w``,
        or why the bench cannot tell."""
        text: str | None = None
        if source.spec.published:
            before = [(t, lib) for t, lib in self.changes if t <= w]
            if self.switching(w):
                return "the published library changed as this minute was booked"
            if not before:
                return "no library of the platform's was taken yet (published values)"
            text = before[-1][1]
            if text is None:
                return "the terminal took a publication the bench does not know"
        key = (repr(source.spec), read, text)
        if key not in self._cache:
            self._cache[key] = self._rate(source, read, text)
        return self._cache[key]

    def _rate(self, source: PlannedSource, read: int, text: str | None) -> Decimal | str:
        factors = library()
        if text is not None:
            factors |= library_of([text])
        try:
            return expected_rate(
                source.method(), source.reads[read][2], factors, self.plan.emissions.vintage
            )
        except (OracleError, KeyError) as exc:
            return f"the oracle cannot recompute {source.id}'s rate: {exc}"


async def published_in_force(bench: Bench, plan: Plan) -> None:
    """Make sure the terminal runs on a library the bench published and registered, when a
    declared source takes published values: else publish the bench's own library (its values,
    a new revision) and wait until the terminal has taken it — within its declared poll
    period, or at once through the profile. Without either its rates stay unknown (those
    figures are then not judged)."""
    if not any(s.spec.published for s in plan.sources.values()):
        return
    centre = publishing_centre(bench)
    if centre is None:
        return
    changes = Rates.now(bench, plan).changes
    if changes and changes[-1][1] is not None:
        return  # a library the bench knows is in force
    revision = next_revision(bench, centre)
    version = f"carbench-wire-{revision}"
    since = bench.now()
    publish(bench, centre, published_library(revision), version)
    poll = plan.emissions.factor_poll_s
    if poll is None:
        if not bench.dut.target.declares(f"feature:{MANAGEMENT_PROFILE}"):
            return
        await bench.management.request("POST", "/accounting/factors/download", json={})

    async def taken() -> bool:
        return downloaded(bench, centre, version, since)

    await bench.until(taken, within=(poll or 60.0) + 120.0, every=10.0)
