"""Detector throughput with the frames-received queue pre-filled: frames/s, per-frame latency, CPU, peak RSS.

    python -m benchmarks.detector_bench                       # local engine, 200 frames, backlog 20, moto
    python -m benchmarks.detector_bench --frames 400 --workers 2 --concurrency 4

Frames are the labelled scene photos (../shared/data/scenes, 1-5 workers each) resized to 1280x720 JPEG.
The queue emulator (moto, started here on a free port unless AWS_ENDPOINT_URL is set, e.g. to LocalStack)
slows down as its backlog grows, so a feeder keeps only `--backlog` messages waiting: what is measured is
the detector, not the emulator. Per-frame latency is the handler's time (S3 read, engines, result record,
publish to both downstream queues). CPU is sampled per core for the whole machine and per process for the
detector (main + model workers) and the emulator.
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import cv2
import psutil
import uvloop
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from model_workshop.settings import shared_data_dir  # noqa: E402
from services.detector.config import DetectorSettings  # noqa: E402
from services.detector.engines.registry import build_engines  # noqa: E402
from services.detector.main import build_consumer, build_handler  # noqa: E402
from shared.aws import aws_clients  # noqa: E402
from shared.contracts import Envelope, FrameReceived  # noqa: E402
from devstack.emulator import command as emulator_command  # noqa: E402
from shared.s3 import FrameStore, frame_key  # noqa: E402
from shared.sqs import MessageContext, Publisher, QueueResolver  # noqa: E402
from shared.topology import provision_buckets, provision_queues  # noqa: E402
from tests.conftest import free_port, wait_http  # noqa: E402
from tests.integration.detector.helpers import submit_frame  # noqa: E402

MAX_PERSONS = 5


def scene_frames(width: int = 1280, height: int = 720) -> list[tuple[str, bytes]]:
    """The labelled scenes with 1..5 labelled heads, resized to width x height JPEG."""
    scenes = shared_data_dir() / "scenes"
    frames = []
    for label in sorted((scenes / "labels").glob("*.txt")):
        heads = sum(1 for line in label.read_text().splitlines() if line.split()[:1] in (["0"], ["1"]))
        if not 1 <= heads <= MAX_PERSONS:
            continue
        image = cv2.imread(str(scenes / "images" / f"{label.stem}.jpg"))
        ok, data = cv2.imencode(".jpg", cv2.resize(image, (width, height)), [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        frames.append((label.stem, data.tobytes()))
    return frames


class Sampler(threading.Thread):
    """Samples CPU per core, and CPU + RSS of the detector's processes and of the emulator."""

    def __init__(self, emulator_pid: int | None, interval_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.me = psutil.Process()
        self.emulator = psutil.Process(emulator_pid) if emulator_pid else None
        self.interval_s = interval_s
        self.stop = threading.Event()
        self.per_core: list[list[float]] = []
        self.peak_rss_total = 0
        self.peak_rss_single = 0

    def detector_processes(self) -> list[psutil.Process]:
        return [self.me, *self.me.children(recursive=True)]

    def cpu_seconds(self) -> tuple[float, float, float]:
        """CPU seconds so far: detector main process, its model workers, the emulator."""

        def used(process: psutil.Process) -> float:
            try:
                times = process.cpu_times()
                return float(times.user + times.system)
            except psutil.Error:
                return 0.0

        workers = sum(
            used(p) for p in self.detector_processes()[1:] if self.emulator is None or p.pid != self.emulator.pid
        )
        return used(self.me), workers, used(self.emulator) if self.emulator else 0.0

    def run(self) -> None:
        psutil.cpu_percent(percpu=True)
        while not self.stop.wait(self.interval_s):
            self.per_core.append(psutil.cpu_percent(percpu=True))
            rss = []
            for process in self.detector_processes():
                if self.emulator is not None and process.pid == self.emulator.pid:
                    continue
                try:
                    rss.append(process.memory_info().rss)
                except psutil.Error:
                    pass
            self.peak_rss_total = max(self.peak_rss_total, sum(rss))
            self.peak_rss_single = max(self.peak_rss_single, max(rss, default=0))


async def bench(args: argparse.Namespace, emulator_pid: int | None) -> None:
    suffix = uuid.uuid4().hex[:8]
    os.environ["PPE_QUEUE_PREFIX"] = f"bench{suffix}-"
    os.environ["PPE_FRAMES_BUCKET"] = f"bench-frames-{suffix}"
    settings = DetectorSettings(
        ppe_engine=args.engine, workers=args.workers, concurrency=args.concurrency, handler_timeout_s=120
    )
    frames = scene_frames()
    print(f"frames: {len(frames)} distinct 1280x720 scenes with 1-{MAX_PERSONS} persons, cycled to {args.frames}")
    engines = build_engines(settings)
    started = time.perf_counter()
    await engines.start()
    print(f"engines ready in {time.perf_counter() - started:.1f}s: {engines.ppe.name} x{args.workers} workers")

    async with aws_clients(settings, "sqs", "s3") as (sqs, s3):
        await provision_queues(sqs, prefix=settings.queue_prefix)
        await provision_buckets(s3, {"frames_bucket": settings.frames_bucket}, region=settings.aws_region)
        resolver = QueueResolver(sqs, prefix=settings.queue_prefix)
        ingest = Publisher(sqs, resolver, producer="ingest")
        store = FrameStore(s3, settings.frames_bucket)
        handler = build_handler(settings, engines, sqs=sqs, s3=s3, resolver=resolver)
        latencies: list[float] = []
        progress = tqdm(total=args.frames, unit="frame", desc="analysed")
        done = asyncio.Event()

        async def timed(envelope: Envelope[FrameReceived], context: MessageContext) -> None:
            began = time.perf_counter()
            await handler.handle(envelope, context)
            latencies.append(time.perf_counter() - began)
            progress.update(1)
            if len(latencies) >= args.frames:
                done.set()

        consumer = build_consumer(settings, timed, sqs=sqs, resolver=resolver)

        async def store_only(frame_id: str, data: bytes, index: int) -> None:
            captured_at = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
            key = frame_key(
                site_id="site-1",
                camera_id=f"cam-{index % 8}",
                captured_at=captured_at,
                frame_id=frame_id,
                extension="jpg",
            )
            await store.put(key, data, content_type="image/jpeg", metadata={})

        # frame bytes are stored up front (ingest's work, not measured); only announcements are fed
        keys = []
        for index in tqdm(range(args.frames), desc="storing frames", unit="frame"):
            name, data = frames[index % len(frames)]
            keys.append((f"{name}-{index:05d}", data))
            await store_only(keys[-1][0], data, index)

        async def announce(index: int) -> None:
            frame_id, data = keys[index]
            await submit_frame(
                data, frame_id, store=store, publisher=ingest, camera_id=f"cam-{index % 8}", site_id="site-1", put=False
            )

        sent = 0
        for _ in range(min(args.backlog, args.frames)):
            await announce(sent)
            sent += 1

        async def feeder() -> None:
            nonlocal sent
            while sent < args.frames:
                if sent - len(latencies) < args.backlog:
                    await announce(sent)
                    sent += 1
                else:
                    await asyncio.sleep(0.01)

        async def purge_outputs() -> None:
            # downstream queues are not consumed here; keep them short so the emulator stays fast
            while not done.is_set():
                await asyncio.sleep(5)
                for queue in ("frames-analyzed-notifier", "frames-analyzed-reporting"):
                    try:
                        await sqs.purge_queue(QueueUrl=await resolver.url(queue))
                    except Exception:  # noqa: BLE001 - purging is best effort
                        pass

        sampler = Sampler(emulator_pid)
        cpu_before = sampler.cpu_seconds()
        sampler.start()
        wall_started = time.perf_counter()
        tasks = [asyncio.create_task(feeder()), asyncio.create_task(purge_outputs())]
        run = asyncio.create_task(consumer.run())
        await done.wait()
        wall = time.perf_counter() - wall_started
        consumer.request_stop()
        await run
        sampler.stop.set()
        sampler.join()
        cpu_after = sampler.cpu_seconds()
        for task in tasks:
            task.cancel()
        progress.close()
    await engines.close()

    cores = list(zip(*sampler.per_core, strict=True)) if sampler.per_core else []
    ms = sorted(latency * 1000 for latency in latencies)
    print()
    print(f"engine={args.engine} workers={args.workers} concurrency={args.concurrency} backlog={args.backlog}")
    print(f"frames analysed: {len(latencies)} in {wall:.1f}s -> {len(latencies) / wall:.2f} frames/s")
    print(
        f"per-frame latency (handler): p50 {statistics.median(ms):.0f} ms, "
        f"p95 {ms[int(0.95 * (len(ms) - 1))]:.0f} ms, max {ms[-1]:.0f} ms"
    )
    print(
        "machine CPU per core (mean %): " + ", ".join(f"cpu{i} {statistics.mean(c):.0f}" for i, c in enumerate(cores))
    )
    main_s, workers_s, emulator_s = (after - before for after, before in zip(cpu_after, cpu_before, strict=True))
    frames_done = len(latencies)
    print(
        f"process CPU over the run (% of one core): detector main {main_s / wall * 100:.0f}, "
        f"model workers {workers_s / wall * 100:.0f}, emulator {emulator_s / wall * 100:.0f}"
    )
    per_frame_ms = (main_s + workers_s + emulator_s) / frames_done * 1000
    print(
        f"CPU per frame: detector main {main_s / frames_done * 1000:.0f} ms, model workers "
        f"{workers_s / frames_done * 1000:.0f} ms, emulator {emulator_s / frames_done * 1000:.0f} ms "
        f"-> at most {psutil.cpu_count() * 1000 / per_frame_ms:.1f} frames/s when the {psutil.cpu_count()} cores are "
        f"free (load average now {os.getloadavg()[0]:.1f})"
    )
    print(
        f"peak RSS: detector total (main + model workers) {sampler.peak_rss_total / 2**20:.0f} MiB, "
        f"largest process {sampler.peak_rss_single / 2**20:.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--backlog", type=int, default=20, help="messages kept waiting in frames-received")
    parser.add_argument("--workers", type=int, default=2, help="model worker processes")
    parser.add_argument("--concurrency", type=int, default=4, help="frames in flight (consumer cap)")
    parser.add_argument(
        "--engine",
        choices=["local", "rekognition"],
        default="local",
        help="rekognition: DETECTOR_REKOGNITION_ENDPOINT_URL",
    )
    parser.add_argument(
        "--emulator-pid", type=int, default=None, help="with AWS_ENDPOINT_URL set: the emulator's pid, to count its CPU"
    )
    args = parser.parse_args()
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_REGION", "us-east-1"),
    ):
        os.environ.setdefault(name, value)
    emulator: subprocess.Popen[bytes] | None = None
    if not os.environ.get("AWS_ENDPOINT_URL"):
        port = free_port()
        emulator = subprocess.Popen(
            emulator_command(port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
        wait_http(f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/")
        print(f"moto server pid {emulator.pid} on port {port}")
    try:
        uvloop.run(bench(args, emulator.pid if emulator else args.emulator_pid))  # as the service runs
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(10)


if __name__ == "__main__":
    main()
