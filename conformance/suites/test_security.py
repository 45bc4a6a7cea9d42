"""Security, as far as the management interface exposes it: authentication and least
privilege, login-failure lockout, the audit trail, validation of every input, secrets kept
out of what is read back; and on the wire: platform requests out of range, certificates and
SM algorithms towards the platforms."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from datetime import timedelta
from pathlib import Path

import pytest

from conformance.bench import Bench, local, months_after
from conformance.channel_probe import Probe, flip, http_get
from conformance.dut import DutError
from conformance.evidence import TestLog, step
from conformance.management import ADMINISTRATOR, AUDITOR, OPERATOR, Management
from conformance.verdicts import Inconclusive
from protocols.hj212 import Command, Cp
from simulators.platform import HttpsServer
from simulators.platform.commands import CommandStatus

#: ISC-2 §7.4.1.1: failed logins before an account locks (a terminal may lock sooner).
LOCKOUT_AFTER = 5
REFUSED = (401, 403)
#: The records whose signatures are judged: minute data (CN 2051), every one of them.
MINUTE_DATA = int(Command.MINUTE_DATA)
#: ISC-2 §7.4.1.3(3): audit logs kept on the device for at least six months.
AUDIT_MONTHS = 6
#: The newest audit entries whose keeping is judged, and the most one query returns.
KEPT_ENTRIES = 200
MAX_AUDIT_PAGE = 1000
#: How long the aged terminal runs before it is asked (a purge at boot or on a short cycle
#: happens meanwhile), and how far short of six months the oldest judged entry is then.
AGED_RUN_S = 300.0
AGED_MARGIN_S = 120.0


@pytest.mark.clause("ISC-2 §7.4.1.1(1)", "ISC-2 §7.4.1.2(2)", "SSEA §5.5.3")
async def test_the_management_interface_refuses_strangers(bench: Bench, evidence: TestLog) -> None:
    """Without credentials, nobody reads the configuration or changes it."""
    await bench.warm()
    management = bench.management
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


@pytest.mark.clause("ISC-2 §7.4.1.1(2)")
async def test_repeated_login_failures_lock_the_account(bench: Bench, evidence: TestLog) -> None:
    """After repeated failed logins the account is locked: even the right password is refused."""
    await bench.warm()
    management = bench.management
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


@pytest.mark.clause("ISC-2 §7.4.1.2(3)")
async def test_administrators_log_in_only_from_allowed_addresses(
    bench: Bench, evidence: TestLog
) -> None:
    """From an address outside the allowed ones an administrator's login is refused, while the
    other roles log in from there and the administrator from the bench's usual address."""
    await bench.warm()
    refused_from = bench.dut.target.parameters.admin_refused_source
    management = bench.management
    admin = management.account(ADMINISTRATOR)
    if refused_from is None or admin is None:
        raise Inconclusive(
            "the target gives no parameters.admin_refused_source (an address of the bench's "
            "host the terminal must refuse administrators from) or no administrator account",
            "ISC-2 §7.4.1.2(3)",
        )
    others = [r for r in (OPERATOR, AUDITOR) if management.account(r) is not None]

    async def login(client: Management, role: str) -> int:
        user, password = client.accounts[role]
        body = {"user": user, "password": password}
        answer = await client.request("POST", "/auth/login", authenticated=False, json=body)
        return answer.status_code

    stranger = management.from_address(str(refused_from))
    try:
        with step(f"log in from {refused_from}"):
            there = {role: await login(stranger, role) for role in (ADMINISTRATOR, *others)}
    finally:
        await stranger.aclose()
    with step("log in as the administrator from the bench's usual address"):
        home = await login(management, ADMINISTRATOR)
    evidence.attach_json("answers.json", {f"from {refused_from}": there, "usual address": home})
    assert there[ADMINISTRATOR] in REFUSED, (
        f"an administrator logged in from {refused_from} ({there[ADMINISTRATOR]})"
    )
    assert home < 300, f"the administrator could not log in from the usual address ({home})"
    refused = {r: code for r, code in there.items() if r != ADMINISTRATOR and code >= 300}
    assert not refused, f"other roles refused from {refused_from} too: {refused}"


