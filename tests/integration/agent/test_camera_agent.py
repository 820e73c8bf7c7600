"""The camera agent against a real MJPEG server process and a real ingest instance (moto + PostgreSQL)."""

import asyncio
import json
import os
import subprocess
import sys
import time
import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from clients.camera_agent.spool import Spool
from services.ingest.adapters.db import FrameLedger
from services.ingest.domain import FrameRecord, new_frame_id
from shared.config import PlatformSettings
from shared.db import make_engine
from tests.conftest import REPO_ROOT, free_port
from tests.support.images import photo_jpeg
from tests.support.processes import new_secret, running_service, service_env, stop
from tests.support.queues import drain

MJPEG_SERVER = Path(__file__).with_name("mjpeg_server.py")


def start_mjpeg(port: int, images: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, str(MJPEG_SERVER), str(port), str(images)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with httpx.stream("GET", f"http://127.0.0.1:{port}/stream.mjpg", timeout=1.0) as response:
                if response.status_code == 200:
                    return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("MJPEG test server did not start")


def register_camera(ingest: str, admin_token: str, camera_id: str) -> str:
    response = httpx.post(
        f"{ingest}/v1/admin/cameras",
        headers={"Authorization": f"Bearer {admin_token}"},
        json={"camera_id": camera_id, "site_id": "site-a", "zone_id": "gate", "rate_limit_per_s": 50},
    )
    assert response.status_code in (200, 201), response.text
    return str(response.json()["api_key"])


def start_agent(ingest_url: str, camera_id: str, source: str, key: str, buffer_dir: Path, interval: float,
                metrics_port: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CAM_KEY": key}
    metrics = ["--metrics-port", str(metrics_port)] if metrics_port else []
    return subprocess.Popen(
        [sys.executable, "-m", "clients.camera_agent", "--ingest-url", ingest_url, "--camera", camera_id, source,
         "CAM_KEY", "--interval", str(interval), "--buffer-dir", str(buffer_dir), *metrics],
        env=env, cwd=REPO_ROOT,
    )


async def received_frames(sqs: Any, url: str) -> list[dict[str, Any]]:
    """All FrameReceived payloads currently in the queue (consumed)."""
    return [json.loads(message["Body"])["payload"] for message in await drain(sqs, url)]


async def wait_for_frames(sqs: Any, url: str, into: list[dict[str, Any]], count: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while len(into) < count:
        assert time.monotonic() < deadline, f"only {len(into)} of {count} frames arrived"
        into += await received_frames(sqs, url)
        await asyncio.sleep(0.3)


@pytest.fixture
def camera_images(tmp_path: Path) -> Path:
    """What the test camera films: a few photo-like frames drawn in the test."""
    folder = tmp_path / "camera"
    folder.mkdir()
    for seed in range(3):
        (folder / f"frame_{seed}.jpg").write_bytes(photo_jpeg(960, 540, seed=seed))
    return folder


@pytest.fixture
def ingest_env(platform_settings: PlatformSettings, provisioned: dict[str, str], migrated_database_url: str
               ) -> dict[str, str]:
    return service_env(platform_settings, migrated_database_url, INGEST_ADMIN_TOKEN=new_secret())


async def test_agent_reconnects_when_the_stream_server_restarts(
    ingest_env: dict[str, str], sqs_client: Any, resolver: Any, camera_images: Path, tmp_path: Path
) -> None:
    queue_url = await resolver.url("frames-received")
    stream_port = free_port()
    servers = [start_mjpeg(stream_port, camera_images)]
    frames: list[dict[str, Any]] = []
    try:
        with running_service("ingest", ingest_env, log_path=tmp_path / "ingest.log") as ingest:
            key = register_camera(ingest, ingest_env["INGEST_ADMIN_TOKEN"], "cam-stream")
            agent = start_agent(ingest, "cam-stream", f"http://127.0.0.1:{stream_port}/stream.mjpg", key,
                                tmp_path / "spool", 0.5)
            try:
                await wait_for_frames(sqs_client, queue_url, frames, 3, 90)
                # WHEN the camera's server dies and comes back on the same address
                stop(servers[0])
                back_at = time.time() + 2
                time.sleep(2)
                servers.append(start_mjpeg(stream_port, camera_images))
                # THEN the agent reconnects by itself and frames captured after the restart arrive
                deadline = time.monotonic() + 120
                while len([f for f in frames if _at(f["context"]["captured_at"]) > back_at]) < 3:
                    assert time.monotonic() < deadline, "no frames from the restarted stream"
                    frames += await received_frames(sqs_client, queue_url)
                    await asyncio.sleep(0.3)
            finally:
                assert stop(agent) == 0
    finally:
        for server in servers:
            stop(server)
    assert all(f["context"]["camera_id"] == "cam-stream" for f in frames)
    assert len({f["client_frame_id"] for f in frames}) == len(frames)


async def test_frames_buffered_during_an_ingest_outage_arrive_once_and_in_order(
    ingest_env: dict[str, str], sqs_client: Any, resolver: Any, camera_images: Path, tmp_path: Path
) -> None:
    queue_url = await resolver.url("frames-received")
    stream_port = free_port()
    ingest_port = free_port()
    spool = tmp_path / "spool"
    # GIVEN a registered camera, and ingest then going down
    with running_service("ingest", ingest_env, port=ingest_port) as ingest:
        key = register_camera(ingest, ingest_env["INGEST_ADMIN_TOKEN"], "cam-outage")
    server = start_mjpeg(stream_port, camera_images)
    metrics_port = free_port()
    agent = start_agent(f"http://127.0.0.1:{ingest_port}", "cam-outage",
                        f"http://127.0.0.1:{stream_port}/stream.mjpg", key, spool, 0.5, metrics_port)
    frames: list[dict[str, Any]] = []
    try:
        # WHEN the agent samples for a while with ingest unreachable
        deadline = time.monotonic() + 60
        while len(list((spool / "cam-outage").glob("*.jpg"))) < 6:
            assert time.monotonic() < deadline, "agent did not spool frames while ingest was down"
            time.sleep(0.3)
        assert await received_frames(sqs_client, queue_url) == []
        # AND ingest comes back
        with running_service("ingest", ingest_env, port=ingest_port):
            await wait_for_frames(sqs_client, queue_url, frames, 6, 60)
            stop(server)
            deadline = time.monotonic() + 30
            while list((spool / "cam-outage").glob("*.jpg")):
                assert time.monotonic() < deadline, "spool did not drain"
                time.sleep(0.3)
            frames += await received_frames(sqs_client, queue_url)
            metrics = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
    finally:
        assert stop(agent) == 0
        stop(server)
    # THEN every buffered frame arrived exactly once, and ingest accepted them in capture order
    client_ids = [f["client_frame_id"] for f in frames]
    assert len(client_ids) == len(set(client_ids)) >= 6
    by_acceptance = sorted(frames, key=lambda f: _at(f["received_at"]))
    captured = [_at(f["context"]["captured_at"]) for f in by_acceptance]
    assert captured == sorted(captured)
    # AND the agent's own metrics tell the same story
    sent = [line for line in metrics.splitlines() if line.startswith('ppe_agent_frames_sent_total{camera="cam-outage"}')]
    assert sent and float(sent[0].split()[-1]) == len(frames)
    assert 'ppe_agent_buffered_frames{camera="cam-outage"} 0.0' in metrics


async def test_a_frame_answered_409_in_progress_is_retried_and_keeps_its_first_frame_id(
    ingest_env: dict[str, str], migrated_database_url: str, sqs_client: Any, resolver: Any, camera_images: Path,
    tmp_path: Path
) -> None:
    queue_url = await resolver.url("frames-received")
    env = {**ingest_env, "INGEST_PENDING_TIMEOUT_S": "4"}
    image = photo_jpeg()
    stream_port = free_port()
    server = start_mjpeg(stream_port, camera_images)
    frames: list[dict[str, Any]] = []
    try:
        with running_service("ingest", env, log_path=tmp_path / "ingest.log") as ingest:
            key = register_camera(ingest, env["INGEST_ADMIN_TOKEN"], "cam-409")
            # GIVEN a spooled frame whose client id ingest holds an unfinished reservation for: its first
            # attempt died between queueing the frame and committing the row
            captured_at = datetime.now(UTC)
            Spool(tmp_path / "spool" / "cam-409", max_frames=100).put(
                image, captured_at=captured_at, client_frame_id="cf-409"
            )
            first_id = new_frame_id()
            engine = make_engine(migrated_database_url)
            try:
                await FrameLedger(engine, pending_timeout_s=4).reserve(FrameRecord(
                    frame_id=first_id, camera_id="cam-409", client_frame_id="cf-409", status="pending",
                    sha256=hashlib.sha256(image).hexdigest(), bucket=ingest_env["PPE_FRAMES_BUCKET"],
                    key=f"frames/site-a/cam-409/first-{first_id}.jpg", content_type="image/jpeg",
                    size_bytes=len(image), width=1, height=1, captured_at=captured_at,
                    received_at=datetime.now(UTC),
                ))
            finally:
                await engine.dispose()
            # WHEN the agent sends it: ingest answers 409 frame_in_progress until the reservation goes stale
            agent = start_agent(ingest, "cam-409", f"http://127.0.0.1:{stream_port}/stream.mjpg", key,
                                tmp_path / "spool", 60.0)
            try:
                deadline = time.monotonic() + 60
                while not [f for f in frames if f["client_frame_id"] == "cf-409"]:
                    assert time.monotonic() < deadline, "the 409-answered frame never arrived: the agent dropped it"
                    frames += await received_frames(sqs_client, queue_url)
                    await asyncio.sleep(0.3)
            finally:
                assert stop(agent) == 0
    finally:
        stop(server)
    # THEN the agent kept retrying instead of deleting it, and ingest stored it under the first frame id
    (mine,) = [f for f in frames if f["client_frame_id"] == "cf-409"]
    assert mine["context"]["frame_id"] == first_id


def _at(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()
