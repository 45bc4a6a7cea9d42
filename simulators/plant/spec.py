"""What a plant is made of, as validated data (the ``plant:`` section of a fleet file)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LoadSpec(Strict):
    """How hard a source runs over time: shifts, weekends, outages and start-ups.

    ``continuous`` runs day and night (a kiln, a furnace); ``three_shift`` is continuous with
    a dip at each shift change; ``two_shift`` runs 06:00–22:00; ``day_shift`` 08:00–17:00.
    """

    profile: Literal["continuous", "three_shift", "two_shift", "day_shift"] = "continuous"
    level: float = Field(0.85, gt=0, le=1.2, description="mean load while running, of rated")
    noise: float = Field(0.02, ge=0, le=0.5, description="relative spread, minute to minute")
    weekend_factor: float = Field(1.0, ge=0, le=1.2, description="load on Saturday and Sunday")
    outages_per_month: float = Field(0.0, ge=0, le=60)
    outage_hours: tuple[float, float] = (1.0, 8.0)
    ramp_minutes: int = Field(30, ge=0, le=720, description="start-up ramp after a stop")

    @model_validator(mode="after")
    def _outage_range(self) -> LoadSpec:
        low, high = self.outage_hours
        if not 0 < low <= high <= 72:
            raise ValueError("outage_hours must be (low, high) with 0 < low <= high <= 72")
        return self


class SourceBase(Strict):
    id: Identifier
    name: str = ""
    #: What CSMT Table 1 calls the activity (原煤, 石灰石, 外购电力 …), for the accounting side.
    activity: str = ""
    load: LoadSpec = LoadSpec()


class Electricity(SourceBase):
    """A metered circuit: active power, phase voltages and currents, energy counters."""

    kind: Literal["electricity"]
    rated_kw: float = Field(gt=0)
    voltage_v: float = Field(230.0, gt=0, description="nominal phase voltage")
    power_factor: float = Field(0.92, gt=0, le=1)
    #: ``import`` draws from the grid; ``export`` feeds it (a waste-heat or PV generator),
    #: which counts on the reverse-energy register.
    direction: Literal["import", "export"] = "import"


class Heat(SourceBase):
    """Hot water through a heat meter: flow, supply/return temperature, heat."""

    kind: Literal["heat"]
    rated_kw: float = Field(gt=0)
    supply_temp_c: float = 85.0
    return_temp_c: float = 60.0

    @model_validator(mode="after")
    def _temperatures(self) -> Heat:
        if self.return_temp_c >= self.supply_temp_c:
            raise ValueError("return_temp_c must be below supply_temp_c")
        return self


class Steam(SourceBase):
    """Steam: mass flow, pressure, temperature; heat by a fixed specific enthalpy."""

    kind: Literal["steam"]
    rated_t_h: float = Field(gt=0)
    pressure_mpa: float = Field(1.0, gt=0)
    temperature_c: float = 250.0
    enthalpy_gj_t: float = Field(2.94, gt=0, description="specific enthalpy, GJ per tonne")


class Gas(SourceBase):
    """A gaseous fuel (natural gas, coke-oven gas): volume flow at standard conditions."""

    kind: Literal["gas"]
    rated_nm3_h: float = Field(gt=0)


class Liquid(SourceBase):
    """A liquid fuel (diesel, heavy oil): mass flow."""

    kind: Literal["liquid"]
    rated_t_h: float = Field(gt=0)


class Water(SourceBase):
    """Water through a water meter: volume flow."""

    kind: Literal["water"]
    rated_m3_h: float = Field(gt=0)


class BeltScale(SourceBase):
    """Solids on a belt scale: mass rate and its total."""

    kind: Literal["belt_scale"]
    rated_t_h: float = Field(gt=0)


class Weighbridge(SourceBase):
    """Solids by truck over a weighbridge: each truck adds its load within one minute."""

    kind: Literal["weighbridge"]
    trucks_per_day: float = Field(gt=0, le=1000)
    truck_t: float = Field(30.0, gt=0)


class Cems(SourceBase):
    """A stack's CO2 CEMS: flue-gas flow, CO2 and O2 concentration, temperature, pressure."""

    kind: Literal["cems"]
    rated_nm3_h: float = Field(gt=0)
    co2_pct: float = Field(20.0, gt=0, lt=100)
    o2_pct: float = Field(9.0, ge=0, lt=21)
    temperature_c: float = 120.0
    pressure_kpa: float = 101.0


class Production(SourceBase):
    """Product output (clinker, cement, crude steel): mass rate and total."""

    kind: Literal["production"]
    rated_t_h: float = Field(gt=0)


Source = Annotated[
    Electricity | Heat | Steam | Gas | Liquid | Water | BeltScale | Weighbridge | Cems | Production,
    Field(discriminator="kind"),
]


class PlantSpec(Strict):
    industry: str = ""
    name: str = ""
    #: Hours east of UTC of the plant's local time (shifts and days follow it); China is +8.
    utc_offset_hours: float = Field(8.0, ge=-12, le=14)
    sources: list[Source] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> PlantSpec:
        seen: set[str] = set()
        for source in self.sources:
            if source.id in seen:
                raise ValueError(f"source id {source.id!r} is used twice")
            seen.add(source.id)
        return self
