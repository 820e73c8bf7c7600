"""Exposure-weighted compliance: each frame weighted by the time to the camera's next frame (capped); a gap
longer than the cap is camera time not observed, never compliant. Real PostgreSQL, expectations by hand."""

from datetime import UTC, datetime, timedelta

import pytest

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.domain import frame_record
from tests.integration.reporting.conftest import app_client
from tests.unit.notifier.builders import frame_analyzed, person

T = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)
RANGE = {"start": "2026-04-01T10:00:00Z", "end": "2026-04-01T10:15:00Z", "site_id": "site-1"}


async def test_person_minutes_weighted_by_time_to_next_frame(repository: ReportingRepository) -> None:
    # GIVEN one worker (hard hat on) filmed at t = 0, 1, 2 s without a vest, then, after a 58 s gap, at
    # t = 60, 61 s with a vest; the camera requires HEAD_COVER + hi_vis_vest; the cap is 10 s (the app's default)
    for i, (second, vest) in enumerate([(0, False), (1, False), (2, False), (60, True), (61, True)]):
        frame = frame_analyzed(
            f"x-{i}", at=T + timedelta(seconds=second), persons=[person(0)], vests={0: vest},
            custom_equipment=("hi_vis_vest",),
        )
        assert await repository.ingest_frame(frame_record(frame))
    async with app_client(repository) as http:
        # WHEN an analyst asks for exposure by site and by equipment type
        site = (await http.get("/api/v1/compliance/exposure", params=RANGE)).json()
        kinds = (await http.get("/api/v1/compliance/exposure", params={**RANGE, "by": "equipment_type"})).json()
    # THEN weights are 1, 1, min(58, 10), 1, min(rest of range, 10) seconds: 12 s in violation, 11 s compliant
    [row] = site["rows"]
    assert row["site_id"] == "site-1"
    assert row["person_minutes_without"] == pytest.approx(12 / 60, abs=1e-4)
    assert row["person_minutes_with"] == pytest.approx(11 / 60, abs=1e-4)
    assert row["person_minutes_observed"] == pytest.approx(23 / 60, abs=1e-4)
    assert row["exposure_compliance_rate"] == pytest.approx(11 / 23)
    assert row["per_frame_compliance_rate"] == pytest.approx(2 / 5)
    # AND the camera was observed 23 s of the 15-minute range; the rest is "not observed", not compliant
    assert site["coverage"] == [
        {"site_id": "site-1", "camera_id": "cam-1", "frames": 5, "minutes_observed": pytest.approx(23 / 60, abs=1e-4),
         "minutes_not_observed": pytest.approx(877 / 60, abs=1e-4)}
    ]  # fmt: skip
    by_type = {r["equipment_type"]: (r["person_minutes_with"], r["person_minutes_without"]) for r in kinds["rows"]}
    assert by_type == {
        "HEAD_COVER": (pytest.approx(23 / 60, abs=1e-4), 0.0),
        "hi_vis_vest": (pytest.approx(11 / 60, abs=1e-4), pytest.approx(12 / 60, abs=1e-4)),
    }
