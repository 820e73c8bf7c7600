"""The audit trail on real PostgreSQL: what the APIs record, append-only in the database, and `verify`
finding an edited and a deleted record (through the function, the admin API and the command)."""

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.access import audit
from shared.access.roles import Role
from shared.db import make_engine
from tests.integration.access.conftest import (
    CAMERA_A,
    PASSWORD,
    SITE_A,
    SITE_B,
    WEBHOOK,
    Apps,
    build_apps,
    make_user,
    seed,
    token_for,
)


@pytest.fixture
async def engine(migrated_database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(migrated_database_url)
    yield engine
    await engine.dispose()


async def tamper(engine: AsyncEngine, statement: str) -> None:
    """What only the table's owner can do: lift the append-only trigger, change the table, put it back."""
    async with engine.begin() as conn:
        await conn.execute(sa.text("ALTER TABLE access_audit DISABLE TRIGGER access_audit_append_only"))
        await conn.execute(sa.text(statement))
        await conn.execute(sa.text("ALTER TABLE access_audit ENABLE TRIGGER access_audit_append_only"))


async def five_records(engine: AsyncEngine) -> None:
    for n in range(1, 6):
        await audit.record(engine, actor="user:alice", action="rule.update", site_id=SITE_A, target=f"rule:{n}",
                           details={"n": n, "policy": {"min_confidence": 80.5}})


async def test_an_intact_chain_verifies(engine: AsyncEngine) -> None:
    await five_records(engine)
    verdict = await audit.verify(engine)
    assert verdict.ok and verdict.records == 5 and verdict.head_seq == 5 and verdict.problem is None


async def test_an_edited_record_is_detected(engine: AsyncEngine) -> None:
    await five_records(engine)
    await tamper(engine, "UPDATE access_audit SET actor = 'user:mallory' WHERE seq = 3")
    verdict = await audit.verify(engine)
    assert not verdict.ok and verdict.bad_seq == 3 and "changed" in (verdict.problem or "")
    assert verdict.records == 2


async def test_an_edit_that_also_rewrites_the_hash_is_detected_at_the_next_record(engine: AsyncEngine) -> None:
    await five_records(engine)
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text("SELECT * FROM access_audit WHERE seq = 2"))).one()
    fields = {"seq": 2, "occurred_at": row.occurred_at, "actor": "user:mallory", "action": row.action,
              "site_id": row.site_id, "target": row.target, "details": row.details}
    forged = audit.record_hash(row.prev_hash, fields)
    await tamper(engine, f"UPDATE access_audit SET actor = 'user:mallory', hash = '{forged}' WHERE seq = 2")
    verdict = await audit.verify(engine)
    assert not verdict.ok and verdict.bad_seq == 3 and "prev_hash" in (verdict.problem or "")


async def test_a_deleted_record_is_detected(engine: AsyncEngine) -> None:
    await five_records(engine)
    await tamper(engine, "DELETE FROM access_audit WHERE seq = 4")
    verdict = await audit.verify(engine)
    assert not verdict.ok and verdict.bad_seq == 4 and "missing" in (verdict.problem or "")


