"""A terminal's management interface, as the suites read it: the "carbench" REST profile.

The profile is the reference terminal's management API (its OpenAPI document is at
``/openapi.json``); a vendor's terminal that serves the same routes is read the same way. What
the suites use:

==========================================  ====================================================
``GET /health``                             state, uptime, counters, open gaps, store durability
``GET /points``                             configured points (period, protocol, decimals …)
``GET /points/{id}/latest|readings``        stored readings: raw text, exact value, quality,
                                            the meter's digits
``GET /points/{id}/derived?kind=``          increments, minute/hour/day/month/year figures
``GET /events?kind=&point=``                gaps, switch-overs, rejected values, audit …
``POST /points/{id}/read``                  an on-command read (ISC-2 §9.1)
``POST /manual``                            a value entered by hand
``GET /export``, ``POST /backup``           history as a file, a backup of everything
``GET|PUT|PATCH /config``                   the configuration (remote configuration)
``GET /monitor``                            remote monitoring: ``system`` (cpu, memory, disk,
                                            os), ``application``, ``acquisition.points``,
                                            ``upload.centres``, ``error_log.items``
``GET /logs?category=``                     logs: acquisition, upload, method, configuration,
                                            apps
``GET|POST /apps``, ``PUT|DELETE /apps/…``  applications: list, install, upgrade, uninstall
                                            (``{"package", "signature"}``, base64)
``GET /uplink``, ``POST /uplink/…``         centres' state, send now, resend, backfill
``/accounting/…``, ``/meters``              emission accounting: methods, boundaries, statistics,
                                            emissions, reports, factors; the meter ledger
==========================================  ====================================================

Values are exact decimal text (a reading keeps the meter's digits, ISC-2 §9.3); times are POSIX
seconds. A terminal that does not answer is :class:`ManagementUnavailable` (the clause cannot be
judged: inconclusive); one that answers with an error where the profile promises data fails the
clause under test (:class:`ManagementRefused`, an assertion about the terminal).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from conformance.target import Management as ManagementSection
from conformance.target import ManagementChannel, TargetError
from conformance.verdicts import ClauseFailure, Inconclusive
from protocols.smchannel import ServerTrust
from protocols.smchannel.client import ChannelTransport
from protocols.smcrypto import Sm2PublicKey
from protocols.smcrypto.certificate import Certificate

#: Items asked for per page (the profile caps a page at 100 000).
PAGE = 50_000
#: Seconds a whole store's backup or restore may take: a store of months (the full profile's
#: holds 48 hours of the works fleet, ~600 MB) takes minutes, not the 30 s of other requests.
TRANSFER_TIMEOUT_S = 900.0
#: Requests sent once more, on a new connection, when the connection closed before any answer:
#: a server may close an idle keep-alive connection just as a request leaves on it (uvicorn and
#: httpx both keep one 5 s), and RFC 9112 §9.3.1 lets a client retry an idempotent request then.
#: Only reads: an action the terminal may have carried out is never repeated.
RESENT_ON_CLOSE = frozenset({"GET", "HEAD"})
_CLOSED = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class ManagementUnavailable(Inconclusive):
    """The management interface did not answer (connection refused, timeout)."""


class ManagementRefused(ClauseFailure):
    """The management interface answered with an error where the profile promises data."""

    def __init__(self, response: httpx.Response) -> None:
        self.status = response.status_code
        body = response.text[:400]
        super().__init__(
            f"the management interface answered {response.request.method} "
            f"{response.request.url.path} with HTTP {response.status_code}: {body}"
        )


@dataclass(frozen=True, slots=True)
class StoredReading:
    point: str
    t: float
    raw: str
    value: Decimal | None
    quality: str
    digits: int
    device: str
    note: str = ""

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> StoredReading:
        value = data.get("value")
        return cls(
            point=str(data["point"]),
            t=float(data["t"]),
            raw=str(data.get("raw", "")),
            value=None if value is None else Decimal(str(value)),
            quality=str(data["quality"]),
            digits=int(data.get("digits", 0)),
            device=str(data.get("device", "")),
            note=str(data.get("note", "")),
        )


@dataclass(frozen=True, slots=True)
class DerivedValue:
    point: str
    kind: str
    start: float
    end: float
    value: Decimal | None
    quality: str
    note: str
    computed_at: float

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> DerivedValue:
        value = data.get("value")
        return cls(
            point=str(data["point"]),
            kind=str(data["kind"]),
            start=float(data["start"]),
            end=float(data["end"]),
            value=None if value is None else Decimal(str(value)),
            quality=str(data["quality"]),
            note=str(data.get("note", "")),
            computed_at=float(data.get("computed_at", 0.0)),
        )


@dataclass(frozen=True, slots=True)
class EventRecord:
    t: float
    kind: str
    point: str | None
    device: str | None
    start: float | None
    end: float | None
    details: Mapping[str, str]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> EventRecord:
        return cls(
            t=float(data["t"]),
            kind=str(data["kind"]),
            point=data.get("point"),
            device=data.get("device"),
            start=data.get("start"),
            end=data.get("end"),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True, slots=True)
class ChannelAccess:
    """Where a terminal's SM management port answers and how the bench knows it's the
    terminal (``protocols.smchannel``)."""

    host: str
    port: int
    trust: ServerTrust

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    def declared(cls, spec: ManagementChannel) -> ChannelAccess:
        """From a target file's ``management.channel`` (its address and a CA or a key)."""
        if spec.address is None or ":" not in spec.address:
            raise TargetError("management.channel.address: host:port of the SM management port")
        host, _, port = spec.address.rpartition(":")
        try:
            ca = None if spec.ca_file is None else Certificate.from_pem(spec.ca_file.read_bytes())
            key = (
                None
                if spec.server_key_file is None
                else Sm2PublicKey.from_pem(spec.server_key_file.read_bytes())
            )
            trust = ServerTrust(ca=ca, public_key=key, subject=spec.subject)
        except (OSError, ValueError) as exc:  # SmCryptoError is a ValueError
            raise TargetError(f"management.channel: cannot read the trust anchor: {exc}") from exc
        return cls(host.strip("[]"), int(port), trust)


