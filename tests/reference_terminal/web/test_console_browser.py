"""The web console in headless Chromium (Debian's ``chromium``, driven by Playwright; nothing is
downloaded): a real terminal served by uvicorn on 127.0.0.1, signed in as each role, every page
clicked through and its content checked, a live chart seen to move, a configuration change and an
account made through the forms, reports and the audit log downloaded.

Screenshots of every page go to ``<the test's tmp dir>/screenshots`` (their paths are printed and
attached to the test's JUnit properties); set ``CARBENCH_SCREENSHOTS=DIR`` to keep a copy there.
Skipped, saying why, when Chromium or Playwright is missing. ``CARBENCH_CHROMIUM`` names another
Chromium binary.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.reference_terminal.security.harness import password
from tests.reference_terminal.web.harness import (
    GAUGE,
    HAND,
    PUSHED,
    Served,
    console_config,
    served_terminal,
    write_history,
)


def chromium() -> str | None:
    given = os.environ.get("CARBENCH_CHROMIUM")
    if given:
        return given if Path(given).exists() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


BROWSER = chromium()
pytestmark = pytest.mark.skipif(
    BROWSER is None,
    reason="no Chromium: install Debian's chromium (scripts/debian-packages.txt; ./dev setup "
    "as root) or set CARBENCH_CHROMIUM",
)
#: What the sandboxed, offline machines need (root, no GPU, no network but loopback).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


class Shots:
    """Screenshots named in order, listed at the end."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.paths: list[Path] = []

    async def take(self, page: Any, name: str) -> None:
        path = self.folder / f"{len(self.paths) + 1:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        self.paths.append(path)


async def login(page: Any, served: Served, user: str, secret: str | None = None) -> None:
    await page.goto(f"{served.url}/console/")
    assert page.url.endswith("/console/login")
    await page.fill("#user", user)
    await page.fill("#password", secret or password(user))
    await page.click("#login")
    await page.wait_for_load_state()


async def nav_labels(page: Any) -> list[str]:
    return [str(t).strip() for t in await page.locator("nav.tabs a").all_inner_texts()]


async def chart_count(page: Any) -> int:
    return int(await page.locator("#chart svg").get_attribute("data-count"))


async def walk(served: Served, shots: Shots, downloads: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=BROWSER, headless=True, args=ARGS)
        try:
            await admin_pages(browser, served, shots, downloads, expect)
            await auditor_pages(browser, served, shots, downloads, expect)
            await operator_pages(browser, served, shots, expect)
            await new_user_pages(browser, served, shots, expect)
        finally:
            await browser.close()


