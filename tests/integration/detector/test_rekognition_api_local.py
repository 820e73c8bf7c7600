"""boto3's Rekognition client against the endpoint backed by the offline engine, on real photos.

The answer must be the AWS JSON for DetectProtectiveEquipment / DetectCustomLabels, checked member by member
against botocore's service model, and say what is in the photo.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from services.detector.api import build_app
from services.detector.config import DetectorSettings
from services.detector.engines.registry import EngineSet, build_engines
from services.detector.main import _Server
from shared.config import PlatformSettings
from tests.conftest import free_port
from tests.integration.detector.boto_shapes import shape_errors
from tests.integration.detector.conftest import api_settings, rekognition_client

# 3 helmets, 4 hi-vis vests, no bare head (scenes/labels/scene_panly_part2_000082.txt)
HELMETS_AND_VESTS = "scene_panly_part2_000082.jpg"


@pytest.fixture(scope="module")
async def local_engines() -> AsyncIterator[EngineSet]:
    engines = build_engines(DetectorSettings(ppe_engine="local", workers=2))
    await engines.start()
    try:
        yield engines
    finally:
        await engines.close()


@pytest.fixture
async def endpoint(local_engines: EngineSet, s3_client: Any, platform_settings: PlatformSettings) -> AsyncIterator[str]:
    await s3_client.create_bucket(Bucket=platform_settings.frames_bucket)
    app = build_app(api_settings(platform_settings.frames_bucket, "in/"), engines=local_engines, s3=s3_client)
    port = free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False))
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
    client.raw = raw
    yield client
    client.close()


def output_shape(client: Any, operation: str) -> Any:
    return client.meta.service_model.operation_model(operation).output_shape


async def test_real_photo_answers_in_the_aws_shape_with_what_is_in_it(rekognition: Any, shared_data: Path) -> None:
    image = (shared_data / "scenes" / "images" / HELMETS_AND_VESTS).read_bytes()
    response = await asyncio.to_thread(
        rekognition.detect_protective_equipment,
        Image={"Bytes": image},
        SummarizationAttributes={"MinConfidence": 50, "RequiredEquipmentTypes": ["HEAD_COVER"]},
    )
    body = json.loads(rekognition.raw["body"])
    assert shape_errors(body, output_shape(rekognition, "DetectProtectiveEquipment")) == []
    response.pop("ResponseMetadata")
    assert response == body
    # the workers are found, with body parts and equipment detections in the AWS vocabulary
    persons = body["Persons"]
    assert len(persons) >= 2
    assert any(part["Name"] == "HEAD" for person in persons for part in person["BodyParts"])
    covered_heads = [
        detection
        for person in persons
        for part in person["BodyParts"]
        if part["Name"] == "HEAD"
        for detection in part["EquipmentDetections"]
        if detection["Type"] == "HEAD_COVER" and detection["CoversBodyPart"]["Value"]
    ]
    assert len(covered_heads) >= 2  # helmets seen on at least two of the three workers
    summary = body["Summary"]
    assert summary["PersonsWithRequiredEquipment"]  # somebody is compliant
    assert sorted(sum(summary.values(), [])) == sorted(p["Id"] for p in persons)


async def test_s3_object_without_summarization_has_no_summary(
    rekognition: Any, s3_client: Any, platform_settings: PlatformSettings, shared_data: Path
) -> None:
    image = (shared_data / "scenes" / "images" / HELMETS_AND_VESTS).read_bytes()
    await s3_client.put_object(Bucket=platform_settings.frames_bucket, Key="in/photo.jpg", Body=image)
    await asyncio.to_thread(
        rekognition.detect_protective_equipment,
        Image={"S3Object": {"Bucket": platform_settings.frames_bucket, "Name": "in/photo.jpg"}},
    )
    body = json.loads(rekognition.raw["body"])
    assert shape_errors(body, output_shape(rekognition, "DetectProtectiveEquipment")) == []
    assert "Summary" not in body and body["Persons"]


async def test_custom_labels_find_the_vests(rekognition: Any, shared_data: Path) -> None:
    image = (shared_data / "scenes" / "images" / HELMETS_AND_VESTS).read_bytes()
    response = await asyncio.to_thread(
        rekognition.detect_custom_labels,
        ProjectVersionArn="arn:aws:rekognition:us-east-1:123456789012:project/vest/version/v1/1",
        Image={"Bytes": image},
        MinConfidence=50,
    )
    body = json.loads(rekognition.raw["body"])
    assert shape_errors(body, output_shape(rekognition, "DetectCustomLabels")) == []
    names = [label["Name"] for label in response["CustomLabels"]]
    assert names.count("hi_vis_vest") >= 2 and all(label.get("Geometry") for label in response["CustomLabels"])
