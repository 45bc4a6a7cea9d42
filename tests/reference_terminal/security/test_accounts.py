"""Accounts and sessions without the API (ISC-2 §7.4.1.1, §7.4.1.2): unique IDs, one role
each, lockout after N failures released after the period, the administrator's source networks,
sessions ending by logout, idle timeout or lifetime — all on a clock the test moves."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from reference_terminal.config import Security
from reference_terminal.security.errors import (
    AccountLocked,
    BootstrapError,
    LoginFailed,
    PasswordRejected,
    SessionInvalid,
    SourceRefused,
    TooManySessions,
    UserExists,
    UserProtected,
)
from reference_terminal.security.roles import Role
from reference_terminal.security.secrets import SecretBox
from reference_terminal.security.sessions import SessionTable, parse_token
from reference_terminal.security.users import UserDirectory
from tests.reference_terminal.security.harness import (
    LOCAL,
    REMOTE,
    ManualClock,
    account_hash,
    password,
    security_section,
)


def settings(tmp_path: Path, **overrides: Any) -> Security:
    return Security.model_validate(security_section(tmp_path, **overrides))


def directory(
    tmp_path: Path, clock: ManualClock, environ: dict[str, str] | None = None, **overrides: Any
) -> UserDirectory:
    s = settings(tmp_path, **overrides)
    return UserDirectory(s, SecretBox.from_key_file(s.key_file), clock, environ=environ or {})


def test_the_initial_accounts_come_from_hashes_and_one_time_passwords(tmp_path: Path) -> None:
    clock = ManualClock()
    users = directory(
        tmp_path,
        clock,
        environ={"OTP": "First!login1"},
        initial_users=[
            {"id": "admin", "role": "administrator", "password_hash": account_hash("admin")},
            {"id": "root2", "role": "administrator", "password_env": "OTP"},
        ],
    )
    assert users.bootstrapped
    assert [(u.id, u.role, u.must_change) for u in users.all()] == [
        ("admin", Role.ADMINISTRATOR, False),
        ("root2", Role.ADMINISTRATOR, True),  # a one-time password: change it first
    ]
    sealed = users.path.read_bytes()
    for clear in (b"First!login1", b"Adm1n!pass", b"pbkdf2-sm3", b"admin"):
        assert clear not in sealed
    # The next start reads the sealed file and does not bootstrap again.
    again = directory(tmp_path, clock, environ={})
    assert not again.bootstrapped and [u.id for u in again.all()] == ["admin", "root2"]


def test_a_missing_or_weak_one_time_password_stops_the_start(tmp_path: Path) -> None:
    initial = [{"id": "admin", "role": "administrator", "password_env": "CARBENCH_OTP"}]
    with pytest.raises(BootstrapError, match=r"initial_users\[0\]\.password_env.*CARBENCH_OTP"):
        directory(tmp_path / "a", ManualClock(), environ={}, initial_users=initial)
    with pytest.raises(BootstrapError, match="too weak"):
        directory(
            tmp_path / "b", ManualClock(), environ={"CARBENCH_OTP": "123"}, initial_users=initial
        )


def test_the_configuration_wants_an_administrator_when_security_is_on(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="initial_users: security is enabled but no administrator"):
        settings(tmp_path, initial_users=[])
    with pytest.raises(ValueError, match=r"initial_users\[1\]\.id: 'admin' is used twice"):
        settings(
            tmp_path,
            initial_users=[
                {"id": "admin", "role": "administrator", "password_hash": account_hash("admin")},
                {"id": "admin", "role": "auditor", "password_hash": account_hash("auditor")},
            ],
        )
    with pytest.raises(ValueError, match="exactly one of password_hash"):
        settings(tmp_path, initial_users=[{"id": "admin", "role": "administrator"}])


def test_config_role_names_are_the_roles() -> None:
    from typing import get_args

    from reference_terminal.config import RoleName

    assert set(get_args(RoleName)) == {r.value for r in Role}


def test_lockout_after_n_failures_and_release_after_the_period(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.1(2) 限制非法登录次数: 3 wrong passwords lock the account for 600 s, the right
    one included; after 600 s on the terminal's clock it opens again, and the lock survives a
    restart of the terminal meanwhile."""

    async def main() -> None:
        clock = ManualClock()
        users = directory(tmp_path, clock, lockout={"max_failures": 3, "lock_s": 600})
        for _ in range(2):
            with pytest.raises(LoginFailed, match="wrong user ID or password"):
                await users.verify("operator", "Wrong!pass1", source=LOCAL)
        with pytest.raises(AccountLocked, match="locked for 600 s") as locked:
            await users.verify("operator", "Wrong!pass1", source=LOCAL)
        assert locked.value.locked_until == clock.now + 600
        assert "ISC-2 §7.4.1.1(2)" in str(locked.value)
        with pytest.raises(AccountLocked):
            await users.verify("operator", password("operator"), source=LOCAL)

        restarted = directory(tmp_path, clock, lockout={"max_failures": 3, "lock_s": 600})
        clock.advance(599)
        with pytest.raises(AccountLocked):
            await restarted.verify("operator", password("operator"), source=LOCAL)
        clock.advance(1)
        user = await restarted.verify("operator", password("operator"), source=LOCAL)
        assert user.failures == 0 and user.locked_until is None

    asyncio.run(main())


