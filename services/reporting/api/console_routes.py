"""The incident console's API: the open incidents of the caller's sites and the operators' actions on them.

Incidents live in the notifier; reporting reaches its incident API server-side with the notifier's admin token
(`REPORTING_NOTIFIER_ADMIN_TOKEN`, never sent to the browser) and checks the caller itself: viewer on the
incident's site to read, operator to act (docs/access.md). The notifier records the signed-in user as the
actor (`X-PPE-Acting-User`, trusted from its admin token only), so history and audit name the person.
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from services.reporting.adapters.notifier_incidents import NotifierIncidents, NotifierRefused, NotifierUnavailable
from services.reporting.api.deps import PRINTABLE
from services.reporting.api.schemas import ErrorOut, InvalidOut
from shared.access.http import NOT_FOUND, Require, lookup, query
from shared.access.roles import Principal, Role
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(
    prefix="/api/v1/console",
    responses={
        401: {"model": ErrorOut, "description": "Not signed in, and no or an unknown bearer token."},
        403: {"model": ErrorOut, "description": "The caller lacks the role this needs on the incident's site."},
        404: {"model": ErrorOut, "description": "Unknown incident, or the incident console is off."},
        422: {"model": InvalidOut, "description": "Invalid parameters or body."},
        503: {"model": ErrorOut, "description": "The notifier did not answer: retry later."},
    },
)
IncidentId = Annotated[
    str, Path(max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]*$", description="Incident id (notifier).")
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Note(_Body):
    note: str | None = Field(default=None, max_length=2000, description="Optional words kept in the history.")


class Comment(_Body):
    text: str = Field(min_length=1, max_length=4000, description="The comment, kept in the incident's history.")


class FalsePositive(_Body):
    reason: str = Field(min_length=3, max_length=2000, description="Why it is not a violation (kept per camera).")


def _notifier(request: Request) -> NotifierIncidents:
    notifier: NotifierIncidents | None = request.app.state.notifier
    if notifier is None:
        raise HTTPException(
            404, "the incident console is off: set REPORTING_NOTIFIER_URL and REPORTING_NOTIFIER_ADMIN_TOKEN and "
            "restart"
        )
    return notifier


def _error(exc: NotifierRefused | NotifierUnavailable) -> HTTPException:
    if isinstance(exc, NotifierUnavailable):
        log.warning("notifier incident API unavailable", error=str(exc)[:300])
        return HTTPException(503, "the notifier is not reachable; try again in a moment", {"Retry-After": "5"})
    return HTTPException(exc.status if exc.status in (404, 409) else 422, f"the notifier refused: {exc.message}")


async def incident_site(request: Request) -> Any:
    """The site of the incident the path names, as the notifier has it (NOT_FOUND: the route answers 404)."""
    try:
        return (await _notifier(request).incident(str(request.path_params["incident_id"]))).get("site_id") or NOT_FOUND
    except NotifierRefused:
        return NOT_FOUND
    except NotifierUnavailable as exc:
        raise _error(exc) from exc


SiteViewer = Annotated[Principal, Depends(Require(Role.VIEWER, query()))]
IncidentViewer = Annotated[Principal, Depends(Require(Role.VIEWER, lookup(incident_site)))]
IncidentOperator = Annotated[Principal, Depends(Require(Role.OPERATOR, lookup(incident_site)))]


@router.get("/incidents", summary="Incidents of the caller's sites (newest first), from the notifier")
async def incidents(
    request: Request,
    principal: SiteViewer,
    site_id: Annotated[str | None, Query(max_length=128, pattern=PRINTABLE, description="Only this site.")] = None,
    status: Annotated[Literal["open", "resolved"] | None, Query(description="Only open or resolved ones.")] = "open",
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many.")] = 100,
) -> list[dict[str, Any]]:
    """The notifier sees every site: without `site_id`, each of the caller's sites is asked for on its own (so
    another site's incidents never crowd them out of `limit`), newest first."""
    sites = principal.sites(Role.VIEWER)
    asked: list[str | None] = [site_id] if site_id is not None or sites is None else [*sorted(sites)]
    found: list[dict[str, Any]] = []
    try:
        for site in asked:
            found += await _notifier(request).incidents(site_id=site, status=status, limit=limit)
    except (NotifierRefused, NotifierUnavailable) as exc:
        raise _error(exc) from exc
    found.sort(key=lambda incident: str(incident.get("started_at")), reverse=True)
    return [incident for incident in found if sites is None or incident.get("site_id") in sites][:limit]


@router.get("/incidents/{incident_id}", summary="One incident, its review state and its history")
async def incident(incident_id: IncidentId, request: Request, _: IncidentViewer) -> dict[str, Any]:
    try:
        return await _notifier(request).incident(incident_id)
    except (NotifierRefused, NotifierUnavailable) as exc:
        raise _error(exc) from exc


async def _act(
    request: Request, incident_id: str, action: str, body: BaseModel | None, principal: Principal
) -> dict[str, Any]:
    """The action at the notifier, in the name of the user reporting checked (a service token: its name)."""
    payload = None if body is None else body.model_dump(exclude_none=True)
    try:
        return await _notifier(request).act(incident_id, action, payload, user=principal.name)
    except (NotifierRefused, NotifierUnavailable) as exc:
        raise _error(exc) from exc


@router.post("/incidents/{incident_id}/acknowledge", summary="Seen and being handled: stops the escalation")
async def acknowledge(
    incident_id: IncidentId, request: Request, principal: IncidentOperator, body: Note | None = None
) -> dict[str, Any]:
    return await _act(request, incident_id, "acknowledge", body, principal)


@router.post("/incidents/{incident_id}/comment", summary="Add a comment to the incident's history")
async def comment(incident_id: IncidentId, body: Comment, request: Request, principal: IncidentOperator) -> Any:
    return await _act(request, incident_id, "comment", body, principal)


@router.post("/incidents/{incident_id}/resolve", summary="Close the incident by hand")
async def resolve(
    incident_id: IncidentId, request: Request, principal: IncidentOperator, body: Note | None = None
) -> dict[str, Any]:
    return await _act(request, incident_id, "resolve", body, principal)


@router.post("/incidents/{incident_id}/false-positive", summary="Not a violation (with the reason)")
async def false_positive(
    incident_id: IncidentId, body: FalsePositive, request: Request, principal: IncidentOperator
) -> dict[str, Any]:
    return await _act(request, incident_id, "false-positive", body, principal)
