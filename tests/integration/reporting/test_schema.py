"""Migrations (upgrade, downgrade, upgrade again) and the query plans of the aggregates."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from services.reporting.adapters.repository import Filters, trend_statement
from services.reporting.domain import ALL_TYPES, Bucket
from shared.migrate import downgrade, upgrade

TABLES = {
    "reporting_sites",
    "reporting_frames",
    "reporting_person_events",
    "reporting_rollup_15m",
    "reporting_incidents",
    "reporting_export_state",
    "reporting_digest_subscriptions",
    "reporting_digest_sends",
}


def reporting_tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return {name for name in sa.inspect(engine).get_table_names() if name.startswith("reporting_")}
    finally:
        engine.dispose()


def test_upgrade_then_downgrade_then_upgrade(empty_database_url: str) -> None:
    assert reporting_tables(empty_database_url) == set()
    upgrade(empty_database_url)
    assert reporting_tables(empty_database_url) == TABLES
    downgrade(empty_database_url, "reporting@base")
    assert reporting_tables(empty_database_url) == set()
    upgrade(empty_database_url)
    assert reporting_tables(empty_database_url) == TABLES


async def explain(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> dict[str, Any]:
    raw = (await conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {sql}"), params)).scalar_one()
    plan: dict[str, Any] = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return plan


def _plan_nodes(plan: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    nodes = [(plan["Node Type"], plan.get("Relation Name"), plan.get("Index Name"))]
    for child in plan.get("Plans", []):
        nodes += _plan_nodes(child)
    return nodes


async def test_trend_reads_the_rollup_through_its_index_not_the_event_table(engine: AsyncEngine) -> None:
    # GIVEN 40 sites x 35 days of 15-minute rollup rows (134k rows) and as many events as the test can afford
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO reporting_rollup_15m (site_id, equipment_type, bucket_start, zone_id, camera_id, "
                "persons_with, persons_without, persons_indeterminate) "
                "SELECT 'site-' || s, 'ALL', :start + (b * interval '15 minutes'), 'zone-1', 'cam-1', 3, 1, 0 "
                "FROM generate_series(1, 40) s, generate_series(0, 35 * 96 - 1) b"
            ),
            {"start": start},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO reporting_frames (frame_id, camera_id, site_id, zone_id, captured_at, analyzed_at, "
                "required_types, min_confidence, persons_total) "
                "SELECT 'f' || g, 'cam-1', 'site-' || (g % 40), 'zone-1', :start + g * interval '1 minute', "
                ":start, ARRAY['HEAD_COVER'], 80, 1 FROM generate_series(1, 20000) g"
            ),
            {"start": start},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO reporting_person_events (frame_id, person_index, camera_id, site_id, zone_id, "
                "captured_at, outcome, person_confidence) "
                "SELECT frame_id, 0, camera_id, site_id, zone_id, captured_at, 'with', 99 FROM reporting_frames"
            )
        )
        await conn.execute(sa.text("ANALYZE"))

    # WHEN the 30-day, one-site daily trend is planned
    sql, params = trend_statement(
        start=start, end=start + timedelta(days=30), bucket=Bucket.DAY, filters=Filters(site_id="site-7"),
        equipment_type=ALL_TYPES,
    )
    async with engine.connect() as conn:
        nodes = _plan_nodes(await explain(conn, sql, params))

    # THEN it scans the rollup's primary-key index, and neither the event table nor a sequential rollup scan
    relations = {relation for _, relation, _ in nodes if relation}
    assert "reporting_person_events" not in relations
    assert "reporting_rollup_15m" in relations
    rollup_scans = [(kind, index) for kind, relation, index in nodes if relation == "reporting_rollup_15m"]
    index_scans = ("Index Scan", "Index Only Scan", "Bitmap Heap Scan")
    assert rollup_scans and all(kind in index_scans for kind, _ in rollup_scans)
    indexes = {index for _, _, index in nodes if index}
    assert "reporting_rollup_15m_pkey" in indexes


async def test_export_query_uses_a_time_index(engine: AsyncEngine) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    async with engine.begin() as conn:
        await conn.execute(
            sa.text(
                "INSERT INTO reporting_frames (frame_id, camera_id, site_id, zone_id, captured_at, analyzed_at, "
                "required_types, min_confidence, persons_total) "
                "SELECT 'f' || g, 'cam-1', 'site-' || (g % 40), 'zone-1', :start + g * interval '1 minute', "
                ":start, ARRAY['HEAD_COVER'], 80, 1 FROM generate_series(1, 50000) g"
            ),
            {"start": start},
        )
        await conn.execute(
            sa.text(
                "INSERT INTO reporting_person_events (frame_id, person_index, camera_id, site_id, zone_id, "
                "captured_at, outcome, person_confidence) "
                "SELECT frame_id, 0, camera_id, site_id, zone_id, captured_at, 'with', 99 FROM reporting_frames"
            )
        )
        await conn.execute(sa.text("ANALYZE"))
        plan = await explain(
            conn,
            "SELECT * FROM reporting_person_events WHERE site_id = 'site-3' "
            "AND captured_at >= :a AND captured_at < :b ORDER BY captured_at, id",
            {"a": start, "b": start + timedelta(days=1)},
        )
    nodes = _plan_nodes(plan)
    assert ("Seq Scan", "reporting_person_events", None) not in nodes
    event_indexes = {"ix_reporting_person_events_site_captured", "ix_reporting_person_events_captured_at"}
    assert any(index in event_indexes for _, _, index in nodes), nodes
