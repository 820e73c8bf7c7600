"""HTTP app: health, metrics, and a Rekognition-compatible endpoint.

`boto3.client("rekognition", endpoint_url="http://host:8081", aws_access_key_id=..., aws_secret_access_key=...)`
can call `detect_protective_equipment` and `detect_custom_labels` against it: AWS JSON 1.1 protocol (`POST /`,
`X-Amz-Target: RekognitionService.<Op>`), errors as `{"__type": ..., "Message": ...}` with Rekognition's status
codes. Every call must be signed (AWS Signature V4) with a key pair of DETECTOR_API_KEYS: the signer's access key
is checked before the body is read, the body is read up to DETECTOR_API_MAX_BODY_BYTES, then the signature is
recomputed over it (services.detector.sigv4). `Image.S3Object` may only name DETECTOR_API_S3_OBJECTS.
"""

import asyncio
import base64
import binascii
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.requests import ClientDisconnect

from services.detector import openapi, sigv4
from services.detector.adapters.images import MAX_BYTES_INLINE, MAX_BYTES_S3, inspect_image
from services.detector.config import DetectorSettings
from services.detector.engines.base import (
    CustomLabelEngine,
    EngineError,
    EngineThrottled,
    EngineUnavailable,
    FusedEngine,
    ImageInput,
    InvalidImage,
)
from services.detector.engines.registry import EngineSet
from services.detector.metrics import API_REQUESTS
from shared.http import Readiness, instrument
from shared.logging import get_logger
from shared.rekognition import DetectCustomLabelsResponse, SummarizationAttributes

log = get_logger(__name__)

AMZ_JSON = "application/x-amz-json-1.1"
TARGET_PREFIX = "RekognitionService."
STATUS = {
    "InvalidImageFormatException": 400,
    "ImageTooLargeException": 400,
    "InvalidParameterException": 400,
    "InvalidS3ObjectException": 400,
    "AccessDeniedException": 400,
    "ResourceNotFoundException": 400,
    "ProvisionedThroughputExceededException": 400,
    "SerializationException": 400,
    "UnknownOperationException": 400,
    "MissingAuthenticationTokenException": 400,
    "IncompleteSignatureException": 400,
    "InvalidSignatureException": 400,
    "UnrecognizedClientException": 400,
    "ThrottlingException": 500,
    "InternalServerError": 500,
}


class AwsError(Exception):
    def __init__(self, aws_type: str, message: str) -> None:
        super().__init__(message)
        self.aws_type = aws_type


def aws_error(aws_type: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"__type": aws_type, "Message": message},
        status_code=STATUS.get(aws_type, 400),
        media_type=AMZ_JSON,
        headers={"x-amzn-ErrorType": aws_type, "x-amzn-RequestId": str(uuid.uuid4())},
    )


# One answer for "no such object", "not ours to read" and "S3 said no": the text tells the caller nothing more.
S3_OBJECT_UNAVAILABLE = "Unable to get object metadata from S3. Check object key, region and/or access permissions."


