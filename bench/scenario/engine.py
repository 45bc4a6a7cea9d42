"""Run a scenario: the fleet, the platforms behind fault proxies, the terminal on a disk whose
power the bench holds, all on one virtual clock; play the timeline; check what arrived.

Writes to the run directory:
``timeline.jsonl`` (what happened, virtual and wall time), ``platform-record.sqlite`` (every
frame each centre received), ``terminal.db`` (the terminal's store as its disk kept it),
``truth.csv.gz`` (every value a meter showed, with the plant's truth), ``run.log`` (what the
terminal and the simulators logged, in virtual time) and ``outcome.json``."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import resource
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import httpx

from bench.scenario.config import deep_merge, mn_of, scenario_config
from bench.scenario.cpu import CpuLedger
from bench.scenario.expected import MINUTE_DATA, Acknowledged, Window
from bench.scenario.forked import in_forks
from bench.scenario.interpreter import terminal_interpreter
from bench.scenario.model_link import ModelLink
from bench.scenario.outcome import CentreOutcome, Outcome
from bench.scenario.run_log import run_log
from bench.scenario.target import ReferenceTarget, TargetError
from bench.scenario.truth import TruthFile
from conformance.scenario.schema import Scenario
from conformance.scenario.timeline import Event, expand, meter_faults
from reference_terminal.acquisition.drivers import WIRE
from reference_terminal.api.app import create_app
from reference_terminal.config import TerminalConfig
from simulators.clock import VirtualClock
from simulators.fleet import FleetRuntime
from simulators.fleet.loader import load_fleet
from simulators.fleet.runner import running_fleet
from simulators.fleet.schema import Fleet
from simulators.network import FaultProxyServer
from simulators.network.toxics import parse_toxic
from simulators.platform import (
    CheckResult,
    ExpectedSet,
    PlatformFile,
    Platforms,
    Received,
    Want,
    arrived,
    check,
    running_platforms,
)
from simulators.platform.process import RemotePlatforms, platforms_in_process
from simulators.platform.record import Record
from simulators.power import VolatileMount, power_cut_mode, volatile_mount
from simulators.power.mount import PowerCutMode

#: How often (virtual s) the drain looks whether every centre has everything.
DRAIN_CHECK_S = 300.0
#: How often (virtual s) the timeline notes the wall time spent so far.
PACE_EVERY_S = 3600.0

Progress = Callable[[float, float, str], None]  # (virtual s done, virtual s total, what)


@dataclass
class Run:
    scenario: Scenario
    out: Path
    clock: VirtualClock
    fleet: FleetRuntime
    platforms: Platforms | RemotePlatforms
    proxies: FaultProxyServer
    target: ReferenceTarget
    acknowledged: Acknowledged
    log: TextIO
    wall0: float
    cpu: CpuLedger
    failed_steps: list[str] = field(default_factory=list)

    def note(self, what: str, **detail: Any) -> None:
        entry = {
            "virtual_s": round(self.clock.monotonic(), 3),
            "wall_s": round(time.perf_counter() - self.wall0, 3),
            "what": what,
            **detail,
        }
        self.log.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def centres(self, which: str) -> list[str]:
        return list(self.platforms.centres) if which == "all" else [which]

    async def snapshot(self) -> None:
        """Owe what the terminal has stored by now (``Acknowledged.snapshot``): the instant
        takes no time."""
        if self.target.terminal is not None:
            with self.clock.hold():
                await self.acknowledged.snapshot(self.target.terminal, self.clock.time())

    async def play(self, event: Event) -> None:
        self.note(event.describe())
        match event.action:
            case "link_down" | "link_up":
                for name in self.centres(event.centre):
                    await self.proxies[name].set_enabled(event.action == "link_up")
            case "toxic_on":
                detail = dict(event.detail or {})
                toxic = {
                    "name": detail.pop("name"),
                    "type": detail.pop("type"),
                    "stream": detail.pop("stream"),
                    "toxicity": detail.pop("toxicity"),
                    "attributes": detail,
                }
                for name in self.centres(event.centre):
                    await self.proxies[name].add_toxic(parse_toxic(toxic))
            case "toxic_off":
                for name in self.centres(event.centre):
                    await self.proxies[name].remove_toxic((event.detail or {})["name"])
            case "power_off":
                self.cpu.sample()  # the store's threads end with the cut
                await self.snapshot()  # the cut is an instant; the bookkeeping takes none
                torn_after = (event.detail or {}).get("torn_after")
                if torn_after and self.target.disk is not None:
                    await self.tear(int(torn_after))
                with self.clock.hold():
                    await self.target.power_off()
            case "power_on":
                with self.clock.hold():  # booting takes no scenario time (its real time varies)
                    await self.target.power_on()
                self.note("terminal ready")
            case "platform":
                behaviour = (event.detail or {})["behaviour"]
                for name in self.centres(event.centre):
                    await self.platforms.hj212(name).set_behaviour(behaviour)
            case "clock_jump":
                self.target.rtc.jump(float((event.detail or {})["seconds"]))
            case "operator":
                await self.operate(dict(event.detail or {}))
            case "config":
                changes = (event.detail or {})["set"]
                data = deep_merge(self.target.config.model_dump(mode="json"), changes)
                self.target.config = TerminalConfig.model_validate(data)
                if self.target.terminal is not None:
                    await self.target.terminal.apply_config(self.target.config)

    async def tear(self, after: int) -> None:
        """A cut inside a commit (``ReferenceTarget.tear``)."""
        torn = await self.target.tear(after)
        self.note("torn cut" if torn else "no write to tear: cut", after_writes=after)

    async def operate(self, request: dict[str, Any]) -> None:
        """An operator's request to the terminal's management API (in-process ASGI: the same
        routes, validation and answers as over the network)."""
        expect = request.pop("expect")
        what = f"{request['method']} {request['path']}"
        terminal = self.target.terminal
        if terminal is None:
            status, answer = 0, "the terminal is off"
        else:
            transport = httpx.ASGITransport(app=create_app(terminal))
            async with httpx.AsyncClient(transport=transport, base_url="http://terminal") as api:
                response = await api.request(
                    request["method"], request["path"], json=request.get("body")
                )
            status, answer = response.status_code, response.text[:2000]
        self.note("operator answered", request=what, status=status, answer=answer)
        if status != expect:
            self.failed_steps.append(f"operator {what}: {status} (expected {expect}): {answer}")


def _fleet_spec(scenario: Scenario) -> Fleet:
    spec = load_fleet(scenario.fleet)
    faults = meter_faults(scenario)
    if not faults:
        return spec
    data = spec.model_dump(mode="json")
    data["faults"] = [*data.get("faults", []), *faults]
    return Fleet.model_validate(data)


def _platform_spec(scenario: Scenario) -> PlatformFile:
    """The scenario's centres on free ports (the proxies in front take the terminal)."""
    data = scenario.platforms.model_dump(mode="json")
    for centre in data["centres"]:
        centre["port"] = 0
    return PlatformFile.model_validate(data)


