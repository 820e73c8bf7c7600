"""The delivery log: one row per (incident, channel, event), keyed on a deterministic id, so a re-applied frame
or a re-fired escalation step never logs (nor sends) the same delivery twice. A repository on the caller's
connection (its transaction)."""

import uuid
from collections.abc import Collection, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.adapters.db import channels, deliveries, incidents, of_sites

DELIVERY_NAMESPACE = uuid.UUID("6f1c3c8e-5d2a-4b7e-9a51-0c7f3f2b9d10")


def delivery_id(incident_id: str, channel_id: int, event: str) -> str:
    """Deterministic, so a re-applied frame can never log the same delivery twice."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{incident_id}/{channel_id}/{event}"))


class DeliveryRepository:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def log(
        self, did: str, *, incident_id: str, channel_id: int, event: str, status: str, reason: str | None = None
    ) -> bool:
        """Log a delivery (ON CONFLICT DO NOTHING); False when its id was logged before (nothing to send)."""
        inserted = await self._conn.execute(
            insert(deliveries)
            .values(id=did, incident_id=incident_id, channel_id=channel_id, event=event, status=status, reason=reason)
            .on_conflict_do_nothing()
            .returning(deliveries.c.id)
        )
        return inserted.first() is not None

    async def open_alert_channels(self, incident_id: str) -> set[int]:
        """The channels the incident's opening alert was not suppressed on."""
        rows = await self._conn.execute(
            sa.select(deliveries.c.channel_id).where(
                deliveries.c.incident_id == incident_id,
                deliveries.c.event == "open",
                deliveries.c.status != "suppressed",
            )
        )
        return {r.channel_id for r in rows}

    async def take(self, did: str, *, opening_id: str) -> "sa.Row[Any] | None":
        """The log row, locked (FOR UPDATE SKIP LOCKED: None while another worker sends it, or when there is no
        such row), in one round trip with its channel (`channel_*`, None when removed) and the status of the
        incident's opening delivery on the channel (`opening_status`)."""
        opening = sa.select(deliveries.c.status).where(deliveries.c.id == opening_id).scalar_subquery()
        return (
            await self._conn.execute(
                sa.select(
                    deliveries,
                    opening.label("opening_status"),
                    channels.c.name.label("channel_name"),
                    channels.c.kind.label("channel_kind"),
                    channels.c.target.label("channel_target"),
                    channels.c.secret.label("channel_secret"),
                    channels.c.enabled.label("channel_enabled"),
                )
                .select_from(deliveries.outerjoin(channels, channels.c.id == deliveries.c.channel_id))
                .where(deliveries.c.id == did)
                .with_for_update(of=deliveries, skip_locked=True)
            )
        ).first()

    async def exists(self, did: str) -> bool:
        return bool(await self._conn.scalar(sa.select(sa.func.count()).where(deliveries.c.id == did)))

    async def hold(self, did: str, request: dict[str, Any]) -> None:
        """Park the delivery until the incident's opening alert ends; `request` is sent on release."""
        await self._conn.execute(
            deliveries.update().where(deliveries.c.id == did).values(status="held", held_request=request)
        )

    async def finish(self, did: str, status: str, *, reason: str | None = None, error: str | None = None) -> None:
        """Count the attempt and set its outcome (sent, failed, dead, suppressed)."""
        values: dict[str, Any] = {"status": status, "attempts": deliveries.c.attempts + 1}
        if status == "sent":
            values["sent_at"] = sa.func.now()
        if reason is not None:
            values["reason"] = reason
        if error is not None:
            values["last_error"] = error[:2000]
        await self._conn.execute(deliveries.update().where(deliveries.c.id == did).values(**values))

    async def lock_later(self, *, incident_id: str, channel_id: int) -> Sequence[Any]:
        """Every later (not opening) delivery of the incident on the channel, oldest first, locked (waiting for a
        handler that holds one now)."""
        return (
            await self._conn.execute(
                sa.select(deliveries.c.id, deliveries.c.status, deliveries.c.held_request)
                .where(
                    deliveries.c.incident_id == incident_id,
                    deliveries.c.channel_id == channel_id,
                    deliveries.c.event != "open",
                )
                .order_by(deliveries.c.created_at)
                .with_for_update()
            )
        ).all()

    async def release(self, did: str) -> None:
        """A held delivery back in line (its request goes to the outbox in the same transaction)."""
        await self._conn.execute(
            deliveries.update().where(deliveries.c.id == did).values(status="pending", held_request=None)
        )

    async def find(
        self, *, site_id: str | None, sites: Collection[str] | None, incident_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        """The latest deliveries first, of incidents of `site_id` and the caller's `sites` (None: every site)."""
        select = sa.select(deliveries).order_by(deliveries.c.created_at.desc()).limit(limit)
        if incident_id is not None:
            select = select.where(deliveries.c.incident_id == incident_id)
        if site_id is not None or sites is not None:
            of_site = of_sites(sa.select(incidents.c.id), incidents.c.site_id, site_id=site_id, sites=sites)
            select = select.where(deliveries.c.incident_id.in_(of_site))
        return [dict(r._mapping) for r in (await self._conn.execute(select)).all()]
