"""The security core put together for one terminal: accounts, sessions, the audit log and the
key that protects them. No HTTP here: the management API (``reference_terminal/api``) turns
requests into these calls and these errors into answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from common.clock import Clock
from reference_terminal.config import Security
from reference_terminal.security.audit import AuditLog
from reference_terminal.security.errors import (
    AccountLocked,
    ConfirmationFailed,
    ConfirmationRequired,
    LoginFailed,
    SessionInvalid,
)
from reference_terminal.security.roles import Role
from reference_terminal.security.secrets import SecretBox
from reference_terminal.security.sessions import Session, SessionTable
from reference_terminal.security.users import User, UserDirectory
from reference_terminal.storage.store import Store


@dataclass(frozen=True, slots=True)
class LoginResult:
    token: str
    session: Session
    user: User
    must_change: bool


class SecurityService:
    """Everything ``security:`` configures, for one terminal."""

    def __init__(
        self,
        settings: Security,
        clock: Clock,
        store: Callable[[], Store | None],
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.box = SecretBox.from_key_file(settings.key_file)
        self.users = UserDirectory(settings, self.box, clock, environ=environ)
        self.sessions = SessionTable(settings.sessions, clock)
        self.audit = AuditLog(store, clock, self.box, Path(settings.state_dir) / "audit.anchor")

    async def login(self, user_id: str, password: str, source: str) -> LoginResult:
        """Check the password (ISC-2 §7.4.1.1) and open a session; a lockout ends the user's
        open sessions too."""
        try:
            user = await self.users.verify(user_id, password, source=source)
        except AccountLocked:
            self.sessions.end_user(user_id)
            raise
        must_change = self.users.must_change(user)
        token, session = self.sessions.open(user.id, user.role, source, must_change=must_change)
        return LoginResult(token, session, user, must_change)

    def authenticate(self, token: str, source: str) -> Session:
        """The session of a bearer token, checked against its account as it is *now*: deleted,
        locked, or (an administrator) outside the allowed networks end it."""
        session = self.sessions.resolve(token, source)
        user = self.users.get(session.user)
        if user is None or user.role is not session.role:
            self.sessions.end(session)
            raise SessionInvalid(f"the account {session.user} was deleted or changed")
        if self.users.locked_until(user) is not None:
            self.sessions.end(session)
            raise SessionInvalid(f"the account {session.user} is locked")
        self.users.check_source(user, source)
        return session

    async def confirm(self, session: Session, password: str | None, source: str) -> None:
        """SSEA §5.5.3: the password again for a control operation. A wrong one counts as a
        failed login (so a stolen session cannot guess it) and a lockout ends the sessions."""
        if not password:
            raise ConfirmationRequired(
                "a control operation needs the caller's password again in the X-Confirm header"
            )
        try:
            await self.users.verify(session.user, password, source=source)
        except AccountLocked:
            self.sessions.end_user(session.user)
            raise
        except LoginFailed:
            raise ConfirmationFailed(
                "the X-Confirm password is not the session user's password"
            ) from None

    def logout(self, session: Session) -> None:
        self.sessions.end(session)

    async def change_password(self, session: Session, old: str, new: str, source: str) -> User:
        """One's own password; the other sessions of the user end, this one may do anything
        its role allows again."""
        try:
            user = await self.users.change_password(session.user, old, new, source=source)
        except AccountLocked:
            self.sessions.end_user(session.user)
            raise
        self.sessions.end_user(session.user, keep=session)
        session.must_change = False
        return user

    async def create_user(self, user_id: str, role: Role, password: str) -> User:
        return await self.users.create(user_id, role, password)

    def delete_user(self, user_id: str, *, by: str) -> User:
        user = self.users.delete(user_id, by=by)
        self.sessions.end_user(user_id)
        return user

    async def reset_password(self, user_id: str, password: str) -> User:
        user = await self.users.reset_password(user_id, password)
        self.sessions.end_user(user_id)
        return user

    def unlock(self, user_id: str) -> User:
        return self.users.unlock(user_id)
