"""Custom equipment (hi_vis_vest) and polygon zones in reporting: stored per person, aggregated per equipment
type and zone through the rollup, exported in the CSV; an unknown equipment type is a 422. Real PostgreSQL."""

import csv
import io
from datetime import UTC, datetime, timedelta

from services.reporting.adapters.repository import ReportingRepository
from services.reporting.domain import frame_record
from shared.contracts import Zone, ZoneLayout, ZonePoint
from tests.integration.reporting.conftest import app_client
from tests.unit.notifier.builders import frame_analyzed, person

T = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
RANGE = {"start": "2026-03-01T00:00:00Z", "end": "2026-03-03T00:00:00Z", "site_id": "site-1"}


def half(x0: float, x1: float) -> list[ZonePoint]:
    return [ZonePoint(x=x0, y=0), ZonePoint(x=x1, y=0), ZonePoint(x=x1, y=1), ZonePoint(x=x0, y=1)]


LAYOUT = ZoneLayout(
    zones=[
        Zone(zone_id="hazard", polygon=half(0, 0.5), required_equipment=["HEAD_COVER", "hi_vis_vest"]),
        Zone(zone_id="walkway", polygon=half(0.5, 1), required_equipment=[]),
    ]
)


async def test_vest_violations_by_equipment_type_zone_and_csv(repository: ReportingRepository) -> None:
    # GIVEN three frames of a camera with a hazard zone requiring hard hat + vest and a walkway requiring nothing:
    # in the hazard zone one worker without vest (hat on) in frames 0 and 1, with a vest in frame 2;
    # in the walkway a worker without vest or hat in every frame
    for i, vest in enumerate([False, False, True]):
        frame = frame_analyzed(
            f"cv-{i}",
            at=T + timedelta(seconds=i),
            persons=[person(0, left=0.1), person(1, left=0.6, hard_hat=False)],
            vests={0: vest, 1: False},
            zones=LAYOUT,
        )
        assert await repository.ingest_frame(frame_record(frame))
    async with app_client(repository) as http:
        # WHEN an analyst asks for the breakdown by equipment type
        by_type = (await http.get("/api/v1/compliance/breakdown", params={**RANGE, "by": "equipment_type"})).json()
        # THEN the vest shows 2 violations and 1 compliant observation beside the hard hat's 3 compliant ones
        rows = {r["equipment_type"]: (r["persons_with"], r["persons_without"]) for r in by_type["rows"]}
        assert rows == {"HEAD_COVER": (3, 0), "hi_vis_vest": (1, 2)}
        # ... the zones are the polygon zones, and the walkway worker counts as compliant (nothing required)
        by_zone = (await http.get("/api/v1/compliance/breakdown", params={**RANGE, "by": "zone"})).json()
        assert {r["zone_id"]: (r["persons_with"], r["persons_without"]) for r in by_zone["rows"]} == {
            "hazard": (1, 2),
            "walkway": (3, 0),
        }
        trend = (
            await http.get(
                "/api/v1/compliance/trend", params={**RANGE, "bucket": "day", "equipment_type": "hi_vis_vest"}
            )
        ).json()
        assert [(p["persons_with"], p["persons_without"]) for p in trend["points"]] == [(1, 2)]
        unknown = await http.get("/api/v1/compliance/trend", params={**RANGE, "equipment_type": "HARD_HAT"})
        assert unknown.status_code == 422 and "unknown equipment ['HARD_HAT']" in unknown.text
        exported = (await http.get("/api/v1/export/events.csv", params=RANGE)).text
    table = list(csv.DictReader(io.StringIO(exported)))
    columns = ("frame_id", "zone_id", "outcome", "hi_vis_vest", "hi_vis_vest_confidence")
    assert [tuple(r[c] for c in columns) for r in table] == [
        ("cv-0", "hazard", "without", "without", "92.0"),
        ("cv-0", "walkway", "with", "", ""),
        ("cv-1", "hazard", "without", "without", "92.0"),
        ("cv-1", "walkway", "with", "", ""),
        ("cv-2", "hazard", "with", "with", "92.0"),
        ("cv-2", "walkway", "with", "", ""),
    ]
