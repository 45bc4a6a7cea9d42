"""The terminal's management API: ``create_app(terminal)`` gives a FastAPI app (JSON, OpenAPI at
``/openapi.json``, docs at ``/docs``) over a running :class:`~reference_terminal.app.Terminal`.

The configuration tool for every protocol (ISC-2 §7.2.2, CSMT §11.3), manual data (CSMT §11.6),
queries of the stored history, export and backup (ISC-2 §7.2.3(4), §4.4), on-command reads
(ISC-2 §9.1), status (ISC-2 §8.1, §8.2), and the HTTPS push intake for collectors (``/intake``).

- Values are exact decimal text; times are ISO 8601 with the plant's offset plus POSIX seconds
  (:mod:`.wire`). Errors are JSON ``{"error", "detail"}`` (:mod:`.errors`).
- The app does not run the terminal: serve it next to ``terminal.run()`` (e.g. a uvicorn
  ``Server`` in the same event loop). Routes needing the store answer 503 until it is open.
- Security (ISC-2 §7.4.1) follows the configuration's ``security:`` section. Off (the
  default): everybody may do everything, nothing is audited. On: log in at ``/auth/login``,
  bearer tokens, the three roles, ``X-Confirm`` on control operations, every request audited,
  ``/users`` and ``/audit`` (:mod:`.security`, :mod:`.secured`). Every route declares what it
  does through :func:`.security.authorize`. ``GET /config`` never shows a secret either way.
- It uses the terminal's ``apply_config``, ``config_path``, ``intake`` (mounted here),
  ``started_at`` and ``state``.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from reference_terminal.api.body_limit import BodyLimit
from reference_terminal.api.context import ApiContext
from reference_terminal.api.errors import install
from reference_terminal.api.routes_accounting import accounting_routes
from reference_terminal.api.routes_apps import app_routes
from reference_terminal.api.routes_config import config_routes
from reference_terminal.api.routes_data import data_routes
from reference_terminal.api.routes_factors import MAX_LIBRARY_BYTES
from reference_terminal.api.routes_files import file_routes
from reference_terminal.api.routes_health import health_routes
from reference_terminal.api.routes_manual import MAX_CSV_BYTES, manual_routes
from reference_terminal.api.routes_monitor import monitor_routes
from reference_terminal.api.routes_uplink import uplink_routes
from reference_terminal.api.secured import install as install_security
from reference_terminal.api.security import Action, authorize
from reference_terminal.app import Terminal
from reference_terminal.config import Api
from reference_terminal.web import console as web_console

__all__ = ["create_app"]


def create_app(terminal: Terminal) -> FastAPI:
    """The management API of ``terminal`` (which may still be starting). With security enabled,
    this reads (or makes) the key file and the sealed accounts: a
    :class:`~reference_terminal.security.errors.SecurityError` says what is wrong."""
    ctx = ApiContext(terminal, created_at=terminal.clock.time())
    intake = terminal.intake
    app = FastAPI(
        title="carbench reference terminal",
        summary="Management API of a carbon-emission monitoring terminal (ISC-2, CSMT)",
        version="1",
    )
    install(app)
    limits = terminal.config.api or Api()
    app.add_middleware(
        BodyLimit,
        default=limits.max_body_bytes,
        by_prefix={
            "/apps": terminal.config.apps.max_package_bytes + 1024 * 1024,  # and the form
            "/restore": limits.max_restore_bytes,
            "/manual/csv": MAX_CSV_BYTES,
            "/accounting/factors/import": MAX_LIBRARY_BYTES,
        },
    )
    app.include_router(health_routes(ctx, intake))
    app.include_router(config_routes(ctx))
    app.include_router(data_routes(ctx))
    app.include_router(manual_routes(ctx))
    app.include_router(file_routes(ctx))
    app.include_router(uplink_routes(ctx))
    app.include_router(monitor_routes(ctx))
    app.include_router(app_routes(ctx))
    app.include_router(accounting_routes(ctx))
    # The intake's router serves POST /intake/{device} itself.
    app.include_router(
        intake.router, tags=["intake"], dependencies=[Depends(authorize(Action.PUSH))]
    )
    app.include_router(web_console.console_routes(ctx))  # the web console, /console/
    app.state.context = ctx
    app.state.intake = intake
    if terminal.config.security.enabled:
        install_security(app, ctx)
    return app
