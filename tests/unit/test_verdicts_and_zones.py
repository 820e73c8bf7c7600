"""The one verdict function (shared.equipment / shared.verdicts) and zone assignment (shared.zones).

Table-driven: custom equipment outcomes from the labels attached to a person, the Summary rules for
Rekognition's types unchanged, zones by foot point (edges inside, the first listed zone wins), persons outside
every zone judged by the default or ignored, unknown equipment refused.
"""

from datetime import UTC, datetime, time

import pytest

from shared.contracts import Zone, ZoneLayout, ZonePoint
from shared.equipment import (
    Catalogue,
    CustomEquipment,
    PersonLabel,
    UnknownEquipment,
    default_custom_equipment,
    judge_person,
)
from shared.rekognition import BoundingBox, person_verdict
from shared.verdicts import Requirement, camera_requirement, judge_frame
from shared.zones import contains, foot_point, zone_of
from tests.unit.notifier.builders import frame_analyzed, person

CATALOGUE = Catalogue(default_custom_equipment())
VEST = "hi_vis_vest"


def square(x0: float, y0: float, x1: float, y1: float) -> list[ZonePoint]:
    return [ZonePoint(x=x0, y=y0), ZonePoint(x=x1, y=y0), ZonePoint(x=x1, y=y1), ZonePoint(x=x0, y=y1)]


@pytest.mark.parametrize(
    ("hard_hat", "labels", "required", "expected", "missing"),
    [
        (True, [PersonLabel("hi_vis_vest", 91.0)], [VEST], "with", ()),
        (True, [PersonLabel("no_hi_vis_vest", 91.0)], [VEST], "without", (VEST,)),
        (True, [], [VEST], "indeterminate", ()),  # the model judged nobody: unknown, not a violation
        (True, [PersonLabel("no_hi_vis_vest", 60.0)], [VEST], "indeterminate", ()),  # below MinConfidence 80
        (True, [PersonLabel("no_hi_vis_vest", 91.0)], ["HEAD_COVER", VEST], "without", (VEST,)),
        (False, [PersonLabel("no_hi_vis_vest", 91.0)], ["HEAD_COVER", VEST], "without", ("HEAD_COVER", VEST)),
        (False, [PersonLabel("hi_vis_vest", 91.0)], ["HEAD_COVER", VEST], "without", ("HEAD_COVER",)),
        (None, [PersonLabel("no_hi_vis_vest", 91.0)], ["HEAD_COVER", VEST], "without", (VEST,)),  # violation wins
        (None, [PersonLabel("hi_vis_vest", 91.0)], ["HEAD_COVER", VEST], "indeterminate", ()),
        (False, [], [], "with", ()),  # nothing required
    ],
)
def test_custom_equipment_verdicts(
    hard_hat: bool | None, labels: list[PersonLabel], required: list[str], expected: str, missing: tuple[str, ...]
) -> None:
    someone = person(0, hard_hat=hard_hat)
    outcome = judge_person(someone, labels, required=required, min_confidence=80, catalogue=CATALOGUE)
    assert (outcome.verdict, outcome.missing) == (expected, missing)


@pytest.mark.parametrize("hard_hat", [True, False, None])
@pytest.mark.parametrize("min_confidence", [50.0, 80.0, 99.5])
def test_rekognition_types_keep_the_summary_rules(hard_hat: bool | None, min_confidence: float) -> None:
    someone = person(0, hard_hat=hard_hat, head_confidence=90.0)
    outcome = judge_person(someone, [], required=["HEAD_COVER"], min_confidence=min_confidence, catalogue=CATALOGUE)
    assert outcome.verdict == person_verdict(someone, ["HEAD_COVER"], min_confidence)


def test_a_finder_model_without_absent_labels_means_without_when_nothing_is_found() -> None:
    catalogue = Catalogue({"goggles": CustomEquipment(present=["goggles"])})
    none_found = judge_person(person(0), [], required=["goggles"], min_confidence=80, catalogue=catalogue)
    seen = [PersonLabel("goggles", 88)]
    found = judge_person(person(0), seen, required=["goggles"], min_confidence=80, catalogue=catalogue)
    assert (none_found.verdict, found.verdict) == ("without", "with")


