"""The simulated plant: seeded, deterministic ground truth (``Plant``) from a ``PlantSpec``."""

from simulators.plant.model import Plant, PlantTimeError
from simulators.plant.sources import Quantity
from simulators.plant.spec import LoadSpec, PlantSpec

__all__ = ["LoadSpec", "Plant", "PlantSpec", "PlantTimeError", "Quantity"]