@pytest.mark.clause("ISC-2 §7.4.1.2(1)", "ISC-2 §7.4.1.2(2)")
async def test_three_roles_each_with_least_privilege(bench: Bench, evidence: TestLog) -> None:
    """An administrator, a security operator and an auditor, each refused what is not theirs:
    the auditor changes no configuration, the administrator reads no audit trail, the
    operator changes no configuration; each may do its own part."""
    await bench.warm()
    management = bench.management
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
    response = await bench.management.request("GET", "/audit", params=params)
    assert response.status_code == 200, f"GET /audit answered {response.status_code}"
    items: list[dict[str, object]] = response.json()["items"]
    return items


@pytest.mark.clause("ISC-2 §7.4.1.3(1)", "ISC-2 §7.4.1.3(2)", "ISC-2 §7.4.1.3(4)")
@pytest.mark.requires("feature:manual-backfill")
async def test_audit_records_time_user_type_and_outcome(bench: Bench, evidence: TestLog) -> None:
    """An operator's action is audited with its time, the user, what it was and its outcome,
    and the audit cannot be deleted entry by entry."""
    await bench.history(600)
    start = bench.now()
    end = start - 300
    await bench.management.backfill("minute", end - 120, end - 60, "conformance: audit probe")
    entries = await _audit(bench, start=repr(start - 1), limit=1000)
    evidence.attach_json("audit.json", entries)
    assert entries, "the backfill left no audit record"
    problems = [e for e in entries if not all(e.get(k) for k in ("t", "user", "type", "outcome"))]
    assert not problems, f"audit records without time, user, type or outcome: {problems[:3]}"
    seq = entries[-1].get("seq")
    deleted = await bench.management.request("DELETE", f"/audit/{seq}")
    after = await _audit(bench, start=repr(start - 1), limit=1000)
    assert deleted.status_code >= 400, f"one audit entry could be deleted ({deleted.status_code})"
    assert [e.get("seq") for e in entries] == [e.get("seq") for e in after][: len(entries)]


@pytest.mark.clause("ISC-2 §7.4.1.3(3)")
@pytest.mark.ages_terminal
async def test_the_audit_log_is_kept_six_months(bench: Bench, evidence: TestLog) -> None:
    """Audit entries are still on the terminal, unaltered, when they are almost six months
    old: the terminal is aged that long while its power is off (its clock runs on, as on a
    shelf), comes back, runs a while (a purge at boot or on a short cycle has its chance),
    and is asked for them again. A device whose clock the bench does not keep: inconclusive,
    to be checked in service."""
    await bench.warm()
    await bench.management.health()  # at least one fresh entry
    kept = await _audit(bench, sort="seq", order="desc", limit=KEPT_ENTRIES)
    read_at = bench.now()
    assert kept, "the audit log is empty"
    oldest = min(float(str(e["t"])) for e in kept)
    newest = max(float(str(e["t"])) for e in kept)
    # the terminal's own time throughout (its clock need not be the bench's)
    due = months_after(oldest, AUDIT_MONTHS) - AGED_RUN_S - AGED_MARGIN_S
    age = due - (newest + bench.now() - read_at)
    with step(f"powered off for {age / 86400:.1f} days of the terminal's time"):
        await bench.dut.age(age)
    with step(f"it runs {AGED_RUN_S:g} s, then the {len(kept)} entries are read back"):
        await bench.wait(AGED_RUN_S)
        await _renew_expired_password(bench, AUDITOR)
        back = await _audit(
            bench, start=repr(oldest), end=repr(newest + 1), sort="seq", limit=MAX_AUDIT_PAGE
        )
    by_seq = {e["seq"]: e for e in back}
    evidence.attach_json("audit-before.json", kept)
    evidence.attach_json("audit-after.json", back)
    evidence.record_measurement("oldest_entry_age_days", (due + AGED_RUN_S - oldest) / 86400)
    missing = [e["seq"] for e in kept if e["seq"] not in by_seq]
    assert not missing, (
        f"{len(missing)} of {len(kept)} audit entries gone before they were six months old "
        f"(ISC-2 §7.4.1.3(3) 保存期限不少于6个月): seq {missing[:10]}"
    )
    changed = [e["seq"] for e in kept if by_seq[e["seq"]] != e]
    assert not changed, f"audit entries read back altered after ageing: seq {changed[:10]}"


