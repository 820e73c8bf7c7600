"""End to end: the local stack as `make run` starts it, one real frame through all four services.

The first test runs on a committed fixture photo (every clone); the vest test needs ../shared/data.

ingest (HTTP) -> S3 + frames-received -> detector (local engine, real models) -> frames-analyzed-* ->
notifier (incident + signed webhook to a real HTTP receiver) and reporting (anonymised events in PostgreSQL).
"""

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.conftest import REPO_ROOT, create_database, free_port
from tests.support.fixture_photos import MASK_SCENES

WEBHOOK_SECRET = "e2e-webhook-secret-" + uuid.uuid4().hex
# Two people without masks (committed fixture, MIT; tests/fixtures/README.md).
BARE_FACES = MASK_SCENES[2]


class Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def webhook_receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", Receiver.received
    server.shutdown()


@pytest.fixture
def stack(aws_endpoint: str, postgres_server_url: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`python -m devstack run` on free ports, against the session's emulator and a new database."""
    suffix = uuid.uuid4().hex[:8]
    database_url = create_database(postgres_server_url)
    ports = {name: free_port() for name in ("INGEST_PORT", "DETECTOR_PORT", "NOTIFIER_PORT", "REPORTING_PORT")}
    env = {
        **os.environ,
        **{k: str(v) for k, v in ports.items()},
        "AWS_ENDPOINT_URL": aws_endpoint,
        "DATABASE_URL": database_url,
        "PPE_QUEUE_PREFIX": f"e2e{suffix}-",
        "PPE_FRAMES_BUCKET": f"e2e-frames-{suffix}",
        "PPE_VAR_DIR": str(tmp_path / "var"),
        "PPE_LOG_FORMAT": "console",
        "DETECTOR_WORKERS": "1",
    }
    log_path = tmp_path / "stack.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "devstack", "run", "--start-timeout", "240"],
                                   env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while b"PPE platform is up" not in log_path.read_bytes():
                assert process.poll() is None, f"stack exited:\n{log_path.read_text()[-4000:]}"
                assert time.monotonic() < deadline, f"stack not up:\n{log_path.read_text()[-4000:]}"
                time.sleep(0.5)
            secrets = dict(line.split("=", 1) for line in (tmp_path / "var" / "secrets.env").read_text().split()
                           if "=" in line)
            camera = dict(line.split("=", 1) for line in (tmp_path / "var" / "demo-camera.env").read_text().split())
            yield {"env": env, "ports": ports, "secrets": secrets, "camera": camera, "database_url": database_url,
                   "process": process, "log": log_path}
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)  # what Ctrl-C does
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def url(stack: dict[str, Any], service: str, path: str) -> str:
    return f"http://127.0.0.1:{stack['ports'][service.upper() + '_PORT']}{path}"


