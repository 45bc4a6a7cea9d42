"""Schemathesis against the management API's own OpenAPI document (``/openapi.json``), in
process over ASGI, with security on: every operation, as a signed-in user whose role may perform
it (the administrator wherever the administrator may: everything but operating the terminal and
the audit log; the intake as a collector, without a session), its control operations
confirmed; documents that fit the schema, documents that do not, and as many again with the path
naming things the terminal has (a point, a centre, an account …). Added by hand: times and
period labels at the edges of the calendar, a signed application package, reading documents
for the intake (its body is not in the document).

The acceptance (issue 8): no 5xx — but a 502 for a factor library the terminal could not
download, an upstream failure — and no crash: no request left unanswered, the terminal still
running afterwards; every error in the API's JSON shape; every request audited, the audit chain
intact.

Generation is derandomized (the same cases on every run) and bounded per operation:
``CARBENCH_FUZZ_EXAMPLES`` (default 10 per mode) makes a longer run, ``CARBENCH_FUZZ_ONLY=TEXT``
fuzzes only the operations whose ``METHOD /path`` contains TEXT.

The terminal dials whatever a fuzzed configuration names (meters, centres); a guard in the test
refuses every connection and name lookup outside the loopback range, so the fuzzing never
reaches the network.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import ipaddress
import json
import os
import socket
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode

from bench.adapters.apps import WELL, package
from protocols.smcrypto import Sm2PrivateKey
from reference_terminal.api import create_app
from reference_terminal.app import Terminal
from reference_terminal.config import TerminalConfig
from reference_terminal.security.roles import PERMISSIONS, Action, Role
from reference_terminal.security.service import SecurityService
from tests.reference_terminal.accounting.terminal_config import config_data
from tests.reference_terminal.security.harness import (
    LOCAL,
    ManualClock,
    password,
    security_section,
)
from tests.reference_terminal.uplink.helpers import MN_A, hj212_centre

T = TypeVar("T")
EXAMPLES = int(os.environ.get("CARBENCH_FUZZ_EXAMPLES", "10"))
ANSWER_WITHIN_S = 30
BASE = "http://terminal"
#: Who performs an action: the administrator wherever allowed, else the role that may.
PREFERENCE = (Role.ADMINISTRATOR, Role.SECURITY_OPERATOR, Role.AUDITOR)
ACCOUNT_OF = {
    Role.ADMINISTRATOR: "admin",
    Role.SECURITY_OPERATOR: "operator",
    Role.AUDITOR: "auditor",
}
KEY = Sm2PrivateKey.generate()


# ---- the terminal ------------------------------------------------------------------------------


def fuzz_config(tmp_path: Path) -> TerminalConfig:
    """The accounting test terminal (meters on loopback, a hand-entered point, accounting with
    alarms), secured, with application management on."""
    data = copy.deepcopy(config_data(tmp_path))
    data["devices"].append({"id": "collector", "protocol": "https", "mode": "push"})
    data["points"].append(
        {
            "id": "heat_gj",
            "unit": "GJ",
            "kind": "counter",
            "group": "g",
            "source": {"device": "collector", "name": "heat"},
        }
    )
    data["uplink"] = {
        "codes": [{"point": "em.ep", "code": "a05001"}],
        # nobody listens: what is queued for the centre stays in its outbox
        "centres": [hj212_centre("provincial", MN_A, 9)],
    }
    data["security"] = security_section(tmp_path)
    public = tmp_path / "vendor.pem"
    public.write_text(KEY.public_key().to_pem())
    data["apps"] = {"enabled": True, "dir": str(tmp_path / "apps"), "trusted_keys": [str(public)]}
    return TerminalConfig.model_validate(data)


class LoopThread:
    """One event loop in a thread for the whole test: the terminal runs in it while hypothesis
    calls the synchronous test function case after case."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@dataclass
