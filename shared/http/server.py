"""uvicorn as every service runs it: embedded in the service's event loop, or as supervised worker processes.

One process (all four services): `EmbeddedServer` runs inside the service's own loop and leaves the signals to
the service (`shared.sqs.install_stop_signals`). uvicorn's own handler would stop HTTP at once and then re-raise
SIGTERM, so the process would exit by signal; the services instead stop intake, let the consumers drain, then
stop HTTP (`serve_while`), and exit 0.

Several processes (ingest, INGEST_WORKERS > 1): `serve_workers` is uvicorn's own supervisor
(`uvicorn.supervisors.Multiprocess`, what `uvicorn.run(..., workers=N)` starts): it binds the port once, starts
N spawned workers that accept on the shared socket, replaces a worker that dies or stops answering its health
ping, and on SIGTERM / SIGINT sends SIGTERM to every worker and waits for each to drain. What it does not do, and
this module adds around it:
- per-worker clients: a worker builds its app from an import string, so the clients (database pool, S3 / SQS
  clients, background jobs) are opened by the app's lifespan (`LifespanApp`) in each worker and closed after
  its requests drained;
- metrics across workers: PROMETHEUS_MULTIPROC_DIR is set (a fresh folder) before the workers are spawned, so
  `/metrics` sums every worker's figures whichever worker answers;
- an exit status: `uvicorn.run` returns normally whatever became of the workers; `serve_workers` returns 1 when
  a worker ended otherwise than by its stop signal (e.g. it could not start).
"""

import asyncio
import contextlib
import os
import signal
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.supervisors.multiprocess import Multiprocess

from shared.logging import get_logger

log = get_logger(__name__)


class EmbeddedServer(uvicorn.Server):
    """uvicorn inside the service's loop; the service's stop signals drive shutdown, not uvicorn's."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        host: str,
        port: int,
        lifespan: Literal["on", "off"] = "off",
        access_log: bool = False,
    ) -> None:
        super().__init__(
            uvicorn.Config(app, host=host, port=port, log_config=None, access_log=access_log, lifespan=lifespan)
        )

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def request_stop(self) -> None:
        """Stop accepting connections, let in-flight requests finish, then return from `serve()`."""
        self.should_exit = True

    async def serve_while(self, work: Awaitable[object] | None) -> None:
        """Serve HTTP while `work` (the consumers' loops) runs; once it returned (drained after a stop), stop.

        Without work, serve until `request_stop()`. HTTP outlives the consumers, so /readyz and /metrics answer
        while the last messages drain.
        """
        http = asyncio.create_task(self.serve())
        try:
            if work is not None:
                await work
        finally:
            if work is not None:
                self.request_stop()
            await http


class LifespanApp:
    """An ASGI app opened by the server's lifespan: `open_app()` yields the app with its clients open.

    Under `serve_workers` every worker process opens its own (a database pool or an AWS client cannot cross a
    fork); the context closes after the worker's in-flight requests finished.
    """

    def __init__(self, open_app: Callable[[], AbstractAsyncContextManager[ASGIApp]]) -> None:
        self._open_app = open_app
        self._app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if self._app is None:
            raise RuntimeError("LifespanApp needs the server's lifespan on (uvicorn lifespan='on')")
        await self._app(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        stack = contextlib.AsyncExitStack()
        try:
            self._app = await stack.enter_async_context(self._open_app())
        except Exception as exc:
            log.error("app could not start", error=f"{type(exc).__name__}: {exc}"[:500])
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await stack.aclose()
        except Exception as exc:  # noqa: BLE001 - report it to the server, which logs and exits non-zero
            await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})


@contextlib.contextmanager
def _multiprocess_metrics() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="ppe-metrics-") as folder:
        previous = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # spawned workers inherit it
        try:
            yield folder
        finally:
            if previous is None:
                os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            else:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = previous


def serve_workers(
    factory: str, *, workers: int, host: str, port: int, access_log: bool = False, healthcheck_timeout_s: int = 30
) -> int:
    """Run `workers` processes of the app that `factory` ("module:function", returning a `LifespanApp`) builds.

    Each worker is a uvicorn server on the shared socket with uvicorn's own signal handling: SIGTERM stops
    accepting, in-flight requests finish, the lifespan closes the worker's clients. Returns the exit status.

    `healthcheck_timeout_s`: how long the supervisor waits for a worker's answer to its ping before it kills and
    replaces the worker. uvicorn's 5 s is shorter than a spawned worker's imports take on a busy machine (the
    worker re-imports the main module before it can answer), so fresh workers were killed over and over.
    """
    config = uvicorn.Config(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=access_log,
        lifespan="on",
        loop="uvloop",
        timeout_worker_healthcheck=healthcheck_timeout_s,
    )
    with _multiprocess_metrics():
        sock = config.bind_socket()
        supervisor = Multiprocess(config, sockets=[sock])
        try:
            supervisor.run()
        finally:
            sock.close()
    # a worker that drained after SIGTERM re-raises it (uvicorn's Server), so ending by that signal is clean
    clean = {0, -signal.SIGTERM, -signal.SIGINT}
    codes = [process.exitcode for process in supervisor.processes]
    log.info("workers stopped", exit_codes=codes)
    return 0 if all(code in clean for code in codes) else 1


@contextlib.asynccontextmanager
async def background(job: Callable[[asyncio.Event], Coroutine[Any, Any, object]]) -> AsyncIterator[None]:
    """Run `job(stopping)` beside the app; set `stopping` and wait for the job when the app closes."""
    stopping = asyncio.Event()
    task = asyncio.create_task(job(stopping))
    try:
        yield
    finally:
        stopping.set()
        await task
