"""The HTTP runtime every service shares: one embedded server, one worker supervisor, one set of ops routes.

- `server`: `EmbeddedServer` (uvicorn inside the service's own event loop; the service owns SIGTERM, so its
  consumers drain before HTTP stops), `LifespanApp` (an app whose clients are opened by the server's lifespan:
  one set per worker process), `serve_workers` (uvicorn's own multi-process supervisor on one shared socket).
- `ops`: `ops_router` (`GET /healthz`, `GET /readyz`, `GET /metrics`) and `RequestMetrics` (requests counted
  and timed by route template) - the same in all four services.
"""

from shared.http.ops import REQUEST_SECONDS, REQUESTS, Readiness, RequestMetrics, instrument, ops_router
from shared.http.server import EmbeddedServer, LifespanApp, background, serve_workers

__all__ = [
    "REQUESTS",
    "REQUEST_SECONDS",
    "EmbeddedServer",
    "LifespanApp",
    "Readiness",
    "RequestMetrics",
    "background",
    "instrument",
    "ops_router",
    "serve_workers",
]