@asynccontextmanager
async def _platforms(
    scenario: Scenario, clock: VirtualClock, out: Path
) -> AsyncIterator[Platforms | RemotePlatforms]:
    """The scenario's centres, recording to the run directory: in this process, or in one
    of their own (``platforms_process``)."""
    spec, path = _platform_spec(scenario), out / "platform-record.sqlite"
    if scenario.platforms_process:
        async with platforms_in_process(spec, clock=clock, record_path=path) as remote:
            yield remote
        return
    with Record(f"sqlite:///{path}") as record:
        clock.bystander(record.writer)  # what arrived is read through flush()
        async with running_platforms(spec, clock=clock, record=record) as platforms:
            yield platforms


def _towards_centres(proxies: FaultProxyServer) -> tuple[tuple[int, int, int], ...]:
    """What the proxies have handed the centres' sockets: connections, and bytes the OS took."""
    return tuple(
        (s.connections_accepted, s.connections_active, s.upstream.bytes_sent - buffered)
        for s, buffered in (
            (proxy.stats, proxy.upstream_buffered()) for proxy in proxies.proxies.values()
        )
    )


def disk_cpus() -> frozenset[int]:
    """The CPU the volatile disk's process shares with the terminal's store threads. On this
    kind of machine a request that crosses to an idle CPU waits for it to wake, which no real
    disk makes a commit wait for (bench_power_fs: 1 781 commits/s across CPUs, 8 798 on one;
    a works-fleet scenario's six virtual hours took 15.0 s of wall time so, 17.8 s not)."""
    cpus = sorted(os.sched_getaffinity(0))
    return frozenset(cpus[-1:]) if len(cpus) > 1 else frozenset()


