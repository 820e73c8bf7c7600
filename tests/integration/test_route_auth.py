"""Every route of every service's HTTP app refuses a request without credentials.

The walk finds routes from the apps themselves, so a route added later without a guard fails here. Allowed
without credentials: health, readiness and metrics (and the API description, and the reporting dashboard's
static page and assets, which hold no data). Each request carries a malformed JSON body: the refusal must
come before any body is parsed (401, not 422). Readiness shows no exception text.
"""

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.routing import Mount

from services.detector.api import build_app as detector_app
from services.detector.config import DetectorSettings
from services.ingest.api import IngestDeps
from services.ingest.api import build_app as ingest_app
from services.ingest.config import IngestSettings
from services.notifier.api import build_app as notifier_app
from services.notifier.domain import RulePolicy
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.api.app import build_app as reporting_app
from services.reporting.api.deps import Tokens
from tests.integration.detector.conftest import API_KEYS

TOKEN = "route-walk-token-" + "x" * 16
OPEN = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
# the dashboard, zone editor and incident console shells (no data) and sign-in, the route that hands out credentials
OPEN_BY_APP = {"reporting": {"/", "/zones", "/incidents", "/static", "/api/v1/auth/login"}}
AWS_AUTH_ERRORS = {"MissingAuthenticationTokenException", "IncompleteSignatureException",
                   "InvalidSignatureException", "UnrecognizedClientException"}
# a database nobody listens on: readiness must fail without telling the prober how
DEAD_DATABASE = "postgresql+psycopg://ppe:secret-password@127.0.0.1:9/ppe_nowhere"


def apps() -> dict[str, FastAPI]:
    dead = create_async_engine(DEAD_DATABASE)
    ingest_deps = IngestDeps(settings=IngestSettings(admin_token=TOKEN), cameras=None, camera_repository=None,  # type: ignore[arg-type]
                             ledger=None, store=None, resolver=None, sqs=None, intake=None, limiter=None)  # type: ignore[arg-type]
    return {
        "ingest": ingest_app(ingest_deps),
        "detector": detector_app(DetectorSettings(api_keys=API_KEYS), engines=None),  # type: ignore[arg-type]
        "notifier": notifier_app(engine=dead, admin_token=TOKEN, default_policy=RulePolicy()),
        "reporting": reporting_app(repository=ReportingRepository(dead), tokens=Tokens(analyst=TOKEN, admin=TOKEN + "a"),
                                   retention=None),  # type: ignore[arg-type]
    }


def routes(app: FastAPI) -> list[tuple[str, str]]:
    return walk(app.routes, "")


def walk(items: Any, prefix: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in items:
        if hasattr(route, "original_router"):  # an included APIRouter (FastAPI keeps it as one entry)
            found += walk(route.original_router.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            found += [(method, prefix + route.path) for method in sorted(route.methods)]
        elif isinstance(route, Mount):
            found.append(("GET", prefix + route.path))
        elif hasattr(route, "path") and hasattr(route, "methods"):  # docs and openapi routes
            found += [(method, prefix + route.path) for method in sorted(route.methods or ["GET"])]
    assert found, "no routes found: the walk no longer understands FastAPI's route table"
    return found


ALL = apps()
WALK = [
    (name, method, path)
    for name, app in ALL.items()
    for method, path in routes(app)
    if path not in OPEN and path not in OPEN_BY_APP.get(name, set())  # the allowed exceptions
]


@pytest.mark.parametrize(("service", "method", "path"), WALK, ids=[f"{s}:{m} {p}" for s, m, p in WALK])
async def test_no_route_answers_without_credentials(service: str, method: str, path: str) -> None:
    url = re.sub(r"\{[^}]+\}", "x", path) + ("/index.html" if path == "/static" else "")
    transport = httpx.ASGITransport(app=ALL[service])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.request(method, url, content=b"{bad", headers={"Content-Type": "application/json"})
    if service == "detector":
        assert response.status_code == 400 and response.json()["__type"] in AWS_AUTH_ERRORS, response.text
    else:
        assert response.status_code == 401, f"{service} {method} {path} answered {response.status_code}: {response.text}"


def test_the_walk_sees_every_app_s_api() -> None:
    for service, prefix in [("ingest", "/v1/admin/"), ("notifier", "/v1/rules"), ("reporting", "/api/v1/"),
                            ("detector", "/")]:
        paths = {path for _, path in routes(ALL[service])}
        assert {"/healthz", "/readyz", "/metrics"} <= paths, service
        assert any(path.startswith(prefix) and path not in OPEN for path in paths), (service, paths)


@pytest.mark.parametrize("service", ["notifier", "reporting"])
async def test_readiness_shows_no_exception_text(service: str) -> None:
    transport = httpx.ASGITransport(app=apps()[service])
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    text = response.text.lower()
    for leak in ("127.0.0.1", "ppe_nowhere", "connection", "error", "psycopg", "secret"):
        assert leak not in text, response.text


