"""Security, as far as the management interface exposes it: authentication and least
privilege, login-failure lockout, the audit trail, validation of every input, secrets kept
out of what is read back, certificates and SM algorithms towards the platforms."""

from __future__ import annotations

import pytest

from conformance.bench import Bench
from conformance.evidence import TestLog, step
from conformance.verdicts import Inconclusive
from protocols.hj212 import Command

#: ISC-2 §7.4.1.1: failed logins before an account locks (a terminal may lock sooner).
LOCKOUT_AFTER = 5
REFUSED = (401, 403)


@pytest.mark.clause(
    "ISC-2 §7.4.1.1", "ISC-2 §7.4.1.1(1)", "ISC-2 §7.4.1.2", "ISC-2 §7.4.1.2(2)", "SSEA §5.5.3"
)
async def test_the_management_interface_refuses_strangers(bench: Bench, evidence: TestLog) -> None:
    """Without credentials, nobody reads the configuration or changes it."""
    await bench.warm()
    management = bench.dut.management
    read = await management.request("GET", "/config", authenticated=False)
    config = await management.config()
    write = await management.request("PUT", "/config", authenticated=False, json=config)
    evidence.attach_json(
        "answers.json", {"GET /config": read.status_code, "PUT /config": write.status_code}
    )
    assert write.status_code in REFUSED, (
        f"a configuration change without credentials answered {write.status_code}"
    )
    assert read.status_code in REFUSED, (
        f"the configuration was read without credentials ({read.status_code})"
    )


@pytest.mark.clause("ISC-2 §7.4.1.1", "ISC-2 §7.4.1.1(2)")
async def test_repeated_login_failures_lock_the_account(bench: Bench, evidence: TestLog) -> None:
    """After repeated failed logins the account is locked: even the right password is refused."""
    await bench.warm()
    management = bench.dut.management
    probe = await management.request(
        "POST", "/auth/login", authenticated=False, json={"user": "carbench", "password": "x"}
    )
    assert probe.status_code not in (404, 405), "the terminal has no login (POST /auth/login)"
    user, password = management.user, management.password
    if user is None or password is None:
        raise Inconclusive(
            "the target gives no user and password to test the lockout with", "ISC-2 §7.4.1.1"
        )
    answers = []
    with step(f"{LOCKOUT_AFTER + 1} logins with a wrong password"):
        for n in range(LOCKOUT_AFTER + 1):
            wrong = await management.request(
                "POST",
                "/auth/login",
                authenticated=False,
                json={"user": user, "password": f"wrong{n}"},
            )
            answers.append(wrong.status_code)
    right = await management.request(
        "POST", "/auth/login", authenticated=False, json={"user": user, "password": password}
    )
    evidence.attach_json("answers.json", {"wrong": answers, "right": right.status_code})
    assert all(a >= 400 for a in answers), f"a wrong password was accepted: {answers}"
    assert right.status_code >= 400, "the right password still logs in after the failures"


@pytest.mark.clause("ISC-2 §7.4.1.3", "ISC-2 §7.4.1.3(1)", "ISC-2 §7.4.1.3(2)", "ISC-2 §7.4.1.3(4)")
@pytest.mark.requires("feature:manual-backfill")
async def test_audit_records_time_user_type_and_outcome(bench: Bench, evidence: TestLog) -> None:
    """An operator's action is audited with its time, the user, what it was and its outcome,
    and the audit cannot be deleted entry by entry."""
    await bench.history(600)
    start = bench.now()
    end = start - 300
    await bench.dut.management.backfill("minute", end - 120, end - 60, "conformance: audit probe")
    audits = [e for e in await bench.dut.management.events(kind="audit", start=start - 1)]
    evidence.attach_json("audit.json", [{"kind": e.kind, "t": e.t, **e.details} for e in audits])
    assert audits, "the backfill left no audit record"
    record = audits[-1]
    fields = {k.lower() for k in record.details}
    missing = [
        name
        for name, keys in (
            ("user", {"user", "operator", "principal"}),
            ("type", {"action", "type", "event"}),
            ("outcome", {"outcome", "result", "status"}),
        )
        if not fields & keys
    ]
    assert not missing, f"the audit record lacks {', '.join(missing)}: {dict(record.details)}"
    deleted = await bench.dut.management.request("DELETE", "/events", params={"kind": "audit"})
    after = await bench.dut.management.events(kind="audit", start=start - 1)
    assert deleted.status_code >= 400 and len(after) >= len(audits), (
        f"audit entries could be deleted ({deleted.status_code})"
    )


