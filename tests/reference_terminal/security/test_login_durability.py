"""What a login writes, and how durably: a failed check (the lockout count, ISC-2 §7.4.1.1(2))
is fsynced before it is answered and survives a restart; a successful one only clears the
count and sets the last-login time, written a moment later for all the logins meanwhile,
atomically without fsync (logins stay cheap)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from reference_terminal.security.errors import LoginFailed
from reference_terminal.security.passwords import _pbkdf2_sm3_loop, pbkdf2_sm3
from reference_terminal.security.secrets import SealedFile
from tests.reference_terminal.security.harness import LOCAL, ManualClock, password
from tests.reference_terminal.security.test_accounts import directory


def test_failures_are_fsynced_and_successes_are_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writes: list[bool] = []
    original = SealedFile.write

    def spy(self: SealedFile, document: Any, *, durable: bool = True) -> None:
        writes.append(durable)
        original(self, document, durable=durable)

    async def main() -> None:
        clock = ManualClock()
        users = directory(tmp_path, clock, lockout={"max_failures": 3, "lock_s": 600})
        monkeypatch.setattr(SealedFile, "write", spy)
        with pytest.raises(LoginFailed):
            await users.verify("operator", "Wrong!pass1", source=LOCAL)
        assert writes == [True]
        restarted = directory(tmp_path, clock, lockout={"max_failures": 3, "lock_s": 600})
        operator = restarted.get("operator")
        assert operator is not None and operator.failures == 1  # the count survived
        writes.clear()
        clock.advance(5)
        restarted.success_flush_s = 0.05
        user = await restarted.verify("operator", password("operator"), source=LOCAL)
        await restarted.verify("operator", password("operator"), source=LOCAL)
        assert writes == []  # not yet: one write for the logins of the next moments
        await asyncio.sleep(0.2)
        assert writes == [False]
        assert user.failures == 0 and user.last_login == clock.now
        # written, though not fsynced: a restart without a power cut sees it
        again = directory(tmp_path, clock, lockout={"max_failures": 3, "lock_s": 600})
        operator = again.get("operator")
        assert operator is not None and operator.last_login == clock.now

    asyncio.run(main())


def test_openssl_pbkdf2_equals_the_rfc_8018_loop() -> None:
    for rounds in (1, 2, 3, 1000):
        assert pbkdf2_sm3(b"pw", b"salt-salt-salt-1", rounds) == _pbkdf2_sm3_loop(
            b"pw", b"salt-salt-salt-1", rounds
        )