@asynccontextmanager
async def _disk(out: Path, mode: str) -> AsyncIterator[tuple[Path, VolatileMount | None, str]]:
    """Where the terminal's store lives: a volatile-cache mount, or a plain directory."""
    capability = power_cut_mode()
    if mode == "fuse" and capability.mode is not PowerCutMode.FUSE:
        raise TargetError(f"power.mode fuse: {capability.reason}")
    if mode != "stop" and capability.mode is PowerCutMode.FUSE:
        backing, mountpoint = out / "disk-backing", out / "disk"
        backing.mkdir(parents=True, exist_ok=True)
        mountpoint.mkdir(parents=True, exist_ok=True)
        async with volatile_mount(
            backing, mountpoint, startup_timeout=None, cpus=disk_cpus() or None
        ) as mount:
            yield mountpoint, mount, "fuse"
        return
    plain = out / "disk-backing"
    plain.mkdir(parents=True, exist_ok=True)
    why = "asked for" if mode == "stop" else capability.reason
    yield plain, None, f"stop ({why}): a cut stops the terminal but unsynced writes survive"


async def _drain(run: Run, until: float, *, exact: bool) -> Arrivals:
    """Let backlogs drain until every centre has as many copies as windows are owed (or, if
    ``exact``, every acknowledged window) or ``until``. A count reads only an index; the check
    that follows reads every copy anyway and says whether all have come: only when it finds
    some lost does the drain go on, ``exact`` (a 48-hour run's poll reading every copy as well
    took 2.9 s of its end)."""
    arrivals = Arrivals(run.platforms.record)
    while run.clock.monotonic() < until:
        await run.clock.sleep(min(DRAIN_CHECK_S, until - run.clock.monotonic()))
        if run.target.terminal is None:
            continue
        done = arrivals.complete if exact else arrivals.enough
        if exact:
            await run.snapshot()
        owed = run.acknowledged.windows
        if all(
            done(name, mn_of(i), owed, run.acknowledged.until_local)
            for i, name in enumerate(run.platforms.centres)
        ):
            break
    return arrivals


class Arrivals:
    """What each centre had received at a drain's poll (``Record.copies`` of its minute data
    before the scenario's end), kept for the check while nothing new is recorded: after 48
    hours that is half a million copies a centre, and reading them is most of a check."""

    def __init__(self, record: Record) -> None:
        self.record = record
        self._read: dict[str, tuple[int, datetime, Received]] = {}

    def enough(self, centre: str, mn: str, owed: set[Window], before: datetime) -> bool:
        """Whether ``centre`` has at least as many copies from the terminal with MN ``mn`` as
        it is ``owed`` windows (fewer cannot be all of them; as many may hold duplicates)."""
        copies = self.record.count_readings(centre=centre, mn=mn, cn=MINUTE_DATA, before=before)
        return copies >= len(owed)

    def complete(self, centre: str, mn: str, owed: set[Window], before: datetime) -> bool:
        """Whether ``centre`` has every window ``owed`` by the terminal with MN ``mn``."""
        if not self.enough(centre, mn, owed, before):
            return False
        received = self.received(centre, before)
        return owed <= arrived(received, (mn, MINUTE_DATA))

    def received(self, centre: str, before: datetime) -> Received:
        """Every copy of ``centre``'s minute data with a DataTime before ``before``."""
        kept = self._read.get(centre)
        if kept is not None and kept[:2] == (self.record.additions, before):
            return kept[2]
        additions = self.record.additions
        received = self.record.copies(centre=centre, cn=MINUTE_DATA, before=before)
        self._read[centre] = (additions, before, received)
        return received


def check_centre(
    arrivals: Arrivals, owed: Mapping[Window, Want], centre: str, mn: str, until: datetime
) -> CheckResult:
    """The set check of what ``centre`` received from the terminal with MN ``mn`` (every copy
    of its minute data with a DataTime before ``until``) against the windows ``owed``."""
    expected = ExpectedSet({(mn, MINUTE_DATA): owed})
    return check(expected, arrivals.received(centre, until))


