"""Operations: local status and remote monitoring (resources, application state, acquisition
per point, upload per centre, an error made and seen), remote configuration (an upload address
moved while running; a change validated, logged and applied without a restart), the
configuration tool for every protocol, logs of acquisition, upload and configuration, remote
application management (signature check, install, upgrade, rollback, uninstall, without
touching the data or stopping acquisition), a third-party interface."""

from __future__ import annotations

import base64
import copy
import hashlib
import math
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest

from conformance.bench import Bench
from conformance.dut import AppPackage, MoveCentre, PointBinding, SetPeriod, SetRange
from conformance.evidence import TestLog, step
from conformance.management import OPERATOR
from conformance.verdicts import Inconclusive
from protocols.hj212 import Command

REFUSED = (401, 403)

#: ISC-2 §8.2: what remote monitoring shows, with the names a status document may use.
MONITORED = {
    "CPU": ("cpu", "cpu_percent", "load"),
    "memory": ("memory", "mem", "memory_percent"),
    "disk": ("disk", "disk_free", "storage_free"),
    "OS type and version": ("os", "os_version", "system"),
    "error log": ("errors", "error_log", "log"),
}


@pytest.mark.clause("ISC-2 §8.1", "CSMT §10.6.1")
@pytest.mark.requires("feature:health")
async def test_local_status_at_a_glance(bench: Bench, evidence: TestLog) -> None:
    """The terminal says whether it runs, for how long, how acquisition goes, which points are
    silent and how its store makes data durable."""
    await bench.warm()
    health = await _health_once_acquiring(bench)
    evidence.attach_json("health.json", health)
    assert health.get("state") == "running", f"state {health.get('state')!r}"
    assert float(health.get("uptime_s", 0)) > 0, "no uptime"
    scheduler = health.get("scheduler") or {}
    assert int(scheduler.get("reads", 0)) > 0, f"no acquisition counters: {scheduler}"
    assert "open_gaps" in health, "no list of silent points"
    store = health.get("store") or {}
    assert store.get("durability"), f"the store does not say how it is durable: {store}"


async def _health_once_acquiring(bench: Bench) -> dict[str, Any]:
    """``/health`` once acquisition has read since it last started. A configuration put back
    (the storage suite's round trip) or a power-on restarts acquisition with its counters at
    zero, and its first tick is the next period boundary: until then no reads is the truth,
    not a missing counter."""
    periods = [float(p) for p in bench.dut.target.parameters.periods.values()] or [60.0]
    health: dict[str, Any] = {}

    async def read_since_start() -> bool:
        nonlocal health
        health = await bench.management.health()
        scheduler = health.get("scheduler") or {}
        return health.get("state") == "running" and int(scheduler.get("reads", 0)) > 0

    await bench.until(read_since_start, within=2 * max(periods) + 30, every=5)
    return health


@pytest.mark.clause("ISC-2 §8.2", "CSMT §10.6.2")
@pytest.mark.requires("feature:health")
async def test_remote_monitoring_shows_resources_and_errors(
    bench: Bench, evidence: TestLog
) -> None:
    """Remote monitoring shows CPU, memory, disk, OS type and version, the application's state,
    acquisition per point, upload per centre, and an error log that shows an error as it
    happens (a meter made silent)."""
    await bench.warm()
    management = bench.management
    document = await management.monitor()
    if document is None:  # no /monitor: a terminal may show it all in its status
        document = await management.health()
        evidence.attach_json("health.json", document)
        keys = {k.lower() for k in _keys(document)}
        missing = [what for what, names in MONITORED.items() if not keys & set(names)]
        assert not missing, f"the status shows no {', '.join(missing)} (keys: {sorted(keys)[:30]})"
        raise Inconclusive(
            "the terminal serves no /monitor: its status names the resources, but acquisition "
            "per point, upload per centre and the error log cannot be judged",
            "ISC-2 §8.2",
        )
    evidence.attach_json("monitor.json", document)
    keys = {k.lower() for k in _keys(document)}
    missing = [what for what, names in MONITORED.items() if not keys & set(names)]
    assert not missing, f"/monitor shows no {', '.join(missing)} (keys: {sorted(keys)[:30]})"
    problems = _monitor_problems(document, bench)
    assert not problems, "; ".join(problems)

    serial = _silenceable(bench)
    if serial is None:
        raise Inconclusive("no serial meter to silence: the error log is not judged", "ISC-2 §8.2")
    meter = serial.meter
    assert meter is not None
    period = float(bench.dut.target.parameters.periods.get(serial.group, 60))
    since = bench.now()
    with step(f"{meter} ({serial.point}) falls silent for {3 * period:g} s"):
        fault = bench.rig.meter_fault(meter, "no_answer", seconds=3 * period)
        try:
            await bench.wait(2.5 * period)
            during = await management.monitor() or {}
        finally:
            bench.rig.clear_fault(fault)
    evidence.attach_json("monitor-during-fault.json", during)
    errors = [
        e
        for e in (during.get("error_log") or {}).get("items", [])
        if float(e.get("t", 0)) >= since - 1
    ]
    evidence.attach_json("errors-since-fault.json", errors)
    named = [e for e in errors if serial.point in str(e) or meter in str(e)]
    assert named, (
        f"the error log shows nothing about {serial.point} ({meter}) silent for "
        f"{2.5 * period:g} s ({len(errors)} entries since)"
    )
    health = _by(during.get("acquisition", {}).get("points", []), "point").get(serial.point, {})
    flagged = [
        k
        for k in ("silent_since", "overdue", "gaps_24h", "problems_24h", "device_failures")
        if health.get(k)
    ]
    assert flagged, f"the acquisition health of {serial.point} shows no trouble: {health}"


