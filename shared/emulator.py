"""The local SQS/S3 emulator: moto's WSGI application served by waitress, with HTTP keep-alive.

    python -m shared.emulator --port 4566            # what `make run`, the tests and the benchmarks start

`moto_server` serves the same application with werkzeug's development server, which answers every request
with `Connection: close`: each SQS or S3 call then pays a new TCP connection on the client (aiohttp) and a
new thread in the emulator. Served by waitress the connections stay open, as they do against AWS, so the
CPU the emulator and our clients spend per call is closer to what production sees (measured in
docs/architecture.md). The emulator itself (every API, `/moto-api/` reset and state) is moto's, unchanged.

Long polls (ReceiveMessage with WaitTimeSeconds) hold a waitress thread each while they wait, so the pool
is sized for every consumer of a local stack and a test session polling at once.
"""

import argparse
import logging
import sys

THREADS = 64  # concurrent requests, long polls included
CONNECTIONS = 1000


def command(port: int, host: str = "127.0.0.1") -> list[str]:
    """The argv that starts the emulator on host:port (for subprocess.Popen)."""
    return [sys.executable, "-m", "shared.emulator", "--host", host, "--port", str(port)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4566)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)

    import waitress
    from moto.server import DomainDispatcherApplication, create_backend_app

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