def verify_signature(headers: dict[str, str], body: bytes, secret: str) -> bool:
    fields = dict(part.split("=", 1) for part in headers["x-ppe-signature"].split(","))
    expected = hmac.new(secret.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


def test_a_frame_travels_through_all_four_services(
    stack: dict[str, Any], webhook_receiver: tuple[str, list[tuple[dict[str, str], bytes]]]
) -> None:
    """Runs on every clone: the photo is a committed fixture (tests/fixtures), not ../shared/data."""
    hook_url, received = webhook_receiver
    admin = {"Authorization": f"Bearer {stack['secrets']['NOTIFIER_ADMIN_TOKEN']}"}
    channel = httpx.post(url(stack, "notifier", "/v1/channels"), headers=admin, json={
        "name": "e2e-hook", "kind": "webhook", "target": hook_url, "secret": WEBHOOK_SECRET,
    })
    assert channel.status_code == 201, channel.text
    rule = httpx.post(url(stack, "notifier", "/v1/rules"), headers=admin, json={
        "site_id": "mask-site",
        "policy": {"required_equipment": ["FACE_COVER"], "min_confidence": 60, "min_violation_s": 1,
                   "min_frames": 2, "window_frames": 3, "channel_ids": [channel.json()["id"]]},
    })
    assert rule.status_code == 201, rule.text
    ingest_admin = {"Authorization": f"Bearer {stack['secrets']['INGEST_ADMIN_TOKEN']}"}
    camera = httpx.post(url(stack, "ingest", "/v1/admin/cameras"), headers=ingest_admin, json={
        "camera_id": "mask-cam", "site_id": "mask-site", "zone_id": "ward", "required_ppe": ["FACE_COVER"],
    })
    assert camera.status_code == 201, camera.text

    # GIVEN a camera requiring face masks posting the same scene (two people without masks) for a few seconds
    image = BARE_FACES.read_bytes()
    start = datetime.now(UTC) - timedelta(seconds=10)
    frame_ids = []
    for second in range(4):
        response = httpx.post(
            url(stack, "ingest", "/v1/frames"),
            params={"captured_at": (start + timedelta(seconds=second)).isoformat(), "client_frame_id": f"e2e-{second}"},
            headers={"X-API-Key": camera.json()["api_key"], "Content-Type": "image/jpeg"},
            content=image,
        )
        assert response.status_code == 202, response.text
        frame_ids.append(response.json()["frame_id"])

    # THEN reporting stored anonymised person events for every frame, with bare heads among them
    engine = sa.create_engine(stack["database_url"])
    deadline = time.monotonic() + 300
    while True:
        with engine.connect() as connection:
            stored = connection.execute(
                sa.text("SELECT frame_id, persons_total FROM reporting_frames WHERE frame_id = ANY(:ids)"),
                {"ids": frame_ids},
            ).all()
            without = connection.execute(
                sa.text("SELECT count(*) FROM reporting_person_events WHERE frame_id = ANY(:ids) "
                        "AND face_cover = 'without'"), {"ids": frame_ids},
            ).scalar_one()
        if len(stored) == len(frame_ids):
            break
        assert time.monotonic() < deadline, f"reporting has {len(stored)} of {len(frame_ids)} frames\n" + \
            stack["log"].read_text()[-3000:]
        time.sleep(1)
    engine.dispose()
    assert all(row.persons_total >= 1 for row in stored)
    assert without >= len(frame_ids)

    # AND the notifier delivered a signed webhook naming the camera and the missing mask
    deadline = time.monotonic() + 120
    while not received:
        assert time.monotonic() < deadline, "no webhook delivered\n" + stack["log"].read_text()[-3000:]
        time.sleep(0.5)
    headers, body = received[0]
    assert verify_signature(headers, body, WEBHOOK_SECRET)
    alert = json.loads(body)
    text = json.dumps(alert)
    assert "mask-cam" in text and "FACE_COVER" in text

    # AND Ctrl-C stops the whole stack cleanly
    process = stack["process"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert "local stack stopped" in stack["log"].read_text()


# Five workers in helmets, none in a hi-vis vest (scenes/labels: 5x helmet, 5x no_wear). The local engine puts
# the feet of the worker at x 0.60..0.72 near the bottom edge (x 0.66) and the others well left or right of it.
NO_VESTS = "scene_panly_part2_000375"


def test_a_vest_zone_opens_one_incident_naming_the_vest(
    stack: dict[str, Any], webhook_receiver: tuple[str, list[tuple[dict[str, str], bytes]]], shared_data: Path
) -> None:
    hook_url, received = webhook_receiver
    notifier = {"Authorization": f"Bearer {stack['secrets']['NOTIFIER_ADMIN_TOKEN']}"}
    channel = httpx.post(url(stack, "notifier", "/v1/channels"), headers=notifier, json={
        "name": "vest-hook", "kind": "webhook", "target": hook_url, "secret": WEBHOOK_SECRET, "site_id": "vest-site",
    })
    assert channel.status_code == 201, channel.text
    rule = httpx.post(url(stack, "notifier", "/v1/rules"), headers=notifier, json={
        "site_id": "vest-site",
        "policy": {"required_equipment": ["HEAD_COVER"], "min_confidence": 50, "min_violation_s": 1,
                   "min_frames": 2, "window_frames": 3, "channel_ids": [channel.json()["id"]]},
    })
    assert rule.status_code == 201, rule.text
    # GIVEN a camera registered through ingest's admin API with a hazard zone requiring a hi-vis vest around one
    # worker's feet, a walkway requiring nothing where three others stand, and everyone else ignored
    ingest_admin = {"Authorization": f"Bearer {stack['secrets']['INGEST_ADMIN_TOKEN']}"}
    def box(x0: float, x1: float) -> list[dict[str, float]]:
        return [{"x": x0, "y": 0.8}, {"x": x1, "y": 0.8}, {"x": x1, "y": 1.0}, {"x": x0, "y": 1.0}]

    created = httpx.post(url(stack, "ingest", "/v1/admin/cameras"), headers=ingest_admin, json={
        "camera_id": "vest-cam", "site_id": "vest-site", "zone_id": "yard", "required_ppe": ["HEAD_COVER"],
        "zones": {"outside": "ignore", "zones": [
            {"zone_id": "hazard", "polygon": box(0.58, 0.76), "required_equipment": ["hi_vis_vest"],
             "min_confidence": 50},
            {"zone_id": "walkway", "polygon": box(0.0, 0.58), "required_equipment": []},
        ]},
    })
    assert created.status_code == 201, created.text
    refused = httpx.put(url(stack, "ingest", "/v1/admin/cameras/vest-cam/zones"), headers=ingest_admin, json={
        "zones": [{"zone_id": "z", "polygon": box(0, 1), "required_equipment": ["goggles"]}],
    })
    assert refused.status_code == 422 and "unknown equipment ['goggles']" in refused.text

    # WHEN it posts four frames of workers without vests
    image = (shared_data / "scenes" / "images" / f"{NO_VESTS}.jpg").read_bytes()
    start = datetime.now(UTC) - timedelta(seconds=10)
    frame_ids = []
    for second in range(4):
        response = httpx.post(
            url(stack, "ingest", "/v1/frames"),
            params={"captured_at": (start + timedelta(seconds=second)).isoformat(), "client_frame_id": f"v-{second}"},
            headers={"X-API-Key": created.json()["api_key"], "Content-Type": "image/jpeg"},
            content=image,
        )
        assert response.status_code == 202, response.text
        frame_ids.append(response.json()["frame_id"])

    # THEN one webhook arrives, naming the vest and the hazard zone
    deadline = time.monotonic() + 300
    while not received:
        assert time.monotonic() < deadline, "no webhook delivered\n" + stack["log"].read_text()[-3000:]
        time.sleep(0.5)
    headers, body = received[0]
    assert verify_signature(headers, body, WEBHOOK_SECRET)
    incident = json.loads(body)["incident"]
    assert (incident["missing_equipment"], incident["zone_id"], incident["camera_id"]) == (
        ["hi_vis_vest"], "hazard", "vest-cam")
    # AND reporting's breakdown by equipment shows the vest violations once all frames are stored
    reporting = {"Authorization": f"Bearer {stack['secrets']['REPORTING_ANALYST_TOKEN']}"}
    window = {"site_id": "vest-site", "start": (start - timedelta(hours=1)).isoformat(),
              "end": (start + timedelta(hours=1)).isoformat()}
    while True:
        rows = httpx.get(url(stack, "reporting", "/api/v1/compliance/breakdown"), headers=reporting,
                         params={**window, "by": "equipment_type"}).json()["rows"]
        vest = next((r for r in rows if r["equipment_type"] == "hi_vis_vest"), None)
        if vest is not None and vest["persons_without"] + vest["persons_with"] + vest["persons_indeterminate"] >= 4:
            break
        assert time.monotonic() < deadline, f"reporting rows {rows}\n" + stack["log"].read_text()[-3000:]
        time.sleep(1)
    assert vest["persons_without"] == 4
    # AND exactly one incident opened on that camera: the walkway workers (nothing required) gave none
    time.sleep(2)  # frames are all stored in reporting; the notifier handled them first or at the same time
    incidents = httpx.get(url(stack, "notifier", "/v1/incidents"), headers=notifier,
                          params={"camera_id": "vest-cam"}).json()
    assert [(i["missing_equipment"], i["zone_id"]) for i in incidents] == [(["hi_vis_vest"], "hazard")]
    assert len(received) == 1
    # AND the dashboard's zone editor (reporting, wired to ingest's admin API by the stack) lists the camera's zones
    # and shows its latest frame, blurred from the real detector's person boxes
    cameras = httpx.get(url(stack, "reporting", "/api/v1/cameras"), headers=reporting)
    assert cameras.status_code == 200, cameras.text
    vest_cam = next(c for c in cameras.json() if c["camera_id"] == "vest-cam")
    assert [z["zone_id"] for z in vest_cam["zones"]["zones"]] == ["hazard", "walkway"]
    snapshot = httpx.get(url(stack, "reporting", "/api/v1/cameras/vest-cam/snapshot"), headers=reporting)
    assert snapshot.status_code == 200 and snapshot.headers["content-type"] == "image/jpeg", snapshot.text[:300]
    assert snapshot.headers["x-frame-id"] in frame_ids and snapshot.content != image


def test_a_service_killed_with_sigkill_is_restarted_by_the_stack(stack: dict[str, Any]) -> None:
    import psutil

    # GIVEN the running stack; WHEN reporting and the notifier are killed with SIGKILL (no chance to clean up)
    parent = psutil.Process(stack["process"].pid)
    killed: dict[str, int] = {}
    for name in ("reporting", "notifier"):
        child = next(c for c in parent.children() if f"services.{name}.main" in " ".join(c.cmdline()))
        killed[name] = child.pid
        child.kill()
    # THEN the stack restarts each (new pid) and it answers /readyz 200 again, with no one touching anything
    deadline = time.monotonic() + 120
    ready: set[str] = set()
    while time.monotonic() < deadline and ready != set(killed):
        for name in set(killed) - ready:
            try:
                if httpx.get(url(stack, name, "/readyz"), timeout=2).status_code == 200:
                    ready.add(name)
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    log = stack["log"].read_text(errors="replace")
    assert ready == set(killed), log[-4000:]
    assert stack["process"].poll() is None, "the stack itself must keep running"
    alive = {c.pid for c in parent.children()}
    assert not alive & set(killed.values())
    assert log.count("process restarted") >= 2, log[-4000:]
