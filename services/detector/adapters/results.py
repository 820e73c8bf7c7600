"""Per-frame idempotency record on S3: `<prefix><frame id>.json` holds the one result of a frame.

Lifecycle of a record: created (conditional put, If-None-Match: *) with state `analysed` right after the
analysis, before publishing; overwritten with state `published` once SQS accepted the result. A redelivery
finds `published` and does nothing, or finds `analysed` (a crash between the two) and publishes the stored
result, so the same FrameAnalyzed is published whatever happens. Two workers racing on one frame: the
conditional put lets exactly one result win, and the loser publishes the winner's result. The records live
in the frames bucket and expire with its lifecycle rule.
"""

from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.contracts import FrameAnalyzed
from shared.s3 import StorageError


class ResultRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Literal["analysed", "published"] = Field(description="Whether SQS has accepted the result.")
    result: FrameAnalyzed = Field(description="The one result of this frame.")


class ResultStore:
    def __init__(self, s3_client: Any, bucket: str, *, prefix: str = "detector-results/") -> None:
        self._s3 = s3_client
        self.bucket = bucket
        self._prefix = prefix

    def key(self, frame_id: str) -> str:
        return f"{self._prefix}{frame_id}.json"

    async def get(self, frame_id: str) -> ResultRecord | None:
        key = self.key(frame_id)
        try:
            response = await self._s3.get_object(Bucket=self.bucket, Key=key)
            async with response["Body"] as stream:
                body = await stream.read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StorageError(f"could not read s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read s3://{self.bucket}/{key}: {exc}") from exc
        try:
            return ResultRecord.model_validate_json(body)
        except ValidationError as exc:
            # Written by an incompatible build: analyse again rather than publish something unreadable.
            raise StorageError(f"s3://{self.bucket}/{key} is not a result record ({exc.error_count()} errors)") from exc

    async def create(self, result: FrameAnalyzed) -> tuple[ResultRecord, bool]:
        """Store `result` unless the frame already has one; returns the stored record and whether it is ours."""
        frame_id = result.context.frame_id
        record = ResultRecord(state="analysed", result=result)
        try:
            await self._put(frame_id, record, IfNoneMatch="*")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
            ):
                raise StorageError(f"could not store the result of {frame_id}: {exc}") from exc
            existing = await self.get(frame_id)
            if existing is None:
                raise StorageError(f"result of {frame_id} vanished during a conflicting write") from exc
            return existing, False
        return record, True

    async def mark_published(self, record: ResultRecord) -> None:
        published = ResultRecord(state="published", result=record.result)
        try:
            await self._put(record.result.context.frame_id, published)
        except ClientError as exc:
            raise StorageError(f"could not mark {record.result.context.frame_id} published: {exc}") from exc

    async def _put(self, frame_id: str, record: ResultRecord, **conditions: str) -> None:
        try:
            await self._s3.put_object(
                Bucket=self.bucket,
                Key=self.key(frame_id),
                Body=record.model_dump_json().encode(),
                ContentType="application/json",
                **conditions,
            )
        except BotoCoreError as exc:
            raise StorageError(f"could not store the result of {frame_id}: {exc}") from exc
