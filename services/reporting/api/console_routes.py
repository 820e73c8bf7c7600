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
from services.reporting.api.deps import PRINTABLE, upstream_error
from services.reporting.api.schemas import error_responses
from shared.access import store
from shared.access.http import NOT_FOUND, Require, lookup, query
from shared.access.roles import Principal, Role
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(
    prefix="/api/v1/console",
    responses=error_responses(
        forbidden="The caller lacks the role this needs on the incident's site.",
        not_found="Unknown incident, or the incident console is off.",
        unavailable="The notifier did not answer: retry later.",
    ),
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


class Assign(_Body):
    user: str | None = Field(max_length=128, pattern=store.USERNAME_PATTERN,
                             description="User name (an operator of the incident's site); null: nobody.")


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
    return upstream_error(exc, service="the notifier", passed=(404, 409))


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
    request: Request, incident_id: str, action: str, body: BaseModel | dict[str, Any] | None, principal: Principal
) -> dict[str, Any]:
    """The action at the notifier, in the name of the user reporting checked (a service token: its name)."""
    payload = body.model_dump(exclude_none=True) if isinstance(body, BaseModel) else body
    try:
        return await _notifier(request).act(incident_id, action, payload, user=principal.name)
    except (NotifierRefused, NotifierUnavailable) as exc:
        raise _error(exc) from exc


def _note_action(action: str, summary: str) -> None:
    """An action whose body is an optional note: acknowledge, resolve, confirm."""

    @router.post(f"/incidents/{{incident_id}}/{action}", summary=summary, name=action)
    async def noted(
        incident_id: IncidentId, request: Request, principal: IncidentOperator, body: Note | None = None
    ) -> dict[str, Any]:
        return await _act(request, incident_id, action, body, principal)


_note_action("acknowledge", "Seen and being handled: stops the escalation")
_note_action("resolve", "Close the incident by hand")
_note_action("confirm", "A real violation (the reviewer's verdict that precision counts)")


@router.post("/incidents/{incident_id}/comment", summary="Add a comment to the incident's history")
async def comment(incident_id: IncidentId, body: Comment, request: Request, principal: IncidentOperator) -> Any:
    return await _act(request, incident_id, "comment", body, principal)


@router.post("/incidents/{incident_id}/false-positive", summary="Not a violation (with the reason)")
async def false_positive(
    incident_id: IncidentId, body: FalsePositive, request: Request, principal: IncidentOperator
) -> dict[str, Any]:
    return await _act(request, incident_id, "false-positive", body, principal)


@router.post("/incidents/{incident_id}/assign", summary="Assign the incident to an operator of its site")
async def assign(incident_id: IncidentId, body: Assign, request: Request, principal: IncidentOperator) -> Any:
    return await _act(request, incident_id, "assign", body.model_dump(), principal)  # null user: unassign


@router.get("/incidents/{incident_id}/assignees", summary="Who the incident may be assigned to")
async def assignees(incident_id: IncidentId, request: Request, _: IncidentOperator) -> list[str]:
    """The enabled users holding operator (or more) on the incident's site, by name."""
    site = await incident_site(request)
    engine = request.app.state.access.engine
    if site is NOT_FOUND or engine is None:
        raise HTTPException(404, f"no incident {incident_id}")
    return await store.site_members(engine, str(site), at_least=Role.OPERATOR)
