"""Amazon Rekognition as an engine: DetectProtectiveEquipment and DetectCustomLabels through aiobotocore.

botocore's standard retry mode retries whole calls on throttling and 5xx; on top of it we retry
ProvisionedThroughputExceeded / Throttling a bounded number of times with backoff and jitter, because those
mean "the account's TPS is used up right now", which outlasts botocore's short backoff.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from services.detector.engines.base import (
    EngineError,
    EngineThrottled,
    EngineUnavailable,
    ImageInput,
    InvalidImage,
)
from shared.backoff import backoff_delay
from shared.logging import get_logger
from shared.rekognition import (
    BoundingBox,
    DetectCustomLabelsResponse,
    DetectProtectiveEquipmentResponse,
    SummarizationAttributes,
)

log = get_logger(__name__)

THROTTLING_ERRORS = frozenset(
    {"ProvisionedThroughputExceededException", "ThrottlingException", "LimitExceededException"}
)
IMAGE_ERRORS = frozenset({"InvalidImageFormatException", "ImageTooLargeException", "InvalidParameterException"})


class RekognitionClient:
    """One aiobotocore Rekognition client with our throttling retries and error mapping."""

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None,
        attempts: int = 4,
        base_delay_s: float = 0.2,
        botocore_attempts: int = 3,
    ) -> None:
        self._config = AioConfig(
            retries={"mode": "standard", "total_max_attempts": botocore_attempts}, connect_timeout=5, read_timeout=30
        )
        self._region = region
        self._endpoint_url = endpoint_url
        self._attempts = attempts
        self._base_delay_s = base_delay_s
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        if self._client is None:
            self._client = await self._stack.enter_async_context(
                get_session().create_client(
                    "rekognition", region_name=self._region, endpoint_url=self._endpoint_url, config=self._config
                )
            )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        if self._client is None:
            raise EngineUnavailable("rekognition client not started: call start() first")
        method: Callable[..., Awaitable[dict[str, Any]]] = getattr(self._client, operation)
        for attempt in range(1, self._attempts + 1):
            try:
                response = await method(**params)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                message = exc.response.get("Error", {}).get("Message", str(exc))
                if code in IMAGE_ERRORS:
                    raise InvalidImage(f"Rekognition: {message}", aws_type=code) from exc
                if code in THROTTLING_ERRORS:
                    if attempt == self._attempts:
                        raise EngineThrottled(f"Rekognition {operation} still throttled after {attempt} tries") from exc
                    delay = backoff_delay(attempt - 1, first_s=self._base_delay_s, max_s=10.0)
                    log.warning("rekognition throttled; retrying", operation=operation, code=code, retry_in_s=delay)
                    await asyncio.sleep(delay)
                    continue
                if code in ("AccessDeniedException", "ResourceNotFoundException", "InvalidS3ObjectException"):
                    raise EngineUnavailable(f"Rekognition {operation} refused: {code}: {message}") from exc
                raise EngineError(f"Rekognition {operation} failed: {code}: {message}") from exc
            except BotoCoreError as exc:
                raise EngineError(f"Rekognition {operation} unreachable: {exc}") from exc
            response.pop("ResponseMetadata", None)
            return response
        raise AssertionError("unreachable")


class RekognitionPPEEngine:
    name = "rekognition"

    def __init__(self, client: RekognitionClient) -> None:
        self._client = client
        self._model_version = "unknown"

    @property
    def model_version(self) -> str:
        return self._model_version

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def detect_ppe(
        self, image: ImageInput, attributes: SummarizationAttributes | None
    ) -> DetectProtectiveEquipmentResponse:
        params: dict[str, Any] = {"Image": {"Bytes": image.data}}
        if attributes is not None:
            params["SummarizationAttributes"] = attributes.model_dump(mode="json")
        raw = await self._client.call("detect_protective_equipment", **params)
        try:
            response = DetectProtectiveEquipmentResponse.model_validate(raw)
        except ValueError as exc:
            raise EngineError(f"Rekognition answered a shape we do not understand: {exc}") from exc
        self._model_version = response.ProtectiveEquipmentModelVersion
        return response


class RekognitionCustomLabelEngine:
    """One Rekognition Custom Labels model version (a running project version ARN)."""

    needs_persons = False

    def __init__(self, name: str, client: RekognitionClient, *, project_version_arn: str) -> None:
        self.name = name
        self._client = client
        self._arn = project_version_arn

    @property
    def model_version(self) -> str:
        return self._arn

    async def start(self) -> None:
        await self._client.start()

    async def close(self) -> None:
        await self._client.close()

    async def detect_labels(
        self,
        image: ImageInput,
        *,
        persons: Sequence[BoundingBox] | None = None,
        min_confidence: float | None = None,
        max_results: int | None = None,
    ) -> DetectCustomLabelsResponse:
        params: dict[str, Any] = {"ProjectVersionArn": self._arn, "Image": {"Bytes": image.data}}
        if min_confidence is not None:
            params["MinConfidence"] = min_confidence
        if max_results is not None:
            params["MaxResults"] = max_results
        raw = await self._client.call("detect_custom_labels", **params)
        try:
            return DetectCustomLabelsResponse.model_validate(raw)
        except ValueError as exc:
            raise EngineError(f"Rekognition answered a shape we do not understand: {exc}") from exc
