"""Users sign in once (reporting) and the session works on every service; personal tokens for scripts; the
service tokens keep working; lists show only the caller's sites. Real PostgreSQL, apps in process."""

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from services.reporting.api.access_routes import LOGIN_MAX_FAILURES
from shared.access import store
from shared.access.credentials import CSRF_HEADER, SESSION_COOKIE, issue_session
from shared.access.roles import Role
from shared.access.tables import users
from tests.integration.access.conftest import (
    INCIDENT_A,
    INCIDENT_B,
    INGEST_TOKEN,
    NOTIFIER_TOKEN,
    PASSWORD,
    REPORTING_ANALYST,
    SESSION_KEY,
    SITE_A,
    SITE_B,
    Apps,
    make_user,
    token_for,
)


async def sign_in(apps: Apps, username: str, password: str = PASSWORD) -> str:
    async with apps.client("reporting") as client:
        response = await client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    cookie = response.cookies.get(SESSION_COOKIE)
    assert cookie
    header = response.headers["set-cookie"].lower()
    assert "httponly" in header and "samesite=strict" in header
    return cookie


def session(cookie: str, *, write: bool = False) -> dict[str, str]:
    """The session cookie as a browser sends it (and the header the dashboard's script adds to writes)."""
    return {"Cookie": f"{SESSION_COOKIE}={cookie}", **({CSRF_HEADER: "1"} if write else {})}


async def test_one_sign_in_opens_every_service_with_the_user_s_roles(apps: Apps) -> None:
    # GIVEN a viewer of site A, signed in on the dashboard's service
    await make_user(apps.engine, "vera", roles={SITE_A: Role.VIEWER, SITE_B: Role.OPERATOR})
    cookie = await sign_in(apps, "vera")
    cookies, writes = session(cookie), session(cookie, write=True)
    # WHEN the same session calls each service
    async with apps.client("reporting") as client:
        me = (await client.get("/api/v1/auth/me", headers=cookies)).json()
    async with apps.client("notifier") as client:
        incidents = await client.get(f"/v1/incidents?site_id={SITE_A}", headers=cookies)
        refused = await client.post("/v1/rules", json={"site_id": SITE_A}, headers=writes)
    async with apps.client("ingest") as client:
        cameras = await client.get("/v1/admin/cameras", headers=cookies)
    # THEN each knows who it is and what they may do
    assert me == {"name": "vera", "kind": "user", "via": "session", "global_role": None,
                  "site_roles": {SITE_A: "viewer", SITE_B: "operator"}}
    assert incidents.status_code == 200 and [i["id"] for i in incidents.json()] == [INCIDENT_A]
    assert refused.status_code == 403 and "admin" in refused.json()["detail"]
    assert cameras.status_code == 200 and {c["site_id"] for c in cameras.json()} == {SITE_A, SITE_B}


async def test_lists_hold_only_the_caller_s_sites(apps: Apps) -> None:
    user_id = await make_user(apps.engine, "bea", roles={SITE_B: Role.ADMIN})
    headers = {"Authorization": f"Bearer {await token_for(apps.engine, user_id)}"}
    async with apps.client("notifier", **headers) as client:
        incidents = (await client.get("/v1/incidents")).json()
        rules = (await client.get("/v1/rules")).json()
        channels = (await client.get("/v1/channels")).json()
        deliveries = (await client.get("/v1/deliveries")).json()
        other = await client.get(f"/v1/deliveries?site_id={SITE_A}")
    async with apps.client("ingest", **headers) as client:
        cameras = (await client.get("/v1/admin/cameras")).json()
    async with apps.client("reporting", **headers) as client:
        sites = await client.get("/api/v1/incidents")  # one site: it is the default
    assert [i["id"] for i in incidents] == [INCIDENT_B]
    assert {r["site_id"] for r in rules} == {SITE_B}
    assert channels == []  # the only channel is site A's
    assert [d["incident_id"] for d in deliveries] == [INCIDENT_B]
    assert other.status_code == 403
    assert {c["site_id"] for c in cameras} == {SITE_B}
    assert sites.status_code == 200


async def test_a_user_of_several_sites_names_one_on_reporting(apps: Apps) -> None:
    user_id = await make_user(apps.engine, "multi", roles={SITE_A: Role.VIEWER, SITE_B: Role.VIEWER})
    headers = {"Authorization": f"Bearer {await token_for(apps.engine, user_id)}"}
    async with apps.client("reporting", **headers) as client:
        unnamed = await client.get("/api/v1/compliance/trend")
        named = await client.get(f"/api/v1/compliance/trend?site_id={SITE_B}")
    assert unnamed.status_code == 422 and "site_id" in unnamed.json()["detail"]
    assert named.status_code == 200


async def test_a_cookie_write_needs_the_csrf_header(apps: Apps) -> None:
    await make_user(apps.engine, "ada", global_role=Role.ADMIN)
    cookie = await sign_in(apps, "ada")
    body = {"site_id": SITE_A, "zone_id": "csrf-zone"}
    async with apps.client("notifier") as client:
        forged = await client.post("/v1/rules", json=body, headers=session(cookie))
        same_site = await client.post("/v1/rules", json=body, headers=session(cookie, write=True))
    assert forged.status_code == 401
    assert same_site.status_code == 201, same_site.text


