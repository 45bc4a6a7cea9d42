"""The management API with ``security.enabled`` (ISC-2 §7.4.1, SSEA §5.5.3), driven as a
client would: log in, bearer tokens, the three roles each trying every other role's
operations, confirmation of control operations, lockout and idle timeout on the terminal's
clock, the administrator's source networks, one audit entry per call, tamper evidence and
whole-log deletion by the auditor only. Off (the default), the API is as open as before."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from reference_terminal.api import create_app
from reference_terminal.app import Terminal
from reference_terminal.security.audit import AuditEntry
from reference_terminal.security.roles import Action, Role, role_permits
from tests.reference_terminal.api.harness import client_for, make_config, running_api
from tests.reference_terminal.security.harness import (
    ACCOUNTS,
    LOCAL,
    REMOTE,
    Secured,
    auth,
    password,
    secure_config,
    secured_terminal,
)

MANUAL = {"point": "coal_t", "value": "12.50", "operator": "王工"}
PUSH = {"collector": "c", "time": "2026-01-01T00:00:05Z", "values": {"heat": {"value": "1.00"}}}


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


# ---- off by default ----------------------------------------------------------------------------


def test_security_is_off_by_default_and_the_api_is_as_open_as_before(tmp_path: Path) -> None:
    async def main() -> None:
        config = make_config(tmp_path)
        assert not config.security.enabled
        async with running_api(config) as (_, client):
            assert (await client.post("/manual", json=MANUAL)).status_code == 200
            assert (await client.get("/health")).status_code == 200
            assert (
                await client.post("/auth/login", json={"user": "a", "password": "b"})
            ).status_code == 404
            assert (await client.get("/audit")).status_code == 404
        db = sqlite3.connect(tmp_path / "terminal.db")
        assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)
        db.close()
        assert not (tmp_path / "data").exists()  # no key file, no state made

    run(main)


# ---- sessions ----------------------------------------------------------------------------------


def test_login_gives_a_bearer_token_and_logout_ends_it(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as client:
            response = await client.post(
                "/auth/login", json={"user": "operator", "password": password("operator")}
            )
            assert response.status_code == 200, response.text
            body = response.json()
            assert (body["user"], body["role"], body["token_type"]) == (
                "operator",
                "security_operator",
                "bearer",
            )
            assert body["idle_deadline"] == s.clock.now + 600
            assert body["expires_at"] == s.clock.now + 8 * 3600
            assert body["must_change_password"] is False
            headers = auth(body["token"])
            me = await client.get("/auth/session", headers=headers)
            assert me.status_code == 200 and me.json()["session"] == body["session"]
            assert (await client.get("/health", headers=headers)).status_code == 200
            assert (await client.post("/auth/logout", headers=headers)).json() == {"ended": True}
            after = await client.get("/health", headers=headers)
            assert after.status_code == 401
            assert after.json()["error"] == "session_invalid"

    run(main)


@pytest.mark.parametrize(
    ("header", "error"),
    [
        (None, "unauthenticated"),
        ("Basic YWRtaW46eA==", "unauthenticated"),
        ("Bearer", "unauthenticated"),
        ("Bearer not-a-token", "session_invalid"),
        ("Bearer cbt_" + "A" * 43, "session_invalid"),
    ],
)
def test_a_request_without_a_valid_session_is_a_401_quoting_the_clause(
    tmp_path: Path, header: str | None, error: str
) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as client:
            headers = {} if header is None else {"Authorization": header}
            response = await client.get("/health", headers=headers)
            assert response.status_code == 401
            assert response.json()["error"] == error
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "ISC-2 §7.4.1." in response.json()["detail"]

    run(main)


def test_an_idle_session_ends_on_the_terminals_clock(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.1(2) 当登录连接超时自动退出: no wall-clock sleep, the test moves the clock."""

    async def main() -> None:
        async with (
            secured_terminal(tmp_path, sessions={"idle_timeout_s": 300}) as s,
            await s.session("operator") as client,
        ):
            s.clock.advance(299)
            assert (await client.get("/points")).status_code == 200
            s.clock.advance(299)
            assert (await client.get("/points")).status_code == 200
            s.clock.advance(300)
            response = await client.get("/points")
            assert response.status_code == 401
            assert "idle for more than 300 s" in response.json()["detail"]

    run(main)


