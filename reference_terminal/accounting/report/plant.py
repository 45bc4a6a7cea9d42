"""The accounting description of a plant, and its per-minute meter data (the report's inputs).

The plant file (YAML; ``fixtures/accounting/report/plant.yaml`` is a full example)::

    enterprise: {name: …, credit_code: …, sector: …, address: …, contact: …}
    vintage: 2015 guidelines / GB/T 32150     # every library factor from this vintage
    timezone: "+08:00"                        # the reporting calendar (default Beijing time)
    boundary:
      description: …
      units:                                  # accounting units (核算单元) and their sources
        - {id: kiln, name: Clinker line, sources: [kiln coal, kiln limestone]}
    sources:                                  # emission sources, each fed by meters
      - {name: kiln coal, kind: combustion, unit: t, fuel: coke, meters: [M-101]}
      - {name: grid, kind: electricity, unit: kWh, factor: "0.5703 tCO2/MWh", meters: [E-1, E-2]}
    bases:                                    # what intensities are per (optional)
      electricity: {meters: [G-1]}            # e.g. electricity generated or consumed
      product: {name: clinker, unit: t, meters: [P-1]}
    meters:                                   # the meter ledger (CSMT §11.1)
      - {id: M-101, name: …, model: …, serial: …, location: …, accuracy: "0.5", level: 1,
         unit: t, resolution: "0.001", frequency: 1 min, calibrated: 2024-01-10,
         calibration_due: 2025-01-10}

A source's ``kind`` and its ``fuel``/``factor``/``ncv``/``carbon_content``/``oxidation``/
``purity`` are those of ``carbench account``; its activity is the sum of its meters' readings,
in its ``unit``. Errors name the field.

The data file holds each meter's activity per minute (increments, not register readings):

- CSV: a header ``time,METER,METER…``, then one row per minute; ``time`` is ISO 8601 (without
  an offset it is in the plant's time zone); a value is a decimal in the meter's unit, an empty
  cell a minute without data.
- Parquet: a column ``minute`` (int64, minutes since 1970-01-01 00:00 UTC), then one column
  per meter: int64 counts of the meter's ``resolution``, or decimals; a null is a minute
  without data. Much faster than CSV for a year of data.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reference_terminal.accounting.errors import AccountingError
from reference_terminal.accounting.methods import SourceKindName, SourceSpec, spec_from_text
from reference_terminal.accounting.statistics import (
    EXACT,
    Basis,
    MinuteSeries,
    minute_of,
)
from reference_terminal.accounting.units import parse_unit

_Text = Annotated[str, Field(min_length=1)]
_Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Enterprise(_Strict):
    name: _Text
    credit_code: str = ""  # 统一社会信用代码
    sector: str = ""
    address: str = ""
    legal_representative: str = ""
    contact: str = ""
    note: str = ""


class AccountingUnit(_Strict):
    id: _Id
    name: _Text
    sources: list[_Text]


class Boundary(_Strict):
    description: str = ""
    units: list[AccountingUnit] = []


class Source(_Strict):
    name: _Text
    kind: SourceKindName
    unit: _Text
    meters: Annotated[list[_Id], Field(min_length=1)]
    fuel: _Text | None = None
    factor: _Text | None = None
    ncv: _Text | None = None
    carbon_content: _Text | None = None
    oxidation: _Text | None = None
    purity: _Text | None = None
    data_year: int | None = None
    label: str = ""  # a name in the plant's own words (e.g. 1#窑头煤)


class BasisIn(_Strict):
    meters: Annotated[list[_Id], Field(min_length=1)]
    name: str = ""
    unit: str = ""  # product only (electricity is reported per MWh, heat per GJ)


class Meter(_Strict):
    id: _Id
    name: str = ""
    model: str = ""
    serial: str = ""
    location: str = ""
    accuracy: str = ""  # accuracy class, as on the certificate
    level: int | None = Field(None, ge=1, le=3)  # 一级/二级/三级 measurement level
    unit: _Text
    resolution: Decimal = Field(gt=0)
    #: How often the meter yields a value: the base of its coverage in a report.
    frequency: Annotated[str, Field(pattern=r"^[1-9][0-9]* ?(min|h|day)$")] = "1 min"
    calibrated: dt.date | None = None
    calibration_due: dt.date | None = None

    @property
    def period_minutes(self) -> int:
        """The meter's reading period in minutes (``frequency``)."""
        number = int("".join(c for c in self.frequency if c.isdigit()))
        unit = self.frequency.lstrip("0123456789 ")
        return number * {"min": 1, "h": 60, "day": 1440}[unit]


