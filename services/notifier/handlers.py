"""Notifier handlers: FrameAnalyzed -> incidents (+ outbox), NotificationRequested -> one delivery.

Frame handling is one transaction per frame under the camera's row lock: apply the frame once (keyed on
frame id), advance tracks and incidents, log deliveries, and write the messages to send into an outbox.
After commit the outbox rows are published (services/notifier/publishing.py). The SQL is in the adapters'
repositories (cameras, rules, incidents, deliveries, outbox).
"""

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.notifier import domain
from services.notifier.adapters.alert_frames import AlertFrames
from services.notifier.adapters.cameras import CameraRepository
from services.notifier.adapters.channels import ChannelConfig, DeliveryFailed, Sender
from services.notifier.adapters.deliveries import DeliveryRepository, delivery_id
from services.notifier.adapters.incidents import IncidentRepository
from services.notifier.adapters.rules import ChannelRepository, RuleRepository
from services.notifier.adapters.secret_box import SecretBox, SecretUnreadable
from services.notifier.config import NotifierSettings
from services.notifier.messages import Alert, link_expiry, render
from services.notifier.metrics import DELIVERIES, INCIDENTS, PERSONS
from services.notifier.policy import channel_accepts
from services.notifier.publishing import Outgoing, enqueue, publish_outbox, publish_written
from shared.contracts import Envelope, FrameAnalyzed, IncidentChanged, NotificationRequested
from shared.handlers import BatchMessageHandler, MessageHandler
from shared.logging import bind_context, get_logger
from shared.rekognition import BoundingBox
from shared.s3 import FrameStore, StorageError
from shared.sqs import MessageContext, Publisher, Reject, RetryLater

log = get_logger(__name__)
# what an IncidentChanged takes from the IncidentEvent as it is
_AS_EVENT_SAYS = ("incident_id", "status", "severity", "started_at", "last_seen_at", "resolved_at", "max_confidence")
__all__ = ["DeliveryHandler", "FrameHandler", "publish_outbox"]  # publish_outbox: main.py's sweep imports it here

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
                cameras = CameraRepository(conn)
                state = await cameras.lock(camera_id)
                new = await cameras.mark_applied(camera_id, [f.context.frame_id for f in frames])
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
                    await cameras.save(camera_id, state)
            if written:
                await publish_written(self._engine, self._publisher, written)
            if outgoing:
                await publish_outbox(self._engine, self._publisher, camera_id=camera_id, frame_ids=outgoing)

    async def _apply(
        self, conn: AsyncConnection, frame: FrameAnalyzed, state: domain.CameraState, written: list[Outgoing]
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
            for c in await ChannelRepository(conn).enabled_for_site(ctx.site_id)
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
        _, policy = await RuleRepository(conn).matching_policy(site_id=site_id, zone_id=zone_id, camera_id=camera_id)
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
        written: list[Outgoing],
    ) -> None:
        ctx = frame.context
        change = IncidentChanged(
            camera_id=ctx.camera_id,
            site_id=ctx.site_id,
            zone_id=event.zone_id or ctx.zone_id,
            missing_equipment=list(event.missing),
            frame_id=ctx.frame_id,
            **{name: getattr(event, name) for name in _AS_EVENT_SAYS},
        )
        opening = _opening(policy, event, frame, faces)
        saved = await IncidentRepository(conn).save(
            change, track_id=event.track_id, alerted=event.alert, suppressed_reason=event.suppressed_reason,
            opening=opening,
        )
        change = change.model_copy(update=saved)
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
        written.append(await enqueue(conn, ctx.camera_id, ctx.frame_id, change))
        if event.status == "updated":
            return
        if event.status == "resolved":
            if not event.alert:
                return
            alerted = await DeliveryRepository(conn).open_alert_channels(event.incident_id)
            channels = [c for c in channels if c.id in alerted]
        for channel in channels:
            if not channel_accepts(channel.min_severity, event.severity):
                continue
            status, reason = "pending", None
            if event.status == "open":
                if not event.alert:
                    status, reason = "suppressed", event.suppressed_reason
                elif not await ChannelRepository(conn).take_alert_slot(
                    channel_id=channel.id, hour=_hour(ctx.captured_at), limit=policy.max_alerts_per_hour
                ):
                    status, reason = "suppressed", f"max {policy.max_alerts_per_hour} alerts per hour reached"
            did = delivery_id(event.incident_id, channel.id, event.status)
            logged = await DeliveryRepository(conn).log(
                did, incident_id=event.incident_id, channel_id=channel.id, event=event.status, status=status,
                reason=reason,
            )
            if status == "pending" and logged:
                request = NotificationRequested(
                    delivery_id=did,
                    channel_id=channel.id,
                    incident=change,
                    frame=frame.frame,
                    captured_at=ctx.captured_at,
                    blur_faces=policy.blur_faces,
                    face_boxes=faces,
                )
                written.append(await enqueue(conn, ctx.camera_id, ctx.frame_id, request))


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
            deliveries = DeliveryRepository(conn)
            row = await deliveries.take(request.delivery_id, opening_id=opening_id)
            if row is None:
                if await deliveries.exists(request.delivery_id):
                    raise RetryLater("another worker is sending this delivery", delay_s=10)
                raise Reject(f"delivery {request.delivery_id} is not in the delivery log; nothing to send")
            if row.status in ("sent", "suppressed", "dead", "held"):
                log.info("duplicate delivery request suppressed", status=row.status)
                return
            if row.event != "open" and row.opening_status in ("pending", "failed"):
                await deliveries.hold(request.delivery_id, request.model_dump(mode="json"))
                log.info("held until the incident's opening alert is sent", opening=row.opening_status)
                return
            if row.channel_name is None or not row.channel_enabled:
                await deliveries.finish(request.delivery_id, "suppressed", reason="channel removed or disabled")
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
                await deliveries.finish(request.delivery_id, "sent")
                log.info("alert delivered", channel=config.name, kind=config.kind)
                released += await self._release_held(conn, row, request)
                return
            final = failure.permanent or context.receive_count >= self._settings.delivery_max_receives
            await deliveries.finish(request.delivery_id, "dead" if final else "failed", error=str(failure))
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
        later = await DeliveryRepository(conn).lock_later(incident_id=row.incident_id, channel_id=row.channel_id)
        released = []
        for item in later:
            if item.status != "held" or item.held_request is None:
                continue
            await DeliveryRepository(conn).release(item.id)
            payload = NotificationRequested.model_validate(item.held_request)
            released.append(await enqueue(conn, request.incident.camera_id, request.incident.frame_id, payload))
        if released:
            log.info("released deliveries held behind the opening alert", count=len(released))
        return released

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