def test_unknown_equipment_is_refused_with_the_known_names() -> None:
    with pytest.raises(UnknownEquipment, match=r"unknown equipment \['HARD_HAT'\]; known: .*'hi_vis_vest'"):
        CATALOGUE.check(["HEAD_COVER", "HARD_HAT"])


@pytest.mark.parametrize(
    ("point", "inside"),
    [
        ((0.5, 0.5), True),
        ((0.2, 0.5), True),  # on the left edge
        ((0.2, 0.2), True),  # on a vertex
        ((0.8, 0.8), True),  # on the opposite vertex
        ((0.5, 0.8), True),  # on the bottom edge
        ((0.19, 0.5), False),
        ((0.5, 0.81), False),
    ],
)
def test_point_in_square_edges_are_inside(point: tuple[float, float], inside: bool) -> None:
    assert contains(square(0.2, 0.2, 0.8, 0.8), *point) is inside


def test_concave_polygon() -> None:
    ell = [ZonePoint(x=x, y=y) for x, y in [(0, 0), (0.6, 0), (0.6, 0.4), (0.3, 0.4), (0.3, 1), (0, 1)]]
    assert contains(ell, 0.1, 0.9) and contains(ell, 0.5, 0.1) and not contains(ell, 0.5, 0.9)


def test_foot_point_is_the_bottom_centre_clamped_into_the_image() -> None:
    assert foot_point(BoundingBox(Left=0.3, Top=0.2, Width=0.2, Height=0.6)) == pytest.approx((0.4, 0.8))
    assert foot_point(BoundingBox(Left=0.9, Top=0.5, Width=0.2, Height=0.6)) == (1.0, 1.0)


def test_overlapping_zones_the_first_listed_wins() -> None:
    hazard = Zone(zone_id="hazard", polygon=square(0.3, 0.6, 0.6, 0.9), required_equipment=["HEAD_COVER", VEST])
    walkway = Zone(zone_id="walkway", polygon=square(0.0, 0.5, 1.0, 1.0), required_equipment=[])
    feet_in_both = BoundingBox(Left=0.3, Top=0.2, Width=0.2, Height=0.6)  # foot point (0.4, 0.8)
    assert zone_of(feet_in_both, ZoneLayout(zones=[hazard, walkway])).zone_id == "hazard"  # type: ignore[union-attr]
    assert zone_of(feet_in_both, ZoneLayout(zones=[walkway, hazard])).zone_id == "walkway"  # type: ignore[union-attr]
    assert zone_of(BoundingBox(Left=0.3, Top=0.0, Width=0.2, Height=0.3), ZoneLayout(zones=[hazard, walkway])) is None


def test_judge_frame_uses_each_persons_zone_and_the_default_outside() -> None:
    # GIVEN a hazard zone requiring a vest, a parking lot requiring nothing, and a worker without vest in each
    # plus one standing outside both
    layout = ZoneLayout(
        zones=[
            Zone(zone_id="hazard", polygon=square(0.0, 0.5, 0.5, 1.0), required_equipment=[VEST]),
            Zone(zone_id="parking", polygon=square(0.5, 0.5, 1.0, 1.0), required_equipment=[]),
        ]
    )
    persons = [
        person(0, left=0.1, top=0.3, width=0.2, height=0.5),  # feet (0.2, 0.8): hazard
        person(1, left=0.6, top=0.3, width=0.2, height=0.5),  # feet (0.7, 0.8): parking
        person(2, left=0.4, top=0.0, width=0.2, height=0.3),  # feet (0.5, 0.3): outside
    ]
    frame = frame_analyzed("f", persons=persons, vests={0: False, 1: False, 2: False}, zones=layout)
    # WHEN judged with the camera's rule (hard hat) as the default
    judged = judge_frame(frame, default=camera_requirement(frame), catalogue=CATALOGUE)
    # THEN the hazard worker misses the vest, the parking one is fine, the outsider follows the camera's rule
    assert [(j.person.Id, j.zone_id, j.outcome.verdict, j.outcome.missing) for j in judged] == [
        (0, "hazard", "without", (VEST,)),
        (1, "parking", "with", ()),
        (2, "zone-1", "with", ()),  # has a hard hat; the camera does not require a vest
    ]
    ignoring = frame.model_copy(update={"zones": layout.model_copy(update={"outside": "ignore"})})
    kept = judge_frame(ignoring, default=camera_requirement(frame), catalogue=CATALOGUE)
    assert [j.person.Id for j in kept] == [0, 1]


