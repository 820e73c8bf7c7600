"""Container health check: exit 0 when the service answers GET /healthz on its port, 1 otherwise.

    python /opt/ppe/healthcheck.py ingest     # reads INGEST_PORT (default 8080)

Used by the Dockerfiles' HEALTHCHECK, the compose file and the ECS task definitions. python:slim images
carry no curl, and the standard library is enough.
"""

import os
import sys
import urllib.error
import urllib.request

DEFAULT_PORTS = {"ingest": 8080, "detector": 8081, "notifier": 8082, "reporting": 8083}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in DEFAULT_PORTS:
        print(f"usage: healthcheck.py {{{'|'.join(DEFAULT_PORTS)}}}", file=sys.stderr)
        return 2
    name = argv[0]
    port = os.environ.get(f"{name.upper()}_PORT") or str(DEFAULT_PORTS[name])
    url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            healthy = 200 <= response.status < 300
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    return 0 if healthy else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
