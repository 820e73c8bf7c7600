"""Rules and channels for admins, through reporting: the notifier keeps them, reporting checks the caller (admin
on the rule's or channel's site, and on the body's site: moving one needs both; a channel of every site, a
global admin) and calls the notifier server-side with its admin token naming the user (`X-PPE-Acting-User`),
so the notifier's audit records name the person. The browser never holds a notifier token.
"""

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
RuleId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The rule's id (notifier).")]
ChannelId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The channel's id (notifier).")]
SiteQuery = Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this site.")]
RuleBody = Annotated[dict[str, Any], Body(description="The rule as the notifier takes it: site_id, zone_id, "
                                          "camera_id, policy (docs/notifier.md).")]
ChannelBody = Annotated[dict[str, Any], Body(description="The channel as the notifier takes it: name, kind, target, "
                                             "secret, site_id (null: every site), min_severity, enabled.")]


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
RuleAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(rule_site)))]
RuleMover = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(rule_site), body()))]
ChannelAdmin = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(channel_site)))]
ChannelMover = Annotated[Principal, Depends(Require(Role.ADMIN, lookup(channel_site), body()))]


async def _per_site(request: Request, who: Principal, path: str, site_id: str | None) -> list[dict[str, Any]]:
    """The notifier's list for the caller's admin sites, each asked for on its own (it sees every site)."""
    sites = who.sites(Role.ADMIN)
    asked: list[str | None] = [site_id] if site_id is not None or sites is None else [*sorted(sites)]
    found: list[dict[str, Any]] = []
    for site in asked:
        found += await _call(request, "GET", path, who.name, params=None if site is None else {"site_id": site})
    return [item for item in found if sites is None or item.get("site_id") in sites]


@router.get("/rules", summary="Alert rules of the sites the caller administers")
async def list_rules(request: Request, who: SiteAdmin, site_id: SiteQuery = None) -> list[dict[str, Any]]:
    return await _per_site(request, who, "/v1/rules", site_id)


@router.post("/rules", status_code=201, summary="New alert rule (admin of its site)")
async def create_rule(rule: RuleBody, request: Request, who: NewAdmin) -> Any:
    return await _call(request, "POST", "/v1/rules", who.name, body=rule)


@router.put("/rules/{rule_id}", summary="Replace an alert rule (admin of its site and of the body's)")
async def replace_rule(rule_id: RuleId, rule: RuleBody, request: Request, who: RuleMover) -> Any:
    return await _call(request, "PUT", f"/v1/rules/{rule_id}", who.name, body=rule)


@router.delete("/rules/{rule_id}", status_code=204, summary="Delete an alert rule (the default policy applies)")
async def delete_rule(rule_id: RuleId, request: Request, who: RuleAdmin) -> Response:
    await _call(request, "DELETE", f"/v1/rules/{rule_id}", who.name)
    return Response(status_code=204)


@router.get("/channels", summary="Notification channels of the sites the caller administers")
async def list_channels(request: Request, who: SiteAdmin, site_id: SiteQuery = None) -> list[dict[str, Any]]:
    """A global admin also sees the channels of every site (site_id null)."""
    return await _per_site(request, who, "/v1/channels", site_id)


@router.post("/channels", status_code=201, summary="New channel (admin of its site; of every site: global)")
async def create_channel(channel: ChannelBody, request: Request, who: NewAdmin) -> Any:
    return await _call(request, "POST", "/v1/channels", who.name, body=channel)


@router.put("/channels/{channel_id}", summary="Replace a channel (its secret must be given again)")
async def replace_channel(channel_id: ChannelId, channel: ChannelBody, request: Request, who: ChannelMover) -> Any:
    return await _call(request, "PUT", f"/v1/channels/{channel_id}", who.name, body=channel)


@router.delete("/channels/{channel_id}", status_code=204, summary="Delete a channel")
async def delete_channel(channel_id: ChannelId, request: Request, who: ChannelAdmin) -> Response:
    await _call(request, "DELETE", f"/v1/channels/{channel_id}", who.name)
    return Response(status_code=204)
