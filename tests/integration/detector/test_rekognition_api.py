"""The unmodified boto3 Rekognition client against the detector's Rekognition-compatible endpoint.

Responses are checked member by member against botocore's own output shapes; bad images must come back as
Rekognition's modeled exceptions.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from services.detector.api import build_app
from services.detector.config import DetectorSettings
from services.detector.engines.registry import EngineSet, build_engines
from shared.config import PlatformSettings
from shared.http import EmbeddedServer
from tests.conftest import free_port
from tests.integration.detector.boto_shapes import shape_errors
from tests.integration.detector.conftest import VEST_ARN, api_settings, ppe_answer, rekognition_client, vest_answer
from tests.integration.detector.fake_rekognition import FakeRekognition
from tests.support.images import photo_jpeg


@pytest.fixture
async def engines(platform_settings: PlatformSettings, fake_rekognition: FakeRekognition) -> AsyncIterator[EngineSet]:
    fake_rekognition.defaults["DetectProtectiveEquipment"] = ppe_answer()
    fake_rekognition.defaults["DetectCustomLabels"] = vest_answer()
    settings = DetectorSettings(
        ppe_engine="rekognition",
        rekognition_endpoint_url=fake_rekognition.url,
        custom_label_models={"vest": {"engine": "rekognition", "project_version_arn": VEST_ARN}},
    )
    engine_set = build_engines(settings)
    await engine_set.start()
    try:
        yield engine_set
    finally:
        await engine_set.close()


@pytest.fixture
async def endpoint(engines: EngineSet, s3_client: Any, platform_settings: PlatformSettings) -> AsyncIterator[str]:
    await s3_client.create_bucket(Bucket=platform_settings.frames_bucket)  # the API needs no queues
    app = build_app(api_settings(platform_settings.frames_bucket, "uploads/"), engines=engines, s3=s3_client)
    port = free_port()
    server = EmbeddedServer(app, host="127.0.0.1", port=port)
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "server did not start"
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
def rekognition(endpoint: str) -> Iterator[Any]:
    client = rekognition_client(endpoint)
    raw: dict[str, bytes] = {}
    client.meta.events.register(
        "after-call.rekognition.*", lambda http_response, **_: raw.__setitem__("body", http_response.content)
    )
    client.raw = raw  # the last response body as sent, for the shape check
    yield client
    client.close()


def output_shape(client: Any, operation: str) -> Any:
    return client.meta.service_model.operation_model(operation).output_shape


def encode(width: int, height: int) -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 128, dtype=np.uint8))
    assert ok
    return data.tobytes()


async def test_detect_protective_equipment_with_bytes_matches_botocore_model(
    rekognition: Any
) -> None:
    image = photo_jpeg()
    response = await asyncio.to_thread(
        rekognition.detect_protective_equipment,
        Image={"Bytes": image},
        SummarizationAttributes={"MinConfidence": 80, "RequiredEquipmentTypes": ["HEAD_COVER"]},
    )
    body = json.loads(rekognition.raw["body"])
    assert shape_errors(body, output_shape(rekognition, "DetectProtectiveEquipment")) == []
    response.pop("ResponseMetadata")
    assert response == body  # boto3 parsed every member (nothing dropped as unknown)
    assert set(body) == {"ProtectiveEquipmentModelVersion", "Persons", "Summary"}


async def test_detect_protective_equipment_from_s3(
    rekognition: Any, s3_client: Any, platform_settings: PlatformSettings
) -> None:
    image = photo_jpeg()
    await s3_client.put_object(Bucket=platform_settings.frames_bucket, Key="uploads/scene.jpg", Body=image)
    response = await asyncio.to_thread(
        rekognition.detect_protective_equipment,
        Image={"S3Object": {"Bucket": platform_settings.frames_bucket, "Name": "uploads/scene.jpg"}},
    )
    body = json.loads(rekognition.raw["body"])
    assert shape_errors(body, output_shape(rekognition, "DetectProtectiveEquipment")) == []
    assert len(response["Persons"]) == len(body["Persons"])


async def test_detect_custom_labels_matches_botocore_model(rekognition: Any) -> None:
    image = photo_jpeg()
    response = await asyncio.to_thread(
        rekognition.detect_custom_labels, ProjectVersionArn=VEST_ARN, Image={"Bytes": image}, MinConfidence=50
    )
    body = json.loads(rekognition.raw["body"])
    assert shape_errors(body, output_shape(rekognition, "DetectCustomLabels")) == []
    assert [label["Name"] for label in response["CustomLabels"]] == ["hi_vis_vest"]


@pytest.mark.parametrize(
    ("image", "error"),
    [
        ({"Bytes": b"GIF89a not an image we take"}, "InvalidImageFormatException"),
        ({"Bytes": b"\xff\xd8\xff\xe0 truncated jpeg"}, "InvalidImageFormatException"),
        ({"Bytes": encode(4200, 80)}, "ImageTooLargeException"),
        ({"Bytes": b"\xff\xd8\xff" + bytes(4 * 1024 * 1024)}, "ImageTooLargeException"),
        ({"Bytes": encode(40, 40)}, "InvalidParameterException"),
        ({"S3Object": {"Bucket": "no-such-bucket-here", "Name": "x.jpg"}}, "InvalidS3ObjectException"),
    ],
)
async def test_bad_images_raise_rekognition_exceptions(rekognition: Any, image: dict[str, Any], error: str) -> None:
    with pytest.raises(rekognition.exceptions.ClientError) as caught:
        await asyncio.to_thread(rekognition.detect_protective_equipment, Image=image)
    assert caught.value.response["Error"]["Code"] == error
    assert isinstance(caught.value, getattr(rekognition.exceptions, error))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_absent_and_forbidden_s3_objects_get_one_answer(
    rekognition: Any, s3_client: Any, platform_settings: PlatformSettings
) -> None:
    # GIVEN a real image outside the allowed prefix, and the detector's S3 credentials that could read it
    bucket = platform_settings.frames_bucket
    image = photo_jpeg()
    await s3_client.put_object(Bucket=bucket, Key="frames/other-site/cam/1.jpg", Body=image)
    await s3_client.create_bucket(Bucket=f"{bucket}-other")
    await s3_client.put_object(Bucket=f"{bucket}-other", Key="uploads/scene.jpg", Body=image)
    answers = []
    for bucket_name, key in [
        (bucket, "uploads/nope.jpg"),  # allowed, absent
        (bucket, "frames/other-site/cam/1.jpg"),  # present, outside DETECTOR_API_S3_OBJECTS
        (f"{bucket}-other", "uploads/scene.jpg"),  # present, in another bucket
        ("no-such-bucket-here", "uploads/x.jpg"),
    ]:
        # WHEN each is asked for
        with pytest.raises(rekognition.exceptions.InvalidS3ObjectException) as caught:
            await asyncio.to_thread(
                rekognition.detect_protective_equipment, Image={"S3Object": {"Bucket": bucket_name, "Name": key}}
            )
        answers.append(caught.value.response["Error"]["Message"])
    # THEN the answers cannot tell "absent" from "forbidden"
    assert len(set(answers)) == 1, answers
    assert "frames/" not in answers[0] and "NoSuchKey" not in answers[0]


async def test_unknown_custom_label_model_is_resource_not_found(rekognition: Any) -> None:
    image = photo_jpeg()
    with pytest.raises(rekognition.exceptions.ResourceNotFoundException):
        await asyncio.to_thread(
            rekognition.detect_custom_labels,
            ProjectVersionArn="arn:aws:rekognition:us-east-1:1:project/goggles/version/v1/1",
            Image={"Bytes": image},
        )


async def test_health_and_metrics(endpoint: str, rekognition: Any) -> None:
    import httpx

    image = photo_jpeg()
    await asyncio.to_thread(rekognition.detect_protective_equipment, Image={"Bytes": image})
    async with httpx.AsyncClient(base_url=endpoint) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).status_code == 200
        metrics = (await http.get("/metrics")).text
        unsigned = await http.post("/", headers={"X-Amz-Target": "RekognitionService.DetectFaces"}, content=b"{}")
    assert 'ppe_detector_api_requests_total{operation="DetectProtectiveEquipment",outcome="ok"}' in metrics
    assert unsigned.status_code == 400 and unsigned.json()["__type"] == "MissingAuthenticationTokenException"
    with pytest.raises(rekognition.exceptions.ClientError) as caught:
        await asyncio.to_thread(rekognition.detect_faces, Image={"Bytes": image})
    assert caught.value.response["Error"]["Code"] == "UnknownOperationException"
