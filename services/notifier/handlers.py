"""Notifier handlers: FrameAnalyzed -> incidents (+ outbox), NotificationRequested -> one delivery.

Frame handling is one transaction per frame under the camera's row lock: apply the frame once (keyed on
frame id), advance tracks and incidents, log deliveries, and write the messages to send into an outbox.
After commit the outbox rows are published (IncidentChanged to reporting, NotificationRequested to the
deliveries queue); a row left unpublished by a crash is published by the next redelivery of that frame or
by the periodic sweep, so nothing is lost (at-least-once; duplicates are absorbed by the delivery log).
"""

import time
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifier import domain
from services.notifier.adapters import db
from services.notifier.adapters.alert_frames import AlertFrames
from services.notifier.adapters.channels import ChannelConfig, DeliveryFailed, Sender
from services.notifier.adapters.secret_box import SecretBox, SecretUnreadable
from services.notifier.config import NotifierSettings
from services.notifier.messages import Alert, link_expiry, render
from shared.contracts import (
    MESSAGE_TYPES,
    Envelope,
    FrameAnalyzed,
    IncidentChanged,
    NotificationRequested,
    Payload,
)
from shared.handlers import BatchMessageHandler, MessageHandler
from shared.logging import bind_context, get_logger
from shared.rekognition import BoundingBox
from shared.s3 import FrameStore, StorageError
from shared.sqs import MessageContext, Publisher, Reject, RetryLater

log = get_logger(__name__)
INCIDENTS = Counter(
    "ppe_notifier_incidents_total", "Incident changes by status and whether they alerted.", ["status", "alert"]
)
DELIVERIES = Counter(
    "ppe_notifier_deliveries_total", "Delivery attempts by channel kind and outcome.", ["kind", "outcome"]
)
PERSONS = Counter("ppe_notifier_persons_evaluated_total", "Persons judged against a rule.")
DELIVERY_NAMESPACE = uuid.UUID("6f1c3c8e-5d2a-4b7e-9a51-0c7f3f2b9d10")


def delivery_id(incident_id: str, channel_id: int, event: str) -> str:
    """Deterministic, so a re-applied frame can never log the same delivery twice."""
    return str(uuid.uuid5(DELIVERY_NAMESPACE, f"{incident_id}/{channel_id}/{event}"))