#: Roles of the carbench profile (the reference terminal's, ISC-2 §7.4.1.2(1)).
ADMINISTRATOR, OPERATOR, AUDITOR = "administrator", "security_operator", "auditor"
CONFIRM_HEADER = "X-Confirm"


class Management:
    """A client of one terminal's management interface (carbench profile), on the event loop
    of whoever calls it first.

    With accounts, each request goes as the role the profile gives that kind of request
    (separation of duties, ISC-2 §7.4.1.2): configuration, backups and accounts as the
    administrator, on-command reads, manual values and uploads as the security operator, the
    audit trail as the auditor, other reads as the operator (else the administrator). Each
    role logs in once (``POST /auth/login`` → bearer token) and again when its session ended
    (an idle timeout passes quickly in virtual time); a control operation (anything but GET)
    repeats the password in ``X-Confirm`` (SSEA §5.5.3)."""

    def __init__(
        self,
        base_url: str,
        *,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        accounts: Mapping[str, tuple[str, str]] | None = None,
        timeout_s: float = 30.0,
        still: Callable[[], AbstractContextManager[None]] | None = None,
        channel: ChannelAccess | None = None,
        local_address: str | None = None,
    ) -> None:
        #: The SM management port: when given, every request goes through it (base_url too).
        self.channel = channel
        #: The bench's address the connections come from (None: the system chooses).
        self.local_address = local_address
        if channel is not None:
            base_url = channel.base_url
        self.base_url = base_url.rstrip("/")
        self.accounts: dict[str, tuple[str, str]] = dict(accounts or {})
        if user is not None:
            self.accounts.setdefault("default", (user, password or ""))
        self.timeout_s = timeout_s
        #: Under virtual time, reading the terminal back is an observation that takes none of
        #: the terminal's time: GETs run inside ``still()`` (the clock's hold). Actions (an
        #: on-command read, a manual upload) may need time to pass and are not held.
        self.still = still
        self._tokens: dict[str, str] = {} if token is None else {"default": token}
        self._refused: set[str] = set()  # roles whose login failed: not retried (lockout)
        self._client: httpx.AsyncClient | None = None

    @classmethod
    def declared(
        cls,
        section: ManagementSection,
        base_url: str,
        *,
        still: Callable[[], AbstractContextManager[None]] | None = None,
        channel: ChannelAccess | None = None,
    ) -> Management:
        """A client with what a target file's ``management`` section declares (its accounts,
        token, timeout) at ``base_url``; ``channel`` overrides the section's SM channel."""
        if channel is None and section.channel is not None:
            channel = ChannelAccess.declared(section.channel)
        return cls(
            base_url,
            user=section.user,
            password=section.password,
            token=section.token,
            accounts={role: (a.user, a.password) for role, a in section.accounts.items()},
            timeout_s=section.timeout_s,
            still=still,
            channel=channel,
        )

    def account(self, role: str) -> tuple[str, str] | None:
        return self.accounts.get(role)

    def role_for(self, method: str, path: str) -> str | None:
        """The account a request goes as (None: no account configured)."""
        reading = method in ("GET", "HEAD")
        if path.startswith("/audit"):
            wanted = AUDITOR
        elif not reading and path.startswith(
            ("/config", "/backup", "/restore", "/users", "/apps", "/accounting/factors")
        ):
            wanted = ADMINISTRATOR
        elif not reading or path.startswith("/uplink"):
            wanted = OPERATOR
        else:
            wanted = OPERATOR if OPERATOR in self.accounts else ADMINISTRATOR
        for role in (wanted, ADMINISTRATOR, "default"):
            if role in self.accounts:
                return role
        return None

    def from_address(self, local_address: str) -> Management:
        """The same client connecting from ``local_address`` (another address of the bench's
        host), with sessions of its own."""
        other = copy.copy(self)
        other.local_address = local_address
        other._tokens, other._refused, other._client = {}, set(), None
        return other

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            local = self.local_address
            transport: httpx.AsyncBaseTransport | None = None
            if self.channel is not None:
                transport = ChannelTransport(self.channel.trust, local_address=local)
            elif local is not None:
                transport = httpx.AsyncHTTPTransport(local_address=local)
            self._client = httpx.AsyncClient(
                base_url=self.base_url, timeout=self.timeout_s, transport=transport
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # ---- raw requests ---------------------------------------------------------------------
    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            try:
                return await self._send_once(method, path, **kwargs)
            except _CLOSED:
                if method not in RESENT_ON_CLOSE:
                    raise
            return await self._send_once(method, path, **kwargs)
        except (httpx.TransportError, OSError) as exc:
            raise ManagementUnavailable(
                f"the management interface at {self.base_url} did not answer {method} {path}: "
                f"{exc!r}"
            ) from exc

    async def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        if self.still is not None and method == "GET":
            with self.still():
                return await self._http().request(method, path, **kwargs)
        return await self._http().request(method, path, **kwargs)

    async def login(self, role: str) -> str | None:
        """Log ``role``'s account in; its bearer token, or None (refused, or no login route:
        a terminal without authentication)."""
        user, password = self.accounts[role]
        response = await self._send(
            "POST", "/auth/login", json={"user": user, "password": password}
        )
        token = response.json().get("token") if response.status_code < 300 else None
        if token:
            self._tokens[role] = str(token)
            return str(token)
        self._refused.add(role)
        return None

    async def request(
        self,
        method: str,
        path: str,
        *,
        authenticated: bool = True,
        as_role: str | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """One request, answered whatever its status, as the account its kind of request goes
        as (``as_role`` to choose; ``authenticated=False`` sends no credentials at all: what a
        stranger on the LAN would send)."""
        role = (as_role or self.role_for(method, path)) if authenticated else None
        headers = dict(kwargs.pop("headers", None) or {})
        if role is not None and role in self.accounts and role not in self._refused:
            token = self._tokens.get(role) or await self.login(role)
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
            if method not in ("GET", "HEAD"):
                headers.setdefault(CONFIRM_HEADER, self.accounts[role][1])
        response = await self._send(method, path, headers=headers, **kwargs)
        if response.status_code == 401 and role in self._tokens:
            del self._tokens[role]  # the session ended (idle, lifetime): log in again, once
            token = await self.login(role)
            if token is not None:
                headers["Authorization"] = f"Bearer {token}"
                response = await self._send(method, path, headers=headers, **kwargs)
        return response

    async def change_password(self, role: str, new_password: str) -> httpx.Response:
        """Change ``role``'s own password (``POST /auth/password``, what an expired one
        allows) and go on with the new one."""
        user, old = self.accounts[role]
        response = await self.request(
            "POST",
            "/auth/password",
            as_role=role,
            json={"old_password": old, "new_password": new_password},
        )
        if response.status_code < 300:
            self.accounts[role] = (user, new_password)
            self._tokens.pop(role, None)  # the change may end the role's sessions
        return response

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ManagementRefused(response)
        return response.json()

    async def _items(self, path: str, params: dict[str, Any]) -> list[Mapping[str, Any]]:
        """Every item of a paged query: each next page starts after the last item's time."""
        out: list[Mapping[str, Any]] = []
        params = {k: v for k, v in params.items() if v is not None}
        params["limit"] = PAGE
        while True:
            response = await self.request("GET", path, params=params)
            if response.status_code == 404:
                return out  # no such point, or nothing stored yet
            if response.status_code >= 400:
                raise ManagementRefused(response)
            page = response.json()
            items = page["items"]
            out.extend(items)
            if not page.get("truncated") or not items:
                return out
            last = items[-1]
            key = "t" if "t" in last else "start"
            # the next page from just after the last time (items at the same instant: the
            # profile orders by time, so none is skipped unless > PAGE share one instant)
            params["start"] = repr(float(last[key]) + 1e-6)

    # ---- the terminal ---------------------------------------------------------------------
    async def health(self) -> dict[str, Any]:
        """``/health`` (answered with 503 while the terminal is not running: still a body)."""
        response = await self.request("GET", "/health")
        if response.status_code not in (200, 503):
            raise ManagementRefused(response)
        body: dict[str, Any] = response.json()
        return body

    async def points(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self._json("GET", "/points")
        return data

    async def monitor(self) -> dict[str, Any] | None:
        """``/monitor`` (remote monitoring); None when the terminal serves no such route."""
        response = await self.request("GET", "/monitor")
        if response.status_code in (404, 405):
            return None
        if response.status_code >= 400:
            raise ManagementRefused(response)
        body: dict[str, Any] = response.json()
        return body

    async def logs(
        self, category: str | None = None, start: float | None = None, end: float | None = None
    ) -> list[dict[str, Any]] | None:
        """``/logs`` entries (every page); None when the terminal serves no such route."""
        params = {"category": category, "start": None if start is None else repr(start)}
        params["end"] = None if end is None else repr(end)
        probe = await self.request("GET", "/logs", params={"limit": 1})
        if probe.status_code in (404, 405):
            return None
        if probe.status_code >= 400:
            raise ManagementRefused(probe)
        return [dict(i) for i in await self._items("/logs", params)]

    async def config(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._json("GET", "/config")
        return data

    async def put_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = await self._json("PUT", "/config", json=dict(config))
        return data

    # ---- stored data ----------------------------------------------------------------------
    async def latest(self, point: str) -> StoredReading | None:
        response = await self.request("GET", f"/points/{point}/latest")
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise ManagementRefused(response)
        return StoredReading.of(response.json())

    async def readings(
        self, point: str, start: float | None = None, end: float | None = None
    ) -> list[StoredReading]:
        params = {"start": None if start is None else repr(start)}
        params["end"] = None if end is None else repr(end)
        items = await self._items(f"/points/{point}/readings", params)
        return [StoredReading.of(i) for i in items]

    async def derived(
        self,
        point: str,
        kind: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[DerivedValue]:
        params = {"kind": kind, "start": None if start is None else repr(start)}
        params["end"] = None if end is None else repr(end)
        items = await self._items(f"/points/{point}/derived", params)
        return [DerivedValue.of(i) for i in items]

    async def events(
        self,
        kind: str | None = None,
        point: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[EventRecord]:
        params = {"kind": kind, "point": point, "start": None if start is None else repr(start)}
        params["end"] = None if end is None else repr(end)
        items = await self._items("/events", params)
        return [EventRecord.of(i) for i in items]

    # ---- actions --------------------------------------------------------------------------
    async def read_now(self, point: str) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self._json("POST", f"/points/{point}/read")
        return data

    async def enter_manual(
        self, point: str, value: str, t: float, operator: str, note: str = ""
    ) -> dict[str, Any]:
        body = {"point": point, "value": value, "time": t, "operator": operator, "note": note}
        data: dict[str, Any] = await self._json("POST", "/manual", json=body)
        return data

    async def export(
        self,
        what: str = "readings",
        fmt: str = "csv",
        start: float | None = None,
        end: float | None = None,
        points: list[str] | None = None,
    ) -> httpx.Response:
        params: dict[str, Any] = {"what": what, "format": fmt}
        if start is not None:
            params["start"] = repr(start)
        if end is not None:
            params["end"] = repr(end)
        if points:
            params["points"] = ",".join(points)
        response = await self.request("GET", "/export", params=params)
        if response.status_code >= 400:
            raise ManagementRefused(response)
        return response

    async def backup(self) -> httpx.Response:
        response = await self.request("POST", "/backup", timeout=TRANSFER_TIMEOUT_S)
        if response.status_code >= 400:
            raise ManagementRefused(response)
        return response

    async def restore(self, backup: bytes) -> httpx.Response:
        """``POST /restore`` of a backup ``backup`` gave, answered whatever its status."""
        return await self.request(
            "POST",
            "/restore",
            content=backup,
            headers={"Content-Type": "application/vnd.sqlite3"},
            timeout=TRANSFER_TIMEOUT_S,
        )

    async def uplink(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._json("GET", "/uplink")
        return data

    # ---- applications (ISC-2 §8.4) ---------------------------------------------------------
    async def apps(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = await self._json("GET", "/apps")
        return data

    async def install_app(self, package: bytes, signature: bytes) -> httpx.Response:
        """``POST /apps``, answered whatever its status (a refusal may be what is judged)."""
        return await self.request("POST", "/apps", json=_package(package, signature))

    async def upgrade_app(self, name: str, package: bytes, signature: bytes) -> httpx.Response:
        return await self.request("PUT", f"/apps/{name}", json=_package(package, signature))

    async def uninstall_app(self, name: str) -> httpx.Response:
        return await self.request("DELETE", f"/apps/{name}")

    async def send_now(self, centre: str) -> dict[str, Any]:
        data: dict[str, Any] = await self._json("POST", f"/uplink/{centre}/send-now")
        return data

    async def resend(self, centre: str, stream: str, start: float, end: float) -> dict[str, Any]:
        body = {"stream": stream, "start": start, "end": end}
        data: dict[str, Any] = await self._json("POST", f"/uplink/{centre}/resend", json=body)
        return data

    async def backfill(
        self, stream: str, start: float, end: float, reason: str, centres: list[str] | None = None
    ) -> dict[str, Any]:
        body = {"stream": stream, "start": start, "end": end, "reason": reason, "centres": centres}
        data: dict[str, Any] = await self._json("POST", "/uplink/backfill", json=body)
        return data


def _package(package: bytes, signature: bytes) -> dict[str, str]:
    return {
        "package": base64.b64encode(package).decode("ascii"),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
