"""The scheduled digests: every interval, each live subscription's latest complete period is rendered and
e-mailed once. The ledger (`reporting_digest_sends`) is claimed before a send, so two replicas or a restart
never send one digest twice; a failed send is retried after a pause, up to a number of tries."""

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from services.reporting.adapters.digest_repository import DigestRepository, Subscription
from services.reporting.digest import mail, render
from services.reporting.digest.charts import charts
from services.reporting.digest.figures import Digest, Period, Window, latest_end_day, window
from services.reporting.metrics import DIGESTS_SENT as SENT
from services.reporting.schedule import every
from shared.logging import get_logger

log = get_logger(__name__)



@dataclass(frozen=True)
class Rendered:
    digest: Digest
    pdf: bytes
    pictures: dict[str, bytes]


def render_all(digest: Digest) -> Rendered:
    pictures = charts(digest)
    return Rendered(digest, render.pdf(digest, pictures), pictures)


class DigestJob:
    def __init__(
        self,
        digests: DigestRepository,
        smtp: mail.SmtpSettings,
        *,
        ready_hour: int = 6,
        lease_s: float = 600.0,
        retry_s: float = 300.0,
        max_attempts: int = 5,
    ) -> None:
        self._digests = digests
        self._smtp = smtp
        self._ready_hour = ready_hour
        self._lease_s = lease_s
        self._retry_s = retry_s
        self._max_attempts = max_attempts

    def due(self, subscription: Subscription, now: datetime) -> Window:
        end_day = latest_end_day(subscription.period, now=now, timezone=subscription.timezone,
                                 ready_hour=self._ready_hour)
        return window(subscription.period, site_id=subscription.site_id, timezone=subscription.timezone,
                      end_day=end_day)

    async def run_once(self, *, now: datetime | None = None) -> int:
        """Send what is due and not sent yet; returns how many e-mails went out."""
        now = now or datetime.now(UTC)
        groups: dict[tuple[str, Period], list[Subscription]] = defaultdict(list)
        for subscription in await self._digests.live_subscriptions():
            groups[(subscription.site_id, subscription.period)].append(subscription)
        sent = 0
        for subscribers in groups.values():
            span = self.due(subscribers[0], now)
            rendered: Rendered | None = None  # rendered once per site and period, only if someone is due
            for subscription in subscribers:
                if not await self._digests.claim(subscription, span, lease_s=self._lease_s,
                                                 max_attempts=self._max_attempts):
                    continue
                try:
                    if rendered is None:
                        rendered = await asyncio.to_thread(render_all, await self._digests.digest(span, now=now))
                    await mail.send(self._smtp, mail.digest_message(
                        rendered.digest, sender=self._smtp.sender, to=subscription.email, pdf=rendered.pdf,
                        pictures=rendered.pictures))
                except Exception as exc:  # noqa: BLE001 - recorded in the ledger and retried after a pause
                    SENT.labels("failed").inc()
                    log.warning("digest not sent; retried later", site_id=span.site_id, period=span.period.value,
                                user_id=subscription.user_id, error=str(exc)[:300])
                    await self._digests.mark_failed(subscription, span, error=str(exc), retry_in_s=self._retry_s)
                    continue
                await self._digests.mark_sent(subscription, span)
                SENT.labels("sent").inc()
                sent += 1
                log.info("digest sent", site_id=span.site_id, period=span.period.value,
                         period_start=span.start.isoformat(), user_id=subscription.user_id)
        return sent

    async def run_forever(self, *, interval_s: float, stop: asyncio.Event) -> None:
        await every(interval_s, stop, self.run_once, failure="digest run failed; retrying at the next interval")
