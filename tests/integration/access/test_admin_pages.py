"""What the admin pages rest on, through the real apps on real PostgreSQL: a site admin manages roles on their
own sites only (server-side), a global admin disables users and revokes their tokens, the audit trail's
filters, the admin pages refused to a viewer, and rules / channels changed through reporting in the user's
name (the notifier records the person, not its token)."""

import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from services.notifier.adapters import db as notifier_db
from shared.access import store
from shared.access.roles import Role
from tests.integration.access.conftest import INCIDENT_A, PASSWORD, SITE_A, SITE_B, WEBHOOK, Apps, make_user, token_for


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


async def bearer(apps: Apps, user_id: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {await token_for(apps.engine, user_id)}"}


async def roles_of(apps: Apps, user_id: int) -> dict[str, str]:
    async with apps.engine.connect() as conn:
        user = await store.get_user(conn, user_id)
    assert user is not None
    return {site: role.value for site, role in user.site_roles.items()}


async def test_a_site_admin_manages_roles_on_their_own_sites_only(apps: Apps) -> None:
    # GIVEN an admin of site A, and a user who is a viewer on A and on B
    admin = await make_user(apps.engine, name("adm-a"), roles={SITE_A: Role.ADMIN})
    both = await make_user(apps.engine, name("both"), roles={SITE_A: Role.VIEWER, SITE_B: Role.VIEWER})
    only_b = await make_user(apps.engine, name("only-b"), roles={SITE_B: Role.OPERATOR})
    async with apps.client("reporting", **await bearer(apps, admin)) as client:
        # WHEN they list users THEN they see the users of site A, with only site A's roles
        listed = {u["id"]: u for u in (await client.get("/api/v1/users")).json()}
        # WHEN they grant and take away roles
        granted = await client.put(f"/api/v1/users/{both}/sites/{SITE_A}", json={"role": "operator"})
        other_site = await client.put(f"/api/v1/users/{both}/sites/{SITE_B}", json={"role": "admin"})
        take_b = await client.delete(f"/api/v1/users/{both}/sites/{SITE_B}")
        after_grant = await roles_of(apps, both)
        taken = await client.delete(f"/api/v1/users/{both}/sites/{SITE_A}")
        # ... and create users, and try what only a global admin may
        created = await client.post("/api/v1/users", json={"username": name("new"), "password": PASSWORD,
                                                           "site_roles": {SITE_A: "viewer"}})
        on_b = await client.post("/api/v1/users", json={"username": name("new"), "password": PASSWORD,
                                                        "site_roles": {SITE_A: "viewer", SITE_B: "admin"}})
        global_role = await client.post("/api/v1/users", json={
            "username": name("new"), "password": PASSWORD, "global_role": "admin", "site_roles": {SITE_A: "viewer"}})
        no_site = await client.post("/api/v1/users", json={"username": name("new"), "password": PASSWORD})
        disable = await client.put(f"/api/v1/users/{both}", json={"site_roles": {}, "disabled": True})
        tokens = await client.get(f"/api/v1/users/{both}/tokens")
        audit = (await client.get("/api/v1/audit?action=user.")).json()
    # THEN only site A's roles changed, and the rest was refused
    assert both in listed and only_b not in listed and admin in listed
    assert listed[both]["site_roles"] == {SITE_A: "viewer"}
    assert granted.status_code == 200 and granted.json() == {"user_id": both, "site_id": SITE_A, "role": "operator",
                                                             "before": "viewer"}
    assert after_grant == {SITE_A: "operator", SITE_B: "viewer"}
    assert (other_site.status_code, take_b.status_code) == (403, 403) and "site site-b" in other_site.text
    assert taken.status_code == 200 and await roles_of(apps, both) == {SITE_B: "viewer"}
    assert created.status_code == 201 and created.json()["site_roles"] == {SITE_A: "viewer"}
    assert (on_b.status_code, global_role.status_code, no_site.status_code) == (403, 403, 422)
    assert (disable.status_code, tokens.status_code) == (403, 403)
    # ... and each change is a record of site A that its admin reads
    assert [r["action"] for r in audit][:3] == ["user.create", "user.role_revoke", "user.role_grant"]
    assert {r["site_id"] for r in audit[:3]} == {SITE_A}


async def test_a_global_admin_disables_a_user_and_revokes_their_token(apps: Apps) -> None:
    root = await make_user(apps.engine, name("root"), global_role=Role.ADMIN)
    worker = await make_user(apps.engine, name("worker"), roles={SITE_A: Role.OPERATOR})
    worker_token = await token_for(apps.engine, worker)
    spare, _ = await store.create_token(apps.engine, user_id=worker, name="spare", expires_at=None)
    async with apps.client("reporting", **await bearer(apps, root)) as client:
        tokens = (await client.get(f"/api/v1/users/{worker}/tokens")).json()
        revoked = await client.delete(f"/api/v1/users/{worker}/tokens/{spare['id']}")
        again = await client.delete(f"/api/v1/users/{worker}/tokens/{spare['id']}")
        async with apps.client("reporting", Authorization=f"Bearer {worker_token}") as as_worker:
            before = await as_worker.get("/api/v1/auth/me")
            disabled = await client.put(f"/api/v1/users/{worker}", json={"site_roles": {SITE_A: "operator"},
                                                                         "disabled": True})
            after = await as_worker.get("/api/v1/auth/me")
    assert {t["name"] for t in tokens} == {"tests", "spare"}
    assert (revoked.status_code, again.status_code) == (204, 404)
    assert before.status_code == 200 and disabled.json()["disabled"] is True and after.status_code == 401


async def test_the_audit_trail_filters_by_actor_action_and_time_and_pages(apps: Apps) -> None:
    root = await make_user(apps.engine, name("root"), global_role=Role.ADMIN)
    actor = name("signer")
    await make_user(apps.engine, actor, roles={SITE_A: Role.VIEWER})
    async with apps.client("reporting") as client:
        for _ in range(3):
            await client.post("/api/v1/auth/login", json={"username": actor, "password": "wrong-" + "x" * 12})
    now = datetime.now(UTC)
    async with apps.client("reporting", **await bearer(apps, root)) as client:
        mine = (await client.get("/api/v1/audit", params={"actor": f"user:{actor}"})).json()
        page = (await client.get("/api/v1/audit", params={"actor": f"user:{actor}", "limit": 2})).json()
        rest = (await client.get("/api/v1/audit", params={"actor": f"user:{actor}",
                                                          "before_seq": page[-1]["seq"]})).json()
        prefix = (await client.get("/api/v1/audit", params={"actor": f"user:{actor}", "action": "auth."})).json()
        later = (await client.get("/api/v1/audit", params={"actor": f"user:{actor}",
                                                           "start": (now + timedelta(hours=1)).isoformat()})).json()
        earlier = (await client.get("/api/v1/audit", params={"actor": f"user:{actor}",
                                                             "end": (now + timedelta(hours=1)).isoformat()})).json()
        naive = await client.get("/api/v1/audit", params={"start": "2026-01-01T00:00:00"})
    assert [r["action"] for r in mine] == ["auth.login_failed"] * 3
    assert [r["seq"] for r in mine] == sorted((r["seq"] for r in mine), reverse=True)  # newest first
    assert [r["seq"] for r in page + rest] == [r["seq"] for r in mine] and len(page) == 2
    assert len(prefix) == 3 and later == [] and len(earlier) == 3
    assert naive.status_code == 422


async def test_the_admin_pages_need_an_admin_role(apps: Apps) -> None:
    viewer = await make_user(apps.engine, name("viewer"), roles={SITE_A: Role.VIEWER, SITE_B: Role.OPERATOR})
    site_admin = await make_user(apps.engine, name("adm"), roles={SITE_B: Role.ADMIN})
    async with apps.client("reporting", **await bearer(apps, viewer)) as client:
        refused = [await client.get(page) for page in ("/audit", "/users", "/notifications", "/cameras")]
        api = [await client.get(path) for path in ("/api/v1/audit", "/api/v1/users")]
    async with apps.client("reporting", **await bearer(apps, site_admin)) as client:
        pages = [await client.get(page) for page in ("/audit", "/users", "/notifications", "/cameras")]
    async with apps.client("reporting") as client:  # signed out: a browser is sent to sign in, a script gets 401
        browser = await client.get("/audit?site=site-a", headers={"Accept": "text/html"})
        script = await client.get("/audit")
        # ... and back to the page asked for after sign-in, a local path only: no "//host", no backslash, no
        # control character (percent-encoded in the request, decoded in the path) is carried to the sign-in page
        foreign = [await client.get(path, headers={"Accept": "text/html"})
                   for path in ("/%2F%2Fevil.example/x", "/%5Cevil.example", "/audit%0D%0ASet-Cookie:x=1",
                                "/audit%09", "/%09/evil.example")]
    assert [r.status_code for r in refused + api] == [403] * 6
    assert [r.status_code for r in pages] == [200] * 4
    assert all('<script src="/static/common.js">' in r.text and "<title>" in r.text for r in pages)
    assert browser.status_code == 303
    assert browser.headers["location"] == "/static/login.html?next=/audit%3Fsite%3Dsite-a"
    assert [(r.status_code, r.headers["location"]) for r in foreign] == [(303, "/static/login.html")] * 5
    assert script.status_code == 401


async def test_rules_and_channels_change_through_reporting_in_the_user_s_name(apps: Apps) -> None:
    admin_name = name("rules-a")
    admin = await make_user(apps.engine, admin_name, roles={SITE_A: Role.ADMIN})
    zone = name("zone")
    async with apps.client("reporting", **await bearer(apps, admin)) as client:
        created = await client.post("/api/v1/notifications/rules", json={"site_id": SITE_A, "zone_id": zone})
        rule_id = created.json()["id"]
        listed = (await client.get("/api/v1/notifications/rules")).json()
        moved = await client.put(f"/api/v1/notifications/rules/{rule_id}", json={"site_id": SITE_B, "zone_id": zone})
        bad = await client.put(f"/api/v1/notifications/rules/{rule_id}",
                               json={"site_id": SITE_A, "policy": {"min_violation_s": -1}})
        everywhere = await client.post("/api/v1/notifications/channels", json={
            "name": name("all"), "kind": "webhook", "target": WEBHOOK, "secret": "s" * 20, "site_id": None})
        channel = await client.post("/api/v1/notifications/channels", json={
            "name": name("ops"), "kind": "webhook", "target": WEBHOOK, "secret": "s" * 20, "site_id": SITE_A})
        channels = (await client.get("/api/v1/notifications/channels")).json()
        deleted = await client.delete(f"/api/v1/notifications/rules/{rule_id}")
    assert created.status_code == 201, created.text
    assert rule_id in {r["id"] for r in listed} and {r["site_id"] for r in listed} == {SITE_A}
    assert moved.status_code == 403 and "site site-b" in moved.text  # moving it needs admin on both sites
    assert bad.status_code == 422 and "min_violation_s" in bad.text  # the notifier's refusal, passed on
    assert everywhere.status_code == 403 and channel.status_code == 201, channel.text
    assert {c["site_id"] for c in channels} == {SITE_A} and "secret" not in str(channels).replace("has_secret", "")
    assert deleted.status_code == 204
    # THEN the notifier's audit records name the person, acting through the console
    async with apps.engine.connect() as conn:
        rows = (await conn.execute(sa.text(
            "SELECT action, actor, details->>'via' AS via FROM access_audit WHERE target = :t ORDER BY seq"
        ), {"t": f"rule:{rule_id}"})).all()
    assert [(r.action, r.actor, r.via) for r in rows] == [
        ("rule.create", f"user:{admin_name}", "console"), ("rule.delete", f"user:{admin_name}", "console")]


async def test_an_operator_assigns_an_incident_to_an_operator_of_its_site(apps: Apps) -> None:
    olga, otto = name("olga"), name("otto")
    operator = await make_user(apps.engine, olga, roles={SITE_A: Role.OPERATOR})
    await make_user(apps.engine, otto, roles={SITE_A: Role.ADMIN})
    viewer = name("vic")
    await make_user(apps.engine, viewer, roles={SITE_A: Role.VIEWER})
    async with apps.client("reporting", **await bearer(apps, operator)) as client:
        names = (await client.get(f"/api/v1/console/incidents/{INCIDENT_A}/assignees")).json()
        assigned = await client.post(f"/api/v1/console/incidents/{INCIDENT_A}/assign", json={"user": otto})
        to_viewer = await client.post(f"/api/v1/console/incidents/{INCIDENT_A}/assign", json={"user": viewer})
        confirmed = await client.post(f"/api/v1/console/incidents/{INCIDENT_A}/confirm", json={"note": "seen it"})
        unassigned = await client.post(f"/api/v1/console/incidents/{INCIDENT_A}/assign", json={"user": None})
    assert olga in names and otto in names and viewer not in names
    assert assigned.status_code == 200 and assigned.json()["assigned_to"] == otto
    assert to_viewer.status_code == 422 and "not an operator" in to_viewer.text
    assert confirmed.status_code == 200 and confirmed.json()["review"] == "confirmed"
    assert unassigned.status_code == 200 and unassigned.json()["assigned_to"] is None
    async with apps.engine.connect() as conn:
        actions = notifier_db.incident_actions
        actors = (await conn.execute(sa.select(actions.c.action, actions.c.actor)
                                     .where(actions.c.incident_id == INCIDENT_A)
                                     .order_by(actions.c.id.desc()).limit(3))).all()
    assert [(a.action, a.actor) for a in actors] == [
        ("assign", f"user:{olga}"), ("confirm", f"user:{olga}"), ("assign", f"user:{olga}")]
