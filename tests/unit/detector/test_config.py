"""Detector settings: custom-label model selection per camera / site, fail-fast validation."""

import pytest
from pydantic import ValidationError

from services.detector.config import DetectorSettings

MODELS = (
    '{"vest": {"model_path": "services/detector/local_engine/weights/vest.onnx"}, "goggles": {"model_path": "g.onnx"}}'
)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> DetectorSettings:
    monkeypatch.setenv("DETECTOR_CUSTOM_LABEL_MODELS", MODELS)
    monkeypatch.setenv("DETECTOR_CUSTOM_LABEL_SITES", '{"*": ["vest"], "site-lab": ["vest", "goggles"], "cam-7": []}')
    return DetectorSettings()


@pytest.mark.parametrize(
    ("site_id", "camera_id", "expected"),
    [
        ("site-1", "cam-1", ["vest"]),  # default
        ("site-lab", "cam-1", ["vest", "goggles"]),  # the site's list
        ("site-lab", "cam-7", []),  # the camera's own list wins
    ],
)
def test_custom_labels_for(settings: DetectorSettings, site_id: str, camera_id: str, expected: list[str]) -> None:
    assert settings.custom_labels_for(site_id=site_id, camera_id=camera_id) == expected


def test_unknown_model_name_is_refused_with_the_variable_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTOR_CUSTOM_LABEL_MODELS", MODELS)
    monkeypatch.setenv("DETECTOR_CUSTOM_LABEL_SITES", '{"*": ["helmet"]}')
    with pytest.raises(ValidationError, match="DETECTOR_CUSTOM_LABEL_SITES"):
        DetectorSettings()


def test_unknown_engine_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DETECTOR_PPE_ENGINE", "yolo")
    with pytest.raises(ValidationError, match="ppe_engine"):
        DetectorSettings()


def test_defaults_need_no_environment() -> None:
    settings = DetectorSettings()
    assert (settings.port, settings.ppe_engine, settings.workers) == (8081, "local", 2)
    # the shipped vest classifier runs everywhere by default
    assert settings.custom_labels_for(site_id="any", camera_id="any") == ["vest"]
    assert settings.custom_label_models["vest"].model_path.name == "vest.onnx"  # type: ignore[union-attr]
