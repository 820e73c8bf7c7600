"""`make run`'s first admin: generated into var/secrets.env with a valid session key, created once."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.access import store
from shared.access.config import AccessSettings
from shared.db import make_engine
from devstack.stack import ADMIN_SECRETS, first_admin, load_or_create_admin
from shared.local_secrets import load_or_create_secrets


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(migrated_database_url)
    yield engine
    await engine.dispose()


async def test_make_run_creates_the_admin_of_secrets_env_once(
    tmp_path: Path, migrated_database_url: str, engine: AsyncEngine
) -> None:
    path = tmp_path / "secrets.env"
    secrets = load_or_create_secrets(path)
    assert AccessSettings(session_key=secrets["PPE_SESSION_KEY"]).session_key
    assert not set(ADMIN_SECRETS) & set(secrets)  # what the services get (compose too) holds no admin password
    admin = load_or_create_admin(path)
    assert load_or_create_admin(path) == admin and load_or_create_secrets(path) == {**secrets, **admin}
    secrets = {**secrets, **admin}
    assert secrets["PPE_ADMIN_USER"] == "admin"
    assert f"PPE_ADMIN_PASSWORD={admin['PPE_ADMIN_PASSWORD']}" in path.read_text()
    await first_admin(migrated_database_url, "admin", secrets["PPE_ADMIN_PASSWORD"])
    await first_admin(migrated_database_url, "admin", "a different password")  # exists: left alone
    assert await store.check_login(engine, "admin", secrets["PPE_ADMIN_PASSWORD"]) is not None
    assert await store.check_login(engine, "admin", "a different password") is None
    (user,) = await store.list_users(engine)
    assert user.global_role is not None and user.global_role.value == "admin"
