"""Escalation: an alerted incident nobody acknowledged is announced to the rule's next set of channels.

The state is the incident's row (`escalation` steps, `escalation_step` reached, `escalate_at` when the next is
due), so it holds across workers and restarts. Every worker sweeps periodically: due rows are taken with
SELECT ... FOR UPDATE SKIP LOCKED, and the step, its delivery log rows and their NotificationRequested (outbox)
are written in one transaction, published after commit. Two workers never take the same row; a crash before
commit leaves the step due for the next sweep; delivery ids are deterministic (incident, channel,
"escalation<n>"), so nothing is sent twice. Acknowledging or resolving clears `escalate_at`.
"""

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifier.adapters.deliveries import DeliveryRepository, delivery_id
from services.notifier.adapters.incidents import IncidentRepository, change_of
from services.notifier.adapters.rules import ChannelRepository
from services.notifier.publishing import Outgoing, enqueue, publish_written
from shared.contracts import NotificationRequested
from shared.logging import get_logger
from shared.sqs import Publisher

log = get_logger(__name__)
ACTOR = "service:notifier-escalation"


async def escalate_due(engine: AsyncEngine, publisher: Publisher | None, *, limit: int = 50) -> int:
    """Fire every escalation step that is due; returns how many steps fired."""
    written: list[Outgoing] = []
    async with engine.begin() as conn:
        due = await IncidentRepository(conn).due_for_escalation(limit=limit)
        for row in due:
            await _fire(conn, row, written)
    if written and publisher is not None:
        await publish_written(engine, publisher, written)
    return len(due)


async def _fire(conn: AsyncConnection, row: Any, written: list[Outgoing]) -> None:
    incidents = IncidentRepository(conn)
    steps = (row.escalation or {}).get("steps", [])
    step = row.escalation_step + 1
    if step > len(steps):  # nothing left (a rule stored oddly): stop
        await incidents.escalated(row.id, step=None, next_after_s=None)
        return
    wanted = steps[step - 1]["channel_ids"]
    channels = await ChannelRepository(conn).enabled_for_site(row.site_id, ids=wanted)
    template = row.opened_frame
    incident = change_of(row).model_copy(update={"status": "open"})
    sent_to = []
    for channel in channels:
        did = delivery_id(row.id, channel.id, f"escalation{step}")
        logged = await DeliveryRepository(conn).log(
            did, incident_id=row.id, channel_id=channel.id, event=f"escalation{step}", status="pending"
        )
        if not logged:
            continue
        request = NotificationRequested(
            delivery_id=did, channel_id=channel.id, incident=incident, frame=template["frame"],
            captured_at=template["captured_at"], blur_faces=True, face_boxes=template["face_boxes"],
            escalation_step=step,
        )
        written.append(await enqueue(conn, row.camera_id, row.last_frame_id, request))
        sent_to.append(channel.id)
    missing = sorted(set(wanted) - {c.id for c in channels})
    if missing:
        log.warning("escalation channels missing, disabled or of another site", incident_id=row.id, channels=missing)
    await incidents.escalated(row.id, step=step, next_after_s=steps[step]["after_s"] if step < len(steps) else None)
    await incidents.add_action(row.id, "escalate", ACTOR, {"step": step, "channel_ids": sent_to,
                                                           "missing_channel_ids": missing})
    log.info("incident escalated", incident_id=row.id, step=step, channels=sent_to)
