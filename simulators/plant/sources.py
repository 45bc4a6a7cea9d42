"""Each source kind's quantities, computed a day at a time from its load.

A quantity is one of three kinds:
``rate`` (constant within a minute: power, flow), ``state`` (likewise: voltage, temperature) and
``total`` (the exact integral of a rate since the plant's start: energy, volume, mass).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from simulators.plant.profiles import MINUTES
from simulators.plant.spec import (
    BeltScale,
    Cems,
    Electricity,
    Gas,
    Heat,
    Liquid,
    Production,
    Source,
    Steam,
    Water,
    Weighbridge,
)

Kind = Literal["rate", "state", "total"]
CO2_DENSITY_KG_NM3 = 1.977  # at 0 °C, 101.325 kPa
WATER_KJ_PER_M3_K = 4186.0  # ρ·c of water, kJ/(m³·K), close enough for a heat loop


@dataclass(frozen=True, slots=True)
class Quantity:
    name: str  # "<source>.<quantity>"
    unit: str
    kind: Kind
    #: For totals: the rate array integrated, and the factor from (rate unit × hours) to unit.
    rate: str | None = None
    factor: float = 1.0


def quantities(source: Source) -> list[Quantity]:
    """The quantities a source offers, by name."""
    s = source.id
    match source:
        case Electricity():
            out = [
                Quantity(f"{s}.power_kw", "kW", "rate"),
                Quantity(f"{s}.power_factor", "", "state"),
                *[Quantity(f"{s}.voltage_{p}", "V", "state") for p in "abc"],
                *[Quantity(f"{s}.current_{p}", "A", "state") for p in "abc"],
                Quantity(f"{s}.energy_import_kwh", "kWh", "total", "import_kw"),
                Quantity(f"{s}.energy_export_kwh", "kWh", "total", "export_kw"),
            ]
        case Heat():
            out = [
                Quantity(f"{s}.heat_power_kw", "kW", "rate"),
                Quantity(f"{s}.flow_m3_h", "m³/h", "rate"),
                Quantity(f"{s}.supply_temp_c", "°C", "state"),
                Quantity(f"{s}.return_temp_c", "°C", "state"),
                Quantity(f"{s}.heat_kwh", "kWh", "total", "heat_power_kw"),
                Quantity(f"{s}.heat_gj", "GJ", "total", "heat_power_kw", 0.0036),
                Quantity(f"{s}.volume_m3", "m³", "total", "flow_m3_h"),
            ]
        case Steam():
            out = [
                Quantity(f"{s}.flow_t_h", "t/h", "rate"),
                Quantity(f"{s}.pressure_mpa", "MPa", "state"),
                Quantity(f"{s}.temperature_c", "°C", "state"),
                Quantity(f"{s}.mass_t", "t", "total", "flow_t_h"),
                Quantity(f"{s}.heat_gj", "GJ", "total", "flow_t_h", source.enthalpy_gj_t),
            ]
        case Gas():
            out = [
                Quantity(f"{s}.flow_nm3_h", "Nm³/h", "rate"),
                Quantity(f"{s}.volume_nm3", "Nm³", "total", "flow_nm3_h"),
            ]
        case Water():
            out = [
                Quantity(f"{s}.flow_m3_h", "m³/h", "rate"),
                Quantity(f"{s}.volume_m3", "m³", "total", "flow_m3_h"),
            ]
        case Liquid() | BeltScale() | Production():
            out = [
                Quantity(f"{s}.rate_t_h", "t/h", "rate"),
                Quantity(f"{s}.mass_t", "t", "total", "rate_t_h"),
            ]
        case Weighbridge():
            out = [
                Quantity(f"{s}.rate_t_h", "t/h", "rate"),
                Quantity(f"{s}.mass_t", "t", "total", "rate_t_h"),
                Quantity(f"{s}.trucks", "", "total", "trucks_h"),
            ]
        case Cems():
            out = [
                Quantity(f"{s}.flow_nm3_h", "Nm³/h", "rate"),
                Quantity(f"{s}.co2_pct", "%", "state"),
                Quantity(f"{s}.o2_pct", "%", "state"),
                Quantity(f"{s}.temperature_c", "°C", "state"),
                Quantity(f"{s}.pressure_kpa", "kPa", "state"),
                Quantity(f"{s}.co2_kg_h", "kg/h", "rate"),
                Quantity(f"{s}.co2_t", "t", "total", "co2_kg_h", 0.001),
                Quantity(f"{s}.volume_nm3", "Nm³", "total", "flow_nm3_h"),
            ]
    return out


def day_arrays(
    source: Source, load: np.ndarray, rng: np.random.Generator, *, totals_only: bool = False
) -> dict[str, np.ndarray]:
    """Per-minute arrays (length 1440) of every rate and state of ``source`` for one day,
    keyed by the short name (``power_kw``) that :class:`Quantity.rate` refers to.

    ``totals_only`` stops once the rates that totals integrate are made: the random draws
    come in the same order either way, so those rates are identical in both modes. Past days
    are only ever needed for their totals, and this makes them three times cheaper.
    """

    def wobble(center: float, spread: float) -> np.ndarray:
        return center + rng.normal(0.0, spread, MINUTES)

    match source:
        case Electricity():
            power = source.rated_kw * load
            imported = power if source.direction == "import" else np.zeros(MINUTES)
            exported = power if source.direction == "export" else np.zeros(MINUTES)
            if totals_only:
                return {"import_kw": imported, "export_kw": exported}
            pf = np.clip(wobble(source.power_factor, 0.005), 0.5, 1.0)
            volts = {p: wobble(source.voltage_v, source.voltage_v * 0.004) for p in "abc"}
            share = {p: 1.0 + rng.normal(0.0, 0.01) for p in "abc"}  # slight phase imbalance
            out = {
                "power_kw": power if source.direction == "import" else -power,
                "power_factor": pf,
                "import_kw": imported,
                "export_kw": exported,
            }
            for p in "abc":
                out[f"voltage_{p}"] = volts[p]
                out[f"current_{p}"] = power * 1000.0 * share[p] / (3.0 * volts[p] * pf)
            return out
        case Heat():
            heat = source.rated_kw * load
            supply = wobble(source.supply_temp_c, 0.3)
            ret = wobble(source.return_temp_c, 0.3)
            flow = heat * 3600.0 / (WATER_KJ_PER_M3_K * (supply - ret))
            if totals_only:
                return {"heat_power_kw": heat, "flow_m3_h": flow}
            return {
                "heat_power_kw": heat,
                "flow_m3_h": flow,
                "supply_temp_c": supply,
                "return_temp_c": ret,
            }
        case Steam():
            if totals_only:
                return {"flow_t_h": source.rated_t_h * load}
            return {
                "flow_t_h": source.rated_t_h * load,
                "pressure_mpa": wobble(source.pressure_mpa, source.pressure_mpa * 0.01),
                "temperature_c": wobble(source.temperature_c, 1.0),
            }
        case Gas():
            return {"flow_nm3_h": source.rated_nm3_h * load}
        case Water():
            return {"flow_m3_h": source.rated_m3_h * load}
        case Liquid() | BeltScale() | Production():
            return {"rate_t_h": source.rated_t_h * load}
        case Weighbridge():
            running = load > 0
            expected = source.trucks_per_day * running.mean()
            count = int(rng.poisson(expected)) if running.any() else 0
            minutes = rng.choice(np.flatnonzero(running), size=count)
            trucks = np.zeros(MINUTES)
            np.add.at(trucks, minutes, 60.0)  # one truck within one minute = 60 trucks/h
            weights = source.truck_t * (1.0 + rng.normal(0.0, 0.05, MINUTES))
            return {"trucks_h": trucks, "rate_t_h": trucks * weights}
        case Cems():
            flow = source.rated_nm3_h * load
            co2 = np.where(load > 0, wobble(source.co2_pct, 0.3), 0.04)
            co2_kg_h = flow * co2 / 100.0 * CO2_DENSITY_KG_NM3
            if totals_only:
                return {"flow_nm3_h": flow, "co2_kg_h": co2_kg_h}
            o2 = np.where(load > 0, wobble(source.o2_pct, 0.2), 20.9)
            return {
                "flow_nm3_h": flow,
                "co2_pct": co2,
                "o2_pct": o2,
                "temperature_c": np.where(load > 0, wobble(source.temperature_c, 1.5), 25.0),
                "pressure_kpa": wobble(source.pressure_kpa, 0.2),
                "co2_kg_h": co2_kg_h,
            }
    raise TypeError(f"unknown source kind {source!r}")
