"""What the chaos drill checks at the end, from the outside: databases, the emulator's queues, the receiver."""

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import sqlalchemy as sa

from benchmarks.chaos_platform import Platform

if TYPE_CHECKING:
    from benchmarks.chaos import Receiver


@dataclass
class Row:
    name: str
    count: int
    lost: int
    duplicated: int
    note: str = ""


@dataclass
class Counts:
    rows: list[Row] = field(default_factory=list)
    dead_letters: dict[str, int] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=dict)
    stale_incidents: int = 0
    deliveries_unsettled: int = 0

    @classmethod
    async def collect(cls, platform: Platform, accepted: dict[str, str], receiver: "Receiver") -> "Counts":
        counts = cls()
        frame_ids = set(accepted.values())
        engine = sa.create_engine(platform.database_url)
        with engine.connect() as db:
            doubled = db.execute(sa.text(
                "SELECT count(*) FROM (SELECT camera_id, client_frame_id FROM ingest_frames "
                "WHERE client_frame_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1) d")).scalar_one()
            counts.rows.append(Row("frames accepted (202/200)", len(accepted), 0, int(doubled),
                                   "duplicated = one client frame id stored under two frame ids"))
            analysed = _analysed(platform)
            counts.rows.append(Row("frames analysed (detector)", len(frame_ids & analysed),
                                   len(frame_ids - analysed), 0))
            stored = {r[0]: r[1] for r in db.execute(sa.text("SELECT frame_id, persons_total FROM reporting_frames"))}
            counts.rows.append(Row("frames stored by reporting", len(frame_ids & stored.keys()),
                                   len(frame_ids - stored.keys()), len(stored.keys() - frame_ids)))
            events = db.execute(sa.text("SELECT count(*), count(DISTINCT (frame_id, person_index)) "
                                        "FROM reporting_person_events")).one()
            expected = sum(stored.values())
            counts.rows.append(Row("person-events", int(events[0]), max(0, expected - int(events[1])),
                                   int(events[0]) - int(events[1]), f"expected {expected} from the frames' persons"))
            notifier = {r[0]: r[1] for r in db.execute(sa.text("SELECT id, status FROM notifier_incidents"))}
            reporting = {r[0]: r[1] for r in db.execute(sa.text("SELECT incident_id, status FROM reporting_incidents"))}
            twice = db.execute(sa.text(
                "SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM notifier_incidents "
                "GROUP BY camera_id, track_id, started_at) d")).scalar_one()
            counts.rows.append(Row("incidents (notifier -> reporting)", len(notifier),
                                   len(notifier.keys() - reporting.keys()), int(twice)))
            counts.stale_incidents = sum(1 for i, s in notifier.items() if i in reporting and reporting[i] != s)
            deliveries = {r[0]: r[1] for r in db.execute(sa.text("SELECT id, status FROM notifier_deliveries"))}
        engine.dispose()
        due = {i for i, s in deliveries.items() if s != "suppressed"}
        counts.deliveries_unsettled = sum(1 for i in due if deliveries[i] in ("pending", "failed", "held"))
        counts.rows.append(Row("alerts received (webhook)", len(due & receiver.deliveries.keys()),
                               len(due - receiver.deliveries.keys()), 0,
                               f"{receiver.repeats} redelivered and deduped, {receiver.failed} refused on purpose"))
        counts.dead_letters, counts.in_flight = _queues(platform)
        return counts


def _client(platform: Platform, service: str) -> Any:
    return boto3.client(service, endpoint_url=platform.env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                        aws_access_key_id="local", aws_secret_access_key="local")


def _analysed(platform: Platform) -> set[str]:
    s3 = _client(platform, "s3")
    found: set[str] = set()
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"], Prefix="detector-results/"):
            found |= {o["Key"].rsplit("/", 1)[-1].removesuffix(".json") for o in page.get("Contents", [])}
    return found


def _queues(platform: Platform) -> tuple[dict[str, int], dict[str, int]]:
    sqs = _client(platform, "sqs")
    dead: dict[str, int] = {}
    flight: dict[str, int] = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        total = int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])
        name = url.rsplit("/", 1)[-1]
        (dead if "-dlq" in name else flight)[name] = total
    return dead, flight


def print_table(counts: Counts, flowing: list[tuple[str, float, float | None]], receiver: "Receiver", *,
                drained: bool) -> None:
    print()
    print(f"| {'what':<36} | {'count':>7} | {'lost':>5} | {'duplicated':>10} | note")
    print(f"|{'-' * 38}|{'-' * 9}|{'-' * 7}|{'-' * 12}|------")
    for row in counts.rows:
        print(f"| {row.name:<36} | {row.count:>7} | {row.lost:>5} | {row.duplicated:>10} | {row.note}")
    print()
    print(f"dead letters: {sum(counts.dead_letters.values())} {_nonzero(counts.dead_letters)}; "
          f"left in flight: {sum(counts.in_flight.values())} {_nonzero(counts.in_flight)}; "
          f"deliveries unsettled: {counts.deliveries_unsettled}; incidents whose status reporting has stale: "
          f"{counts.stale_incidents}; drained: {drained}")
    if receiver.latencies:
        ordered = sorted(receiver.latencies)
        p50, p95 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
        print(f"frame -> webhook latency (opening alerts): p50 {p50:.2f} s, p95 {p95:.2f} s, n={len(ordered)}")
    if flowing:
        print()
        print("| fault | healed at | first frame stored after (s) |")
        print("|---|---|---|")
        for fault, healed, after in flowing:
            print(f"| {fault} | t+{healed:.1f}s | {'-' if after is None else f'{after:.1f}'} |")


def _nonzero(values: dict[str, int]) -> str:
    shown = {k: v for k, v in values.items() if v}
    return f"({', '.join(f'{k}={v}' for k, v in shown.items())})" if shown else ""


def check(counts: Counts, flowing: list[tuple[str, float, float | None]], *, drained: bool) -> list[str]:
    failures = [f"{row.name}: {row.lost} lost" for row in counts.rows if row.lost]
    failures += [f"{row.name}: {row.duplicated} duplicated" for row in counts.rows if row.duplicated]
    if sum(counts.dead_letters.values()):
        failures.append(f"dead letters: {_nonzero(counts.dead_letters)}")
    if sum(counts.in_flight.values()):
        failures.append(f"left in flight: {_nonzero(counts.in_flight)}")
    if counts.deliveries_unsettled:
        failures.append(f"{counts.deliveries_unsettled} deliveries not settled (pending / failed / held)")
    if counts.stale_incidents:
        failures.append(f"{counts.stale_incidents} incidents with a stale status in reporting")
    if not drained:
        failures.append("the platform did not drain in time")
    failures += [f"no frame flowed after {fault} at t+{healed:.0f}s" for fault, healed, after in flowing if after is None]
    return failures
