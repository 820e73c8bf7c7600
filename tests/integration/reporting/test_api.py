"""Auth roles, CSV export content and the OpenAPI description, on the seeded data set."""

import csv
import io
from typing import Any

import httpx
import pytest

from tests.integration.reporting.conftest import ADMIN, ANALYST

READS = [
    "/api/v1/compliance/trend",
    "/api/v1/compliance/breakdown",
    "/api/v1/violations/top-locations",
    "/api/v1/violations/top-hours",
    "/api/v1/incidents",
    "/api/v1/export/events.csv",
    "/api/v1/sites",
]


@pytest.mark.parametrize("path", READS)
async def test_reads_need_a_known_token(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path, headers={"Authorization": ""})).status_code == 401
    assert (await client.get(path, headers={"Authorization": "Bearer not-a-token-at-all"})).status_code == 401
    assert (await client.get(path, headers={"Authorization": f"Basic {ANALYST}"})).status_code == 401
    assert (await client.get(path, headers={"Authorization": f"Bearer {ANALYST}"})).status_code == 200
    assert (await client.get(path, headers={"Authorization": f"Bearer {ADMIN}"})).status_code == 200


async def test_analyst_cannot_write_admin_can(writable_client: httpx.AsyncClient) -> None:
    client = writable_client
    analyst = {"Authorization": f"Bearer {ANALYST}"}
    admin = {"Authorization": f"Bearer {ADMIN}"}
    body = {"timezone": "Asia/Kolkata"}
    assert (await client.put("/api/v1/sites/site-c", json=body, headers={"Authorization": ""})).status_code == 401
    assert (await client.put("/api/v1/sites/site-c", json=body, headers=analyst)).status_code == 403
    assert (await client.post("/api/v1/retention/run", headers=analyst)).status_code == 403
    sites = (await client.get("/api/v1/sites")).json()
    assert [s["site_id"] for s in sites] == ["site-a"]  # the analyst's PUT changed nothing
    response = await client.put("/api/v1/sites/site-c", json=body, headers=admin)
    assert response.status_code == 200
    assert response.json()["timezone"] == "Asia/Kolkata"
    bad = await client.put("/api/v1/sites/site-c", json={"timezone": "Mars/Olympus"}, headers=admin)
    assert bad.status_code == 422 and "IANA" in bad.json()["detail"]
    sites = (await client.get("/api/v1/sites")).json()
    assert [(s["site_id"], s["timezone"]) for s in sites] == [("site-a", "Europe/Berlin"), ("site-c", "Asia/Kolkata")]


async def test_admin_runs_retention_and_recent_data_is_kept(writable_client: httpx.AsyncClient) -> None:
    client = writable_client
    response = await client.post("/api/v1/retention/run", headers={"Authorization": f"Bearer {ADMIN}"})
    assert response.status_code == 200
    # The app under test keeps 3650 days: the January 2026 seed is younger, nothing is purged.
    assert {k: response.json()[k] for k in ("person_events", "frames", "rollup_rows", "incidents")} == dict.fromkeys(
        ("person_events", "frames", "rollup_rows", "incidents"), 0
    )


async def test_csv_export_content(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/api/v1/export/events.csv",
        params={"site_id": "site-b", "start": "2026-01-01T00:00:00Z", "end": "2026-02-01T00:00:00Z"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows == [
        [
            "frame_id", "captured_at", "site_id", "zone_id", "camera_id", "person_index", "outcome",
            "person_confidence", "head_cover", "head_cover_confidence", "face_cover", "face_cover_confidence",
            "hand_cover", "hand_cover_confidence", "hi_vis_vest", "hi_vis_vest_confidence",
        ],
        # F4 p0 covered head: min(detection 95, covers 93); p1 bare head: the head part itself, 97
        ["F4", "2026-01-05T23:10:00+00:00", "site-b", "zone-9", "cam-9", "0", "with", "99.0", "with", "93.0",
         "", "", "", "", "", ""],
        ["F4", "2026-01-05T23:10:00+00:00", "site-b", "zone-9", "cam-9", "1", "without", "99.0", "without", "97.0",
         "", "", "", "", "", ""],
        ["F5", "2026-01-12T10:00:00+00:00", "site-b", "zone-9", "cam-9", "0", "without", "99.0", "without", "97.0",
         "", "", "", "", "", ""],
    ]  # fmt: skip


async def test_csv_export_streams_many_chunks(client: httpx.AsyncClient) -> None:
    # All 11 seeded persons, in capture order; the stream is consumed chunk by chunk.
    lines: list[str] = []
    async with client.stream("GET", "/api/v1/export/events.csv", params={"start": "2026-01-01T00:00:00Z"}) as resp:
        async for line in resp.aiter_lines():
            lines.append(line)
    frame_ids = [line.split(",")[0] for line in lines[1:] if line]
    assert frame_ids == ["F1"] * 3 + ["F2", "F4", "F4"] + ["F3"] * 3 + ["F5"]


async def test_openapi_describes_every_field(client: httpx.AsyncClient) -> None:
    schema: dict[str, Any] = (await client.get("/openapi.json")).json()
    missing = [
        f"{name}.{field}"
        for name, component in schema["components"]["schemas"].items()
        if not name.startswith(("HTTPValidationError", "ValidationError"))
        for field, spec in component.get("properties", {}).items()
        if not spec.get("description")
    ]
    assert missing == []
    parameters = [
        (path, parameter["name"])
        for path, methods in schema["paths"].items()
        for method in methods.values()
        for parameter in method.get("parameters", [])
        if not parameter.get("description")
    ]
    assert parameters == []


async def test_health_and_dashboard_need_no_token(client: httpx.AsyncClient) -> None:
    bare = {"Authorization": ""}
    assert (await client.get("/healthz", headers=bare)).json() == {"status": "ok"}
    assert (await client.get("/readyz", headers=bare)).status_code == 200
    page = await client.get("/", headers=bare)
    assert page.status_code == 200 and "trend-chart" in page.text
    vendored = await client.get("/static/vendor/chart.umd.min.js", headers=bare)
    assert vendored.status_code == 200 and "Chart.js v4.6.1" in vendored.text[:200]
    assert "python_gc_objects_collected_total" in (await client.get("/metrics", headers=bare)).text