def check_centres(
    arrivals: Arrivals, owed: Mapping[Window, Want], centres: Sequence[str], until: datetime
) -> dict[str, CheckResult]:
    """:func:`check_centre` of each of ``centres`` (the terminal's MN for the i-th is
    ``mn_of(i)``). A record another process can open has each centre after the first checked
    in a forked child that reads its copies itself: the checks run on both cores (a 48-hour
    run's two centres in 2.1 s of wall time against 3.6 s of CPU one after the other,
    ``bench_scenario_check``)."""
    record = arrivals.record
    record.flush()  # the child reads the file: everything recorded must be in it

    def here(i: int, name: str) -> Callable[[], CheckResult]:
        return lambda: check_centre(arrivals, owed, name, mn_of(i), until)

    def apart(i: int, name: str) -> Callable[[], CheckResult]:
        return lambda: check_centre(Arrivals(Record(record.url)), owed, name, mn_of(i), until)

    if record.in_memory:
        return {name: here(i, name)() for i, name in enumerate(centres)}
    record.engine.dispose()  # no connection to the file open across the fork (SQLite's rule)
    calls = [here(0, centres[0])] + [apart(i, name) for i, name in enumerate(centres) if i]
    return dict(zip(centres, in_forks(calls), strict=True))


class RunDirectoryError(RuntimeError):
    """A run directory that already holds something: the terminal would boot on the store an
    earlier run left on its disk, and this run's evidence would mix with that run's."""


async def run_scenario(
    scenario: Scenario, out: Path, *, progress: Progress | None = None
) -> Outcome:
    """Run ``scenario``, write the run directory ``out`` (new or empty), return the outcome."""
    if out.is_dir() and any(out.iterdir()):
        raise RunDirectoryError(
            f"{out}: the run directory is not empty; a scenario starts from a terminal with "
            "an empty store (choose another --out, or remove this one)"
        )
    out.mkdir(parents=True, exist_ok=True)
    wall0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    laps = _Laps(wall0)
    spec = _fleet_spec(scenario)
    clock = VirtualClock(spec.start.timestamp())
    duration = scenario.duration.total_seconds()
    total = duration + scenario.drain.total_seconds()
    events = expand(scenario)
    async with AsyncExitStack() as stack:
        stack.enter_context(terminal_interpreter())
        stack.enter_context(run_log(out / "run.log", clock.time))
        # Setting up takes no scenario time, however much wall time it takes (a server that
        # fills its address space in a thread would otherwise move the clock by its own pace).
        with clock.hold():
            # The fleet's virtual-time economies: a clock step per serial exchange, none per
            # OPC UA refresh nobody reads; no servers at all when the terminal reads the models.
            fleet = await stack.enter_async_context(
                running_fleet(
                    spec,
                    clock=clock,
                    serial_pacing="frame",
                    opcua_refresh="on_read",
                    serve=scenario.meters == "wire",
                )
            )
            fleet.observations = deque()  # the whole run's truth, not the default window
            platforms = await stack.enter_async_context(_platforms(scenario, clock, out))
            proxies = await stack.enter_async_context(
                FaultProxyServer(seed=scenario.seed, clock=clock)
            )
            ports = {}
            for name, centre in platforms.centres.items():
                proxy = await proxies.create_proxy(name, upstream=f"127.0.0.1:{centre.address[1]}")
                ports[name] = proxy.port
            if isinstance(platforms, RemotePlatforms):
                # what the bench sends the centres: every byte, connection and close
                stack.callback(platforms.follow(clock, lambda: _towards_centres(proxies)))
            directory, disk, power_note = await stack.enter_async_context(
                _disk(out, scenario.power.mode)
            )
            config = scenario_config(
                scenario,
                fleet,
                f"sqlite:///{directory / 'terminal.db'}",
                ports,
                store_cpus=disk_cpus() if disk is not None else frozenset(),
            )
            wiring = ModelLink(fleet) if scenario.meters == "model" else WIRE
            target = ReferenceTarget(config, clock, disk, wiring)
            acknowledged = Acknowledged.of(config, clock.time() + duration)
            target.on_durable = acknowledged.note
            log = stack.enter_context(
                (out / "timeline.jsonl").open("w", encoding="utf-8", buffering=1)
            )
            run = Run(
                scenario,
                out,
                clock,
                fleet,
                platforms,
                proxies,
                target,
                acknowledged,
                log,
                wall0,
                laps.cpu,
            )
            run.note(
                "start",
                seed=scenario.seed,
                power=power_note,
                meters=scenario.meters,
                events=len(events),
            )
            await target.power_on()
            run.note("terminal ready")
        laps.done("setup")
        t0 = clock.monotonic()
        truth: TruthFile | None = None
        ticker = asyncio.create_task(_tick(run, t0, total, progress))
        pace = asyncio.create_task(_pace(run))
        try:
            for event in events:
                await clock.sleep_until(t0 + event.at.total_seconds())
                await run.play(event)
            await clock.sleep_until(t0 + duration)
            run.note("end of the timeline")
            laps.done("timeline")
            if not target.powered:
                with clock.hold():
                    await target.power_on()
            arrivals = await _drain(run, t0 + total, exact=False)
            laps.done("drain")
            # The truth observed so far is written beside the check (more is added at the end
            # should the drain go on).
            truth = TruthFile.begin(fleet, out / "truth.csv.gz")
            while True:
                assert target.terminal is not None
                with _collector_paused(), clock.hold():
                    await acknowledged.final_values(target.terminal, target.config)
                    owed, until = acknowledged.owed(), acknowledged.until_local
                    results = check_centres(arrivals, owed, list(platforms.centres), until)
                if not any(r.lost for r in results.values()):
                    run.note("every centre has every acknowledged window")
                    break
                if clock.monotonic() >= t0 + total:
                    break
                run.note("windows still on their way: the drain goes on")
                arrivals = await _drain(run, t0 + total, exact=True)
            # The scenario ends here. Its teardown below may let the clock jump (a thread
            # closing the store looks busy, and the next sleeper can be minutes away).
            virtual = clock.monotonic() - t0
            run.note("checked", **{n: r.summary().splitlines()[0] for n, r in results.items()})
            laps.done("check")
        finally:
            ticker.cancel()
            pace.cancel()
            await target.stop()
            if truth is not None:
                truth.finish()
        if progress is not None:
            progress(virtual, total, "done")
        bytes_dropped = target.bytes_dropped
    _move_store(out / "disk-backing", out)
    laps.done("teardown")
    centres = {name: CentreOutcome.of(result) for name, result in results.items()}
    outcome = Outcome(
        scenario=scenario.name,
        seed=scenario.seed,
        power_cut_mode="fuse" if power_note == "fuse" else "stop",
        power_note=power_note,
        meters=scenario.meters,
        expected=sum(c.expected for c in centres.values()),
        received=sum(c.received for c in centres.values()),
        lost=sum(c.lost for c in centres.values()),
        duplicated=sum(c.duplicated for c in centres.values()),
        unexpected=sum(c.unexpected for c in centres.values()),
        wrong_value=sum(c.wrong_value for c in centres.values()),
        gaps=sum(c.gaps for c in centres.values()),
        power_cuts=target.cuts,
        bytes_dropped_by_cuts=bytes_dropped,
        wall_seconds=round(time.perf_counter() - wall0, 2),
        virtual_seconds=round(virtual, 1),
        clock_steps=clock.steps,
        centres=centres,
        failed_steps=run.failed_steps,
        phases=laps.phases,
        cpu_by_phase=laps.cpu.phases,
        cpu_seconds=round(_cpu_seconds() - cpu0, 1),
        store_busy_s={kind: round(s, 2) for kind, s in target.store_busy_s.items()},
    )
    outcome.write(out / "outcome.json")
    return outcome