def _hour(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class FrameHandler(BatchMessageHandler[FrameAnalyzed]):
    def __init__(self, settings: NotifierSettings, engine: AsyncEngine, publisher: Publisher) -> None:
        self._settings = settings
        self._engine = engine
        self._publisher = publisher
        self._tracker = settings.tracker()
        self._default_policy = settings.default_policy()
        self._catalogue = settings.catalogue()
        self.incidents_evaluated = 0
        self._rules: dict[tuple[str, str, str], tuple[float, domain.RulePolicy]] = {}

    async def handle_envelopes(self, envelopes: list[Envelope[FrameAnalyzed]]) -> None:
        """The batch handler the frames consumer calls with one camera's received frames (`shared.sqs.batch`)."""
        await self.handle_batch([envelope.payload for envelope in envelopes])

    async def handle_batch(self, frames: list[FrameAnalyzed]) -> None:
        """Apply consecutive frames of ONE camera, in order, in one transaction under the camera's row lock.

        Most frames change no incident: then the transaction is three statements (lock, mark applied, save state)
        for the whole batch. Frames already applied (redeliveries) are skipped but their unsent outbox rows are
        published; frames older than the camera's last applied frame are ignored for tracking.
        """
        camera_id = frames[0].context.camera_id
        if any(f.context.camera_id != camera_id for f in frames):
            raise ValueError("handle_batch takes frames of one camera")
        with bind_context(camera_id=camera_id, frames=len(frames)):
            outgoing: list[str] = []  # frames applied before: publish whatever they left unsent
            written: list[Outgoing] = []  # what this batch wrote to the outbox: published right after commit
            async with self._engine.begin() as conn:
                state = await db.lock_camera(conn, camera_id)
                new = await db.mark_applied_many(conn, camera_id, [f.context.frame_id for f in frames])
                changed = False
                for frame in frames:
                    ctx = frame.context
                    with bind_context(frame_id=ctx.frame_id):
                        if ctx.frame_id not in new:  # applied before, or twice in this batch
                            log.info("frame already applied; publishing anything it left unsent")
                            outgoing.append(ctx.frame_id)
                            continue
                        new.discard(ctx.frame_id)
                        if state.last_frame_at is not None and ctx.captured_at < state.last_frame_at:
                            log.warning(
                                "frame older than the camera's last applied frame; ignored for tracking",
                                captured_at=ctx.captured_at.isoformat(),
                                last_frame_at=state.last_frame_at.isoformat(),
                            )
                            continue
                        state = await self._apply(conn, frame, state, written)
                        changed = True
                if changed:
                    await db.save_camera(conn, camera_id, state)
            if written:
                await publish_written(self._engine, self._publisher, written)
            if outgoing:
                await publish_outbox(self._engine, self._publisher, camera_id=camera_id, frame_ids=outgoing)

    async def _apply(
        self, conn: AsyncConnection, frame: FrameAnalyzed, state: domain.CameraState, written: list["Outgoing"]
    ) -> domain.CameraState:
        """Advance the camera by this frame; returns its new state, adds what it wrote to the outbox to `written`."""
        ctx = frame.context
        policy = await self._policy(conn, ctx.site_id, ctx.zone_id, ctx.camera_id)
        observations = domain.observe(frame, policy, self._catalogue)
        evaluation = domain.evaluate(
            state,
            observations,
            at=ctx.captured_at,
            policy=policy,
            tracker=self._tracker,
            new_incident_id=lambda: str(uuid.uuid4()),
        )
        self.incidents_evaluated += len(observations)
        PERSONS.inc(len(observations))
        if not evaluation.events:
            return evaluation.state
        channels = [
            c
            for c in await db.site_channels(conn, ctx.site_id)
            if policy.channel_ids is None or c.id in policy.channel_ids
        ]
        faces = [
            BoundingBox(Left=b.left, Top=b.top, Width=b.width, Height=b.height)
            for b in domain.face_boxes(frame.ppe.Persons)
        ]
        for event in evaluation.events:
            await self._record(conn, frame, policy, event, channels, faces, written)
        return evaluation.state

    async def _policy(self, conn: AsyncConnection, site_id: str, zone_id: str, camera_id: str) -> domain.RulePolicy:
        """The camera's rule, cached for NOTIFIER_RULES_CACHE_S (a rule change applies within that time)."""
        key = (site_id, zone_id, camera_id)
        cached = self._rules.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[0] < self._settings.rules_cache_s:
            return cached[1]
        _, policy = await db.matching_policy(conn, site_id=site_id, zone_id=zone_id, camera_id=camera_id)
        policy = policy or self._default_policy
        self._rules[key] = (now, policy)
        return policy

    async def _record(
        self,
        conn: AsyncConnection,
        frame: FrameAnalyzed,
        policy: domain.RulePolicy,
        event: domain.IncidentEvent,
        channels: list[Any],
        faces: list[BoundingBox],
        written: list["Outgoing"],
    ) -> None:
        ctx = frame.context
        change = IncidentChanged(
            incident_id=event.incident_id,
            status=event.status,
            camera_id=ctx.camera_id,
            site_id=ctx.site_id,
            zone_id=event.zone_id or ctx.zone_id,
            missing_equipment=list(event.missing),
            severity=event.severity,
            started_at=event.started_at,
            last_seen_at=event.last_seen_at,
            resolved_at=event.resolved_at,
            frame_id=ctx.frame_id,
            max_confidence=event.max_confidence,
        )
        opening = _opening(policy, event, frame, faces)
        change = change.model_copy(update=await self._save_incident(conn, change, event, opening))
        log.info(
            "incident " + event.status,
            incident_id=event.incident_id,
            track_id=event.track_id,
            version=change.version,
            missing=list(event.missing),
            zone_id=event.zone_id,
            alert=event.alert,
            suppressed=event.suppressed_reason,
        )
        INCIDENTS.labels(event.status, str(event.alert).lower()).inc()
        written.append(await _enqueue(conn, ctx.camera_id, ctx.frame_id, change))
        if event.status == "updated":
            return
        if event.status == "resolved":
            if not event.alert:
                return
            alerted = await db.open_alert_channels(conn, event.incident_id)
            channels = [c for c in channels if c.id in alerted]
        for channel in channels:
            if not domain.channel_accepts(channel.min_severity, event.severity):
                continue
            status, reason = "pending", None
            if event.status == "open":
                if not event.alert:
                    status, reason = "suppressed", event.suppressed_reason
                elif not await db.take_alert_slot(
                    conn, channel_id=channel.id, hour=_hour(ctx.captured_at), limit=policy.max_alerts_per_hour
                ):
                    status, reason = "suppressed", f"max {policy.max_alerts_per_hour} alerts per hour reached"
            did = delivery_id(event.incident_id, channel.id, event.status)
            inserted = await conn.execute(
                insert(db.deliveries)
                .values(
                    id=did,
                    incident_id=event.incident_id,
                    channel_id=channel.id,
                    event=event.status,
                    status=status,
                    reason=reason,
                )
                .on_conflict_do_nothing()
                .returning(db.deliveries.c.id)
            )
            if status == "pending" and inserted.first() is not None:
                request = NotificationRequested(
                    delivery_id=did,
                    channel_id=channel.id,
                    incident=change,
                    frame=frame.frame,
                    captured_at=ctx.captured_at,
                    blur_faces=policy.blur_faces,
                    face_boxes=faces,
                )
                written.append(await _enqueue(conn, ctx.camera_id, ctx.frame_id, request))

    async def _save_incident(
        self,
        conn: AsyncConnection,
        change: IncidentChanged,
        event: domain.IncidentEvent,
        opening: dict[str, Any],
    ) -> dict[str, Any]:
        """Store the change; returns what the message must say beside the event: the incident's new version
        (1 when it opens, +1 per later change) and the operators' review (an incident an operator resolved
        stays resolved)."""
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
                first_after_s = opening["escalation"]["steps"][0]["after_s"]
                values["escalate_at"] = sa.func.now() + sa.func.make_interval(0, 0, 0, 0, 0, 0, first_after_s)
            version = await conn.scalar(
                insert(db.incidents)
                .values(
                    id=change.incident_id,
                    camera_id=change.camera_id,
                    site_id=change.site_id,
                    zone_id=change.zone_id,
                    track_id=event.track_id,
                    severity=change.severity,
                    started_at=change.started_at,
                    opened_frame_id=change.frame_id,
                    alerted=event.alert,
                    suppressed_reason=event.suppressed_reason,
                    version=1,
                    **values,
                )
                .on_conflict_do_nothing()
                .returning(db.incidents.c.version)
            )
            if version is None:  # incident ids are fresh uuids: only a stored one re-applied lands here
                version = await conn.scalar(
                    sa.select(db.incidents.c.version).where(db.incidents.c.id == change.incident_id)
                )
            return {"version": int(version or 0)}
        by_hand = db.incidents.c.resolved_by.is_not(None)  # an operator resolved it: it stays resolved
        values["status"] = sa.case((by_hand, "resolved"), else_=values["status"])
        values["resolved_at"] = sa.case((by_hand, db.incidents.c.resolved_at), else_=change.resolved_at)
        if change.status == "resolved":
            values["escalate_at"] = None
        row = (
            await conn.execute(
                db.incidents.update()
                .where(db.incidents.c.id == change.incident_id)
                .values(version=db.incidents.c.version + 1, **values)
                .returning(*db.incidents.c)
            )
        ).first()
        if row is None:
            log.warning("incident not in the notifier's table; its change is sent without a version")
            return {"version": 0}
        review = review_fields(row)
        if row.resolved_by is not None:
            review |= {"status": "resolved", "resolved_at": row.resolved_at}
        return {"version": int(row.version), **review}


def review_fields(row: Any) -> dict[str, Any]:
    """The operators' review of a stored incident, as IncidentChanged carries it."""
    return {"acknowledged_at": row.acknowledged_at, "acknowledged_by": row.acknowledged_by,
            "resolved_by": row.resolved_by, "review": row.review, "review_reason": row.review_reason}


def _opening(
    policy: domain.RulePolicy, event: domain.IncidentEvent, frame: FrameAnalyzed, faces: list[BoundingBox]
) -> dict[str, Any]:
    """What the incident keeps of its opening: the frame (to escalate later without it, and to export reviewed
    frames) and, when the rule escalates and the opening was alerted, the rule's steps as they are now."""
    if event.status != "open":
        return {}
    opened = {"frame": frame.frame.model_dump(mode="json"), "captured_at": frame.context.captured_at.isoformat(),
              "face_boxes": [box.model_dump(mode="json") for box in faces]}
    if not event.alert or not policy.escalation:
        return {"opened_frame": opened}
    steps = [{"after_s": step.after_min * 60, "channel_ids": step.channel_ids} for step in policy.escalation]
    return {"opened_frame": opened, "escalation": {"steps": steps}}


@dataclass(frozen=True)
class Outgoing:
    """An outbox row written in the current transaction."""

    id: int
    frame_id: str
    payload: Payload


async def _enqueue(conn: AsyncConnection, camera_id: str, frame_id: str, payload: Payload) -> Outgoing:
    row_id = await conn.scalar(
        db.outbox.insert()
        .values(
            camera_id=camera_id,
            frame_id=frame_id,
            message_type=payload.MESSAGE_TYPE,
            payload=payload.model_dump(mode="json"),
        )
        .returning(db.outbox.c.id)
    )
    return Outgoing(int(row_id), frame_id, payload)


async def publish_written(engine: AsyncEngine, publisher: Publisher, written: list[Outgoing]) -> None:
    """Publish outbox rows just committed by this worker (no re-read), then mark them sent.

    If publishing fails the rows stay unsent: the frame's redelivery or the sweep publishes them. Rows published
    but not yet marked (a crash in between) are published again: at-least-once, the delivery log dedupes.
    """
    await publisher.publish_many([o.payload for o in written], correlation_ids=[o.frame_id for o in written])
    async with engine.begin() as conn:
        await conn.execute(
            db.outbox.update()
            .where(db.outbox.c.id.in_([o.id for o in written]), db.outbox.c.published_at.is_(None))
            .values(published_at=sa.func.now())
        )


async def publish_outbox(
    engine: AsyncEngine,
    publisher: Publisher,
    *,
    camera_id: str | None = None,
    frame_id: str | None = None,
    frame_ids: list[str] | None = None,
    older_than_s: float | None = None,
    limit: int = 200,
) -> int:
    """Publish unsent outbox rows (of some frames of a camera, or any older than `older_than_s`), mark them sent."""
    query = sa.select(db.outbox).where(db.outbox.c.published_at.is_(None))
    if camera_id is not None:
        ids = frame_ids if frame_ids is not None else [frame_id]
        query = query.where(db.outbox.c.camera_id == camera_id, db.outbox.c.frame_id.in_(ids))
    if older_than_s is not None:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        query = query.where(db.outbox.c.created_at < cutoff)
    query = query.order_by(db.outbox.c.id).limit(limit).with_for_update(skip_locked=True)
    async with engine.begin() as conn:
        rows = (await conn.execute(query)).all()
        if not rows:
            return 0
        payloads = [MESSAGE_TYPES[row.message_type].model_validate(row.payload) for row in rows]
        await publisher.publish_many(payloads, correlation_ids=[row.frame_id for row in rows])
        await conn.execute(
            db.outbox.update().where(db.outbox.c.id.in_([row.id for row in rows])).values(published_at=sa.func.now())
        )
    return len(rows)


class DeliveryHandler(MessageHandler[NotificationRequested]):
    """Sends one NotificationRequested; the delivery log row (locked while sending) makes it happen once.

    Order per incident and channel: a later event (resolved, updated) whose opening alert is not sent yet is
    *held*: its row becomes 'held' with the request kept, and its message is deleted (no requeue loop that
    could exhaust the queue's receive count). When the opening delivery ends (sent, dead, suppressed), the same
    transaction releases the held rows (back to 'pending', request written to the outbox) and they are
    published after commit. Both sides lock the held row, so a release cannot miss a hold that commits late.
    """

    def __init__(
        self,
        settings: NotifierSettings,
        engine: AsyncEngine,
        frames: FrameStore,
        senders: dict[str, Sender],
        publisher: Publisher | None = None,
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._frames = frames
        self._alert_frames = AlertFrames(frames, prefix=settings.alert_frames_prefix)
        self._secret_box = SecretBox(settings.secrets_key)
        self._senders = senders
        self._publisher = publisher

    async def handle(self, envelope: Envelope[NotificationRequested], context: MessageContext) -> None:
        request = envelope.payload
        with bind_context(
            frame_id=request.incident.frame_id, camera_id=request.incident.camera_id, delivery_id=request.delivery_id
        ):
            released: list[Outgoing] = []
            try:
                await self._deliver(request, context, released)
            finally:
                if released and self._publisher is not None:  # committed before any Reject / RetryLater is raised
                    await publish_written(self._engine, self._publisher, released)

    async def _deliver(self, request: NotificationRequested, context: MessageContext, released: list[Outgoing]) -> None:
        """Send (or hold) the delivery; deliveries it releases from hold are added to `released`."""
        opening_id = delivery_id(request.incident.incident_id, request.channel_id, "open")
        async with self._engine.begin() as conn:
            # one round trip: the log row (locked), its channel, and the status of the incident's opening alert
            opening = (
                sa.select(db.deliveries.c.status).where(db.deliveries.c.id == opening_id).scalar_subquery()
            )
            row = (
                await conn.execute(
                    sa.select(
                        db.deliveries,
                        opening.label("opening_status"),
                        db.channels.c.name.label("channel_name"),
                        db.channels.c.kind.label("channel_kind"),
                        db.channels.c.target.label("channel_target"),
                        db.channels.c.secret.label("channel_secret"),
                        db.channels.c.enabled.label("channel_enabled"),
                    )
                    .select_from(
                        db.deliveries.outerjoin(db.channels, db.channels.c.id == db.deliveries.c.channel_id)
                    )
                    .where(db.deliveries.c.id == request.delivery_id)
                    .with_for_update(of=db.deliveries, skip_locked=True)
                )
            ).first()
            if row is None:
                exists = await conn.scalar(
                    sa.select(sa.func.count()).where(db.deliveries.c.id == request.delivery_id)
                )
                if exists:
                    raise RetryLater("another worker is sending this delivery", delay_s=10)
                raise Reject(f"delivery {request.delivery_id} is not in the delivery log; nothing to send")
            if row.status in ("sent", "suppressed", "dead", "held"):
                log.info("duplicate delivery request suppressed", status=row.status)
                return
            if row.event != "open" and row.opening_status in ("pending", "failed"):
                await conn.execute(
                    db.deliveries.update()
                    .where(db.deliveries.c.id == request.delivery_id)
                    .values(status="held", held_request=request.model_dump(mode="json"))
                )
                log.info("held until the incident's opening alert is sent", opening=row.opening_status)
                return
            if row.channel_name is None or not row.channel_enabled:
                await self._finish(conn, request.delivery_id, "suppressed", reason="channel removed or disabled")
                released += await self._release_held(conn, row, request)
                return
            config = ChannelConfig(row.channel_id, row.channel_name, row.channel_kind, row.channel_target)
            sender = self._senders.get(config.kind)
            failure: DeliveryFailed | None = None
            try:
                try:
                    config = replace(config, secret=self._secret_box.open(row.channel_secret))
                except SecretUnreadable as exc:
                    raise DeliveryFailed(str(exc), permanent=True) from exc
                if sender is None:
                    raise DeliveryFailed(f"no sender for channel kind {config.kind} in this worker", permanent=True)
                alert = await self._compose(request, with_snapshot=sender.wants_snapshot)
                await sender.send(config, alert)
            except DeliveryFailed as exc:
                failure = exc
            DELIVERIES.labels(config.kind, "sent" if failure is None else "failed").inc()
            if failure is None:
                await self._finish(conn, request.delivery_id, "sent")
                log.info("alert delivered", channel=config.name, kind=config.kind)
                released += await self._release_held(conn, row, request)
                return
            final = failure.permanent or context.receive_count >= self._settings.delivery_max_receives
            await self._finish(conn, request.delivery_id, "dead" if final else "failed", error=str(failure))
            if final:
                released += await self._release_held(conn, row, request)
        log.warning("delivery failed", channel=config.name, error=str(failure), final=final)
        if final:
            raise Reject(f"delivery to channel {config.name} ({config.kind}) failed for good: {failure}")
        delay = failure.retry_after_s or min(5 * 2**context.receive_count, 900)
        raise RetryLater(str(failure), delay_s=int(delay) + 1)

    async def _release_held(self, conn: AsyncConnection, row: Any, request: NotificationRequested) -> list[Outgoing]:
        """The opening delivery `row` has ended: put the incident's held deliveries on this channel back in line.

        Locks every later delivery of the incident on the channel (waiting for a handler that is holding one
        right now), so a hold that commits after this opening ended is still seen here.
        """
        if row.event != "open":
            return []
        later = (
            await conn.execute(
                sa.select(db.deliveries.c.id, db.deliveries.c.status, db.deliveries.c.held_request)
                .where(
                    db.deliveries.c.incident_id == row.incident_id,
                    db.deliveries.c.channel_id == row.channel_id,
                    db.deliveries.c.event != "open",
                )
                .order_by(db.deliveries.c.created_at)
                .with_for_update()
            )
        ).all()
        released = []
        for item in later:
            if item.status != "held" or item.held_request is None:
                continue
            await conn.execute(
                db.deliveries.update().where(db.deliveries.c.id == item.id).values(status="pending", held_request=None)
            )
            payload = NotificationRequested.model_validate(item.held_request)
            released.append(await _enqueue(conn, request.incident.camera_id, request.incident.frame_id, payload))
        if released:
            log.info("released deliveries held behind the opening alert", count=len(released))
        return released

    async def _finish(
        self, conn: AsyncConnection, did: str, status: str, *, reason: str | None = None, error: str | None = None
    ) -> None:
        values: dict[str, Any] = {"status": status, "attempts": db.deliveries.c.attempts + 1}
        if status == "sent":
            values["sent_at"] = sa.func.now()
        if reason is not None:
            values["reason"] = reason
        if error is not None:
            values["last_error"] = error[:2000]
        await conn.execute(db.deliveries.update().where(db.deliveries.c.id == did).values(**values))

    async def _compose(self, request: NotificationRequested, *, with_snapshot: bool) -> Alert:
        """The alert links to (and attaches) the stored face-blurred copy of the frame, never the raw frame."""
        expires_s = self._settings.presign_expiry_s
        try:
            copy = await self._alert_frames.ensure(request, with_image=with_snapshot)
            url = None if copy is None else await self._frames.presigned_url(copy.key, expires_s=expires_s)
        except StorageError as exc:
            reason = f"the alert's blurred frame could not be stored or read: {exc}"
            raise DeliveryFailed(reason, permanent=False) from exc
        return render(
            request,
            frame_url=url,
            url_expires_at=link_expiry(datetime.now(UTC), expires_s),
            snapshot=None if copy is None else copy.image,
        )
