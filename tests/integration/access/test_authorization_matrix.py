"""Every route of ingest-admin, notifier and reporting x every role x own site / other site, on real PostgreSQL.

The routes come from the apps themselves. `POLICY` below is the intended access rule of each route, written
here independently of the code: a route missing from it, or one without a `Require` check, fails
`test_every_route_has_a_policy_and_a_check`; a check weaker or stronger than its policy fails the matrix.
The seeded objects (camera, rule, channel, incident) live on site A; "own" callers hold the role on site A,
"other" callers the same role on site B.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute

from shared.access.http import Require
from shared.access.roles import Role
from tests.integration.access.conftest import (
    CAMERA_A,
    CHANNEL_A,
    INCIDENT_A,
    PASSWORD,
    RULE_A,
    SITE_A,
    SITE_B,
    WEBHOOK,
    Apps,
    make_user,
    seed,
    token_for,
)
from tests.integration.test_route_auth import ALL, OPEN, routes

SITE, ANY, GLOBAL, SELF = "site", "any", "global", "self"
CAMERA_KEY_ROUTES = {("POST", "/v1/frames"), ("GET", "/v1/frames/{frame_id}"), ("GET", "/v1/cameras/me")}
OPEN_ROUTES = {
    ("reporting", "POST", "/api/v1/auth/login"), ("reporting", "GET", "/"), ("reporting", "GET", "/zones"),
    ("reporting", "GET", "/static"), ("reporting", "GET", "/incidents"),
}


@dataclass(frozen=True)
class Policy:
    role: Role
    scope: str  # SITE: the role on the object's site; ANY: on some site; GLOBAL: on every site; SELF: signed in
    url: str | Callable[["Context"], str] = ""  # default: the route's path
    body: Callable[["Context"], Any] | None = None
    also_let_through: tuple[int, str] | None = None  # (status, text in it): a refusal that is not about access


@dataclass
class Context:
    apps: Apps
    user_id: int
    token_id: int
    target_user_id: int


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rule_body(ctx: Context) -> dict[str, Any]:
    return {"site_id": SITE_A, "zone_id": unique("zone")}


def channel_body(name: str | None = None) -> Callable[[Context], dict[str, Any]]:
    return lambda ctx: {"name": name or unique("chan"), "kind": "webhook", "target": WEBHOOK,
                        "secret": "s" * 20, "site_id": SITE_A}


Q = f"?site_id={SITE_A}"
READ_RANGE = Q + "&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z"
POLICY: dict[tuple[str, str, str], Policy] = {
    # ingest: cameras and their zones
    ("ingest", "POST", "/v1/admin/cameras"): Policy(
        Role.ADMIN, SITE, body=lambda ctx: {"camera_id": unique("cam"), "site_id": SITE_A, "zone_id": "gate"}),
    ("ingest", "GET", "/v1/admin/cameras"): Policy(Role.VIEWER, SITE, "/v1/admin/cameras" + Q),
    ("ingest", "GET", "/v1/admin/cameras/{camera_id}"): Policy(Role.VIEWER, SITE),
    ("ingest", "PUT", "/v1/admin/cameras/{camera_id}/zones"): Policy(Role.ADMIN, SITE, body=lambda ctx: {"zones": []}),
    ("ingest", "POST", "/v1/admin/cameras/{camera_id}/rotate-key"): Policy(Role.ADMIN, SITE),
    ("ingest", "POST", "/v1/admin/cameras/{camera_id}/disable"): Policy(Role.ADMIN, SITE),
    ("ingest", "POST", "/v1/admin/cameras/{camera_id}/enable"): Policy(Role.ADMIN, SITE),
    ("ingest", "PUT", "/v1/admin/cameras/{camera_id}/location-override"): Policy(
        Role.ADMIN, SITE, body=lambda ctx: {"allowed": False}),
    # notifier: rules, channels, incidents, the delivery log
    ("notifier", "GET", "/v1/rules/default"): Policy(Role.VIEWER, ANY),
    ("notifier", "GET", "/v1/rules"): Policy(Role.VIEWER, SITE, "/v1/rules" + Q),
    ("notifier", "POST", "/v1/rules"): Policy(Role.ADMIN, SITE, body=rule_body),
    ("notifier", "GET", "/v1/rules/{rule_id}"): Policy(Role.VIEWER, SITE),
    ("notifier", "PUT", "/v1/rules/{rule_id}"): Policy(Role.ADMIN, SITE, body=rule_body),
    ("notifier", "DELETE", "/v1/rules/{rule_id}"): Policy(Role.ADMIN, SITE),
    ("notifier", "GET", "/v1/channels"): Policy(Role.ADMIN, SITE, "/v1/channels" + Q),
    ("notifier", "POST", "/v1/channels"): Policy(Role.ADMIN, SITE, body=channel_body()),
    ("notifier", "PUT", "/v1/channels/{channel_id}"): Policy(Role.ADMIN, SITE, body=channel_body("site-a-ops")),
    ("notifier", "DELETE", "/v1/channels/{channel_id}"): Policy(Role.ADMIN, SITE),
    ("notifier", "GET", "/v1/incidents"): Policy(Role.VIEWER, SITE, "/v1/incidents" + Q),
    ("notifier", "GET", "/v1/deliveries"): Policy(Role.VIEWER, SITE, "/v1/deliveries" + Q),
    # notifier: one incident and the operators' actions on it (the seeded incident of site A)
    ("notifier", "GET", "/v1/incidents/{incident_id}"): Policy(Role.VIEWER, SITE),
    ("notifier", "POST", "/v1/incidents/{incident_id}/acknowledge"): Policy(Role.OPERATOR, SITE),
    ("notifier", "POST", "/v1/incidents/{incident_id}/assign"): Policy(
        Role.OPERATOR, SITE, body=lambda ctx: {"user": f"operator-{SITE_A}"}),
    ("notifier", "POST", "/v1/incidents/{incident_id}/comment"): Policy(
        Role.OPERATOR, SITE, body=lambda ctx: {"text": "checked on the floor"}),
    ("notifier", "POST", "/v1/incidents/{incident_id}/resolve"): Policy(Role.OPERATOR, SITE),
    ("notifier", "POST", "/v1/incidents/{incident_id}/false-positive"): Policy(
        Role.OPERATOR, SITE, body=lambda ctx: {"reason": "a shadow, not a person"}),
    ("notifier", "POST", "/v1/incidents/{incident_id}/confirm"): Policy(Role.OPERATOR, SITE),
    # reporting: charts, incidents, CSV, sites, retention
    **{
        ("reporting", "GET", f"/api/v1/{path}"): Policy(Role.VIEWER, SITE, f"/api/v1/{path}{READ_RANGE}")
        for path in ("compliance/trend", "compliance/breakdown", "compliance/exposure", "violations/top-locations",
                     "violations/top-hours", "incidents", "sites", "precision")
    },
    ("reporting", "GET", "/api/v1/export/events.csv"): Policy(
        Role.ANALYST, SITE, "/api/v1/export/events.csv" + READ_RANGE),
    ("reporting", "PUT", "/api/v1/sites/{site_id}"): Policy(
        Role.ADMIN, SITE, f"/api/v1/sites/{SITE_A}", body=lambda ctx: {"timezone": "Europe/Berlin"}),
    ("reporting", "POST", "/api/v1/retention/run"): Policy(Role.ADMIN, GLOBAL),
    # reporting: the caller's own account
    ("reporting", "POST", "/api/v1/auth/logout"): Policy(Role.VIEWER, SELF),
    ("reporting", "GET", "/api/v1/auth/me"): Policy(Role.VIEWER, SELF),
    ("reporting", "POST", "/api/v1/auth/password"): Policy(
        Role.VIEWER, SELF, body=lambda ctx: {"current_password": PASSWORD, "new_password": PASSWORD}),
    ("reporting", "GET", "/api/v1/auth/tokens"): Policy(Role.VIEWER, SELF),
    ("reporting", "POST", "/api/v1/auth/tokens"): Policy(Role.VIEWER, SELF, body=lambda ctx: {"name": "script"}),
    ("reporting", "DELETE", "/api/v1/auth/tokens/{token_id}"): Policy(
        Role.VIEWER, SELF, lambda ctx: f"/api/v1/auth/tokens/{ctx.token_id}"),
    # reporting: users and the audit trail
    ("reporting", "GET", "/api/v1/users"): Policy(Role.ADMIN, ANY),  # a site admin: the users of their sites
    ("reporting", "POST", "/api/v1/users"): Policy(
        Role.ADMIN, SITE, body=lambda ctx: {"username": unique("user"), "password": PASSWORD,
                                            "site_roles": {SITE_A: "viewer"}}),
    ("reporting", "PUT", "/api/v1/users/{user_id}"): Policy(
        Role.ADMIN, GLOBAL, lambda ctx: f"/api/v1/users/{ctx.target_user_id}",
        body=lambda ctx: {"site_roles": {SITE_A: "viewer"}}),
    ("reporting", "PUT", "/api/v1/users/{user_id}/sites/{site_id}"): Policy(
        Role.ADMIN, SITE, lambda ctx: f"/api/v1/users/{ctx.target_user_id}/sites/{SITE_A}",
        body=lambda ctx: {"role": "viewer"}),
    ("reporting", "DELETE", "/api/v1/users/{user_id}/sites/{site_id}"): Policy(
        Role.ADMIN, SITE, lambda ctx: f"/api/v1/users/{ctx.target_user_id}/sites/{SITE_A}"),
    ("reporting", "GET", "/api/v1/users/{user_id}/tokens"): Policy(
        Role.ADMIN, GLOBAL, lambda ctx: f"/api/v1/users/{ctx.target_user_id}/tokens"),
    ("reporting", "DELETE", "/api/v1/users/{user_id}/tokens/{token_id}"): Policy(
        Role.ADMIN, GLOBAL, lambda ctx: f"/api/v1/users/{ctx.user_id}/tokens/{ctx.token_id}"),
    ("reporting", "GET", "/api/v1/audit"): Policy(Role.ADMIN, SITE, "/api/v1/audit" + Q),
    ("reporting", "GET", "/api/v1/audit/verify"): Policy(Role.ADMIN, GLOBAL),
    # reporting: the zone editor (cameras and zones live at ingest; the camera's site decides)
    ("reporting", "GET", "/api/v1/equipment"): Policy(Role.VIEWER, ANY),
    ("reporting", "GET", "/api/v1/cameras"): Policy(Role.VIEWER, SITE, "/api/v1/cameras" + Q),
    ("reporting", "GET", "/api/v1/cameras/{camera_id}/snapshot"): Policy(
        Role.VIEWER, SITE, also_let_through=(404, "no analysed frame")),  # no frame analysed in these tests
    ("reporting", "PUT", "/api/v1/cameras/{camera_id}/zones"): Policy(
        Role.ADMIN, SITE, body=lambda ctx: {"outside": "camera", "zones": [
            {"zone_id": "walkway", "polygon": [{"x": 0.1, "y": 0.5}, {"x": 0.9, "y": 0.5}, {"x": 0.5, "y": 0.95}],
             "required_equipment": ["HEAD_COVER"]}]}),
    # reporting: the incident console (incidents live at the notifier; the incident's site decides)
    ("reporting", "GET", "/api/v1/console/incidents"): Policy(Role.VIEWER, SITE, "/api/v1/console/incidents" + Q),
    ("reporting", "GET", "/api/v1/console/incidents/{incident_id}"): Policy(Role.VIEWER, SITE),
    ("reporting", "POST", "/api/v1/console/incidents/{incident_id}/acknowledge"): Policy(Role.OPERATOR, SITE),
    ("reporting", "POST", "/api/v1/console/incidents/{incident_id}/comment"): Policy(
        Role.OPERATOR, SITE, body=lambda ctx: {"text": "checked on the floor"}),
    ("reporting", "POST", "/api/v1/console/incidents/{incident_id}/resolve"): Policy(Role.OPERATOR, SITE),
    ("reporting", "POST", "/api/v1/console/incidents/{incident_id}/false-positive"): Policy(
        Role.OPERATOR, SITE, body=lambda ctx: {"reason": "a shadow, not a person"}),
    # reporting: digests (the site in the path) and the caller's own subscriptions
    **{
        ("reporting", "GET", f"/api/v1/digests/{{site_id}}.{fmt}"): Policy(
            Role.VIEWER, SITE, f"/api/v1/digests/{SITE_A}.{fmt}?period=daily&end=2026-11-02")
        for fmt in ("pdf", "html")
    },
    ("reporting", "GET", "/api/v1/digests/subscriptions"): Policy(Role.VIEWER, SELF),
    ("reporting", "PUT", "/api/v1/digests/subscriptions/{site_id}/{period}"): Policy(
        Role.VIEWER, SITE, f"/api/v1/digests/subscriptions/{SITE_A}/weekly",
        body=lambda ctx: {"email": "someone@example.com"}),
    ("reporting", "DELETE", "/api/v1/digests/subscriptions/{site_id}/{period}"): Policy(
        Role.VIEWER, SELF, f"/api/v1/digests/subscriptions/{SITE_A}/weekly"),
    ("reporting", "POST", "/api/v1/console/incidents/{incident_id}/confirm"): Policy(Role.OPERATOR, SITE),
    ("reporting", "POST", "/api/v1/console/incidents/{incident_id}/assign"): Policy(
        Role.OPERATOR, SITE, body=lambda ctx: {"user": f"operator-{SITE_A}"}),
    ("reporting", "GET", "/api/v1/console/incidents/{incident_id}/assignees"): Policy(Role.OPERATOR, SITE),
    # reporting: rules and channels (kept by the notifier; reporting checks, then acts in the user's name)
    ("reporting", "GET", "/api/v1/notifications/rules"): Policy(Role.ADMIN, SITE, "/api/v1/notifications/rules" + Q),
    ("reporting", "POST", "/api/v1/notifications/rules"): Policy(Role.ADMIN, SITE, body=rule_body),
    ("reporting", "PUT", "/api/v1/notifications/rules/{rule_id}"): Policy(Role.ADMIN, SITE, body=rule_body),
    ("reporting", "DELETE", "/api/v1/notifications/rules/{rule_id}"): Policy(Role.ADMIN, SITE),
    ("reporting", "GET", "/api/v1/notifications/channels"): Policy(
        Role.ADMIN, SITE, "/api/v1/notifications/channels" + Q),
    ("reporting", "POST", "/api/v1/notifications/channels"): Policy(Role.ADMIN, SITE, body=channel_body()),
    ("reporting", "PUT", "/api/v1/notifications/channels/{channel_id}"): Policy(
        Role.ADMIN, SITE, body=channel_body("site-a-ops")),
    ("reporting", "DELETE", "/api/v1/notifications/channels/{channel_id}"): Policy(Role.ADMIN, SITE),
    # reporting: the admin pages (the page itself needs the role; their data is checked by the routes above)
    **{("reporting", "GET", page): Policy(Role.ADMIN, ANY) for page in ("/audit", "/users", "/notifications")},
}
PATH_VALUES = {"camera_id": CAMERA_A, "rule_id": str(RULE_A), "channel_id": str(CHANNEL_A), "incident_id": INCIDENT_A}


def walked() -> dict[tuple[str, str, str], APIRoute | None]:
    """(service, method, path) -> route, as tests/integration/test_route_auth.py walks them (with the route)."""
    found: dict[tuple[str, str, str], APIRoute | None] = {}
    for service, app in ALL.items():
        if service == "detector":  # the Rekognition-compatible API: its own AWS-style keys, no users
            continue
        for method, path in routes(app):
            found[(service, method, path)] = None
        stack: list[tuple[Any, str]] = [(route, "") for route in app.routes]
        while stack:
            route, prefix = stack.pop()
            if hasattr(route, "original_router"):
                stack += [(inner, prefix + route.include_context.prefix) for inner in route.original_router.routes]
            elif isinstance(route, APIRoute):
                for method in route.methods:
                    found[(service, method, prefix + route.path)] = route
    return found


def has_check(route: APIRoute | None) -> bool:
    if route is None:
        return False
    stack = [route.dependant]
    while stack:
        dependant = stack.pop()
        if isinstance(dependant.call, Require):
            return True
        stack += dependant.dependencies
    return False


def test_every_route_has_a_policy_and_a_check() -> None:
    found = walked()
    user_routes = {key: route for key, route in found.items()
                   if key[2] not in OPEN and key not in OPEN_ROUTES
                   and not (key[0] == "ingest" and key[1:] in CAMERA_KEY_ROUTES)}
    assert set(user_routes) == set(POLICY), (
        f"routes without a policy here: {sorted(set(user_routes) - set(POLICY))}; "
        f"policies of routes that are gone: {sorted(set(POLICY) - set(user_routes))}"
    )
    unchecked = sorted(key for key, route in user_routes.items() if not has_check(route))
    assert unchecked == [], f"routes without a Require(role, site) check: {unchecked}"


ROLES = list(Role)
CASES = [(key, role, where) for key in POLICY for role in ROLES for where in ("own", "other")]


def expected_allowed(policy: Policy, role: Role | None, where: str, *, global_admin: bool = False) -> bool:
    if global_admin or policy.scope == SELF:
        return True
    if role is None or not role.covers(policy.role):
        return False
    return {SITE: where == "own", ANY: True, GLOBAL: False}[policy.scope]


@pytest.fixture(scope="module")
async def people(apps: Apps) -> dict[str, int]:
    engine = apps.engine
    found = {f"{role.value}@{site}": await make_user(engine, f"{role.value}-{site}", roles={site: role})
             for role in ROLES for site in (SITE_A, SITE_B)}
    found["global-admin"] = await make_user(engine, "global-admin", global_role=Role.ADMIN)
    found["nobody"] = await make_user(engine, "nobody")
    found["target"] = await make_user(engine, "target-user")
    return found


async def call(apps: Apps, key: tuple[str, str, str], user_id: int, target_user_id: int) -> tuple[int, str]:
    service, method, path = key
    policy = POLICY[key]
    token = await token_for(apps.engine, user_id)
    _, spare = await token_for_id(apps, user_id)
    ctx = Context(apps=apps, user_id=user_id, token_id=spare, target_user_id=target_user_id)
    url = policy.url(ctx) if callable(policy.url) else (policy.url or path)
    for name, value in PATH_VALUES.items():
        url = url.replace("{" + name + "}", value)
    await seed(apps.engine)  # a case before may have deleted the rule or the channel
    async with apps.client(service, Authorization=f"Bearer {token}") as client:
        response = await client.request(method, url, json=policy.body(ctx) if policy.body else None)
    return response.status_code, response.text[:300]


def let_through(policy: Policy, status: int, text: str) -> bool:
    if policy.also_let_through is not None:
        expected_status, expected_text = policy.also_let_through
        if status == expected_status and expected_text in text:
            return True
    return 200 <= status < 300


async def token_for_id(apps: Apps, user_id: int) -> tuple[str, int]:
    from shared.access import store

    row, token = await store.create_token(apps.engine, user_id=user_id, name="spare", expires_at=None)
    return token, int(row["id"])


@pytest.mark.parametrize(("key", "role", "where"), CASES,
                         ids=[f"{k[0]}:{k[1]} {k[2]}-{r.value}-{w}" for k, r, w in CASES])
async def test_role_and_site_decide(
    apps: Apps, people: dict[str, int], key: tuple[str, str, str], role: Role, where: str
) -> None:
    site = SITE_A if where == "own" else SITE_B
    status, text = await call(apps, key, people[f"{role.value}@{site}"], people["target"])
    if expected_allowed(POLICY[key], role, where):
        assert let_through(POLICY[key], status, text), f"{role.value} of {site} should be let through: {status} {text}"
    else:
        assert status == 403, f"{role.value} of {site} should be refused: {status} {text}"


@pytest.mark.parametrize("key", list(POLICY), ids=[f"{k[0]}:{k[1]} {k[2]}" for k in POLICY])
async def test_a_global_admin_passes_and_a_user_without_roles_does_not(
    apps: Apps, people: dict[str, int], key: tuple[str, str, str]
) -> None:
    status, text = await call(apps, key, people["global-admin"], people["target"])
    assert let_through(POLICY[key], status, text), f"global admin: {status} {text}"
    status, text = await call(apps, key, people["nobody"], people["target"])
    if POLICY[key].scope == SELF:
        assert 200 <= status < 300, f"own account: {status} {text}"
    else:
        assert status == 403, f"a user without roles: {status} {text}"
