"""The notifier's PostgreSQL tables (notifier_*) and the queries on them.

Per-camera state is one row locked with SELECT ... FOR UPDATE for the whole frame transaction, so any
number of workers apply a camera's frames one at a time and agree on tracks, incidents and cooldowns.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.domain import CameraState, RulePolicy
from shared.purge import PurgeRule

metadata = sa.MetaData()

rules = sa.Table(
    "notifier_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("site_id", sa.String(128), nullable=False),
    sa.Column("zone_id", sa.String(128)),
    sa.Column("camera_id", sa.String(128)),
    sa.Column("policy", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
channels = sa.Table(
    "notifier_channels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("secret", sa.Text),
    sa.Column("site_id", sa.String(128)),
    sa.Column("min_severity", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
camera_state = sa.Table(
    "notifier_camera_state",
    metadata,
    sa.Column("camera_id", sa.String(128), primary_key=True),
    sa.Column("state", JSONB, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
applied_frames = sa.Table(
    "notifier_applied_frames",
    metadata,
    sa.Column("camera_id", sa.String(128), primary_key=True),
    sa.Column("frame_id", sa.String(128), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
incidents = sa.Table(
    "notifier_incidents",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("camera_id", sa.String(128), nullable=False),
    sa.Column("site_id", sa.String(128), nullable=False),
    sa.Column("zone_id", sa.String(128), nullable=False),
    sa.Column("track_id", sa.Integer, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("missing_equipment", JSONB, nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("max_confidence", sa.Float, nullable=False),
    sa.Column("opened_frame_id", sa.String(128), nullable=False),
    sa.Column("last_frame_id", sa.String(128), nullable=False),
    sa.Column("alerted", sa.Boolean, nullable=False),
    sa.Column("suppressed_reason", sa.Text),
    sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),  # +1 per change, sent on IncidentChanged
    # the review (n0004): operators' actions; the verdict feeds precision per camera
    sa.Column("acknowledged_at", sa.DateTime(timezone=True)),
    sa.Column("acknowledged_by", sa.String(160)),
    sa.Column("assigned_to", sa.String(160)),
    sa.Column("review", sa.String(16)),  # confirmed / false_positive
    sa.Column("review_reason", sa.Text),
    sa.Column("reviewed_by", sa.String(160)),
    sa.Column("reviewed_at", sa.DateTime(timezone=True)),
    sa.Column("resolved_by", sa.String(160)),
    # escalation (n0004): the steps the incident opened with, the step reached, when the next is due
    sa.Column("opened_frame", JSONB),  # {"frame", "captured_at", "face_boxes"} of the opening frame
    sa.Column("escalation", JSONB),  # {"steps": [{"after_s", "channel_ids"}]}
    sa.Column("escalation_step", sa.Integer, nullable=False, server_default="0"),
    sa.Column("escalate_at", sa.DateTime(timezone=True)),
)
incident_actions = sa.Table(
    "notifier_incident_actions",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("details", JSONB, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)
outbox = sa.Table(
    "notifier_outbox",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("camera_id", sa.String(128), nullable=False),
    sa.Column("frame_id", sa.String(128), nullable=False),
    sa.Column("message_type", sa.String(64), nullable=False),
    sa.Column("payload", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("published_at", sa.DateTime(timezone=True)),
)
deliveries = sa.Table(
    "notifier_deliveries",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("incident_id", sa.String(64), nullable=False),
    sa.Column("channel_id", sa.Integer, nullable=False),
    sa.Column("event", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("held_request", JSONB),  # the NotificationRequested of a 'held' delivery, re-sent on release
)
# Retention, in this order (deliveries before the incidents they name). Kept whatever their age: rules,
# channels, camera state, open incidents, unpublished outbox rows and deliveries still to be sent.
PURGE_RULES = (
    PurgeRule("notifier_applied_frames", "applied_at < :cutoff"),
    PurgeRule("notifier_outbox", "published_at < :cutoff"),
    PurgeRule("notifier_deliveries", "status IN ('sent', 'suppressed', 'dead') AND created_at < :cutoff"),
    PurgeRule(
        "notifier_incidents",
        "status = 'resolved' AND resolved_at < :cutoff AND NOT EXISTS (SELECT 1 FROM notifier_deliveries d "
        "WHERE d.incident_id = notifier_incidents.id)",
    ),
    PurgeRule("notifier_alert_counts", "hour < :cutoff"),
)

alert_counts = sa.Table(
    "notifier_alert_counts",
    metadata,
    sa.Column("channel_id", sa.Integer, primary_key=True),
    sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("count", sa.Integer, nullable=False),
)


async def lock_camera(conn: AsyncConnection, camera_id: str) -> CameraState:
    """Create the camera's row if needed and lock it until the transaction ends (one round trip).

    ON CONFLICT DO UPDATE takes the row lock like SELECT ... FOR UPDATE and returns the current state.
    """
    upsert = insert(camera_state).values(camera_id=camera_id, state=CameraState().model_dump(mode="json"))
    statement = upsert.on_conflict_do_update(
        index_elements=["camera_id"], set_={"camera_id": upsert.excluded.camera_id}
    ).returning(camera_state.c.state)
    row = (await conn.execute(statement)).one()
    return CameraState.model_validate(row.state)


async def save_camera(conn: AsyncConnection, camera_id: str, state: CameraState) -> None:
    await conn.execute(
        camera_state.update()
        .where(camera_state.c.camera_id == camera_id)
        .values(state=state.model_dump(mode="json"), updated_at=sa.func.now())
    )


async def mark_applied(conn: AsyncConnection, camera_id: str, frame_id: str) -> bool:
    """Record the frame as applied; False when it already was (a redelivery or a duplicate send)."""
    result = await conn.execute(
        insert(applied_frames)
        .values(camera_id=camera_id, frame_id=frame_id)
        .on_conflict_do_nothing()
        .returning(applied_frames.c.frame_id)
    )
    return result.first() is not None


async def mark_applied_many(conn: AsyncConnection, camera_id: str, frame_ids: list[str]) -> set[str]:
    """Record frames as applied in one statement; returns those that were not applied before."""
    result = await conn.execute(
        insert(applied_frames)
        .values([{"camera_id": camera_id, "frame_id": frame_id} for frame_id in frame_ids])
        .on_conflict_do_nothing()
        .returning(applied_frames.c.frame_id)
    )
    return {row.frame_id for row in result}


async def matching_policy(
    conn: AsyncConnection, *, site_id: str, zone_id: str, camera_id: str
) -> tuple[int | None, RulePolicy | None]:
    """The most specific rule: camera, then zone, then site. (None, None) when no rule matches."""
    rows = (
        await conn.execute(
            sa.select(rules.c.id, rules.c.zone_id, rules.c.camera_id, rules.c.policy).where(
                rules.c.site_id == site_id,
                sa.or_(rules.c.zone_id.is_(None), rules.c.zone_id == zone_id),
                sa.or_(rules.c.camera_id.is_(None), rules.c.camera_id == camera_id),
            )
        )
    ).all()
    if not rows:
        return None, None
    best = max(rows, key=lambda r: (r.camera_id is not None, r.zone_id is not None))
    return best.id, RulePolicy.model_validate(best.policy)


async def site_channels(conn: AsyncConnection, site_id: str) -> list[Any]:
    return list(
        (
            await conn.execute(
                sa.select(channels)
                .where(
                    channels.c.enabled.is_(True), sa.or_(channels.c.site_id.is_(None), channels.c.site_id == site_id)
                )
                .order_by(channels.c.id)
            )
        ).all()
    )


async def take_alert_slot(conn: AsyncConnection, *, channel_id: int, hour: datetime, limit: int) -> bool:
    """Atomically count one alert for the channel in this hour; False when the hourly limit is reached."""
    if limit <= 0:
        return False
    upsert = insert(alert_counts).values(channel_id=channel_id, hour=hour, count=1)
    statement = upsert.on_conflict_do_update(
        index_elements=["channel_id", "hour"],
        set_={"count": alert_counts.c.count + 1},
        where=alert_counts.c.count < limit,
    ).returning(alert_counts.c.count)
    return (await conn.execute(statement)).first() is not None


async def open_alert_channels(conn: AsyncConnection, incident_id: str) -> set[int]:
    rows = await conn.execute(
        sa.select(deliveries.c.channel_id).where(
            deliveries.c.incident_id == incident_id, deliveries.c.event == "open", deliveries.c.status != "suppressed"
        )
    )
    return {r.channel_id for r in rows}
