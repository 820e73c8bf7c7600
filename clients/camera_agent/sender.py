"""Sending spooled frames to ingest, oldest first, honouring 429 / 503 / 409-in-progress Retry-After."""

import asyncio

import httpx
from prometheus_client import Counter, Gauge

from clients.camera_agent.capture import CameraStatus
from clients.camera_agent.spool import Spool, SpooledFrame
from shared.backoff import backoff_delay
from shared.logging import bind_context, get_logger

log = get_logger(__name__)

SENT = Counter("ppe_agent_frames_sent_total", "Frames ingest accepted.", ["camera"])
REJECTED = Counter("ppe_agent_frames_rejected_total", "Frames ingest refused for good (4xx).", ["camera", "status"])
BUFFERED = Gauge("ppe_agent_buffered_frames", "Frames waiting in the on-disk spool.", ["camera"])

DELIVERED = {200, 201, 202}  # 200: ingest already stored this client_frame_id (same image)
RETRY_LATER = {408, 425, 429, 500, 502, 503, 504}
# A 409 is "not stored yet" (`frame_in_progress`: another attempt holds the reservation, or one died holding
# it) unless ingest says the id already holds a different image: only that one cannot succeed by retrying.
CONFLICT_FOR_GOOD = {"idempotency_conflict"}


def error_code(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    return str(body.get("code", "")) if isinstance(body, dict) else ""


def retry_after_seconds(response: httpx.Response, default: float) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, min(float(value), 300.0))
    except ValueError:
        return default


class FrameSender:
    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        camera_id: str,
        api_key: str,
        spool: Spool,
        status: CameraStatus,
        wakeup: asyncio.Event,
    ) -> None:
        self._client = client
        self._camera_id = camera_id
        self._api_key = api_key
        self._spool = spool
        self._status = status
        self._wakeup = wakeup

    async def run(self, stop: asyncio.Event) -> None:
        failures = 0  # sends failed in a row: the next retry waits longer
        with bind_context(camera_id=self._camera_id):
            while not stop.is_set():
                BUFFERED.labels(self._camera_id).set(len(self._spool))
                frame = self._spool.oldest()
                if frame is None:
                    self._wakeup.clear()
                    await self._wait(stop, self._wakeup, 1.0)
                    continue
                delay = await self._send(frame)
                if delay is None:
                    failures = 0
                    continue
                await self._wait(stop, None, delay if delay > 0 else backoff_delay(failures, first_s=0.5, max_s=30.0))
                failures += 1

    @staticmethod
    async def _wait(stop: asyncio.Event, other: asyncio.Event | None, seconds: float) -> None:
        waiters = [asyncio.ensure_future(stop.wait())]
        if other is not None:
            waiters.append(asyncio.ensure_future(other.wait()))
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()

    async def _send(self, frame: SpooledFrame) -> float | None:
        """None when the frame is done with (sent or refused); else seconds to wait (0 = use backoff)."""
        params = {
            "camera_id": self._camera_id,
            "captured_at": frame.captured_at.isoformat(),
            "client_frame_id": frame.client_frame_id,
        }
        try:
            response = await self._client.post(
                "/v1/frames",
                params=params,
                content=frame.read(),
                headers={"Content-Type": "image/jpeg", "X-Api-Key": self._api_key},
            )
        except httpx.HTTPError as exc:
            log.warning("ingest unreachable; frame kept in spool", error=type(exc).__name__,
                        client_frame_id=frame.client_frame_id)
            return 0
        if response.status_code in DELIVERED:
            self._spool.remove(frame)
            self._status.frames_sent += 1
            SENT.labels(self._camera_id).inc()
            return None
        if response.status_code in RETRY_LATER or (
            response.status_code == 409 and error_code(response) not in CONFLICT_FOR_GOOD
        ):
            wait = retry_after_seconds(response, 1.0)
            log.info("ingest asked to retry later", status=response.status_code, retry_in_s=wait)
            return wait or 0.1
        # 400/401/403/404/413/415/422, 409 idempotency_conflict: sending it again will not help.
        self._spool.remove(frame)
        self._status.frames_rejected += 1
        REJECTED.labels(self._camera_id, str(response.status_code)).inc()
        log.error("ingest refused the frame; dropped", status=response.status_code, body=response.text[:300],
                  client_frame_id=frame.client_frame_id)
        return None
