"""The ``accounting:`` section of the terminal's configuration (CSMT §9, §11.4; ISC-2 §7.2.6).

What a user writes: the reporting enterprise, its boundary as accounting units (核算单元) →
emission sources → activity points (the terminal's counter points, CSMT §9.3), each source bound
to its method with a fuel or factor of the library or explicit parameters (single-point
accounting, CSMT §9.2), the intensity bases, the factor library and its vintage, and the alarm
rules on emissions (ISC-2 §7.2.6)::

    accounting:
      enterprise: {name: 小型水泥粉磨站, sector: cement}
      library: [/opt/terminal/factors]          # built-in library files or directories
      imports_dir: data/factors                 # libraries imported through the API
      vintage: 2015 guidelines / GB/T 32150     # every library lookup in this vintage
      units:
        - id: utilities
          name: 公用工程
          sources:
            - {id: boiler, name: 锅炉天然气, kind: combustion, fuel: natural_gas,
               points: [gm-boiler.current_total]}
            - {id: grid, kind: electricity, factor: "0.5703 tCO2/MWh",
               points: [em-grid.00010000]}
      bases:
        electricity: {points: [em-grid.00010000]}
        product: {name: cement, unit: t, points: [dcs.CementOutput_t]}
      alarms:
        - {id: grid-jump, type: anomaly, point: em-grid.00010000, period: minute, ratio: 5}
        - {id: day-cap, type: threshold, measure: total, period: day, above: "50"}
      factor_download:                          # the platform publishing the library
        url: https://platform.example/methodology/factors
        trusted_keys: [/opt/terminal/platform-publisher.pub.pem]
        every_s: 3600                           # look for a new publication hourly
      uploads:                                  # emissions uploaded, per code (CSMT §7.2)
        - {code: C301101001co201, of: source, id: boiler}
        - {code: C301100102co201, of: unit, id: utilities}
        - {code: C301100000co201, of: boundary}

The models here check what one section can check alone (ids unique, a point in one source, the
shape of each rule). Whether the points exist and are counters, whether the library has the
fuel, and whether a point's unit fits its method are checked against the whole configuration
and the library by :func:`reference_terminal.accounting.bindings.check`, which
``TerminalConfig`` calls; every message names the field (``accounting.units[0].sources[1].fuel``).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from reference_terminal.accounting.methods import SourceKindName
from reference_terminal.uplink.codes import HJ212_CODE, ItemCode

Id = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=64)]
Text = Annotated[str, Field(min_length=1)]
PeriodName = Literal["hour", "day", "week", "month", "quarter", "year"]
BasisName = Literal["electricity", "heat", "product"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Enterprise(_Strict):
    """The reporting entity (GB/T 32150 报告主体)."""

    name: Text
    credit_code: str = ""  # 统一社会信用代码
    sector: str = ""
    address: str = ""
    legal_representative: str = ""
    contact: str = ""


class Source(_Strict):
    """An emission source and its method: its activity is the sum of its points' increments.

    ``fuel`` or ``factor`` names a library entry (``factor`` may instead be a quantity such as
    ``"0.5703 tCO2/MWh"``); ``ncv``, ``carbon_content``, ``oxidation`` and ``purity`` are
    explicit parameters (quantities with units), as in ``carbench account``."""

    id: Id
    name: str = ""
    kind: SourceKindName
    points: Annotated[list[Id], Field(min_length=1)]
    fuel: Text | None = None
    factor: Text | None = None
    ncv: Text | None = None
    carbon_content: Text | None = None
    oxidation: Text | None = None
    purity: Text | None = None
    data_year: int | None = Field(None, ge=1990, le=2100)
    #: The source category in the sector's own guideline, when it has one (e.g. 熟料生产).
    category: str = ""


class Unit(_Strict):
    """An accounting unit (核算单元): a part of the enterprise with its sources."""

    id: Id
    name: str = ""
    sources: Annotated[list[Source], Field(min_length=1)]


class Basis(_Strict):
    """What an intensity is per: electricity (per MWh), heat (per GJ) or product (its unit)."""

    points: Annotated[list[Id], Field(min_length=1)]
    name: str = ""
    unit: str = ""  # product only: the unit it is counted in (default: its points' unit)


class AlarmRule(_Strict):
    """One alarm rule (ISC-2 §7.2.6). It watches either one ``point``'s emission (``of:
    emission``, tCO2) or activity (``of: activity``), per ``minute`` or per period, or an
    enterprise ``measure`` (``total``, ``scope1``, ``scope2``, ``intensity:electricity`` …) per
    period (an hour or longer), judged once every point has closed that period. ``coverage``
    rules watch the share of a period's minutes with data of each point (or of ``point``)."""

    id: Id
    type: Literal["threshold", "anomaly", "coverage"]
    period: Literal["minute", "hour", "day", "week", "month", "quarter", "year"]
    point: Id | None = None
    of: Literal["emission", "activity"] = "emission"
    measure: str | None = None
    above: Decimal | None = None
    below: Decimal | None = None
    ratio: Decimal | None = None
    z: Decimal | None = None
    window: int = Field(30, ge=1, le=10_000)
    min_history: int = Field(6, ge=1, le=10_000)
    floor: Decimal = Decimal("0.000001")
    min_coverage: Decimal = Field(Decimal("0.9"), gt=0, le=1)
    severity: Literal["warning", "critical"] = "warning"

    @model_validator(mode="after")
    def _shape(self) -> AlarmRule:
        if self.type == "coverage":
            if self.period == "minute":
                raise ValueError("period: a coverage rule judges a period, not a minute")
            if self.measure is not None:
                raise ValueError("measure: a coverage rule watches points (give point or none)")
            return self
        if (self.point is None) == (self.measure is None):
            raise ValueError("point: give exactly one of point (a bound point) and measure")
        if self.measure is not None:
            known = ("total", "scope1", "scope2", "biomass")
            intensity = self.measure.startswith("intensity:") and self.measure[10:] in (
                "electricity",
                "heat",
                "product",
            )
            if self.measure not in known and not intensity:
                raise ValueError(
                    f"measure: {self.measure!r} is not total, scope1, scope2, biomass or "
                    "intensity:electricity|heat|product"
                )
            if self.period == "minute":
                raise ValueError(
                    "period: enterprise measures are judged per period (hour or longer), once "
                    "every point has closed it; watch a point for minute figures"
                )
        if self.type == "threshold" and self.above is None and self.below is None:
            raise ValueError("above: a threshold rule needs above, below or both")
        if self.type == "anomaly":
            # neither ratio nor z: ratio 5 (see bindings.alarm_rule)
            if self.ratio is not None and self.ratio <= 1:
                raise ValueError("ratio: must be above 1")
            if self.min_history > self.window:
                raise ValueError("min_history: must not exceed window")
        return self


