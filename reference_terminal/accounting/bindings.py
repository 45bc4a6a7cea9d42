"""The accounting section resolved against the configuration and the factor library: each
activity point bound to its source, its method and its rate (single-point accounting, CSMT
§9.2), each source to its accounting unit (boundary accounting, §9.3) and its scope and
category (classified accounting, §9.4).

:func:`resolve` is what the running terminal uses; :func:`check` is the same, called by
``TerminalConfig`` so that a configuration that cannot be accounted for is refused at start (and
by ``PUT /config``) with a message naming the field: an unknown point, a point that is not a
counter, an unknown fuel or factor, a parameter that does not fit its formula, a point whose
unit its method cannot use, a vintage the library lacks.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from reference_terminal.accounting.alarms import (
    MINUTE,
    AnomalyRule,
    CoverageRule,
    Granularity,
    Rule,
    Severity,
    ThresholdRule,
)
from reference_terminal.accounting.configuration import Accounting, AlarmRule, Source
from reference_terminal.accounting.errors import AccountingError, SourceError
from reference_terminal.accounting.factors import FactorLibrary
from reference_terminal.accounting.methods import SCOPE, SourceKind, spec_from_text
from reference_terminal.accounting.statistics import (
    BASIS_UNIT,
    Basis,
    Period,
    SourceRate,
    source_rates,
)
from reference_terminal.accounting.units import Quantity, parse_unit

if TYPE_CHECKING:
    from reference_terminal.config import Point, VirtualPoint

#: CSMT §9.4 categories: scope 1 a) 1)–5), scope 2 b) 1)–2), and biomass apart (GB/T 32150).
CSMT_CATEGORY: dict[SourceKind, str] = {
    SourceKind.COMBUSTION: "combustion",
    SourceKind.PROCESS: "process",
    SourceKind.CARBONATE: "carbonates",
    SourceKind.RECOVERED: "destruction_recovery",
    SourceKind.ELECTRICITY: "electricity",
    SourceKind.EXPORTED_ELECTRICITY: "electricity",
    SourceKind.HEAT: "heat",
    SourceKind.EXPORTED_HEAT: "heat",
    SourceKind.BIOMASS: "biomass",
}
SCOPE1_CATEGORIES = (
    "combustion",
    "process",
    "carbonates",
    "destruction_recovery",
    "sector_specific",
)
SCOPE2_CATEGORIES = ("electricity", "heat")


class BindingError(AccountingError):
    """The accounting section does not fit the configuration or the library (names the field)."""


@dataclass(frozen=True, slots=True)
class PointBinding:
    """One activity point: its source, unit, method and rate (tCO2 per unit of its activity)."""

    point: str
    source: Source
    unit_id: str
    unit_name: str
    kind: SourceKind
    scope: int | None  # None: biomass, reported apart
    category: str  # CSMT §9.4 category (or the source's own, e.g. sector_specific)
    activity_unit: str  # the point's unit
    rate: SourceRate
    meters: tuple[str, ...]  # the devices it is read from (source, then backup)
    manual: bool  # entered by hand: converted at once (CSMT §11.6)


@dataclass(frozen=True, slots=True)
class BasisBinding:
    basis: Basis
    points: tuple[str, ...]
    unit: str  # the unit the basis is counted in (MWh, GJ, or the product's)
    name: str = ""


@dataclass(frozen=True, slots=True)
class Bindings:
    config: Accounting
    library: FactorLibrary
    vintage: str | None
    points: Mapping[str, PointBinding]
    bases: Mapping[Basis, BasisBinding]
    #: point → (basis, the point's unit) for every point that feeds a basis
    basis_points: Mapping[str, tuple[tuple[Basis, str], ...]]
    rules: tuple[Rule, ...]
    #: per point: the rules that watch it; the rest watch enterprise measures
    point_rules: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    @property
    def tracked(self) -> list[str]:
        """Every point the accounting follows: sources' and bases' points, in order."""
        return list(dict.fromkeys([*self.points, *self.basis_points]))

    def sources(self) -> dict[str, list[PointBinding]]:
        out: dict[str, list[PointBinding]] = {}
        for b in self.points.values():
            out.setdefault(b.source.id, []).append(b)
        return out


# ---- the library -------------------------------------------------------------------------------


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), st.st_mtime_ns, st.st_size)


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in {".yaml", ".yml", ".json"})
    return [path]


def load_library(config: Accounting) -> FactorLibrary:
    """The built-in library files, then the imported ones (each imported vintage replaces the
    one of the same name); cached until a file changes."""
    built_in = [Path(p) for p in config.library]
    imported = _files(Path(config.imports_dir)) if Path(config.imports_dir).is_dir() else []
    stamps = tuple(_stamp(f) for p in built_in for f in _files(p))
    stamps += tuple(_stamp(f) for f in imported)
    return _load(tuple(config.library), tuple(str(f) for f in imported), stamps)


@functools.lru_cache(maxsize=16)
def _load(
    built_in: tuple[str, ...], imported: tuple[str, ...], _stamps: tuple[object, ...]
) -> FactorLibrary:
    library = FactorLibrary({}, ())
    for i, path in enumerate(built_in):
        if not Path(path).exists():
            raise BindingError(f"accounting.library[{i}]: {path}: no such file or directory")
        try:
            library = library.merged(FactorLibrary.load(path))
        except AccountingError as exc:
            raise BindingError(f"accounting.library[{i}]: {exc}") from None
    for path in imported:
        try:
            library = library.merged(FactorLibrary.load(path), replace=True)
        except AccountingError as exc:
            raise BindingError(f"accounting.imports_dir: {exc}") from None
    return library


# ---- resolving -----------------------------------------------------------------------------


def check(
    accounting: Accounting, points: Sequence[Point], virtual: Sequence[VirtualPoint] = ()
) -> Bindings:
    """:func:`resolve`, its errors as ``ValueError`` for the configuration's validator."""
    try:
        return resolve(accounting, points, virtual)
    except AccountingError as exc:
        raise ValueError(str(exc)) from None


