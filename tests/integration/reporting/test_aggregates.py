"""Every aggregate of the API against the seeded data set (conftest.seeded_frames), expectations by hand."""

from typing import Any

import httpx
import pytest

RANGE = {"start": "2026-01-01T00:00:00Z", "end": "2026-01-19T00:00:00Z"}


def counts(row: dict[str, Any]) -> tuple[int, int, int]:
    return row["persons_with"], row["persons_without"], row["persons_indeterminate"]


async def get(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/api/v1/{path}", params={**RANGE, **params})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_daily_trend_buckets_in_the_sites_time_zone(client: httpx.AsyncClient) -> None:
    # Berlin days: F1 (22:30Z = 23:30 local) is Jan 5; F2 (23:10Z = 00:10 local) and F3 are Jan 6.
    body = await get(client, "compliance/trend", site_id="site-a", bucket="day")
    assert body["timezone"] == "Europe/Berlin"
    assert [(p["bucket_local"], counts(p)) for p in body["points"]] == [
        ("2026-01-05T00:00:00", (2, 1, 0)),
        ("2026-01-06T00:00:00", (1, 1, 2)),
    ]
    assert [p["compliance_rate"] for p in body["points"]] == [pytest.approx(2 / 3), pytest.approx(0.5)]


async def test_hourly_trend(client: httpx.AsyncClient) -> None:
    body = await get(client, "compliance/trend", site_id="site-a", bucket="hour")
    assert [(p["bucket_local"], counts(p)) for p in body["points"]] == [
        ("2026-01-05T23:00:00", (2, 1, 0)),
        ("2026-01-06T00:00:00", (1, 0, 0)),
        ("2026-01-06T09:00:00", (0, 1, 2)),
    ]
    assert body["points"][2]["compliance_rate"] == 0.0


async def test_weekly_trend_of_a_utc_site_starts_on_monday(client: httpx.AsyncClient) -> None:
    body = await get(client, "compliance/trend", site_id="site-b", bucket="week")
    assert body["timezone"] == "UTC"
    assert [(p["bucket_local"], counts(p)) for p in body["points"]] == [
        ("2026-01-05T00:00:00", (1, 1, 0)),
        ("2026-01-12T00:00:00", (0, 1, 0)),
    ]


@pytest.mark.parametrize(
    ("equipment_type", "expected"),
    [
        # HEAD: F1 p0 with, p1 without, p2 with | F2 with | F3 p0 with, p1 without, p2 indeterminate (conf 40)
        ("HEAD_COVER", [("2026-01-05T00:00:00", (2, 1, 0)), ("2026-01-06T00:00:00", (2, 1, 1))]),
        # FACE: F1 all with | F2 with | F3 p0 face not visible, p1 without, p2 indeterminate
        ("FACE_COVER", [("2026-01-05T00:00:00", (3, 0, 0)), ("2026-01-06T00:00:00", (1, 1, 2))]),
        ("HAND_COVER", []),
    ],
)
async def test_trend_per_equipment_type(
    client: httpx.AsyncClient, equipment_type: str, expected: list[tuple[str, tuple[int, int, int]]]
) -> None:
    body = await get(client, "compliance/trend", site_id="site-a", bucket="day", equipment_type=equipment_type)
    assert [(p["bucket_local"], counts(p)) for p in body["points"]] == expected


async def test_trend_range_is_half_open(client: httpx.AsyncClient) -> None:
    # [Jan 5 23:00Z, Jan 6 08:00Z) holds F2 only on site-a; F3 at exactly 08:00Z is excluded.
    response = await client.get(
        "/api/v1/compliance/trend",
        params={"site_id": "site-a", "bucket": "day", "start": "2026-01-05T23:00:00Z", "end": "2026-01-06T08:00:00Z"},
    )
    assert [counts(p) for p in response.json()["points"]] == [(1, 0, 0)]


async def test_breakdown_by_site(client: httpx.AsyncClient) -> None:
    body = await get(client, "compliance/breakdown", by="site")
    assert [(r["site_id"], counts(r), r["compliance_rate"]) for r in body["rows"]] == [
        ("site-a", (3, 2, 2), pytest.approx(0.6)),
        ("site-b", (1, 2, 0), pytest.approx(1 / 3)),
    ]


async def test_breakdown_by_zone_and_camera(client: httpx.AsyncClient) -> None:
    zones = await get(client, "compliance/breakdown", by="zone")
    assert [(r["site_id"], r["zone_id"], counts(r)) for r in zones["rows"]] == [
        ("site-a", "zone-1", (3, 1, 0)),
        ("site-a", "zone-2", (0, 1, 2)),
        ("site-b", "zone-9", (1, 2, 0)),
    ]
    cameras = await get(client, "compliance/breakdown", by="camera", site_id="site-a")
    assert [(r["camera_id"], counts(r), r["compliance_rate"]) for r in cameras["rows"]] == [
        ("cam-1", (3, 1, 0), 0.75),
        ("cam-2", (0, 1, 2), 0.0),
    ]


async def test_breakdown_by_equipment_type(client: httpx.AsyncClient) -> None:
    # HEAD: F1 (2,1,0) + F2 (1,0,0) + F3 (1,1,1) + F4 (1,1,0) + F5 (0,1,0); FACE: F1 (3,0,0) + F2 + F3 (0,1,2)
    body = await get(client, "compliance/breakdown", by="equipment_type")
    assert [(r["equipment_type"], counts(r)) for r in body["rows"]] == [
        ("FACE_COVER", (4, 1, 2)),
        ("HEAD_COVER", (5, 4, 1)),
    ]


async def test_top_violation_locations(client: httpx.AsyncClient) -> None:
    body = await get(client, "violations/top-locations", limit=2)
    assert [(r["site_id"], r["camera_id"], r["persons_without"]) for r in body["rows"]] == [
        ("site-b", "cam-9", 2),
        ("site-a", "cam-1", 1),
    ]


async def test_top_violation_hours_in_local_time(client: httpx.AsyncClient) -> None:
    # F1 at 23 Berlin + F4 at 23 UTC; F3 at 09 Berlin; F5 at 10 UTC.
    body = await get(client, "violations/top-hours")
    assert [(r["hour"], counts(r)) for r in body["rows"]] == [
        (23, (3, 2, 0)),
        (9, (0, 1, 2)),
        (10, (0, 1, 0)),
    ]


async def test_changing_a_sites_time_zone_rebuckets(writable_client: httpx.AsyncClient) -> None:
    client = writable_client
    admin = {"Authorization": "Bearer admin-token-0123456789ab"}
    response = await client.put("/api/v1/sites/site-a", json={"timezone": "UTC"}, headers=admin)
    assert response.status_code == 200 and response.json()["timezone"] == "UTC"
    body = await get(client, "compliance/trend", site_id="site-a", bucket="day")
    # In UTC, F1 and F2 share Jan 5.
    assert [(p["bucket_local"], counts(p)) for p in body["points"]] == [
        ("2026-01-05T00:00:00", (3, 1, 0)),
        ("2026-01-06T00:00:00", (0, 1, 2)),
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        {"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00"},
        {"start": "2020-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "bucket": "hour"},
        {"bucket": "month"},
        {"equipment_type": "VEST"},
        {"site_id": "site\x00a"},  # PostgreSQL text cannot hold NUL: refused up front, not a 500
        {"end": "9999-12-31T23:59:59Z"},  # rounding up past the last representable moment
    ],
)
async def test_bad_query_is_a_clear_422(client: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await client.get("/api/v1/compliance/trend", params=params)
    assert response.status_code == 422
    assert response.json()["detail"]
