"""Polygon checks for zones drawn by people: no crossing edges, a real area. No I/O, no dependencies."""

from collections.abc import Sequence

Point = tuple[float, float]
MIN_AREA = 1e-6  # of the image (1.0): smaller is a slip of the mouse, not a zone


def _orientation(a: Point, b: Point, c: Point) -> float:
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def _on_segment(a: Point, b: Point, p: Point) -> bool:
    return min(a[0], b[0]) <= p[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= p[1] <= max(a[1], b[1])


def segments_touch(a: Point, b: Point, c: Point, d: Point) -> bool:
    """True when segment ab and segment cd share a point (crossing, touching or overlapping)."""
    o1, o2, o3, o4 = _orientation(a, b, c), _orientation(a, b, d), _orientation(c, d, a), _orientation(c, d, b)
    if ((o1 > 0 > o2) or (o1 < 0 < o2)) and ((o3 > 0 > o4) or (o3 < 0 < o4)):
        return True
    return (
        (o1 == 0 and _on_segment(a, b, c))
        or (o2 == 0 and _on_segment(a, b, d))
        or (o3 == 0 and _on_segment(c, d, a))
        or (o4 == 0 and _on_segment(c, d, b))
    )


def area(points: Sequence[Point]) -> float:
    """Unsigned area (shoelace)."""
    count = len(points)
    twice = sum(
        points[i][0] * points[(i + 1) % count][1] - points[(i + 1) % count][0] * points[i][1] for i in range(count)
    )
    return abs(twice) / 2


def polygon_problem(points: Sequence[Point]) -> str | None:
    """Why `points` (closed implicitly) is not a simple polygon, or None when it is.

    Edges are numbered from 1: edge i runs from vertex i to vertex i + 1 (the last one back to vertex 1).
    """
    count = len(points)
    if count < 3:
        return f"a zone needs at least 3 points, got {count}"
    if len(set(points)) != count:
        return "two vertices are the same point: remove the repeated click"
    edges = [(points[i], points[(i + 1) % count]) for i in range(count)]
    for i in range(count):
        for j in range(i + 1, count):
            if j == i + 1 or (i == 0 and j == count - 1):
                continue  # neighbours share a vertex by construction
            if segments_touch(*edges[i], *edges[j]):
                return (
                    f"edges {i + 1} and {j + 1} cross: the polygon intersects itself; redraw it without crossing lines"
                )
    if area(points) < MIN_AREA:
        return "the polygon has no area (its points lie on one line)"
    return None
