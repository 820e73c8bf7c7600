"""Ground Truth INPUT manifests: one `{"source-ref": "s3://bucket/key"}` line per image to label.

Built from an S3 prefix (listed with aiobotocore) or from a local folder mapped onto an S3 prefix, optionally
uploading the files there; and the way back: downloading the images a labelling job's output manifest refers
to, so they can be checked, drawn and trained on locally. The S3 endpoint comes from the standard AWS
settings, so `AWS_ENDPOINT_URL` points it at a local emulator (moto) with no special code path.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from model_workshop.labels.errors import LabelsError
from model_workshop.labels.groundtruth import split_s3_uri
from model_workshop.labels.images import IMAGE_SUFFIXES, iter_images

UPLOAD_CONCURRENCY = 16


class S3Error(LabelsError):
    """S3 refused or could not be reached."""


def _join(prefix_uri: str, relative: str) -> str:
    return prefix_uri.rstrip("/") + "/" + relative


def refs_for_folder(folder: Path, prefix_uri: str) -> list[tuple[Path, str]]:
    """(local file, s3 URI it will have under the prefix) for every image in the folder."""
    split_s3_uri(prefix_uri)
    if not folder.is_dir():
        raise LabelsError(f"{folder} is not a folder of images")
    pairs = [(path, _join(prefix_uri, path.relative_to(folder).as_posix())) for path in iter_images(folder)]
    if not pairs:
        raise LabelsError(f"{folder} holds no .jpg/.jpeg/.png images")
    return pairs


def _explain(exc: Exception, what: str) -> S3Error:
    return S3Error(
        f"{what} failed: {exc}. Check the bucket exists, your AWS credentials and region, "
        "and AWS_ENDPOINT_URL when using a local emulator"
    )


async def list_s3_images(prefix_uri: str) -> list[str]:
    bucket, prefix = split_s3_uri(prefix_uri)
    refs: list[str] = []
    try:
        async with get_session().create_client("s3") as s3:
            paginator = s3.get_paginator("list_objects_v2")
            with tqdm(desc=f"list {prefix_uri}", unit="obj", leave=False) as progress:
                async for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                    for item in page.get("Contents", []):
                        key: str = item["Key"]
                        if Path(key).suffix.lower() in IMAGE_SUFFIXES:
                            refs.append(f"s3://{bucket}/{key}")
                        progress.update()
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, f"listing {prefix_uri}") from exc
    if not refs:
        raise LabelsError(f"no .jpg/.jpeg/.png objects under {prefix_uri}; check the prefix")
    return sorted(refs)


async def upload(pairs: list[tuple[Path, str]]) -> None:
    semaphore = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    try:
        async with get_session().create_client("s3") as s3:
            with tqdm(total=len(pairs), desc="upload", unit="img", leave=False) as progress:

                async def put(path: Path, uri: str) -> None:
                    bucket, key = split_s3_uri(uri)
                    async with semaphore:
                        await s3.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
                    progress.update()

                await asyncio.gather(*(put(path, uri) for path, uri in pairs))
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, "uploading images") from exc


async def download(refs: list[str], dest: Path) -> int:
    """Copy s3:// images to dest/<key> (skipping files already there); returns how many were fetched."""
    todo = []
    for ref in dict.fromkeys(refs):
        _bucket, key = split_s3_uri(ref)
        target = dest / key
        if not target.resolve().is_relative_to(dest.resolve()):
            raise LabelsError(f"S3 key {key!r} would be written outside {dest}; refusing it")
        if not target.is_file():
            todo.append((ref, target))
    if not todo:
        return 0
    semaphore = asyncio.Semaphore(UPLOAD_CONCURRENCY)
    try:
        async with get_session().create_client("s3") as s3:
            with tqdm(total=len(todo), desc="download", unit="img", leave=False) as progress:

                async def get(ref: str, target: Path) -> None:
                    bucket, key = split_s3_uri(ref)
                    async with semaphore:
                        response = await s3.get_object(Bucket=bucket, Key=key)
                        async with response["Body"] as body:
                            data = await body.read()
                    target.parent.mkdir(parents=True, exist_ok=True)
                    partial = target.with_name(target.name + ".part")
                    partial.write_bytes(data)
                    partial.replace(target)
                    progress.update()

                await asyncio.gather(*(get(ref, target) for ref, target in todo))
    except (ClientError, BotoCoreError) as exc:
        raise _explain(exc, "downloading the labelled images") from exc
    return len(todo)


def write_manifest(refs: list[str], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps({"source-ref": ref}) + "\n" for ref in refs))


async def make_manifest(source: str, out: Path, *, s3_prefix: str | None = None, do_upload: bool = False) -> list[str]:
    """Write an input manifest for `source` (an s3:// prefix, or a local folder placed at `s3_prefix`)."""
    if source.startswith("s3://"):
        refs = await list_s3_images(source)
    else:
        if s3_prefix is None:
            raise LabelsError(
                "a local folder needs --s3-prefix s3://bucket/path/ saying where its images live "
                "(or will live, with --upload)"
            )
        pairs = refs_for_folder(Path(source), s3_prefix)
        if do_upload:
            await upload(pairs)
        refs = [uri for _path, uri in pairs]
    write_manifest(refs, out)
    return refs
