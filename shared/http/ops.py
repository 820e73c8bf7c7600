"""The ops routes and request metrics of every service's app: one shape, one set of metric names.

`GET /healthz` says the process is up (no dependency checks), `GET /readyz` asks the service's own check
(each service knows what it depends on) and answers 200 or 503 with its body, `GET /metrics` is Prometheus'
text format - every worker's figures summed when PROMETHEUS_MULTIPROC_DIR is set (`serve_workers`).
The three are open paths (shared.http_guard.OPEN_PATHS): a prober carries no credentials, so a readiness
body never holds error text (hosts, names); that goes to the log.
"""

import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter(
    "ppe_http_requests_total", "HTTP requests by method, route template and status.", ["method", "route", "status"]
)
REQUEST_SECONDS = Histogram(
    "ppe_http_request_seconds",
    "HTTP request latency by route template.",
    ["route"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


@dataclass(frozen=True)
class Readiness:
    """A service's answer to `/readyz`: ready or not, and the body the prober gets (no error text)."""

    ready: bool
    body: dict[str, Any]


ReadyCheck = Callable[[], Awaitable[Readiness]]


class HealthOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: str = Field(description="`ok`: the process is up.")


class ReadyOut(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(description="`ready`, or a short reason why not (details go to the service's log).")


async def _always_ready() -> Readiness:
    return Readiness(True, {"status": "ready"})


def metrics_text() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several worker processes: every worker's figures, summed
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped upstream
        return generate_latest(registry)
    return generate_latest()


def ops_router(ready: ReadyCheck = _always_ready) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/healthz", response_model=HealthOut, summary="Liveness")
    async def healthz() -> HealthOut:
        """The process is up (no dependency checks)."""
        return HealthOut(status="ok")

    @router.get(
        "/readyz",
        response_model=ReadyOut,
        responses={503: {"model": ReadyOut, "description": "A dependency or a consumer is not ready."}},
        summary="Readiness",
    )
    async def readyz() -> JSONResponse:
        """The service's dependencies answer and its consumers poll."""
        answer = await ready()
        return JSONResponse(answer.body, status_code=200 if answer.ready else 503)

    @router.get("/metrics", response_class=Response, summary="Prometheus metrics")
    async def metrics() -> Response:
        """Prometheus text format."""
        return Response(metrics_text(), media_type=CONTENT_TYPE_LATEST)

    return router


class RequestMetrics:
    """Counts and times every request by its route template (not its raw path: bounded label values).

    Outermost middleware, so requests the Guard refuses (401, 413) are counted too, as route `unmatched`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            REQUESTS.labels(scope["method"], route, str(status)).inc()
            REQUEST_SECONDS.labels(route).observe(time.perf_counter() - started)


def instrument(app: FastAPI, ready: ReadyCheck = _always_ready) -> FastAPI:
    """Add the ops routes and the request metrics (call it last: the metrics middleware must be outermost)."""
    app.include_router(ops_router(ready))
    app.add_middleware(RequestMetrics)
    return app
