"""Rules / channels API, incident and delivery log views, health, metrics.

Callers: users (session or personal token) with a role on the site, or NOTIFIER_ADMIN_TOKEN (a global admin).
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifier import review
from services.notifier.adapters.deliveries import DeliveryRepository
from services.notifier.adapters.incidents import IncidentRepository
from services.notifier.adapters.rules import ChannelRepository, RuleRepository
from services.notifier.adapters.secret_box import SecretBox
from services.notifier.adapters.targets import IPNetwork, TargetRefused, check_apprise_url, check_webhook_url
from services.notifier.incident_api import ADMIN_TOKEN_NAME, acting_accepts, add_incident_routes
from services.notifier.policy import RulePolicy
from services.notifier.schemas import ChannelIn, ChannelOut, Filter, RowId, RuleIn, RuleOut, invalid
from shared.access import audit
from shared.access.http import NOT_FOUND, Access, Require, body, lookup, query, service_tokens
from shared.access.roles import Principal, Role
from shared.db import ping as db_ping
from shared.equipment import Catalogue, UnknownEquipment, default_custom_equipment
from shared.http import Readiness, instrument
from shared.http_guard import Guard
from shared.logging import get_logger
from shared.sqs import Publisher

log = get_logger(__name__)


def notifier_tokens(admin_token: str) -> dict[str, Principal]:
    """NOTIFIER_ADMIN_TOKEN stays a global admin (machine use)."""
    return service_tokens({admin_token: (ADMIN_TOKEN_NAME, Role.ADMIN)})


def build_app(
    *,
    engine: AsyncEngine,
    admin_token: str,
    default_policy: RulePolicy,
    ready: Callable[[], bool] = lambda: True,
    default_webhook_secret: bool = False,
    catalogue: Catalogue | None = None,
    secret_box: SecretBox | None = None,
    webhook_networks: tuple[IPNetwork, ...] = (),
    access: Access | None = None,
    publisher: Publisher | None = None,
) -> FastAPI:
    """`secret_box` encrypts channel secrets (without one, a channel with a secret is refused: never plain text);
    `webhook_networks` are the private networks webhooks may reach (NOTIFIER_WEBHOOK_ALLOWED_NETWORKS);
    `access`: who may call (main.py passes users + the admin token; None = the admin token only).
    `publisher`: publishes the IncidentChanged an operator's action writes right after commit (None: the
    outbox sweep does, within a minute)."""
    access = access or Access(engine=None, service_tokens=notifier_tokens(admin_token))
    known = catalogue or Catalogue(default_custom_equipment())

    def checked(rule: RuleIn) -> RuleIn:
        if not rule.policy.blur_faces:
            raise invalid(
                ("body", "policy", "blur_faces"),
                "policy.blur_faces=false is no longer accepted: alerts always show the face-blurred copy of the "
                "frame; a site that needs raw frames sets raw_frames_in_console (authenticated console only)",
            )
        try:
            known.check(rule.policy.required_equipment, where="policy.required_equipment")
        except UnknownEquipment as exc:
            raise invalid(("body", "policy", "required_equipment"), str(exc)) from exc
        return rule

    app = FastAPI(title="PPE notifier", version="1")
    app.add_middleware(
        Guard,
        accepts=acting_accepts(access),
        unauthorised=lambda scope: (
            401, {"detail": "sign in, or send Authorization: Bearer <personal API token or NOTIFIER_ADMIN_TOKEN>"},
            {"WWW-Authenticate": "Bearer"},
        ),
        too_large=lambda limit: (413, {"detail": f"body is over the {limit} byte limit"}, {}),
    )

    async def site_of(repository: type[RuleRepository | ChannelRepository], request: Request, name: str) -> object:
        try:
            key = int(request.path_params[name])
        except ValueError:
            return NOT_FOUND  # the route answers 422
        if not 0 < key < 2**31:
            return NOT_FOUND  # beyond the id column: no such object
        async with engine.connect() as conn:
            row = await repository(conn).site_of(key)
        return NOT_FOUND if row is None else row.site_id

    async def rule_site(request: Request) -> object:
        return await site_of(RuleRepository, request, "rule_id")

    async def channel_site(request: Request) -> object:
        return await site_of(ChannelRepository, request, "channel_id")  # None: a channel of every site

    async def audited(
        kind: str, key: int | None, change: Callable[[AsyncConnection], Awaitable[Any]], principal: Principal,
        action: str, *, conflict: str | None = None, details: dict[str, Any] | None = None,
    ) -> Any:
        """Run a change of a rule or channel and its audit entry in one transaction; returns the changed row.
        404 when there is no row `key` (a rule or channel), 409 with `conflict` when the change clashes."""
        try:
            async with engine.begin() as conn:
                row = await change(conn)
                if row is not None:
                    await audit.append(conn, actor=principal.audit_name(), action=f"{kind}.{action}",
                                       site_id=row.site_id, target=f"{kind}:{row.id}",
                                       details={"via": principal.via, **(details or {})})
        except IntegrityError as exc:
            if conflict is None:
                raise
            raise HTTPException(409, conflict) from exc
        if row is None:
            raise HTTPException(404, f"no {kind} {key}")
        return row

    # who may call each route: the role, and where the site it acts on comes from (docs/access.md)
    Viewer = Annotated[Principal, Depends(Require(Role.VIEWER))]
    SiteViewer = Annotated[Principal, Depends(Require(Role.VIEWER, query()))]
    SiteAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, query()))]
    NewAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, body()))]
    RuleViewer = Annotated[Principal, Depends(Require(Role.VIEWER, lookup(rule_site)))]
    RuleAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(rule_site)))]
    RuleMover = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(rule_site), body()))]
    ChannelAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(channel_site)))]
    ChannelMover = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(channel_site), body()))]

    async def readiness() -> Readiness:
        try:
            await db_ping(engine)
        except Exception as exc:  # noqa: BLE001 - report, do not crash the probe
            # the prober is unauthenticated: the error text (hosts, names) goes to the log only
            log.warning("readiness: database unreachable", error=str(exc)[:300])
            return Readiness(False, {"status": "database unreachable"})
        if not ready():
            return Readiness(False, {"status": "consumers not polling"})
        return Readiness(True, {"status": "ready"})

    @app.get("/v1/rules/default")
    async def get_default_rule(_: Viewer) -> RulePolicy:
        return default_policy

    @app.get("/v1/rules")
    async def list_rules(
        principal: SiteViewer, site_id: Filter = None
    ) -> list[RuleOut]:
        """The rules of the caller's sites (or of `site_id`)."""
        async with engine.connect() as conn:
            rows = await RuleRepository(conn).find(site_id=site_id, sites=principal.sites(Role.VIEWER))
        return [RuleOut.of(r) for r in rows]

    @app.post("/v1/rules", status_code=201)
    async def create_rule(rule: RuleIn, principal: NewAdmin) -> RuleOut:
        values = checked(rule).model_dump(mode="json")
        row = await audited(
            "rule", None, lambda conn: RuleRepository(conn).create(values), principal, "create",
            details={"rule": values},
            conflict="a rule for this site / zone / camera exists; PUT /v1/rules/{id} to change it",
        )
        return RuleOut.of(row)

    @app.get("/v1/rules/{rule_id}")
    async def get_rule(rule_id: RowId, _: RuleViewer) -> RuleOut:
        async with engine.connect() as conn:
            row = await RuleRepository(conn).get(rule_id)
        if row is None:
            raise HTTPException(404, f"no rule {rule_id}")
        return RuleOut.of(row)

    @app.put("/v1/rules/{rule_id}")
    async def replace_rule(rule_id: RowId, rule: RuleIn, principal: RuleMover) -> RuleOut:
        values = checked(rule).model_dump(mode="json")
        row = await audited(
            "rule", rule_id, lambda conn: RuleRepository(conn).replace(rule_id, values), principal, "update",
            details={"rule": values}, conflict="another rule already covers this site / zone / camera",
        )
        return RuleOut.of(row)

    @app.delete("/v1/rules/{rule_id}", status_code=204)
    async def delete_rule(rule_id: RowId, principal: RuleAdmin) -> Response:
        await audited("rule", rule_id, lambda conn: RuleRepository(conn).delete(rule_id), principal, "delete")
        return Response(status_code=204)

    async def stored_values(channel: ChannelIn) -> dict[str, Any]:
        """The row to store: target checked, secret encrypted."""
        if channel.kind == "webhook" and not channel.secret and not default_webhook_secret:
            raise invalid(
                ("body", "secret"),
                "a webhook channel needs a signing secret (>= 16 characters), or set NOTIFIER_WEBHOOK_SECRET",
            )
        if channel.kind in ("webhook", "apprise"):
            check = check_webhook_url if channel.kind == "webhook" else check_apprise_url
            try:
                await check(channel.target, webhook_networks)
            except TargetRefused as exc:
                raise invalid(("body", "target"), f"{channel.kind} target refused: {exc}") from exc
        values = channel.model_dump()
        if channel.secret is not None:
            if secret_box is None:
                raise HTTPException(503, "channel secrets cannot be stored: NOTIFIER_SECRETS_KEY is not configured")
            values["secret"] = secret_box.seal(channel.secret)
        return values

    @app.get("/v1/channels")
    async def list_channels(
        principal: SiteAdmin, site_id: Filter = None
    ) -> list[ChannelOut]:
        """The channels of the sites the caller administers; channels of every site (no site_id) need a global
        admin."""
        async with engine.connect() as conn:
            rows = await ChannelRepository(conn).find(site_id=site_id, sites=principal.sites(Role.ADMIN))
        return [ChannelOut.of(r) for r in rows]

    @app.post("/v1/channels", status_code=201)
    async def create_channel(channel: ChannelIn, principal: NewAdmin) -> ChannelOut:
        values = await stored_values(channel)
        row = await audited(
            "channel", None, lambda conn: ChannelRepository(conn).create(values), principal, "create",
            conflict=f"a channel named {channel.name!r} exists", details=channel.audit_details(),
        )
        return ChannelOut.of(row)

    @app.put("/v1/channels/{channel_id}")
    async def replace_channel(channel_id: RowId, channel: ChannelIn, principal: ChannelMover) -> ChannelOut:
        values = await stored_values(channel)
        row = await audited(
            "channel", channel_id, lambda conn: ChannelRepository(conn).replace(channel_id, values), principal,
            "update", conflict=f"a channel named {channel.name!r} exists", details=channel.audit_details(),
        )
        return ChannelOut.of(row)

    @app.delete("/v1/channels/{channel_id}", status_code=204)
    async def delete_channel(channel_id: RowId, principal: ChannelAdmin) -> Response:
        await audited("channel", channel_id, lambda conn: ChannelRepository(conn).delete(channel_id), principal,
                      "delete")
        return Response(status_code=204)

    @app.get("/v1/incidents")
    async def list_incidents(
        principal: SiteViewer,
        site_id: Filter = None,
        camera_id: Filter = None,
        incident_status: Annotated[Literal["open", "resolved"] | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            rows = await IncidentRepository(conn).find(
                site_id=site_id, sites=principal.sites(Role.VIEWER), camera_id=camera_id, status=incident_status,
                limit=limit,
            )
        return [review.view(r) for r in rows]

    add_incident_routes(app, engine=engine, publisher=publisher)

    @app.get("/v1/deliveries")
    async def list_deliveries(
        principal: SiteViewer,
        site_id: Filter = None,
        incident_id: Filter = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """The delivery log (of the caller's sites' incidents): what was sent where, what was suppressed and why."""
        async with engine.connect() as conn:
            return await DeliveryRepository(conn).find(
                site_id=site_id, sites=principal.sites(Role.VIEWER), incident_id=incident_id, limit=limit
            )

    return instrument(app, readiness)
