"""Toxiproxy's HTTP API, driven with exactly the JSON Toxiproxy's clients send (the Go client's
``Save()`` and ``AddToxic``, the Ruby client's toggles, curl), answered with Toxiproxy's status
codes and bodies."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, example, given, settings

from simulators.network import FaultProxyServer, ProxyConfig, serve_until_stopped
from simulators.network.api import VERSION, create_app
from tests.simulators.network.support import aio, connect, echo, round_trip, tcp_server
from tests.simulators.network.test_models import JSON, TOXIC_BODIES

GO_CLIENT = {"User-Agent": "toxiproxy-cli", "Content-Type": "application/json"}


@contextlib.asynccontextmanager
async def api(*proxies: ProxyConfig) -> AsyncIterator[tuple[FaultProxyServer, httpx.AsyncClient]]:
    async with FaultProxyServer(seed=1) as server:
        await server.populate(proxies)
        transport = httpx.ASGITransport(app=create_app(server))
        async with httpx.AsyncClient(
            transport=transport, base_url="http://toxiproxy", headers=GO_CLIENT
        ) as client:
            yield server, client


def go_proxy(
    name: str, upstream: str, listen: str = "127.0.0.1:0", enabled: bool = True
) -> dict[str, Any]:
    """What the Go client's ``Proxy.Save()`` marshals (``toxics`` is a nil slice: null)."""
    return {
        "name": name,
        "listen": listen,
        "upstream": upstream,
        "enabled": enabled,
        "toxics": None,
    }


def error(response: httpx.Response) -> tuple[int, str, int]:
    body = response.json()
    return response.status_code, body["error"], body["status"]


# ---- proxies ----------------------------------------------------------------------------------


@aio
async def test_version_answers_json_as_toxiproxy_2() -> None:
    async with api() as (_, client):
        response = await client.get("/version")
    assert response.status_code == 200
    assert response.json() == {"version": VERSION}
    assert VERSION.startswith("2.")


@aio
async def test_creating_a_proxy_answers_201_with_the_listening_address() -> None:
    async with tcp_server(echo) as port, api() as (_, client):
        response = await client.post("/proxies", json=go_proxy("redis", f"127.0.0.1:{port}"))
        assert response.status_code == 201
        body = response.json()
        assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
        assert (body["name"], body["upstream"], body["enabled"], body["toxics"]) == (
            "redis",
            f"127.0.0.1:{port}",
            True,
            [],
        )
        host, _, listen_port = body["listen"].rpartition(":")
        assert host == "127.0.0.1" and int(listen_port) > 0  # port 0 resolved
        reader, writer = await connect(int(listen_port))
        await round_trip(reader, writer, b"through")
        writer.close()
        assert (await client.get("/proxies/redis")).json() == body
        assert (await client.get("/proxies")).json() == {"redis": body}


@aio
async def test_proxy_errors_have_toxiproxys_codes_and_texts() -> None:
    async with api(ProxyConfig("db", "127.0.0.1:9", enabled=False)) as (_, client):
        duplicate = await client.post("/proxies", json=go_proxy("db", "127.0.0.1:9", enabled=False))
        assert error(duplicate) == (409, "proxy already exists", 409)
        no_name = await client.post("/proxies", json={"upstream": "127.0.0.1:9"})
        assert error(no_name) == (400, "missing required field: name", 400)
        no_upstream = await client.post("/proxies", json={"name": "x"})
        assert error(no_upstream) == (400, "missing required field: upstream", 400)
        missing = await client.get("/proxies/nope")
        assert error(missing) == (404, "proxy not found", 404)
        assert "'nope'" in missing.json()["detail"]
        assert error(await client.delete("/proxies/nope")) == (404, "proxy not found", 404)
        bad = await client.post("/proxies", json={"name": "x", "upstream": "nowhere"})
        status, text, _ = error(bad)
        assert status == 400 and text.startswith("bad request body: upstream: ")


@aio
async def test_a_listen_failure_is_a_500_with_go_words() -> None:
    async with tcp_server(echo) as port, api() as (_, client):
        taken = f"127.0.0.1:{port}"
        response = await client.post("/proxies", json=go_proxy("x", taken, listen=taken))
        status, text, _ = error(response)
        assert status == 500 and text.startswith(f"listen tcp {taken}: ")
        assert (await client.get("/proxies")).json() == {}


@aio
async def test_disabling_and_enabling_through_the_api() -> None:
    """Ruby's ``Toxiproxy[:x].down`` posts {"enabled": false}; Go's Save() the whole proxy."""
    async with tcp_server(echo) as port, api(ProxyConfig("p", f"127.0.0.1:{port}")) as (s, client):
        listen = s["p"].listen
        down = await client.post("/proxies/p", json={"enabled": False})
        assert down.status_code == 200 and down.json()["enabled"] is False
        try:
            await connect(s["p"].port)
        except ConnectionRefusedError:
            pass
        else:
            raise AssertionError("a disabled proxy accepted a connection")
        up = await client.patch("/proxies/p", json={**down.json(), "enabled": True})
        assert up.status_code == 200 and up.json()["enabled"] is True
        assert up.json()["listen"] == listen
        reader, writer = await connect(s["p"].port)
        await round_trip(reader, writer, b"up again")
        writer.close()


