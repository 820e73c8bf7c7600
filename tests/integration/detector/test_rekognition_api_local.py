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

from services.detector.api import build_app
from services.detector.config import DetectorSettings
from services.detector.engines.registry import EngineSet, build_engines
from shared.config import PlatformSettings
from shared.http import EmbeddedServer
from tests.conftest import free_port
from tests.integration.detector.boto_shapes import shape_errors
from tests.integration.detector.conftest import api_settings, rekognition_client
from tests.support.fixture_photos import MASK_SCENES, bare_close_ups, hand_photos, masked_close_ups

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
    rekognition: Any, s3_client: Any, platform_settings: PlatformSettings
) -> None:
    image = MASK_SCENES[0].read_bytes()  # three masked faces (committed fixture)
    await s3_client.put_object(Bucket=platform_settings.frames_bucket, Key="in/photo.jpg", Body=image)
    await asyncio.to_thread(
        rekognition.detect_protective_equipment,
        Image={"S3Object": {"Bucket": platform_settings.frames_bucket, "Name": "in/photo.jpg"}},
    )
    body = json.loads(rekognition.raw["body"])
    assert shape_errors(body, output_shape(rekognition, "DetectProtectiveEquipment")) == []
    assert "Summary" not in body and body["Persons"]


def _covering(body: dict[str, Any], part_names: tuple[str, ...], kind: str) -> list[dict[str, Any]]:
    return [
        detection
        for person in body["Persons"]
        for part in person["BodyParts"]
        if part["Name"] in part_names
        for detection in part["EquipmentDetections"]
        if detection["Type"] == kind and detection["CoversBodyPart"]["Value"]
    ]


async def test_masks_and_gloves_on_the_fixture_photos_through_boto3(rekognition: Any) -> None:
    """Runs on every clone (tests/fixtures): the served engine, called as AWS, says who wears a mask or gloves."""
    shape = output_shape(rekognition, "DetectProtectiveEquipment")

    async def detect(photo: Path, required: str) -> dict[str, Any]:
        await asyncio.to_thread(
            rekognition.detect_protective_equipment,
            Image={"Bytes": await asyncio.to_thread(photo.read_bytes)},
            SummarizationAttributes={"MinConfidence": 50, "RequiredEquipmentTypes": [required]},
        )
        body: dict[str, Any] = json.loads(rekognition.raw["body"])
        assert shape_errors(body, shape) == []
        return body

    # GIVEN a masked close-up: a FACE with a covering FACE_COVER, the person compliant
    masked = await detect(masked_close_ups()[0], "FACE_COVER")
    assert _covering(masked, ("FACE",), "FACE_COVER") and masked["Summary"]["PersonsWithRequiredEquipment"]
    # a bare close-up: no FACE_COVER, the person not compliant
    bare = await detect(bare_close_ups()[0], "FACE_COVER")
    assert not _covering(bare, ("FACE",), "FACE_COVER") and bare["Summary"]["PersonsWithoutRequiredEquipment"]
    # a gloved hand: a covering HAND_COVER; a bare hand: none
    gloved = await detect(hand_photos("gloved_hand")[0], "HAND_COVER")
    assert _covering(gloved, ("LEFT_HAND", "RIGHT_HAND"), "HAND_COVER")
    bare_hand = await detect(hand_photos("bare_hand")[0], "HAND_COVER")
    assert not _covering(bare_hand, ("LEFT_HAND", "RIGHT_HAND"), "HAND_COVER")


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


async def test_strict_scores_through_boto3_equal_the_in_process_scores(endpoint: str, shared_data: Path) -> None:
    """`evaluate --against URL` scores an endpoint with the same code as the in-process run: on the same photos
    the served engine through the unmodified boto3 client must give exactly the same strict counts."""
    from model_workshop import strict_eval
    from tests.integration.detector.conftest import API_ACCESS_KEY, API_SECRET_KEY

    helmet_vest = sorted((shared_data / "scenes" / "images").glob("scene_panly_*.jpg"))[:3]
    masks = [(p, True) for p in sorted((shared_data / "masks" / "with_mask").glob("*.jpg"))[:3]]
    gloves = sorted((shared_data / "gloves" / "images").glob("*.jpg"))[:2]
    vest_arn = "arn:aws:rekognition:local:000000000000:project/vest/version/local/1"
    served = strict_eval.Boto3Endpoint(endpoint, vest_arn=vest_arn, credentials=(API_ACCESS_KEY, API_SECRET_KEY))
    through_api = await asyncio.to_thread(
        strict_eval.run, served, helmet_vest=helmet_vest, masks=masks, gloves=gloves, min_confidence=80.0
    )
    in_process = strict_eval.run(
        strict_eval.LocalEndpoint(), helmet_vest=helmet_vest, masks=masks, gloves=gloves, min_confidence=80.0
    )
    assert through_api.d and through_api.d == in_process.d
    assert through_api.n == in_process.n


async def test_documented_custom_labels_call_is_one_boto3_accepts(rekognition: Any, shared_data: Path) -> None:
    """The call docs/detector.md and the README show: a bare model name is refused by boto3 itself
    (ProjectVersionArn has a minimum length of 20), an ARN-shaped id naming the model as its project is sent
    and answered by that model."""
    from botocore.exceptions import ParamValidationError

    image = (shared_data / "scenes" / "images" / HELMETS_AND_VESTS).read_bytes()
    with pytest.raises(ParamValidationError, match="ProjectVersionArn"):
        rekognition.detect_custom_labels(ProjectVersionArn="vest", Image={"Bytes": image})
    documented = "arn:aws:rekognition:local:000000000000:project/vest/version/local/1"
    response = await asyncio.to_thread(
        rekognition.detect_custom_labels, ProjectVersionArn=documented, Image={"Bytes": image}, MinConfidence=60
    )
    assert "hi_vis_vest" in [label["Name"] for label in response["CustomLabels"]]