class FactorDownload(_Strict):
    """The platform the factor library is downloaded from (CSMT §11.4 online methodology
    configuration; the envelope is :mod:`reference_terminal.accounting.download`'s)."""

    url: Annotated[str, Field(pattern=r"^https?://[^/\s]+", max_length=2048)]
    #: CA certificates (PEM) to verify the platform's HTTPS certificate with (default: the
    #: system's).
    ca_file: str | None = None
    #: The platform's publishing keys (SM2 public keys, PEM): a download is taken only when
    #: one of them verifies its signature. Empty: the digest is checked, nothing is vouched.
    trusted_keys: list[str] = []
    #: How often (s) the terminal looks for a new publication by itself (CSMT §11.4 a):
    #: "定期" search and download; :mod:`.scheduled_download`). None: only when asked.
    every_s: float | None = Field(None, ge=60, le=31 * 86400)


class EmissionUpload(_Strict):
    """An emission figure uploaded under a data item code (CSMT §7.2) with the minute, hourly
    and daily data (CN 2051/2061/2031, ``Cou``: tCO2 in the period): one source's, an
    accounting unit's (its sources') or the whole boundary's (:mod:`.uploads`)."""

    #: A structured CSMT §7.2 code (its activity digits say the category), or an HJ 212 code.
    code: ItemCode | Annotated[str, Field(pattern=HJ212_CODE.pattern)]
    of: Literal["source", "unit", "boundary"]
    #: The source's or the unit's id; none for the boundary.
    id: Id | None = None

    @field_validator("code", mode="before")
    @classmethod
    def _rendered(cls, code: object) -> object:
        """A structured code may be written as it goes on the wire (``C301101001co201``)."""
        if isinstance(code, str) and not HJ212_CODE.fullmatch(code):
            return ItemCode.parse(code)
        return code

    @model_validator(mode="after")
    def _named(self) -> EmissionUpload:
        if (self.of == "boundary") != (self.id is None):
            raise ValueError(
                "id: a source or unit figure names its source or unit; the boundary's none"
            )
        return self


class Accounting(_Strict):
    """The accounting section (see the module text)."""

    enterprise: Enterprise
    #: Factor library files or directories (YAML/JSON), read at start; the built-in library.
    library: list[str] = []
    #: Where libraries imported through the API are kept (read after ``library``; a vintage
    #: imported again replaces the one there was).
    imports_dir: str = "data/factors"
    #: The one vintage every library factor comes from (FACTS.md: never mix vintages).
    vintage: str | None = None
    description: str = ""
    units: Annotated[list[Unit], Field(min_length=1)]
    bases: dict[BasisName, Basis] = {}
    alarms: list[AlarmRule] = []
    #: Where ``POST /accounting/factors/download`` gets the library when no URL is given.
    factor_download: FactorDownload | None = None
    #: Emission figures uploaded with the data (CSMT §7.2 codes; ISC-2 §7.2.3(3)).
    uploads: list[EmissionUpload] = []

    @model_validator(mode="after")
    def _unique(self) -> Accounting:
        units: set[str] = set()
        sources: dict[str, str] = {}
        points: dict[str, str] = {}
        for i, unit in enumerate(self.units):
            if unit.id in units:
                raise ValueError(f"units[{i}].id: {unit.id!r} is used twice")
            units.add(unit.id)
            for j, source in enumerate(unit.sources):
                where = f"units[{i}].sources[{j}]"
                if source.id in sources:
                    raise ValueError(f"{where}.id: {source.id!r} is already a source")
                sources[source.id] = where
                for k, point in enumerate(source.points):
                    if point in points:
                        raise ValueError(
                            f"{where}.points[{k}]: {point!r} already feeds {points[point]}: "
                            "a point's activity is counted in one source only"
                        )
                    points[point] = f"source {source.id!r}"
        ids = [r.id for r in self.alarms]
        for i, rule in enumerate(self.alarms):
            if ids.index(rule.id) != i:
                raise ValueError(f"alarms[{i}].id: {rule.id!r} is used twice")
        codes: set[str] = set()
        for i, upload in enumerate(self.uploads):
            known = units if upload.of == "unit" else sources.keys()
            if upload.id is not None and upload.id not in known:
                raise ValueError(f"uploads[{i}].id: no {upload.of} {upload.id!r}")
            code = str(upload.code)
            if code in codes:
                raise ValueError(f"uploads[{i}].code: {code!r} is used twice")
            codes.add(code)
        return self

    def sources(self) -> list[tuple[Unit, Source]]:
        return [(u, s) for u in self.units for s in u.sources]
