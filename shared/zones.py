"""Which zone of a camera a person stands in: the first zone whose polygon holds the person's foot point.

The foot point is the bottom centre of the person's box (where they touch the floor), clamped into the image.
A point on a polygon's edge or vertex is inside. Zones may overlap: the first one listed wins, so list the most
specific zone (a hazard area inside a walkway) first. No I/O.
"""

from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from shared.contracts import Zone, ZoneLayout, ZonePoint
from shared.rekognition import BoundingBox

EDGE_TOLERANCE = 1e-9


def foot_point(box: BoundingBox) -> tuple[float, float]:
    x = box.Left + box.Width / 2
    y = box.Top + box.Height
    return min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)


def _on_segment(px: float, py: float, a: ZonePoint, b: ZonePoint) -> bool:
    cross = (b.x - a.x) * (py - a.y) - (b.y - a.y) * (px - a.x)
    if abs(cross) > EDGE_TOLERANCE:
        return False
    return (
        min(a.x, b.x) - EDGE_TOLERANCE <= px <= max(a.x, b.x) + EDGE_TOLERANCE
        and min(a.y, b.y) - EDGE_TOLERANCE <= py <= max(a.y, b.y) + EDGE_TOLERANCE
    )


def contains(polygon: Sequence[ZonePoint], x: float, y: float) -> bool:
    """Point in polygon (even-odd ray casting); points on an edge count as inside."""
    inside = False
    count = len(polygon)
    for i in range(count):
        a, b = polygon[i], polygon[(i + 1) % count]
        if _on_segment(x, y, a, b):
            return True
        if (a.y > y) != (b.y > y):
            crossing = a.x + (y - a.y) * (b.x - a.x) / (b.y - a.y)
            if x < crossing:
                inside = not inside
    return inside


def zone_of(box: BoundingBox, layout: ZoneLayout) -> Zone | None:
    """The first zone holding the foot point of `box`, else None (outside every zone)."""
    x, y = foot_point(box)
    return next((zone for zone in layout.zones if contains(zone.polygon, x, y)), None)


def within_hours(at: datetime, start: time | None, end: time | None, timezone: str) -> bool:
    """Active hours in local time, end exclusive; may span midnight (22:00-06:00). None = always."""
    if start is None or end is None:
        return True
    local = at.astimezone(ZoneInfo(timezone)).time()
    if start <= end:
        return start <= local < end
    return local >= start or local < end
