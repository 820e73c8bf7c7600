"""Chaos drill: the whole platform under load while its processes are killed and its dependencies stopped.

    python -m benchmarks.chaos                                  # 3 cameras x 2 frames/s, 10 min, each fault x2
    python -m benchmarks.chaos --short                          # 2-3 min, each fault once (runs in `make test`)
    python -m benchmarks.chaos --soak                           # 4 x 5 frames/s, 30 min, no faults: RSS, FDs
    python -m benchmarks.chaos --seed 7 --cameras 3 --fps 2 --minutes 10 --faults-per-type 2

Starts the real processes as `make run` does (benchmarks/chaos_platform.py), registers the cameras through
ingest's admin API and a webhook channel + rule through the notifier's, then drives every camera with real
photos (client frame ids; a frame is re-posted until ingest answers 202 or 200) and alternates a photo
with bare heads and one without, so incidents open and resolve again and again. The webhook receiver is
slow and fails a share of requests; it dedupes by delivery id. Faults follow a seeded random schedule,
printed first. At the end it waits for the platform to drain and checks from the outside (PostgreSQL of
ingest, notifier and reporting; the emulator's queues; the receiver): accepted frames, frames analysed and
stored, person-events, incidents and alerts, each with lost and duplicated; dead letters and messages in
flight; and the time from each fault to the first frame stored after it. Exit 0 only when all pass.
"""

import argparse
import asyncio
import json
import random
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import sqlalchemy as sa

from benchmarks.chaos_platform import FAULTS, Platform
from benchmarks.chaos_report import Counts, check, print_table
from model_workshop.settings import SharedDataMissing, shared_data_dir


@dataclass
class Receiver:
    """A webhook receiver that is slow (`delay_s`) and fails `fail_share` of requests with 503; dedupes."""

    rng: random.Random
    delay_s: float = 0.2
    fail_share: float = 0.2
    deliveries: dict[str, float] = field(default_factory=dict)  # delivery id -> first receipt time
    repeats: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def serve(self) -> str:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                time.sleep(receiver.delay_s)
                with receiver.lock:
                    fail = receiver.rng.random() < receiver.fail_share
                    if fail:
                        receiver.failed += 1
                    else:
                        receiver.applied(self.headers.get("X-PPE-Delivery", ""), body)
                self.send_response(503 if fail else 204)
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/hook"

    def applied(self, delivery_id: str, body: bytes) -> None:
        if delivery_id in self.deliveries:
            self.repeats += 1  # at-least-once: the receiver dedupes, so it is applied once
            return
        self.deliveries[delivery_id] = time.time()
        payload = json.loads(body)
        if payload.get("event") == "incident.open":
            captured = datetime.fromisoformat(payload["captured_at"]).timestamp()
            self.latencies.append(time.time() - captured)