class Fuzzed:
    terminal: Terminal
    app: FastAPI
    task: asyncio.Task[None]
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def service(self) -> SecurityService:
        service = self.app.state.security
        assert isinstance(service, SecurityService)
        return service

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(
            app=self.app, client=(LOCAL, 50_000), raise_app_exceptions=False
        )
        return httpx.AsyncClient(transport=transport, base_url=BASE, timeout=30)

    async def login(self, user: str) -> str:
        """A fresh session for ``user`` (unlocked first: the fuzzed logins lock accounts)."""
        users = self.service.users
        account = users.get(user)
        if account is not None and users.locked_until(account) is not None:
            self.service.unlock(user)
        async with self.client() as client:
            response = await client.post(
                "/auth/login", json={"user": user, "password": password(user)}
            )
        assert response.status_code == 200, response.text
        token = response.json()["token"]
        self.tokens[user] = token
        return str(token)


@contextlib.asynccontextmanager
async def fuzzed_terminal(tmp_path: Path) -> AsyncIterator[Fuzzed]:
    terminal = Terminal(fuzz_config(tmp_path), clock=ManualClock())
    app = create_app(terminal)
    task = asyncio.create_task(terminal.run())
    ready = asyncio.create_task(terminal.ready.wait())
    try:
        await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()
        assert terminal.ready.is_set(), "the terminal did not start within 10 s"
        yield Fuzzed(terminal, app, task)
    finally:
        ready.cancel()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# ---- the network guard -------------------------------------------------------------------------


def _loopback(host: object) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse name lookups and connections outside 127.0.0.0/8 and ::1 for this test."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if not _loopback(name):
            raise socket.gaierror(socket.EAI_NONAME, f"fuzzing: no lookup of {name!r}")
        return real_getaddrinfo(host, *args, **kwargs)

    def allowed(sock: socket.socket, address: Any) -> bool:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return True
        return isinstance(address, tuple) and _loopback(address[0])

    def connect(self: socket.socket, address: Any) -> None:
        if not allowed(self, address):
            raise ConnectionRefusedError(f"fuzzing: no connection to {address!r}")
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        if not allowed(self, address):
            raise ConnectionRefusedError(f"fuzzing: no connection to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)


@pytest.fixture
def fuzzed(tmp_path: Path, loopback_only: None) -> Iterator[tuple[LoopThread, Fuzzed]]:
    runner = LoopThread()
    stack = contextlib.AsyncExitStack()
    try:
        f = runner.run(stack.enter_async_context(fuzzed_terminal(tmp_path)))
        yield runner, f
    finally:
        runner.run(stack.aclose())
        runner.close()


# ---- who may do what ---------------------------------------------------------------------------


def _actions(dependant: Dependant) -> set[Action]:
    found: set[Action] = set()
    for dep in dependant.dependencies:
        name = getattr(dep.call, "__name__", "")
        if name.startswith("authorize_"):
            found.add(Action(name.removeprefix("authorize_")))
        found |= _actions(dep)
    return found


def route_actions(app: FastAPI) -> dict[tuple[str, str], Action | None]:
    """(METHOD, path) → the action each route declares (None: open, e.g. the login)."""
    out: dict[tuple[str, str], Action | None] = {}
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute):
            actions = _actions(context.dependant)
            assert len(actions) <= 1, (context.path_format, actions)
            for method in context.methods or ():
                out[(method, str(context.path_format))] = next(iter(actions), None)
    return out


def performer(action: Action | None) -> str | None:
    """Who sends a request for ``action``: None for a collector pushing to the intake (no
    session: the intake's own principal)."""
    if action is Action.PUSH:
        return None
    if action is None:
        return ACCOUNT_OF[Role.ADMINISTRATOR]
    for role in PREFERENCE:
        if action in PERMISSIONS[role]:
            return ACCOUNT_OF[role]
    raise AssertionError(f"no role may {action.value}")


# ---- sending a case ----------------------------------------------------------------------------


