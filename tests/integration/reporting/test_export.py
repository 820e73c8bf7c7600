"""Data-lake export: Parquet read back with pyarrow and DuckDB, hive layout site=/date=, incremental (a second run
adds nothing, a new frame is exported once), an interrupted run redone without duplicates, S3 on the moto server,
and the command as a process. Real PostgreSQL with the migrations."""

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as ds
import pytest

from services.reporting.adapters import datalake
from services.reporting.adapters.datalake import SCHEMAS, Target
from services.reporting.adapters.export_source import ExportSource
from services.reporting.adapters.repository import ReportingRepository
from services.reporting.domain import frame_record
from services.reporting.export import Exporter
from shared.access import audit
from tests.conftest import REPO_ROOT
from tests.integration.reporting.builders import incident
from tests.integration.reporting.conftest import seed, seeded_frames
from tests.unit.notifier.builders import frame_analyzed, person

SEEDED_EVENTS = sum(len(f.ppe.Persons) for f in seeded_frames())  # 10 persons in 5 frames


def exporter(repository: ReportingRepository, target: str, **kwargs: Any) -> Exporter:
    return Exporter(ExportSource(repository._engine), Target.parse(target), lag_s=0, batch_rows=100, **kwargs)


def events(root: Path) -> ds.Dataset:
    return ds.dataset(root / "person_events", format="parquet", partitioning="hive")


async def test_export_layout_read_back_and_incremental(repository: ReportingRepository, tmp_path: Path) -> None:
    # GIVEN the seeded events (two sites), a vest frame and two incidents
    await seed(repository)
    vest_frame = frame_analyzed(
        "vest-1", at=datetime(2026, 1, 5, 12, tzinfo=UTC), site_id="site-a", persons=[person(0)], vests={0: False},
        custom_equipment=("hi_vis_vest",),
    )
    assert await repository.ingest_frame(frame_record(vest_frame))
    start = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    await repository.record_incident(incident("i-1", started_at=start, version=3), changed_at=start)
    await repository.record_incident(incident("i-2", started_at=start, site_id="site-b"), changed_at=start)
    job = exporter(repository, str(tmp_path), s3=None)
    # WHEN it is exported
    first = await job.run_once()
    # THEN every event is in a site=/date= partition, readable by pyarrow ...
    assert {r.stream: r.rows for r in first} == {"person_events": SEEDED_EVENTS + 1, "incidents": 2, "audit": 0}
    files = sorted(str(p.relative_to(tmp_path).parent) for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "incidents/site=site-a/date=2026-01-05",
        "incidents/site=site-b/date=2026-01-05",
        "person_events/site=site-a/date=2026-01-05",
        "person_events/site=site-a/date=2026-01-06",
        "person_events/site=site-b/date=2026-01-05",
        "person_events/site=site-b/date=2026-01-12",
    ]
    table = events(tmp_path).to_table()
    assert table.num_rows == SEEDED_EVENTS + 1
    assert set(SCHEMAS["person_events"].names) <= set(table.schema.names)
    assert "bounding_box" not in table.schema.names and "key" not in table.schema.names  # anonymised
    # ... and by DuckDB, partitions included, the custom equipment as a map
    glob = str(tmp_path / "person_events" / "**" / "*.parquet")
    con = duckdb.connect()
    per_site = con.execute(
        f"SELECT site, count(*) FROM read_parquet('{glob}', hive_partitioning = true) GROUP BY site ORDER BY site"
    ).fetchall()
    assert per_site == [("site-a", 8), ("site-b", 3)]
    vest = con.execute(
        f"SELECT equipment['hi_vis_vest'].outcome, equipment['hi_vis_vest'].confidence "
        f"FROM read_parquet('{glob}', hive_partitioning = true) WHERE frame_id = 'vest-1'"
    ).fetchall()
    assert vest == [("without", 92.0)]
    # ... incidents carry the notifier's version (the newest change of an incident is its highest version)
    incidents_glob = str(tmp_path / "incidents" / "**" / "*.parquet")
    versions = con.execute(
        f"SELECT incident_id, version FROM read_parquet('{incidents_glob}', hive_partitioning = true) ORDER BY 1"
    ).fetchall()
    assert versions == [("i-1", 3), ("i-2", 0)]
    # WHEN it runs again with nothing new, THEN nothing is added
    second = await job.run_once()
    assert {r.stream: r.rows for r in second} == {"person_events": 0, "incidents": 0, "audit": 0}
    assert events(tmp_path).count_rows() == SEEDED_EVENTS + 1
    # WHEN one more frame arrives (captured long ago: it is exported by when it was stored), THEN only it is added
    late = frame_analyzed("late-1", at=datetime(2026, 1, 5, 9, tzinfo=UTC), site_id="site-a", persons=[person(0)])
    assert await repository.ingest_frame(frame_record(late))
    third = await job.run_once()
    assert {r.stream: r.rows for r in third}["person_events"] == 1
    count = con.execute(f"SELECT count(*), count(DISTINCT (frame_id, person_index)) FROM read_parquet('{glob}')")
    assert count.fetchone() == (SEEDED_EVENTS + 2, SEEDED_EVENTS + 2)
    state = {row["stream"]: row for row in await ExportSource(repository._engine).state()}
    assert state["person_events"]["rows_exported"] == SEEDED_EVENTS + 2 and state["person_events"]["pending_to"] is None