class Plant(_Strict):
    enterprise: Enterprise
    vintage: _Text | None = None
    timezone: Annotated[str, Field(pattern=r"^[+-]\d{2}:\d{2}$")] = "+08:00"
    boundary: Boundary = Boundary()
    sources: Annotated[list[Source], Field(min_length=1)]
    bases: dict[Basis, BasisIn] = {}
    meters: Annotated[list[Meter], Field(min_length=1)]

    @model_validator(mode="after")
    def _references(self) -> Plant:
        meters = {m.id: m for m in self.meters}
        if len(meters) != len(self.meters):
            raise ValueError("meters: ids must be unique")
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            raise ValueError("sources: names must be unique")
        for i, source in enumerate(self.sources):
            for j, meter in enumerate(source.meters):
                if meter not in meters:
                    raise ValueError(f"sources[{i}].meters[{j}]: no meter {meter!r} in the ledger")
                try:
                    mine = parse_unit(meters[meter].unit).dimension
                    same = mine == parse_unit(source.unit).dimension
                except AccountingError:
                    same = False
                if not same:
                    raise ValueError(
                        f"sources[{i}].meters[{j}]: meter {meter!r} reads {meters[meter].unit}, "
                        f"which is not a quantity of the source's unit {source.unit}"
                    )
        for basis, given in self.bases.items():
            for j, meter in enumerate(given.meters):
                if meter not in meters:
                    raise ValueError(f"bases.{basis}.meters[{j}]: no meter {meter!r}")
        seen: dict[str, str] = {}
        for i, unit in enumerate(self.boundary.units):
            for j, name in enumerate(unit.sources):
                if name not in names:
                    raise ValueError(f"boundary.units[{i}].sources[{j}]: no source {name!r}")
                if name in seen:
                    raise ValueError(
                        f"boundary.units[{i}].sources[{j}]: {name!r} is already in unit "
                        f"{seen[name]!r}"
                    )
                seen[name] = unit.id
        if self.boundary.units and (left := [n for n in names if n not in seen]):
            raise ValueError(f"boundary.units: source {left[0]!r} is in no accounting unit")
        return self

    @property
    def tz(self) -> dt.timezone:
        sign = -1 if self.timezone[0] == "-" else 1
        hours, minutes = int(self.timezone[1:3]), int(self.timezone[4:6])
        return dt.timezone(sign * dt.timedelta(hours=hours, minutes=minutes))

    def meter(self, meter_id: str) -> Meter:
        for m in self.meters:
            if m.id == meter_id:
                return m
        raise KeyError(meter_id)

    def unit_of(self, source: str) -> AccountingUnit | None:
        for unit in self.boundary.units:
            if source in unit.sources:
                return unit
        return None

    def specs(self) -> list[SourceSpec]:
        """Each source as the method sees it, for one unit of its activity."""
        return [
            spec_from_text(
                s.name,
                s.kind,
                f"1 {s.unit}",
                fuel=s.fuel,
                factor=s.factor,
                ncv=s.ncv,
                carbon_content=s.carbon_content,
                oxidation=s.oxidation,
                purity=s.purity,
                vintage=self.vintage,
                data_year=s.data_year,
            )
            for s in self.sources
        ]


def load_plant(path: Path | str) -> Plant:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise AccountingError(f"{path}: cannot read: {exc}") from None
    return plant_from_data(data, str(path))


def plant_from_data(data: Any, origin: str = "<plant>") -> Plant:
    try:
        return Plant.model_validate(data)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
            msg = error["msg"].removeprefix("Value error, ")
            lines.append(f"{origin}: {loc.lstrip('.') or '(top)'}: {msg}")
        raise AccountingError("\n".join(lines)) from None


# ---- meter data --------------------------------------------------------------------------------


def load_data(path: Path | str, plant: Plant) -> dict[str, MinuteSeries]:
    """Each ledger meter's per-minute activity from a CSV or Parquet file (see the module)."""
    path = Path(path)
    if path.suffix == ".parquet":
        return _parquet(path, plant)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccountingError(f"{path}: cannot read: {exc}") from None
    return read_csv(text, plant, str(path))


