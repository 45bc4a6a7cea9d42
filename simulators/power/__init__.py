"""Power cuts: a file system that loses unsynced writes, and the switches that cut the supply.

See README.md in this directory. The FUSE side (``volatile_fs``) is imported only by its own
process, so importing this package does not load libfuse (``fuse_available()`` does, to check).
"""

from simulators.power.mount import (
    ControlError,
    CutReport,
    FuseUnavailable,
    MountError,
    MountStats,
    PowerCutCapability,
    PowerCutMode,
    PowerError,
    VolatileMount,
    fuse_available,
    power_cut_mode,
    volatile_mount,
)
from simulators.power.switch import (
    ModbusRelayConfig,
    ModbusRelaySwitch,
    OperatorPromptSwitch,
    PowerState,
    PowerSwitch,
    ProcessPowerSwitch,
    StdinPrompt,
    SwitchError,
    SwitchOutcome,
)

__all__ = [
    "ControlError",
    "CutReport",
    "FuseUnavailable",
    "ModbusRelayConfig",
    "ModbusRelaySwitch",
    "MountError",
    "MountStats",
    "OperatorPromptSwitch",
    "PowerCutCapability",
    "PowerCutMode",
    "PowerError",
    "PowerState",
    "PowerSwitch",
    "ProcessPowerSwitch",
    "StdinPrompt",
    "SwitchError",
    "SwitchOutcome",
    "VolatileMount",
    "fuse_available",
    "power_cut_mode",
    "volatile_mount",
]
