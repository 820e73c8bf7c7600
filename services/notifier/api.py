"""Rules / channels API, incident and delivery log views, health, metrics.

Callers: users (session or personal token) with a role on the site, or NOTIFIER_ADMIN_TOKEN (a global admin).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier import review
from services.notifier.adapters import db
from services.notifier.adapters.secret_box import SecretBox
from services.notifier.adapters.targets import IPNetwork, TargetRefused, check_apprise_url, check_webhook_url
from services.notifier.domain import RulePolicy, Severity
from services.notifier.incident_api import ADMIN_TOKEN_NAME, acting_accepts, add_incident_routes
from shared.access import audit
from shared.access.http import NOT_FOUND, Access, Require, body, lookup, query, service_tokens
from shared.access.roles import Principal, Role
from shared.equipment import Catalogue, UnknownEquipment, default_custom_equipment
from shared.http_guard import Guard
from shared.logging import get_logger
from shared.sqs import Publisher

log = get_logger(__name__)

ChannelKind = Literal["webhook", "email", "apprise", "sns"]
# PostgreSQL text cannot hold NUL and its ids are 32-bit: both are refused as 422 here, never met as a 500 there.
NO_NUL = r"^[^\x00]*$"
DB_ID_MAX = 2**31 - 1
RowId = Annotated[int, PathParam(ge=1, le=DB_ID_MAX, description="Row id (1 .. 2^31-1).")]
Filter = Annotated[str | None, Query(max_length=256, pattern=NO_NUL)]


def invalid(loc: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 in FastAPI's own shape (`detail`: a list of {loc, msg, type}), as the schema documents every 422."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": None}])


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleIn(_Schema):
    site_id: str = Field(min_length=1, max_length=128, pattern=NO_NUL, description="Site the rule applies to.")
    zone_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=NO_NUL, description="Zone; None = whole site."
    )
    camera_id: str | None = Field(
        default=None, min_length=1, max_length=128, pattern=NO_NUL, description="Camera; None = zone/site."
    )
    policy: RulePolicy = Field(default_factory=RulePolicy, description="What the rule requires and how it alerts.")


class RuleOut(RuleIn):
    id: int
    updated_at: datetime


class ChannelIn(_Schema):
    name: str = Field(min_length=1, max_length=128, pattern=NO_NUL, description="Unique name, e.g. site-1-ops-slack.")
    kind: ChannelKind = Field(description="webhook, email, apprise (Slack, Teams, ...) or sns.")
    target: str = Field(
        min_length=1,
        max_length=2000,
        pattern=NO_NUL,
        description="webhook URL, comma-separated email addresses, Apprise URL, or SNS topic ARN.",
    )
    secret: str | None = Field(
        default=None, min_length=16, max_length=512, pattern=NO_NUL, description="Webhook signing secret."
    )
    site_id: str | None = Field(
        default=None, max_length=128, pattern=NO_NUL, description="Only this site's alerts; None = all."
    )
    min_severity: Severity = Field(default="info", description="Lowest severity this channel receives.")
    enabled: bool = True

    @model_validator(mode="after")
    def _webhook_target(self) -> "ChannelIn":
        if self.kind == "webhook" and not self.target.startswith(("http://", "https://")):
            raise ValueError("a webhook target must be an http(s) URL")
        return self


class ChannelOut(_Schema):
    id: int
    name: str
    kind: ChannelKind
    target: str
    has_secret: bool
    site_id: str | None
    min_severity: Severity
    enabled: bool


def _channel_out(row: Any) -> ChannelOut:
    return ChannelOut(
        id=row.id,
        name=row.name,
        kind=row.kind,
        target=row.target,
        has_secret=bool(row.secret),
        site_id=row.site_id,
        min_severity=row.min_severity,
        enabled=row.enabled,
    )


def _rule_out(row: Any) -> RuleOut:
    return RuleOut(
        id=row.id,
        site_id=row.site_id,
        zone_id=row.zone_id,
        camera_id=row.camera_id,
        policy=RulePolicy.model_validate(row.policy),
        updated_at=row.updated_at,
    )


def notifier_tokens(admin_token: str) -> dict[str, Principal]:
    """NOTIFIER_ADMIN_TOKEN stays a global admin (machine use)."""
    return service_tokens({admin_token: (ADMIN_TOKEN_NAME, Role.ADMIN)})


def _channel_details(channel: ChannelIn) -> dict[str, Any]:
    """What the audit keeps of a channel: never its secret (nor a target, which may hold a token in its URL)."""
    return {"name": channel.name, "kind": channel.kind, "min_severity": channel.min_severity,
            "enabled": channel.enabled, "has_secret": bool(channel.secret)}


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

    async def site_of(table: Any, request: Request, name: str) -> object:
        try:
            key = int(request.path_params[name])
        except ValueError:
            return NOT_FOUND  # the route answers 422
        if not 0 < key < 2**31:
            return NOT_FOUND  # beyond the id column: no such object
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(table.c.site_id).where(table.c.id == key))).first()
        return NOT_FOUND if row is None else row.site_id

    async def rule_site(request: Request) -> object:
        return await site_of(db.rules, request, "rule_id")

    async def channel_site(request: Request) -> object:
        return await site_of(db.channels, request, "channel_id")  # None: a channel of every site

    async def audited(
        conn: Any, principal: Principal, action: str, site_id: str | None, target: str, **details: Any
    ) -> None:
        await audit.append(conn, actor=principal.audit_name(), action=action, site_id=site_id, target=target,
                           details={"via": principal.via, **details})

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

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(response: Response) -> dict[str, str]:
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - report, do not crash the probe
            # the prober is unauthenticated: the error text (hosts, names) goes to the log only
            log.warning("readiness: database unreachable", error=str(exc)[:300])
            response.status_code = 503
            return {"status": "database unreachable"}
        if not ready():
            response.status_code = 503
            return {"status": "consumers not polling"}
        return {"status": "ready"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/rules/default")
    async def get_default_rule(_: Viewer) -> RulePolicy:
        return default_policy

    @app.get("/v1/rules")
    async def list_rules(
        principal: SiteViewer, site_id: Filter = None
    ) -> list[RuleOut]:
        """The rules of the caller's sites (or of `site_id`)."""
        select = sa.select(db.rules).order_by(db.rules.c.id)
        if site_id is not None:
            select = select.where(db.rules.c.site_id == site_id)
        if (sites := principal.sites(Role.VIEWER)) is not None:
            select = select.where(db.rules.c.site_id.in_(sorted(sites)))
        async with engine.connect() as conn:
            return [_rule_out(r) for r in (await conn.execute(select)).all()]

    @app.post("/v1/rules", status_code=201)
    async def create_rule(rule: RuleIn, principal: NewAdmin) -> RuleOut:
        checked(rule)
        try:
            async with engine.begin() as conn:
                row = (
                    await conn.execute(
                        db.rules.insert()
                        .values(
                            site_id=rule.site_id,
                            zone_id=rule.zone_id,
                            camera_id=rule.camera_id,
                            policy=rule.policy.model_dump(mode="json"),
                        )
                        .returning(*db.rules.c)
                    )
                ).one()
                await audited(conn, principal, "rule.create", rule.site_id, f"rule:{row.id}",
                              rule=rule.model_dump(mode="json"))
        except IntegrityError as exc:
            raise HTTPException(
                409, "a rule for this site / zone / camera exists; PUT /v1/rules/{id} to change it"
            ) from exc
        return _rule_out(row)

    @app.get("/v1/rules/{rule_id}")
    async def get_rule(rule_id: RowId, _: RuleViewer) -> RuleOut:
        async with engine.connect() as conn:
            row = (await conn.execute(sa.select(db.rules).where(db.rules.c.id == rule_id))).first()
        if row is None:
            raise HTTPException(404, f"no rule {rule_id}")
        return _rule_out(row)

    @app.put("/v1/rules/{rule_id}")
    async def replace_rule(
        rule_id: RowId, rule: RuleIn, principal: RuleMover
    ) -> RuleOut:
        checked(rule)
        try:
            async with engine.begin() as conn:
                row = (
                    await conn.execute(
                        db.rules.update()
                        .where(db.rules.c.id == rule_id)
                        .values(
                            site_id=rule.site_id,
                            zone_id=rule.zone_id,
                            camera_id=rule.camera_id,
                            policy=rule.policy.model_dump(mode="json"),
                            updated_at=sa.func.now(),
                        )
                        .returning(*db.rules.c)
                    )
                ).first()
                if row is not None:
                    await audited(conn, principal, "rule.update", rule.site_id, f"rule:{rule_id}",
                                  rule=rule.model_dump(mode="json"))
        except IntegrityError as exc:
            raise HTTPException(409, "another rule already covers this site / zone / camera") from exc
        if row is None:
            raise HTTPException(404, f"no rule {rule_id}")
        return _rule_out(row)

    @app.delete("/v1/rules/{rule_id}", status_code=204)
    async def delete_rule(
        rule_id: RowId, principal: RuleAdmin
    ) -> Response:
        async with engine.begin() as conn:
            row = (await conn.execute(db.rules.delete().where(db.rules.c.id == rule_id).returning(*db.rules.c))).first()
            if row is not None:
                await audited(conn, principal, "rule.delete", row.site_id, f"rule:{rule_id}")
        if row is None:
            raise HTTPException(404, f"no rule {rule_id}")
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
        select = sa.select(db.channels).order_by(db.channels.c.id)
        if site_id is not None:
            select = select.where(db.channels.c.site_id == site_id)
        if (sites := principal.sites(Role.ADMIN)) is not None:
            select = select.where(db.channels.c.site_id.in_(sorted(sites)))
        async with engine.connect() as conn:
            rows = (await conn.execute(select)).all()
        return [_channel_out(r) for r in rows]

    @app.post("/v1/channels", status_code=201)
    async def create_channel(channel: ChannelIn, principal: NewAdmin) -> ChannelOut:
        values = await stored_values(channel)
        try:
            async with engine.begin() as conn:
                row = (await conn.execute(db.channels.insert().values(**values).returning(*db.channels.c))).one()
                await audited(conn, principal, "channel.create", channel.site_id, f"channel:{row.id}",
                              **_channel_details(channel))
        except IntegrityError as exc:
            raise HTTPException(409, f"a channel named {channel.name!r} exists") from exc
        return _channel_out(row)

    @app.put("/v1/channels/{channel_id}")
    async def replace_channel(channel_id: RowId, channel: ChannelIn, principal: ChannelMover) -> ChannelOut:
        values = await stored_values(channel)
        try:
            async with engine.begin() as conn:
                row = (
                    await conn.execute(
                        db.channels.update()
                        .where(db.channels.c.id == channel_id)
                        .values(**values)
                        .returning(*db.channels.c)
                    )
                ).first()
                if row is not None:
                    await audited(conn, principal, "channel.update", channel.site_id, f"channel:{channel_id}",
                                  **_channel_details(channel))
        except IntegrityError as exc:
            raise HTTPException(409, f"a channel named {channel.name!r} exists") from exc
        if row is None:
            raise HTTPException(404, f"no channel {channel_id}")
        return _channel_out(row)

    @app.delete("/v1/channels/{channel_id}", status_code=204)
    async def delete_channel(
        channel_id: RowId, principal: ChannelAdmin
    ) -> Response:
        async with engine.begin() as conn:
            row = (
                await conn.execute(db.channels.delete().where(db.channels.c.id == channel_id).returning(*db.channels.c))
            ).first()
            if row is not None:
                await audited(conn, principal, "channel.delete", row.site_id, f"channel:{channel_id}")
        if row is None:
            raise HTTPException(404, f"no channel {channel_id}")
        return Response(status_code=204)

    @app.get("/v1/incidents")
    async def list_incidents(
        principal: SiteViewer,
        site_id: Filter = None,
        camera_id: Filter = None,
        incident_status: Annotated[Literal["open", "resolved"] | None, Query(alias="status")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        select = sa.select(db.incidents).order_by(db.incidents.c.started_at.desc()).limit(limit)
        if site_id is not None:
            select = select.where(db.incidents.c.site_id == site_id)
        if (sites := principal.sites(Role.VIEWER)) is not None:
            select = select.where(db.incidents.c.site_id.in_(sorted(sites)))
        if camera_id is not None:
            select = select.where(db.incidents.c.camera_id == camera_id)
        if incident_status is not None:
            select = select.where(db.incidents.c.status == incident_status)
        async with engine.connect() as conn:
            return [review.view(r) for r in (await conn.execute(select)).all()]

    add_incident_routes(app, engine=engine, publisher=publisher)

    @app.get("/v1/deliveries")
    async def list_deliveries(
        principal: SiteViewer,
        site_id: Filter = None,
        incident_id: Filter = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        """The delivery log (of the caller's sites' incidents): what was sent where, what was suppressed and why."""
        select = sa.select(db.deliveries).order_by(db.deliveries.c.created_at.desc()).limit(limit)
        if incident_id is not None:
            select = select.where(db.deliveries.c.incident_id == incident_id)
        sites = principal.sites(Role.VIEWER)
        if site_id is not None or sites is not None:
            of_sites = sa.select(db.incidents.c.id)
            if site_id is not None:
                of_sites = of_sites.where(db.incidents.c.site_id == site_id)
            if sites is not None:
                of_sites = of_sites.where(db.incidents.c.site_id.in_(sorted(sites)))
            select = select.where(db.deliveries.c.incident_id.in_(of_sites))
        async with engine.connect() as conn:
            return [dict(r._mapping) for r in (await conn.execute(select)).all()]

    return app
