"""make-manifest against a real moto S3 server: list a prefix, and upload a local folder then list it back."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiobotocore.session import get_session

from services.detector.labels.cli import main
from services.detector.labels.errors import LabelsError
from services.detector.labels.manifest import list_s3_images, make_manifest


def _images(folder: Path, names: list[str]) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / name), np.zeros((8, 8, 3), dtype=np.uint8))
    return folder


@pytest.fixture
async def bucket(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    name = f"labels-{uuid.uuid4().hex[:8]}"
    async with get_session().create_client("s3") as s3:
        await s3.create_bucket(Bucket=name)
    return name


async def test_manifest_from_an_s3_prefix_lists_only_images_under_it(bucket: str, tmp_path: Path) -> None:
    # GIVEN images (and a non-image) under a prefix, plus an image elsewhere in the bucket
    async with get_session().create_client("s3") as s3:
        for key in ("site-a/cam1/0001.jpg", "site-a/cam2/0002.PNG", "site-a/notes.txt", "site-b/0003.jpg"):
            await s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    # WHEN the manifest is built from the prefix
    out = tmp_path / "input.manifest"
    refs = await make_manifest(f"s3://{bucket}/site-a/", out)
    # THEN it holds exactly the two images under the prefix, one JSON object per line
    expected = [f"s3://{bucket}/site-a/cam1/0001.jpg", f"s3://{bucket}/site-a/cam2/0002.PNG"]
    assert refs == expected
    assert [json.loads(line) for line in out.read_text().splitlines()] == [{"source-ref": r} for r in expected]


async def test_local_folder_is_uploaded_and_mapped_onto_the_prefix(bucket: str, tmp_path: Path) -> None:
    folder = _images(tmp_path / "photos", ["a.jpg", "night/b.png"])
    out = tmp_path / "input.manifest"
    refs = await make_manifest(str(folder), out, s3_prefix=f"s3://{bucket}/jobs/42", do_upload=True)
    assert refs == [f"s3://{bucket}/jobs/42/a.jpg", f"s3://{bucket}/jobs/42/night/b.png"]
    assert await list_s3_images(f"s3://{bucket}/jobs/42/") == refs  # really uploaded
    async with get_session().create_client("s3") as s3:
        body = await (await s3.get_object(Bucket=bucket, Key="jobs/42/a.jpg"))["Body"].read()
    assert body == (folder / "a.jpg").read_bytes()


async def test_empty_prefix_and_missing_bucket_are_clear_errors(bucket: str, tmp_path: Path) -> None:
    with pytest.raises(LabelsError, match="no .jpg/.jpeg/.png objects under"):
        await make_manifest(f"s3://{bucket}/nothing-here/", tmp_path / "m")
    with pytest.raises(LabelsError, match="Check the bucket exists"):
        await make_manifest(f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/x/", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_cli_needs_a_prefix_for_a_local_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _images(tmp_path / "photos", ["a.jpg"])
    assert main(["make-manifest", str(folder), "-o", str(tmp_path / "m")]) == 2
    assert "--s3-prefix" in capsys.readouterr().err
    assert main(["make-manifest", str(folder), "--s3-prefix", "s3://bkt/p", "-o", str(tmp_path / "m")]) == 0
    assert json.loads((tmp_path / "m").read_text()) == {"source-ref": "s3://bkt/p/a.jpg"}