async def test_sign_out_disabled_users_forged_and_expired_sessions_are_refused(apps: Apps) -> None:
    user_id = await make_user(apps.engine, "sam", roles={SITE_A: Role.VIEWER})
    first, second = await sign_in(apps, "sam"), await sign_in(apps, "sam")
    async with apps.client("reporting") as client:
        out = await client.post("/api/v1/auth/logout", headers=session(first, write=True))
        after = await client.get("/api/v1/auth/me", headers=session(first))
        still = await client.get("/api/v1/auth/me", headers=session(second))
        forged = issue_session("another-key-" + "z" * 32, user_id=user_id, session_id="x", ttl_s=60)
        forged_answer = await client.get("/api/v1/auth/me", headers=session(forged))
        expired = issue_session(SESSION_KEY, user_id=user_id, session_id="x", ttl_s=-1)
        expired_answer = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {expired}"})
        wrong = await client.post("/api/v1/auth/login", json={"username": "sam", "password": "not it at all"})
        unknown = await client.post("/api/v1/auth/login", json={"username": "nobody-here", "password": PASSWORD})
    assert out.status_code == 204 and after.status_code == 401 and still.status_code == 200
    assert forged_answer.status_code == 401 and expired_answer.status_code == 401
    assert wrong.status_code == 401 and unknown.status_code == 401
    # WHEN an admin disables the user THEN their open session stops at once
    async with apps.engine.begin() as conn:
        await store.update_user(conn, user_id, global_role=None, roles={SITE_A: Role.VIEWER}, disabled=True)
    async with apps.client("reporting") as client:
        disabled = await client.get("/api/v1/auth/me", headers=session(second))
        login = await client.post("/api/v1/auth/login", json={"username": "sam", "password": PASSWORD})
    assert disabled.status_code == 401 and login.status_code == 401


async def test_personal_tokens_work_until_revoked_and_are_stored_hashed(apps: Apps) -> None:
    await make_user(apps.engine, "tom", roles={SITE_A: Role.ANALYST})
    cookie = await sign_in(apps, "tom")
    async with apps.client("reporting") as client:
        created = await client.post("/api/v1/auth/tokens", json={"name": "nightly csv"},
                                    headers=session(cookie, write=True))
    assert created.status_code == 201, created.text
    token, token_id = created.json()["token"], created.json()["id"]
    async with apps.engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT token_hash FROM access_api_tokens WHERE id = :i"),
                                     {"i": token_id})).scalar_one()
    assert token not in stored and len(stored) == 64
    bearer = {"Authorization": f"Bearer {token}"}
    async with apps.client("reporting", **bearer) as client:
        csv = await client.get(f"/api/v1/export/events.csv?site_id={SITE_A}")
        revoke = await client.delete(f"/api/v1/auth/tokens/{token_id}")
        after = await client.get(f"/api/v1/export/events.csv?site_id={SITE_A}")
    assert csv.status_code == 200 and revoke.status_code == 204 and after.status_code == 401


async def test_service_tokens_keep_working_as_global_roles(apps: Apps) -> None:
    async with apps.client("ingest", Authorization=f"Bearer {INGEST_TOKEN}") as client:
        assert (await client.get("/v1/admin/cameras")).status_code == 200
    async with apps.client("notifier", Authorization=f"Bearer {NOTIFIER_TOKEN}") as client:
        assert (await client.get("/v1/incidents")).status_code == 200
    async with apps.client("reporting", Authorization=f"Bearer {REPORTING_ANALYST}") as client:
        assert (await client.get("/api/v1/compliance/trend")).status_code == 200  # every site
        assert (await client.put(f"/api/v1/sites/{SITE_A}", json={"timezone": "UTC"})).status_code == 403
        assert (await client.get("/api/v1/auth/tokens")).status_code == 403  # a service has no account
    async with apps.client("ingest", Authorization=f"Bearer {NOTIFIER_TOKEN}") as client:
        assert (await client.get("/v1/admin/cameras")).status_code == 401  # one service's token is not another's


async def test_passwords_are_argon2_hashes(access_engine: AsyncEngine) -> None:
    await make_user(access_engine, "hash-check")
    async with access_engine.connect() as conn:
        query = sa.select(users.c.password_hash).where(users.c.username == "hash-check")
        stored = (await conn.execute(query)).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


async def test_password_guessing_is_throttled_per_user_name(apps: Apps) -> None:
    await make_user(apps.engine, "gus", roles={SITE_A: Role.VIEWER})
    async with apps.client("reporting") as client:
        wrong = [(await client.post("/api/v1/auth/login", json={"username": "gus", "password": f"guess {n}"}))
                 .status_code for n in range(LOGIN_MAX_FAILURES)]
        right = await client.post("/api/v1/auth/login", json={"username": "gus", "password": PASSWORD})
        other = await client.post("/api/v1/auth/login", json={"username": "vera", "password": PASSWORD})
    assert wrong == [401] * LOGIN_MAX_FAILURES
    assert right.status_code == 429 and int(right.headers["retry-after"]) > 0  # even the right password, for now
    assert other.status_code == 200  # another user name is not affected


async def test_sign_in_needs_no_credentials_but_its_body_is_bounded(apps: Apps) -> None:
    async with apps.client("reporting") as client:
        huge = await client.post("/api/v1/auth/login", content=b'{"username": "' + b"x" * 300_000 + b'"}',
                                 headers={"Content-Type": "application/json"})
        malformed = await client.post("/api/v1/auth/login", content=b"{bad",
                                      headers={"Content-Type": "application/json"})
    assert huge.status_code == 413
    assert malformed.status_code == 422
