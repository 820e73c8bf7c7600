"""The three HTTP apps that check users (ingest-admin, notifier, reporting), in process, on one real
PostgreSQL with every migration applied, each with its own service token and the shared session key."""

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.adapters.cameras import CameraDirectory
from services.ingest.adapters.db import CameraRepository
from services.ingest.api import IngestDeps
from services.ingest.api import build_app as ingest_app
from services.ingest.config import IngestSettings
from services.ingest.domain import Camera, hash_api_key
from services.notifier.adapters import db as notifier_db
from services.notifier.adapters.secret_box import SecretBox
from services.notifier.adapters.targets import parse_networks
from services.notifier.api import build_app as notifier_app
from services.notifier.api import notifier_tokens
from services.notifier.domain import RulePolicy
from services.reporting.adapters.ingest_admin import IngestAdmin
from services.reporting.adapters.notifier_incidents import NotifierIncidents
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.api.app import build_app as reporting_app
from services.reporting.api.deps import Tokens
from services.reporting.retention import RetentionJob
from shared.access import store
from shared.access.config import AccessSettings
from shared.access.http import Access, service_tokens
from shared.access.roles import Role
from shared.db import make_engine
from shared.migrate import upgrade
from tests.conftest import create_database

PASSWORD = "correct horse battery staple"
SESSION_KEY = "test-session-key-" + "k" * 32
INGEST_TOKEN = "ingest-admin-token-" + "i" * 16
NOTIFIER_TOKEN = "notifier-admin-token-" + "n" * 16
REPORTING_ANALYST = "reporting-analyst-token-" + "a" * 16
REPORTING_ADMIN = "reporting-admin-token-" + "r" * 16
SECRETS_KEY = "access-tests-secrets-key-0123456789abcdef"
WEBHOOK = "https://127.0.0.1:9/hook"  # a local receiver: allowed by the apps' webhook networks (nothing is sent)
SITE_A, SITE_B = "site-a", "site-b"
CAMERA_A, RULE_A, CHANNEL_A, INCIDENT_A = "cam-a", 1001, 2001, "inc-a"
CAMERA_B, RULE_B, INCIDENT_B = "cam-b", 1002, "inc-b"


@dataclass
class Apps:
    engine: AsyncEngine
    ingest: FastAPI
    notifier: FastAPI
    reporting: FastAPI

    def client(self, service: str, **headers: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=getattr(self, service))
        return httpx.AsyncClient(transport=transport, base_url=f"http://{service}", headers=headers)


def settings() -> AccessSettings:
    return AccessSettings(session_key=SESSION_KEY)


def build_apps(engine: AsyncEngine) -> Apps:
    repository = CameraRepository(engine)
    ingest_settings = IngestSettings(admin_token=INGEST_TOKEN)
    ingest_deps = IngestDeps(
        settings=ingest_settings, cameras=CameraDirectory(repository, ttl_s=0), camera_repository=repository,
        ledger=None, store=None, resolver=None, sqs=None, intake=None, limiter=None,  # type: ignore[arg-type]
        access=Access(engine, service_tokens({INGEST_TOKEN: ("ingest-admin", Role.ADMIN)}), settings()),
    )
    reporting_repo = ReportingRepository(engine)
    tokens = Tokens(analyst=REPORTING_ANALYST, admin=REPORTING_ADMIN)
    ingest = ingest_app(ingest_deps)
    # the zone editor's routes reach this ingest app in process, with ingest's admin token (as in production)
    ingest_admin = IngestAdmin("http://ingest", INGEST_TOKEN, transport=httpx.ASGITransport(app=ingest))
    notifier = notifier_app(
        engine=engine, admin_token=NOTIFIER_TOKEN, default_policy=RulePolicy(), default_webhook_secret=True,
        secret_box=SecretBox(SECRETS_KEY), webhook_networks=parse_networks(["127.0.0.0/8"]),
        access=Access(engine, notifier_tokens(NOTIFIER_TOKEN), settings()),
    )
    # the incident console's routes reach this notifier app in process, with its admin token (as in production)
    console = NotifierIncidents("http://notifier", NOTIFIER_TOKEN, transport=httpx.ASGITransport(app=notifier))
    return Apps(
        engine=engine,
        ingest=ingest,
        notifier=notifier,
        reporting=reporting_app(
            repository=reporting_repo, tokens=tokens,
            retention=RetentionJob(reporting_repo, None, bucket="unused", retention_days=3650,
                                   frames_retention_days=30),
            access=Access(engine, tokens.principals(), settings()),
            ingest=ingest_admin,
            notifier=console,
        ),
    )


@pytest.fixture(scope="module")
async def access_engine(postgres_server_url: str) -> AsyncIterator[AsyncEngine]:
    url = create_database(postgres_server_url)
    upgrade(url)
    engine = make_engine(url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="module")
async def apps(access_engine: AsyncEngine) -> Apps:
    await seed(access_engine)
    return build_apps(access_engine)


async def make_user(
    engine: AsyncEngine, username: str, *, global_role: Role | None = None, roles: dict[str, Role] | None = None
) -> int:
    async with engine.begin() as conn:
        user = await store.create_user(conn, username=username, password=PASSWORD, global_role=global_role,
                                       roles=roles or {})
    return user.id


async def token_for(engine: AsyncEngine, user_id: int) -> str:
    _, token = await store.create_token(engine, user_id=user_id, name="tests", expires_at=None)
    return token


async def seed(engine: AsyncEngine) -> None:
    """One camera, rule, incident (with a delivery) per site, and a channel of site A; missing ones again."""
    repository = CameraRepository(engine)
    for camera_id, site in ((CAMERA_A, SITE_A), (CAMERA_B, SITE_B)):
        if await repository.get(camera_id) is None:
            await repository.create(Camera(camera_id=camera_id, site_id=site, zone_id="gate",
                                           required_ppe=("HEAD_COVER",), min_confidence=80.0,
                                           key_hash=hash_api_key(f"key-{camera_id}-" + "x" * 20), enabled=True))
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        for rule_id, site in ((RULE_A, SITE_A), (RULE_B, SITE_B)):
            await conn.execute(
                pg_insert(notifier_db.rules)
                .values(id=rule_id, site_id=site, zone_id=f"seed-{rule_id}",
                        policy=RulePolicy().model_dump(mode="json"))
                .on_conflict_do_nothing()
            )
        await conn.execute(
            pg_insert(notifier_db.channels)
            .values(id=CHANNEL_A, name="site-a-ops", kind="webhook", target=WEBHOOK,
                    secret="s" * 20, site_id=SITE_A)
            .on_conflict_do_nothing()
        )
        for incident_id, site, camera in ((INCIDENT_A, SITE_A, CAMERA_A), (INCIDENT_B, SITE_B, CAMERA_B)):
            await conn.execute(
                pg_insert(notifier_db.incidents)
                .values(id=incident_id, camera_id=camera, site_id=site, zone_id="gate", track_id=1, status="open",
                        missing_equipment=["HEAD_COVER"], severity="warning", started_at=now, last_seen_at=now,
                        max_confidence=95.0, opened_frame_id="f1", last_frame_id="f1", alerted=True)
                .on_conflict_do_nothing()
            )
            await conn.execute(
                pg_insert(notifier_db.deliveries)
                .values(id=f"del-{incident_id}", incident_id=incident_id, channel_id=CHANNEL_A, event="opened",
                        status="sent")
                .on_conflict_do_nothing()
            )