async def test_the_database_refuses_edits_and_deletes(engine: AsyncEngine) -> None:
    await five_records(engine)
    for statement in ("UPDATE access_audit SET actor = 'x'", "DELETE FROM access_audit", "TRUNCATE access_audit"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(sa.text(statement))
    assert (await audit.verify(engine)).records == 5


async def test_concurrent_writers_build_one_chain(engine: AsyncEngine) -> None:
    await asyncio.gather(*(audit.record(engine, actor=f"user:u{n}", action="auth.login") for n in range(20)))
    verdict = await audit.verify(engine)
    assert verdict.ok and verdict.records == 20


async def test_the_apis_record_changes_sign_ins_and_the_admin_reads_them(engine: AsyncEngine) -> None:
    # GIVEN the three apps on one database, a global admin and an admin of site B
    await seed(engine)
    apps: Apps = build_apps(engine)
    admin_id = await make_user(engine, "root", global_role=Role.ADMIN)
    b_admin = await make_user(engine, "b-admin", roles={SITE_B: Role.ADMIN})
    admin = {"Authorization": f"Bearer {await token_for(engine, admin_id)}"}
    # WHEN people sign in (once wrongly) and change a rule, a channel, zones, a site and a user
    async with apps.client("reporting") as client:
        await client.post("/api/v1/auth/login", json={"username": "root", "password": PASSWORD})
        await client.post("/api/v1/auth/login", json={"username": "root", "password": "guess-" + "x" * 10})
    async with apps.client("notifier", **admin) as client:
        rule = await client.post("/v1/rules", json={"site_id": SITE_A, "zone_id": "audited"})
        channel = await client.post("/v1/channels", json={"name": "audited", "kind": "webhook", "site_id": SITE_A,
                                                          "target": WEBHOOK, "secret": "p" * 20})
    async with apps.client("ingest", **admin) as client:
        zones = await client.put(f"/v1/admin/cameras/{CAMERA_A}/zones", json={"zones": []})
    async with apps.client("reporting", **admin) as client:
        site = await client.put(f"/api/v1/sites/{SITE_A}", json={"timezone": "Europe/Berlin"})
        user = await client.post("/api/v1/users", json={"username": "new", "password": PASSWORD,
                                                        "site_roles": {SITE_A: "viewer"}})
        records = (await client.get("/api/v1/audit")).json()
        verdict = (await client.get("/api/v1/audit/verify")).json()
    async with apps.client("reporting", Authorization=f"Bearer {await token_for(engine, b_admin)}") as client:
        b_sees = (await client.get("/api/v1/audit")).json()
        b_refused = await client.get(f"/api/v1/audit?site_id={SITE_A}")
    # THEN each is one record, newest first, the chain holds, and a site admin sees only their site's
    assert all(r.status_code in (200, 201) for r in (rule, channel, zones, site, user))
    actions = [r["action"] for r in reversed(records)]
    assert actions == ["auth.login", "auth.login_failed", "rule.create", "channel.create", "zones.set",
                       "site.timezone", "user.create"]
    assert records[-1]["actor"] == "user:root" and records[0]["actor"] == "user:root"
    assert "p" * 20 not in str(records) and PASSWORD not in str(records)  # no secret, no password
    assert {r["site_id"] for r in records if r["action"] in ("rule.create", "zones.set")} == {SITE_A}
    assert verdict["ok"] is True and verdict["records"] == 7
    assert b_sees == [] and b_refused.status_code == 403
    # WHEN a record is deleted THEN the admin API says where
    await tamper(engine, "DELETE FROM access_audit WHERE seq = 3")
    async with apps.client("reporting", **admin) as client:
        broken = (await client.get("/api/v1/audit/verify")).json()
    assert broken["ok"] is False and broken["bad_seq"] == 3


def run_command(database_url: str, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    if password:
        env["PPE_ADMIN_PASSWORD"] = password
    return subprocess.run([sys.executable, "-m", "shared.access", *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


async def test_the_commands_create_the_first_admin_and_verify_the_chain(
    engine: AsyncEngine, migrated_database_url: str
) -> None:
    created = run_command(migrated_database_url, "create-admin", "--username", "first", password=PASSWORD)
    again = run_command(migrated_database_url, "create-admin", "--username", "first", password=PASSWORD)
    reset = run_command(migrated_database_url, "create-admin", "--username", "first", "--reset",
                        password="another long password")
    short = run_command(migrated_database_url, "create-admin", "--username", "second", password="short")
    assert created.returncode == 0 and "created" in created.stdout, created.stderr
    assert again.returncode == 1 and "--reset" in again.stderr
    assert reset.returncode == 0 and "reset" in reset.stdout
    assert short.returncode == 2
    intact = run_command(migrated_database_url, "verify-audit")
    assert intact.returncode == 0 and "2 records" in intact.stdout, intact.stderr
    await tamper(engine, "UPDATE access_audit SET details = '{\"username\": \"other\"}' WHERE seq = 1")
    broken = run_command(migrated_database_url, "verify-audit")
    assert broken.returncode == 1 and "record 1" in broken.stderr
