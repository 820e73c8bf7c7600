"""Detector test fixtures: a fake Rekognition endpoint and canned Rekognition answers."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.integration.detector.fake_rekognition import FakeRekognition

# One client of the Rekognition-compatible API (DETECTOR_API_KEYS), as `make run` generates it.
API_ACCESS_KEY = "PPETESTCLIENT0000001"
API_SECRET_KEY = "test-secret-access-key-0123456789abcdef"
API_KEYS = f"{API_ACCESS_KEY}:{API_SECRET_KEY}"


def rekognition_client(endpoint: str, *, secret_key: str = API_SECRET_KEY, access_key: str = API_ACCESS_KEY,
                       read_timeout: int = 60) -> Any:
    """boto3's own Rekognition client, unmodified, pointed at the detector with the API's credentials."""
    return boto3.client(
        "rekognition",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, read_timeout=read_timeout),
    )


def api_settings(bucket: str, *prefixes: str, **values: Any) -> Any:
    """DetectorSettings of an API with the test client's key, reading S3Object only under bucket/prefix."""
    from services.detector.config import DetectorSettings

    return DetectorSettings(api_keys=API_KEYS, api_s3_objects=[f"{bucket}/{p}" for p in prefixes], **values)


VEST_ARN = "arn:aws:rekognition:us-east-1:123456789012:project/vest/version/vest.2026-11-26/1764144000000"


def aws_box(left: float, top: float, width: float, height: float) -> dict[str, float]:
    return {"Width": width, "Height": height, "Left": left, "Top": top}


def ppe_answer() -> dict[str, Any]:
    """What Rekognition answers for two workers: person 0 with a helmet, person 1 bare-headed."""

    def head(covered: bool, left: float) -> dict[str, Any]:
        part: dict[str, Any] = {"Name": "HEAD", "Confidence": 99.1, "EquipmentDetections": []}
        if covered:
            part["EquipmentDetections"].append(
                {
                    "BoundingBox": aws_box(left, 0.1, 0.08, 0.08),
                    "Confidence": 98.5,
                    "Type": "HEAD_COVER",
                    "CoversBodyPart": {"Confidence": 97.25, "Value": True},
                }
            )
        return part

    return {
        "ProtectiveEquipmentModelVersion": "1.0",
        "Persons": [
            {
                "BodyParts": [head(True, 0.1)],
                "BoundingBox": aws_box(0.05, 0.08, 0.2, 0.85),
                "Confidence": 99.6,
                "Id": 0,
            },
            {"BodyParts": [head(False, 0.6)], "BoundingBox": aws_box(0.55, 0.1, 0.2, 0.8), "Confidence": 98.2, "Id": 1},
        ],
        "Summary": {
            "PersonsWithRequiredEquipment": [0],
            "PersonsWithoutRequiredEquipment": [1],
            "PersonsIndeterminate": [],
        },
    }


def vest_answer() -> dict[str, Any]:
    """A vest on person 0's torso."""
    return {
        "CustomLabels": [
            {"Name": "hi_vis_vest", "Confidence": 93.5, "Geometry": {"BoundingBox": aws_box(0.08, 0.3, 0.14, 0.3)}}
        ]
    }


@pytest.fixture
def fake_rekognition() -> Iterator[FakeRekognition]:
    fake = FakeRekognition().start()
    try:
        yield fake
    finally:
        fake.stop()
