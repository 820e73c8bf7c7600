"""Reporting's rules without I/O: per-type outcomes, rollup counts, ranges, cursors, settings."""

from datetime import UTC, datetime, timedelta

import pytest

from services.reporting.adapters.repository import decode_cursor, encode_cursor
from services.reporting.config import ReportingSettings
from services.reporting.domain import (
    ALL_TYPES,
    Bucket,
    InvalidQuery,
    check_range,
    compliance_rate,
    frame_record,
    rollup_bucket,
    rollup_counts,
    type_outcome,
    widen_to_rollup,
)
from shared.rekognition import person_verdict
from tests.integration.reporting.builders import FACE, HANDS, HEAD, frame_analyzed, person


@pytest.mark.parametrize(
    ("worn", "equipment", "expected"),
    [
        ({"head": True}, HEAD, ("with", 93.0)),  # min(detection 95, covers 93)
        ({"head": False}, HEAD, ("without", 97.0)),  # the bare head part
        ({}, HEAD, ("indeterminate", 0.0)),  # head not visible
        ({"hands": True}, HANDS, ("with", 93.0)),
        ({"hands": False}, HANDS, ("without", 97.0)),
        ({"head": True}, FACE, ("indeterminate", 0.0)),
    ],
)
def test_type_outcome(worn: dict[str, bool], equipment: object, expected: tuple[str, float]) -> None:
    result = type_outcome(person(0, **worn), equipment, 80.0)  # type: ignore[arg-type]
    assert (result.outcome, result.confidence) == expected


def test_unconfident_person_is_indeterminate_for_every_type() -> None:
    result = type_outcome(person(0, confidence=60.0, head=True), HEAD, 80.0)
    assert result.outcome == "indeterminate"


def test_person_outcome_matches_the_rekognition_summary_rules() -> None:
    persons = [person(0, head=True, face=True), person(1, head=False, face=None), person(2, head=True, face=None)]
    payload = frame_analyzed("f", captured_at=datetime(2026, 1, 1, tzinfo=UTC), persons=persons)
    record = frame_record(payload)
    assert [p.outcome for p in record.persons] == ["with", "without", "indeterminate"]
    assert [p.outcome for p in record.persons] == [person_verdict(p, (HEAD, FACE), 80.0) for p in persons]
    assert record.required_types == (HEAD, FACE)


def test_rollup_counts_per_type_and_all() -> None:
    payload = frame_analyzed(
        "f",
        captured_at=datetime(2026, 1, 1, 10, 29, 59, tzinfo=UTC),
        persons=[person(0, head=True, face=True), person(1, head=False, face=True)],
    )
    counts = rollup_counts(frame_record(payload))
    bucket = datetime(2026, 1, 1, 10, 15, tzinfo=UTC)
    assert counts == {
        (bucket, "site-a", "zone-1", "cam-1", ALL_TYPES): {"with": 1, "without": 1, "indeterminate": 0},
        (bucket, "site-a", "zone-1", "cam-1", "FACE_COVER"): {"with": 2, "without": 0, "indeterminate": 0},
        (bucket, "site-a", "zone-1", "cam-1", "HEAD_COVER"): {"with": 1, "without": 1, "indeterminate": 0},
    }


@pytest.mark.parametrize(
    ("moment", "bucket"),
    [
        (datetime(2026, 1, 1, 10, 0, tzinfo=UTC), datetime(2026, 1, 1, 10, 0, tzinfo=UTC)),
        (datetime(2026, 1, 1, 10, 14, 59, 999, tzinfo=UTC), datetime(2026, 1, 1, 10, 0, tzinfo=UTC)),
        (datetime(2026, 1, 1, 10, 45, 1, tzinfo=UTC), datetime(2026, 1, 1, 10, 45, tzinfo=UTC)),
    ],
)
def test_rollup_bucket(moment: datetime, bucket: datetime) -> None:
    assert rollup_bucket(moment) == bucket


def test_compliance_rate_leaves_indeterminate_out() -> None:
    assert compliance_rate(3, 1) == 0.75
    assert compliance_rate(0, 0) is None


