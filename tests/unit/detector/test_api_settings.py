"""DETECTOR_API_KEYS / DETECTOR_API_S3_OBJECTS parsing, the keys `make run` generates, and loopback defaults."""

from pathlib import Path

import pytest

from services.detector.config import DetectorSettings, parse_api_keys
from shared.local_secrets import load_or_create_secrets

SECRET = "s" * 24


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {}),
        (f"PPEKEY0001:{SECRET}", {"PPEKEY0001": SECRET}),
        (f"PPEKEY0001:{SECRET}, PPEKEY0002:{SECRET}x", {"PPEKEY0001": SECRET, "PPEKEY0002": SECRET + "x"}),
    ],
)
def test_key_pairs_parse(text: str, expected: dict[str, str]) -> None:
    assert parse_api_keys(text) == expected


@pytest.mark.parametrize(
    "text",
    [f"nocolon{SECRET}", f"short:{SECRET}", "PPEKEY0001:changeme", f"PPE KEY 1:{SECRET}",
     f"PPEKEY0001:{SECRET},PPEKEY0001:{SECRET}"],
)
def test_bad_key_pairs_stop_start_up_without_echoing_the_secret(text: str) -> None:
    with pytest.raises(ValueError, match="DETECTOR_API_KEYS") as caught:
        DetectorSettings(api_keys=text)
    assert SECRET not in str(caught.value)


def test_s3_objects_allow_only_their_bucket_and_prefix() -> None:
    settings = DetectorSettings(api_s3_objects="frames/uploads/, other/")
    assert settings.api_s3_allowed("frames", "uploads/a.jpg")
    assert not settings.api_s3_allowed("frames", "frames/site/cam/a.jpg")
    assert not settings.api_s3_allowed("frames-2", "uploads/a.jpg")
    assert settings.api_s3_allowed("other", "anything")
    assert not DetectorSettings().api_s3_allowed("frames", "uploads/a.jpg")  # default: no S3Object at all


def test_make_run_generates_a_usable_api_key_pair(tmp_path: Path) -> None:
    values = load_or_create_secrets(tmp_path / "secrets.env")
    keys = DetectorSettings(api_keys=values["DETECTOR_API_KEYS"]).api_credentials()
    assert len(keys) == 1
    assert load_or_create_secrets(tmp_path / "secrets.env") == values  # kept across starts


def test_every_service_binds_loopback_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from services.detector.config import DetectorSettings as Detector
    from services.ingest.config import IngestSettings
    from services.notifier.config import NotifierSettings
    from services.reporting.config import ReportingSettings

    for cls in (Detector, IngestSettings, NotifierSettings, ReportingSettings):
        assert cls.model_fields["host"].default == "127.0.0.1", cls.__name__
