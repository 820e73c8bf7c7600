"""Schemathesis hooks for the detector's Rekognition-compatible API: sign every request with AWS SigV4.

Load with `SCHEMATHESIS_HOOKS=tests.support.sigv4_hooks` and `PPE_FUZZ_SIGV4=<access key>:<secret key>` (a pair of
the detector's DETECTOR_API_KEYS). The request is signed after schemathesis serialised it, over the exact bytes
sent, with botocore's own signer (what boto3 does), so the fuzzed bodies reach the handler instead of being
refused at the signature check. Bodies of `application/x-amz-json-1.1` are sent and read as JSON. The examples
phase also sends real photos (tests/fixtures: a masked face, gloved hands, a scene), so the models run and their
answers are checked against the documented response schema.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import requests
import schemathesis
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

AMZ_JSON = "application/x-amz-json-1.1"
SIGNED = ("content-type", "x-amz-target")  # with host and x-amz-date, which the signer adds
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
VEST_ARN = "arn:aws:rekognition:local:000000000000:project/vest/version/local/1"
# (X-Amz-Target operation, fixture photo, the rest of the body)
PHOTO_EXAMPLES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("DetectProtectiveEquipment", "masks/with_mask/fmd_0932_aded84.jpg",
     {"SummarizationAttributes": {"MinConfidence": 50, "RequiredEquipmentTypes": ["FACE_COVER"]}}),
    ("DetectProtectiveEquipment", "gloves/images/ghbh_gloves-173.jpg",
     {"SummarizationAttributes": {"MinConfidence": 80, "RequiredEquipmentTypes": ["HAND_COVER", "FACE_COVER"]}}),
    ("DetectProtectiveEquipment", "masks/scene_fmd_pic2.jpg", {}),
    ("DetectCustomLabels", "masks/scene_fmd_pic1.jpg", {"ProjectVersionArn": VEST_ARN, "MinConfidence": 10}),
)


class SigV4(requests.auth.AuthBase):
    """Sign a prepared `requests` request as boto3 would for `rekognition` in `region`."""

    def __init__(self, access_key: str, secret_key: str, region: str = "us-east-1") -> None:
        self._signer = SigV4Auth(Credentials(access_key, secret_key), "rekognition", region)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        headers = {name: value for name, value in request.headers.items() if name.lower() in SIGNED}
        aws = AWSRequest(method=request.method, url=request.url, headers=headers, data=body)
        self._signer.add_auth(aws)
        for name in ("Authorization", "X-Amz-Date"):
            request.headers[name] = aws.headers[name]
        return request


schemathesis.serializer.alias(AMZ_JSON, "application/json")


@schemathesis.deserializer(AMZ_JSON)
def amz_json_response(ctx: schemathesis.DeserializationContext, response: schemathesis.Response) -> Any:
    return json.loads(response.content)


@schemathesis.hook
def before_add_examples(context: schemathesis.HookContext, examples: list[schemathesis.Case]) -> None:
    operation = context.operation
    if operation is None or (operation.method.upper(), operation.path) != ("POST", "/"):
        return
    for target, photo, rest in PHOTO_EXAMPLES:
        image = base64.b64encode((FIXTURES / photo).read_bytes()).decode()
        examples.append(
            operation.Case(
                body={"Image": {"Bytes": image}, **rest},
                headers={"X-Amz-Target": f"RekognitionService.{target}"},
                media_type=AMZ_JSON,
            )
        )


_access_key, _, _secret_key = os.environ.get("PPE_FUZZ_SIGV4", "").partition(":")
if not (_access_key and _secret_key):
    raise RuntimeError("set PPE_FUZZ_SIGV4=<access key>:<secret key> (a pair of the detector's DETECTOR_API_KEYS)")
SIGNER = SigV4(_access_key, _secret_key)


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """Every request, generated or example, goes out signed (`auth` is applied to the prepared request)."""
    kwargs["auth"] = SIGNER
