"""The bench around the terminal for a whole run: the clock, the plant and its meters, the
platform centres, and a fault proxy in front of each centre (DESIGN.md's picture, left and
right of the terminal).

One rig serves every test of a session (standing it up costs seconds; tests take turns on it).
Tests observe it — ``rig.record`` holds every frame each centre received, ``rig.fleet`` every
value a meter sent — and disturb it through :meth:`Rig.link`, :meth:`Rig.toxic`,
:meth:`Rig.behaviour` and :meth:`Rig.meter_fault`, restoring what they changed.

Under the virtual clock the plant starts shortly before a local midnight that ends a year, so
a short run crosses a day, a month and a year (settlement, daily uploads) within minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from common.clock import Clock, RealClock
from conformance.dut import CentreEndpoint, ClockMode
from conformance.oracle import MeterLog
from conformance.profiles import PROFILES
from conformance.target import Target, Wiring
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime, Observation
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import FleetStartError, run_fleet, waiting_for
from simulators.fleet.schema import Fault, Fleet, MqttCollector, OpcUaServer, SqlHistorian
from simulators.network import FaultProxyServer
from simulators.network.toxics import make_toxic
from simulators.pki import TestCa
from simulators.platform import (
    HttpsServer,
    PlatformFile,
    Platforms,
    Record,
    running_platforms,
)
from simulators.platform.client_tls import ClientCa
from simulators.platform.factor_library import FactorPublisher, public_key_file
from simulators.tasks import cancel_and_wait

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FLEETS = {name: FIXTURES / "fleets" / p.fleet for name, p in PROFILES.items()}
#: Where virtual time starts (plant-local): 30 minutes before a year ends.
VIRTUAL_START = "2026-12-31T23:30:00+08:00"
FLEET_START_TIMEOUT_S = 120.0
#: Wall seconds the virtual clock waits for a busy thread before moving on anyway. A commit
#: through the FUSE disk on a loaded 2-core machine can take seconds, and moving time on while
#: it runs would time out meter reads whose answers are already on their way.
STUCK_AFTER_S = 10.0


class RigError(RuntimeError):
    """The bench could not stand up its side (an error of the bench)."""


#: The platform centres' clock runs this far behind the terminal's (s): under virtual time both
#: sides act at the same instants, and a request's QN (its time to the millisecond, HJ 212-2017
#: 表 3) would equal the QN the terminal gives an upload or a history record made at that same
#: instant — on a real network the answer is always a few milliseconds later. Two machines'
#: clocks never agree to the millisecond either. Arrival times are corrected by it.
PLATFORM_SKEW_S = -0.4763


class SkewedClock:
    """Another machine's clock: the bench's time plus a fixed offset; sleeps pass through."""

    def __init__(self, clock: Clock, offset: float) -> None:
        self.clock = clock
        self.offset = offset

    def time(self) -> float:
        return self.clock.time() + self.offset

    def monotonic(self) -> float:
        return self.clock.monotonic()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)


@dataclass(frozen=True, slots=True)
class WireAnswer:
    """A meter's answer with the wall time it was made (for latencies measured from the wire)."""

    wall: float  # time.perf_counter()
    observation: Observation


class TimedFleet(FleetRuntime):
    """A fleet that also notes the wall time of every answer (virtual time stands still while
    the terminal works, so latency is measured in wall time) and keeps the meters' logs indexed
    for the oracle (``log``)."""

    answers: deque[WireAnswer]
    log: MeterLog

    def record(self, observation: Observation) -> None:
        super().record(observation)
        self.answers.append(WireAnswer(time.perf_counter(), observation))
        self.log.add(observation)