@aio
async def test_deleting_a_proxy_answers_204() -> None:
    async with api(ProxyConfig("p", "127.0.0.1:9", enabled=False)) as (server, client):
        response = await client.delete("/proxies/p")
        assert (response.status_code, response.content) == (204, b"")
        assert server.proxies == {}


@aio
async def test_populate_creates_keeps_and_answers_201_with_the_proxies() -> None:
    async with tcp_server(echo) as port, api() as (_, client):
        config: list[dict[str, Any]] = [
            {"name": "a", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{port}"},
            {"name": "b", "upstream": f"127.0.0.1:{port}", "enabled": False},
        ]
        first = await client.post("/populate", json=config)
        assert first.status_code == 201
        proxies = first.json()["proxies"]
        assert [(p["name"], p["enabled"]) for p in proxies] == [("a", True), ("b", False)]
        again = await client.post("/populate", json=[{**config[0], "listen": proxies[0]["listen"]}])
        assert again.json()["proxies"][0]["listen"] == proxies[0]["listen"]
        broken = await client.post("/populate", json=[config[0], {"name": "c"}])
        assert broken.status_code == 400
        assert broken.json() == {
            "error": "missing required field: upstream at proxy 2",
            "status": 400,
            "proxies": [],
        }


@aio
async def test_reset_answers_204_enables_all_and_removes_all_toxics() -> None:
    async with api(ProxyConfig("p", "127.0.0.1:9", enabled=False)) as (server, client):
        await client.post("/proxies/p/toxics", json={"type": "latency", "attributes": {}})
        response = await client.post("/reset", content=b"")
        assert response.status_code == 204
        assert server["p"].enabled and server["p"].toxics == []


# ---- toxics -----------------------------------------------------------------------------------


@aio
async def test_a_toxic_from_the_go_client_is_created_with_200_and_listed() -> None:
    async with tcp_server(echo) as port, api(ProxyConfig("p", f"127.0.0.1:{port}")) as (s, c):
        # The Go client's AddToxic: name "" when not chosen, stream omitted, toxicity float32.
        body = {"name": "", "type": "latency", "toxicity": 1, "attributes": {"latency": 200}}
        created = await c.post("/proxies/p/toxics", json=body)
        assert created.status_code == 200
        toxic = {
            "attributes": {"latency": 200, "jitter": 0},
            "name": "latency_downstream",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
        }
        assert created.json() == toxic
        assert (await c.get("/proxies/p/toxics")).json() == [toxic]
        assert (await c.get("/proxies/p/toxics/latency_downstream")).json() == toxic
        assert (await c.get("/proxies/p")).json()["toxics"] == [toxic]
        reader, writer = await connect(s["p"].port)
        assert await round_trip(reader, writer, b"slow") >= 0.2
        writer.close()


@aio
async def test_updating_a_toxic_by_patch_or_post_keeps_what_is_not_given() -> None:
    async with api(ProxyConfig("p", "127.0.0.1:9", enabled=False)) as (_, client):
        await client.post(
            "/proxies/p/toxics",
            json={"name": "lag", "type": "latency", "attributes": {"latency": 100, "jitter": 10}},
        )
        patched = await client.patch("/proxies/p/toxics/lag", json={"attributes": {"latency": 900}})
        assert patched.status_code == 200
        assert patched.json()["attributes"] == {"latency": 900, "jitter": 10}
        posted = await client.post("/proxies/p/toxics/lag", json={"toxicity": 0.25})
        assert (posted.json()["toxicity"], posted.json()["attributes"]["latency"]) == (0.25, 900)
        deleted = await client.delete("/proxies/p/toxics/lag")
        assert (deleted.status_code, deleted.content) == (204, b"")
        gone = await client.get("/proxies/p/toxics/lag")
        assert error(gone) == (404, "toxic not found", 404)


@aio
async def test_toxic_errors_have_toxiproxys_codes_and_texts() -> None:
    async with api(ProxyConfig("p", "127.0.0.1:9", enabled=False)) as (_, client):
        post = client.post
        stream = await post("/proxies/p/toxics", json={"type": "latency", "stream": "sideways"})
        assert error(stream) == (
            400,
            "stream was invalid, can be either upstream or downstream",
            400,
        )
        kind = await post("/proxies/p/toxics", json={"type": "lag"})
        assert error(kind) == (400, "invalid toxic type", 400)
        assert "'lag' is not a toxic type" in kind.json()["detail"]
        await post("/proxies/p/toxics", json={"type": "timeout"})
        twice = await post("/proxies/p/toxics", json={"type": "timeout"})
        assert error(twice) == (409, "toxic already exists", 409)
        attribute = await post(
            "/proxies/p/toxics", json={"type": "bandwidth", "attributes": {"rate": "fast"}}
        )
        assert error(attribute) == (
            400,
            "bad request body: attributes.rate: expected a whole number of KB/s, "
            "got the string 'fast'",
            400,
        )
        nowhere = await post("/proxies/q/toxics", json={"type": "timeout"})
        assert error(nowhere) == (404, "proxy not found", 404)
        update = await client.patch("/proxies/p/toxics/nope", json={"attributes": {}})
        assert error(update) == (404, "toxic not found", 404)


@aio
async def test_bodies_that_are_not_json_are_refused_as_bad_requests() -> None:
    async with api(ProxyConfig("p", "127.0.0.1:9", enabled=False)) as (_, client):
        for path in ("/proxies", "/populate", "/proxies/p", "/proxies/p/toxics"):
            for content in (b"", b"{", b"[" * 5000, "\ud800".encode("utf-8", "surrogatepass")):
                response = await client.post(path, content=content)
                status, text, _ = error(response)
                assert status == 400 and text.startswith("bad request body: "), (path, content)


@aio
async def test_a_browser_is_refused_as_toxiproxy_refuses_it() -> None:
    """Toxiproxy answers 403 to browser user agents (no cross-site requests from a page)."""
    async with api() as (_, client):
        browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
        response = await client.post("/reset", headers=browser)
        assert (response.status_code, response.text) == (403, "User agent not allowed\n")


@aio
async def test_unknown_paths_and_methods_answer_json_errors() -> None:
    async with api() as (_, client):
        assert error(await client.get("/nothing")) == (404, "not found", 404)
        assert error(await client.put("/proxies")) == (405, "method not allowed", 405)


# ---- fuzzing ----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TOXIC_BODIES, JSON)
@example({"type": "latency", "name": "\x1f?%"}, {"toxicity": 0.5})  # once found: unescaped
def test_any_toxic_json_posted_gets_a_toxiproxy_answer_never_a_crash(
    body: object, update: object
) -> None:
    """Fuzzed create then update of a toxic: 200, 400 or 409 with Toxiproxy's error shape."""

    async def run() -> None:
        async with api(ProxyConfig("p", "127.0.0.1:9", enabled=False)) as (server, client):
            created = await client.post("/proxies/p/toxics", content=json.dumps(body))
            assert created.status_code in (200, 400), created.text
            if created.status_code != 200:
                assert set(created.json()) >= {"error", "status"}
                assert server["p"].toxics == []
                return
            # escaped as any client must (a name may hold control characters, '?', '%' …)
            path = f"/proxies/p/toxics/{quote(created.json()['name'], safe='')}"
            updated = await client.patch(path, content=json.dumps(update))
            assert updated.status_code in (200, 400), updated.text
            after = (await client.get(path)).json()
            expected = updated.json() if updated.status_code == 200 else created.json()
            assert after == expected  # a refused update changes nothing

    aio(run)()


# ---- over a real socket ---------------------------------------------------------------------


@aio
async def test_the_api_served_by_uvicorn_drives_a_proxy() -> None:
    async with tcp_server(echo) as port, FaultProxyServer() as server:
        api_server = await server.start_api("127.0.0.1", 0)
        async with httpx.AsyncClient(base_url=api_server.url, headers=GO_CLIENT) as client:
            assert (await client.get("/version")).json() == {"version": VERSION}
            created = await client.post("/proxies", json=go_proxy("e", f"127.0.0.1:{port}"))
            listen_port = int(created.json()["listen"].rpartition(":")[2])
            toxic = {"type": "latency", "stream": "upstream", "attributes": {"latency": 150}}
            assert (await client.post("/proxies/e/toxics", json=toxic)).status_code == 200
        reader, writer = await connect(listen_port)
        assert await round_trip(reader, writer, b"via uvicorn") >= 0.15
        writer.close()


@aio
async def test_serve_runs_the_proxies_of_a_toxiproxy_config_file_and_the_api(
    tmp_path: Path,
) -> None:
    """What ``carbench``'s CLI will run: Toxiproxy's -config JSON, the API, until stopped."""
    async with tcp_server(echo) as port:
        config = tmp_path / "toxiproxy.json"
        proxies = [{"name": "echo", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{port}"}]
        config.write_text(json.dumps(proxies))
        lines: list[str] = []
        serving = asyncio.ensure_future(
            serve_until_stopped(api="127.0.0.1:0", seed=3, config=config, announce=lines.append)
        )
        try:
            while len(lines) < 2:
                await asyncio.sleep(0.01)
            url = lines[0].split()[3]
            assert lines[0].startswith("toxiproxy-compatible API on http://127.0.0.1:")
            async with httpx.AsyncClient(base_url=url, headers=GO_CLIENT) as client:
                listen = (await client.get("/proxies/echo")).json()["listen"]
            assert lines[1] == f"proxy echo: {listen} -> 127.0.0.1:{port} (up)"
            reader, writer = await connect(int(listen.rpartition(":")[2]))
            await round_trip(reader, writer, b"served")
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
