"""Sessions (ISC-2 §7.4.1.1(2) 结束会话 … 当登录连接超时自动退出): opened by a login, ended by a
logout, by ``idle_timeout_s`` without a request, or ``lifetime_s`` after the login, whichever
comes first.

- The token is 32 random bytes (``cbt_`` + base64url); the table keeps only its SM3 digest, so
  a memory dump of the terminal does not yield usable tokens.
- A session is bound to the address it logged in from: a token replayed from elsewhere is
  refused.
- Durations use the terminal clock's ``monotonic()`` (a wall-clock step by NTP neither ends nor
  extends sessions); the deadlines a client is shown are on ``time()``.
- Sessions live in memory: a restart of the terminal ends them all.
"""

from __future__ import annotations

import base64
import os
import re
from dataclasses import dataclass

from common.clock import Clock
from protocols.smcrypto import sm3
from reference_terminal.config import SessionRules
from reference_terminal.security.errors import SessionInvalid, TooManySessions
from reference_terminal.security.roles import Role

TOKEN_PREFIX = "cbt_"
TOKEN = re.compile(r"^cbt_[A-Za-z0-9_-]{43}$")


def parse_token(text: str) -> str | None:
    """``text`` if it has the shape of a token, else None (checked before any lookup)."""
    return text if TOKEN.fullmatch(text) else None


def _digest(token: str) -> bytes:
    return sm3(token.encode("ascii"))


@dataclass
class Session:
    #: A public handle for the audit log and the console (not the token).
    id: str
    user: str
    role: Role
    source: str
    opened: float  # clock.monotonic() at login
    last_seen: float  # clock.monotonic() at the latest request
    opened_at: float  # clock.time() at login
    #: Only a password change (or a logout) is allowed: one-time or expired password.
    must_change: bool = False


class SessionTable:
    """The open sessions, by token digest."""

    def __init__(self, rules: SessionRules, clock: Clock) -> None:
        self.rules = rules
        self.clock = clock
        self._by_digest: dict[bytes, Session] = {}

    def __len__(self) -> int:
        return len(self._by_digest)

    def _ended_why(self, session: Session, now: float) -> str | None:
        if now - session.opened >= self.rules.lifetime_s:
            return f"the session reached its lifetime of {self.rules.lifetime_s:g} s"
        if now - session.last_seen >= self.rules.idle_timeout_s:
            return f"the session was idle for more than {self.rules.idle_timeout_s:g} s"
        return None

    def purge(self) -> int:
        """Forget every session that has ended; how many."""
        now = self.clock.monotonic()
        ended = [d for d, s in self._by_digest.items() if self._ended_why(s, now)]
        for digest in ended:
            del self._by_digest[digest]
        return len(ended)

    def active(self) -> list[Session]:
        """The sessions still open (the ended ones are forgotten first)."""
        self.purge()
        return list(self._by_digest.values())

    def open(self, user: str, role: Role, source: str, *, must_change: bool) -> tuple[str, Session]:
        """A new session: (its token, shown once; the session)."""
        if len(self._by_digest) >= self.rules.max_sessions:
            self.purge()
            if len(self._by_digest) >= self.rules.max_sessions:
                raise TooManySessions(
                    f"{self.rules.max_sessions} sessions are open: log out of one first"
                )
        token = TOKEN_PREFIX + base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
        now = self.clock.monotonic()
        session = Session(
            id=os.urandom(6).hex(),
            user=user,
            role=role,
            source=source,
            opened=now,
            last_seen=now,
            opened_at=self.clock.time(),
            must_change=must_change,
        )
        self._by_digest[_digest(token)] = session
        return token, session

    def resolve(self, token: str, source: str) -> Session:
        """The session of ``token``, touched (its idle time starts again); raises
        :class:`SessionInvalid` saying why not."""
        if parse_token(token) is None:
            raise SessionInvalid("the bearer token is malformed")
        digest = _digest(token)
        session = self._by_digest.get(digest)
        if session is None:
            raise SessionInvalid("no such session: it ended (logout, timeout) or never existed")
        now = self.clock.monotonic()
        why = self._ended_why(session, now)
        if why is not None:
            del self._by_digest[digest]
            raise SessionInvalid(f"{why}: log in again")
        if source != session.source:
            raise SessionInvalid(
                f"the session was opened from {session.source}, not from {source or 'here'}"
            )
        session.last_seen = now
        return session

    def end(self, session: Session) -> None:
        for digest, s in list(self._by_digest.items()):
            if s is session:
                del self._by_digest[digest]

    def end_user(self, user: str, *, keep: Session | None = None) -> int:
        """End every session of ``user`` (but ``keep``); how many."""
        ended = [d for d, s in self._by_digest.items() if s.user == user and s is not keep]
        for digest in ended:
            del self._by_digest[digest]
        return len(ended)

    def deadlines(self, session: Session) -> tuple[float, float]:
        """(idle deadline, absolute deadline) on the terminal's ``time()``."""
        now, wall = self.clock.monotonic(), self.clock.time()
        idle = wall + (session.last_seen + self.rules.idle_timeout_s - now)
        absolute = wall + (session.opened + self.rules.lifetime_s - now)
        return idle, absolute