@dataclass
class Drive:
    """Cameras posting frames; what ingest accepted, by client frame id."""

    platform: Platform
    photos: list[bytes]
    fps: float
    accepted: dict[str, str] = field(default_factory=dict)  # client frame id -> platform frame id
    retries: int = 0

    async def camera(self, camera_id: str, key: str, until: float) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            n = 0
            start = time.monotonic()
            while time.monotonic() < until:
                photo = self.photos[(n // int(max(1, self.fps * 15))) % len(self.photos)]  # 15 s per photo
                await self.post(client, camera_id, key, f"{camera_id}-{n:06d}", photo)
                n += 1
                await asyncio.sleep(max(0.0, start + n / self.fps - time.monotonic()))

    async def post(self, client: httpx.AsyncClient, camera_id: str, key: str, client_id: str, photo: bytes) -> None:
        delay = 0.5
        while True:
            captured = datetime.now(UTC).isoformat()
            try:
                response = await client.post(
                    self.platform.url("ingest", "/v1/frames"),
                    params={"camera_id": camera_id, "captured_at": captured, "client_frame_id": client_id},
                    headers={"X-API-Key": key, "Content-Type": "image/jpeg"},
                    content=photo,
                )
                if response.status_code in (200, 202):
                    self.accepted[client_id] = response.json()["frame_id"]
                    return
                if response.status_code not in (408, 409, 429, 500, 502, 503):
                    raise SystemExit(f"ingest refused {client_id}: {response.status_code} {response.text[:300]}")
            except httpx.HTTPError:
                pass
            self.retries += 1
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def schedule(rng: random.Random, faults_per_type: int, duration_s: float, outage_s: float) -> list[tuple[float, str]]:
    """Faults in a shuffled order at random times: each after the previous one has healed for >= 10 s."""
    faults = [f for f in FAULTS for _ in range(faults_per_type)]
    rng.shuffle(faults)
    busy = sum(outage_s if f.startswith("stop") else 0.0 for f in faults) + 10.0 * len(faults)
    slack = max(0.0, duration_s * 0.85 - 15.0 - busy)
    gaps = sorted(rng.uniform(0, slack) for _ in faults)
    plan, at, used = [], 15.0, 0.0
    for fault, gap in zip(faults, gaps, strict=True):
        at += gap - used
        used = gap
        plan.append((round(at, 1), fault))
        at += (outage_s if fault.startswith("stop") else 0.0) + 10.0
    return plan


def photos_from(folder: Path | None) -> list[bytes]:
    """A photo with bare heads and one with hard hats only (by the scenes' YOLO labels), or `--photos` files."""
    if folder is not None:
        return [p.read_bytes() for p in sorted(folder.glob("*.jpg"))[:4]]
    try:
        data = shared_data_dir()
    except SharedDataMissing as missing:
        raise SystemExit(f"no photos: {missing}; or pass --photos DIR") from None
    labels = data / "scenes" / "labels"
    if not labels.is_dir():
        raise SystemExit(f"no photos: {data} has no scenes/labels; pass --photos DIR")
    bare, covered = [], []
    for label in sorted(labels.glob("*.txt")):
        classes = [row.split()[0] for row in label.read_text().splitlines() if row.strip()]
        (bare if "1" in classes else covered if "0" in classes else []).append(label.stem)
    return [(data / "scenes" / "images" / f"{name}.jpg").read_bytes() for name in (bare[0], covered[0])]


async def setup(platform: Platform, cameras: int, hook_url: str) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=30) as client:
        channel = await client.post(platform.url("notifier", "/v1/channels"), headers=platform.admin("notifier"), json={
            "name": "chaos-hook", "kind": "webhook", "target": hook_url, "site_id": "chaos-site",
            "secret": platform.secrets["NOTIFIER_WEBHOOK_SECRET"],
        })
        channel.raise_for_status()
        rule = await client.post(platform.url("notifier", "/v1/rules"), headers=platform.admin("notifier"), json={
            "site_id": "chaos-site",
            "policy": {"required_equipment": ["HEAD_COVER"], "min_confidence": 50, "min_violation_s": 1,
                       "min_frames": 2, "window_frames": 3, "channel_ids": [channel.json()["id"]]},
        })
        rule.raise_for_status()
        keys = {}
        for index in range(cameras):
            camera_id = f"chaos-cam-{index}"
            response = await client.post(platform.url("ingest", "/v1/admin/cameras"), headers=platform.admin("ingest"),
                                         json={"camera_id": camera_id, "site_id": "chaos-site", "zone_id": "yard",
                                               "required_ppe": ["HEAD_COVER"], "rate_limit_per_s": 50})
            response.raise_for_status()
            keys[camera_id] = response.json()["api_key"]
        return keys


def stored_frames(database_url: str) -> int:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(sa.text("SELECT count(*) FROM reporting_frames")).scalar_one())
    except sa.exc.OperationalError:
        return -1
    finally:
        engine.dispose()