def test_zone_active_hours_and_min_confidence() -> None:
    zone = Zone(
        zone_id="night-yard",
        polygon=square(0, 0, 1, 1),
        required_equipment=[VEST],
        min_confidence=95,
        active_from=time(22),
        active_to=time(6),
        timezone="Europe/Berlin",
    )
    frame = frame_analyzed("f", persons=[person(0)], vests={0: False}, zones=ZoneLayout(zones=[zone]))
    default = Requirement(("HEAD_COVER",), 80.0)
    day = judge_frame(frame, default=default, catalogue=CATALOGUE, at=datetime(2026, 11, 26, 12, tzinfo=UTC))
    night = judge_frame(frame, default=default, catalogue=CATALOGUE, at=datetime(2026, 11, 26, 22, tzinfo=UTC))
    assert (day[0].requirement.active, night[0].requirement.active) == (False, True)
    assert night[0].outcome.verdict == "indeterminate"  # the vest label (92) is under the zone's MinConfidence 95


def test_zone_layout_refuses_duplicate_ids_and_half_hours() -> None:
    with pytest.raises(ValueError, match="unique"):
        ZoneLayout(zones=[Zone(zone_id="a", polygon=square(0, 0, 1, 1))] * 2)
    with pytest.raises(ValueError, match="both active_from and active_to"):
        Zone(zone_id="a", polygon=square(0, 0, 1, 1), active_from=time(8))


def pts(*coords: float) -> list[ZonePoint]:
    return [ZonePoint(x=coords[i], y=coords[i + 1]) for i in range(0, len(coords), 2)]


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        (pts(0.1, 0.1, 0.9, 0.1), "at least 3"),  # too few points (the schema's min_length says so too)
        (pts(0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.9), "edges 1 and 3 cross"),  # a bow tie
        (pts(0.1, 0.1, 0.5, 0.5, 0.9, 0.9), "no area"),  # collinear
        (pts(0.1, 0.1, 0.9, 0.1, 0.9, 0.9, 0.9, 0.1), "same point"),  # a repeated click
        (pts(0.1, 0.1, 0.9, 0.1, 0.5, 0.9, 0.5, 0.1, 0.3, 0.5), "intersects itself"),  # an edge touching a vertex
    ],
)
def test_zone_refuses_polygons_that_are_not_simple(polygon: list[ZonePoint], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Zone(zone_id="bad", polygon=polygon)


def test_zone_accepts_concave_and_edge_touching_image_borders() -> None:
    Zone(zone_id="l-shape", polygon=pts(0, 0, 1, 0, 1, 0.3, 0.3, 0.3, 0.3, 1, 0, 1))
    Zone(zone_id="triangle", polygon=pts(0, 1, 0.5, 0, 1, 1))


def test_a_foot_point_on_a_zone_edge_is_inside_and_a_shared_edge_goes_to_the_first_listed() -> None:
    # GIVEN two zones that share the edge x = 0.5, both reaching the bottom of the image
    left = Zone(zone_id="left", polygon=square(0.0, 0.5, 0.5, 1.0), required_equipment=[VEST])
    right = Zone(zone_id="right", polygon=square(0.5, 0.5, 1.0, 1.0), required_equipment=[])
    on_shared_edge = BoundingBox(Left=0.4, Top=0.3, Width=0.2, Height=0.5)  # foot point (0.5, 0.8)
    on_top_edge = BoundingBox(Left=0.6, Top=0.1, Width=0.2, Height=0.4)  # foot point (0.7, 0.5)
    below_the_image = BoundingBox(Left=0.1, Top=0.7, Width=0.2, Height=0.5)  # foot point clamped to (0.2, 1.0)
    # THEN a foot point on an edge is inside; on the shared edge the first listed zone wins, whichever it is
    assert zone_of(on_shared_edge, ZoneLayout(zones=[left, right])).zone_id == "left"  # type: ignore[union-attr]
    assert zone_of(on_shared_edge, ZoneLayout(zones=[right, left])).zone_id == "right"  # type: ignore[union-attr]
    assert zone_of(on_top_edge, ZoneLayout(zones=[left, right])).zone_id == "right"  # type: ignore[union-attr]
    assert zone_of(below_the_image, ZoneLayout(zones=[left, right])).zone_id == "left"  # type: ignore[union-attr]