def read_csv(text: str, plant: Plant, origin: str = "<csv>") -> dict[str, MinuteSeries]:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header or header[0].strip() != "time":
        raise AccountingError(f"{origin}: the first column must be 'time'")
    meters = [h.strip() for h in header[1:]]
    ledger = {m.id: m for m in plant.meters}
    for name in meters:
        if name not in ledger:
            raise AccountingError(f"{origin}: column {name!r} is no meter of the ledger")
    values: dict[str, list[tuple[int, Decimal]]] = {m: [] for m in meters}
    tz = plant.tz
    for line, row in enumerate(rows, start=2):
        if not row or not "".join(row).strip():
            continue
        try:
            t = dt.datetime.fromisoformat(row[0].strip())
        except ValueError:
            raise AccountingError(
                f"{origin}: line {line}: time {row[0]!r} is not ISO 8601"
            ) from None
        minute = minute_of(t if t.tzinfo else t.replace(tzinfo=tz))
        for name, cell in zip(meters, row[1:], strict=False):
            if not cell.strip():
                continue
            try:
                values[name].append((minute, Decimal(cell.strip())))
            except InvalidOperation:
                raise AccountingError(
                    f"{origin}: line {line}: {name}: {cell!r} is not a number"
                ) from None
    out = {}
    for name, pairs in values.items():
        meter = ledger[name]
        try:
            out[name] = MinuteSeries.from_values(name, meter.unit, pairs, meter.resolution)
        except AccountingError as exc:
            raise AccountingError(f"{origin}: meter {name}: {exc}") from None
    return out


def _parquet(path: Path, plant: Plant) -> dict[str, MinuteSeries]:
    import pyarrow as pa  # type: ignore[import-untyped]  # noqa: PLC0415
    import pyarrow.parquet as pq  # type: ignore[import-untyped]  # noqa: PLC0415

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise AccountingError(f"{path}: cannot read: {exc}") from None
    if "minute" not in table.column_names:
        raise AccountingError(f"{path}: no 'minute' column (int64 minutes since the epoch, UTC)")
    minutes = table.column("minute").to_numpy().astype(np.int64)
    ledger = {m.id: m for m in plant.meters}
    out = {}
    for name in table.column_names:
        if name == "minute":
            continue
        if name not in ledger:
            raise AccountingError(f"{path}: column {name!r} is no meter of the ledger")
        meter = ledger[name]
        column = table.column(name)
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        if pa.types.is_integer(column.type):
            counts = column.fill_null(0).to_numpy().astype(np.int64)[valid]
        elif pa.types.is_decimal(column.type):
            counts_list = []
            for value in column.filter(column.is_valid()).to_pylist():
                count = EXACT.divide(value, meter.resolution)
                if count != count.to_integral_value():
                    raise AccountingError(
                        f"{path}: meter {name}: {value} is not a multiple of {meter.resolution}"
                    )
                counts_list.append(int(count))
            counts = np.array(counts_list, dtype=np.int64)
        else:
            raise AccountingError(
                f"{path}: meter {name}: column type {column.type} (give int64 counts of the "
                f"resolution {meter.resolution} or decimals; floats are not exact)"
            )
        try:
            out[name] = MinuteSeries(name, meter.unit, meter.resolution, minutes[valid], counts)
        except AccountingError as exc:
            raise AccountingError(f"{path}: {exc}") from None
    return out


def write_parquet(path: Path | str, data: Mapping[str, MinuteSeries]) -> None:
    """Meter data as Parquet (the format :func:`load_data` reads): one row per minute any
    meter has, int64 counts, nulls where a meter has no data."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    minutes = np.unique(np.concatenate([s.minutes for s in data.values()]))
    columns = {"minute": pa.array(minutes, type=pa.int64())}
    for name, s in data.items():
        where = np.searchsorted(minutes, s.minutes)
        counts = np.zeros(len(minutes), dtype=np.int64)
        counts[where] = s.counts
        mask = np.ones(len(minutes), dtype=bool)
        mask[where] = False
        columns[name] = pa.array(counts, type=pa.int64(), mask=mask)
    pq.write_table(pa.table(columns), path)