def _silenceable(bench: Bench) -> PointBinding | None:
    serial = [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b) and b.protocol in ("dlt645-2007", "cjt188", "modbus-rtu")
    ]
    return serial[0] if serial else None


def _by(items: Sequence[Mapping[str, Any]], key: str) -> dict[str, Mapping[str, Any]]:
    return {str(i.get(key)): i for i in items if isinstance(i, Mapping)}


def _number(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _monitor_problems(document: Mapping[str, Any], bench: Bench) -> list[str]:
    """What the carbench profile's /monitor document lacks or gets wrong."""
    problems = []
    system = document.get("system") or {}
    cpu = _number((system.get("cpu") or {}).get("percent"))
    if cpu is None or not 0 <= cpu <= 100:
        problems.append(f"system.cpu.percent is not a share of 0-100: {system.get('cpu')}")
    memory = _number((system.get("memory") or {}).get("total_bytes"))
    if not memory or memory <= 0:
        problems.append(f"system.memory.total_bytes missing: {system.get('memory')}")
    disks = system.get("disk") or []
    if not any((_number(d.get("total_bytes")) or 0) > 0 for d in disks):
        problems.append(f"system.disk shows no disk with its size: {disks}")
    os_ = system.get("os") or {}
    if not (os_.get("type") and os_.get("release")):
        problems.append(f"system.os lacks the OS type or version: {os_}")
    application = document.get("application") or {}
    if application.get("state") != "running":
        problems.append(f"application.state is {application.get('state')!r}, not running")
    if not (_number(application.get("uptime_s")) or 0) > 0:
        problems.append("application.uptime_s missing")
    points = _by((document.get("acquisition") or {}).get("points", []), "point")
    polled = [b.point for b in bench.points(acquisition="polled")]
    unseen = [p for p in polled if p not in points]
    if unseen:
        problems.append(f"acquisition.points lacks {unseen[:5]}")
    stale = [p for p in polled if p in points and points[p].get("last_t") is None]
    if stale:
        problems.append(f"acquisition.points show no last reading for {stale[:5]}")
    centres = _by((document.get("upload") or {}).get("centres", []), "name")
    for centre in bench.rig.centres:
        shown = centres.get(centre.name)
        if shown is None:
            problems.append(f"upload.centres lacks {centre.name}")
        elif "connected" not in shown or "backlog" not in shown:
            problems.append(f"upload.centres[{centre.name}] lacks connected or backlog: {shown}")
    if not isinstance((document.get("error_log") or {}).get("items"), list):
        problems.append("error_log.items is not a list")
    return problems


def _keys(data: object) -> set[str]:
    if isinstance(data, dict):
        out = set(map(str, data))
        for value in data.values():
            out |= _keys(value)
        return out
    if isinstance(data, list):
        return set().union(*(_keys(v) for v in data)) if data else set()
    return set()


@pytest.mark.clause("ISC-2 §8.3", "CSMT §10.6.3", "ISC-2 §7.2.4(3)")
@pytest.mark.requires("feature:remote-config")
async def test_an_upload_address_is_changed_remotely(bench: Bench, evidence: TestLog) -> None:
    """A centre's upload address changed through the management interface takes effect while
    the terminal runs: the uploads go to the new address."""
    await bench.warm()
    centre = (
        bench.rig.hj212_centres()[0] if bench.rig.hj212_centres() else bench.rig.centres[0].name
    )
    original = bench.rig.centre(centre)
    moved = await bench.rig.extra_proxy("moved", centre)
    try:
        with step(f"move {centre} to {moved.host}:{moved.port}"):
            await bench.configure(MoveCentre(centre, moved.host, moved.port))
            since = bench.now()
            await bench.wait(300)
        stats = bench.rig.proxies["moved"].stats
        evidence.attach_json("moved-proxy.json", {"accepted": stats.connections_accepted})
        arrived = [
            f for f in bench.frames_in(centre, since=since) if f.cn == int(Command.MINUTE_DATA)
        ]
        assert stats.connections_accepted > 0, "the terminal never dialled the new address"
        assert arrived, "no minute data reached the centre through its new address"
    finally:
        await bench.configure(MoveCentre(centre, original.host, original.port))
        await bench.rig.drop_proxy("moved")


@pytest.mark.clause("ISC-2 §8.3", "CSMT §10.6.3", "CSMT §11.12")
@pytest.mark.requires("feature:remote-config")
async def test_a_remote_change_is_validated_logged_and_applied_without_restart(
    bench: Bench, evidence: TestLog
) -> None:
    """A wrong value is refused and the running configuration stays as it was; a valid change
    (a point's range) is applied while the terminal runs: it does not restart, acquisition
    goes on, the configuration read back shows it, and the configuration log records it."""
    await bench.warm()
    management = bench.management
    gauges = [b for b in bench.points(acquisition="polled") if b.kind == "gauge"]
    if not gauges:
        raise Inconclusive("no polled gauge point to change the range of", "ISC-2 §8.3")
    binding = gauges[0]
    period = float(bench.dut.target.parameters.periods.get(binding.group, 60))
    before = await management.config()
    original: dict[str, Any] = next(
        (p for p in before.get("points", []) if p.get("id") == binding.point), {}
    )
    uptime = float((await management.health()).get("uptime_s", 0))
    start = bench.now()
    with step("a period of 0 s is refused"):
        broken = copy.deepcopy(before)
        broken["groups"][0]["period_s"] = 0
        refused = await management.request("PUT", "/config", json=broken)
        after_refusal = await management.config()
    assert refused.status_code == 422, f"a period of 0 s answered {refused.status_code}"
    assert after_refusal == before, "a refused configuration changed the running one"
    low, high = Decimal("-1000000000"), Decimal("1000000000")
    try:
        with step(f"{binding.point}'s range set to [{low}, {high}]"):
            await bench.configure(SetRange(binding.point, low, high))
        await bench.wait(3 * period)
        shown = await management.config()
        point: dict[str, Any] = next(
            (p for p in shown.get("points", []) if p.get("id") == binding.point), {}
        )
        assert Decimal(str(point.get("min"))) == low and Decimal(str(point.get("max"))) == high, (
            f"the configuration read back does not show the new range: {point}"
        )
        later = float((await management.health()).get("uptime_s", 0))
        elapsed = bench.now() - start
        evidence.record_measurement("uptime before", uptime)
        evidence.record_measurement("uptime after", later)
        assert later >= uptime + elapsed - 1, (
            f"the terminal restarted: uptime {uptime:.0f} s before, {later:.0f} s "
            f"{elapsed:.0f} s later"
        )
        readings = await management.readings(binding.point, start=start)
        assert len(readings) >= 2, (
            f"acquisition of {binding.point} did not go on after the change: "
            f"{len(readings)} readings in {elapsed:.0f} s"
        )
    finally:
        restore = (original.get("min"), original.get("max"))
        await bench.configure(
            SetRange(
                binding.point,
                None if restore[0] is None else Decimal(str(restore[0])),
                None if restore[1] is None else Decimal(str(restore[1])),
            )
        )
    logged = await management.logs("configuration", start=start - 1)
    if logged is None:  # no /logs: the audit trail is the configuration log
        trail = await management.request("GET", "/audit", params={"start": repr(start - 1)})
        audited = trail.json().get("items", []) if trail.status_code == 200 else []
        audit = [a for a in audited if "config" in str(a.get("type", ""))]
        evidence.attach_json("configuration-audit.json", audit)
        assert audit, "no configuration log entry (no /logs, nothing in /audit) for the change"
        return
    evidence.attach_json("configuration-log.json", logged)
    assert logged, "no configuration log entry for the change"
    assert any(binding.point in str(entry) for entry in logged), (
        f"the configuration log does not say what changed ({binding.point}): {logged[:3]}"
    )


@pytest.mark.clause("ISC-2 §7.2.2", "CSMT §11.3", "ISC-2 §7.4.1.4(3)", "ISC-2 §7.1.1 e)")
@pytest.mark.requires("feature:remote-config")
async def test_the_configuration_tool_covers_every_protocol(bench: Bench) -> None:
    """The configuration read out names a device for every declared protocol, is accepted
    back as it is, and a wrong value is refused with the field named."""
    await bench.warm()
    config = await bench.management.config()
    protocols = {str(d.get("protocol")) for d in config.get("devices", [])}
    # a 4–20 mA input is a point of an I/O module (a Modbus device), not a device of its own
    protocols |= {b.protocol for b in bench.dut.points() if b.protocol}
    declared = set(bench.dut.target.implementation.protocols)
    assert declared <= protocols, f"nothing configured for {sorted(declared - protocols)}"
    valid = await bench.management.request("POST", "/config/validate", json=config)
    assert valid.status_code == 200, f"its own configuration refused: {valid.text[:300]}"
    broken = copy.deepcopy(config)
    broken["groups"][0]["period_s"] = 0
    refused = await bench.management.request("POST", "/config/validate", json=broken)
    assert refused.status_code == 422, f"a period of 0 s answered {refused.status_code}"
    assert "period_s" in refused.text, f"the refusal does not name the field: {refused.text[:300]}"


@pytest.mark.clause("CSMT §11.12")
async def test_logs_of_acquisition_upload_and_configuration(
    bench: Bench, evidence: TestLog
) -> None:
    """The terminal logs acquisition problems, upload (links, commands) and configuration
    changes, and answers a query of its logs by category (``/logs``; a terminal without it is
    judged on its events and audit trail). Method download is judged where accounting is
    declared."""
    await bench.warm()
    start = bench.now()
    serial = _silenceable(bench)
    if serial is None:
        raise Inconclusive("no serial meter to silence", "CSMT §11.12")
    meter = serial.meter
    assert meter is not None
    period = float(bench.dut.target.parameters.periods.get(serial.group, 60))
    with step(f"{meter} falls silent for {3 * period:g} s"):
        fault = bench.rig.meter_fault(meter, "no_answer", seconds=3 * period)
        await bench.wait(4 * period)
        bench.rig.clear_fault(fault)
    centres = bench.rig.hj212_centres()
    if centres:
        mn = bench.dut.mn(centres[0])
        server = bench.rig.platforms.hj212(centres[0])
        await server.wait_connected(mn, 900)
        await server.commands(mn, timeout=300).get_rtd_interval()
    groups = bench.dut.target.parameters.periods
    with step("change the configuration (a period set to what it is)"):
        group, seconds = next(iter(groups.items()))
        await bench.configure(SetPeriod(group, float(seconds)))
    await bench.wait(5)
    management = bench.management
    logs = {
        category: await management.logs(category, start=start - 1)
        for category in ("acquisition", "upload", "configuration")
    }
    if all(found is not None for found in logs.values()):
        evidence.attach_json("logs.json", logs)
        missing = [category for category, found in logs.items() if not found]
        assert not missing, f"no {', '.join(missing)} log entries since the test began"
        about = [e for e in logs["acquisition"] or [] if e.get("point") == serial.point]
        assert about, f"the acquisition log says nothing about {serial.point} falling silent"
        return
    events = list(await management.events(start=start - 1))
    trail = await management.request("GET", "/audit", params={"start": repr(start - 1)})
    audited = trail.json().get("items", []) if trail.status_code == 200 else []
    kinds = sorted({e.kind for e in events} | {f"audit:{a.get('type')}" for a in audited})
    evidence.attach_json("log-kinds.json", kinds)
    acquisition = [e for e in events if e.kind in ("gap", "switch_to_backup", "interpolated")]
    upload = [e for e in events if e.kind.startswith("uplink") or "upload" in e.kind]
    configuration = [
        e for e in events if "config" in e.kind or "config" in " ".join(e.details.values())
    ] + [a for a in audited if "config" in str(a.get("type", ""))]
    missing = [
        name
        for name, found in (
            ("acquisition", acquisition),
            ("upload", upload),
            ("configuration", configuration),
        )
        if not found
    ]
    assert not missing, f"no {', '.join(missing)} log entries (kinds: {kinds})"


@pytest.mark.clause("ISC-2 §8.4", "CSMT §10.6.4")
@pytest.mark.requires("feature:remote-upgrade")
async def test_applications_are_listed_with_versions(bench: Bench, evidence: TestLog) -> None:
    """The terminal lists its applications with their versions."""
    await bench.warm()
    apps = await bench.management.apps()
    evidence.attach_json("apps.json", apps)
    assert apps, "GET /apps lists nothing (not even the terminal's own program)"
    unversioned = [a.get("name") for a in apps if not a.get("version")]
    assert not unversioned, f"applications without a version: {unversioned}"


def _tampered(package: AppPackage) -> bytes:
    """The package with one byte of its content changed (its signature kept)."""
    data = bytearray(package.package)
    middle = len(data) // 2
    data[middle] ^= 0x01
    return bytes(data)


@pytest.mark.clause("ISC-2 §8.4", "CSMT §10.6.4", "ISC-2 §7.4.1.2(2)")
@pytest.mark.requires("feature:remote-upgrade")
async def test_only_signed_applications_are_installed(bench: Bench, evidence: TestLog) -> None:
    """A package changed after signing, or signed for another package, is refused and not
    installed; an operator who is not the administrator cannot install one."""
    await bench.warm()
    management = bench.management
    packages = bench.dut.app_packages()
    first = packages.first
    answers = {}
    with step("a package changed after it was signed"):
        answers["tampered"] = await management.install_app(_tampered(first), first.signature)
    with step("a package with another package's signature"):
        answers["wrong signature"] = await management.install_app(
            first.package, packages.upgrade.signature
        )
    if management.account(OPERATOR) is not None and management.account("administrator"):
        with step("the security operator installs a signed package"):
            answers["as security operator"] = await management.request(
                "POST",
                "/apps",
                as_role=OPERATOR,
                json={
                    "package": _b64(first.package),
                    "signature": _b64(first.signature),
                },
            )
    evidence.attach_json(
        "answers.json", {k: [r.status_code, r.text[:300]] for k, r in answers.items()}
    )
    listed = {a.get("name"): a for a in await management.apps()}
    installed = first.name in listed
    if installed:  # leave the terminal as it was for the next test
        await management.uninstall_app(first.name)
    accepted = [k for k, r in answers.items() if r.status_code < 400]
    assert not accepted, f"accepted: {accepted}"
    if "as security operator" in answers:
        assert answers["as security operator"].status_code in REFUSED, (
            "the security operator's install was refused for another reason than its role: "
            f"{answers['as security operator'].status_code}"
        )
    assert not installed, f"{first.name} is installed after the refused packages"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def _digest(bench: Bench, points: Sequence[str], end: float) -> tuple[str, int]:
    """SM-independent fingerprint of what the terminal stored for ``points`` before ``end``."""
    sha = hashlib.sha256()
    n = 0
    for point in points:
        for r in await bench.management.readings(point, end=end):
            sha.update(f"{r.point}|{r.t!r}|{r.raw}|{r.value}|{r.quality}|{r.digits}\n".encode())
            n += 1
    return sha.hexdigest(), n


@pytest.mark.clause("ISC-2 §8.4", "CSMT §10.6.4", "ISC-2 §4.3")
@pytest.mark.requires("feature:remote-upgrade")
async def test_applications_are_installed_upgraded_and_rolled_back_without_touching_data(
    bench: Bench, evidence: TestLog
) -> None:
    """An application is installed, upgraded, a broken upgrade rolled back and the application
    uninstalled, all remotely, while acquisition goes on without a gap, and what the terminal
    stored before is exactly as it was (no emission data changed)."""
    await bench.history(300)
    management = bench.management
    packages = bench.dut.app_packages()
    name = packages.first.name
    polled = [b for b in bench.points(acquisition="polled") if bench.fleet_meter(b)][:6]
    if not polled:
        raise Inconclusive("no polled point to watch acquisition on", "ISC-2 §4.3")
    start = bench.now()
    before, stored = await _digest(bench, [b.point for b in polled], start)
    evidence.record_measurement("readings stored before", stored)
    versions: dict[str, Any] = {}
    try:
        with step(f"install {name} {packages.first.version}"):
            installed = await management.install_app(
                packages.first.package, packages.first.signature
            )
            assert installed.status_code < 300, f"install refused: {installed.text[:300]}"
            versions["installed"] = _listed(await management.apps(), name)
        assert versions["installed"].get("version") == packages.first.version, versions
        with step(f"upgrade to {packages.upgrade.version}"):
            upgraded = await management.upgrade_app(
                name, packages.upgrade.package, packages.upgrade.signature
            )
            assert upgraded.status_code < 300, f"upgrade refused: {upgraded.text[:300]}"
            versions["upgraded"] = _listed(await management.apps(), name)
        assert versions["upgraded"].get("version") == packages.upgrade.version, versions
        broken = packages.broken
        if broken is not None:
            with step(f"upgrade to {broken.version}, which fails to start"):
                failed = await management.upgrade_app(name, broken.package, broken.signature)
                versions["after failed upgrade"] = _listed(await management.apps(), name)
            evidence.attach_json("failed-upgrade.json", [failed.status_code, failed.text[:500]])
            assert failed.status_code >= 400, "an upgrade that cannot start was accepted"
            back = versions["after failed upgrade"]
            assert back.get("version") == packages.upgrade.version, (
                f"not rolled back to {packages.upgrade.version}: {back}"
            )
            assert back.get("state", "running") == "running", f"the rolled-back app: {back}"
        with step(f"uninstall {name}"):
            removed = await management.uninstall_app(name)
            assert removed.status_code < 300, f"uninstall refused: {removed.text[:300]}"
            versions["uninstalled"] = _listed(await management.apps(), name)
        assert not versions["uninstalled"], f"{name} still listed after it was uninstalled"
    finally:
        evidence.attach_json("versions.json", versions)
        if _listed(await management.apps(), name):
            await management.uninstall_app(name)
    longest = max(float(bench.dut.target.parameters.periods.get(b.group, 60)) for b in polled)
    await bench.wait(2 * longest)
    end = bench.now()
    after, still = await _digest(bench, [b.point for b in polled], start)
    assert (after, still) == (before, stored), (
        f"what was stored before the installs changed: {stored} readings then, {still} now"
    )
    short = []
    for b in polled:
        period = float(bench.dut.target.parameters.periods.get(b.group, 60))
        got = len(await management.readings(b.point, start=start, end=end))
        due = math.floor((end - start) / period) - 1
        if got < due:
            short.append(f"{b.point}: {got} readings, {due} due")
    gaps = [
        e
        for e in await management.events(kind="gap", start=start, end=end)
        if e.point in {b.point for b in polled}
    ]
    evidence.record_measurement("window s", end - start)
    assert not short, f"acquisition paused while applications changed: {short}"
    assert not gaps, f"acquisition gaps while applications changed: {gaps[:3]}"


def _listed(apps: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any]:
    return next((dict(a) for a in apps if a.get("name") == name), {})


@pytest.mark.clause("CSMT §11.13")
@pytest.mark.requires("transport:https")
async def test_a_third_party_platform_gets_data_authenticated_and_encrypted(
    bench: Bench,
) -> None:
    """A third-party platform receives the data over TLS with the terminal's credentials."""
    await bench.history(300)
    https = [c for c in bench.rig.centres if c.protocol == "https"]
    if not https:
        raise Inconclusive("the target lists no HTTPS (third-party) centre", "CSMT §11.13")
    centre = https[0]
    frames = bench.rig.record.frames(centre=centre.name, direction="in")
    assert frames, f"nothing reached {centre.name}"
    assert all(f.ok for f in frames), "some uploads were refused (credentials or form)"
    assert centre.ca_file is not None, "the centre does not use TLS"
    assert all(f'"PW":"{bench.dut.pw(centre.name)}"' in f.raw.replace(" ", "") for f in frames), (
        "uploads without the terminal's password"
    )
