"""User accounts (ISC-2 §7.4.1.1, §7.4.1.2): unique IDs, one role each, passwords, lockout,
and the administrator's source-address restriction.

Accounts live in a sealed file (``<state_dir>/users.sealed``, SM4 + HMAC-SM3 under the key
file, :mod:`.secrets`), never in the store: a copy of the database carries no credential,
and a changed byte in the file stops the terminal from trusting it. Every change is written
through (fsync) before it is acknowledged, lockouts included, so restarting the terminal does
not reset a brute-force counter. The exception is a successful check (a login, a confirmation),
which only clears the count and sets the last-login time: that is written within a few seconds
(one write for all the logins meanwhile), atomically but not fsynced, so a power cut or a crash
can at worst bring back the older count (an earlier lock, never a later one) and an older
last-login time.

- Lockout: ``lockout.max_failures`` failed checks in a row (logins and control-operation
  confirmations alike) lock the account for ``lockout.lock_s``; afterwards the count starts
  again. An attempt is counted *before* its (slow) hash check, so a burst of parallel guesses
  cannot all slip in before the lock.
- Source address: an administrator may log in only from ``admin_networks`` (ISC-2
  §7.4.1.2(3)), checked before the password so guesses from elsewhere never reach it.
- A password someone else chose (an initial one-time password, an administrator's reset) and an
  expired one must be changed at the next login before anything else is allowed.
- Times are the terminal's clock (``clock.time()``): locks and password ages are kept across
  restarts.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from common.clock import Clock
from reference_terminal.config import Security
from reference_terminal.security.errors import (
    AccountLocked,
    BadUserId,
    BootstrapError,
    LoginFailed,
    PasswordRejected,
    SecretsError,
    SourceRefused,
    UnknownUser,
    UserExists,
    UserProtected,
)
from reference_terminal.security.passwords import (
    check_complexity,
    dummy_hash,
    expired,
    expires_at,
    hash_password,
    iterations_of,
    verify_password,
)
from reference_terminal.security.roles import Role
from reference_terminal.security.secrets import SealedFile, SecretBox

#: The configuration's ``Id``: what a user ID may look like.
USER_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
FILE_VERSION = 1
#: The sealed file of accounts, in ``security.state_dir``.
USERS_FILE = "users.sealed"


def utc(t: float) -> str:
    """A terminal time for a message."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds")


class User(BaseModel):
    """One account as stored (sealed). ``password_hash`` is PBKDF2-HMAC-SM3, never clear text."""

    model_config = ConfigDict(extra="forbid")

    id: str
    role: Role
    password_hash: str
    password_set_at: float
    created_at: float
    #: A one-time password (initial, or reset by an administrator): change it first.
    must_change: bool = False
    #: Failed checks in a row since the last success or lock.
    failures: int = 0
    locked_until: float | None = None
    last_login: float | None = None
    #: The previous password hashes, newest first (``passwords.history`` of them).
    history: list[str] = []


#: Wall seconds a successful check's bookkeeping may wait to be written.
SUCCESS_FLUSH_S = 5.0