async def run(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    duration_s = args.minutes * 60
    plan = [] if args.soak else schedule(rng, args.faults_per_type, duration_s, args.outage_s)
    print(f"chaos drill: seed {args.seed}, {args.cameras} cameras x {args.fps} frames/s for {args.minutes} min; "
          f"replay: python -m benchmarks.chaos --seed {args.seed} --cameras {args.cameras} --fps {args.fps} "
          f"--minutes {args.minutes} --faults-per-type {args.faults_per_type}" + (" --soak" if args.soak else ""),
          flush=True)
    for at, fault in plan:
        print(f"  t+{at:6.1f}s  {fault}", flush=True)
    platform = Platform.create(args.outage_s)
    receiver = Receiver(random.Random(args.seed + 1), fail_share=args.webhook_fail_share)
    try:
        platform.start(detector_workers=args.detector_workers)
        keys = await setup(platform, args.cameras, receiver.serve())
        drive = Drive(platform, photos_from(args.photos), args.fps)
        started = time.monotonic()
        cameras = [asyncio.create_task(drive.camera(c, k, started + duration_s)) for c, k in keys.items()]
        timeline: list[tuple[float, int]] = []
        recoveries: list[tuple[str, float, float | None]] = []  # fault, healed at, first frame stored after
        samples = asyncio.create_task(sample(platform, timeline, started, soak=args.soak))
        for at, fault in plan:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            print(f"t+{time.monotonic() - started:6.1f}s  injecting: {fault}", flush=True)
            healed = await asyncio.to_thread(platform.inject, fault)
            recoveries.append((fault, healed - started, None))
        await asyncio.gather(*cameras)
        print(f"load done: {len(drive.accepted)} frames accepted, {drive.retries} re-posts; draining", flush=True)
        drained = await drain(platform, len(drive.accepted), timeout_s=args.drain_s)
        samples.cancel()
        counts = await Counts.collect(platform, drive.accepted, receiver)
        flowing = [(f, h, next((t - h for t, n in timeline if t > h and n > _count_at(timeline, h)), None))
                   for f, h, _ in recoveries]
        print_table(counts, flowing, receiver, drained=drained)
        failures = check(counts, flowing, drained=drained)
        for failure in failures:
            print(f"FAIL: {failure}")
        print("PASS" if not failures else "FAILED", f"(seed {args.seed}; logs in {platform.work})", flush=True)
        return 0 if not failures else 1
    finally:
        platform.stop()


def _count_at(timeline: list[tuple[float, int]], t: float) -> int:
    before = [n for at, n in timeline if at <= t and n >= 0]
    return before[-1] if before else 0


async def sample(platform: Platform, timeline: list[tuple[float, int]], started: float, *, soak: bool) -> None:
    """Frames stored over time (0.5 s); in soak mode RSS and open FDs per service every minute."""
    next_report = time.monotonic()
    while True:
        timeline.append((time.monotonic() - started, await asyncio.to_thread(stored_frames, platform.database_url)))
        if soak and time.monotonic() >= next_report:
            next_report += 60
            print(f"t+{time.monotonic() - started:5.0f}s  " + "  ".join(
                f"{name}: {rss:.0f} MiB {fds} fds" for name, (rss, fds) in resources(platform).items()), flush=True)
        await asyncio.sleep(0.5)


def resources(platform: Platform) -> dict[str, tuple[float, int]]:
    figures = {}
    for name, process in platform.processes().items():
        family = [process, *process.children(recursive=True)]
        figures[name] = (sum(p.memory_info().rss for p in family) / 2**20, sum(p.num_fds() for p in family))
    return figures


async def drain(platform: Platform, accepted: int, *, timeout_s: float) -> bool:
    """Wait until reporting holds every accepted frame and the platform is ready again."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await asyncio.to_thread(stored_frames, platform.database_url) >= accepted and platform.all_ready():
            await asyncio.sleep(10)  # alerts and incident changes trail the frames by a little
            return True
        await asyncio.sleep(1)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.chaos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None, help="fault schedule seed (default: random, printed)")
    parser.add_argument("--cameras", type=int, default=None, help="default 3 (--short 2, --soak 4)")
    parser.add_argument("--fps", type=float, default=None, help="frames/s per camera: 2 (--short 1, --soak 5)")
    parser.add_argument("--minutes", type=float, default=None, help="default 10 (--short 3, --soak 30)")
    parser.add_argument("--faults-per-type", type=int, default=None, help="default 2 (--short 1, --soak 0)")
    parser.add_argument("--outage-s", type=float, default=20.0, help="how long PostgreSQL / the emulator stay down")
    parser.add_argument("--webhook-fail-share", type=float, default=0.2)
    parser.add_argument("--detector-workers", type=int, default=1)
    parser.add_argument("--drain-s", type=float, default=300.0, help="how long to wait for the platform to drain")
    parser.add_argument("--photos", type=Path, default=None, help="folder of JPEGs instead of the shared scenes")
    parser.add_argument("--short", action="store_true", help="2 cameras x 1 frame/s, 3 min, each fault once")
    parser.add_argument("--soak", action="store_true", help="4 cameras x 5 frames/s, 30 min, no faults, RSS / FDs")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1_000_000)
    mode = (2, 1.0, 3.0, 1) if args.short else (4, 5.0, 30.0, 0) if args.soak else (3, 2.0, 10.0, 2)
    for name, default in zip(("cameras", "fps", "minutes", "faults_per_type"), mode, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.soak:
        args.faults_per_type = 0
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
