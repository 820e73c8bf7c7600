"""The rekognition engine through aiobotocore against a server speaking Rekognition's JSON protocol."""

import base64

import pytest

from services.detector.adapters.images import inspect_image
from services.detector.engines.base import EngineError, EngineThrottled, ImageInput, InvalidImage
from services.detector.engines.rekognition import (
    RekognitionClient,
    RekognitionCustomLabelEngine,
    RekognitionPPEEngine,
)
from shared.rekognition import EquipmentType, SummarizationAttributes
from tests.integration.detector.conftest import VEST_ARN, ppe_answer, vest_answer
from tests.integration.detector.fake_rekognition import FakeRekognition
from tests.support.images import photo_jpeg

ATTRIBUTES = SummarizationAttributes(MinConfidence=80, RequiredEquipmentTypes=[EquipmentType.HEAD_COVER])


@pytest.fixture
def scene() -> ImageInput:
    return inspect_image(photo_jpeg())


def client(fake: FakeRekognition, *, botocore_attempts: int = 1) -> RekognitionClient:
    # botocore's own retries are off unless a test is about them (its backoff would only slow the suite)
    return RekognitionClient(
        region="us-east-1", endpoint_url=fake.url, attempts=3, base_delay_s=0.01, botocore_attempts=botocore_attempts
    )


async def test_detect_ppe_sends_the_image_and_maps_the_answer(
    fake_rekognition: FakeRekognition, scene: ImageInput
) -> None:
    fake_rekognition.script("DetectProtectiveEquipment", ppe_answer())
    engine = RekognitionPPEEngine(client(fake_rekognition))
    await engine.start()
    try:
        response = await engine.detect_ppe(scene, ATTRIBUTES)
    finally:
        await engine.close()
    # the request carried the frame's bytes (base64 by botocore) and the summarization attributes
    [(operation, request)] = fake_rekognition.requests
    assert operation == "DetectProtectiveEquipment"
    assert base64.b64decode(request["Image"]["Bytes"]) == scene.data
    assert request["SummarizationAttributes"] == {"MinConfidence": 80.0, "RequiredEquipmentTypes": ["HEAD_COVER"]}
    # the answer is the shared response model, field for field
    assert response.to_aws() == ppe_answer()
    assert engine.model_version == "1.0"


@pytest.mark.parametrize("botocore_attempts", [1, 2])
async def test_throttling_is_retried_then_succeeds(
    fake_rekognition: FakeRekognition, scene: ImageInput, botocore_attempts: int
) -> None:
    fake_rekognition.script(
        "DetectProtectiveEquipment",
        ("ProvisionedThroughputExceededException", 400),
        ("ThrottlingException", 500),
        ppe_answer(),
    )
    engine = RekognitionPPEEngine(client(fake_rekognition, botocore_attempts=botocore_attempts))
    await engine.start()
    try:
        response = await engine.detect_ppe(scene, None)
    finally:
        await engine.close()
    assert [p.Id for p in response.Persons] == [0, 1]
    assert len(fake_rekognition.requests) == 3


async def test_throttling_that_lasts_is_reported_as_throttled(
    fake_rekognition: FakeRekognition, scene: ImageInput
) -> None:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ("ProvisionedThroughputExceededException", 400)
    engine = RekognitionPPEEngine(client(fake_rekognition))
    await engine.start()
    try:
        with pytest.raises(EngineThrottled):
            await engine.detect_ppe(scene, None)
    finally:
        await engine.close()
    assert len(fake_rekognition.requests) == 3  # our bounded retries, then give up


@pytest.mark.parametrize(
    ("error", "raised", "aws_type"),
    [
        ("InvalidImageFormatException", InvalidImage, "InvalidImageFormatException"),
        ("ImageTooLargeException", InvalidImage, "ImageTooLargeException"),
        ("InvalidParameterException", InvalidImage, "InvalidParameterException"),
        ("InternalServerError", EngineError, None),
    ],
)
async def test_errors_map_to_typed_engine_errors(
    fake_rekognition: FakeRekognition, scene: ImageInput, error: str, raised: type[Exception], aws_type: str | None
) -> None:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = (error, 400 if "Exception" in error else 500)
    engine = RekognitionPPEEngine(client(fake_rekognition))
    await engine.start()
    try:
        with pytest.raises(raised) as caught:
            await engine.detect_ppe(scene, None)
    finally:
        await engine.close()
    assert getattr(caught.value, "aws_type", None) == aws_type


async def test_detect_custom_labels(fake_rekognition: FakeRekognition, scene: ImageInput) -> None:
    fake_rekognition.script("DetectCustomLabels", vest_answer())
    engine = RekognitionCustomLabelEngine("vest", client(fake_rekognition), project_version_arn=VEST_ARN)
    await engine.start()
    try:
        response = await engine.detect_labels(scene, min_confidence=60, max_results=5)
    finally:
        await engine.close()
    [(operation, request)] = fake_rekognition.requests
    assert operation == "DetectCustomLabels"
    assert (request["ProjectVersionArn"], request["MinConfidence"], request["MaxResults"]) == (VEST_ARN, 60, 5)
    assert response.model_dump(mode="json", exclude_none=True) == vest_answer()