def httpx_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Schemathesis' requests-style arguments for httpx."""
    out = {k: kwargs[k] for k in ("method", "url", "headers", "params") if kwargs.get(k)}
    out.setdefault("headers", {})
    if kwargs.get("cookies"):
        out["cookies"] = kwargs["cookies"]
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    if "content" in kwargs:
        out["content"] = kwargs["content"]
    data = kwargs.get("data")
    if isinstance(data, str | bytes):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    if kwargs.get("files"):
        out["files"] = kwargs["files"]
    return out


@dataclass
class Finding:
    label: str
    status: int
    request: str
    body: str


def test_every_operation_fuzzed_without_a_server_error(
    fuzzed: tuple[LoopThread, Fuzzed],
) -> None:
    runner, f = fuzzed
    document = runner.run(_openapi(f))
    schema = schemathesis.openapi.from_dict(document)
    actions = route_actions(f.app)
    for account in ACCOUNT_OF.values():
        runner.run(f.login(account))
    runner.run(f.service.create_user("fuzzee", Role.SECURITY_OPERATOR, "Fuzz3e!pass"))
    before = runner.run(f.service.audit.query(limit=None))[1]
    findings: list[Finding] = []
    sent = logins = 0
    statuses: dict[str, dict[int, int]] = {}
    started = time.perf_counter()

    async def send(user: str | None, kwargs: dict[str, Any]) -> httpx.Response:
        nonlocal logins
        headers = kwargs["headers"]
        if user is not None:
            headers["Authorization"] = f"Bearer {f.tokens[user]}"
            headers["X-Confirm"] = password(user)
        async with f.client() as client:
            response = await client.request(**kwargs)
        if user is None:
            return response
        if response.status_code == 401 or (
            response.status_code == 403 and response.json().get("error") == "account_locked"
        ):
            await f.login(user)  # the case logged out, or locked the account: sign in again
            logins += 1
        return response

    def check(label: str, counts: dict[int, int], user: str | None, kwargs: dict[str, Any]) -> None:
        nonlocal sent
        try:
            response = runner.run(send(user, kwargs), timeout=ANSWER_WITHIN_S)
        except (httpx.InvalidURL, UnicodeEncodeError):
            return  # refused by httpx before it reached the app
        except TimeoutError:
            raise AssertionError(
                f"{label}: no answer within {ANSWER_WITHIN_S} s to {_shown(kwargs)}"
            ) from None
        sent += 1
        counts[response.status_code] = counts.get(response.status_code, 0) + 1
        problem = _problem(response)
        if problem is not None:
            findings.append(Finding(label, response.status_code, _shown(kwargs), problem[:500]))

    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the OpenAPI document is invalid: {result.err()}"
        operations.append(result.ok())
    # Deleting the audit log last: until then every request must have left one entry.
    operations.sort(key=lambda op: (op.method.upper(), op.path) == ("DELETE", "/audit"))
    audited: int | None = None
    expected = 0
    only = os.environ.get("CARBENCH_FUZZ_ONLY", "")
    for operation in operations:
        if only and only not in f"{operation.method.upper()} {operation.path}":
            continue
        if (operation.method.upper(), operation.path) == ("DELETE", "/audit"):
            audited = runner.run(f.service.audit.query(limit=None))[1] - before
            expected = sent + logins
        method, path = operation.method.upper(), operation.path
        assert (method, path) in actions, f"{method} {path} is in the document, not the app"
        user = performer(actions[(method, path)])
        label = f"{method} {path}"
        counts = statuses.setdefault(label, {})
        for kwargs in _generated(operation):
            check(label, counts, user, kwargs)
        for kwargs in _extra_cases(operation):
            check(label, counts, user, httpx_kwargs(kwargs))

    if audited is None:
        audited = runner.run(f.service.audit.query(limit=None))[1] - before
        expected = sent + logins
    elapsed = time.perf_counter() - started
    print(f"\nschemathesis: {len(operations)} operations, {sent} requests in {elapsed:.1f} s")
    for label, counts in statuses.items():
        print(f"  {label}: {dict(sorted(counts.items()))}")
    assert not findings, "\n".join(
        f"{x.label} → {x.status}: {x.body}\n    {x.request}" for x in findings
    )
    # no crash: the terminal still runs and answers
    assert not f.task.done(), f.task.exception() if f.task.done() else ""
    health = runner.run(_get(f, "/health", "admin"))
    assert health.status_code == 200, health.text
    # every request audited, the logins too (up to the deletion of the whole log, recorded)
    assert audited == expected
    verified = runner.run(f.service.audit.verify_chain())
    assert verified.ok, verified


