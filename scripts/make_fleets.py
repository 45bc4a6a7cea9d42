"""Writes fixtures/fleets/works.yaml and large.yaml (deterministic; run after changing either).

    .venv/bin/python scripts/make_fleets.py

``works``: a 5 000 t/d cement works (~100 meters, every protocol) with the activity data CSMT
Table 1 asks of cement: fossil fuels, clinker output, kiln-head and bypass dust, raw meal, net
purchased electricity and heat. ``large``: a steel works with ≥ 1 000 meters, for load tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

FLEETS = Path(__file__).resolve().parent.parent / "fixtures" / "fleets"
START = "2026-01-01T00:00:00+08:00"


def energy(di: str, quantity: str) -> dict[str, Any]:
    # XXXXXX.XX kWh: the register wraps to zero past 999999.99
    return {
        "di": di,
        "quantity": quantity,
        "decimals": 2,
        "rounding": "floor",
        "full_scale": "1000000",
    }


def power_meter_registers(source: str) -> list[dict[str, Any]]:
    return [
        {"address": 0, "type": "float32", "quantity": f"{source}.power_kw", "decimals": 2},
        {
            "address": 2,
            "type": "uint32",
            "scale": "0.01",
            "quantity": f"{source}.energy_import_kwh",
            "decimals": 2,
            "rounding": "floor",
        },
        {
            "address": 4,
            "type": "uint16",
            "scale": "0.1",
            "quantity": f"{source}.voltage_a",
            "decimals": 1,
        },
        {
            "address": 5,
            "type": "uint16",
            "scale": "0.1",
            "quantity": f"{source}.current_a",
            "decimals": 1,
        },
    ]


def works() -> dict[str, Any]:
    circuits = {
        "crusher": 800,
        "raw_mill": 3200,
        "raw_mill_fan": 1800,
        "homogenizer": 300,
        "coal_mill": 900,
        "kiln_drive": 500,
        "kiln_id_fan": 2400,
        "preheater_fan": 1600,
        "cooler_fans": 1500,
        "clinker_conveyor": 250,
        "cement_mill_1": 2800,
        "cement_mill_2": 2800,
        "separator_1": 350,
        "separator_2": 350,
        "packing": 400,
        "compressors": 600,
        "water_pumps": 150,
        "lighting": 120,
        "office": 90,
        "lab": 60,
    }
    sources: list[dict[str, Any]] = [
        {
            "id": "grid",
            "kind": "electricity",
            "name": "110 kV 进线",
            "activity": "purchased electricity",
            "rated_kw": 21000,
            "load": {"profile": "continuous", "level": 0.85, "outages_per_month": 0.5},
        },
        {
            "id": "whr",
            "kind": "electricity",
            "name": "余热发电",
            "activity": "exported electricity",
            "rated_kw": 6000,
            "direction": "export",
            "load": {"level": 0.8},
        },
        {
            "id": "coal_kiln",
            "kind": "belt_scale",
            "name": "窑头煤",
            "activity": "bituminous coal",
            "rated_t_h": 9,
        },
        {
            "id": "coal_calciner",
            "kind": "belt_scale",
            "name": "分解炉煤",
            "activity": "bituminous coal",
            "rated_t_h": 14,
        },
        {
            "id": "coal_yard",
            "kind": "weighbridge",
            "name": "进厂原煤",
            "activity": "bituminous coal",
            "trucks_per_day": 20,
            "truck_t": 34,
        },
        {
            "id": "diesel",
            "kind": "liquid",
            "name": "柴油",
            "activity": "diesel",
            "rated_t_h": 0.08,
            "load": {"profile": "day_shift"},
        },
        {
            "id": "natural_gas",
            "kind": "gas",
            "name": "点火天然气",
            "activity": "natural gas",
            "rated_nm3_h": 60,
            "load": {"profile": "day_shift", "level": 0.4},
        },
        {
            "id": "raw_meal",
            "kind": "belt_scale",
            "name": "入窑生料",
            "activity": "raw meal",
            "rated_t_h": 330,
        },
        {
            "id": "clinker",
            "kind": "production",
            "name": "熟料产量",
            "activity": "clinker",
            "rated_t_h": 210,
            "load": {"outages_per_month": 0.5, "ramp_minutes": 240},
        },
        {
            "id": "cement",
            "kind": "production",
            "name": "水泥产量",
            "activity": "cement",
            "rated_t_h": 260,
            "load": {"profile": "two_shift"},
        },
        {
            "id": "kiln_head_dust",
            "kind": "weighbridge",
            "name": "窑头粉尘",
            "activity": "kiln dust",
            "trucks_per_day": 1,
            "truck_t": 8,
        },
        {
            "id": "bypass_dust",
            "kind": "weighbridge",
            "name": "旁路放风粉尘",
            "activity": "bypass dust",
            "trucks_per_day": 0.5,
            "truck_t": 6,
        },
        {
            "id": "heating",
            "kind": "heat",
            "name": "外购热力",
            "activity": "purchased heat",
            "rated_kw": 900,
            "load": {"profile": "day_shift"},
        },
        {
            "id": "steam_in",
            "kind": "steam",
            "name": "外购蒸汽",
            "activity": "purchased heat",
            "rated_t_h": 3,
        },
        {
            "id": "kiln_stack",
            "kind": "cems",
            "name": "窑尾烟囱",
            "rated_nm3_h": 520000,
            "co2_pct": 24,
            "o2_pct": 8,
        },
        {
            "id": "coal_mill_stack",
            "kind": "cems",
            "name": "煤磨烟囱",
            "rated_nm3_h": 90000,
            "co2_pct": 6,
            "o2_pct": 15,
        },
        *[
            {"id": f"water_{i}", "kind": "water", "name": f"用水 {i}", "rated_m3_h": 5 + i}
            for i in range(1, 9)
        ],
    ]
    lv = [f"lv_{i:02d}" for i in range(1, 27)]  # low-voltage sub-distribution boards
    for i, name in enumerate(lv):
        sources.append(
            {
                "id": name,
                "kind": "electricity",
                "name": f"低压配电 {i + 1}",
                "activity": "purchased electricity",
                "rated_kw": 40 + 13 * i,
                "load": {"profile": ("continuous", "two_shift", "day_shift")[i % 3]},
            }
        )
    for name, kw in circuits.items():
        sources.append(
            {
                "id": name,
                "kind": "electricity",
                "name": name,
                "rated_kw": kw,
                "activity": "purchased electricity",
                "load": {
                    "profile": "two_shift"
                    if "cement" in name or name == "packing"
                    else "continuous"
                },
            }
        )
    buses = [
        {
            "id": "dlt_a",
            "protocol": "dlt645",
            "baud": 9600,
            "framing": "8E1",
            "response_delay_ms": [20, 120],
        },
        {
            "id": "dlt_b",
            "protocol": "dlt645",
            "baud": 9600,
            "framing": "8E1",
            "response_delay_ms": [20, 120],
        },
        {
            "id": "dlt_lv0",
            "protocol": "dlt645",
            "baud": 9600,
            "framing": "8E1",
            "response_delay_ms": [20, 200],
        },
        {
            "id": "dlt_lv1",
            "protocol": "dlt645",
            "baud": 9600,
            "framing": "8E1",
            "response_delay_ms": [20, 200],
        },
        {
            "id": "dlt_old",
            "protocol": "dlt645",
            "baud": 2400,
            "framing": "8E1",
            "response_delay_ms": [50, 300],
        },
        {
            "id": "rtu_a",
            "protocol": "modbus-rtu",
            "baud": 9600,
            "framing": "8N1",
            "response_delay_ms": [5, 20],
        },
        {
            "id": "rtu_b",
            "protocol": "modbus-rtu",
            "baud": 19200,
            "framing": "8E1",
            "response_delay_ms": [5, 20],
        },
        {
            "id": "cjt_water",
            "protocol": "cjt188",
            "baud": 2400,
            "framing": "8E1",
            "response_delay_ms": [30, 150],
        },
        {
            "id": "cjt_heat",
            "protocol": "cjt188",
            "baud": 2400,
            "framing": "8E1",
            "response_delay_ms": [30, 150],
        },
    ]
    meters: list[dict[str, Any]] = []
    # The main feeders: revenue-grade DL/T 645-2007 meters.
    meters.append(
        {
            "id": "em-grid-1",
            "protocol": "dlt645-2007",
            "bus": "dlt_a",
            "address": "110000000001",
            "points": [
                energy("00010000", "grid.energy_import_kwh"),
                {
                    "di": "0201FF00",
                    "quantities": ["grid.voltage_a", "grid.voltage_b", "grid.voltage_c"],
                    "decimals": 1,
                },
            ],
        }
    )
    meters.append(
        {
            "id": "em-grid-2",
            "protocol": "dlt645-2007",
            "bus": "dlt_b",
            "address": "110000000002",
            "points": [energy("00010000", "grid.energy_import_kwh")],
        }
    )
    meters.append(
        {
            "id": "em-whr",
            "protocol": "dlt645-2007",
            "bus": "dlt_a",
            "address": "110000000003",
            "points": [energy("00020000", "whr.energy_export_kwh")],
        }
    )
    names = list(circuits)
    for i, name in enumerate(names):  # every circuit on a DL/T 645 meter, half of them twice
        bus = "dlt_a" if i % 2 else "dlt_b"
        meters.append(
            {
                "id": f"em-{name}",
                "protocol": "dlt645-2007",
                "bus": bus,
                "address": f"12{i + 1:010d}",
                "points": [energy("00010000", f"{name}.energy_import_kwh")],
            }
        )
    for i, name in enumerate(lv):  # sub-metering: 13 meters on each of two more buses
        meters.append(
            {
                "id": f"em-{name}",
                "protocol": "dlt645-2007",
                "bus": f"dlt_lv{i % 2}",
                "address": f"13{i + 1:010d}",
                "points": [energy("00010000", f"{name}.energy_import_kwh")],
            }
        )
    for i, name in enumerate(names[:6]):
        meters.append(
            {
                "id": f"em97-{name}",
                "protocol": "dlt645-1997",
                "bus": "dlt_old",
                "address": f"97{i + 1:010d}",
                "points": [energy("9010", f"{name}.energy_import_kwh")],
            }
        )
    for i, name in enumerate(names):  # multifunction meters on Modbus RTU
        meters.append(
            {
                "id": f"pm-{name}",
                "protocol": "modbus-rtu",
                "bus": "rtu_a" if i < 10 else "rtu_b",
                "unit_id": i % 10 + 1,
                "registers": power_meter_registers(name),
            }
        )
    for scale in ("coal_kiln", "coal_calciner", "raw_meal"):  # belt-scale controllers
        meters.append(
            {
                "id": f"bs-{scale}",
                "protocol": "modbus-tcp",
                "port": 0,
                "unit_id": 1,
                "registers": [
                    {
                        "address": 0,
                        "type": "float32",
                        "quantity": f"{scale}.rate_t_h",
                        "decimals": 2,
                    },
                    {
                        "address": 2,
                        "type": "uint32",
                        "scale": "0.01",
                        "quantity": f"{scale}.mass_t",
                        "decimals": 2,
                        "rounding": "floor",
                    },
                ],
            }
        )
    for stack in ("kiln_stack", "coal_mill_stack"):  # CEMS data loggers
        meters.append(
            {
                "id": f"cems-{stack}",
                "protocol": "modbus-tcp",
                "port": 0,
                "unit_id": 1,
                "registers": [
                    {
                        "address": 0,
                        "type": "float32",
                        "quantity": f"{stack}.co2_pct",
                        "decimals": 2,
                    },
                    {"address": 2, "type": "float32", "quantity": f"{stack}.o2_pct", "decimals": 2},
                    {
                        "address": 4,
                        "type": "float32",
                        "quantity": f"{stack}.flow_nm3_h",
                        "decimals": 0,
                    },
                    {
                        "address": 6,
                        "type": "float32",
                        "quantity": f"{stack}.temperature_c",
                        "decimals": 1,
                    },
                    {
                        "address": 8,
                        "type": "float32",
                        "quantity": f"{stack}.pressure_kpa",
                        "decimals": 2,
                    },
                    {
                        "address": 10,
                        "type": "uint64",
                        "scale": "0.001",
                        "quantity": f"{stack}.co2_t",
                        "decimals": 3,
                        "rounding": "floor",
                    },
                ],
            }
        )
    meters.append(
        {
            "id": "wb-system",
            "protocol": "modbus-tcp",
            "port": 0,
            "unit_id": 1,
            "registers": [
                {
                    "address": 0,
                    "type": "uint32",
                    "scale": "0.01",
                    "quantity": "coal_yard.mass_t",
                    "decimals": 2,
                },
                {
                    "address": 2,
                    "type": "uint32",
                    "scale": "0.01",
                    "quantity": "kiln_head_dust.mass_t",
                    "decimals": 2,
                },
            ],
        }
    )
    for i in range(1, 9):
        meters.append(
            {
                "id": f"wm-{i}",
                "protocol": "cjt188",
                "bus": "cjt_water",
                "meter_type": "water",
                "address": f"{i:014d}",
                "di_order": "swapped" if i % 4 == 0 else "standard",
                "fields": {
                    "current_total": {
                        "quantity": f"water_{i}.volume_m3",
                        "decimals": 2,
                        "rounding": "floor",
                    }
                },
            }
        )
    meters.append(
        {
            "id": "hm-heating",
            "protocol": "cjt188",
            "bus": "cjt_heat",
            "meter_type": "heat",
            "address": "20000000000001",
            "fields": {
                "current_heat": {
                    "quantity": "heating.heat_kwh",
                    "decimals": 2,
                    "rounding": "floor",
                    "full_scale": "1000000",
                },
                "heat_power": {"quantity": "heating.heat_power_kw", "decimals": 2},
                "flow": {"quantity": "heating.flow_m3_h", "decimals": 4},
                "total_flow": {"quantity": "heating.volume_m3", "decimals": 2, "rounding": "floor"},
                "supply_temp": {"quantity": "heating.supply_temp_c", "decimals": 2},
                "return_temp": {"quantity": "heating.return_temp_c", "decimals": 2},
            },
        }
    )
    meters.append(
        {
            "id": "gm-natural-gas",
            "protocol": "cjt188",
            "bus": "cjt_heat",
            "meter_type": "gas",
            "address": "30000000000001",
            "fields": {
                "current_total": {
                    "quantity": "natural_gas.volume_nm3",
                    "decimals": 2,
                    "rounding": "floor",
                }
            },
        }
    )
    meters.append(
        {
            "id": "dcs",
            "protocol": "opcua",
            "port": 0,
            "update_s": 1,
            "tags": [
                {
                    "name": "Clinker_t",
                    "quantity": "clinker.mass_t",
                    "decimals": 2,
                    "rounding": "floor",
                },
                {"name": "Clinker_t_h", "quantity": "clinker.rate_t_h", "decimals": 2},
                {
                    "name": "RawMeal_t",
                    "quantity": "raw_meal.mass_t",
                    "decimals": 2,
                    "rounding": "floor",
                },
                {
                    "name": "CoalKiln_t",
                    "quantity": "coal_kiln.mass_t",
                    "decimals": 3,
                    "rounding": "floor",
                },
                {
                    "name": "CoalCalciner_t",
                    "quantity": "coal_calciner.mass_t",
                    "decimals": 3,
                    "rounding": "floor",
                },
                {
                    "name": "Cement_t",
                    "quantity": "cement.mass_t",
                    "decimals": 2,
                    "rounding": "floor",
                },
                {
                    "name": "WHR_kWh",
                    "quantity": "whr.energy_export_kwh",
                    "decimals": 1,
                    "rounding": "floor",
                },
                {
                    "name": "SteamIn_t",
                    "quantity": "steam_in.mass_t",
                    "decimals": 3,
                    "rounding": "floor",
                },
                {
                    "name": "SteamIn_GJ",
                    "quantity": "steam_in.heat_gj",
                    "decimals": 3,
                    "rounding": "floor",
                },
            ],
        }
    )
    for i, (source, unit) in enumerate(
        [("natural_gas", "volume_nm3"), ("diesel", "mass_t"), ("water_1", "volume_m3")], start=1
    ):
        meters.append(
            {
                "id": f"iot-{i}",
                "protocol": "mqtt",
                "topic": f"works/iot/{source}",
                "interval_s": 10,
                "points": [
                    {
                        "name": source,
                        "quantity": f"{source}.{unit}",
                        "decimals": 3,
                        "rounding": "floor",
                    }
                ],
            }
        )
    meters.append(
        {
            "id": "ems",
            "protocol": "https",
            "port": 0,
            "interval_s": 60,
            "points": [
                {
                    "name": name,
                    "quantity": f"{name}.energy_import_kwh",
                    "decimals": 1,
                    "rounding": "floor",
                }
                for name in ("grid", *names[:8])
            ],
        }
    )
    meters.append(
        {
            "id": "manual-monthly",
            "protocol": "manual",
            "period": "monthly",
            "points": [
                {"name": "diesel_purchased_t", "quantity": "diesel.mass_t", "decimals": 3},
                {"name": "kiln_head_dust_t", "quantity": "kiln_head_dust.mass_t", "decimals": 2},
                # bypass dust has no online meter (tickets only): the offline activity
                # CSMT §6.2 has collected by hand
                {"name": "bypass_dust_t", "quantity": "bypass_dust.mass_t", "decimals": 2},
            ],
        }
    )
    # The purchased-steam header's transmitters (flow compensated by pressure and temperature),
    # wired 4–20 mA to an input module: one count is (high - low) / 16000, the decimals shown.
    meters.append(
        {
            "id": "ai-steam",
            "protocol": "analog",
            "port": 0,
            "unit_id": 1,
            "channels": [
                {"channel": 0, "quantity": "steam_in.flow_t_h", "low": "0", "high": "3.2",
                 "decimals": 4},
                {"channel": 1, "quantity": "steam_in.pressure_mpa", "low": "0", "high": "1.6",
                 "decimals": 4},
                {"channel": 2, "quantity": "steam_in.temperature_c", "low": "0", "high": "320",
                 "decimals": 2},
            ],
        }
    )  # fmt: skip
    # The MES's production historian, read with SQL (SQLite in the run's work directory).
    meters.append(
        {
            "id": "mes-historian",
            "protocol": "sql",
            "interval_s": 10,
            "tags": [
                {"name": "CM.OUTPUT.TOTAL", "quantity": "cement.mass_t", "decimals": 2,
                 "rounding": "floor"},
                {"name": "CM.OUTPUT.RATE", "quantity": "cement.rate_t_h", "decimals": 2},
                {"name": "WATER1.FLOW", "quantity": "water_1.flow_m3_h", "decimals": 3},
            ],
        }
    )  # fmt: skip
    for n, meter in enumerate(meters):
        if meter["protocol"] != "manual":
            meter["nameplate"] = nameplate(meter, n)
    return {
        "name": "works",
        "description": "A 5 000 t/d clinker cement works: every protocol, CSMT Table 1 data.",
        "seed": 2026,
        "start": START,
        "plant": {
            "industry": "cement",
            "name": "示例水泥熟料生产线",
            "utc_offset_hours": 8,
            "sources": sources,
        },
        "buses": buses,
        "meters": meters,
        "faults": [],
        "accounting": works_accounting(),
    }


GRID_FACTOR = "0.5703 tCO2/MWh"  # MEE carbon-market grid factor, Feb 2023 (FACTS.md)


def _read(meter: str, quantity: str) -> dict[str, str]:
    return {"meter": meter, "quantity": quantity}


def works_accounting() -> dict[str, Any]:
    """How the works is accounted for (simulators/fleet/accounting.py): the kiln's CO2 as its
    CEMS measure it (fuel and carbonate CO2 together, so no separate coal or clinker source),
    purchased electricity and heat, exported waste-heat power, ignition gas and diesel."""
    cems = "CEMS direct measurement (HJ 75-2017): the CO2 mass measured is the emission"
    return {
        "enterprise": {"name": "示例水泥熟料生产线", "sector": "水泥制造 (cement, C3011)"},
        "vintage": "2015 guidelines / GB/T 32150",
        "description": "The clinker line and its utilities inside the fence.",
        "units": [
            {
                "id": "kiln",
                "name": "熟料烧成",
                "sources": [
                    {"id": "kiln_stack", "name": "窑尾烟囱 (CEMS)", "kind": "combustion",
                     "factor": "1 tCO2/t", "note": cems,
                     "reads": [_read("cems-kiln_stack", "kiln_stack.co2_t")]},
                    {"id": "coal_mill_stack", "name": "煤磨烟囱 (CEMS)", "kind": "combustion",
                     "factor": "1 tCO2/t", "note": cems,
                     "reads": [_read("cems-coal_mill_stack", "coal_mill_stack.co2_t")]},
                    {"id": "ignition_gas", "name": "点火天然气", "kind": "combustion",
                     "fuel": "natural_gas",
                     "reads": [_read("gm-natural-gas", "natural_gas.volume_nm3")]},
                ],
            },
            {
                "id": "utilities",
                "name": "公用工程",
                "sources": [
                    {"id": "grid", "name": "外购电力", "kind": "electricity",
                     "factor": GRID_FACTOR,
                     "reads": [_read("em-grid-1", "grid.energy_import_kwh")]},
                    {"id": "whr", "name": "余热发电上网", "kind": "exported_electricity",
                     "factor": GRID_FACTOR, "reads": [_read("em-whr", "whr.energy_export_kwh")]},
                    {"id": "heating", "name": "外购热力", "kind": "heat",
                     "factor": "purchased_heat",
                     "reads": [_read("hm-heating", "heating.heat_kwh")]},
                    {"id": "steam", "name": "外购蒸汽", "kind": "heat", "factor": "purchased_heat",
                     "reads": [_read("dcs", "steam_in.heat_gj")]},
                    {"id": "diesel", "name": "柴油 (月度人工录入)", "kind": "combustion",
                     "fuel": "diesel", "reads": [_read("manual-monthly", "diesel.mass_t")]},
                ],
            },
        ],
        "bases": {
            "electricity": {"reads": [_read("em-grid-1", "grid.energy_import_kwh")]},
            "heat": {"reads": [_read("hm-heating", "heating.heat_kwh"),
                               _read("dcs", "steam_in.heat_gj")]},
            "product": {"name": "clinker", "unit": "t", "reads": [_read("dcs", "clinker.mass_t")]},
        },
    }  # fmt: skip


#: (model, accuracy class, calibration interval in days) by kind of instrument: typical
#: values for the meter ledger a test lab is shown (ISC-2 §7.3.1), not from any one plant.
INSTRUMENTS = {
    "em-grid": ("DTZY341-Z three-phase smart meter", "0.5S", 730),
    "em97": ("DT862-4 three-phase meter (DL/T 645-1997)", "1.0", 730),
    "em": ("DTZY1296 three-phase meter", "1.0", 730),
    "pm": ("PD194E-9SY multifunction power meter", "0.5S", 730),
    "water": ("LXSY-50E ultrasonic water meter", "2", 730),
    "gas": ("LWQ-100 turbine gas flowmeter", "1.0", 365),
    "heat": ("CRL-80 ultrasonic heat meter", "2", 365),
    "hot_water": ("CRL-80 ultrasonic heat meter", "2", 365),
    "bs": ("ICS-17A electronic belt scale", "0.5", 180),
    "cems": ("CEMS-2000B stack gas monitoring system", "±2 % FS (CO2)", 90),
    "wb": ("SCS-100 truck weighbridge system", "III (OIML R76)", 365),
    "modbus-tcp": ("PLC data logger (instruments behind it)", "0.5 %", 365),
    "opcua": ("ECS-700 distributed control system", "0.5 % (weigh feeders)", 365),
    "mqtt": ("IoT collector (meter behind it)", "1.0 (meter)", 365),
    "https": ("energy-management system (feeder meters)", "0.5S (meters)", 730),
    "analog": (
        "AI-8 analog input module, 4–20 mA (Modbus TCP)",
        "0.1 % FS (module), 0.5 % FS (transmitters)",
        365,
    ),
    "sql": ("MES production historian (SQL database)", "0.5 % (weigh feeders)", 365),
}


def nameplate(meter: dict[str, Any], n: int) -> dict[str, Any]:
    """The ledger entry of a generated meter: its model by kind, installed where the first
    quantity it measures comes from, calibrated on a day spread over the past year."""
    ident, protocol = meter["id"], meter["protocol"]
    kind = meter.get("meter_type") if protocol == "cjt188" else None
    for prefix in ("em-grid", "em97", "em", "pm", "bs", "cems", "wb"):
        if kind is None and ident.startswith(prefix + "-"):
            kind = prefix
    model, accuracy, interval = INSTRUMENTS[kind or protocol]
    first = next(_quantities(meter), "plant")
    return {
        "model": model,
        "location": f"metering point of {first.split('.')[0]}",
        "accuracy": accuracy,
        "calibration_interval_days": interval,
        "calibrated_on": f"2025-{n % 12 + 1:02d}-{n % 28 + 1:02d}",
    }


def _quantities(meter: dict[str, Any]) -> Iterator[str]:
    for key in ("points", "registers", "tags", "channels"):
        for point in meter.get(key, []):
            yield from point.get("quantities") or [point["quantity"]]
    for field in meter.get("fields", {}).values():
        yield field["quantity"]


def large() -> dict[str, Any]:
    circuits = [f"c{i:03d}" for i in range(250)]
    sources: list[dict[str, Any]] = [
        {
            "id": name,
            "kind": "electricity",
            "rated_kw": 200 + (i * 37) % 1800,
            "load": {"profile": ("continuous", "three_shift", "two_shift", "day_shift")[i % 4]},
        }
        for i, name in enumerate(circuits)
    ]
    sources += [
        {"id": "coke", "kind": "belt_scale", "activity": "coke", "rated_t_h": 60},
        {"id": "coal_pci", "kind": "belt_scale", "activity": "bituminous coal", "rated_t_h": 45},
        {"id": "limestone", "kind": "weighbridge", "activity": "limestone", "trucks_per_day": 120},
        {"id": "bf_gas", "kind": "gas", "activity": "blast-furnace gas", "rated_nm3_h": 400000},
        {"id": "steel", "kind": "production", "activity": "crude steel", "rated_t_h": 400},
        {"id": "stack", "kind": "cems", "rated_nm3_h": 900000},
        *[{"id": f"w{i:02d}", "kind": "water", "rated_m3_h": 20} for i in range(30)],
    ]
    buses = (
        [{"id": f"dlt_{b}", "protocol": "dlt645", "baud": 9600, "framing": "8E1"} for b in range(6)]
        + [
            {"id": f"rtu_{b}", "protocol": "modbus-rtu", "baud": 19200, "framing": "8N1"}
            for b in range(4)
        ]
        + [
            {"id": f"cjt_{b}", "protocol": "cjt188", "baud": 2400, "framing": "8E1"}
            for b in range(3)
        ]
    )
    meters: list[dict[str, Any]] = []
    for i in range(800):  # the load: Modbus TCP meters, 200 unit ids on each of 4 ports
        name = circuits[i % len(circuits)]
        meters.append(
            {
                "id": f"tcp-{i:04d}",
                "protocol": "modbus-tcp",
                "port": 15100 + i // 200,
                "unit_id": i % 200 + 1,
                "registers": power_meter_registers(name),
            }
        )
    for i in range(120):
        meters.append(
            {
                "id": f"em-{i:03d}",
                "protocol": "dlt645-2007",
                "bus": f"dlt_{i % 6}",
                "address": f"{i + 1:012d}",
                "points": [energy("00010000", f"{circuits[i]}.energy_import_kwh")],
            }
        )
    for i in range(40):
        meters.append(
            {
                "id": f"rtu-{i:03d}",
                "protocol": "modbus-rtu",
                "bus": f"rtu_{i % 4}",
                "unit_id": i // 4 + 1,
                "registers": power_meter_registers(circuits[120 + i]),
            }
        )
    for i in range(30):
        meters.append(
            {
                "id": f"wm-{i:03d}",
                "protocol": "cjt188",
                "bus": f"cjt_{i % 3}",
                "meter_type": "water",
                "address": f"{i + 1:014d}",
                "fields": {
                    "current_total": {
                        "quantity": f"w{i:02d}.volume_m3",
                        "decimals": 2,
                        "rounding": "floor",
                    }
                },
            }
        )
    for i in range(5):
        meters.append(
            {
                "id": f"dcs-{i}",
                "protocol": "opcua",
                "port": 0,
                "update_s": 5,
                "tags": [
                    {
                        "name": f"{name}_kWh",
                        "quantity": f"{name}.energy_import_kwh",
                        "decimals": 1,
                        "rounding": "floor",
                    }
                    for name in circuits[200 + i * 10 : 210 + i * 10]
                ],
            }
        )
    for i in range(5):
        meters.append(
            {
                "id": f"iot-{i}",
                "protocol": "mqtt",
                "topic": f"steel/iot/{i}",
                "interval_s": 15,
                "points": [
                    {
                        "name": "bf_gas",
                        "quantity": "bf_gas.volume_nm3",
                        "decimals": 1,
                        "rounding": "floor",
                    }
                ],
            }
        )
    for i in range(2):
        meters.append(
            {
                "id": f"ems-{i}",
                "protocol": "https",
                "port": 0,
                "interval_s": 60,
                "points": [
                    {
                        "name": "steel_t",
                        "quantity": "steel.mass_t",
                        "decimals": 2,
                        "rounding": "floor",
                    },
                    {
                        "name": "coke_t",
                        "quantity": "coke.mass_t",
                        "decimals": 2,
                        "rounding": "floor",
                    },
                ],
            }
        )
    meters.append(
        {
            "id": "manual-1",
            "protocol": "manual",
            "period": "monthly",
            "points": [{"name": "limestone_t", "quantity": "limestone.mass_t", "decimals": 2}],
        }
    )
    meters.append(
        {
            "id": "manual-2",
            "protocol": "manual",
            "period": "daily",
            "points": [{"name": "coal_pci_t", "quantity": "coal_pci.mass_t", "decimals": 2}],
        }
    )
    return {
        "name": "large",
        "description": "A steel works with over 1 000 meters, for load and capacity tests.",
        "seed": 99,
        "start": START,
        "plant": {"industry": "steel", "utc_offset_hours": 8, "sources": sources},
        "buses": buses,
        "meters": meters,
        "faults": [],
    }


def write(name: str, data: dict[str, Any]) -> None:
    header = "# Generated by scripts/make_fleets.py — edit that, not this file.\n"
    text = yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None
    )
    (FLEETS / f"{name}.yaml").write_text(header + text, encoding="utf-8")


if __name__ == "__main__":
    write("works", works())
    write("large", large())