class RekognitionApi:
    """The two operations, on the detector's engines."""

    def __init__(self, engines: EngineSet, *, s3: Any | None, settings: DetectorSettings) -> None:
        self._engines = engines
        self._s3 = s3
        self._settings = settings

    async def image(self, body: dict[str, Any]) -> ImageInput:
        image = body.get("Image")
        if not isinstance(image, dict) or (("Bytes" in image) == ("S3Object" in image)):
            raise AwsError("InvalidParameterException", "Image must have exactly one of Bytes or S3Object")
        if "Bytes" in image:
            if not isinstance(image["Bytes"], str):
                raise AwsError("InvalidParameterException", "Image.Bytes must be a base64 string")
            try:
                data = base64.b64decode(image["Bytes"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise AwsError("InvalidParameterException", f"Image.Bytes is not valid base64: {exc}") from exc
            return inspect_image(data, max_bytes=MAX_BYTES_INLINE)
        return inspect_image(await self._read_s3(image["S3Object"]), max_bytes=MAX_BYTES_S3)

    async def _read_s3(self, s3_object: Any) -> bytes:
        if not isinstance(s3_object, dict) or not s3_object.get("Bucket") or not s3_object.get("Name"):
            raise AwsError("InvalidParameterException", "Image.S3Object needs Bucket and Name")
        bucket, key = s3_object["Bucket"], s3_object["Name"]
        if not isinstance(bucket, str) or not isinstance(key, str):
            raise AwsError("InvalidParameterException", "Image.S3Object Bucket and Name must be strings")
        if self._s3 is None or not self._settings.api_s3_allowed(bucket, key):
            log.warning("S3Object outside DETECTOR_API_S3_OBJECTS refused", bucket=bucket)
            raise AwsError("InvalidS3ObjectException", S3_OBJECT_UNAVAILABLE)
        params = {"Bucket": bucket, "Key": key}
        if s3_object.get("Version"):
            params["VersionId"] = s3_object["Version"]
        try:
            response = await self._s3.get_object(**params)
            if response["ContentLength"] > MAX_BYTES_S3:
                response["Body"].close()
                raise AwsError("ImageTooLargeException", f"the S3 object is over {MAX_BYTES_S3} bytes")
            async with response["Body"] as stream:
                data: bytes = await stream.read()
        except ClientError as exc:
            log.info("S3Object unreadable", bucket=bucket, code=exc.response.get("Error", {}).get("Code", ""))
            raise AwsError("InvalidS3ObjectException", S3_OBJECT_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            log.error("S3 unavailable for an S3Object", error=str(exc))
            raise AwsError("InternalServerError", "S3 is unavailable; retry later") from exc
        return data

    async def detect_protective_equipment(self, body: dict[str, Any]) -> dict[str, object]:
        attributes = None
        if body.get("SummarizationAttributes") is not None:
            try:
                attributes = SummarizationAttributes.model_validate(body["SummarizationAttributes"])
            except ValidationError as exc:
                raise AwsError("InvalidParameterException", f"SummarizationAttributes: {_errors(exc)}") from exc
        image = await self.image(body)
        response = await self._engines.ppe.detect_ppe(image, attributes)
        return response.to_aws()

    def _custom_engine(self, arn: object) -> CustomLabelEngine:
        if not isinstance(arn, str) or not arn:
            raise AwsError("InvalidParameterException", "ProjectVersionArn is required")
        for name, engine in self._engines.custom_labels.items():
            # accept the bare model name or an ARN naming it as the project: .../project/<name>/version/...
            if arn == name or f":project/{name}/" in arn or arn == engine.model_version:
                return engine
        known = sorted(self._engines.custom_labels)
        raise AwsError("ResourceNotFoundException", f"no custom-label model {arn!r} here (models: {known})")

    async def detect_custom_labels(self, body: dict[str, Any]) -> dict[str, object]:
        engine = self._custom_engine(body.get("ProjectVersionArn"))
        min_confidence = body.get("MinConfidence")
        max_results = body.get("MaxResults")
        if min_confidence is not None and not (isinstance(min_confidence, int | float) and 0 <= min_confidence <= 100):
            raise AwsError("InvalidParameterException", "MinConfidence must be a number from 0 to 100")
        if max_results is not None and not (isinstance(max_results, int) and max_results >= 0):
            raise AwsError("InvalidParameterException", "MaxResults must be a non-negative integer")
        image = await self.image(body)
        ppe = self._engines.ppe
        response: DetectCustomLabelsResponse
        if engine.needs_persons and isinstance(ppe, FusedEngine) and ppe.can_fuse(engine):
            # local models: persons and their crops in one worker call
            _, labels_by_engine = await ppe.detect_ppe_with_labels(image, None, [engine])
            response = labels_by_engine[engine.name]
        else:
            persons = None
            if engine.needs_persons:
                persons = [person.BoundingBox for person in (await ppe.detect_ppe(image, None)).Persons]
            response = await engine.detect_labels(
                image,
                persons=persons,
                min_confidence=float(min_confidence) if min_confidence is not None else None,
                max_results=max_results,
            )
        labels = response.CustomLabels
        if min_confidence is not None:
            labels = [label for label in labels if label.Confidence >= min_confidence]
        if max_results is not None:
            labels = labels[:max_results]
        return DetectCustomLabelsResponse(CustomLabels=labels).model_dump(mode="json", exclude_none=True)


async def read_body(request: Request, *, limit: int, timeout_s: float) -> bytes:
    """At most `limit` bytes, counted as they arrive (refused early when Content-Length says more)."""
    too_large = AwsError("ImageTooLargeException", f"request body is over {limit} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise too_large
    except TimeoutError as exc:
        raise AwsError("InvalidParameterException", f"request body not received within {timeout_s}s") from exc
    except ClientDisconnect as exc:
        raise AwsError("SerializationException", "client disconnected before the body was complete") from exc
    return bytes(body)


class Authenticator:
    """Checks a request's SigV4 signature against the configured client keys (services.detector.sigv4)."""

    def __init__(self, settings: DetectorSettings) -> None:
        self._keys = settings.api_credentials()
        self._max_body = settings.api_max_body_bytes
        self._body_timeout_s = settings.api_body_timeout_s

    async def authenticated_body(self, request: Request) -> tuple[str, bytes]:
        """(access key id, body) of a correctly signed request; raises sigv4.AuthError or AwsError otherwise."""
        signed = sigv4.parse(request.headers.get("authorization"), request.headers.get("x-amz-date"))
        secret = self._keys.get(signed.access_key)
        if secret is None:  # before reading the body: strangers cost us a header parse, not 5 MB
            raise sigv4.AuthError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        body = await read_body(request, limit=self._max_body, timeout_s=self._body_timeout_s)
        sigv4.verify(
            signed,
            secret,
            method=request.method,
            path=request.scope.get("raw_path", b"/").decode("latin-1") or "/",
            query=request.scope.get("query_string", b"").decode("latin-1"),
            headers=[(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.scope["headers"]],
            body=body,
        )
        return signed.access_key, body


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())


def build_app(
    settings: DetectorSettings,
    *,
    engines: EngineSet,
    s3: Any | None = None,
    ready: Callable[[], tuple[bool, str]] | None = None,
) -> FastAPI:
    """The detector's HTTP app. `ready()` says whether the worker is healthy (e.g. the consumer polls)."""
    app = FastAPI(title="PPE detector", version="1", docs_url=None, redoc_url=None)
    openapi.install(app)
    api = RekognitionApi(engines, s3=s3, settings=settings)
    authenticator = Authenticator(settings)
    operations = {
        "DetectProtectiveEquipment": api.detect_protective_equipment,
        "DetectCustomLabels": api.detect_custom_labels,
    }

    async def readiness() -> Readiness:
        ok, detail = ready() if ready is not None else (True, "ready")
        return Readiness(ok, {"status": "ready" if ok else "not ready", "detail": detail})

    @app.post("/")
    async def rekognition(request: Request) -> Response:
        try:
            client, raw = await authenticator.authenticated_body(request)
        except (sigv4.AuthError, AwsError) as exc:
            API_REQUESTS.labels("unauthenticated", exc.aws_type).inc()
            log.info("rekognition api call refused", outcome=exc.aws_type)
            return aws_error(exc.aws_type, str(exc))
        target = request.headers.get("x-amz-target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        if operation not in operations:
            API_REQUESTS.labels("unknown", "UnknownOperationException").inc()
            return aws_error("UnknownOperationException", f"operation {target!r} is not served here")
        started = time.perf_counter()
        response: Response
        try:
            try:
                body = json.loads(raw or b"{}")
            except ValueError as exc:
                raise AwsError("SerializationException", f"request body is not JSON: {exc}") from exc
            if not isinstance(body, dict):
                raise AwsError("SerializationException", "request body must be a JSON object")
            result = await operations[operation](body)
        except AwsError as exc:
            outcome, response = exc.aws_type, aws_error(exc.aws_type, str(exc))
        except InvalidImage as exc:
            outcome, response = exc.aws_type, aws_error(exc.aws_type, str(exc))
        except EngineThrottled as exc:
            outcome, response = "ThrottlingException", aws_error("ThrottlingException", str(exc))
        except (EngineError, EngineUnavailable) as exc:
            log.error("engine failed on an API call", operation=operation, error=str(exc))
            outcome, response = "InternalServerError", aws_error("InternalServerError", str(exc).splitlines()[0])
        else:
            outcome = "ok"
            response = Response(
                json.dumps(result), media_type=AMZ_JSON, headers={"x-amzn-RequestId": str(uuid.uuid4())}
            )
        API_REQUESTS.labels(operation, outcome).inc()
        log.info(
            "rekognition api call",
            client=client,
            operation=operation,
            outcome=outcome,
            ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return response

    return instrument(app, readiness)