#: Path parameters that name something the terminal has, so that generated queries and bodies
#: get past the lookup (random names mostly meet a 404).
KNOWN = {
    "point_id": "em.ep",
    "centre": "provincial",
    "name": "probe",
    "period": "month",
    "device": "collector",
    "user_id": "fuzzee",
}


def _generated(operation: Any) -> list[dict[str, Any]]:
    """The requests schemathesis makes of ``operation``: cases that fit the schema and cases
    that do not, ``EXAMPLES`` of each at most, and as many again with the path naming things
    the terminal has; the same on every run."""
    out: list[dict[str, Any]] = []
    names = [p.name for p in operation.path_parameters]
    batches: list[tuple[GenerationMode, dict[str, Any] | None]] = [
        (GenerationMode.POSITIVE, None),
        (GenerationMode.NEGATIVE, None),
    ]
    if names and all(n in KNOWN for n in names):
        batches.append((GenerationMode.POSITIVE, {n: KNOWN[n] for n in names}))
    for mode, path in batches:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(mode, path_parameters=path))
        def collect(case: Any) -> None:
            # (a negative case no HTTP client can put on the wire is left out)
            with contextlib.suppress(Exception):
                out.append(httpx_kwargs(case.as_transport_kwargs(base_url=BASE)))

        with contextlib.suppress(Unsatisfiable):  # nothing to break: no parameter, no body
            collect()
    return out


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
#: Reading documents (the intake's body is raw JSON, not in the OpenAPI document): nearly
#: right ones and anything at all.
intake_documents = (
    st.fixed_dictionaries(
        {
            "collector": st.just("collector") | st.text(max_size=8),
            "time": st.just("2026-11-01T08:00:00+08:00")
            | st.text(max_size=30)
            | st.floats()
            | st.integers(),
            "values": st.dictionaries(
                st.just("heat") | st.text(max_size=6),
                st.fixed_dictionaries(
                    {
                        "value": st.text(max_size=12) | st.floats() | st.integers(),
                        "unit": st.sampled_from(["GJ", "kWh", ""]),
                    }
                )
                | json_values,
                max_size=3,
            ),
        }
    )
    | json_values
)


def _intake_cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    @settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=True, database=None)
    @given(document=intake_documents)
    def collect(document: Any) -> None:
        body = json.dumps(document).encode("ascii")  # NaN, Infinity and lone surrogates too
        out.append(
            {
                "method": "POST",
                "url": f"{BASE}/intake/collector",
                "headers": {"Content-Type": "application/json"},
                "content": body,
            }
        )

    collect()
    return out


#: Times at the edges: far past and future, beyond what a date can hold, not numbers at all.
EXTREME_TIMES = ["1e300", "-1e300", "9e15", "-9e15", "-62135596801", "253402300800", "nan", "-0"]
TIME_PARAMETERS = ("start", "end", "at")


def _extreme_times(operation: Any) -> list[dict[str, Any]]:
    """A GET with every time parameter it takes set to each extreme time."""
    names = [p.name for p in operation.query if p.name in TIME_PARAMETERS]
    if operation.method.upper() != "GET" or not names:
        return []
    path = operation.path
    for name in (p.name for p in operation.path_parameters):
        path = path.replace(f"{{{name}}}", KNOWN[name])
    return [
        {"method": "GET", "url": BASE + path, "headers": {}, "params": dict.fromkeys(names, t)}
        for t in EXTREME_TIMES
    ]


