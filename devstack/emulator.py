"""The local SQS/S3 emulator: moto's WSGI application served by waitress, with HTTP keep-alive.

    python -m devstack.emulator --port 4566            # what `make run`, the tests and the benchmarks start

`moto_server` serves the same application with werkzeug's development server, which answers every request
with `Connection: close`: each SQS or S3 call then pays a new TCP connection on the client (aiohttp) and a
new thread in the emulator. Served by waitress the connections stay open, as they do against AWS, so the
CPU the emulator and our clients spend per call is closer to what production sees (docs/architecture.md).
The emulator is moto's (every API, `/moto-api/` reset and state) with two changes, both giving moto's answers
(`tests/integration/test_emulator_checks.py`) and both skipped, so that moto's own code runs, if its internals
differ: `_cheaper_sqs_checks` (two per-message checks read the one queue setting they need instead of rebuilding
every queue attribute, a scan of the whole queue, so a backlog no longer makes each call O(backlog)) and
`_remembered_backend_lookup` (the backend serving a Host is looked up once, not on every request).

Long polls (ReceiveMessage with WaitTimeSeconds) hold a waitress thread each while they wait, so the pool
is sized for every consumer of a local stack and a test session polling at once.
"""

import argparse
import logging
import sys
from typing import Any

THREADS = 64  # concurrent requests, long polls included
CONNECTIONS = 1000


def command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The argv that starts the emulator on host:port (for subprocess.Popen)."""
    return [sys.executable, "-m", "devstack.emulator", "--host", host, "--port", str(port)]


def _cheaper_sqs_checks() -> None:
    """Same answers, without moto's per-message scan of the whole queue (notifier benchmark, docs/notifier.md).

    moto 5.2 checks each received message's retention, and each sent FIFO message's ContentBasedDeduplication,
    through `Queue.attributes`, which also counts the visible, delayed and in-flight messages by scanning every
    message of the queue: receiving or sending costs O(backlog) per message, so a backlog of a few hundred made
    the emulator the bottleneck of every queue benchmark. Both checks read the one attribute they need instead.
    Skipped (moto's own code runs) if moto's internals differ from what this expects.
    """
    from moto.core.utils import unix_time
    from moto.sqs.models import Queue, SQSBackend

    if not (
        hasattr(SQSBackend, "is_message_valid_based_on_retention_period")
        and hasattr(SQSBackend, "_validate_message")
        and hasattr(Queue, "attributes")
    ):
        return

    def retained(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        return bool(int(queue.message_retention_period) + message.sent_timestamp / 1000 > unix_time())

    class _Deduplication:
        """The queue as `_validate_message` sees it: `attributes` holds only what it reads."""

        def __init__(self, queue: Any) -> None:
            self._queue = queue

        def __getattr__(self, name: str) -> Any:
            return getattr(self._queue, name)

        @property
        def attributes(self) -> dict[str, str]:
            return {"ContentBasedDeduplication": str(bool(self._queue.content_based_deduplication)).lower()}

    validate = SQSBackend._validate_message

    def validate_message(self: Any, queue: Any, *args: Any, **kwargs: Any) -> None:
        checked: Any = _Deduplication(queue) if queue.fifo_queue else queue  # duck-typed stand-in for moto's Queue
        validate(self, checked, *args, **kwargs)

    SQSBackend.is_message_valid_based_on_retention_period = retained  # type: ignore[method-assign]  # patching moto's internals on purpose
    SQSBackend._validate_message = validate_message  # type: ignore[method-assign]  # patching moto's internals on purpose


BACKEND_CACHE_SIZE = 4096  # distinct Host values remembered (virtual-host bucket names make a few per bucket)


def _remembered_backend_lookup() -> None:
    """Same answers, without moto re-finding the backend of every request from scratch.

    moto 5.2's `DomainDispatcherApplication.get_backend_for_host` lists moto's package directory (a `listdir`
    and ~190 `stat` calls) and then tries every backend's URL regex, for each request, under the dispatcher's
    global lock: about 40 % of the emulator's time per SQS / S3 call in the detector benchmark. The answer
    depends only on the host string (the module list and the URL patterns are fixed once moto is imported), so
    it is remembered per host. Skipped (moto's own code runs) if moto's internals differ from what this expects.
    """
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lookup = getattr(DomainDispatcherApplication, "get_backend_for_host", None)
    if lookup is None or getattr(lookup, "remembered", False):
        return

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        remembered: dict[str | None, Any] = self.__dict__.setdefault("_ppe_backend_by_host", {})
        if host in remembered:
            return remembered[host]
        backend = lookup(self, host)
        if len(remembered) < BACKEND_CACHE_SIZE:
            remembered[host] = backend
        return backend

    get_backend_for_host.remembered = True  # type: ignore[attr-defined]  # patching moto's internals on purpose
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]  # patching moto's internals on purpose


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)

    import waitress
    from moto.server import (  # type: ignore[attr-defined]  # moto re-exports these without __all__
        DomainDispatcherApplication,
        create_backend_app,
    )

    _cheaper_sqs_checks()
    _remembered_backend_lookup()
    app = DomainDispatcherApplication(create_backend_app)
    logging.getLogger("waitress").setLevel(logging.ERROR)  # one line per dropped client is noise here
    waitress.serve(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        connection_limit=CONNECTIONS,
        ident="moto",
        _quiet=True,
    )


if __name__ == "__main__":
    main()