def resolve(
    accounting: Accounting,
    points: Sequence[Point],
    virtual: Sequence[VirtualPoint] = (),
    *,
    library: FactorLibrary | None = None,
    manual_devices: frozenset[str] = frozenset(),
) -> Bindings:
    """Bind every point of ``accounting`` (see the module text); :class:`BindingError` names
    the field of the first problem."""
    from reference_terminal.processing.virtual import plan  # noqa: PLC0415 (imports config)

    layout = plan(points, virtual)
    metered = {p.id: p for p in points}
    library = load_library(accounting) if library is None else library
    vintage = accounting.vintage
    if vintage is not None and vintage not in library.vintages:
        known = sorted(library.vintages)
        raise BindingError(f"accounting.vintage: {vintage!r} is not in the library; known: {known}")

    def counter(point: str, where: str) -> str:
        kind = layout.kinds.get(point)
        if kind is None:
            raise BindingError(f"{where}: no point {point!r} in the configuration")
        if kind != "counter":
            raise BindingError(
                f"{where}: {point!r} is a {kind}; activity data are increments of a counter "
                "(CSMT §8.2.1): bind a counter point (or integrate the gauge first)"
            )
        return layout.units.get(point, "")

    bound: dict[str, PointBinding] = {}
    chosen: tuple[str, str] | None = None  # (vintage, where) of the first library factor
    for i, unit in enumerate(accounting.units):
        for j, source in enumerate(unit.sources):
            where = f"accounting.units[{i}].sources[{j}]"
            kind = SourceKind(source.kind)
            for k, point in enumerate(source.points):
                at = f"{where}.points[{k}]"
                activity_unit = counter(point, at)
                rate = _rate(source, point, activity_unit, library, vintage, where, at)
                if rate.vintage is not None and vintage is None:
                    if chosen is None:
                        chosen = (rate.vintage, where)
                    elif chosen[0] != rate.vintage:
                        raise BindingError(
                            f"{where}: its factor comes from {rate.vintage!r}, but {chosen[1]}'s "
                            f"from {chosen[0]!r}: one inventory takes factors from one vintage "
                            "(set accounting.vintage, or give explicit parameters)"
                        )
                meter = metered.get(point)
                devices: tuple[str, ...] = ()
                if meter is not None:
                    devices = (meter.source.device,)
                    if meter.backup is not None:
                        devices += (meter.backup.device,)
                bound[point] = PointBinding(
                    point=point,
                    source=source,
                    unit_id=unit.id,
                    unit_name=unit.name,
                    kind=kind,
                    scope=SCOPE[kind],
                    category=source.category or CSMT_CATEGORY[kind],
                    activity_unit=activity_unit,
                    rate=rate,
                    meters=devices,
                    manual=bool(devices) and devices[0] in manual_devices,
                )
    bases: dict[Basis, BasisBinding] = {}
    basis_points: dict[str, list[tuple[Basis, str]]] = {}
    for name, given in accounting.bases.items():
        basis = Basis(name)
        target = BASIS_UNIT.get(basis) or given.unit
        for k, point in enumerate(given.points):
            at = f"accounting.bases.{name}.points[{k}]"
            measured = counter(point, at)
            target = target or measured
            try:
                Quantity(Decimal(1), parse_unit(measured)).to(target)
            except AccountingError as exc:
                raise BindingError(
                    f"{at}: {point!r} measures {measured or '(no unit)'}, not a quantity of "
                    f"{target}: {exc}"
                ) from None
            basis_points.setdefault(point, []).append((basis, measured))
        bases[basis] = BasisBinding(basis, tuple(given.points), target, given.name)
    rules, point_rules = _rules(accounting.alarms, bound, basis_points)
    return Bindings(
        config=accounting,
        library=library,
        vintage=vintage or (chosen[0] if chosen else None),
        points=bound,
        bases=bases,
        basis_points={p: tuple(v) for p, v in basis_points.items()},
        rules=rules,
        point_rules=point_rules,
    )


