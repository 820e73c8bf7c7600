"""Escalation: an alerted incident nobody acknowledged is announced to the rule's next set of channels.

The state is the incident's row (`escalation` steps, `escalation_step` reached, `escalate_at` when the next is
due), so it holds across workers and restarts. Every worker sweeps periodically: due rows are taken with
SELECT ... FOR UPDATE SKIP LOCKED, and the step, its delivery log rows and their NotificationRequested (outbox)
are written in one transaction, published after commit. Two workers never take the same row; a crash before
commit leaves the step due for the next sweep; delivery ids are deterministic (incident, channel,
"escalation<n>"), so nothing is sent twice. Acknowledging or resolving clears `escalate_at`.
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifier.adapters import db
from services.notifier.handlers import Outgoing, _enqueue, delivery_id, publish_written
from services.notifier.review import change_of
from shared.contracts import NotificationRequested
from shared.logging import get_logger
from shared.sqs import Publisher

log = get_logger(__name__)
ACTOR = "service:notifier-escalation"


async def escalate_due(engine: AsyncEngine, publisher: Publisher | None, *, limit: int = 50) -> int:
    """Fire every escalation step that is due; returns how many steps fired."""
    written: list[Outgoing] = []
    async with engine.begin() as conn:
        due = (
            await conn.execute(
                sa.select(db.incidents)
                .where(
                    db.incidents.c.escalate_at <= sa.func.now(),
                    db.incidents.c.status == "open",
                    db.incidents.c.acknowledged_at.is_(None),
                )
                .order_by(db.incidents.c.escalate_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in due:
            await _fire(conn, row, written)
    if written and publisher is not None:
        await publish_written(engine, publisher, written)
    return len(due)


async def _fire(conn: AsyncConnection, row: Any, written: list[Outgoing]) -> None:
    steps = (row.escalation or {}).get("steps", [])
    step = row.escalation_step + 1
    if step > len(steps):  # nothing left (a rule stored oddly): stop
        await conn.execute(db.incidents.update().where(db.incidents.c.id == row.id).values(escalate_at=None))
        return
    wanted = steps[step - 1]["channel_ids"]
    channels = (
        await conn.execute(
            sa.select(db.channels.c.id, db.channels.c.name).where(
                db.channels.c.id.in_(wanted),
                db.channels.c.enabled.is_(True),
                sa.or_(db.channels.c.site_id.is_(None), db.channels.c.site_id == row.site_id),
            ).order_by(db.channels.c.id)
        )
    ).all()
    template = row.opened_frame
    incident = change_of(row).model_copy(update={"status": "open"})
    sent_to = []
    for channel in channels:
        did = delivery_id(row.id, channel.id, f"escalation{step}")
        inserted = await conn.execute(
            insert(db.deliveries)
            .values(id=did, incident_id=row.id, channel_id=channel.id, event=f"escalation{step}", status="pending")
            .on_conflict_do_nothing()
            .returning(db.deliveries.c.id)
        )
        if inserted.first() is None:
            continue
        request = NotificationRequested(
            delivery_id=did, channel_id=channel.id, incident=incident, frame=template["frame"],
            captured_at=template["captured_at"], blur_faces=True, face_boxes=template["face_boxes"],
            escalation_step=step,
        )
        written.append(await _enqueue(conn, row.camera_id, row.last_frame_id, request))
        sent_to.append(channel.id)
    missing = sorted(set(wanted) - {c.id for c in channels})
    if missing:
        log.warning("escalation channels missing, disabled or of another site", incident_id=row.id, channels=missing)
    after_s = steps[step]["after_s"] if step < len(steps) else None
    next_at = None if after_s is None else sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, after_s)
    await conn.execute(
        db.incidents.update().where(db.incidents.c.id == row.id).values(escalation_step=step, escalate_at=next_at)
    )
    await conn.execute(db.incident_actions.insert().values(
        incident_id=row.id, action="escalate", actor=ACTOR,
        details={"step": step, "channel_ids": sent_to, "missing_channel_ids": missing}))
    log.info("incident escalated", incident_id=row.id, step=step, channels=sent_to)
