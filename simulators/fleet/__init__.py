"""Fleets: the plant and its meters as one validated file, and that file at run time."""

from simulators.fleet.runtime import (
    Endpoint,
    FaultEvent,
    FleetRuntime,
    MeterRuntime,
    Observation,
    quantize,
)
from simulators.fleet.schema import Bus, Fault, Fleet, Meter, Point

__all__ = [
    "Bus",
    "Endpoint",
    "Fault",
    "FaultEvent",
    "Fleet",
    "FleetRuntime",
    "Meter",
    "MeterRuntime",
    "Observation",
    "Point",
    "quantize",
]