async def test_an_interrupted_run_is_redone_without_duplicates(
    repository: ReportingRepository, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed(repository)
    job = exporter(repository, str(tmp_path), s3=None)
    real_publish = datalake.publish
    calls = 0

    async def crash_after_first_file(target: Target, files: Any, *, s3: Any) -> list[str]:
        nonlocal calls
        calls += 1
        files = list(files)
        await real_publish(target, files[:1], s3=s3)
        raise OSError("disk gone")

    # GIVEN a run that dies after placing one of its files
    monkeypatch.setattr("services.reporting.export.publish", crash_after_first_file)
    with pytest.raises(OSError):
        await job.run_once()
    assert events(tmp_path).count_rows() > 0
    # WHEN the next run comes, THEN it redoes the same range under the same names: every event exactly once
    monkeypatch.setattr("services.reporting.export.publish", real_publish)
    redo = await job.run_once()
    assert redo[0].resumed and redo[0].rows == SEEDED_EVENTS
    assert events(tmp_path).count_rows() == SEEDED_EVENTS
    # AND later frames are not lost: the watermark is the redone range's end
    assert (await job.run_once())[0].rows == 0


async def test_export_to_s3_on_the_emulator(repository: ReportingRepository, s3_client: Any) -> None:
    await seed(repository)
    await s3_client.create_bucket(Bucket="ppe-lake")
    results = await exporter(repository, "s3://ppe-lake/exports/ppe", s3=s3_client).run_once()
    listed = await s3_client.list_objects_v2(Bucket="ppe-lake", Prefix="exports/ppe/person_events/")
    keys = sorted(item["Key"] for item in listed["Contents"])
    assert len(keys) == 4 and keys[0].startswith("exports/ppe/person_events/site=site-a/date=2026-01-05/part-")
    assert results[0].files == [f"s3://ppe-lake/{key}" for key in keys]


async def test_audit_records_are_exported_once_with_their_chain(
    repository: ReportingRepository, tmp_path: Path
) -> None:
    # GIVEN a sign-in (no one site) and two changes on site-a in the audit trail
    engine = repository._engine
    await audit.record(engine, actor="user:alice", action="auth.login", target="user:1")
    await audit.record(engine, actor="user:alice", action="rule.update", site_id="site-a", target="rule:7",
                       details={"via": "session"})
    await audit.record(engine, actor="user:alice", action="zone.update", site_id="site-a", target="camera:c-1")
    job = exporter(repository, str(tmp_path), s3=None)
    # WHEN it is exported
    first = {r.stream: r.rows for r in await job.run_once()}
    # THEN the records are in site= partitions (sign-ins in the Hive null partition), with their hashes
    assert first["audit"] == 3
    lake = tmp_path / "audit"
    folders = sorted(str(p.relative_to(lake).parent.parent) for p in lake.rglob("*.parquet"))
    assert folders == ["site=__HIVE_DEFAULT_PARTITION__", "site=site-a"]
    glob = str(tmp_path / "audit" / "**" / "*.parquet")
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT seq, action, site_id, prev_hash, hash, json_extract_string(details, '$.via') "
        f"FROM read_parquet('{glob}') ORDER BY seq"
    ).fetchall()
    assert [(r[0], r[1], r[2]) for r in rows] == [(1, "auth.login", None), (2, "rule.update", "site-a"),
                                                  (3, "zone.update", "site-a")]
    assert rows[1][5] == "session"
    assert [r[3] for r in rows[1:]] == [r[4] for r in rows[:-1]]  # the chain, as in the database
    verdict = await audit.verify(engine)
    assert verdict.ok and (verdict.head_seq, verdict.head_hash) == (rows[-1][0], rows[-1][4])  # the head is kept
    # WHEN it runs again, THEN nothing is added; WHEN one more record comes, THEN only it is added
    assert {r.stream: r.rows for r in await job.run_once()}["audit"] == 0
    await audit.record(engine, actor="user:bob", action="auth.logout", target="user:2")
    assert {r.stream: r.rows for r in await job.run_once()}["audit"] == 1
    count = con.execute(f"SELECT count(*), count(DISTINCT seq) FROM read_parquet('{glob}')").fetchone()
    assert count == (4, 4)


def test_the_command_runs_once_and_again(migrated_database_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": migrated_database_url, "PPE_LOG_FORMAT": "console"}
    command = [sys.executable, "-m", "services.reporting.export", "--target", str(tmp_path / "lake"), "--lag-s", "0"]
    first = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert '"stream": "person_events"' in first.stdout
    missing = subprocess.run(command[:3], env={**env, "REPORTING_EXPORT_TARGET": ""}, cwd=REPO_ROOT,
                             capture_output=True, text=True, timeout=120)  # fmt: skip
    assert missing.returncode == 2 and "REPORTING_EXPORT_TARGET" in missing.stderr


def test_target_parsing() -> None:
    assert Target.parse("s3://b/p/q/") == Target("b", "p/q")
    assert Target.parse("file:///tmp/lake").root == "/tmp/lake"
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        Target.parse("gs://bucket")