class UserDirectory:
    """The accounts, loaded from (or, on the first start, bootstrapped into) the sealed file."""

    def __init__(
        self,
        settings: Security,
        box: SecretBox,
        clock: Clock,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self._file = SealedFile(Path(settings.state_dir) / USERS_FILE, box, "users")
        self._users: dict[str, User] = {}
        self._pending: asyncio.TimerHandle | None = None
        self.success_flush_s = SUCCESS_FLUSH_S
        document = self._file.read()
        #: Whether this start made the initial users (the service audits it).
        self.bootstrapped = document is None
        if document is None:
            self._bootstrap(os.environ if environ is None else environ)
        else:
            self._load(document)

    @property
    def path(self) -> Path:
        return self._file.path

    # ---- persistence ---------------------------------------------------------------------------

    def _load(self, document: object) -> None:
        if not isinstance(document, dict) or document.get("version") != FILE_VERSION:
            raise SecretsError(f"{self._file.path} is not a version {FILE_VERSION} user file")
        try:
            users = [User.model_validate(u) for u in document.get("users", [])]
        except ValueError as exc:
            raise SecretsError(f"{self._file.path} holds a malformed account: {exc}") from None
        self._users = {u.id: u for u in users}

    def _save(self, durable: bool = True) -> None:
        if self._pending is not None:  # this write covers it
            self._pending.cancel()
            self._pending = None
        users = [u.model_dump(mode="json") for u in self._users.values()]
        self._file.write({"version": FILE_VERSION, "users": users}, durable=durable)

    def _save_soon(self) -> None:
        """Write within ``success_flush_s`` wall seconds, not fsynced: one write for every
        successful check meanwhile (a rename per login held the event loop ~5 ms each)."""
        if self._pending is None:
            loop = asyncio.get_running_loop()
            self._pending = loop.call_later(self.success_flush_s, self._save, False)

    def _bootstrap(self, environ: Mapping[str, str]) -> None:
        now = self.clock.time()
        rules = self.settings.passwords
        for i, initial in enumerate(self.settings.initial_users):
            if initial.password_hash is not None:
                stored, one_time = initial.password_hash, False
            else:
                assert initial.password_env is not None  # the configuration checks one is set
                password = environ.get(initial.password_env)
                if not password:
                    raise BootstrapError(
                        f"security.initial_users[{i}].password_env: the environment variable "
                        f"{initial.password_env} holding {initial.id}'s one-time password is "
                        "not set"
                    )
                try:
                    check_complexity(password, rules, initial.id)
                except PasswordRejected as exc:
                    raise BootstrapError(
                        f"security.initial_users[{i}]: {initial.id}'s one-time password: "
                        f"{exc.message}"
                    ) from None
                stored, one_time = hash_password(password, rules.kdf_iterations), True
            self._users[initial.id] = User(
                id=initial.id,
                role=Role(initial.role),
                password_hash=stored,
                password_set_at=now,
                created_at=now,
                must_change=one_time,
            )
        self._save()

    # ---- lookups -------------------------------------------------------------------------------

    def get(self, user_id: str) -> User | None:
        return self._users.get(user_id)

    def all(self) -> list[User]:
        return sorted(self._users.values(), key=lambda u: u.id)

    def locked_until(self, user: User) -> float | None:
        """When ``user``'s lock ends, or None if not locked now."""
        if user.locked_until is not None and user.locked_until > self.clock.time():
            return user.locked_until
        return None

    def password_expires_at(self, user: User) -> float:
        return expires_at(user.password_set_at, self.settings.passwords)

    def must_change(self, user: User) -> bool:
        """A one-time or expired password: only a password change is allowed."""
        return user.must_change or expired(
            user.password_set_at, self.clock.time(), self.settings.passwords
        )

    def source_allowed(self, role: Role, source: str) -> bool:
        """Whether ``role`` may come from ``source`` (only administrators are restricted)."""
        if role is not Role.ADMINISTRATOR:
            return True
        try:
            address = ipaddress.ip_address(source)
        except ValueError:
            return False  # no address (a Unix socket, a test client without one): refused
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.settings.admin_networks)

    def check_source(self, user: User, source: str) -> None:
        if not self.source_allowed(user.role, source):
            networks = ", ".join(str(n) for n in self.settings.admin_networks)
            raise SourceRefused(
                f"administrator {user.id} may not log in from {source or 'an unknown address'}: "
                f"only from {networks}"
            )

    # ---- checking a password -------------------------------------------------------------------

    async def verify(self, user_id: str, password: str, *, source: str) -> User:
        """Check a login (or a control operation's confirmation) and count it.

        Raises :class:`LoginFailed` (wrong user or password, never saying which),
        :class:`AccountLocked` or :class:`SourceRefused`."""
        rules, lockout = self.settings.passwords, self.settings.lockout
        user = self._users.get(user_id)
        if user is None:
            await asyncio.to_thread(verify_password, password, dummy_hash(rules.kdf_iterations))
            raise LoginFailed("wrong user ID or password")
        self.check_source(user, source)
        until = self.locked_until(user)
        if until is not None:
            raise AccountLocked(
                f"{user.id} is locked until {utc(until)} after {lockout.max_failures} failed "
                "logins",
                until,
            )
        if user.locked_until is not None:  # the lock is over: a fresh count
            user.locked_until, user.failures = None, 0
        if user.failures >= lockout.max_failures:
            self._lock(user)  # attempts in flight already used up the allowance
        user.failures += 1  # counted before the slow check: parallel guesses see it
        ok = await asyncio.to_thread(verify_password, password, user.password_hash)
        user = self._users.get(user_id)
        if user is None:  # deleted meanwhile
            raise LoginFailed("wrong user ID or password")
        if ok:
            user.failures = 0
            user.last_login = self.clock.time()
            rehash = iterations_of(user.password_hash) < rules.kdf_iterations
            if rehash:  # rounds were raised
                user.password_hash = await asyncio.to_thread(
                    hash_password, password, rules.kdf_iterations
                )
            # A success changes only the last-login time and clears the count: written a
            # little later, atomically but not fsynced (a cut may keep the older file, whose
            # count errs on the side of an earlier lock). Failures and credentials: fsynced now.
            if rehash:
                self._save()
            else:
                self._save_soon()
            return user
        if user.failures >= lockout.max_failures:
            self._lock(user)
        self._save()
        raise LoginFailed("wrong user ID or password")

    def _lock(self, user: User) -> None:
        lockout = self.settings.lockout
        user.locked_until = self.clock.time() + lockout.lock_s
        self._save()
        raise AccountLocked(
            f"{user.id} is locked for {lockout.lock_s:g} s, until {utc(user.locked_until)}, "
            f"after {lockout.max_failures} failed logins",
            user.locked_until,
        )

    # ---- changes -------------------------------------------------------------------------------

    async def create(self, user_id: str, role: Role, password: str) -> User:
        """A new account with a one-time password (to be changed at its first login)."""
        if not USER_ID.match(user_id):
            raise BadUserId(
                f"user ID {user_id!r} must start with a letter and use letters, digits, "
                "'_', '.', '-' (≤ 64)"
            )
        if user_id in self._users:
            raise UserExists(f"user ID {user_id!r} is taken: user IDs are unique")
        check_complexity(password, self.settings.passwords, user_id)
        stored = await asyncio.to_thread(
            hash_password, password, self.settings.passwords.kdf_iterations
        )
        if user_id in self._users:  # made meanwhile
            raise UserExists(f"user ID {user_id!r} is taken: user IDs are unique")
        now = self.clock.time()
        user = User(
            id=user_id,
            role=role,
            password_hash=stored,
            password_set_at=now,
            created_at=now,
            must_change=True,
        )
        self._users[user_id] = user
        self._save()
        return user

    def _existing(self, user_id: str) -> User:
        user = self._users.get(user_id)
        if user is None:
            raise UnknownUser(f"no user {user_id!r}")
        return user

    def delete(self, user_id: str, *, by: str) -> User:
        user = self._existing(user_id)
        if user_id == by:
            raise UserProtected(f"{by} cannot delete their own account")
        administrators = [u for u in self._users.values() if u.role is Role.ADMINISTRATOR]
        if user.role is Role.ADMINISTRATOR and len(administrators) == 1:
            raise UserProtected(f"{user_id} is the last administrator")
        del self._users[user_id]
        self._save()
        return user

    def unlock(self, user_id: str) -> User:
        user = self._existing(user_id)
        user.failures, user.locked_until = 0, None
        self._save()
        return user

    async def reset_password(self, user_id: str, password: str) -> User:
        """An administrator sets a one-time password (and lifts any lock)."""
        user = self._existing(user_id)
        check_complexity(password, self.settings.passwords, user_id)
        stored = await asyncio.to_thread(
            hash_password, password, self.settings.passwords.kdf_iterations
        )
        user = self._existing(user_id)
        self._replace_password(user, stored)
        user.must_change = True
        user.failures, user.locked_until = 0, None
        self._save()
        return user

    async def change_password(self, user_id: str, old: str, new: str, *, source: str) -> User:
        """A user's own change: the old password again (counted like a login), then the rules:
        complexity, and none of the last ``passwords.history`` passwords."""
        rules = self.settings.passwords
        user = await self.verify(user_id, old, source=source)
        check_complexity(new, rules, user_id)
        previous = [user.password_hash, *user.history[: rules.history]]
        for stored in previous:
            if await asyncio.to_thread(verify_password, new, stored):
                raise PasswordRejected(
                    f"the new password must differ from the current one and the last "
                    f"{rules.history}"
                )
        stored = await asyncio.to_thread(hash_password, new, rules.kdf_iterations)
        user = self._existing(user_id)
        self._replace_password(user, stored)
        user.must_change = False
        self._save()
        return user

    def _replace_password(self, user: User, stored: str) -> None:
        keep = self.settings.passwords.history
        user.history = [user.password_hash, *user.history][:keep] if keep else []
        user.password_hash = stored
        user.password_set_at = self.clock.time()
