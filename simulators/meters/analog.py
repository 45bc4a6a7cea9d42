"""4–20 mA analog inputs: a transmitter on its loop, and the module that digitises it.

The chain, one :class:`~simulators.fleet.schema.AnalogChannel` at a time:

* **Transmitter**: the plant value ``v`` (with any value fault in force) drives the loop at
  ``4 + 16 × (v − low) / (high − low)`` mA, saturating at NAMUR NE 43's limits, 3.8 mA below
  its range and 20.5 mA above it (a value beyond the range is not measured, only signalled).
* **Module**: one input register per channel (FC04, address = channel number), uint16, holding
  the loop current in **µA**: 4 mA reads 4000, 20 mA 20000, rounded half-even to the µA; the
  input measures 0–24 mA (0–24000 counts), so a broken loop reads near 0.
* **Scaling** (the terminal's, configured by the bench): ``low + (counts − 4000) × (high − low)
  / 16000``, shown at the channel's ``decimals``, half-even. One count is (high − low) / 16000
  of the range: that is the chain's resolution, and a range of 0–160 reads in steps of 0.01.

What the module "shows" (the :class:`~simulators.fleet.runtime.Observation` recorded at each
read) is that scaled value: the engineering value its counts stand for, which a terminal
that scales as configured stores digit for digit. Counts outside 4000–20000 are outside the
transmitter's range: their scaled value lies beyond ``low``..``high``.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final

from simulators.fleet.runtime import MeterRuntime, Observation
from simulators.fleet.schema import AnalogChannel, AnalogModule, Register

#: Counts (µA) at the ends of the 4–20 mA range: the module's convention.
COUNTS_4MA: Final = 4000
COUNTS_20MA: Final = 20000
COUNTS_MAX: Final = 24000  # the input's 24 mA end
#: NAMUR NE 43 saturation currents, mA: where a transmitter stops following its value.
SATURATION_LOW_MA: Final = Decimal("3.8")
SATURATION_HIGH_MA: Final = Decimal("20.5")
_SPAN_MA: Final = Decimal(16)
_SPAN_COUNTS: Final = Decimal(COUNTS_20MA - COUNTS_4MA)


def loop_current(value: Decimal, channel: AnalogChannel) -> Decimal:
    """The transmitter's loop current in mA for ``value``, saturated outside its range."""
    current = Decimal(4) + _SPAN_MA * (value - channel.low) / (channel.high - channel.low)
    return min(max(current, SATURATION_LOW_MA), SATURATION_HIGH_MA)


def counts(current_ma: Decimal) -> int:
    """The module's reading of a loop current: µA, rounded half-even, within 0–24 mA."""
    micro = (current_ma * 1000).to_integral_value(rounding=ROUND_HALF_EVEN)
    return int(min(max(micro, Decimal(0)), Decimal(COUNTS_MAX)))


def scaled(raw: int, channel: AnalogChannel) -> Decimal:
    """The engineering value ``raw`` counts stand for, at the channel's decimals."""
    value = channel.low + (raw - COUNTS_4MA) * (channel.high - channel.low) / _SPAN_COUNTS
    return value.quantize(Decimal(1).scaleb(-channel.decimals), rounding=ROUND_HALF_EVEN)


def channel_register(channel: AnalogChannel) -> Register:
    """The input register a channel's counts are read from."""
    return Register(
        address=channel.channel, table="input", type="uint16", quantity=channel.quantity, decimals=0
    )


class AnalogInputs:
    """An analog module's channels as Modbus registers whose values are counts at read time."""

    def __init__(self, meter: MeterRuntime) -> None:
        spec = meter.spec
        if not isinstance(spec, AnalogModule):
            raise TypeError(f"meter {meter.id} is {spec.protocol}, not an analog module")
        self.meter = meter
        self.channels = {c.channel: c for c in spec.channels}
        self.registers = [channel_register(c) for c in spec.channels]

    def counts(self, channel: AnalogChannel, t: float) -> int:
        """The counts of ``channel`` at ``t``; records the scaled value as what was shown."""
        truth, value, faults = self.meter.measured(channel, t)
        raw = counts(loop_current(value, channel))
        shown = scaled(raw, channel)
        self.meter.fleet.record(
            Observation(t, self.meter.id, channel.quantity, shown, truth, faults)
        )
        return raw

    def read(self, register: Register, t: float) -> Decimal:
        """The value of an input register (its channel's counts), as the server encodes it."""
        return Decimal(self.counts(self.channels[register.address], t))
