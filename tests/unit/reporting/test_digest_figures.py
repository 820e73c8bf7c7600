"""The digest's periods in a site's time zone, durations and their wording (no I/O)."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.reporting.digest import render
from services.reporting.digest.figures import (
    Compliance,
    Digest,
    Durations,
    IncidentRow,
    Period,
    duration,
    incident_figures,
    latest_end_day,
    window,
)

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("period", "end_day", "start", "hours"),
    [
        (Period.DAILY, date(2026, 3, 3), datetime(2026, 3, 1, 23, tzinfo=UTC), 24),
        (Period.WEEKLY, date(2026, 3, 9), datetime(2026, 3, 1, 23, tzinfo=UTC), 168),
        (Period.DAILY, date(2026, 3, 30), datetime(2026, 3, 28, 23, tzinfo=UTC), 23),  # summer time starts
        (Period.WEEKLY, date(2026, 10, 26), datetime(2026, 10, 18, 22, tzinfo=UTC), 169),  # and ends
    ],
)
def test_a_period_is_whole_local_days(period: Period, end_day: date, start: datetime, hours: int) -> None:
    span = window(period, site_id="s", timezone="Europe/Berlin", end_day=end_day)
    assert span.start == start
    assert span.end - span.start == timedelta(hours=hours)
    assert span.last_day == end_day - timedelta(days=1)


@pytest.mark.parametrize(
    ("period", "now_local", "end_day"),
    [
        (Period.DAILY, datetime(2026, 3, 4, 5, 59), date(2026, 3, 3)),  # before the ready hour: the day before
        (Period.DAILY, datetime(2026, 3, 4, 6, 0), date(2026, 3, 4)),
        (Period.WEEKLY, datetime(2026, 3, 9, 5, 0), date(2026, 3, 2)),  # Monday early: the week before last
        (Period.WEEKLY, datetime(2026, 3, 9, 6, 0), date(2026, 3, 9)),
        (Period.WEEKLY, datetime(2026, 3, 15, 23, 0), date(2026, 3, 9)),  # Sunday: the week that ended Monday
    ],
)
def test_the_latest_complete_period(period: Period, now_local: datetime, end_day: date) -> None:
    now = now_local.replace(tzinfo=BERLIN).astimezone(UTC)
    assert latest_end_day(period, now=now, timezone="Europe/Berlin", ready_hour=6) == end_day


def test_durations_median_and_nearest_rank_p90() -> None:
    assert Durations.of([]) == Durations(0, None, None)
    assert Durations.of([30.0, 10.0]) == Durations(2, 20.0, 30.0)
    assert Durations.of([float(s) for s in range(1, 11)]) == Durations(10, 5.5, 9.0)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "n/a"), (0.4, "0 s"), (59, "59 s"), (60, "1 min 00 s"), (3599, "59 min 59 s"), (3600, "1 h 00 min"),
     (90061, "1 d 01 h")],
)
def test_duration_wording(seconds: float | None, text: str) -> None:
    assert duration(seconds) == text


def test_false_positives_have_nothing_to_correct_and_count_in_precision() -> None:
    t0 = datetime(2026, 3, 2, 8, tzinfo=UTC)
    rows = [
        IncidentRow("c1", "warning", "resolved", t0, t0 + timedelta(seconds=30), t0 + timedelta(seconds=300), None),
        IncidentRow("c1", "warning", "resolved", t0, None, t0 + timedelta(seconds=60), "false_positive"),
        IncidentRow("c2", "critical", "open", t0, t0 - timedelta(seconds=5), None, "confirmed"),  # clock skew: 0
    ]
    found = incident_figures(rows, site_id="s")
    assert found.to_correct == Durations(1, 300.0, 300.0)
    assert found.to_acknowledge == Durations(2, 15.0, 30.0)
    assert (found.precision.reviewed, found.precision.confirmed, found.precision.precision) == (2, 1, 0.5)
    assert found.by_severity == {"critical": 1, "warning": 2}
    assert (found.still_open, found.unacknowledged) == (1, 1)


def test_names_print_as_given_in_both_renderings() -> None:
    # GIVEN zone names with a dollar sign (matplotlib's mathtext), markup and letters outside Latin-1
    span = window(Period.DAILY, site_id="Werk Süd <1>", timezone="Europe/Berlin", end_day=date(2026, 3, 3))
    zones = [Compliance("$price$ zone", 3, 1, 0), Compliance("Łódź <b>", 1, 1, 1)]
    digest = Digest(span, Compliance("all", 4, 2, 1), zones, [], [], {}, [], incident_figures([], site_id="s"),
                    datetime(2026, 3, 3, 7, tzinfo=UTC))
    # WHEN rendered THEN nothing breaks, the PDF is a PDF and the HTML escapes the names
    assert render.pdf(digest).startswith(b"%PDF")
    page = render.html(digest)
    assert "Łódź &lt;b&gt;" in page and "Werk Süd &lt;1&gt;" in page and "<b>" not in page
