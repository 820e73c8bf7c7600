"""The explicit engine registry: configuration names engines; nothing is loaded until start()."""

from services.detector.config import DetectorSettings
from services.detector.engines.base import CustomLabelEngine, FusedEngine, PPEEngine
from services.detector.engines.local import LocalCropLabelEngine, LocalPPEEngine
from services.detector.engines.registry import CUSTOM_LABEL_ENGINES, PPE_ENGINES, build_engines
from services.detector.engines.rekognition import RekognitionCustomLabelEngine, RekognitionPPEEngine

ARN = "arn:aws:rekognition:us-east-1:123456789012:project/vest/version/v1/1"


def test_registry_lists_exactly_the_configurable_engines() -> None:
    assert sorted(PPE_ENGINES) == ["local", "rekognition"]
    assert sorted(CUSTOM_LABEL_ENGINES) == ["crop", "rekognition"]


def test_default_settings_build_the_local_engine_and_the_vest_model_on_one_pool() -> None:
    engines = build_engines(DetectorSettings())
    assert isinstance(engines.ppe, LocalPPEEngine) and isinstance(engines.ppe, PPEEngine)
    vest = engines.custom_labels["vest"]
    assert isinstance(vest, LocalCropLabelEngine) and isinstance(vest, CustomLabelEngine)
    assert vest.needs_persons and vest.pool is engines.pool
    assert isinstance(engines.ppe, FusedEngine) and engines.ppe.can_fuse(vest)


def test_rekognition_settings_build_no_model_pool() -> None:
    engines = build_engines(
        DetectorSettings(
            ppe_engine="rekognition",
            custom_label_models={"vest": {"engine": "rekognition", "project_version_arn": ARN}},
        )
    )
    assert isinstance(engines.ppe, RekognitionPPEEngine)
    assert not isinstance(engines.ppe, FusedEngine), "Rekognition has no fused call: the two-step path runs"
    assert isinstance(engines.custom_labels["vest"], RekognitionCustomLabelEngine)
    assert not engines.custom_labels["vest"].needs_persons
    assert engines.pool is None
