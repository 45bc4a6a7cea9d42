"""The web console without a browser (httpx over ASGI): signing in and out, what each role sees,
a configuration change through the console (preview, confirmation, password), CSRF refusal,
escaping, the console with security off, and the charts drawn."""

from __future__ import annotations

import asyncio
import html
import re
from pathlib import Path

import httpx

from reference_terminal.security.roles import Role
from reference_terminal.web.charts import Sample, bar_chart, line_chart, reduce
from tests.reference_terminal.api.harness import make_config, running_api
from tests.reference_terminal.security.harness import Secured, password, secured_terminal

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: httpx.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text[:500]
    return match.group(1)


def problems(page: httpx.Response) -> list[str]:
    return re.findall(r'class="problem"[^>]*>([^<]*)<', page.text)


async def console_login(s: Secured, client: httpx.AsyncClient, user: str) -> httpx.Response:
    form = await client.get("/console/login")
    assert form.status_code == 200
    return await client.post(
        "/console/login",
        data={"csrf": csrf_of(form), "user": user, "password": password(user)},
    )


def test_signing_in_and_what_the_administrator_sees(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as client:
            first = await client.get("/console/points")
            assert (first.status_code, first.headers["location"]) == (303, "/console/login")
            form = await client.get("/console/login")
            wrong = await client.post(
                "/console/login",
                data={"csrf": csrf_of(form), "user": "admin", "password": "nope"},
            )
            assert wrong.status_code == 401
            assert "login_failed" not in wrong.text and problems(wrong)
            forged = await client.post(
                "/console/login",
                data={"csrf": "forged", "user": "admin", "password": password("admin")},
            )
            assert forged.headers["location"] == "/console/login?m=expired"
            signed = await console_login(s, client, "admin")
            assert (signed.status_code, signed.headers["location"]) == (303, "/console/")
            cookie = signed.headers["set-cookie"]
            assert "HttpOnly" in cookie and "SameSite=strict" in cookie
            assert "Path=/console" in cookie

            status = await client.get("/console/")
            assert status.status_code == 200
            assert 'id="state"' in status.text and "running" in status.text
            assert "default-src 'self'" in status.headers["content-security-policy"]
            nav = re.findall(r'<nav class="tabs">(.*?)</nav>', status.text, re.S)[0]
            assert "Users" in nav and "Audit" not in nav
            pages = {
                "/console/points": ["coal_t", "lime_t", "heat_gj"],
                "/console/points/lime_t?range=week": ["lime stock", "<svg"],
                "/console/events": ["Alarms"],
                "/console/logs": ["Category"],
                "/console/config": ["api test terminal", "********"],
                "/console/users": ["admin", "operator", "auditor"],
                "/console/sources": ["No accounting is configured"],
            }
            for path, texts in pages.items():
                page = await client.get(path)
                assert page.status_code == 200, (path, page.text[:300])
                for text in texts:
                    assert text in page.text, (path, text)
            audit = await client.get("/console/audit")
            assert audit.status_code == 403
            assert "may not read_audit" in problems(audit)[0]
            unknown = await client.get("/console/points/nope")
            assert unknown.status_code == 404
            svg = await client.get("/console/points/lime_t/chart.svg?range=hour")
            assert svg.headers["content-type"].startswith("image/svg+xml")

            # the console's calls are the API's: each audited as the administrator
            entries = await s.audit_entries()
            by_type = {e.type for e in entries if e.user == "admin"}
            assert {"login", "console", "read", "manage_users"} <= by_type

            out = await client.post("/console/logout", data={"csrf": csrf_of(status)})
            assert out.headers["location"] == "/console/login?m=bye"
            again = await client.get("/console/")
            assert again.status_code == 303
            assert not [x for x in s.service.sessions.active() if x.user == "admin"]

    asyncio.run(main())


def test_a_configuration_change_is_previewed_and_confirmed(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as client:
            await console_login(s, client, "admin")
            page = await client.get("/console/config")
            token = csrf_of(page)
            hostile = "<script>alert(1)</script>"
            preview = await client.post(
                "/console/config/preview",
                data={"csrf": token, "op": "replace", "path": "/name", "value": hostile},
            )
            assert preview.status_code == 200
            assert "api test terminal" in preview.text  # the value now
            assert "&lt;script&gt;" in preview.text and hostile not in preview.text
            change = re.search(r'name="change" value="([^"]+)"', preview.text)
            assert change
            change_json = html.unescape(change.group(1))
            unticked = await client.post(
                "/console/config/apply",
                data={"csrf": token, "change": change_json, "confirm_password": "x"},
            )
            assert "tick the confirmation" in unticked.text
            assert s.terminal.config.name == "api test terminal"
            wrong = await client.post(
                "/console/config/apply",
                data={
                    "csrf": token,
                    "change": change_json,
                    "confirmed": "yes",
                    "confirm_password": "not-it",
                },
            )
            assert wrong.status_code == 403 and problems(wrong)
            assert s.terminal.config.name == "api test terminal"
            forged = await client.post(
                "/console/config/apply",
                data={
                    "csrf": "forged",
                    "change": change_json,
                    "confirmed": "yes",
                    "confirm_password": password("admin"),
                },
            )
            assert forged.status_code == 303
            assert s.terminal.config.name == "api test terminal"
            applied = await client.post(
                "/console/config/apply",
                data={
                    "csrf": token,
                    "change": change_json,
                    "confirmed": "yes",
                    "confirm_password": password("admin"),
                },
            )
            assert applied.status_code == 200, problems(applied)
            assert 'id="applied"' in applied.text
            assert s.terminal.config.name == hostile
            assert hostile not in applied.text  # shown escaped everywhere, the header too
            entries = await s.audit_entries()
            patch = [e for e in entries if e.details.get("method") == "PATCH"]
            assert [e.outcome for e in patch] == ["failure", "success"]
            assert patch[-1].user == "admin" and patch[-1].details["confirmed"] == "password"

    asyncio.run(main())


def test_each_role_sees_its_own_pages(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s:
            async with s.client() as auditor:
                signed = await console_login(s, auditor, "auditor")
                assert signed.headers["location"] == "/console/"
                landing = await auditor.get("/console/")
                assert landing.headers["location"] == "/console/audit"
                audit = await auditor.get("/console/audit")
                assert audit.status_code == 200
                nav = re.findall(r'<nav class="tabs">(.*?)</nav>', audit.text, re.S)[0]
                assert re.findall(r">([^<]+)</a>", nav) == ["Audit"]
                assert "login" in audit.text
                verified = await auditor.get("/console/audit?verify=1")
                assert "Chain intact" in verified.text
                exported = await auditor.get("/console/audit/export?format=csv&user=auditor")
                assert exported.headers["content-type"].startswith("text/csv")
                assert "attachment" in exported.headers["content-disposition"]
                assert b"auditor" in exported.content
                points = await auditor.get("/console/points")
                assert points.status_code == 200 and problems(points)
            async with s.client() as operator:
                await console_login(s, operator, "operator")
                status = await operator.get("/console/")
                nav = re.findall(r'<nav class="tabs">(.*?)</nav>', status.text, re.S)[0]
                assert "Points" in nav and "Users" not in nav and "Audit" not in nav
                users = await operator.get("/console/users")
                assert users.status_code == 403 and "may not manage_users" in users.text
                config = await operator.get("/console/config")
                assert "Change a field" not in config.text  # reading only

    asyncio.run(main())


def test_a_one_time_password_is_changed_first(tmp_path: Path) -> None:
    async def main() -> None:
        async with secured_terminal(tmp_path) as s, s.client() as client:
            await s.service.create_user("zhang", Role.SECURITY_OPERATOR, "Temp0rary!pass")
            form = await client.get("/console/login")
            signed = await client.post(
                "/console/login",
                data={"csrf": csrf_of(form), "user": "zhang", "password": "Temp0rary!pass"},
            )
            assert signed.headers["location"] == "/console/password"
            assert (await client.get("/console/points")).headers["location"] == (
                "/console/password"
            )
            page = await client.get("/console/password")
            changed = await client.post(
                "/console/password",
                data={
                    "csrf": csrf_of(page),
                    "old_password": "Temp0rary!pass",
                    "new_password": "N3w!Passw0rd-kiln",
                    "repeat": "N3w!Passw0rd-kiln",
                },
            )
            assert changed.headers["location"] == "/console/?m=password", changed.text[:400]
            assert (await client.get("/console/points")).status_code == 200

    asyncio.run(main())


def test_security_off_the_console_is_open(tmp_path: Path) -> None:
    async def main() -> None:
        async with running_api(make_config(tmp_path)) as (_, client):
            login = await client.get("/console/login")
            assert login.headers["location"] == "/console/"
            status = await client.get("/console/")
            assert status.status_code == 200 and "security off" in status.text
            assert "Log out" not in status.text
            users = await client.get("/console/users")
            assert "Security is off" in users.text
            page = await client.get("/console/config")
            preview = await client.post(
                "/console/config/preview",
                data={"csrf": csrf_of(page), "op": "replace", "path": "/name", "value": "K2"},
            )
            change = re.search(r'name="change" value="([^"]+)"', preview.text)
            assert change and "Your password" not in preview.text
            applied = await client.post(
                "/console/config/apply",
                data={
                    "csrf": csrf_of(page),
                    "change": html.unescape(change.group(1)),
                    "confirmed": "yes",
                },
            )
            assert 'id="applied"' in applied.text
            assert (await client.get("/config")).json()["name"] == "K2"

    asyncio.run(main())


def test_charts() -> None:
    samples = [Sample(float(t), float(t % 7)) for t in range(0, 100_000, 10)]
    reduced = reduce(samples, 0, 100_000, 100)
    assert len(reduced) <= 400
    assert min(s.value for s in reduced) == 0 and max(s.value for s in reduced) == 6
    svg = line_chart(samples, t0=0, t1=100_000, offset_s=8 * 3600, title="a <b>", unit="kW")
    assert svg.startswith("<svg") and 'data-count="10000"' in svg
    assert "a &lt;b&gt;" in svg and len(svg) < 40_000
    empty = line_chart([], t0=0, t1=10, offset_s=0, title="t")
    assert "no data in this range" in empty
    flat = line_chart([Sample(5, 3.0)], t0=0, t1=10, offset_s=0, title="t")
    assert "<circle" in flat
    bars = bar_chart([(0, 60, 1.5), (60, 120, -0.5)], t0=0, t1=120, offset_s=0, title="b")
    assert bars.count('<rect class="bar"') == 2
