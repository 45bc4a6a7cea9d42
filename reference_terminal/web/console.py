"""The web console's pages under ``/console/`` (ISC-2 §8.2 「WEB管理」).

Server-rendered HTML (Jinja2) with charts drawn as inline SVG (:mod:`.charts`) and a few lines
of script to refresh a live chart. Every figure on a page comes from a call to the management
API made in process with the visitor's token (:mod:`.calls`): the console has no data access,
no permission check and no audit of its own beyond the API's.

Signing in (with ``security.enabled``): the login form posts to the API's ``/auth/login``; the
bearer token it answers is kept in an HttpOnly, ``SameSite=Strict`` cookie scoped to
``/console``, and every form also carries a per-browser token from a second cookie (double
submit) so that no other site can make a signed-in browser post to the console. A session that
must change its password is taken to the password page first. Logging out ends the API session.

Control operations (a configuration change, account changes) are confirmed twice: a preview of
what changes, then the user's password again, sent as the API's ``X-Confirm``. With security
off (the default), pages show everything the API shows and a change needs only the preview's
confirmation.

The pages: status (``/health``, ``/monitor``), points (latest values; a chart per point of its
readings or derived values, live or over a day, week, month or year), sources (emissions per
accounting source), events and alarms, logs, configuration (read; change through
``PATCH /config``), users (administrator), audit (auditor: query, verify, export), reports
(accounting statistics; inventory report as HTML, PDF or CSV).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from reference_terminal.api.auditing import note_of
from reference_terminal.api.context import ApiContext
from reference_terminal.api.wire import iso
from reference_terminal.security.roles import ROLE_TITLES, Action, Role, role_permits
from reference_terminal.web.calls import Answer, Api, refusal
from reference_terminal.web.charts import Sample, bar_chart, line_chart, number

HERE = Path(__file__).parent
TOKEN_COOKIE = "carbench_console"
CSRF_COOKIE = "carbench_csrf"
PREFIX = "/console"
#: How far back each chart range looks, and what it draws: readings, or derived values of a
#: kind (``minute`` windows, ``hour`` windows).
RANGES: dict[str, tuple[int, str]] = {
    "hour": (3600, "readings"),
    "day": (86400, "minute"),
    "week": (7 * 86400, "hour"),
    "month": (31 * 86400, "hour"),
    "year": (365 * 86400, "hour"),
}
#: A source's emissions are summed per bin of this many seconds.
SOURCE_RANGES: dict[str, tuple[int, int]] = {
    "hour": (3600, 60),
    "day": (86400, 3600),
    "week": (7 * 86400, 6 * 3600),
    "month": (31 * 86400, 86400),
}
STATIC = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
MAX_FORM = 256 * 1024
AUDIT_FIELDS = ("start", "end", "user", "type", "outcome", "sort", "order")

Handler = Callable[[Request, "Viewer"], Awaitable[Response]]

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class Viewer:
    """Who is looking, and what they may see."""

    api: Api
    secured: bool
    csrf: str
    user: str = "anonymous"
    role: str | None = None
    offset_s: int = 0
    #: Set the CSRF cookie with the page (a browser's first visit).
    new_csrf: bool = False
    flash: list[tuple[str, str]] = field(default_factory=list)

    def may(self, action: Action) -> bool:
        if not self.secured:
            return action not in (Action.MANAGE_USERS, Action.READ_AUDIT, Action.DELETE_AUDIT)
        return self.role is not None and role_permits([self.role], action)

    @property
    def role_title(self) -> str:
        try:
            return ROLE_TITLES[Role(self.role)] if self.role else ""
        except ValueError:
            return self.role or ""

    def nav(self, active: str) -> list[tuple[str, str, bool]]:
        items = []
        if self.may(Action.READ):
            items += [
                ("status", "Status", f"{PREFIX}/"),
                ("points", "Points", f"{PREFIX}/points"),
                ("sources", "Sources", f"{PREFIX}/sources"),
                ("events", "Events & alarms", f"{PREFIX}/events"),
                ("logs", "Logs", f"{PREFIX}/logs"),
                ("config", "Configuration", f"{PREFIX}/config"),
                ("reports", "Reports", f"{PREFIX}/reports"),
            ]
        if self.may(Action.MANAGE_USERS):
            items.append(("users", "Users", f"{PREFIX}/users"))
        if self.may(Action.READ_AUDIT):
            items.append(("audit", "Audit", f"{PREFIX}/audit"))
        return [(label, href, key == active) for key, label, href in items]


class Redirect(Exception):
    def __init__(self, to: str, *, forget: bool = False) -> None:
        super().__init__(to)
        self.to = to
        self.forget = forget


def _cookie_secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _redirect(request: Request, to: str, *, forget: bool = False) -> RedirectResponse:
    response = RedirectResponse(to, status_code=303)
    if forget:
        response.delete_cookie(TOKEN_COOKIE, path=PREFIX)
    return response


def _set_token(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        TOKEN_COOKIE,
        token,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=_cookie_secure(request),
    )


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, first value of each field."""
    body = await request.body()
    if len(body) > MAX_FORM:
        return {}
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}