async def _renew_expired_password(bench: Bench, role: str) -> None:
    """Months later the role's password may have expired (ISC-2 §7.4.1.1(1)): change it, as
    its holder would at the next login."""
    management = bench.management
    if management.account(role) is None:
        return
    session = await management.request("GET", "/auth/session", as_role=role)
    if session.status_code == 200 and session.json().get("must_change_password"):
        with step(f"the {role}'s password has expired meanwhile: the {role} changes it"):
            changed = await management.change_password(role, f"Kept-{secrets.token_hex(4)}-6m")
        assert changed.status_code < 300, f"the expired {role} password could not be changed"


@pytest.mark.clause("ISC-2 §7.4.1.4(1)")
async def test_stored_credentials_changed_behind_its_back_are_refused(
    bench: Bench, evidence: TestLog
) -> None:
    """Stored credentials or keys with one bit changed while the terminal was off are refused.

    It must not take the altered data as its own: it refuses to start, or starts and audits
    the failed integrity check. With the file as it was, it starts and answers again."""
    await bench.warm()
    dut = bench.dut
    files = dut.stored_data()
    if not files:
        raise Inconclusive(
            "the bench cannot reach this terminal's stored data (a separate device): alter "
            "its stored credentials by hand and check that it notices",
            "ISC-2 §7.4.1.4(1)",
        )
    answers: dict[str, str] = {}
    for what, path in files.items():
        await bench.power_off()
        original = path.read_bytes()
        with step(f"change one bit of the {what} ({path.name}, {len(original)} bytes)"):
            _write_synced(path, flip_middle(original))
        refused, since = "", bench.now()
        try:
            try:
                await bench.power_on()
            except DutError as exc:
                refused = str(exc)
            else:
                failures = [
                    e
                    for e in await _audit(bench, start=repr(since - 1), limit=1000)
                    if e.get("outcome") == "failure" and _about_integrity(e)
                ]
                refused = f"started and audited {failures[0]}" if failures else ""
                await bench.power_off()
        finally:
            with step(f"put the {what} back as it was"):
                _write_synced(path, original)
            await bench.power_on()
        answers[what] = refused or "started on the altered data and audited nothing of it"
        assert refused, f"the terminal took its altered {what} ({path.name}) as good"
    evidence.attach_json("answers.json", answers)
    health = await bench.management.request("GET", "/health")
    assert health.status_code == 200, f"with its files restored, GET /health {health.status_code}"


