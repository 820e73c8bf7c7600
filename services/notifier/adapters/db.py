"""The notifier's PostgreSQL tables (notifier_*), their retention, and what every repository shares.

The queries live in the repositories beside this module: cameras.py (camera state, applied frames), rules.py
(rules, channels, hourly alert counts), incidents.py (incidents and their history), deliveries.py (the delivery
log) and outbox.py (messages to publish after commit).
"""

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from shared.purge import PurgeRule

metadata = sa.MetaData()


def _strings(*, nullable: bool = False, **lengths: int) -> "list[sa.Column[str]]":
    """String columns by name and length (0: Text), NOT NULL unless `nullable`."""
    return [
        sa.Column(name, sa.String(length) if length else sa.Text, nullable=nullable) for name, length in lengths.items()
    ]


def _at(name: str, *, now: bool = False, nullable: bool = True) -> "sa.Column[Any]":
    """A timestamp with time zone; `now`: the database's now() by default."""
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable, server_default=sa.func.now() if now else None)


def _table(name: str, key: Any, *columns: Any) -> sa.Table:
    """A table whose primary key is its first column, `id` (of type `key`)."""
    return sa.Table(name, metadata, sa.Column("id", key, primary_key=True), *columns)


def _json(name: str, *, nullable: bool = False) -> "sa.Column[Any]":
    return sa.Column(name, JSONB, nullable=nullable)


rules = _table(
    "notifier_rules",
    sa.Integer,
    *_strings(site_id=128),
    *_strings(zone_id=128, camera_id=128, nullable=True),
    _json("policy"),
    _at("created_at", now=True),
    _at("updated_at", now=True),
)
channels = _table(
    "notifier_channels",
    sa.Integer,
    *_strings(name=128, kind=16, target=0),
    *_strings(secret=0, site_id=128, nullable=True),
    *_strings(min_severity=16),
    sa.Column("enabled", sa.Boolean, nullable=False),
    _at("created_at", now=True),
)
camera_state = sa.Table(
    "notifier_camera_state",
    metadata,
    sa.Column("camera_id", sa.String(128), primary_key=True),
    _json("state"),
    _at("updated_at", now=True),
)
applied_frames = sa.Table(
    "notifier_applied_frames",
    metadata,
    sa.Column("camera_id", sa.String(128), primary_key=True),
    sa.Column("frame_id", sa.String(128), primary_key=True),
    _at("applied_at", now=True),
)
incidents = _table(
    "notifier_incidents",
    sa.String(64),
    *_strings(camera_id=128, site_id=128, zone_id=128),
    sa.Column("track_id", sa.Integer, nullable=False),
    *_strings(status=16),
    _json("missing_equipment"),
    *_strings(severity=16),
    _at("started_at", nullable=False),
    _at("last_seen_at", nullable=False),
    _at("resolved_at"),
    sa.Column("max_confidence", sa.Float, nullable=False),
    *_strings(opened_frame_id=128, last_frame_id=128),
    sa.Column("alerted", sa.Boolean, nullable=False),
    *_strings(suppressed_reason=0, nullable=True),
    _at("updated_at", now=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),  # +1 per change, sent on IncidentChanged
    # the review (n0004): operators' actions (review: confirmed / false_positive); the verdict feeds precision
    _at("acknowledged_at"),
    *_strings(acknowledged_by=160, assigned_to=160, review=16, review_reason=0, reviewed_by=160, nullable=True),
    _at("reviewed_at"),
    *_strings(resolved_by=160, nullable=True),
    # escalation (n0004): the steps the incident opened with, the step reached, when the next is due
    _json("opened_frame", nullable=True),  # {"frame", "captured_at", "face_boxes"} of the opening frame
    _json("escalation", nullable=True),  # {"steps": [{"after_s", "channel_ids"}]}
    sa.Column("escalation_step", sa.Integer, nullable=False, server_default="0"),
    _at("escalate_at"),
)
incident_actions = _table(
    "notifier_incident_actions",
    sa.BigInteger,
    *_strings(incident_id=64, action=32, actor=160),
    _json("details"),
    _at("at", now=True),
)
outbox = _table(
    "notifier_outbox",
    sa.BigInteger,
    *_strings(camera_id=128, frame_id=128, message_type=64),
    _json("payload"),
    _at("created_at", now=True),
    _at("published_at"),
)
deliveries = _table(
    "notifier_deliveries",
    sa.String(64),
    *_strings(incident_id=64),
    sa.Column("channel_id", sa.Integer, nullable=False),
    *_strings(event=16, status=16),
    *_strings(reason=0, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    *_strings(last_error=0, nullable=True),
    _at("created_at", now=True),
    _at("sent_at"),
    _json("held_request", nullable=True),  # the NotificationRequested of a 'held' delivery, re-sent on release
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




def of_sites(
    select: "sa.Select[Any]", site_column: "sa.ColumnElement[Any]", *, site_id: str | None,
    sites: Collection[str] | None,
) -> "sa.Select[Any]":
    """Narrow a listing to one site (`site_id`) and to the caller's sites (`sites`; None: every site)."""
    if site_id is not None:
        select = select.where(site_column == site_id)
    if sites is not None:
        select = select.where(site_column.in_(sorted(sites)))
    return select


async def site_of(conn: AsyncConnection, table: sa.Table, key: object) -> "sa.Row[Any] | None":
    """The row of a rule, channel or incident by id, with its `site_id` only (None on a channel of every site);
    None when there is no such row."""
    return (await conn.execute(sa.select(table.c.site_id).where(table.c.id == key))).first()