async def admin_pages(
    browser: Any, served: Served, shots: Shots, downloads: Path, expect: Callable[..., Any]
) -> None:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{served.url}/console/")
    await expect(page.locator("#login-form")).to_be_visible()
    await shots.take(page, "login")

    await page.fill("#user", "admin")
    await page.fill("#password", "wrong-password")
    await page.click("#login")
    await expect(page.locator("#login-problem")).to_be_visible()
    await login(page, served, "admin")

    # status
    await expect(page.locator("#state")).to_have_text("running")
    await expect(page.locator("#who-user")).to_have_text("admin")
    assert await nav_labels(page) == [
        "Status",
        "Points",
        "Sources",
        "Events & alarms",
        "Logs",
        "Configuration",
        "Reports",
        "Users",
    ]
    await expect(page.locator("#system")).to_contain_text("Linux")
    await expect(page.locator("#centres")).to_be_visible()
    await shots.take(page, "status")

    # points: every point with its latest value
    await page.click("nav.tabs >> text=Points")
    rows = page.locator("#points tbody tr")
    await expect(rows).to_have_count(7)
    await expect(page.locator("#points")).to_contain_text(GAUGE)
    await expect(page.locator("#points")).to_contain_text(PUSHED)
    await shots.take(page, "points")

    # one point: its day (minute windows), then its year (hours)
    await page.click(f"#points >> text={GAUGE}")
    await expect(page.locator("#point-id")).to_have_text(GAUGE)
    await expect(page.locator("#latest-value")).to_contain_text("kW")
    assert await chart_count(page) >= 1400, "a day of minute windows"
    await shots.take(page, "point-day")
    await page.click("#range-year")
    await expect(page.locator("#range-year")).to_have_class("active")
    assert await chart_count(page) >= 700, "a month of hours (what the store holds)"
    await expect(page.locator("#chart svg polyline")).to_have_count(1)
    await shots.take(page, "point-year")

    # a live chart: the pushed heat meter, refreshed every 5 s while the page is open
    await served.push("100.00")
    await page.goto(f"{served.url}/console/points/{PUSHED}?range=hour")
    await expect(page.locator("#live")).to_be_checked()
    before = await chart_count(page)
    await asyncio.sleep(1.0)  # a reading a second later than the one already drawn
    await served.push("100.25")
    # (polled from here: the console's CSP forbids the eval a page-side wait would need)
    async with asyncio.timeout(15):
        while await chart_count(page) <= before:
            await asyncio.sleep(0.25)
    await shots.take(page, "point-live")

    # sources: accounting units and sources; one source's emissions per hour
    await page.click("nav.tabs >> text=Sources")
    await expect(page.locator("#sources")).to_contain_text("clinker")
    await expect(page.locator("#sources")).to_contain_text("grid")
    await shots.take(page, "sources")
    await page.click("#sources >> text=clinker")
    await expect(page.locator("#source-id")).to_have_text("clinker")
    # four tickets: three increments, in three hours
    assert await chart_count(page) == 3, "the hand-entered tickets' emissions, binned per hour"
    await expect(page.locator("#chart svg rect.bar").first).to_be_visible()
    await shots.take(page, "source")

    # events and alarms
    await page.click("nav.tabs >> text=Events & alarms")
    await expect(page.locator("#events")).to_contain_text("manual")
    await shots.take(page, "events")
    await page.click("nav.tabs >> text=Logs")
    await expect(page.locator("#logs")).to_be_visible()
    await shots.take(page, "logs")

    # configuration: read it, change a field (preview, confirmation, password)
    await page.click("nav.tabs >> text=Configuration")
    await expect(page.locator("#config")).to_contain_text("Kiln 2 terminal")
    await expect(page.locator("#config")).to_contain_text("********")
    await page.fill("#path", "/name")
    await page.fill("#value", "Kiln 2 terminal (line B)")
    await page.click("#preview-button")
    await expect(page.locator("#preview")).to_contain_text("Kiln 2 terminal (line B)")
    await shots.take(page, "config-preview")
    await page.check("#confirmed")
    await page.fill("#confirm-password", password("admin"))
    await page.click("#apply")
    await expect(page.locator("#applied")).to_contain_text("name")
    await expect(page.locator("header .brand")).to_contain_text("(line B)")
    assert served.terminal.config.name == "Kiln 2 terminal (line B)"
    await shots.take(page, "config-applied")

    # users: the three roles; a new account with a one-time password
    await page.click("nav.tabs >> text=Users")
    for user in ("admin", "operator", "auditor"):
        await expect(page.locator("#users")).to_contain_text(user)
    await page.select_option("#user-action", "create")
    await page.fill("#user-id", "wang.fang")
    await page.select_option("#user-role", "security_operator")
    await page.fill("#user-password", "F1rst!Visit-pw")
    await page.check("#user-confirmed")
    await page.fill("#user-confirm-password", password("admin"))
    await page.click("#user-submit")
    await expect(page.locator("#done")).to_contain_text("create wang.fang")
    await expect(page.locator("#users")).to_contain_text("wang.fang")
    await shots.take(page, "users")

    # reports: statistics of the day; the report lines as CSV
    await page.click("nav.tabs >> text=Reports")
    await page.select_option("#period", "day")
    await page.click("#report-form button")
    await expect(page.locator("#by-source")).to_contain_text("clinker")
    total = await page.locator("#total").inner_text()
    assert float(total) > 0, total
    await shots.take(page, "reports")
    async with page.expect_download() as download_info:
        await page.click("#report-csv")
    download = await download_info.value
    saved = downloads / download.suggested_filename
    await download.save_as(str(saved))
    assert "clinker" in saved.read_text()
    await page.select_option("#period", "month")
    await page.click("#report-form button")
    await expect(page.locator("#report-html")).to_be_visible()

    await page.click("#logout")
    await expect(page.locator("#login-form")).to_be_visible()
    await expect(page.locator("main")).to_contain_text("logged out")
    assert not errors, errors
    await context.close()