def flip_middle(data: bytes) -> bytes:
    """``data`` with the lowest bit of its middle byte flipped."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]


def _write_synced(path: Path, data: bytes) -> None:
    with path.open("r+b") as out:
        out.write(data)
        out.truncate()
        out.flush()
        os.fsync(out.fileno())


def _about_integrity(entry: dict[str, object]) -> bool:
    text = json.dumps(entry, ensure_ascii=False).lower()
    return any(word in text for word in ("integrity", "tamper", "完整性", "篡改"))


@pytest.mark.clause("ISC-2 §7.4.1.4(3)")
async def test_every_input_is_validated(bench: Bench, evidence: TestLog) -> None:
    """Malformed input is refused with the field named: a time without a zone, a value given
    as a JSON number, an unknown point."""
    await bench.warm()
    management = bench.management
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


@pytest.mark.clause("ISC-2 §7.4.1.4(3)")
@pytest.mark.requires("transport:hj212", "feature:platform-intervals")
async def test_platform_requests_out_of_range_change_nothing(
    bench: Bench, evidence: TestLog
) -> None:
    """Input from a platform is validated too, on the wire alone: requests whose values 表 4 of
    HJ 212-2017 does not allow, and a history range that ends before it begins, are each
    refused or fail (never 9012 ExeRtn=1), and the intervals read back with 1061/1063
    afterwards are those read before. (A wrong password, MN or CRC: ``test_negative.py``.)"""
    await bench.warm()
    commands = await bench.commands(bench.rig.hj212_centres()[0])
    with step("1061/1063: the intervals before"):
        before = (await commands.get_rtd_interval(), await commands.get_min_interval())
    assert all(o.ok for o in before), [(o.cn, o.status, o.reason) for o in before]
    rtd, minute = before[0].value("RtdInterval"), before[1].value("MinInterval")
    now = local(bench.now())
    bad = {
        "1062 RtdInterval=5 (表 4: 30 ≤ n ≤ 3600)": (1062, Cp.build(RtdInterval=5)),
        "1062 RtdInterval=86400": (1062, Cp.build(RtdInterval=86400)),
        "1064 MinInterval=7 (not one of 表 4's)": (1064, Cp.build(MinInterval=7)),
        "1000 OverTime=0 ReCount=3": (1000, Cp.build(OverTime=0, ReCount=3)),
        "2051 EndTime before BeginTime": (
            2051,
            Cp.build(BeginTime=now, EndTime=now - timedelta(hours=1)),
        ),
    }
    outcomes = {}
    for name, (cn, cp) in bad.items():
        with step(name):
            outcomes[name] = await commands.request(cn, cp)
    with step("1061/1063: the intervals after"):
        after = (await commands.get_rtd_interval(), await commands.get_min_interval())
    evidence.attach_json(
        "outcomes.json",
        {
            k: {"status": str(o.status), "QnRtn": o.qn_rtn, "ExeRtn": o.exe_rtn, "why": o.reason}
            for k, o in outcomes.items()
        },
    )
    carried_out = [k for k, o in outcomes.items() if o.status is CommandStatus.COMPLETED]
    assert not carried_out, f"carried out (9012 ExeRtn=1): {carried_out}"
    assert all(o.ok for o in after), [(o.cn, o.status, o.reason) for o in after]
    changed = (after[0].value("RtdInterval"), after[1].value("MinInterval")) != (rtd, minute)
    assert not changed, (
        f"RtdInterval/MinInterval {rtd}/{minute} before, "
        f"{after[0].value('RtdInterval')}/{after[1].value('MinInterval')} after"
    )


@pytest.mark.clause("ISC-2 §7.4.1.4(2)")
async def test_secrets_are_not_read_back_in_clear(bench: Bench, evidence: TestLog) -> None:
    """The platform passwords the terminal holds are not handed out in clear by its
    management interface."""
    await bench.warm()
    response = await bench.management.request("GET", "/config")
    if response.status_code in REFUSED:
        raise Inconclusive("the configuration could not be read with the target's credentials")
    text = response.text
    secrets = {bench.dut.pw(c.name) for c in bench.rig.centres}
    leaked = [s for s in secrets if f'"{s}"' in text]
    evidence.record_measurement("leaked", len(leaked))
    assert not leaked, "the configuration read back shows the centres' passwords in clear"


@pytest.mark.clause("ISC-2 §7.4.1")
@pytest.mark.requires("feature:pki")
async def test_platform_connections_use_certificates(bench: Bench, evidence: TestLog) -> None:
    """The terminal reaches the platforms with a PKI certificate: the HTTPS centres take uploads
    over mutual TLS only, from a client certificate the platforms' CA issued (one of another CA
    fails the handshake, so nothing of it arrives), and every upload they received came over a
    connection that presented one; none was refused for want of it."""
    await bench.history(180)  # minute data has gone up a few times
    centres = [c for c in bench.rig.platforms.centres.values() if isinstance(c, HttpsServer)]
    if not centres:
        raise Inconclusive("the rig has no HTTPS centre to connect to", "ISC-2 §7.4.1")
    presented: dict[str, dict[str, str]] = {}
    refused: list[dict[str, object]] = []
    judged = 0
    for centre in centres:
        assert centre.config.client_certificates is not None, (
            f"the bench's centre {centre.name} does not ask for client certificates"
        )
        for frame in bench.frames_in(centre.name, since=bench.t0):
            if frame.conn not in centre.client_certificates:
                continue  # not an upload it judged (a body it could not read, say)
            judged += 1
            certificate = centre.client_certificates[frame.conn]
            if certificate is None:
                refused.append({"centre": centre.name, "frame": frame.id, "note": frame.note})
            else:
                presented[certificate.sha256] = {
                    "centre": centre.name,
                    "subject": certificate.subject,
                    "issuer": certificate.issuer,
                }
    evidence.attach_json(
        "client_certificates.json", {"presented": presented, "refused": refused[:50]}
    )
    evidence.record_measurement("uploads", judged)
    evidence.record_measurement("refused", len(refused))
    assert judged, (
        "no upload reached the HTTPS centres: a terminal presenting a certificate the "
        "platforms' CA did not issue fails the TLS handshake"
    )
    assert not refused, (
        f"{len(refused)} of {judged} uploads came without a client certificate and were "
        f"refused: {refused[0]['note']}"
    )


@pytest.mark.clause("ISC-2 §7.4.2.1bis", "CSMT §7.4", "SSEA §5.1.5.2", "CSMT §12.3.2")
@pytest.mark.requires("feature:sm-crypto")
async def test_uploads_are_signed_with_sm2(bench: Bench, evidence: TestLog) -> None:
    """Every minute-data record the HJ 212 centres received verifies, at the centre, against
    the terminal's device certificate issued by the bench's CA: an SM2 signature fingerprint a
    platform can check (GB/T 37025), not merely a field that is there."""
    if bench.dut.device_certificate() is None:
        raise Inconclusive(
            "the bench holds no device certificate of the terminal to verify its records with",
            "CSMT §7.4",
        )
    await bench.history(300)
    verdicts: dict[str, dict[str, int]] = {}
    unverified: list[dict[str, object]] = []
    for centre in bench.rig.hj212_centres():
        frames = {f.id: f for f in bench.frames_in(centre)}
        records = {r.frame_id for r in bench.readings(centre, MINUTE_DATA, since=bench.t0)}
        assert records, f"no minute data reached {centre} to verify"
        counts = verdicts.setdefault(centre, {})
        for frame_id in sorted(records):
            frame = frames[frame_id]
            verdict = frame.signature or "not checked"
            counts[verdict] = counts.get(verdict, 0) + 1
            if verdict != "verified":
                unverified.append(
                    {
                        "centre": centre,
                        "frame": frame_id,
                        "verdict": verdict,
                        "why": frame.signature_error,
                        "raw": frame.raw,
                    }
                )
    evidence.attach_json("signatures.json", {"verdicts": verdicts, "unverified": unverified})
    evidence.record_measurement("unverified", len(unverified))
    assert not unverified, (
        f"{len(unverified)} minute-data records did not verify at the centre: "
        + "; ".join(
            f"{u['centre']} frame {u['frame']}: {u['verdict']} ({u['why']})" for u in unverified[:3]
        )
    )


@pytest.mark.clause("ISC-2 §7.4.1.2(4)", "ISC-2 §7.4.2.1bis")
@pytest.mark.requires("feature:sm-management-channel")
async def test_the_management_port_speaks_only_the_sm_channel(
    bench: Bench, evidence: TestLog
) -> None:
    """The dedicated management port authenticates the terminal with its SM2 certificate and
    carries the API only inside SM4-GCM records: nothing readable on the wire, and no answer to
    plain HTTP, to a record with a changed bit, to a record sent again, or to a client that
    cannot finish the handshake."""
    await bench.warm()
    management = bench.management
    channel = management.channel
    if channel is None:
        raise Inconclusive(
            "the target declares the SM channel but gives no management.channel to reach it",
            "ISC-2 §7.4.1.2(4)",
        )
    role = management.role_for("GET", "/health")
    token = None if role is None else await management.login(role)
    findings: dict[str, object] = {"port": f"{channel.host}:{channel.port}"}
    held = management.still() if management.still is not None else contextlib.nullcontext()
    with held:
        with step("GET /health inside the channel"):
            honest = await Probe.open(channel.host, channel.port)
            established = await honest.handshake(channel.trust)
            if established:
                honest.write(honest.seal(http_get("/health", token, close=True)))
                answer = await honest.collect()
            await honest.close()
        assert established, f"the handshake with the management port failed: {honest.error}"
        wire = bytes(honest.sent + honest.received)
        readable = [m for m in (b"HTTP/1.1", b"/health", (token or "-").encode()) if m in wire]
        findings["honest"] = {"answer": answer[:80].decode("latin-1"), "in_clear": readable}
        with step("plain HTTP to the management port"):
            plain = await Probe.open(channel.host, channel.port)
            plain.write(http_get("/health", token, close=True))
            await plain.read_raw()
            await plain.close()
        findings["plain_http"] = plain.received[:80].decode("latin-1")
        with step("a sealed request with one bit changed"):
            tampered = await Probe.open(channel.host, channel.port)
            if await tampered.handshake(channel.trust):
                tampered.write(flip(tampered.seal(http_get("/health", token, close=True))))
                await tampered.collect()
            await tampered.close()
        findings["tampered"] = tampered.plain[:80].decode("latin-1")
        with step("a sealed request sent twice"):
            replayed = await Probe.open(channel.host, channel.port)
            first = b""
            if await replayed.handshake(channel.trust):
                record = replayed.seal(http_get("/health", token, close=False))
                replayed.write(record)
                first = await replayed.collect(until=b"\r\n\r\n")
                replayed.write(record)
                await replayed.collect(timeout=3.0)
            await replayed.close()
        findings["replayed"] = {
            "first": first[:40].decode("latin-1"),
            "answers": replayed.plain.count(b"HTTP/1.1 "),
        }
        with step("a client whose Finished does not verify"):
            forged = await Probe.open(channel.host, channel.port)
            if await forged.handshake(channel.trust, break_finished=True):
                forged.write(forged.seal(http_get("/health", token, close=True)))
                await forged.collect()
            await forged.close()
        findings["forged_finished"] = forged.plain[:80].decode("latin-1")
    evidence.attach_json("channel.json", findings)
    assert answer.startswith(b"HTTP/1.1 200"), f"/health inside the channel: {answer[:80]!r}"
    assert not readable, f"readable on the management port's wire: {readable}"
    assert b"HTTP/1." not in plain.received, "the management port answered plain HTTP"
    assert not tampered.plain, "the terminal answered a record with a changed bit"
    assert first.startswith(b"HTTP/1.1 200"), f"no answer to the genuine request: {first!r}"
    assert replayed.plain.count(b"HTTP/1.1 ") == 1, "the terminal answered a replayed record"
    assert not forged.plain, "the terminal answered a client that did not finish the handshake"


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
    await bench.management.health()  # at least one fresh entry
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
    exported = await bench.management.request(
        "GET", "/audit/export", params={"format": "csv", "start": repr(start - 1)}
    )
    assert exported.status_code == 200, f"export answered {exported.status_code}"
    assert user in exported.text and kind in exported.text, "the export lacks the entries"
