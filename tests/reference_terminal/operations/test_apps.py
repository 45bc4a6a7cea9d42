"""The application host: install, upgrade, a failed upgrade rolled back, rollback on request,
uninstall, restart after a cut, and applications that get nothing of the terminal."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench.adapters.apps import BROKEN, WELL, package
from common.clock import RealClock
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.config import Apps
from reference_terminal.model import Event
from reference_terminal.operations.apps import AppError, AppHost

#: An application that shows what it was given: its environment and working directory.
NOSY = """\
import json, os
print(json.dumps({"env": sorted(os.environ), "cwd": os.getcwd()}), flush=True)
print("ready", flush=True)
import time
while True:
    time.sleep(3600)
"""
SLOW = """\
import time
time.sleep(60)
"""


class Recorded:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def __call__(self, events: Sequence[Event]) -> None:
        self.events.extend(events)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


@pytest.fixture(scope="module")
def key() -> Sm2PrivateKey:
    return Sm2PrivateKey.generate()


def settings(tmp_path: Path, key: Sm2PrivateKey, **overrides: object) -> Apps:
    public = tmp_path / "vendor.pem"
    public.write_text(key.public_key().to_pem())
    data: dict[str, object] = {
        "enabled": True,
        "dir": str(tmp_path / "apps"),
        "trusted_keys": [str(public)],
        "start_timeout_s": 10,
    }
    data.update(overrides)
    return Apps.model_validate(data)


def signed(key: Sm2PrivateKey, version: str, main: str = WELL) -> tuple[bytes, bytes]:
    data = package("probe", version, main, f"probe {version}")
    return data, key.sign_der(data)


def test_install_upgrade_rollback_and_uninstall(tmp_path: Path, key: Sm2PrivateKey) -> None:
    async def main() -> None:
        log = Recorded()
        host = AppHost(settings(tmp_path, key), RealClock(), log)
        await host.start()
        try:
            first = await host.install(*signed(key, "1.0.0"), user="admin")
            assert (first.name, first.version, first.state) == ("probe", "1.0.0", "running")
            assert first.pid is not None and first.output == ("ready",)
            with pytest.raises(AppError) as exists:
                await host.install(*signed(key, "1.0.0"))
            assert exists.value.code == "app_exists"

            upgraded = await host.upgrade("probe", *signed(key, "1.1.0"), user="admin")
            assert (upgraded.version, upgraded.previous_version) == ("1.1.0", "1.0.0")
            assert upgraded.pid != first.pid
            with pytest.raises(AppError) as older:
                await host.upgrade("probe", *signed(key, "1.0.5"))
            assert older.value.code == "not_newer"

            with pytest.raises(AppError) as failed:
                await host.upgrade("probe", *signed(key, "1.2.0", BROKEN))
            assert failed.value.code == "start_failed"
            assert failed.value.extra == {"rolled_back_to": "1.1.0"}
            assert "broken on purpose" in str(failed.value)
            back = host.status("probe")
            assert (back.version, back.state) == ("1.1.0", "running")
            assert not (tmp_path / "apps" / "probe" / "1.2.0").exists()

            rolled = await host.rollback("probe")
            assert (rolled.version, rolled.previous_version, rolled.state) == (
                "1.0.0",
                "1.1.0",
                "running",
            )
            assert await host.uninstall("probe") == "1.0.0"
            assert host.statuses() == []
            assert not (tmp_path / "apps" / "probe").exists()
            with pytest.raises(AppError) as gone:
                host.status("probe")
            assert gone.value.code == "unknown_app"
        finally:
            await host.stop()
        assert log.kinds() == [
            "app_installed",
            "app_refused",
            "app_upgraded",
            "app_refused",
            "app_rolled_back",
            "app_rolled_back",
            "app_uninstalled",
        ]
        assert log.events[0].details["user"] == "admin"

    asyncio.run(main())


def test_a_refused_package_leaves_nothing(tmp_path: Path, key: Sm2PrivateKey) -> None:
    async def main() -> None:
        host = AppHost(settings(tmp_path, key, max_package_bytes=4096), RealClock())
        data, signature = signed(key, "1.0.0")
        tampered = data[:100] + bytes([data[100] ^ 1]) + data[101:]
        for attempt, code in (
            (host.install(tampered, signature), "signature"),
            (host.install(data, Sm2PrivateKey.generate().sign_der(data)), "signature"),
            (host.install(data + b"\0" * 5000, signature), "too_large"),
            (host.install(*signed(key, "1.0.0", BROKEN)), "start_failed"),
        ):
            with pytest.raises(AppError) as refused:
                await attempt
            assert refused.value.code == code
        assert host.statuses() == []
        assert list((tmp_path / "apps").iterdir()) == []
        disabled = AppHost(Apps(), RealClock())
        with pytest.raises(AppError) as off:
            await disabled.install(data, signature)
        assert off.value.code == "apps_disabled"

    asyncio.run(main())


def test_an_application_gets_nothing_of_the_terminal(tmp_path: Path, key: Sm2PrivateKey) -> None:
    async def main() -> None:
        host = AppHost(settings(tmp_path, key), RealClock())
        os.environ["CARBENCH_TEST_SECRET"] = "terminal only"
        try:
            status = await host.install(*signed(key, "1.0.0", NOSY))
        finally:
            del os.environ["CARBENCH_TEST_SECRET"]
            await host.stop()
        seen = json.loads(status.output[0])
        assert seen["env"] == ["CARBENCH_APP", "CARBENCH_APP_VERSION", "HOME", "LANG", "PATH"]
        assert Path(seen["cwd"]) == tmp_path / "apps" / "probe" / "1.0.0"

    asyncio.run(main())


def test_an_application_that_never_says_ready_is_stopped(
    tmp_path: Path, key: Sm2PrivateKey
) -> None:
    async def main() -> None:
        host = AppHost(settings(tmp_path, key, start_timeout_s=0.5), RealClock())
        with pytest.raises(AppError, match=r"did not say ready within 0\.5 s"):
            await host.install(*signed(key, "1.0.0", SLOW))
        assert host.statuses() == []

    asyncio.run(main())


def test_installed_applications_start_again_and_leftovers_go(
    tmp_path: Path, key: Sm2PrivateKey
) -> None:
    async def main() -> None:
        first = AppHost(settings(tmp_path, key), RealClock())
        await first.install(*signed(key, "1.0.0"))
        await first.upgrade("probe", *signed(key, "1.1.0"))
        await first.stop()  # the power goes
        app = tmp_path / "apps" / "probe"
        (app / "1.3.0.part").mkdir()  # an upgrade the cut interrupted
        (tmp_path / "apps" / "half").mkdir()  # an install it interrupted
        again = AppHost(settings(tmp_path, key), RealClock())
        await again.start()
        try:
            for _ in range(200):
                if again.status("probe").state == "running":
                    break
                await asyncio.sleep(0.05)
            status = again.status("probe")
            assert (status.version, status.state) == ("1.1.0", "running")
            assert sorted(p.name for p in app.iterdir()) == [
                "1.0.0",
                "1.0.0.json",
                "1.1.0",
                "1.1.0.json",
                "state.json",
            ]
            assert not (tmp_path / "apps" / "half").exists()
        finally:
            await again.stop()

    asyncio.run(main())


def test_a_disk_that_cannot_take_the_package_is_said(tmp_path: Path, key: Sm2PrivateKey) -> None:
    async def main() -> None:
        host = AppHost(settings(tmp_path, key), RealClock())
        (tmp_path / "apps").write_text("a file where the directory should be")
        with pytest.raises(AppError) as refused:
            await host.install(*signed(key, "1.0.0"))
        assert refused.value.code == "storage"
        assert str(tmp_path / "apps") in str(refused.value)

    asyncio.run(main())