def test_a_success_resets_the_count_and_an_unknown_user_looks_like_a_wrong_password(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        users = directory(tmp_path, ManualClock(), lockout={"max_failures": 3})
        for _ in range(2):
            with pytest.raises(LoginFailed):
                await users.verify("operator", "Wrong!pass1", source=LOCAL)
        await users.verify("operator", password("operator"), source=LOCAL)
        for _ in range(2):
            with pytest.raises(LoginFailed):
                await users.verify("operator", "Wrong!pass1", source=LOCAL)
        with pytest.raises(LoginFailed) as unknown:
            await users.verify("nobody", "Wrong!pass1", source=LOCAL)
        with pytest.raises(LoginFailed) as wrong:
            await users.verify("auditor", "Wrong!pass1", source=LOCAL)
        assert str(unknown.value) == str(wrong.value)

    asyncio.run(main())


def test_parallel_guesses_cannot_all_slip_in_before_the_lock(tmp_path: Path) -> None:
    async def main() -> None:
        users = directory(tmp_path, ManualClock(), lockout={"max_failures": 3})
        results = await asyncio.gather(
            *(users.verify("operator", f"Guess!{i:04d}", source=LOCAL) for i in range(10)),
            return_exceptions=True,
        )
        assert all(isinstance(r, LoginFailed | AccountLocked) for r in results)
        assert sum(isinstance(r, AccountLocked) for r in results) >= 7
        with pytest.raises(AccountLocked):
            await users.verify("operator", password("operator"), source=LOCAL)

    asyncio.run(main())


def test_administrators_log_in_only_from_the_configured_networks(tmp_path: Path) -> None:
    """ISC-2 §7.4.1.2(3) 应支持对登录装置的管理员登录地址进行限制: the address is checked before
    the password, so guesses from elsewhere never reach it (nor count)."""

    async def main() -> None:
        users = directory(tmp_path, ManualClock(), admin_networks=["192.168.10.0/24", "::1/128"])
        for source in (REMOTE, LOCAL, "192.168.11.1", "", "not an address"):
            with pytest.raises(
                SourceRefused, match=re.escape("only from 192.168.10.0/24, ::1/128")
            ):
                await users.verify("admin", password("admin"), source=source)
        admin = users.get("admin")
        assert admin is not None and admin.failures == 0
        for source in ("192.168.10.7", "::1", "::ffff:192.168.10.7"):
            await users.verify("admin", password("admin"), source=source)
        # Only administrators are restricted.
        await users.verify("operator", password("operator"), source=REMOTE)
        await users.verify("auditor", password("auditor"), source=REMOTE)

    asyncio.run(main())


def test_ids_are_unique_and_the_last_administrator_stays(tmp_path: Path) -> None:
    async def main() -> None:
        users = directory(tmp_path, ManualClock())
        with pytest.raises(UserExists, match="unique"):
            await users.create("operator", Role.AUDITOR, "An0ther!pass")
        with pytest.raises(PasswordRejected):
            await users.create("op2", Role.SECURITY_OPERATOR, "weak")
        made = await users.create("op2", Role.SECURITY_OPERATOR, "An0ther!pass")
        assert made.must_change
        with pytest.raises(UserProtected, match="own account"):
            users.delete("admin", by="admin")
        with pytest.raises(UserProtected, match="last administrator"):
            users.delete("admin", by="op2")
        users.delete("op2", by="admin")
        assert users.get("op2") is None

    asyncio.run(main())


def test_a_password_change_keeps_history_and_complexity(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        users = directory(tmp_path, clock, passwords={"kdf_iterations": 10_000, "history": 2})
        old = password("operator")
        with pytest.raises(PasswordRejected, match="too weak"):
            await users.change_password("operator", old, "short", source=LOCAL)
        with pytest.raises(PasswordRejected, match="differ from the current one"):
            await users.change_password("operator", old, old, source=LOCAL)
        with pytest.raises(LoginFailed):
            await users.change_password("operator", "Wrong!pass1", "N3w!password", source=LOCAL)
        await users.change_password("operator", old, "N3w!password", source=LOCAL)
        await users.change_password("operator", "N3w!password", "N3wer!password", source=LOCAL)
        with pytest.raises(PasswordRejected, match="last 2"):
            await users.change_password("operator", "N3wer!password", old, source=LOCAL)
        user = users.get("operator")
        assert user is not None and user.password_set_at == clock.now and not user.must_change
        clock.advance(90 * 86400)
        assert users.must_change(user)  # expired (ISC-2 §7.4.1.1(1) 有效期限制)

    asyncio.run(main())


def rules(tmp_path: Path, **overrides: Any) -> Security:
    return settings(tmp_path, sessions={"idle_timeout_s": 600, "lifetime_s": 3600, **overrides})


def test_a_session_ends_after_the_idle_timeout(tmp_path: Path) -> None:
    clock = ManualClock()
    table = SessionTable(rules(tmp_path).sessions, clock)
    token, session = table.open("operator", Role.SECURITY_OPERATOR, LOCAL, must_change=False)
    assert parse_token(token) == token
    clock.advance(599)
    assert table.resolve(token, LOCAL) is session  # a request: idle time starts again
    clock.advance(599)
    assert table.resolve(token, LOCAL) is session
    clock.advance(600)
    with pytest.raises(SessionInvalid, match="idle for more than 600 s") as caught:
        table.resolve(token, LOCAL)
    assert "登录连接超时自动退出" in str(caught.value)
    with pytest.raises(SessionInvalid, match="no such session"):
        table.resolve(token, LOCAL)


def test_a_busy_session_still_ends_at_its_lifetime(tmp_path: Path) -> None:
    clock = ManualClock()
    table = SessionTable(rules(tmp_path).sessions, clock)
    token, session = table.open("operator", Role.SECURITY_OPERATOR, LOCAL, must_change=False)
    assert table.deadlines(session) == (clock.now + 600, clock.now + 3600)
    for _ in range(11):
        clock.advance(300)
        table.resolve(token, LOCAL)
    clock.advance(300)
    with pytest.raises(SessionInvalid, match="lifetime of 3600 s"):
        table.resolve(token, LOCAL)


def test_logout_other_addresses_malformed_tokens_and_the_session_cap(tmp_path: Path) -> None:
    clock = ManualClock()
    table = SessionTable(rules(tmp_path, max_sessions=2).sessions, clock)
    token, session = table.open("auditor", Role.AUDITOR, LOCAL, must_change=False)
    with pytest.raises(SessionInvalid, match=re.escape("opened from 127.0.0.1")):
        table.resolve(token, REMOTE)
    for bad in (
        "",
        "cbt_",
        token[:-1],
        token + "A",
        token.replace("cbt_", "xyz_"),
        "cbt_" + "!" * 43,
    ):
        with pytest.raises(SessionInvalid):
            table.resolve(bad, LOCAL)
    table.open("auditor", Role.AUDITOR, LOCAL, must_change=False)
    with pytest.raises(TooManySessions):
        table.open("admin", Role.ADMINISTRATOR, LOCAL, must_change=False)
    table.end(session)
    with pytest.raises(SessionInvalid):
        table.resolve(token, LOCAL)
    table.open("admin", Role.ADMINISTRATOR, LOCAL, must_change=False)
    clock.advance(600)  # both idle: the cap counts only open sessions
    table.open("admin", Role.ADMINISTRATOR, LOCAL, must_change=False)
    assert len(table.active()) == 1