@dataclass
class Rig:
    # The live parts stay out of the repr: pytest prints a failed test's arguments, and after
    # the full profile's week offline the fleet's and platforms' took minutes to print.
    clock: Clock = field(repr=False)
    clock_mode: ClockMode
    fleet: TimedFleet = field(repr=False)
    fleet_file: Path
    platforms: Platforms = field(repr=False)
    proxies: FaultProxyServer = field(repr=False)
    centres: list[CentreEndpoint]
    record: Record = field(repr=False)
    workdir: Path
    seed: int
    #: The bench's test CA (ISC-2 §7.4.1): it certifies the terminal's SM2 key, and the HJ 212
    #: centres check every record's signature against certificates it issued (CSMT §7.4).
    ca: TestCa | None = None
    #: The platforms' TLS client CA (ISC-2 §7.4.1): when the target declares ``feature:pki``
    #: the HTTPS centres take uploads only over mutual TLS with a certificate it issued.
    client_ca: ClientCa | None = None
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack, repr=False)
    _toxics: int = 0

    # ---- time ----------------------------------------------------------------------------
    def now(self) -> float:
        return self.clock.time()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)

    async def sleep_until(self, t: float) -> None:
        await self.clock.sleep(max(0.0, t - self.clock.time()))

    @property
    def virtual(self) -> bool:
        return self.clock_mode is ClockMode.VIRTUAL

    def hold(self) -> contextlib.AbstractContextManager[None]:
        """Keep virtual time still (bench bookkeeping that takes no time in the scenario)."""
        return _held(self.clock)

    def centre(self, name: str) -> CentreEndpoint:
        for centre in self.centres:
            if centre.name == name:
                return centre
        raise KeyError(name)

    def hj212_centres(self) -> list[str]:
        return [c.name for c in self.centres if c.protocol == "hj212"]

    # ---- disturbances --------------------------------------------------------------------
    async def link(self, centre: str, up: bool) -> None:
        """The link to ``centre`` (``all``: every centre) up or down (Toxiproxy's enabled)."""
        names = [c.name for c in self.centres] if centre == "all" else [centre]
        for name in names:
            await self.proxies[name].set_enabled(up)

    async def toxic(
        self, centre: str, type_: str, *, stream: str = "upstream", **attrs: float
    ) -> str:
        """Add a toxic on the link to ``centre``; returns its name (for :meth:`untoxic`)."""
        self._toxics += 1
        name = f"{type_}-{self._toxics}"
        await self.proxies[centre].add_toxic(make_toxic(type_, name=name, stream=stream, **attrs))
        return name

    async def untoxic(self, centre: str, name: str) -> None:
        await self.proxies[centre].remove_toxic(name)

    async def extra_proxy(self, name: str, centre: str) -> CentreEndpoint:
        """Another way in to ``centre`` (a second address for it), e.g. to move an upload
        address to; removed with :meth:`drop_proxy`."""
        server = self.platforms.centres[centre]
        proxy = await self.proxies.create_proxy(name, upstream=f"127.0.0.1:{server.address[1]}")
        base = self.centre(centre)
        return CentreEndpoint(name, base.protocol, "127.0.0.1", proxy.port, base.path, base.ca_file)

    def trust_device(self, mn_of: dict[str, str], certificate: str) -> None:
        """Give every HJ 212 centre the terminal's device certificate (PEM), under the MN the
        terminal uses there (``mn_of``: centre → MN)."""
        for name in self.hj212_centres():
            self.platforms.hj212(name).trust_device(mn_of[name], certificate)

    async def drop_proxy(self, name: str) -> None:
        await self.proxies.delete(name)

    async def behaviour(self, centre: str, behaviour: str | dict[str, Any]) -> None:
        server = self.platforms.centres[centre]
        await server.set_behaviour(behaviour)

    def meter_fault(
        self, meter: str, kind: str, *, seconds: float | None = None, **params: Any
    ) -> Fault:
        """A fault of ``meter`` from now on, for ``seconds`` (None: for good)."""
        start = timedelta(seconds=self.now() - self.fleet.spec.start.timestamp())
        end = None if seconds is None else start + timedelta(seconds=seconds)
        fault = Fault.model_validate(
            {"meter": meter, "kind": kind, "start": start, "end": end, **params}
        )
        self.fleet.meters[meter].faults.append(fault)
        return fault

    def clear_fault(self, fault: Fault) -> None:
        faults = self.fleet.meters[fault.meter].faults
        if fault in faults:
            faults.remove(fault)

    @staticmethod
    def arrival(at: float) -> float:
        """A centre's recorded time (its own clock) on the terminal's clock."""
        return at - PLATFORM_SKEW_S

    # ---- what the meters said -------------------------------------------------------------
    @property
    def meter_log(self) -> MeterLog:
        return self.fleet.log

    def shown(self, meter: str, quantity: str, start: float, end: float) -> list[Observation]:
        return self.fleet.log.shown(meter, quantity, start, end)

    async def close(self) -> None:
        await self._stack.aclose()


