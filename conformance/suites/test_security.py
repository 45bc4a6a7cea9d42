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
    account = management.account("lockout_probe")
    if account is None:
        raise Inconclusive(
            "the target gives no lockout_probe account to lock (management.accounts)",
            "ISC-2 §7.4.1.1(2)",
        )
    user, password = account
    answers = []
    with step(f"{LOCKOUT_AFTER + 1} logins as {user} with a wrong password"):
        for n in range(LOCKOUT_AFTER + 1):
            wrong = await management.request(
                "POST",
                "/auth/login",
                authenticated=False,
                json={"user": user, "password": f"Wrong#{n}pass"},
            )
            answers.append(wrong.status_code)
    right = await management.request(
        "POST", "/auth/login", authenticated=False, json={"user": user, "password": password}
    )
    evidence.attach_json("answers.json", {"wrong": answers, "right": right.status_code})
    assert all(a >= 400 for a in answers), f"a wrong password was accepted: {answers}"
    assert right.status_code >= 400, "the right password still logs in after the failures"


@pytest.mark.clause("ISC-2 §7.4.1.2", "ISC-2 §7.4.1.2(1)", "ISC-2 §7.4.1.2(2)")
async def test_three_roles_each_with_least_privilege(bench: Bench, evidence: TestLog) -> None:
    """An administrator, a security operator and an auditor, each refused what is not theirs:
    the auditor changes no configuration, the administrator reads no audit trail, the
    operator changes no configuration; each may do its own part."""
    await bench.warm()
    management = bench.dut.management
    roles = ("administrator", "security_operator", "auditor")
    missing = [r for r in roles if management.account(r) is None]
    if missing:
        raise Inconclusive(f"the target gives no account for {missing}", "ISC-2 §7.4.1.2(1)")
    config = await management.config()
    answers = {
        "auditor PUT /config": await management.request(
            "PUT", "/config", as_role="auditor", json=config
        ),
        "security_operator PUT /config": await management.request(
            "PUT", "/config", as_role="security_operator", json=config
        ),
        "administrator GET /audit": await management.request(
            "GET", "/audit", as_role="administrator"
        ),
        "auditor GET /audit": await management.request("GET", "/audit", as_role="auditor"),
        "security_operator GET /health": await management.request(
            "GET", "/health", as_role="security_operator"
        ),
    }
    codes = {k: r.status_code for k, r in answers.items()}
    evidence.attach_json("answers.json", codes)
    refused = ("auditor PUT /config", "security_operator PUT /config", "administrator GET /audit")
    wrongly = [k for k in refused if codes[k] not in REFUSED]
    assert not wrongly, f"allowed beyond the role: {wrongly} ({codes})"
    assert codes["auditor GET /audit"] == 200, f"the auditor cannot read the trail ({codes})"
    assert codes["security_operator GET /health"] == 200, codes


async def _audit(bench: Bench, **params: object) -> list[dict[str, object]]:
    response = await bench.dut.management.request("GET", "/audit", params=params)
    assert response.status_code == 200, f"GET /audit answered {response.status_code}"
    items: list[dict[str, object]] = response.json()["items"]
    return items


@pytest.mark.clause("ISC-2 §7.4.1.3", "ISC-2 §7.4.1.3(1)", "ISC-2 §7.4.1.3(2)", "ISC-2 §7.4.1.3(4)")
@pytest.mark.requires("feature:manual-backfill")
async def test_audit_records_time_user_type_and_outcome(bench: Bench, evidence: TestLog) -> None:
    """An operator's action is audited with its time, the user, what it was and its outcome,
    and the audit cannot be deleted entry by entry."""
    await bench.history(600)
    start = bench.now()
    end = start - 300
    await bench.dut.management.backfill("minute", end - 120, end - 60, "conformance: audit probe")
    entries = await _audit(bench, start=repr(start - 1), limit=1000)
    evidence.attach_json("audit.json", entries)
    assert entries, "the backfill left no audit record"
    problems = [e for e in entries if not all(e.get(k) for k in ("t", "user", "type", "outcome"))]
    assert not problems, f"audit records without time, user, type or outcome: {problems[:3]}"
    seq = entries[-1].get("seq")
    deleted = await bench.dut.management.request("DELETE", f"/audit/{seq}")
    after = await _audit(bench, start=repr(start - 1), limit=1000)
    assert deleted.status_code >= 400, f"one audit entry could be deleted ({deleted.status_code})"
    assert [e.get("seq") for e in entries] == [e.get("seq") for e in after][: len(entries)]


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
async def test_the_audit_log_is_searched_sorted_and_exported(
    bench: Bench, evidence: TestLog
) -> None:
    """The audit log answers a query by combined conditions (user, type, time range), sorted
    either way, and exports as a file."""
    await bench.warm()
    start = bench.now()
    await bench.dut.management.health()  # at least one fresh entry
    await bench.wait(5)
    everything = await _audit(bench, start=repr(start - 1), limit=1000)
    assert everything, "no audit entry for the requests just made"
    user, kind = str(everything[-1]["user"]), str(everything[-1]["type"])
    both = await _audit(bench, start=repr(start - 1), user=user, type=kind, limit=1000)
    evidence.attach_json("combined.json", both)
    assert both and all(e["user"] == user and e["type"] == kind for e in both), both[:3]
    assert len(both) <= len(everything)
    newest = await _audit(bench, start=repr(start - 1), sort="t", order="desc", limit=1000)
    times = [float(str(e["t"])) for e in newest]
    assert times == sorted(times, reverse=True), "not sorted newest first"
    exported = await bench.dut.management.request(
        "GET", "/audit/export", params={"format": "csv", "start": repr(start - 1)}
    )
    assert exported.status_code == 200, f"export answered {exported.status_code}"
    assert user in exported.text and kind in exported.text, "the export lacks the entries"
