"""Rules and channels for admins, through reporting: the notifier keeps them, reporting checks the caller (admin
on the rule's or channel's site, and on the body's site: moving one needs both; a channel of every site, a
global admin) and calls the notifier server-side with its admin token naming the user (`X-PPE-Acting-User`),
so the notifier's audit records name the person. The browser never holds a notifier token.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request, Response

from services.reporting.adapters.notifier_incidents import NotifierIncidents, NotifierRefused, NotifierUnavailable
from services.reporting.api.deps import PRINTABLE, upstream_error
from services.reporting.api.schemas import error_responses
from shared.access.http import NOT_FOUND, Require, body, lookup, query
from shared.access.roles import Principal, Role

router = APIRouter(
    prefix="/api/v1/notifications",
    responses=error_responses(
        forbidden="The caller is not an admin of the rule's or channel's site (or of the body's site).",
        not_found="Unknown rule or channel, or the link to the notifier is off.",
        unavailable="The notifier did not answer: retry later.",
    ),
)
SiteQuery = Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this site.")]


def _notifier(request: Request) -> NotifierIncidents:
    notifier: NotifierIncidents | None = request.app.state.notifier
    if notifier is None:
        raise HTTPException(404, "rules and channels are off here: set REPORTING_NOTIFIER_URL and "
                            "REPORTING_NOTIFIER_ADMIN_TOKEN and restart")
    return notifier


async def _call(request: Request, method: str, path: str, user: str | None, **kwargs: Any) -> Any:
    try:
        return await _notifier(request).manage(method, path, user=user, **kwargs)
    except (NotifierRefused, NotifierUnavailable) as exc:
        raise upstream_error(exc, service="the notifier") from exc


async def rule_site(request: Request) -> Any:
    try:
        rule = await _notifier(request).manage("GET", f"/v1/rules/{request.path_params['rule_id']}", user=None)
    except NotifierRefused:
        return NOT_FOUND
    except NotifierUnavailable as exc:
        raise upstream_error(exc, service="the notifier") from exc
    return rule.get("site_id") or NOT_FOUND


async def channel_site(request: Request) -> Any:
    """The channel's site; None: a channel of every site (a global admin's)."""
    wanted = str(request.path_params["channel_id"])
    try:
        channels = await _notifier(request).manage("GET", "/v1/channels", user=None)
    except NotifierRefused:
        return NOT_FOUND
    except NotifierUnavailable as exc:
        raise upstream_error(exc, service="the notifier") from exc
    found = [channel for channel in channels if str(channel.get("id")) == wanted]
    return found[0].get("site_id") if found else NOT_FOUND


SiteAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, query()))]
NewAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, body()))]


async def _per_site(request: Request, who: Principal, path: str, site_id: str | None) -> list[dict[str, Any]]:
    """The notifier's list for the caller's admin sites, each asked for on its own (it sees every site)."""
    sites = who.sites(Role.ADMIN)
    asked: list[str | None] = [site_id] if site_id is not None or sites is None else [*sorted(sites)]
    found: list[dict[str, Any]] = []
    for site in asked:
        found += await _call(request, "GET", path, who.name, params=None if site is None else {"site_id": site})
    return [item for item in found if sites is None or item.get("site_id") in sites]


@dataclass(frozen=True)
class Kind:
    """Rules and channels are managed alike: list, create, replace, delete; only the words differ."""

    name: str  # "rule": /api/v1/notifications/rules/{rule_id} -> the notifier's /v1/rules/{rule_id}
    site_of: Callable[[Request], Awaitable[Any]]
    body: str  # what the body holds
    create: str  # the creation's summary
    replace_note: str = ""


def add_routes(kind: Kind) -> None:
    plural, key = f"{kind.name}s", f"{kind.name}_id"
    ItemId = Annotated[int, Path(alias=key, ge=1, le=2**31 - 1, description=f"The {kind.name}'s id (notifier).")]
    Payload = Annotated[dict[str, Any], Body(description=f"The {kind.name} as the notifier takes it: {kind.body}.")]
    ItemAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(kind.site_of)))]
    ItemMover = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(kind.site_of), body()))]
    where = f"/v1/{plural}"

    @router.get(f"/{plural}", summary=f"The {plural} of the sites the caller administers", name=f"list_{plural}")
    async def listed(request: Request, who: SiteAdmin, site_id: SiteQuery = None) -> list[dict[str, Any]]:
        return await _per_site(request, who, where, site_id)

    @router.post(f"/{plural}", status_code=201, summary=kind.create, name=f"create_{kind.name}")
    async def created(item: Payload, request: Request, who: NewAdmin) -> Any:
        return await _call(request, "POST", where, who.name, body=item)

    @router.put(f"/{plural}/{{{key}}}", summary=f"Replace a {kind.name} (admin of its site and of the body's)"
                f"{kind.replace_note}", name=f"replace_{kind.name}")
    async def replaced(item_id: ItemId, item: Payload, request: Request, who: ItemMover) -> Any:
        return await _call(request, "PUT", f"{where}/{item_id}", who.name, body=item)

    @router.delete(f"/{plural}/{{{key}}}", status_code=204, summary=f"Delete a {kind.name}",
                   name=f"delete_{kind.name}")
    async def deleted(item_id: ItemId, request: Request, who: ItemAdmin) -> Response:
        await _call(request, "DELETE", f"{where}/{item_id}", who.name)
        return Response(status_code=204)


add_routes(Kind("rule", rule_site, "site_id, zone_id, camera_id, policy (docs/notifier.md)",
                "New alert rule (admin of its site)"))
add_routes(Kind("channel", channel_site, "name, kind, target, secret, site_id (null: every site), min_severity, "
                "enabled", "New channel (admin of its site; of every site: global)", ": its secret is given again"))