def fleet_spec(profile: str, clock_mode: ClockMode) -> tuple[Fleet, Path]:
    path = FLEETS[profile]
    spec = load_fleet(path)
    if clock_mode is ClockMode.VIRTUAL:
        spec = spec.model_copy(update={"start": datetime.fromisoformat(VIRTUAL_START)})
        spec = _paced(spec)
    return spec, path


class WiringError(ValueError):
    """A target's ``wiring`` names a meter or bus the run's fleet does not have."""


def wired(spec: Fleet, wiring: Wiring, path: Path) -> Fleet:
    """``spec`` with the target's fixed ports and serial links (``Target.wiring``)."""
    meters = {m.id: m for m in spec.meters}
    buses = {b.id: b for b in spec.buses}
    for meter_id, port in wiring.ports.items():
        meter = meters.get(meter_id)
        if meter is None or not hasattr(meter, "port"):
            have = sorted(m.id for m in spec.meters if hasattr(m, "port"))
            raise WiringError(
                f"wiring.ports.{meter_id}: the fleet {path.name} has no meter {meter_id!r} "
                f"listening on a TCP port of its own (those that do: {', '.join(have)})"
            )
        meters[meter_id] = meter.model_copy(update={"port": port})
    for bus_id, link in wiring.links.items():
        if bus_id not in buses:
            raise WiringError(
                f"wiring.links.{bus_id}: the fleet {path.name} has no serial bus {bus_id!r} "
                f"(it has {', '.join(sorted(buses))})"
            )
        buses[bus_id] = buses[bus_id].model_copy(update={"link": link})
    return spec.model_copy(update={"meters": list(meters.values()), "buses": list(buses.values())})


#: Under virtual time every wake-up of a simulator costs wall time whether anyone reads it or
#: not; collectors refresh or publish at most this often (the terminal polls every minute).
COLLECTOR_MIN_S = 10.0


def _paced(spec: Fleet) -> Fleet:
    meters = []
    for meter in spec.meters:
        paced = meter
        if isinstance(meter, OpcUaServer) and meter.update_s < COLLECTOR_MIN_S:
            paced = meter.model_copy(update={"update_s": COLLECTOR_MIN_S})
        elif isinstance(meter, MqttCollector | SqlHistorian) and meter.interval_s < COLLECTOR_MIN_S:
            paced = meter.model_copy(update={"interval_s": COLLECTOR_MIN_S})
        meters.append(paced)
    return spec.model_copy(update={"meters": meters})


async def _start_fleet(
    stack: AsyncExitStack, spec: Fleet, clock: Clock, workdir: Path
) -> TimedFleet:
    # frame pacing under virtual time: a frame's bytes arrive together, after the time they
    # take on the line (char pacing costs a clock step per character)
    pacing: Literal["char", "frame"] = "frame" if isinstance(clock, VirtualClock) else "char"
    fleet = TimedFleet(spec, clock, serial_pacing=pacing)
    fleet.observations = deque(maxlen=2_000_000)
    fleet.answers = deque(maxlen=200_000)
    fleet.log = MeterLog(fleet)
    plant = workdir / "plant"  # the plant's own databases (historians)
    plant.mkdir(parents=True, exist_ok=True)
    task = asyncio.create_task(run_fleet(fleet, work_dir=plant), name=f"fleet {spec.name}")

    stack.push_async_callback(cancel_and_wait, task)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + FLEET_START_TIMEOUT_S
    while waiting_for(fleet):
        if task.done():
            task.result()
            raise FleetStartError("the fleet stopped before every meter was listening")
        if loop.time() > deadline:
            missing = ", ".join(sorted(waiting_for(fleet))[:20])
            raise FleetStartError(f"not listening after {FLEET_START_TIMEOUT_S:g} s: {missing}")
        await asyncio.sleep(0.02)  # the bench's own start-up, in wall time
    return fleet


def _platform_file(
    target: Target, mns: dict[str, str], ca: TestCa, client_ca: ClientCa
) -> PlatformFile:
    pw = target.parameters.pw
    # a terminal that says it connects with PKI certificates must: no certificate, no upload
    mutual = target.implementation.declares("feature:pki")
    centres = []
    for c in target.uplink.centres:
        centre: dict[str, Any] = {
            "name": c.name,
            "protocol": c.protocol,
            "port": 0,
            # the terminal's MN and PW from the test parameters: a wrong one is refused
            "passwords": {mns[c.name]: pw},
        }
        if c.protocol == "hj212":  # every record's SM2 signature checked (CSMT §7.4)
            centre["signatures"] = {"ca_file": str(ca.certificate_file)}
        elif mutual:
            centre["client_certificates"] = {"ca_file": str(client_ca.certificate_file)}
        centres.append(centre)
    return PlatformFile.model_validate({"centres": centres})


