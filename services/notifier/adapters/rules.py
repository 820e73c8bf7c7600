"""Rules and channels: what alerts, and where alerts go (with each channel's hourly alert count).

Repositories on the caller's connection, so a change and its audit entry share one transaction.
"""

from collections.abc import Collection
from datetime import datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.notifier.adapters.db import alert_counts, channels, of_sites, rules, site_of
from services.notifier.policy import RulePolicy


class _SiteRows:
    """A table of rows that belong to a site (or, a channel, to every site), kept through the API."""

    table: ClassVar[sa.Table]
    on_update: ClassVar[dict[str, Any]] = {}

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def site_of(self, key: int) -> "sa.Row[Any] | None":
        return await site_of(self._conn, self.table, key)

    async def find(self, *, site_id: str | None, sites: Collection[str] | None) -> list["sa.Row[Any]"]:
        select = of_sites(sa.select(self.table).order_by(self.table.c.id), self.table.c.site_id, site_id=site_id,
                          sites=sites)
        return list((await self._conn.execute(select)).all())

    async def get(self, key: int) -> "sa.Row[Any] | None":
        return (await self._conn.execute(sa.select(self.table).where(self.table.c.id == key))).first()

    async def create(self, values: dict[str, Any]) -> "sa.Row[Any]":
        """Raises IntegrityError when the row clashes with another (a rule's scope, a channel's name)."""
        return (await self._conn.execute(self.table.insert().values(**values).returning(*self.table.c))).one()

    async def replace(self, key: int, values: dict[str, Any]) -> "sa.Row[Any] | None":
        """Raises IntegrityError like create; None when there is no such row."""
        statement = self.table.update().where(self.table.c.id == key).values(**values, **self.on_update)
        return (await self._conn.execute(statement.returning(*self.table.c))).first()

    async def delete(self, key: int) -> "sa.Row[Any] | None":
        statement = self.table.delete().where(self.table.c.id == key).returning(*self.table.c)
        return (await self._conn.execute(statement)).first()


class RuleRepository(_SiteRows):
    table = rules
    on_update = {"updated_at": sa.func.now()}

    async def matching_policy(
        self, *, site_id: str, zone_id: str, camera_id: str
    ) -> tuple[int | None, RulePolicy | None]:
        """The most specific rule: camera, then zone, then site. (None, None) when no rule matches."""
        rows = (
            await self._conn.execute(
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


class ChannelRepository(_SiteRows):
    table = channels

    async def enabled_for_site(self, site_id: str, *, ids: Collection[int] | None = None) -> list["sa.Row[Any]"]:
        """The enabled channels that take the site's alerts (the site's and every site's), by id; only `ids`
        among them when given."""
        select = sa.select(channels).where(
            channels.c.enabled.is_(True), sa.or_(channels.c.site_id.is_(None), channels.c.site_id == site_id)
        )
        if ids is not None:
            select = select.where(channels.c.id.in_(ids))
        return list((await self._conn.execute(select.order_by(channels.c.id))).all())

    async def take_alert_slot(self, *, channel_id: int, hour: datetime, limit: int) -> bool:
        """Atomically count one alert for the channel in this hour; False when the hourly limit is reached."""
        if limit <= 0:
            return False
        upsert = insert(alert_counts).values(channel_id=channel_id, hour=hour, count=1)
        statement = upsert.on_conflict_do_update(
            index_elements=["channel_id", "hour"],
            set_={"count": alert_counts.c.count + 1},
            where=alert_counts.c.count < limit,
        ).returning(alert_counts.c.count)
        return (await self._conn.execute(statement)).first() is not None