@pytest.mark.clause("ISC-2 §7.4.1.4", "ISC-2 §7.4.1.4(3)")
async def test_every_input_is_validated(bench: Bench, evidence: TestLog) -> None:
    """Malformed input is refused with the field named: a time without a zone, a value given
    as a JSON number, an unknown point."""
    await bench.warm()
    management = bench.dut.management
    point = bench.points(acquisition="polled")[0].point
    answers = {
        "time without zone": await management.request(
            "GET", f"/points/{point}/readings", params={"start": "2026-01-01T00:00:00"}
        ),
        "value as a number": await management.request(
            "POST", "/manual", json={"point": point, "value": 1.5, "operator": "carbench"}
        ),
        "unknown point": await management.request("GET", "/points/no.such.point/latest"),
    }
    evidence.attach_json(
        "answers.json", {k: [r.status_code, r.text[:200]] for k, r in answers.items()}
    )
    accepted = [name for name, r in answers.items() if r.status_code < 400]
    assert not accepted, f"accepted: {accepted}"
    unnamed = [
        name
        for name, r in answers.items()
        if r.status_code == 422 and not any(w in r.text for w in ("start", "value", "point"))
    ]
    assert not unnamed, f"refused without naming the field: {unnamed}"


@pytest.mark.clause("ISC-2 §7.4.1.4", "ISC-2 §7.4.1.4(2)")
async def test_secrets_are_not_read_back_in_clear(bench: Bench, evidence: TestLog) -> None:
    """The platform passwords the terminal holds are not handed out in clear by its
    management interface."""
    await bench.warm()
    response = await bench.dut.management.request("GET", "/config")
    if response.status_code in REFUSED:
        raise Inconclusive("the configuration could not be read with the target's credentials")
    text = response.text
    secrets = {bench.dut.pw(c.name) for c in bench.rig.centres}
    leaked = [s for s in secrets if f'"{s}"' in text]
    evidence.record_measurement("leaked", len(leaked))
    assert not leaked, "the configuration read back shows the centres' passwords in clear"


@pytest.mark.clause("ISC-2 §7.4.1")
@pytest.mark.requires("feature:pki")
async def test_platform_connections_use_certificates(bench: Bench) -> None:
    """The terminal reaches the platforms with certificates (the HTTPS centres verify it)."""
    await bench.warm()
    https = [c for c in bench.rig.centres if c.protocol == "https"]
    assert https, "no certificate-based centre to judge against"
    frames = bench.rig.record.frames(centre=https[0].name, direction="in")
    assert frames and all(f.ok for f in frames), "uploads refused by the verifying centre"


@pytest.mark.clause("ISC-2 §7.4.2", "ISC-2 §7.4.2.1bis", "CSMT §7.4", "SSEA §5.1.5.2", "CSMT §12.3")
@pytest.mark.requires("feature:sm-crypto")
async def test_uploads_are_signed_with_sm2(bench: Bench) -> None:
    """Every upload carries an SM2 signature a platform can check (GB/T 37025)."""
    await bench.history(300)
    centre = bench.rig.hj212_centres()[0]
    rows = bench.readings(centre, int(Command.MINUTE_DATA), since=bench.t0)
    assert rows, "no minute data to look at"
    unsigned = [r for r in rows if not ({"Sign", "SM2Sign"} & set(r.fields))]
    assert not unsigned, f"{len(unsigned)} uploads without an SM2 signature"


@pytest.mark.clause(
    "ISC-2 §7.4.1.3(5) a)", "ISC-2 §7.4.1.3(5) b)", "ISC-2 §7.4.1.3(5) c)", "CSMT §11.12"
)
@pytest.mark.requires("feature:export", "feature:manual-backfill")
async def test_the_audit_log_is_searched_sorted_and_exported(
    bench: Bench, evidence: TestLog
) -> None:
    """The audit log answers a query by combined conditions (kind and time range), in time
    order, and exports as a file."""
    await bench.history(600)
    end = bench.now() - 120
    reason = "conformance: audit search probe"
    await bench.dut.management.backfill("minute", end - 240, end - 180, reason)
    start = bench.now() - 1
    await bench.wait(5)
    found = await bench.dut.management.events(kind="audit", start=start, end=bench.now() + 1)
    others = await bench.dut.management.events(kind="audit", start=start - 86400, end=start)
    evidence.attach_json("found.json", [{"t": e.t, "kind": e.kind, **e.details} for e in found])
    assert found, "no audit record in the range just audited"
    assert all(e.kind == "audit" and start <= e.t for e in found), "the query ignored a condition"
    assert not {e.t for e in found} & {e.t for e in others}, "the time condition was ignored"
    times = [e.t for e in found + others]
    assert [e.t for e in found] == sorted(e.t for e in found), f"not in time order: {times}"
    exported = await bench.dut.management.export("events", "csv", start, bench.now() + 1)
    assert "audit" in exported.text and reason in exported.text, "the export lacks the audit record"
