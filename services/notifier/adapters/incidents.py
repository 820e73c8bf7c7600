"""Incidents: the stored lifecycle (opened, updated, resolved by the camera), the operators' review, the
escalation's state and the history of actions. A repository on the caller's connection (its transaction)."""

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.adapters.db import incident_actions, incidents, of_sites, site_of
from shared.access import tables as access_tables
from shared.access.roles import Role
from shared.contracts import IncidentChanged
from shared.logging import get_logger

log = get_logger(__name__)


# the columns an IncidentChanged carries as they are stored
_AS_STORED = (
    "camera_id", "site_id", "zone_id", "severity", "started_at", "last_seen_at", "resolved_at", "max_confidence",
    "version", "acknowledged_at", "acknowledged_by", "resolved_by", "review", "review_reason",
)


def change_of(row: Any) -> IncidentChanged:
    """The incident as reporting learns it, from its stored row (an action's change, or an escalation's)."""
    return IncidentChanged(
        incident_id=row.id,
        status="resolved" if row.status == "resolved" else "updated",
        missing_equipment=list(row.missing_equipment),
        frame_id=row.last_frame_id,
        **{name: row._mapping[name] for name in _AS_STORED},
    )


def _after(seconds: float) -> "sa.ColumnElement[Any]":
    """The database's now() plus `seconds`."""
    return sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, seconds)


def _equal(select: "sa.Select[Any]", **values: object) -> "sa.Select[Any]":
    """The incidents whose columns equal the values given (a None value: any)."""
    for name, value in values.items():
        if value is not None:
            select = select.where(incidents.c[name] == value)
    return select


class IncidentRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def save(
        self, change: IncidentChanged, *, track_id: int, alerted: bool, suppressed_reason: str | None,
        opening: dict[str, Any],
    ) -> dict[str, Any]:
        """Store the camera's change; returns what the message must say beside the event: the incident's new
        version (1 when it opens, +1 per later change) and the operators' review (an incident an operator
        resolved stays resolved). `opening`: what an opening change keeps (`opened_frame`, `escalation`)."""
        values: dict[str, Any] = {
            "status": "resolved" if change.status == "resolved" else "open",
            "missing_equipment": list(change.missing_equipment),
            "last_seen_at": change.last_seen_at,
            "resolved_at": change.resolved_at,
            "max_confidence": change.max_confidence,
            "last_frame_id": change.frame_id,
            "updated_at": sa.func.now(),
        }
        if change.status == "open":
            values |= opening
            if "escalation" in opening:
                values["escalate_at"] = _after(opening["escalation"]["steps"][0]["after_s"])
            version = await self._conn.scalar(
                insert(incidents)
                .values(
                    id=change.incident_id,
                    opened_frame_id=change.frame_id,
                    track_id=track_id,
                    alerted=alerted,
                    suppressed_reason=suppressed_reason,
                    version=1,
                    **change.model_dump(include={"camera_id", "site_id", "zone_id", "severity", "started_at"}),
                    **values,
                )
                .on_conflict_do_nothing()
                .returning(incidents.c.version)
            )
            if version is None:  # incident ids are fresh uuids: only a stored one re-applied lands here
                version = await self._conn.scalar(
                    sa.select(incidents.c.version).where(incidents.c.id == change.incident_id)
                )
            return {"version": int(version or 0)}
        by_hand = incidents.c.resolved_by.is_not(None)  # an operator resolved it: it stays resolved
        values["status"] = sa.case((by_hand, "resolved"), else_=values["status"])
        values["resolved_at"] = sa.case((by_hand, incidents.c.resolved_at), else_=change.resolved_at)
        if change.status == "resolved":
            values["escalate_at"] = None
        row = (
            await self._conn.execute(
                incidents.update()
                .where(incidents.c.id == change.incident_id)
                .values(version=incidents.c.version + 1, **values)
                .returning(*incidents.c)
            )
        ).first()
        if row is None:
            log.warning("incident not in the notifier's table; its change is sent without a version")
            return {"version": 0}
        review = {"acknowledged_at": row.acknowledged_at, "acknowledged_by": row.acknowledged_by,
                  "resolved_by": row.resolved_by, "review": row.review, "review_reason": row.review_reason}
        if row.resolved_by is not None:
            review |= {"status": "resolved", "resolved_at": row.resolved_at}
        return {"version": int(row.version), **review}

    async def site_of(self, incident_id: str) -> "sa.Row[Any] | None":
        return await site_of(self._conn, incidents, incident_id)

    async def get(self, incident_id: str) -> "sa.Row[Any] | None":
        return (await self._conn.execute(sa.select(incidents).where(incidents.c.id == incident_id))).first()

    async def find(
        self, *, site_id: str | None, sites: Collection[str] | None, camera_id: str | None, status: str | None,
        limit: int,
    ) -> list["sa.Row[Any]"]:
        """The latest incidents first."""
        select = sa.select(incidents).order_by(incidents.c.started_at.desc()).limit(limit)
        select = _equal(of_sites(select, incidents.c.site_id, site_id=site_id, sites=sites), camera_id=camera_id,
                        status=status)
        return list((await self._conn.execute(select)).all())

    async def roles_on_site(self, incident_id: str, username: str) -> tuple[str | None, list[Role] | None]:
        """The incident's site and the roles a user holds there (global and the site's); roles None when there
        is no enabled user of that name."""
        site = await self._conn.scalar(sa.select(incidents.c.site_id).where(incidents.c.id == incident_id))
        users, site_roles = access_tables.users, access_tables.site_roles
        user = (await self._conn.execute(sa.select(users).where(users.c.username == username))).first()
        if user is None or user.disabled:
            return site, None
        role = Role(user.global_role) if user.global_role else None
        site_role = await self._conn.scalar(
            sa.select(site_roles.c.role).where(site_roles.c.user_id == user.id, site_roles.c.site_id == site)
        )
        return site, [r for r in (role, Role(site_role) if site_role else None) if r is not None]

    async def lock(self, incident_id: str) -> "sa.Row[Any] | None":
        """The incident, locked until the transaction ends (SELECT ... FOR UPDATE)."""
        statement = sa.select(incidents).where(incidents.c.id == incident_id).with_for_update()
        return (await self._conn.execute(statement)).first()

    async def now(self) -> datetime:
        """The database's clock (the transaction's start), which every stored timestamp uses."""
        now: datetime = (await self._conn.execute(sa.select(sa.func.now()))).scalar_one()
        return now

    async def review(self, incident_id: str, values: dict[str, Any], *, new_version: bool) -> "sa.Row[Any]":
        """Set an operator's action's columns; `new_version`: the change is one reporting learns (+1)."""
        if new_version:
            values = {**values, "version": incidents.c.version + 1}
        statement = incidents.update().where(incidents.c.id == incident_id).values(**values)
        return (await self._conn.execute(statement.returning(*incidents.c))).one()

    async def add_action(self, incident_id: str, action: str, actor: str, details: dict[str, Any]) -> None:
        await self._conn.execute(
            incident_actions.insert().values(incident_id=incident_id, action=action, actor=actor, details=details)
        )

    async def history(self, incident_id: str) -> list[dict[str, Any]]:
        rows = await self._conn.execute(
            sa.select(incident_actions).where(incident_actions.c.incident_id == incident_id)
            .order_by(incident_actions.c.id)
        )
        return [dict(r._mapping) for r in rows]

    async def due_for_escalation(self, *, limit: int) -> Sequence["sa.Row[Any]"]:
        """Open, unacknowledged incidents whose next escalation step is due, locked; rows another worker holds
        are skipped (SELECT ... FOR UPDATE SKIP LOCKED), so two workers never take the same one."""
        return (
            await self._conn.execute(
                sa.select(incidents)
                .where(
                    incidents.c.escalate_at <= sa.func.now(),
                    incidents.c.status == "open",
                    incidents.c.acknowledged_at.is_(None),
                )
                .order_by(incidents.c.escalate_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()

    async def escalated(self, incident_id: str, *, step: int | None, next_after_s: float | None) -> None:
        """Record the step reached (None: leave it) and when the next is due (None: no more steps)."""
        values: dict[str, Any] = {"escalate_at": None if next_after_s is None else _after(next_after_s)}
        if step is not None:
            values["escalation_step"] = step
        await self._conn.execute(incidents.update().where(incidents.c.id == incident_id).values(**values))

    async def reviewed(
        self, verdicts: Sequence[str], *, site_id: str | None, camera_id: str | None, since: datetime | None
    ) -> Sequence["sa.Row[Any]"]:
        """Incidents with one of these verdicts and a stored opening frame, oldest first."""
        query = sa.select(incidents).where(incidents.c.review.in_(verdicts), incidents.c.opened_frame.is_not(None))
        query = _equal(query, site_id=site_id, camera_id=camera_id)
        if since is not None:
            query = query.where(incidents.c.started_at >= since)
        return (await self._conn.execute(query.order_by(incidents.c.started_at))).all()
