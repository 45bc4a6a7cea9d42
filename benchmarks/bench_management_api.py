"""The management API under load (CPCIF §6.2): ``python -m benchmarks.bench_management_api``
prints one JSON object.

The reference terminal runs as it does on a gateway (``python -m reference_terminal``, its API
served by uvicorn on 127.0.0.1) with security on: 50 accounts, every request authenticated,
authorized and audited (an SM3-chained entry, committed, per request). Its store is filled first
with a year of 1-minute readings of one point and what processing derives from them (minute and
hour windows), 1.06 million rows.

- **Sessions:** the 50 users log in 20 times each: 1 000 sessions open through the run.
- **Interactive calls:** 50 concurrent users (one connection each), each on one of its sessions,
  call what a console or an operator calls — status, monitoring, the point list, a latest value,
  the last hour of readings, the last day of hourly values, events, logs, the configuration,
  the session — one after another, each after a think time of 0 to 1 s (uniform), for
  ``--seconds``. Target p95 ≤ 200 ms.
- **One-year history of one point:** meanwhile a 51st client asks, again and again, for the year
  of hourly values of the point (``/points/{id}/derived?kind=hour``, 8 760 values, what the
  console draws for a year). Target p95 ≤ 1 s.
- ``--no-think``: the users call without pausing (the API saturated; for a throughput figure).

Latencies are wall time from sending a request to its last byte, on the same 2 cores as the
server: the load generator's own share of the CPU is in the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml

from benchmarks.harness import Figure, free_ports, report
from reference_terminal.model import Quality, Reading
from reference_terminal.security.passwords import hash_password
from reference_terminal.storage.schema import Derived
from reference_terminal.storage.store import Store, sqlite_url

POINT = "kiln.kw"
USERS = 50
SESSIONS_PER_USER = 20
PASSWORD = "Bench!pass-2027"
KDF_ITERATIONS = 10_000  # the least the configuration accepts
YEAR_S = 365 * 86400
INTERACTIVE_P95_MS = 200.0
HISTORY_P95_MS = 1000.0


def value_at(t: float) -> Decimal:
    day = math.sin(2 * math.pi * (t % 86400) / 86400)
    season = math.sin(2 * math.pi * (t % YEAR_S) / YEAR_S)
    return Decimal(f"{4200 + 600 * day + 300 * season:.1f}")


async def fill_store(url: str, end: float) -> int:
    """A year of minute readings of ``POINT`` up to ``end``, with minute and hour windows."""
    start = int(end // 3600) * 3600 - YEAR_S
    rows = 0
    store = await Store.open(url)
    try:
        chunk = 43_200  # a month of minutes per transaction
        for first in range(0, YEAR_S // 60, chunk):
            readings, derived = [], []
            for k in range(first, min(first + chunk, YEAR_S // 60)):
                t = float(start + 60 * k)
                v = value_at(t)
                readings.append(Reading(POINT, t, str(v), v, Quality.GOOD, 1, "dcs"))
                derived.append(Derived(POINT, "minute", t, t + 60, v, Quality.GOOD, "", t + 60))
            for h in range(first // 60, min(first + chunk, YEAR_S // 60) // 60):
                t = float(start + 3600 * h)
                v = value_at(t + 1800)
                derived.append(Derived(POINT, "hour", t, t + 3600, v, Quality.GOOD, "", t + 3600))
            await store.write(readings, derived=derived)
            rows += len(readings) + len(derived)
    finally:
        await store.close()
    return rows


def configuration(folder: Path, port: int) -> dict[str, Any]:
    digest = hash_password(PASSWORD, KDF_ITERATIONS)
    users = [{"id": "admin", "role": "administrator", "password_hash": digest}]
    users += [
        {"id": f"user{n:02d}", "role": "security_operator", "password_hash": digest}
        for n in range(USERS)
    ]
    return {
        "name": "management API benchmark",
        "api": {"host": "127.0.0.1", "port": port},
        "devices": [{"id": "dcs", "protocol": "manual"}],
        "groups": [{"id": "minute", "period_s": 60}],
        "points": [
            {
                "id": POINT,
                "name": "kiln drive power",
                "unit": "kW",
                "group": "minute",
                "decimals": 1,
                "source": {"device": "dcs", "name": "kiln.kw"},
            }
        ],
        "storage": {"url": sqlite_url(folder / "terminal.db")},
        "security": {
            "enabled": True,
            "key_file": str(folder / "keys" / "terminal.key"),
            "state_dir": str(folder / "security"),
            "initial_users": users,
            "passwords": {"kdf_iterations": KDF_ITERATIONS},
            "sessions": {"idle_timeout_s": 3600, "max_sessions": 5000},
        },
    }


@contextlib.asynccontextmanager
async def terminal_process(
    config: Path, url: str, profile: str | None = None
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """``python -m reference_terminal --config …`` until it answers on ``url`` (under cProfile,
    writing ``profile``, when given)."""
    log = config.with_suffix(".log").open("wb")
    profiled = [] if profile is None else ["-m", "cProfile", "-o", profile]
    process = subprocess.Popen(
        [sys.executable, *profiled, "-m", "reference_terminal", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as probe:
            deadline = time.monotonic() + 120
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"the terminal stopped: see {config.with_suffix('.log')}")
                with contextlib.suppress(httpx.TransportError):
                    if (await probe.get("/health")).status_code == 401:  # up, and secured
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("the terminal did not answer within 120 s")
                await asyncio.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def open_sessions(url: str) -> dict[str, list[str]]:
    """Every user logs in ``SESSIONS_PER_USER`` times (8 logins at a time)."""
    tokens: dict[str, list[str]] = {f"user{n:02d}": [] for n in range(USERS)}
    gate = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:

        async def login(user: str) -> None:
            async with gate:
                answer = await client.post("/auth/login", json={"user": user, "password": PASSWORD})
            if answer.status_code != 200:
                raise RuntimeError(f"login of {user}: {answer.status_code} {answer.text}")
            tokens[user].append(answer.json()["token"])

        # round by round: one login of a user in flight at a time (logins in flight count
        # towards the lockout until they succeed)
        await asyncio.gather(*(login(user) for _ in range(SESSIONS_PER_USER) for user in tokens))
    return tokens


def interactive_calls(now: float) -> list[tuple[str, dict[str, Any]]]:
    """What a person at the console asks for (paths and query parameters)."""
    return [
        ("/health", {}),
        ("/monitor", {}),
        ("/points", {}),
        (f"/points/{POINT}/latest", {}),
        (f"/points/{POINT}/readings", {"start": now - 3600, "end": now}),
        (f"/points/{POINT}/derived", {"kind": "hour", "start": now - 86400, "end": now}),
        ("/events", {"limit": 100}),
        ("/logs", {"limit": 100}),
        ("/config", {}),
        ("/auth/session", {}),
    ]


@dataclass
class Timings:
    interactive: list[float] = field(default_factory=list)
    per_call: dict[str, list[float]] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    #: CPU seconds per second the load generator itself used (of the machine's 2 cores).
    client_cpu_share: float = 0.0

    def failed(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


async def run_load(
    url: str,
    tokens: dict[str, list[str]],
    seconds: float,
    think: bool,
    seed: int,
    history: bool = True,
) -> tuple[Timings, float]:
    timings = Timings()
    rng = random.Random(seed)
    deadline = time.perf_counter() + seconds
    now = time.time()
    calls = interactive_calls(now)
    year: dict[str, str | float] = {
        "kind": "hour",
        "start": now - YEAR_S,
        "end": now + 60,
        "limit": 10_000,
    }

    async def user(name: str, token: str, stagger: float) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=30, limits=limits
        ) as client:
            await asyncio.sleep(stagger)
            while time.perf_counter() < deadline:
                path, params = rng.choice(calls)
                t0 = time.perf_counter()
                try:
                    answer = await client.get(path, params=params)
                    ok = answer.status_code == 200
                except httpx.HTTPError:
                    ok = False
                elapsed = time.perf_counter() - t0
                if ok:
                    timings.interactive.append(elapsed)
                    timings.per_call.setdefault(path, []).append(elapsed)
                else:
                    timings.failed(path)
                if think:
                    await asyncio.sleep(rng.uniform(0.0, 1.0))

    async def historian(token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            await asyncio.sleep(1.0)
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    answer = await client.get(f"/points/{POINT}/derived", params=year)
                    ok = answer.status_code == 200 and answer.json()["count"] >= 8700
                except httpx.HTTPError:
                    ok = False
                if ok:
                    timings.history.append(time.perf_counter() - t0)
                else:
                    timings.failed("year of hours")

    names = sorted(tokens)
    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(
        *(user(n, tokens[n][0], k / len(names)) for k, n in enumerate(names)),
        *([historian(tokens[names[0]][1])] if history else []),
    )
    elapsed = time.perf_counter() - started
    timings.client_cpu_share = (time.process_time() - cpu) / elapsed
    return timings, elapsed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[k]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = Path(tmp)
        now = time.time()
        t0 = time.perf_counter()
        rows = await fill_store(sqlite_url(folder / "terminal.db"), now)
        fill_s = time.perf_counter() - t0
        [port] = free_ports(1)
        url = f"http://127.0.0.1:{port}"
        config = folder / "terminal.yaml"
        config.write_text(yaml.safe_dump(configuration(folder, port)))
        t0 = time.perf_counter()
        async with terminal_process(config, url, args.profile) as process:
            start_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            tokens = await open_sessions(url)
            login_s = time.perf_counter() - t0
            sessions = sum(len(t) for t in tokens.values())
            timings, elapsed = await run_load(
                url,
                tokens,
                args.seconds,
                think=not args.no_think,
                seed=args.seed,
                history=not args.no_history,
            )
            still_running = process.poll() is None
    interactive, history = timings.interactive, timings.history
    figures = [
        Figure("interactive calls p50", ms(percentile(interactive, 50)), "ms"),
        Figure("interactive calls p95 (target ≤ 200 ms)", ms(percentile(interactive, 95)), "ms"),
        Figure("interactive calls p99", ms(percentile(interactive, 99)), "ms"),
        Figure("interactive calls answered", len(interactive) / elapsed, "calls/s"),
        Figure("one-year history query p50", ms(percentile(history, 50)), "ms"),
        Figure("one-year history query p95 (target ≤ 1 s)", ms(percentile(history, 95)), "ms"),
        Figure("one-year history query p99", ms(percentile(history, 99)), "ms"),
    ]
    report(
        "management_api",
        figures,
        targets={
            "interactive_p95_ms": {
                "limit": INTERACTIVE_P95_MS,
                "value": ms(percentile(interactive, 95)),
                "met": percentile(interactive, 95) * 1000 <= INTERACTIVE_P95_MS,
            },
            "history_p95_ms": {
                "limit": HISTORY_P95_MS,
                "value": ms(percentile(history, 95)),
                "met": percentile(history, 95) * 1000 <= HISTORY_P95_MS,
            },
        },
        load={
            "concurrent_users": USERS,
            "sessions_open": sessions,
            "think_time_s": None if args.no_think else [0.0, 1.0],
            "seconds": round(elapsed, 1),
            "interactive_calls": len(interactive),
            "history_queries": len(history),
            "history_values_per_query": 8760,
            "errors": timings.errors,
            "terminal_still_running": still_running,
            "load_generator_cpu_cores": round(timings.client_cpu_share, 2),
        },
        per_call_p95_ms={
            path: ms(percentile(v, 95)) for path, v in sorted(timings.per_call.items())
        },
        per_call_median_ms={
            path: ms(statistics.median(v)) for path, v in sorted(timings.per_call.items())
        },
        setup={
            "store_rows": rows,
            "store_fill_s": round(fill_s, 1),
            "terminal_start_s": round(start_s, 1),
            "logins_s": round(login_s, 1),
            "kdf_iterations": KDF_ITERATIONS,
            "store": "SQLite WAL, synchronous=FULL; an audit entry committed per request",
        },
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_management_api")
    parser.add_argument("--seconds", type=float, default=40.0, help="length of the load")
    parser.add_argument("--no-think", action="store_true", help="users call without pausing")
    parser.add_argument(
        "--no-history", action="store_true", help="no one-year query alongside the users"
    )
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--profile", metavar="FILE", help="run the terminal under cProfile")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
