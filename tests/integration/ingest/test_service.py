"""`python -m services.ingest.main` as a real process: readiness, a frame end to end, SIGTERM, and a fuzz run."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import httpx
import psutil
import pytest

from shared.config import PlatformSettings
from tests.conftest import REPO_ROOT, free_port, wait_http
from tests.integration.ingest.conftest import ADMIN_TOKEN, CAPTURED_AT, admin_headers
from tests.support.fuzz import fuzz
from tests.unit.ingest.images import jpeg


@dataclass
class Process:
    process: subprocess.Popen[bytes]
    url: str


def service_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    """The environment `python -m services.ingest.main` gets in these tests."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "INGEST_ADMIN_TOKEN": ADMIN_TOKEN,
        "INGEST_PORT": str(port),
        "PPE_LOG_FORMAT": "json",
        **extra,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return env


@pytest.fixture
def ingest_process(
    platform_settings: PlatformSettings, provisioned: dict[str, str], database_url: str, tmp_path: Path
) -> Iterator[Process]:
    port = free_port()
    env = service_env(
        database_url, port, INGEST_RATE_LIMIT_PER_S="1000", INGEST_BODY_TIMEOUT_S="2", PPE_LOG_LEVEL="WARNING"
    )
    log = (tmp_path / "ingest.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.ingest.main"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{url}/healthz", timeout_s=60)
        yield Process(process, url)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


def register(url: str) -> tuple[str, str]:
    camera_id = f"cam-proc-{time.monotonic_ns()}"
    body = {"camera_id": camera_id, "site_id": "site-p", "zone_id": "z", "rate_limit_per_s": 1000}
    response = httpx.post(f"{url}/v1/admin/cameras", json=body, headers=admin_headers(), timeout=30)
    assert response.status_code == 201, response.text
    return body["camera_id"], response.json()["api_key"]


def test_the_service_accepts_frames_and_exits_0_on_sigterm(ingest_process: Process) -> None:
    url = ingest_process.url
    ready = httpx.get(f"{url}/readyz", timeout=30)
    assert ready.status_code == 200, ready.text
    camera_id, key = register(url)
    response = httpx.post(
        f"{url}/v1/frames",
        params={"camera_id": camera_id, "captured_at": CAPTURED_AT},
        content=jpeg(1280, 720),
        headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'ingest_frames_accepted_total{duplicate="false"} 1.0' in metrics
    assert 'ppe_http_requests_total{method="POST",route="/v1/frames",status="202"} 1.0' in metrics

    ingest_process.process.send_signal(signal.SIGTERM)
    assert ingest_process.process.wait(timeout=30) == 0


def test_a_camera_cannot_post_into_another_site(ingest_process: Process, platform_settings: PlatformSettings) -> None:
    # GIVEN camera registered at site-p (the reproduction: demo-cam landed under frames/other-site/)
    url = ingest_process.url
    camera_id, key = register(url)
    # WHEN its key names another site
    response = httpx.post(
        f"{url}/v1/frames",
        params={"camera_id": camera_id, "captured_at": CAPTURED_AT, "site_id": "other-site"},
        content=jpeg(640, 480),
        headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
        timeout=30,
    )
    # THEN the frame is refused and nothing is under the other site's prefix
    assert (response.status_code, response.json()["code"]) == (403, "location_override_forbidden"), response.text
    s3 = boto3.client("s3", endpoint_url=platform_settings.aws_endpoint_url, region_name="us-east-1")
    listed = s3.list_objects_v2(Bucket=platform_settings.frames_bucket, Prefix="frames/other-site/")
    assert listed.get("KeyCount", 0) == 0
    # and its own site still works
    own = httpx.post(
        f"{url}/v1/frames",
        params={"camera_id": camera_id, "captured_at": CAPTURED_AT},
        content=jpeg(640, 480),
        headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert own.status_code == 202 and own.json()["key"].startswith("frames/site-p/")


def raw_request(url: str, head: str, body_parts: list[bytes], *, pause_s: float = 0.0) -> bytes:
    """Send a request over a plain socket (to control exactly what arrives and when); return the answer."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head.encode())
        try:
            for part in body_parts:
                sock.sendall(part)
                time.sleep(pause_s)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed before the rest: what a size limit should do
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
    return answer


def test_a_slow_body_gets_408_and_a_long_chunked_body_413_without_reading_it_all(ingest_process: Process) -> None:
    url = ingest_process.url
    _, key = register(url)
    path = f"/v1/frames?captured_at={CAPTURED_AT.replace('+', '%2B')}"
    head = f"POST {path} HTTP/1.1\r\nHost: ingest\r\nX-API-Key: {key}\r\nContent-Type: image/jpeg\r\n"

    # A body that trickles in (declared 100 KB, 1 KB sent, then silence) is cut off after INGEST_BODY_TIMEOUT_S
    started = time.monotonic()
    declared = head + "Content-Length: 100000\r\nConnection: close\r\n\r\n"
    slow = raw_request(url, declared, [b"\xff\xd8\xff" + b"0" * 1000])
    assert slow.startswith(b"HTTP/1.1 408"), slow[:300]
    assert b"body_timeout" in slow and time.monotonic() - started < 20

    # A chunked body with no Content-Length is counted as it arrives and refused past 4 MB
    chunk = b"0" * 65536
    chunks = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * 160  # 10 MB offered
    big = raw_request(url, head + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n", chunks)
    assert big.startswith(b"HTTP/1.1 413"), big[:300]
    assert b"body_too_large" in big
    metrics = httpx.get(f"{url}/metrics", timeout=30).text
    assert 'ingest_rejects_total{reason="body_timeout"} 1.0' in metrics
    assert 'ingest_rejects_total{reason="body_too_large"} 1.0' in metrics


def test_fuzzing_the_openapi_schema_finds_no_server_error(ingest_process: Process, tmp_path: Path) -> None:
    url = ingest_process.url
    _, key = register(url)
    result = fuzz(
        f"{url}/openapi.json",
        report_dir=tmp_path,
        headers=(f"X-API-Key: {key}", f"Authorization: Bearer {ADMIN_TOKEN}"),
        max_time_s=60,
    )
    print(f"ingest: {result.cases} cases\n{result.command}")
    assert result.returncode == 0, result.output[-6000:]
    assert result.cases > 0 and result.every_operation_tested, result.output[-3000:]


def worker_processes(pid: int) -> list[psutil.Process]:
    """The supervisor's worker processes (not multiprocessing's resource tracker, which spawn starts beside them)."""
    workers = []
    for child in psutil.Process(pid).children():
        try:
            if not any("resource_tracker" in part for part in child.cmdline()):
                workers.append(child)
        except psutil.Error:  # gone, or a zombie its parent has not reaped yet
            continue
    return workers


def test_two_workers_share_the_port_metrics_and_stop_together(
    platform_settings: PlatformSettings, provisioned: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    # GIVEN ingest started with INGEST_WORKERS=2
    port = free_port()
    env = service_env(database_url, port, INGEST_WORKERS="2")
    with (tmp_path / "ingest.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest.main"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/healthz", timeout_s=60)
            workers = worker_processes(process.pid)
            assert len(workers) == 2
            # WHEN frames arrive on fresh connections (spread over both workers by the kernel)
            camera_id, key = register(url)
            answers = [
                httpx.post(
                    f"{url}/v1/frames",
                    params={"camera_id": camera_id, "captured_at": CAPTURED_AT},
                    content=jpeg(640, 360),
                    headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
                    timeout=30,
                ).status_code
                for i in range(6)
            ]
            # THEN every frame is accepted and /metrics counts all six, whichever worker answers
            assert answers == [202] * 6
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
            assert 'ingest_frames_accepted_total{duplicate="false"} 6.0' in metrics
            # AND a worker that dies is replaced, and the port keeps answering meanwhile
            workers[0].kill()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                replaced = worker_processes(process.pid)
                if len(replaced) == 2 and workers[0].pid not in {w.pid for w in replaced}:
                    break
                assert httpx.get(f"{url}/healthz", timeout=30).status_code == 200
                time.sleep(0.5)
            else:
                raise AssertionError("the killed worker was not replaced within 60 s")
            wait_http(f"{url}/readyz", timeout_s=60)
            workers = replaced
            # AND SIGTERM stops the workers and the supervisor with exit 0
            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=60) == 0
            assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
