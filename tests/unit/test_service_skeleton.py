"""The one skeleton: every service's handlers follow shared.handlers, and shared.http serves ops routes alike."""

import contextlib
import importlib
import inspect
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import ASGIApp

from shared.handlers import BatchMessageHandler, MessageHandler, RequestHandler
from shared.http import LifespanApp, Readiness, instrument

SERVICES = ("ingest", "detector", "notifier", "reporting")
SHAPES = {MessageHandler: "handle", BatchMessageHandler: "handle_envelopes", RequestHandler: "handle"}


@pytest.mark.parametrize("service", SERVICES)
def test_every_handler_class_implements_one_handler_protocol(service: str) -> None:
    module = importlib.import_module(f"services.{service}.handlers")
    handlers = [
        value for name, value in vars(module).items()
        if inspect.isclass(value) and name.endswith("Handler") and value.__module__ == module.__name__
    ]
    assert handlers, f"services/{service}/handlers.py defines no <Message>Handler class"
    for handler in handlers:
        shapes = [shape for shape in SHAPES if shape in handler.__mro__]
        assert len(shapes) == 1, f"{handler.__name__} implements {shapes}, not exactly one of shared.handlers"
        method = getattr(handler, SHAPES[shapes[0]])
        assert inspect.iscoroutinefunction(method), f"{handler.__name__}.{method.__name__} is not async"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_the_same_files(service: str) -> None:
    for part in ("main", "config", "handlers", "domain", "adapters"):
        importlib.import_module(f"services.{service}.{part}")
    api = "services.reporting.api.app" if service == "reporting" else f"services.{service}.api"
    assert callable(importlib.import_module(api).build_app)


async def test_ops_routes_and_request_metrics_by_route_template() -> None:
    # GIVEN an app instrumented by shared.http whose readiness says "not ready"
    app = FastAPI()

    @app.get("/things/{thing_id}")
    async def thing(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    async def not_ready() -> Readiness:
        return Readiness(False, {"status": "database unreachable"})

    instrument(app, not_ready)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        # WHEN it is probed and called twice on one route with two ids
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        await client.get("/things/a")
        await client.get("/things/b")
        metrics = (await client.get("/metrics")).text
    # THEN liveness is 200, readiness 503 with the service's body, and the calls count under the route template
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (503, {"status": "database unreachable"})
    assert 'ppe_http_requests_total{method="GET",route="/things/{thing_id}",status="200"}' in metrics
    assert 'route="/things/a"' not in metrics


async def test_a_lifespan_app_opens_its_clients_at_startup_and_closes_them_after() -> None:
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def open_app() -> AsyncIterator[ASGIApp]:
        events.append("open")
        app = FastAPI()

        @app.get("/x")
        async def x() -> dict[str, int]:
            return {"x": 1}

        yield app
        events.append("close")

    lifespan_app = LifespanApp(open_app)
    sent: list[dict[str, object]] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, object]:
        if events == ["open"]:  # between startup and shutdown: serve one request
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=lifespan_app), base_url="http://t") as c:
                assert (await c.get("/x")).json() == {"x": 1}
        return next(incoming)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    await lifespan_app({"type": "lifespan"}, receive, send)  # type: ignore[arg-type]  # a dict is the ASGI message
    assert events == ["open", "close"]
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