@contextlib.asynccontextmanager
async def running_rig(
    target: Target, *, profile: str, clock_mode: ClockMode, workdir: Path
) -> AsyncIterator[Rig]:
    """Stand the rig up for ``target``; everything stops on exit."""
    spec, path = fleet_spec(profile, clock_mode)
    spec = wired(spec, target.wiring, path)
    clock: Clock = (
        VirtualClock(spec.start.timestamp(), stuck_after_s=STUCK_AFTER_S)
        if clock_mode is ClockMode.VIRTUAL
        else RealClock()
    )
    workdir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        yield await _stand_up(stack, target, spec, path, clock, clock_mode, workdir)


def _held(clock: Clock) -> contextlib.AbstractContextManager[None]:
    return clock.hold() if isinstance(clock, VirtualClock) else contextlib.nullcontext()


async def _stand_up(
    stack: AsyncExitStack,
    target: Target,
    spec: Fleet,
    path: Path,
    clock: Clock,
    clock_mode: ClockMode,
    workdir: Path,
) -> Rig:
    # starting the fleet takes no plant time, however long it takes for real (an OPC UA server
    # filling its address space would otherwise move the clock at its own pace). Not the HTTPS
    # centre: it waits for its server on the clock.
    with _held(clock):
        fleet = await _start_fleet(stack, spec, clock, workdir)
    record = Record(f"sqlite:///{workdir / 'platform-record.sqlite'}")
    stack.callback(record.close)
    mns = {c.name: target.mn(c.name, i) for i, c in enumerate(target.uplink.centres)}
    now = datetime.fromtimestamp(clock.time(), UTC)
    ca = TestCa.create(workdir / "pki", now=now)
    client_ca = ClientCa.create(workdir / "pki" / "tls-clients", now=now)
    platforms = await stack.enter_async_context(
        running_platforms(
            _platform_file(target, mns, ca, client_ca),
            clock=SkewedClock(clock, PLATFORM_SKEW_S),
            record=record,
        )
    )
    proxies = await stack.enter_async_context(FaultProxyServer(seed=spec.seed, clock=clock))
    endpoints = []
    for c in target.uplink.centres:
        server = platforms.centres[c.name]
        listen = "127.0.0.1:0"
        if target.uplink.pointing == "fixed":
            listen = f"0.0.0.0:{target.uplink.fixed_ports[c.name]}"
        proxy = await proxies.create_proxy(
            c.name, upstream=f"127.0.0.1:{server.address[1]}", listen=listen
        )
        upload_path: str = ""
        ca_file: Path | None = None
        factors_path, publisher_key = "", None
        if isinstance(server, HttpsServer):
            upload_path, ca_file = server.config.path, server.ca_file
            # the centre publishes factor libraries (CSMT §11.4) under a key kept in the run
            key_file = workdir / "pki" / f"{c.name}-factor-publisher.pem"
            server.publisher = FactorPublisher.create(c.name, key_file)
            factors_path, publisher_key = server.config.factors_path, public_key_file(key_file)
        endpoints.append(
            CentreEndpoint(
                c.name,
                c.protocol,
                "127.0.0.1",
                proxy.port,
                upload_path,
                ca_file,
                factors_path,
                publisher_key,
            )
        )
    return Rig(
        clock=clock,
        clock_mode=clock_mode,
        fleet=fleet,
        fleet_file=path,
        platforms=platforms,
        proxies=proxies,
        centres=endpoints,
        record=record,
        workdir=workdir,
        seed=spec.seed,
        ca=ca,
        client_ca=client_ca,
    )


async def open_rig(target: Target, *, profile: str, clock_mode: ClockMode, workdir: Path) -> Rig:
    """:func:`running_rig` for a session: closed with ``await rig.close()``."""
    stack = AsyncExitStack()
    try:
        rig = await stack.enter_async_context(
            running_rig(target, profile=profile, clock_mode=clock_mode, workdir=workdir)
        )
    except BaseException:
        await stack.aclose()
        raise
    rig._stack = stack
    return rig