class _Laps:
    """The wall seconds of a run's phases, each from the end of the one before, and the CPU
    seconds its threads and children spent in each."""

    def __init__(self, start: float) -> None:
        self.phases: dict[str, float] = {}
        self.cpu = CpuLedger()
        self._last = start

    def done(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = round(now - self._last, 2)
        self.cpu.lap(phase)
        self._last = now


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic collector off: a 48-hour run's check makes two million objects that all
    live until it ends, and its passes over them took 0.75 s of it, to find nothing."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _move_store(disk: Path, out: Path) -> None:
    """The store as the disk kept it, moved out of the backing directory (the mount is gone
    by now; a copy of a 48-hour run's store took a second and as much space again)."""
    for part in disk.glob("terminal.db*"):
        part.replace(out / part.name)


async def _pace(run: Run) -> None:
    """A line in the timeline every virtual hour: how the run's wall time accrues, for anyone
    wondering where a long run's time went."""
    while True:
        await run.clock.sleep(PACE_EVERY_S)
        run.cpu.sample()
        terminal = run.target.terminal
        store = terminal.store if terminal is not None else None
        # the store's work since its boot: settles and transactions are where hours differ
        work = {} if store is None else {"store": asdict(store.stats)}
        run.note(
            "pace",
            clock_steps=run.clock.steps,
            power="on" if run.target.powered else "off",
            **work,
        )


async def _tick(run: Run, t0: float, total: float, progress: Progress | None) -> None:
    if progress is None:
        return
    while True:
        await asyncio.sleep(0.2)  # wall time: progress is for the person watching
        power = "on" if run.target.powered else "OFF"
        progress(run.clock.monotonic() - t0, total, f"power {power}, cuts {run.target.cuts}")