async def auditor_pages(
    browser: Any, served: Served, shots: Shots, downloads: Path, expect: Callable[..., Any]
) -> None:
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, accept_downloads=True
    )
    page = await context.new_page()
    await login(page, served, "auditor")
    assert page.url.endswith("/console/audit")
    assert await nav_labels(page) == ["Audit"]
    await expect(page.locator("#audit")).to_contain_text("configure")  # the admin's change
    await page.fill("#audit-user", "admin")
    await page.fill("#audit-type", "login")
    await page.click("#audit-search")
    await expect(page.locator("#audit tbody tr").first).to_contain_text("success")
    await expect(page.locator("#audit tbody tr").last).to_contain_text("failure")  # wrong password
    await shots.take(page, "audit")
    await page.click("#verify")
    await expect(page.locator("#verified")).to_contain_text("Chain intact")
    await shots.take(page, "audit-verified")
    async with page.expect_download() as download_info:
        await page.click("#export-csv")
    download = await download_info.value
    saved = downloads / download.suggested_filename
    await download.save_as(str(saved))
    assert "login" in saved.read_text()
    await context.close()


async def operator_pages(
    browser: Any, served: Served, shots: Shots, expect: Callable[..., Any]
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await login(page, served, "operator")
    await expect(page.locator("#state")).to_have_text("running")
    labels = await nav_labels(page)
    assert "Users" not in labels and "Audit" not in labels
    await page.goto(f"{served.url}/console/users")
    await expect(page.locator(".problem")).to_contain_text("may not manage_users")
    await shots.take(page, "operator-refused")
    await page.goto(f"{served.url}/console/config")
    await expect(page.locator("#change-form")).to_have_count(0)
    await context.close()


async def new_user_pages(
    browser: Any, served: Served, shots: Shots, expect: Callable[..., Any]
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await login(page, served, "wang.fang", "F1rst!Visit-pw")
    assert page.url.endswith("/console/password")
    await shots.take(page, "password-change")
    await page.fill("input[name=old_password]", "F1rst!Visit-pw")
    await page.fill("input[name=new_password]", "Own!Secret-2027")
    await page.fill("input[name=repeat]", "Own!Secret-2027")
    await page.click("#password-form button")
    await expect(page.locator("main")).to_contain_text("Your password was changed")
    await context.close()


def test_console_in_chromium(tmp_path: Path, record_property: Callable[[str, Any], None]) -> None:
    pytest.importorskip(
        "playwright.async_api", reason="Playwright (Python) is not installed: pip install -e .[dev]"
    )
    shots = Shots(tmp_path / "screenshots")
    downloads = tmp_path / "downloads"
    downloads.mkdir()

    async def main() -> None:
        async with served_terminal(console_config(tmp_path)) as served:
            await write_history(served.terminal)
            now = served.terminal.clock.time()
            await served.enter_by_hand(
                [
                    (now - 5 * 3600, "1100.0"),
                    (now - 3 * 3600, "1200.5"),
                    (now - 2 * 3600, "1320.0"),
                    (now - 600, "1451.25"),
                ]
            )
            await walk(served, shots, downloads)

    started = time.perf_counter()
    try:
        asyncio.run(main())
    finally:
        record_property("screenshots", " ".join(str(p) for p in shots.paths))
        print(f"\nconsole screenshots ({len(shots.paths)}) in {shots.folder}:")
        for path in shots.paths:
            print(f"  {path}")
        keep = os.environ.get("CARBENCH_SCREENSHOTS")
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            for path in shots.paths:
                shutil.copy2(path, Path(keep) / path.name)
    print(f"walked the console in {time.perf_counter() - started:.1f} s")
    assert len(shots.paths) >= 18
    assert HAND  # the weighbridge tickets are what the clinker source shows