def test_lockout_after_n_failed_logins_and_release_after_the_period(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            secured_terminal(tmp_path, lockout={"max_failures": 3, "lock_s": 900}) as s,
            s.client() as client,
        ):

            async def attempt(secret: str) -> httpx.Response:
                return await client.post(
                    "/auth/login", json={"user": "auditor", "password": secret}
                )

            assert [(await attempt("Wrong!pass1")).status_code for _ in range(2)] == [401, 401]
            locked = await attempt("Wrong!pass1")
            assert locked.status_code == 403
            assert locked.json()["error"] == "account_locked"
            assert locked.json()["locked_until"] == s.clock.now + 900
            assert "限制非法登录次数" in locked.json()["detail"]
            assert (await attempt(password("auditor"))).json()["error"] == "account_locked"
            s.clock.advance(899)
            assert (await attempt(password("auditor"))).status_code == 403
            s.clock.advance(1)
            assert (await attempt(password("auditor"))).status_code == 200

    run(main)


def test_administrators_log_in_only_from_the_configured_networks(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.2(3): the default networks are the loopback ones; a session is also bound to
    the address it was opened from."""

    async def main() -> None:
        async with secured_terminal(tmp_path) as s:
            async with s.client(REMOTE) as remote:
                refused = await remote.post(
                    "/auth/login", json={"user": "admin", "password": password("admin")}
                )
                assert refused.status_code == 403
                assert refused.json()["error"] == "source_refused"
                assert "管理员登录地址进行限制" in refused.json()["detail"]
                assert "10.20.30.40" in refused.json()["detail"]
                # Other roles are not restricted.
                assert (await s.login("operator", REMOTE)).startswith("cbt_")
                token = await s.login("admin", LOCAL)
                stolen = await remote.get("/users", headers=auth(token))
                assert stolen.status_code == 401
                assert "opened from 127.0.0.1" in stolen.json()["detail"]
            async with s.client("::1") as ipv6:
                login = await ipv6.post(
                    "/auth/login", json={"user": "admin", "password": password("admin")}
                )
                assert login.status_code == 200

    run(main)


def test_the_administrator_networks_are_configurable(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path, admin_networks=["192.168.10.0/24"]) as s:
            assert (await s.login("admin", "192.168.10.20")).startswith("cbt_")
            async with s.client(LOCAL) as local:
                response = await local.post(
                    "/auth/login", json={"user": "admin", "password": password("admin")}
                )
                assert response.json()["error"] == "source_refused"

    run(main)


# ---- roles -------------------------------------------------------------------------------------


async def running_config(s: Secured) -> dict[str, Any]:
    async with await s.session("admin") as admin:
        document: dict[str, Any] = (await admin.get("/config")).json()
    return document


def operations(config: dict[str, Any]) -> list[tuple[Action, str, str, Any]]:
    """One or more requests per action (the request an authorised caller would make)."""
    return [
        (Action.READ, "GET", "/health", None),
        (Action.READ, "GET", "/config", None),
        (Action.READ, "GET", "/points", None),
        (Action.READ, "GET", "/events", None),
        (Action.READ, "GET", "/uplink", None),
        (Action.CONFIGURE, "POST", "/config/validate", config),
        (Action.CONFIGURE, "PUT", "/config", config),
        (Action.OPERATE, "POST", "/manual", MANUAL),
        (Action.BACKUP, "POST", "/backup", None),
        (Action.MANAGE_USERS, "GET", "/users", None),
        (
            Action.MANAGE_USERS,
            "POST",
            "/users",
            {"id": "x1", "role": "auditor", "password": "N3w!acct"},
        ),
        (Action.MANAGE_USERS, "POST", "/users/operator/unlock", None),
        (Action.READ_AUDIT, "GET", "/audit", None),
        (Action.READ_AUDIT, "GET", "/audit/verify", None),
        (Action.READ_AUDIT, "GET", "/audit/export?format=json", None),
        (Action.DELETE_AUDIT, "DELETE", "/audit", None),
    ]


def test_each_role_tries_every_other_roles_operations(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.2(1)(2) least privilege: the administrator configures, backs up and manages
    accounts; the security operator reads and operates; the auditor only reads and deletes the
    audit log. Everything else is a 403 naming the clause — even with the right password."""

    async def main() -> None:
        async with secured_terminal(tmp_path) as s:
            config = await running_config(s)
            for role_user in ACCOUNTS:
                role = Role(ACCOUNTS[role_user][0])
                async with await s.session(role_user) as client:
                    for action, method, path, body in operations(config):
                        response = await client.request(method, path, json=body)
                        allowed = role_permits([role], action)
                        where = f"{role_user} {method} {path}: {response.text[:300]}"
                        if allowed:
                            assert response.status_code < 400, where
                        else:
                            assert response.status_code == 403, where
                            assert response.json()["error"] == "forbidden", where
                            assert "ISC-2 §7.4.1.2(1)" in response.json()["detail"]

    run(main)


def test_a_collector_pushes_without_a_session_but_a_person_cannot_push(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as client:
            pushed = await client.post("/intake/collector", json=PUSH)
            assert pushed.status_code == 200, pushed.text
            token = await s.login("operator")
            refused = await client.post("/intake/collector", json=PUSH, headers=auth(token))
            assert refused.status_code == 403

    run(main)


# ---- confirmation of control operations ------------------------------------------------------


def test_every_control_operation_needs_the_password_again(tmp_path: Path) -> None:
    """SSEA §5.5.3 「应对每一控制操作提供校核」: ``X-Confirm: <password>``; reads need none; wrong
    confirmations count towards the lockout, which ends the session."""

    async def main() -> None:
        async with (
            secured_terminal(tmp_path, lockout={"max_failures": 3, "lock_s": 600}) as s,
            s.client() as client,
        ):
            token = await s.login("operator")
            missing = await client.post("/manual", json=MANUAL, headers=auth(token))
            assert missing.status_code == 403
            assert missing.json()["error"] == "confirmation_required"
            assert "SSEA §5.5.3" in missing.json()["detail"]
            confirmed = await client.post(
                "/manual", json=MANUAL, headers=auth(token, confirm=password("operator"))
            )
            assert confirmed.status_code == 200, confirmed.text
            assert (await client.get("/points", headers=auth(token))).status_code == 200
            for _ in range(2):
                wrong = await client.post(
                    "/manual", json=MANUAL, headers=auth(token, confirm="Wrong!pass1")
                )
                assert wrong.json()["error"] == "confirmation_failed"
            locked = await client.post(
                "/manual", json=MANUAL, headers=auth(token, confirm="Wrong!pass1")
            )
            assert locked.json()["error"] == "account_locked"
            after = await client.get("/points", headers=auth(token))
            assert after.status_code == 401

    run(main)


# ---- accounts ----------------------------------------------------------------------------------


def test_a_new_account_must_change_its_one_time_password_first(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, await s.session("admin") as admin:
            made = await admin.post(
                "/users",
                json={"id": "li.gong", "role": "security_operator", "password": "Once!only1"},
            )
            assert made.status_code == 201, made.text
            assert made.json()["must_change_password"] is True
            assert "Once!only1" not in made.text and "hash" not in made.text
            token = await s.login("li.gong", secret="Once!only1")
            async with s.client() as client:
                blocked = await client.get("/points", headers=auth(token))
                assert blocked.status_code == 403
                assert blocked.json()["error"] == "password_change_required"
                weak = await client.post(
                    "/auth/password",
                    json={"old_password": "Once!only1", "new_password": "weak"},
                    headers=auth(token),
                )
                assert weak.status_code == 422 and weak.json()["error"] == "password_rejected"
                changed = await client.post(
                    "/auth/password",
                    json={"old_password": "Once!only1", "new_password": "Mine!2026pw"},
                    headers=auth(token),
                )
                assert changed.status_code == 200, changed.text
                assert (await client.get("/points", headers=auth(token))).status_code == 200
            listed = {u["id"]: u for u in (await admin.get("/users")).json()}
            assert listed["li.gong"]["must_change_password"] is False
            assert all("hash" not in key for key in listed["li.gong"])

    run(main)


def test_an_expired_password_must_be_changed_at_the_next_login(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(
            tmp_path, passwords={"kdf_iterations": 10_000, "max_age_days": 30}
        ) as s:
            s.clock.advance(30 * 86400)
            async with s.client() as client:
                login = await client.post(
                    "/auth/login", json={"user": "operator", "password": password("operator")}
                )
                assert login.json()["must_change_password"] is True
                token = login.json()["token"]
                blocked = await client.get("/points", headers=auth(token))
                assert blocked.json()["error"] == "password_change_required"

    run(main)


def test_the_administrator_manages_accounts(tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            secured_terminal(tmp_path, lockout={"max_failures": 1, "lock_s": 600}) as s,
            await s.session("admin") as admin,
            s.client() as client,
        ):
            await client.post("/auth/login", json={"user": "operator", "password": "Wrong!pass1"})
            users = {u["id"]: u for u in (await admin.get("/users")).json()}
            assert set(users) == set(ACCOUNTS)
            assert users["operator"]["locked_until"] == s.clock.now + 600
            assert users["auditor"]["role_title"].startswith("安全审计员")
            assert (await admin.post("/users/operator/unlock")).json()["locked_until"] is None
            assert (await s.login("operator")).startswith("cbt_")
            reset = await admin.post("/users/auditor/password", json={"password": "Reset!2026"})
            assert reset.json()["must_change_password"] is True
            dup = await admin.post(
                "/users", json={"id": "auditor", "role": "auditor", "password": "X!y2zzzzz"}
            )
            assert (dup.status_code, dup.json()["error"]) == (409, "user_exists")
            own = await admin.delete("/users/admin")
            assert (own.status_code, own.json()["error"]) == (409, "user_protected")
            assert (await admin.delete("/users/nobody")).status_code == 404
            assert (await admin.delete("/users/auditor")).status_code == 200
            gone = await client.post(
                "/auth/login", json={"user": "auditor", "password": "Reset!2026"}
            )
            assert gone.status_code == 401

    run(main)


# ---- audit -------------------------------------------------------------------------------------


async def one_entry(
    s: Secured, call: Awaitable[httpx.Response]
) -> tuple[httpx.Response, AuditEntry]:
    before = len(await s.audit_entries())
    response = await call
    entries = await s.audit_entries()
    assert len(entries) == before + 1, [e.type for e in entries[before:]]
    return response, entries[-1]


def test_every_api_call_leaves_exactly_one_audit_entry(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.3(1)(2): each request — allowed, refused, malformed, unknown — is one entry
    with the terminal's time, the user, the type and the outcome."""

    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as anon:
            token = await s.login("operator")
            op = s.client()
            op.headers.update(auth(token, confirm=password("operator")))
            s.clock.advance(42)
            cases: list[tuple[Awaitable[httpx.Response], str, str, str]] = [
                (op.get("/points"), "operator", "read", "success"),
                (op.post("/manual", json=MANUAL), "operator", "operate", "success"),
                (op.post("/backup"), "operator", "backup", "failure"),
                (op.get("/points/nope/latest"), "operator", "read", "failure"),
                (op.post("/manual", json={"point": 1}), "operator", "operate", "failure"),
                (anon.get("/health"), "anonymous", "read", "failure"),
                (anon.get("/no/such/route"), "anonymous", "request", "failure"),
                (
                    anon.post("/auth/login", json={"user": "auditor", "password": "Wrong!pass1"}),
                    "auditor",
                    "login",
                    "failure",
                ),
                (anon.post("/auth/login", json={"user": 5}), "anonymous", "login", "failure"),
                (
                    anon.post(
                        "/auth/login", json={"user": "auditor", "password": password("auditor")}
                    ),
                    "auditor",
                    "login",
                    "success",
                ),
                (anon.post("/intake/collector", json=PUSH), "collector", "push", "success"),
                (op.post("/auth/logout"), "operator", "logout", "success"),
                (op.get("/points"), "anonymous", "read", "failure"),
            ]
            for call, user, type_, outcome in cases:
                response, entry = await one_entry(s, call)
                assert (entry.user, entry.type, entry.outcome) == (user, type_, outcome), (
                    entry,
                    response.text,
                )
                assert entry.t == s.clock.now
                assert entry.details["status"] == str(response.status_code)
                assert entry.details["source"] == LOCAL
            await op.aclose()
            entries = await s.audit_entries()
            refused = [e for e in entries if e.details.get("reason") == "forbidden"]
            assert [e.details["path"] for e in refused] == ["/backup"]
            assert all("Op3rator" not in str(e.details) for e in entries)

    run(main)


def test_a_tampered_audit_entry_is_named_and_a_deleted_one_detected(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, await s.session("auditor") as auditor:
            for _ in range(3):
                await auditor.get("/audit")
            verified = (await auditor.get("/audit/verify")).json()
            assert verified["ok"] is True and verified["first_broken"] is None
            db = sqlite3.connect(s.db)
            db.execute("UPDATE audit_log SET user_id = 'admin' WHERE seq = 2")
            db.commit()
            report = (await auditor.get("/audit/verify")).json()
            assert report["ok"] is False
            assert report["first_broken"]["seq"] == 2
            assert "edited" in report["first_broken"]["reason"]
            db.execute("DELETE FROM audit_log WHERE seq = 4")
            db.commit()
            db.close()
            report = (await auditor.get("/audit/verify")).json()
            assert [p["seq"] for p in report["problems"]] == [2, 4]
            last = (await auditor.get("/audit?order=desc&limit=1")).json()["items"][0]
            assert last["type"] == "audit_verify"
            assert (last["details"]["chain"], last["details"]["first_broken"]) == ("broken", "2")

    run(main)


def test_only_the_auditor_deletes_the_whole_log_and_the_new_chain_records_it(
    tmp_path: Path,
) -> None:
    """ISC-2 §7.4.1.3(4) 仅允许全部删除: not the administrator, not the operator, not without the
    password again; the next chain opens with who deleted how many entries."""

    async def main() -> None:
        async with secured_terminal(tmp_path) as s:
            for user in ("admin", "operator"):
                async with await s.session(user) as other:
                    refused = await other.delete("/audit")
                    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
            token = await s.login("auditor")
            async with s.client() as client:
                unconfirmed = await client.delete("/audit", headers=auth(token))
                assert unconfirmed.json()["error"] == "confirmation_required"
                before = len(await s.audit_entries())
                done = await client.delete(
                    "/audit", headers=auth(token, confirm=password("auditor"))
                )
                assert done.status_code == 200, done.text
                body = done.json()
                assert body["deleted_entries"] == before
                first = body["chain_starts_with"]
                assert (first["type"], first["user"]) == ("audit_cleared", "auditor")
                assert first["details"]["deleted_last_seq"] == str(first["seq"] - 1)
                entries = await s.audit_entries()
                assert [(e.type, e.outcome) for e in entries] == [
                    ("audit_cleared", "success"),
                    ("audit_delete", "success"),
                ]
                verified = await client.get("/audit/verify", headers=auth(token))
                assert verified.json()["ok"] is True

    run(main)


def test_the_auditor_queries_by_combined_conditions_sorts_and_exports(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as anon:
            t0 = s.clock.now
            for _ in range(3):
                await anon.post("/auth/login", json={"user": "operator", "password": "Wrong!pass1"})
                s.clock.advance(60)
            await s.login("operator")
            async with await s.session("auditor") as auditor:
                page = await auditor.get(
                    "/audit",
                    params={
                        "user": "operator",
                        "type": "login",
                        "outcome": "failure",
                        "start": t0 + 30,
                        "sort": "t",
                        "order": "desc",
                    },
                )
                assert page.status_code == 200, page.text
                items = page.json()["items"]
                assert [i["t"] for i in items] == [t0 + 120, t0 + 60]
                assert page.json()["total"] == 2
                assert items[0]["time"].endswith("+08:00")
                csv_export = await auditor.get(
                    "/audit/export", params={"format": "csv", "type": "login"}
                )
                assert csv_export.headers["content-type"].startswith("text/csv")
                assert csv_export.headers["X-Rows"] == "5"
                assert csv_export.text.splitlines()[0].startswith("seq,time,t,user,type,outcome")
                json_export = await auditor.get("/audit/export", params={"format": "json"})
                assert json_export.json()[0]["type"] == "login"
                bad = await auditor.get("/audit", params={"start": "yesterday"})
                assert bad.status_code == 422

    run(main)


# ---- secrets -----------------------------------------------------------------------------------


def test_no_password_in_clear_anywhere_the_terminal_writes(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.4(2): neither the store (grep the SQLite file and its WAL) nor the state
    files hold a password, and the store holds no password hash either."""
    secrets = [password(u) for u in ACCOUNTS] + ["Once!only1", "Mine!2026pw", "Wrong!guess9"]

    async def main() -> None:
        async with secured_terminal(tmp_path) as s, await s.session("admin") as admin:
            await admin.post(
                "/users", json={"id": "li", "role": "auditor", "password": "Once!only1"}
            )
            token = await s.login("li", secret="Once!only1")
            async with s.client() as client:
                await client.post(
                    "/auth/password",
                    json={"old_password": "Once!only1", "new_password": "Mine!2026pw"},
                    headers=auth(token),
                )
                await client.post("/auth/login", json={"user": "li", "password": "Wrong!guess9"})
            await admin.post("/backup")
            assert len(await s.audit_entries()) > 5

    asyncio.run(main())
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert tmp_path / "terminal.db" in files and tmp_path / "security" / "users.sealed" in files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"{secret} in clear in {path}"
            assert secret.encode("utf-16-le") not in data, f"{secret} in {path}"
        assert b"pbkdf2-sm3" not in data, f"a password hash in clear in {path}"


def test_get_config_never_shows_a_secret_and_a_round_trip_keeps_them(tmp_path: Path) -> None:
    """Even with security off: HJ 212 passwords, SM4 keys, URL passwords and account hashes are
    ``********``; sending that document back keeps the running secrets."""
    centres = [
        {
            "name": "province",
            "protocol": "hj212",
            "host": "127.0.0.1",
            "port": 9,
            "mn": "A" * 24,
            "pw": "Hj212pw9",
            "edition": "2025",
            "cp_key": "00112233445566778899aabbccddeeff",
            "enabled": False,
        },
        {
            "name": "group",
            "protocol": "https",
            "url": "https://terminal:UrlS3cret@platform.example/api",
            "mn": "B" * 24,
            "pw": "HttpsS3cret",
            "enabled": False,
        },
    ]
    from tests.reference_terminal.api.harness import CONFIG

    data = {**CONFIG, "uplink": {"centres": centres}}
    secrets = ["Hj212pw9", "00112233445566778899aabbccddeeff", "UrlS3cret", "HttpsS3cret"]

    async def main() -> None:
        config = make_config(tmp_path, data)
        async with running_api(config) as (terminal, client):
            shown = await client.get("/config")
            assert shown.status_code == 200
            for secret in secrets:
                assert secret not in shown.text
            document = shown.json()
            assert document["uplink"]["centres"][0]["pw"] == "********"
            assert document["uplink"]["centres"][1]["url"] == (
                "https://terminal:********@platform.example/api"
            )
            checked = await client.post("/config/validate", json=document)
            assert checked.status_code == 200, checked.text
            assert all(secret not in checked.text for secret in secrets)
            document["name"] = "renamed"
            document["uplink"]["centres"].reverse()  # matched by name, not by position
            applied = await client.put("/config", json=document)
            assert applied.status_code == 200, applied.text
            assert all(secret not in applied.text for secret in secrets)
            running = {c.name: c for c in terminal.config.uplink.centres}
            assert running["province"].pw == "Hj212pw9"
            assert getattr(running["province"], "cp_key", None) == secrets[1]
            assert running["group"].pw == "HttpsS3cret"
            assert "UrlS3cret" in getattr(running["group"], "url", "")
            assert terminal.config.name == "renamed"

    run(main)


def test_the_security_section_is_hidden_and_cannot_be_changed_remotely(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, await s.session("admin") as admin:
            document = (await admin.get("/config")).json()
            users = document["security"]["initial_users"]
            assert {u["password_hash"] for u in users} == {"********"}
            assert (await admin.put("/config", json=document)).status_code == 200
            document["security"]["enabled"] = False
            refused = await admin.put("/config", json=document)
            assert refused.status_code == 422
            assert "security" in refused.json()["detail"]
            assert s.terminal.config.security.enabled

    run(main)


# ---- start-up ----------------------------------------------------------------------------------


def test_nothing_is_served_unaudited_while_the_store_is_not_open(tmp_path: Path) -> None:
    async def main() -> None:
        terminal = Terminal(secure_config(tmp_path))  # never run: no store
        async with client_for(create_app(terminal)) as client:
            for response in (
                await client.get("/health"),
                await client.post("/auth/login", json={"user": "admin", "password": "x"}),
                await client.get("/openapi.json"),
            ):
                assert response.status_code == 503
                assert "ISC-2 §7.4.1.3(4)" in response.json()["detail"]

    run(main)


def test_the_openapi_document_lists_the_security_routes(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as client:
            paths = (await client.get("/openapi.json")).json()["paths"]
            assert {
                p: set(ops)
                for p, ops in paths.items()
                if p.split("/")[1] in ("auth", "users", "audit")
            } == {
                "/auth/login": {"post"},
                "/auth/logout": {"post"},
                "/auth/session": {"get"},
                "/auth/password": {"post"},
                "/users": {"get", "post"},
                "/users/{user_id}": {"delete"},
                "/users/{user_id}/password": {"post"},
                "/users/{user_id}/unlock": {"post"},
                "/audit": {"get", "delete"},
                "/audit/export": {"get"},
                "/audit/verify": {"get"},
            }

    run(main)