@pytest.mark.parametrize(
    ("start", "end", "bucket", "message"),
    [
        (datetime(2026, 1, 2, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), None, "after start"),
        (datetime(2026, 1, 1), datetime(2026, 1, 2), None, "UTC offset"),
        (datetime(2020, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC), Bucket.HOUR, "coarser bucket"),
    ],
)
def test_check_range_refuses(start: datetime, end: datetime, bucket: Bucket | None, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message):
        check_range(start, end, bucket=bucket)


def test_cursor_round_trip_and_garbage() -> None:
    moment = datetime(2026, 1, 1, 8, tzinfo=UTC) + timedelta(microseconds=5)
    assert decode_cursor(encode_cursor(moment, "inc-1")) == (moment, "inc-1")
    with pytest.raises(InvalidQuery, match="cursor"):
        decode_cursor("garbage!")


@pytest.mark.parametrize("value", ["changeme", "short", ""])
def test_placeholder_tokens_are_refused_naming_the_variable(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTING_ANALYST_TOKEN", value)
    monkeypatch.setenv("REPORTING_ADMIN_TOKEN", "admin-token-0123456789ab")
    with pytest.raises(ValueError, match="REPORTING_ANALYST_TOKEN"):
        ReportingSettings()  # type: ignore[call-arg]


def test_equal_tokens_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTING_ANALYST_TOKEN", "same-token-0123456789")
    monkeypatch.setenv("REPORTING_ADMIN_TOKEN", "same-token-0123456789")
    with pytest.raises(ValueError, match="must differ"):
        ReportingSettings()  # type: ignore[call-arg]


def test_tokens_are_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTING_ANALYST_TOKEN", "analyst-token-0123456789")
    monkeypatch.setenv("REPORTING_ADMIN_TOKEN", "admin-token-0123456789ab")
    assert "0123456789" not in repr(ReportingSettings())  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"REPORTING_INGEST_URL": "http://ingest:8080"}, "set both REPORTING_INGEST_URL"),
        ({"REPORTING_INGEST_ADMIN_TOKEN": "ingest-token-0123456789"}, "set both REPORTING_INGEST_URL"),
        ({"REPORTING_INGEST_URL": "http://ingest:8080", "REPORTING_INGEST_ADMIN_TOKEN": "changeme"},
         "REPORTING_INGEST_ADMIN_TOKEN"),
        ({"REPORTING_SNAPSHOTS_PREFIX": "frames/"}, "raw frames live there"),
        ({"REPORTING_NOTIFIER_URL": "http://notifier:8082"}, "set both REPORTING_NOTIFIER_URL"),
        ({"REPORTING_NOTIFIER_ADMIN_TOKEN": "notifier-token-0123456789"}, "set both REPORTING_NOTIFIER_URL"),
        ({"REPORTING_NOTIFIER_URL": "http://notifier:8082", "REPORTING_NOTIFIER_ADMIN_TOKEN": "changeme"},
         "REPORTING_NOTIFIER_ADMIN_TOKEN"),
    ],
)
def test_zone_editor_settings_fail_fast(
    variables: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REPORTING_ANALYST_TOKEN", "analyst-token-0123456789")
    monkeypatch.setenv("REPORTING_ADMIN_TOKEN", "admin-token-0123456789ab")
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=message):
        ReportingSettings()  # type: ignore[call-arg]


def test_zone_editor_token_is_not_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPORTING_ANALYST_TOKEN", "analyst-token-0123456789")
    monkeypatch.setenv("REPORTING_ADMIN_TOKEN", "admin-token-0123456789ab")
    monkeypatch.setenv("REPORTING_INGEST_URL", "http://ingest:8080")
    monkeypatch.setenv("REPORTING_INGEST_ADMIN_TOKEN", "ingest-token-secret-42")
    settings = ReportingSettings()  # type: ignore[call-arg]
    assert settings.ingest_admin_token == "ingest-token-secret-42" and "secret-42" not in repr(settings)


def test_ranges_widen_to_rollup_boundaries() -> None:
    t = lambda h, m, s=0: datetime(2026, 1, 1, h, m, s, tzinfo=UTC)  # noqa: E731
    assert widen_to_rollup(t(10, 7), t(11, 0)) == (t(10, 0), t(11, 0))
    assert widen_to_rollup(t(10, 0), t(11, 0, 1)) == (t(10, 0), t(11, 15))
