"""Operations: local status and remote monitoring, remote configuration (an upload address
moved while running), the configuration tool for every protocol, logs of acquisition, upload
and configuration, remote application management, a third-party interface."""

from __future__ import annotations

import copy

import pytest

from conformance.bench import Bench
from conformance.dut import MoveCentre, SetPeriod
from conformance.evidence import TestLog, step
from conformance.verdicts import Inconclusive
from protocols.hj212 import Command

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
    health = await bench.dut.management.health()
    evidence.attach_json("health.json", health)
    assert health.get("state") == "running", f"state {health.get('state')!r}"
    assert float(health.get("uptime_s", 0)) > 0, "no uptime"
    scheduler = health.get("scheduler") or {}
    assert int(scheduler.get("reads", 0)) > 0, f"no acquisition counters: {scheduler}"
    assert "open_gaps" in health, "no list of silent points"
    store = health.get("store") or {}
    assert store.get("durability"), f"the store does not say how it is durable: {store}"


@pytest.mark.clause("ISC-2 §8.2", "CSMT §10.6.2")
@pytest.mark.requires("feature:health")
async def test_remote_monitoring_shows_resources_and_errors(
    bench: Bench, evidence: TestLog
) -> None:
    """Remote monitoring shows CPU, memory, disk, OS type and version, and error logs."""
    await bench.warm()
    health = await bench.dut.management.health()
    evidence.attach_json("health.json", health)
    keys = {k.lower() for k in _keys(health)}
    missing = [what for what, names in MONITORED.items() if not keys & set(names)]
    assert not missing, f"the status shows no {', '.join(missing)} (keys: {sorted(keys)[:30]})"


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
            await bench.dut.configure(MoveCentre(centre, moved.host, moved.port))
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
        await bench.dut.configure(MoveCentre(centre, original.host, original.port))
        await bench.rig.drop_proxy("moved")


@pytest.mark.clause("ISC-2 §7.2.2", "CSMT §11.3", "ISC-2 §7.4.1.4", "ISC-2 §7.1.1 e)")
@pytest.mark.requires("feature:remote-config")
async def test_the_configuration_tool_covers_every_protocol(bench: Bench) -> None:
    """The configuration read out names a device for every declared protocol, is accepted
    back as it is, and a wrong value is refused with the field named."""
    await bench.warm()
    config = await bench.dut.management.config()
    protocols = {str(d.get("protocol")) for d in config.get("devices", [])}
    declared = set(bench.dut.target.implementation.protocols)
    assert declared <= protocols, f"no device configured for {sorted(declared - protocols)}"
    valid = await bench.dut.management.request("POST", "/config/validate", json=config)
    assert valid.status_code == 200, f"its own configuration refused: {valid.text[:300]}"
    broken = copy.deepcopy(config)
    broken["groups"][0]["period_s"] = 0
    refused = await bench.dut.management.request("POST", "/config/validate", json=broken)
    assert refused.status_code == 422, f"a period of 0 s answered {refused.status_code}"
    assert "period_s" in refused.text, f"the refusal does not name the field: {refused.text[:300]}"


@pytest.mark.clause("CSMT §11.12")
async def test_logs_of_acquisition_upload_and_configuration(
    bench: Bench, evidence: TestLog
) -> None:
    """The terminal logs acquisition problems, upload commands and configuration changes."""
    await bench.warm()
    start = bench.now()
    serial = [
        b
        for b in bench.points(acquisition="polled")
        if bench.fleet_meter(b) and b.protocol in ("dlt645-2007", "cjt188", "modbus-rtu")
    ]
    if not serial:
        raise Inconclusive("no serial meter to silence", "CSMT §11.12")
    meter = serial[0].meter
    assert meter is not None
    period = float(bench.dut.target.parameters.periods.get(serial[0].group, 60))
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
        await bench.dut.configure(SetPeriod(group, float(seconds)))
    await bench.wait(5)
    events = [e for e in await bench.dut.management.events(start=start - 1)]
    trail = await bench.dut.management.request("GET", "/audit", params={"start": repr(start - 1)})
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


@pytest.mark.clause("ISC-2 §8.4", "CSMT §10.6.4", "ISC-2 §4.3")
@pytest.mark.requires("feature:remote-upgrade")
async def test_applications_are_managed_remotely(bench: Bench) -> None:
    """The terminal lists its applications with versions for remote install and upgrade."""
    await bench.warm()
    response = await bench.dut.management.request("GET", "/apps")
    assert response.status_code == 200, f"GET /apps answered {response.status_code}"
    apps = response.json()
    assert apps and all("version" in a for a in apps), apps


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
