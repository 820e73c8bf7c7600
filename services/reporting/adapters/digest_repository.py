"""Database access of the digests: their figures, users' subscriptions and the sent-digest ledger.

The compliance figures come from the aggregates of `ReportingRepository` (the rollup), the incident figures
from `reporting_incidents`. The ledger's primary key is the idempotency key of a send: a subscriber gets one
site's digest of one period once, whichever replica claims it first.
"""

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert

from services.reporting.adapters.models import digest_sends, digest_subscriptions, incidents, sites
from services.reporting.adapters.repository import Counts, Filters, ReportingRepository
from services.reporting.digest.figures import (
    Compliance,
    Digest,
    IncidentRow,
    Location,
    Period,
    Window,
    incident_figures,
    window,
)
from services.reporting.domain import Bucket, Dimension
from shared.access.tables import site_roles, users


@dataclass(frozen=True)
class Subscription:
    user_id: int
    username: str
    site_id: str
    period: Period
    email: str
    timezone: str


def _compliance(label: str, counts: Counts) -> Compliance:
    return Compliance(label, counts.persons_with, counts.persons_without, counts.persons_indeterminate)


class DigestRepository:
    def __init__(self, reporting: ReportingRepository) -> None:
        self._reporting = reporting
        self._engine = reporting.engine

    async def window(self, period: Period, *, site_id: str, end_day: Any) -> Window:
        return window(period, site_id=site_id, timezone=await self._reporting.site_timezone(site_id), end_day=end_day)

    async def digest(self, span: Window, *, now: datetime | None = None) -> Digest:
        """The figures of one site's digest over `span`."""
        repo, where = self._reporting, Filters(site_id=span.site_id)
        query: dict[str, Any] = {"start": span.start, "end": span.end, "filters": where}
        overall = await repo.breakdown(by=Dimension.SITE, **query)
        zones = await repo.breakdown(by=Dimension.ZONE, **query)
        equipment = await repo.breakdown(by=Dimension.EQUIPMENT_TYPE, **query)
        bucket = Bucket.HOUR if span.period is Period.DAILY else Bucket.DAY
        trend = await repo.trend(bucket=bucket, **query)
        hours = await repo.top_hours(limit=24, **query)
        locations = await repo.top_locations(limit=5, **query)
        return Digest(
            window=span,
            overall=_compliance(span.site_id, overall[0][1] if overall else Counts(0, 0, 0)),
            zones=[_compliance(keys["zone_id"], counts) for keys, counts in zones],
            equipment=[_compliance(keys["equipment_type"], counts) for keys, counts in equipment],
            trend=[(moment, _compliance(f"{moment:%Y-%m-%d %H:%M}", counts)) for moment, counts in trend],
            violations_by_hour={hour: counts.persons_without for hour, counts in hours},
            top_locations=[
                Location(keys["camera_id"], keys["zone_id"], counts.persons_without,
                         _compliance("", counts).rate)
                for keys, counts in locations
            ],
            incidents=incident_figures(await self.incident_rows(span), site_id=span.site_id),
            generated_at=now or datetime.now(UTC),
        )

    async def incident_rows(self, span: Window) -> list[IncidentRow]:
        c = incidents.c
        query = (
            sa.select(c.camera_id, c.severity, c.status, c.started_at, c.acknowledged_at, c.resolved_at, c.review)
            .where(c.site_id == span.site_id, c.started_at >= span.start, c.started_at < span.end)
            .order_by(c.started_at, c.incident_id)
        )
        async with self._engine.connect() as conn:
            return [IncidentRow(**row._mapping) for row in await conn.execute(query)]

    # ---- subscriptions ---------------------------------------------------------------------------------

    async def subscribe(self, *, user_id: int, site_id: str, period: Period, email: str) -> None:
        statement = pg_insert(digest_subscriptions).values(
            user_id=user_id, site_id=site_id, period=period.value, email=email
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["user_id", "site_id", "period"], set_={"email": statement.excluded.email}
                )
            )

    async def unsubscribe(self, *, user_id: int, site_id: str, period: Period) -> bool:
        s = digest_subscriptions.c
        async with self._engine.begin() as conn:
            result = await conn.execute(
                sa.delete(digest_subscriptions).where(
                    s.user_id == user_id, s.site_id == site_id, s.period == period.value
                )
            )
        return bool(result.rowcount)

    async def subscriptions_of(self, user_id: int) -> list[dict[str, Any]]:
        s = digest_subscriptions.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(s.site_id, s.period, s.email, s.created_at)
                .where(s.user_id == user_id)
                .order_by(s.site_id, s.period)
            )
            return [dict(row._mapping) for row in rows]

    async def live_subscriptions(self) -> list[Subscription]:
        """Subscriptions of enabled users who still hold a role on the site (any role reads a digest)."""
        s, u = digest_subscriptions.c, users.c
        holds_role = sa.exists().where(site_roles.c.user_id == s.user_id, site_roles.c.site_id == s.site_id)
        query = (
            sa.select(s.user_id, u.username, s.site_id, s.period, s.email,
                      sa.func.coalesce(sites.c.timezone, "UTC").label("timezone"))
            .select_from(digest_subscriptions.join(users, u.id == s.user_id)
                         .outerjoin(sites, sites.c.site_id == s.site_id))
            .where(u.disabled.is_(False), sa.or_(u.global_role.is_not(None), holds_role))
            .order_by(s.site_id, s.period, s.user_id)
        )
        async with self._engine.connect() as conn:
            return [
                Subscription(row.user_id, row.username, row.site_id, Period(row.period), row.email, row.timezone)
                for row in await conn.execute(query)
            ]

    # ---- the sent-digest ledger ------------------------------------------------------------------------

    async def claim(
        self, subscription: Subscription, span: Window, *, lease_s: float, max_attempts: int
    ) -> bool:
        """Claim one send: True for exactly one caller while the send is neither done nor leased to another.

        A claim whose sender died (lease over, not sent) is claimed again, up to `max_attempts` tries."""
        t = digest_sends.c
        lease_until = sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, lease_s)
        statement = pg_insert(digest_sends).values(
            site_id=span.site_id, period=span.period.value, period_start=span.start, user_id=subscription.user_id,
            email=subscription.email, attempts=1, lease_until=lease_until,
        )
        claim = statement.on_conflict_do_update(
            index_elements=["site_id", "period", "period_start", "user_id"],
            set_={"attempts": t.attempts + 1, "lease_until": statement.excluded.lease_until,
                  "email": statement.excluded.email},
            where=sa.and_(t.sent_at.is_(None), t.lease_until < sa.func.now(), t.attempts < max_attempts),
        ).returning(t.attempts)
        async with self._engine.begin() as conn:
            return (await conn.execute(claim)).first() is not None

    async def mark_sent(self, subscription: Subscription, span: Window) -> None:
        await self._finish(subscription, span, sent_at=sa.func.now(), last_error=None)

    async def mark_failed(self, subscription: Subscription, span: Window, *, error: str, retry_in_s: float) -> None:
        retry_at = sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, retry_in_s)
        await self._finish(subscription, span, lease_until=retry_at, last_error=error[:2000])

    async def _finish(self, subscription: Subscription, span: Window, **values: Any) -> None:
        t = digest_sends.c
        async with self._engine.begin() as conn:
            await conn.execute(
                sa.update(digest_sends)
                .where(t.site_id == span.site_id, t.period == span.period.value, t.period_start == span.start,
                       t.user_id == subscription.user_id)
                .values(**values)
            )

    async def sends(self, *, site_id: str) -> list[dict[str, Any]]:
        """The ledger of one site, oldest period first (for tests and operators)."""
        t = digest_sends.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(digest_sends).where(t.site_id == site_id).order_by(t.period_start, t.period, t.user_id)
            )
            return [dict(row._mapping) for row in rows]
