"""Operators act on incidents: acknowledge, assign, comment, resolve, mark a false positive (or confirm).

Each action, in one transaction: lock the incident's row, change it, append to its history
(`notifier_incident_actions`) and to the audit trail, and, when reporting should know (acknowledged,
resolved, the verdict), bump the incident's version and write an IncidentChanged to the outbox; it is
published after commit (or by the sweep). Assigning and commenting are the console's business: history and
audit only, no version. Acknowledging or resolving stops the incident's escalation.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.adapters.incidents import IncidentRepository, change_of
from shared.access import audit
from shared.access.roles import Principal
from shared.contracts import IncidentChanged

Action = Literal["acknowledge", "assign", "comment", "resolve", "false_positive", "confirm"]
TELLS_REPORTING: frozenset[str] = frozenset({"acknowledge", "resolve", "false_positive", "confirm"})


class IncidentMissing(LookupError):
    pass


@dataclass(frozen=True)
class Done:
    incident: dict[str, Any]
    changed: bool  # False: the action changed nothing (acknowledged twice, resolved twice)
    message: IncidentChanged | None  # written to the outbox; publish after commit


def _values(action: str, row: Any, actor: str, now: datetime, details: dict[str, Any]) -> dict[str, Any]:
    """The incident's columns the action sets; {} when it changes nothing."""
    if action == "acknowledge":
        if row.acknowledged_at is not None:
            return {}
        return {"acknowledged_at": now, "acknowledged_by": actor, "escalate_at": None}
    if action == "assign":
        return {} if row.assigned_to == details["user"] else {"assigned_to": details["user"]}
    if action == "comment":
        return {"updated_at": now}  # nothing of the incident changes; the history keeps the text
    if action == "resolve":
        if row.status == "resolved":
            return {}
        return {"status": "resolved", "resolved_at": now, "resolved_by": actor, "escalate_at": None,
                **({} if row.acknowledged_at else {"acknowledged_at": now, "acknowledged_by": actor})}
    verdict = "false_positive" if action == "false_positive" else "confirmed"
    reason = details.get("reason")
    if row.review == verdict and row.review_reason == reason:
        return {}
    values = {"review": verdict, "review_reason": reason, "reviewed_by": actor, "reviewed_at": now}
    if row.acknowledged_at is None:  # a verdict is a look at it: it stops the escalation too
        values |= {"acknowledged_at": now, "acknowledged_by": actor, "escalate_at": None}
    return values


async def act(
    conn: AsyncConnection, incident_id: str, action: Action, principal: Principal, details: dict[str, Any]
) -> Done:
    """Apply one action inside the caller's transaction; raises IncidentMissing."""
    incidents = IncidentRepository(conn)
    row = await incidents.lock(incident_id)
    if row is None:
        raise IncidentMissing(incident_id)
    actor = principal.audit_name()
    now = await incidents.now()
    values = _values(action, row, actor, now, details)
    message = None
    if values:
        row = await incidents.review(incident_id, values, new_version=action in TELLS_REPORTING)
        await incidents.add_action(incident_id, action, actor, details)
        await audit.append(conn, actor=actor, action=f"incident.{action}", site_id=row.site_id,
                           target=f"incident:{incident_id}", details={"via": principal.via, **details})
        if action in TELLS_REPORTING:
            message = change_of(row)
    return Done(incident=view(row), changed=bool(values), message=message)


def view(row: Any) -> dict[str, Any]:
    """An incident as the API shows it (without the escalation's stored request)."""
    found = dict(row._mapping)
    escalation = found.pop("escalation", None) or {}
    found.pop("opened_frame", None)
    found["escalation_steps"] = len(escalation.get("steps", []))
    return found