def _time_text(t: object, offset_s: int) -> str:
    if not isinstance(t, int | float):
        return ""
    return iso(t, offset_s)[:19].replace("T", " ")


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return ""
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 172800:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


def _bytes(n: object) -> str:
    if not isinstance(n, int | float):
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


_env.filters["localtime"] = _time_text
_env.filters["duration"] = _duration
_env.filters["size"] = _bytes
_env.filters["pretty"] = lambda v: json.dumps(v, ensure_ascii=False, indent=2)


def console_routes(ctx: ApiContext) -> APIRouter:
    """The console's router (HTML pages, left out of the OpenAPI document)."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    secured = ctx.config.security.enabled

    async def viewer(request: Request, page: str) -> Viewer:
        token = request.cookies.get(TOKEN_COOKIE) if secured else None
        csrf = request.cookies.get(CSRF_COOKIE) or ""
        new = not csrf
        if new:
            csrf = secrets.token_urlsafe(24)
        v = Viewer(Api(request, token), secured, csrf, offset_s=ctx.offset_s, new_csrf=new)
        note = note_of(request)
        if note is not None:
            note.type = "console"
        if not secured:
            return v
        if not token:
            await v.api.aclose()
            raise Redirect(f"{PREFIX}/login")
        who = await v.api.get("/auth/session")
        if who.status == 401 or not who.ok:
            await v.api.aclose()
            raise Redirect(f"{PREFIX}/login", forget=True)
        v.user, v.role = str(who.data["user"]), str(who.data["role"])
        if note is not None:
            note.user = v.user
            note.details["session"] = str(who.data["session"])
        if who.data.get("must_change_password") and page != "password":
            await v.api.aclose()
            raise Redirect(f"{PREFIX}/password")
        return v

    def render(request: Request, v: Viewer | None, template: str, **context: Any) -> HTMLResponse:
        page = template.removesuffix(".html")
        html = _env.get_template(template).render(
            v=v,
            nav=v.nav(page) if v is not None else [],
            prefix=PREFIX,
            terminal=ctx.config.name,
            secured=secured,
            now=_time_text(ctx.now(), ctx.offset_s),
            **context,
        )
        response = HTMLResponse(html, status_code=int(context.get("status", 200)))
        if v is not None and v.new_csrf:
            response.set_cookie(
                CSRF_COOKIE,
                v.csrf,
                path=PREFIX,
                httponly=True,
                samesite="strict",
                secure=_cookie_secure(request),
            )
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        return response

    def page(name: str) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        """A page handler gets its viewer; a sign-in needed or lost becomes a redirect."""

        def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def run(request: Request) -> Response:
                try:
                    v = await viewer(request, name)
                except Redirect as r:
                    return _redirect(request, r.to, forget=r.forget)
                try:
                    return await handler(request, v)
                except Redirect as r:
                    return _redirect(request, r.to, forget=r.forget)
                finally:
                    await v.api.aclose()

            run.__name__ = f"console_{name}"
            return run

        return wrap

    async def posted(request: Request, v: Viewer) -> dict[str, str]:
        """A form posted from one of our pages (its CSRF token matches the cookie's)."""
        form = await _form(request)
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not secrets.compare_digest(form.get("csrf", ""), cookie):
            raise Redirect(f"{PREFIX}/?stale=1")
        return form

    def items_of(answer: Answer) -> list[dict[str, Any]]:
        """A page's ``items`` (none when the API refused)."""
        data = need(answer)
        return list(data["items"]) if isinstance(data, dict) else []

    def need(answer: Answer) -> Any:
        """An API answer's data; a session lost on the way is a new sign-in."""
        if answer.status == 401 and secured:
            raise Redirect(f"{PREFIX}/login", forget=True)
        return answer.data if answer.ok else None

    # ---- signing in and out ------------------------------------------------------------------

    @router.get("/login")
    async def login_page(request: Request) -> Response:
        if not secured:
            return _redirect(request, f"{PREFIX}/")
        csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        v = Viewer(Api(request, None), secured, csrf, new_csrf=CSRF_COOKIE not in request.cookies)
        await v.api.aclose()
        return render(request, v, "login.html", message=request.query_params.get("m", ""))

    @router.post("/login")
    async def login(request: Request) -> Response:
        if not secured:
            return _redirect(request, f"{PREFIX}/")
        form = await _form(request)
        cookie = request.cookies.get(CSRF_COOKIE)
        if not cookie or not secrets.compare_digest(form.get("csrf", ""), cookie):
            return _redirect(request, f"{PREFIX}/login?m=expired")
        api = Api(request, None)
        try:
            answer = await api.call(
                "POST",
                "/auth/login",
                json={"user": form.get("user", ""), "password": form.get("password", "")},
            )
        finally:
            await api.aclose()
        note = note_of(request)
        if note is not None:
            note.type = "console"
            note.user = form.get("user", "")[:64] or "anonymous"
        if not answer.ok:
            v = Viewer(Api(request, None), secured, cookie)
            await v.api.aclose()
            return render(
                request,
                v,
                "login.html",
                message=answer.detail,
                user=form.get("user", ""),
                status=answer.status if answer.status in (401, 403, 422) else 400,
            )
        to = "/password" if answer.data.get("must_change_password") else "/"
        response = _redirect(request, PREFIX + to)
        _set_token(request, response, str(answer.data["token"]))
        return response

    @router.post("/logout")
    @page("logout")
    async def logout(request: Request, v: Viewer) -> Response:
        await posted(request, v)
        if secured:
            await v.api.call("POST", "/auth/logout")
        return _redirect(request, f"{PREFIX}/login?m=bye", forget=True)

    @router.get("/password")
    @page("password")
    async def password_page(request: Request, v: Viewer) -> Response:
        if not secured:
            return _redirect(request, f"{PREFIX}/")
        return render(request, v, "password.html")

    @router.post("/password")
    @page("password")
    async def change_password(request: Request, v: Viewer) -> Response:
        form = await posted(request, v)
        if not secured:
            return _redirect(request, f"{PREFIX}/")
        if form.get("new_password", "") != form.get("repeat", ""):
            return render(request, v, "password.html", error="the two new passwords differ")
        answer = await v.api.call(
            "POST",
            "/auth/password",
            json={
                "old_password": form.get("old_password", ""),
                "new_password": form.get("new_password", ""),
            },
        )
        need(answer)
        if not answer.ok:
            return render(request, v, "password.html", error=answer.detail, status=answer.status)
        return _redirect(request, f"{PREFIX}/?m=password")

    # ---- status ------------------------------------------------------------------------------

    @router.get("", include_in_schema=False)
    async def root(request: Request) -> Response:
        return _redirect(request, f"{PREFIX}/")

    @router.get("/")
    @page("status")
    async def status(request: Request, v: Viewer) -> Response:
        if not v.may(Action.READ) and v.may(Action.READ_AUDIT):
            return _redirect(request, f"{PREFIX}/audit")
        health = await v.api.get("/health")
        monitor = await v.api.get("/monitor")
        need(health)
        need(monitor)
        return render(
            request,
            v,
            "status.html",
            health=health.data if health.status in (200, 503) else None,
            monitor=monitor.data if monitor.ok else None,
            problem=None if monitor.ok else monitor.detail,
            message=request.query_params.get("m", ""),
        )

    # ---- points ------------------------------------------------------------------------------

    @router.get("/points")
    @page("points")
    async def points(request: Request, v: Viewer) -> Response:
        listed = await v.api.get("/points")
        monitor = await v.api.get("/monitor")
        need(listed)
        health = {}
        if monitor.ok:
            health = {p["point"]: p for p in monitor.data["acquisition"]["points"]}
        return render(
            request,
            v,
            "points.html",
            points=listed.data if listed.ok else [],
            health=health,
            problem=None if listed.ok else listed.detail,
        )

    async def point_series(
        v: Viewer, point_id: str, range_: str
    ) -> tuple[str, dict[str, Any] | None, str]:
        """The chart of a point over ``range_``: its SVG, the point, and what it draws."""
        span, kind = RANGES.get(range_, RANGES["day"])
        listed = need(await v.api.get("/points")) or []
        point = next((p for p in listed if p["id"] == point_id), None)
        end = ctx.now()
        start = end - span
        samples: list[Sample] = []
        drawn = ""
        unit = (point or {}).get("unit", "")
        counter = (point or {}).get("kind") == "counter"
        if kind != "readings":
            answer = await v.api.get(
                f"/points/{quote(point_id, safe='')}/derived",
                kind=kind,
                start=start,
                end=end,
                limit=100_000,
            )
            for item in items_of(answer):
                value = number(item["value"])
                if value is not None:
                    samples.append(Sample((item["start"] + item["end"]) / 2, value))
            what = "increment" if counter else "mean"
            drawn = f"{what} per {kind}"
        if not samples:
            answer = await v.api.get(
                f"/points/{quote(point_id, safe='')}/readings",
                start=start,
                end=end,
                limit=20_000,
            )
            for item in items_of(answer):
                value = number(item["value"])
                if value is not None:
                    samples.append(Sample(item["t"], value))
            drawn = "register readings" if counter else "readings"
        title = f"{point_id}: {drawn}, last {range_}"
        svg = line_chart(samples, t0=start, t1=end, offset_s=ctx.offset_s, title=title, unit=unit)
        return svg, point, drawn

    @router.get("/points/{point_id}")
    @page("points")
    async def point_page(request: Request, v: Viewer) -> Response:
        point_id = request.path_params["point_id"]
        range_ = request.query_params.get("range", "day")
        if range_ not in RANGES:
            range_ = "day"
        svg, point, drawn = await point_series(v, point_id, range_)
        latest = await v.api.get(f"/points/{quote(point_id, safe='')}/latest")
        need(latest)
        return render(
            request,
            v,
            "point.html",
            point_id=point_id,
            point=point,
            latest=latest.data if latest.ok else None,
            latest_problem=None if latest.ok else latest.detail,
            chart=svg,
            drawn=drawn,
            range=range_,
            ranges=list(RANGES),
            quoted=quote(point_id, safe=""),
            status=200 if point is not None else 404,
        )

    @router.get("/points/{point_id}/chart.svg")
    @page("points")
    async def point_chart(request: Request, v: Viewer) -> Response:
        range_ = request.query_params.get("range", "hour")
        svg, _, _ = await point_series(
            v, request.path_params["point_id"], range_ if range_ in RANGES else "hour"
        )
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    # ---- sources -----------------------------------------------------------------------------

    @router.get("/sources")
    @page("sources")
    async def sources(request: Request, v: Viewer) -> Response:
        boundaries = await v.api.get("/accounting/boundaries")
        need(boundaries)
        today = await v.api.get("/accounting/statistics", period="day")
        month = await v.api.get("/accounting/statistics", period="month")
        totals: dict[str, dict[str, str]] = {}
        for label, answer in (("day", today), ("month", month)):
            if answer.ok:
                for s in answer.data["by_source"]:
                    totals.setdefault(s["id"], {})[label] = s["tco2"]
        return render(
            request,
            v,
            "sources.html",
            boundaries=boundaries.data if boundaries.ok else None,
            totals=totals,
            today=today.data if today.ok else None,
            problem=None if boundaries.ok else boundaries.detail,
        )

    async def source_chart_svg(v: Viewer, source_id: str, range_: str) -> tuple[str, Any]:
        span, size = SOURCE_RANGES.get(range_, SOURCE_RANGES["day"])
        boundaries = need(await v.api.get("/accounting/boundaries")) or {"sources": []}
        source = next((s for s in boundaries["sources"] if s["id"] == source_id), None)
        end = ctx.now()
        start = end - span
        bins: dict[float, float] = {}
        for point in (source or {}).get("points", []):
            answer = await v.api.get(
                "/accounting/emissions", point=point, start=start, end=end, limit=100_000
            )
            for item in items_of(answer):
                value = number(item["emission"])
                if value is None:
                    continue
                local = item["t"] + ctx.offset_s
                b = local - local % size - ctx.offset_s
                bins[b] = bins.get(b, 0.0) + value
        rows = [(b, b + size, total) for b, total in sorted(bins.items())]
        title = f"{source_id}: emissions per {_duration(size)}, last {range_}"
        svg = bar_chart(rows, t0=start, t1=end, offset_s=ctx.offset_s, title=title, unit="tCO2")
        return svg, source

    @router.get("/sources/{source_id}")
    @page("sources")
    async def source_page(request: Request, v: Viewer) -> Response:
        source_id = request.path_params["source_id"]
        range_ = request.query_params.get("range", "day")
        if range_ not in SOURCE_RANGES:
            range_ = "day"
        svg, source = await source_chart_svg(v, source_id, range_)
        return render(
            request,
            v,
            "source.html",
            source_id=source_id,
            source=source,
            chart=svg,
            range=range_,
            ranges=list(SOURCE_RANGES),
            quoted=quote(source_id, safe=""),
            status=200 if source is not None else 404,
        )

    @router.get("/sources/{source_id}/chart.svg")
    @page("sources")
    async def source_chart(request: Request, v: Viewer) -> Response:
        range_ = request.query_params.get("range", "hour")
        svg, _ = await source_chart_svg(v, request.path_params["source_id"], range_)
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    # ---- events and logs ---------------------------------------------------------------------

    @router.get("/events")
    @page("events")
    async def events(request: Request, v: Viewer) -> Response:
        q = request.query_params
        range_ = q.get("range", "week")
        span = RANGES.get(range_, RANGES["week"])[0]
        end = ctx.now()
        kind = q.get("kind", "")
        answer = await v.api.get(
            "/events",
            kind=kind,
            point=q.get("point", ""),
            start=end - span,
            end=end + 1,
            limit=1000,
        )
        need(answer)
        items = list(reversed(answer.data["items"])) if answer.ok else []
        alarms = [e for e in items if "alarm" in e["kind"]]
        return render(
            request,
            v,
            "events.html",
            items=items,
            alarms=alarms,
            truncated=answer.ok and answer.data["truncated"],
            kind=kind,
            point=q.get("point", ""),
            range=range_,
            ranges=list(RANGES),
            problem=None if answer.ok else answer.detail,
        )

    @router.get("/logs")
    @page("logs")
    async def logs(request: Request, v: Viewer) -> Response:
        q = request.query_params
        category = q.get("category", "")
        range_ = q.get("range", "week")
        span = RANGES.get(range_, RANGES["week"])[0]
        end = ctx.now()
        answer = await v.api.get(
            "/logs", category=category, start=end - span, end=end + 1, limit=1000
        )
        need(answer)
        return render(
            request,
            v,
            "logs.html",
            items=list(reversed(answer.data["items"])) if answer.ok else [],
            category=category,
            categories=["acquisition", "upload", "method", "configuration", "apps"],
            range=range_,
            ranges=list(RANGES),
            problem=None if answer.ok else answer.detail,
        )

    # ---- configuration -----------------------------------------------------------------------

    @router.get("/config")
    @page("config")
    async def config_page(request: Request, v: Viewer) -> Response:
        answer = await v.api.get("/config")
        need(answer)
        return render(
            request,
            v,
            "config.html",
            config=answer.data if answer.ok else None,
            problem=None if answer.ok else answer.detail,
            can_change=v.may(Action.CONFIGURE),
        )

    def change_of(form: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
        op = form.get("op", "replace")
        path = form.get("path", "").strip()
        if op not in ("replace", "add", "remove"):
            return None, f"unknown operation {op!r}"
        if not path.startswith("/"):
            return None, "the path is a JSON pointer into the configuration, e.g. /name"
        change: dict[str, Any] = {"op": op, "path": path}
        if op != "remove":
            text = form.get("value", "")
            try:
                change["value"] = json.loads(text)
            except ValueError:
                change["value"] = text  # plain text is taken as a string
        return change, ""

    @router.post("/config/preview")
    @page("config")
    async def config_preview(request: Request, v: Viewer) -> Response:
        form = await posted(request, v)
        current = need(await v.api.get("/config"))
        change, problem = change_of(form)
        before = _pointer(current, change["path"]) if change and current else None
        return render(
            request,
            v,
            "config.html",
            config=current,
            can_change=v.may(Action.CONFIGURE),
            change=change,
            change_json=json.dumps(change, ensure_ascii=False) if change else "",
            before=before,
            problem=problem or None,
            form=form,
        )

    @router.post("/config/apply")
    @page("config")
    async def config_apply(request: Request, v: Viewer) -> Response:
        form = await posted(request, v)
        try:
            change = json.loads(form.get("change", ""))
        except ValueError:
            change = None
        if not isinstance(change, dict) or form.get("confirmed") != "yes":
            current = need(await v.api.get("/config"))
            return render(
                request,
                v,
                "config.html",
                config=current,
                can_change=v.may(Action.CONFIGURE),
                problem="tick the confirmation to apply the change",
            )
        answer = await v.api.call(
            "PATCH",
            "/config",
            json={"changes": [change]},
            confirm=form.get("confirm_password") or None,
        )
        need(answer)
        current = need(await v.api.get("/config"))
        return render(
            request,
            v,
            "config.html",
            config=current,
            can_change=v.may(Action.CONFIGURE),
            applied=answer.data if answer.ok else None,
            problem=None if answer.ok else answer.detail,
            status=200 if answer.ok else answer.status,
        )

    # ---- users -------------------------------------------------------------------------------

    @router.get("/users")
    @page("users")
    async def users(request: Request, v: Viewer) -> Response:
        answer = await v.api.get("/users")
        need(answer)
        return render(
            request,
            v,
            "users.html",
            users=answer.data if answer.ok else [],
            roles=[(r.value, ROLE_TITLES[r]) for r in Role],
            problem=None if answer.ok or not secured else answer.detail,
            status=answer.status if secured and not answer.ok else 200,
        )

    @router.post("/users")
    @page("users")
    async def change_user(request: Request, v: Viewer) -> Response:
        form = await posted(request, v)
        action = form.get("action", "")
        user_id = quote(form.get("id", ""), safe="")
        confirm = form.get("confirm_password") or None
        if form.get("confirmed") != "yes":
            answer = refusal("unconfirmed", "tick the confirmation first")
        elif action == "create":
            answer = await v.api.call(
                "POST",
                "/users",
                json={
                    "id": form.get("id", ""),
                    "role": form.get("role", ""),
                    "password": form.get("password", ""),
                },
                confirm=confirm,
            )
        elif action == "reset":
            answer = await v.api.call(
                "POST",
                f"/users/{user_id}/password",
                json={"password": form.get("password", "")},
                confirm=confirm,
            )
        elif action == "unlock":
            answer = await v.api.call("POST", f"/users/{user_id}/unlock", confirm=confirm)
        elif action == "delete":
            answer = await v.api.call("DELETE", f"/users/{user_id}", confirm=confirm)
        else:
            answer = refusal("unknown_action", f"unknown action {action!r}")
        need(answer)
        listed = await v.api.get("/users")
        done = f"{action} {form.get('id', '')}: done" if answer.ok else None
        return render(
            request,
            v,
            "users.html",
            users=listed.data if listed.ok else [],
            roles=[(r.value, ROLE_TITLES[r]) for r in Role],
            done=done,
            problem=None if answer.ok else answer.detail,
            status=200 if answer.ok else answer.status,
        )

    # ---- audit -------------------------------------------------------------------------------

    @router.get("/audit")
    @page("audit")
    async def audit(request: Request, v: Viewer) -> Response:
        q = request.query_params
        conditions = {k: q.get(k, "") for k in AUDIT_FIELDS}
        conditions["order"] = conditions["order"] or "desc"  # newest first
        try:
            offset = max(0, int(q.get("offset", "0")))
        except ValueError:
            offset = 0
        answer = await v.api.get("/audit", **conditions, limit=50, offset=offset)
        need(answer)
        verified = None
        if q.get("verify"):
            check = await v.api.get("/audit/verify")
            verified = check.data if check.ok else None
        return render(
            request,
            v,
            "audit.html",
            page=answer.data if answer.ok else None,
            conditions=conditions,
            query="&".join(f"{k}={quote(v_)}" for k, v_ in conditions.items() if v_),
            offset=offset,
            verified=verified,
            problem=None if answer.ok else answer.detail,
            status=200 if answer.ok else answer.status,
        )

    @router.get("/audit/export")
    @page("audit")
    async def audit_export(request: Request, v: Viewer) -> Response:
        q = request.query_params
        params = {k: q.get(k, "") for k in AUDIT_FIELDS}
        params["format"] = q.get("format", "csv")
        answer = await v.api.get("/audit/export", **params)
        return _passed_on(need, answer)

    # ---- reports -----------------------------------------------------------------------------

    @router.get("/reports")
    @page("reports")
    async def reports(request: Request, v: Viewer) -> Response:
        q = request.query_params
        period = q.get("period", "month")
        at = q.get("at", "")
        answer = await v.api.get("/accounting/statistics", period=period, at=at)
        need(answer)
        return render(
            request,
            v,
            "reports.html",
            stats=answer.data if answer.ok else None,
            period=period,
            at=at,
            periods=["hour", "day", "week", "month", "quarter", "year"],
            query=f"period={quote(period)}" + (f"&at={quote(at)}" if at else ""),
            problem=None if answer.ok else answer.detail,
        )

    @router.get("/reports/download")
    @page("reports")
    async def report_download(request: Request, v: Viewer) -> Response:
        q = request.query_params
        period = quote(q.get("period", "month"), safe="")
        at = q.get("at", "")
        fmt = q.get("format", "html")
        if fmt == "csv":
            answer = await v.api.get(f"/accounting/reports/{period}/export", at=at)
        else:
            answer = await v.api.get(f"/accounting/reports/{period}", at=at, format=fmt)
        return _passed_on(need, answer)

    # ---- static files ------------------------------------------------------------------------

    @router.get("/static/{name}")
    async def static(name: str) -> Response:
        media = STATIC.get(name)
        if media is None:
            return Response("not found", status_code=404, media_type="text/plain")
        return Response(
            (HERE / "static" / name).read_bytes(),
            media_type=media,
            headers={"Cache-Control": "max-age=3600"},
        )

    return router


def _passed_on(need: Callable[[Answer], Any], answer: Answer) -> Response:
    """An API file answer handed to the browser as it came (an error as plain text)."""
    need(answer)
    if not answer.ok:
        return Response(
            f"{answer.status}: {answer.detail}\n",
            status_code=answer.status,
            media_type="text/plain; charset=utf-8",
        )
    headers = {
        k: v for k, v in answer.headers.items() if k.lower() in ("content-disposition", "x-rows")
    }
    return Response(
        answer.content,
        media_type=answer.headers.get("content-type", "application/octet-stream"),
        headers=headers,
    )


def _pointer(document: Any, path: str) -> Any:
    """The value at a JSON pointer (RFC 6901) in ``document``; None where there is none."""
    node = document
    for raw in path.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(key)
        elif isinstance(node, list):
            try:
                node = node[int(key)]
            except (ValueError, IndexError):
                return None
        else:
            return None
    return node