#: Period labels at the edges of the calendar.
EXTREME_PERIODS = ["0001", "0001-01", "1970-01", "9999", "9999-12", "9999-W52", "9999-Q4",
                   "9999-12-31 23:00", "0001-01-01"]  # fmt: skip


def _extreme_periods(operation: Any) -> list[dict[str, Any]]:
    if [p.name for p in operation.path_parameters] != ["period"]:
        return []
    return [
        {"method": "GET", "url": BASE + operation.path.replace("{period}", quote(label))}
        | {"headers": {}}
        for label in EXTREME_PERIODS
    ]


#: ISO 8601 times a date can write but a POSIX time cannot hold (year 0 in UTC), or only just.
EDGE_ISO = [
    ("0001-01-01T00:00:00+14:00", "0001-01-01T01:00:00+14:00"),
    ("0001-01-01T00:00:00+08:00", "0001-02-01T00:00:00+08:00"),
    ("9999-12-31T00:00:00-12:00", "9999-12-31T23:59:59-12:00"),
]


def _manual_cases(label: str) -> list[dict[str, Any]]:
    """Values entered by hand at the edges of time, as JSON and as CSV."""
    if label == "POST /manual":
        times = [*EXTREME_TIMES, *(start for start, _ in EDGE_ISO)]
        return [
            {
                "method": "POST",
                "url": f"{BASE}/manual",
                "headers": {},
                "json": {"point": "ticket.clinker", "value": "1", "operator": "fuzz", "time": t},
            }
            for t in times
        ]
    if label == "POST /manual/csv":
        head = "point,period_start,period_end,quantity,value,unit,entered_by,source\n"
        return [
            {
                "method": "POST",
                "url": f"{BASE}/manual/csv",
                "headers": {"Content-Type": "text/csv"},
                "content": f"{head}clinker,{start},{end},clinker,1,t,fuzz,ticket\n".encode(),
            }
            for start, end in EDGE_ISO
        ]
    return []


def _extra_cases(operation: Any) -> list[dict[str, Any]]:
    """Cases generation cannot reach: times at the edges, a package that is signed, reading
    documents."""
    label = f"{operation.method.upper()} {operation.path}"
    out = _extreme_times(operation) + _extreme_periods(operation) + _manual_cases(label)
    if label == "POST /intake/{device}":
        return out + _intake_cases()
    if label in ("POST /apps", "PUT /apps/{name}"):
        data = package("probe", "1.0.0", WELL)
        body = {
            "package": base64.b64encode(data).decode(),
            "signature": base64.b64encode(KEY.sign_der(data)).decode(),
        }
        url = f"{BASE}/apps" if label.startswith("POST") else f"{BASE}/apps/probe"
        return [
            *out,
            {"method": label.split(maxsplit=1)[0], "url": url, "headers": {}, "json": body},
        ]
    return out


def _problem(response: httpx.Response) -> str | None:
    """What is wrong with an answer: a 5xx, or an error not in the API's JSON shape."""
    if response.status_code >= 500 and not _upstream(response):
        return response.text
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            return f"not JSON: {response.text}"
        if not (isinstance(body.get("error"), str) and isinstance(body.get("detail"), str)):
            return f"not the error shape: {response.text}"
    return None


def _upstream(response: httpx.Response) -> bool:
    """A 502 for a platform the terminal could not download from (an http(s) URL the guard kept
    it from reaching): the gateway status of an upstream failure, not the terminal's own."""
    return response.status_code == 502 and response.json().get("error") == "download_failed"


def _shown(kwargs: dict[str, Any]) -> str:
    shown = {k: v for k, v in kwargs.items() if k != "headers"}
    return repr(shown)[:800]


async def _openapi(f: Fuzzed) -> dict[str, Any]:
    async with f.client() as client:
        response = await client.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


async def _get(f: Fuzzed, path: str, user: str) -> httpx.Response:
    token = await f.login(user)
    async with f.client() as client:
        return await client.get(path, headers={"Authorization": f"Bearer {token}"})
