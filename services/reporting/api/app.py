"""The reporting HTTP app: analyst API, dashboard (static, offline), health and metrics."""

from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import Headers
from starlette.types import Scope

from services.reporting.adapters.ingest_admin import IngestAdmin
from services.reporting.adapters.notifier_incidents import NotifierIncidents
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.adapters.snapshots import Snapshots
from services.reporting.api import (
    access_routes,
    audit_routes,
    camera_routes,
    console_routes,
    digest_routes,
    notification_routes,
    pages,
    user_routes,
)
from services.reporting.api.deps import Tokens
from services.reporting.api.routes import router
from services.reporting.api.zone_routes import router as zone_router
from services.reporting.domain import DEFAULT_CATALOGUE
from services.reporting.retention import RetentionJob
from shared.access.config import AccessSettings
from shared.access.http import Access
from shared.equipment import Catalogue
from shared.http import Readiness, instrument
from shared.http_guard import OPEN_PATHS, Guard, Refusal
from shared.logging import get_logger

log = get_logger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "static"


LOGIN_PAGE = "/static/login.html"


def local_page(target: str) -> bool:
    """A page of this site to return to after sign-in: a path starting with one "/", no backslash, no control
    character; anything else ("//host", "https://...", "/\\host") would make the sign-in an open redirect."""
    return (target.startswith("/") and not target.startswith("//") and "\\" not in target
            and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in target))


def _unauthorised(scope: Scope) -> Refusal:
    """401; a browser asking for a page (an admin page, signed out) is sent to the sign-in page instead, which
    returns to the page asked for (`?next=`, a local path only; login.js checks it again)."""
    accept = Headers(scope=scope).get("accept", "")
    if scope.get("method") == "GET" and "text/html" in accept and not scope["path"].startswith("/api/"):
        query = scope.get("query_string", b"").decode("latin-1")
        target = scope["path"] + (f"?{query}" if query else "")
        location = f"{LOGIN_PAGE}?next={quote(target, safe='/')}" if local_page(target) else LOGIN_PAGE
        return 303, {"detail": "sign in first"}, {"Location": location}
    return (401, {"detail": "sign in (POST /api/v1/auth/login), or send `Authorization: Bearer <token>`"},
            {"WWW-Authenticate": "Bearer"})


def build_app(
    *,
    repository: ReportingRepository,
    tokens: Tokens,
    retention: RetentionJob,
    readiness: Any | None = None,
    catalogue: Catalogue = DEFAULT_CATALOGUE,
    exposure_cap_s: float = 10.0,
    ingest: IngestAdmin | None = None,
    snapshots: Snapshots | None = None,
    access: Access | None = None,
    notifier: NotifierIncidents | None = None,
) -> FastAPI:
    """`readiness` (optional) is an async callable raising when a dependency (e.g. a consumer) is not ready.

    `ingest` and `snapshots` (optional) serve the zone editor; without `ingest` its camera routes answer 404.
    `notifier` (optional) serves the incident console; without it the console's routes answer 404.
    `access` (optional): who may call; by default the service tokens and the users of the repository's
    database, without sign-in (no session key)."""
    access = access or Access(
        engine=repository.engine, service_tokens=tokens.principals(), settings=AccessSettings(session_key=None)
    )
    app = FastAPI(
        title="PPE compliance reporting",
        version="1.0.0",
        description=(
            "Anonymised PPE compliance events: trends, breakdowns, violation hot spots, incidents and CSV "
            "export. Callers sign in (session cookie) or send a personal API token or a service token as "
            "`Authorization: Bearer`; each route needs a role on the site it reads or changes (docs/access.md)."
        ),
    )
    app.add_middleware(
        Guard,
        accepts=access.accepts,
        unauthorised=_unauthorised,
        too_large=lambda limit: (413, {"detail": f"body is over the {limit} byte limit"}, {}),
        # the dashboard's pages and assets hold no data; sign-in is how a caller gets credentials
        open_paths=OPEN_PATHS | {"/"} | pages.OPEN_PAGES,
        public_paths={access_routes.LOGIN_PATH},  # no credentials yet, but a bounded body
        open_prefixes=("/static/",),
    )
    app.state.repository = repository
    app.state.access = access
    app.state.retention = retention
    app.state.catalogue = catalogue
    app.state.exposure_cap_s = exposure_cap_s
    app.state.ingest = ingest
    app.state.snapshots = snapshots
    app.state.notifier = notifier
    app.include_router(router)
    app.include_router(zone_router)
    app.include_router(camera_routes.router)
    app.include_router(access_routes.router)
    app.include_router(user_routes.router)
    app.include_router(audit_routes.router)
    app.include_router(console_routes.router)
    app.include_router(digest_routes.router)
    app.include_router(notification_routes.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    async def ready() -> Readiness:
        """Database reachable and consumers polling."""
        try:
            await repository.ping()
            if readiness is not None:
                await readiness()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready", reported to the prober
            # the prober is unauthenticated: the error text (hosts, names) goes to the log only
            log.warning("readiness check failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return Readiness(False, {"status": "not ready"})
        return Readiness(True, {"status": "ready"})

    return instrument(app, ready)