def _rate(
    source: Source,
    point: str,
    unit: str,
    library: FactorLibrary,
    vintage: str | None,
    where: str,
    at: str,
) -> SourceRate:
    """The point's rate: its source's method applied to one unit of the point's activity."""
    try:
        spec = spec_from_text(
            point,
            source.kind,
            f"1 {unit}",
            fuel=source.fuel,
            factor=source.factor,
            ncv=source.ncv,
            carbon_content=source.carbon_content,
            oxidation=source.oxidation,
            purity=source.purity,
            data_year=source.data_year,
        )
        return source_rates([spec], library, vintage)[point]
    except SourceError as exc:
        if exc.field == "quantity":
            raise BindingError(
                f"{at}: {point!r} measures {unit or '(no unit)'}, which a {source.kind} source "
                f"cannot use: {exc.detail}"
            ) from None
        raise BindingError(f"{where}.{exc.field}: {exc.detail}") from None
    except AccountingError as exc:
        raise BindingError(f"{where}: {exc}") from None


def _rules(
    given: Sequence[AlarmRule],
    bound: Mapping[str, PointBinding],
    basis_points: Mapping[str, object],
) -> tuple[tuple[Rule, ...], dict[str, tuple[Rule, ...]]]:
    enterprise: list[Rule] = []
    per_point: dict[str, list[Rule]] = {}
    for i, rule in enumerate(given):
        if rule.point is not None and rule.point not in bound and rule.point not in basis_points:
            raise BindingError(
                f"accounting.alarms[{i}].point: {rule.point!r} is no point of the accounting "
                "(bind it to a source or a basis first)"
            )
        if rule.point is not None and rule.of == "emission" and rule.point not in bound:
            raise BindingError(
                f"accounting.alarms[{i}].of: {rule.point!r} feeds only a basis: it has no emission"
            )
        made = alarm_rule(rule)
        if rule.point is not None:
            per_point.setdefault(rule.point, []).append(made)
        elif rule.type == "coverage":
            for point in bound:
                per_point.setdefault(point, []).append(made)
        else:
            enterprise.append(made)
    return tuple(enterprise), {p: tuple(r) for p, r in per_point.items()}


def alarm_rule(rule: AlarmRule) -> Rule:
    """A configured rule as :mod:`.alarms` judges it. A rule on a point measures
    ``source:POINT`` (emission) or ``activity:POINT`` in that point's own accounting."""
    if rule.point is not None:
        measure = f"{'source' if rule.of == 'emission' else 'activity'}:{rule.point}"
    else:
        measure = rule.measure or "total"
    period: Granularity = MINUTE if rule.period == "minute" else Period(rule.period)
    severity = Severity(rule.severity)
    if rule.type == "threshold":
        return ThresholdRule(rule.id, measure, period, rule.above, rule.below, severity)
    if rule.type == "anomaly":
        ratio = rule.ratio if rule.ratio is not None or rule.z is not None else Decimal(5)
        return AnomalyRule(
            rule.id,
            measure,
            period,
            window=rule.window,
            ratio=ratio,
            z=rule.z,
            min_history=rule.min_history,
            floor=rule.floor,
            severity=severity,
        )
    assert isinstance(period, Period)  # the model refuses minute coverage rules
    return CoverageRule(
        rule.id, period, rule.min_coverage, (rule.point,) if rule.point else (), severity
    )
