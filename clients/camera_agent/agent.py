"""Runs every configured camera: a capture thread and a sender task per camera."""

import asyncio
import threading

import httpx
from prometheus_client import start_http_server

from clients.camera_agent.capture import CameraCapture, CameraStatus
from clients.camera_agent.config import AgentConfig
from clients.camera_agent.sender import FrameSender
from clients.camera_agent.spool import Spool
from shared.logging import get_logger

log = get_logger(__name__)


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.statuses = {camera.id: CameraStatus(camera.id) for camera in config.cameras}
        self._stop = asyncio.Event()
        self._thread_stop = threading.Event()

    def request_stop(self) -> None:
        self._thread_stop.set()
        self._stop.set()

    async def run(self, *, status_every_s: float = 30.0) -> None:
        config = self.config
        keys = {camera.id: camera.resolved_key() for camera in config.cameras}  # fail fast on missing keys
        if config.metrics_port is not None:
            start_http_server(config.metrics_port, addr="127.0.0.1")
        loop = asyncio.get_running_loop()
        captures: list[CameraCapture] = []
        senders: list[asyncio.Task[None]] = []
        async with httpx.AsyncClient(base_url=str(config.ingest_url), timeout=config.request_timeout_s) as client:
            for camera in config.cameras:
                spool = Spool(config.buffer_dir / camera.id, max_frames=config.buffer_max_frames)
                wakeup = asyncio.Event()
                capture = CameraCapture(
                    camera, spool, self.statuses[camera.id], self._thread_stop,
                    on_frame=lambda event=wakeup: loop.call_soon_threadsafe(event.set),
                )
                captures.append(capture)
                capture.start()
                sender = FrameSender(
                    client, camera_id=camera.id, api_key=keys[camera.id], spool=spool,
                    status=self.statuses[camera.id], wakeup=wakeup,
                )
                senders.append(asyncio.create_task(sender.run(self._stop)))
            reporter = asyncio.create_task(self._report_status(status_every_s))
            await self._stop.wait()
            log.info("stopping camera agent")
            await asyncio.gather(*senders)
            reporter.cancel()
        for capture in captures:
            capture.join(timeout=15)
        self.log_status()

    async def _report_status(self, every_s: float) -> None:
        while True:
            await asyncio.sleep(every_s)
            self.log_status()

    def log_status(self) -> None:
        for status in self.statuses.values():
            log.info(
                "camera status",
                camera_id=status.camera_id,
                connected=status.connected,
                last_frame_at=status.last_frame_at.isoformat() if status.last_frame_at else None,
                sampled=status.frames_sampled,
                sent=status.frames_sent,
                dropped=status.frames_dropped,
                rejected=status.frames_rejected,
                reconnects=status.reconnects,
            )
