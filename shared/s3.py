"""Frame storage on S3: put, get and presign frame objects, with typed errors."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class StorageError(Exception):
    """S3 could not be reached or refused the call; the caller may retry later."""


class FrameNotFound(Exception):
    """The frame object does not exist (expired by retention, or a wrong key)."""


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    data: bytes
    content_type: str
    metadata: dict[str, str]


def frame_key(*, site_id: str, camera_id: str, captured_at: datetime, frame_id: str, extension: str) -> str:
    """Key layout by site / camera / capture date, so lifecycle rules and listings work per site."""
    day = captured_at.strftime("%Y/%m/%d")
    return f"frames/{site_id}/{camera_id}/{day}/{frame_id}.{extension}"


class FrameStore:
    def __init__(self, s3_client: Any, bucket: str) -> None:
        self._s3 = s3_client
        self.bucket = bucket

    async def put(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> None:
        try:
            await self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not store s3://{self.bucket}/{key}: {exc}") from exc

    async def put_new(self, key: str, data: bytes, *, content_type: str, metadata: dict[str, str]) -> bool:
        """Store the object only if the key is free (S3 conditional write); False when it already exists."""
        try:
            await self._s3.put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata, IfNoneMatch="*"
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                return False
            raise StorageError(f"could not store s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not store s3://{self.bucket}/{key}: {exc}") from exc
        return True

    async def get(self, key: str, *, bucket: str | None = None, max_bytes: int | None = None) -> StoredObject:
        bucket = bucket or self.bucket
        try:
            response = await self._s3.get_object(Bucket=bucket, Key=key)
            if max_bytes is not None and response["ContentLength"] > max_bytes:
                response["Body"].close()
                raise StorageError(f"s3://{bucket}/{key} is {response['ContentLength']} bytes, over {max_bytes}")
            async with response["Body"] as stream:
                data = await stream.read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NoSuchBucket"):
                raise FrameNotFound(f"s3://{bucket}/{key} does not exist") from exc
            raise StorageError(f"could not read s3://{bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not read s3://{bucket}/{key}: {exc}") from exc
        return StoredObject(bucket, key, data, response.get("ContentType", ""), response.get("Metadata", {}))

    async def delete(self, key: str) -> None:
        try:
            await self._s3.delete_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"could not delete s3://{self.bucket}/{key}: {exc}") from exc

    async def exists(self, key: str) -> bool:
        try:
            await self._s3.head_object(Bucket=self.bucket, Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise StorageError(f"could not check s3://{self.bucket}/{key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageError(f"could not check s3://{self.bucket}/{key}: {exc}") from exc

    async def presigned_url(self, key: str, *, bucket: str | None = None, expires_s: int = 3600) -> str:
        url: str = await self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": bucket or self.bucket, "Key": key}, ExpiresIn=expires_s
        )
        return url

    async def ping(self) -> None:
        try:
            await self._s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"bucket {self.bucket} not reachable: {exc}") from exc
