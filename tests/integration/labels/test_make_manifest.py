"""S3 round trip against a real moto server: make-manifest from a prefix or an uploaded folder, and import-gt
downloading the labelled images back."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import cv2
import numpy as np
import pytest
from aiobotocore.session import get_session

from model_workshop.labels.cli import main
from model_workshop.labels.errors import LabelsError
from model_workshop.labels.manifest import list_s3_images, make_manifest
from model_workshop.labels.model import Dataset


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


async def test_round_trip_upload_label_download(bucket: str, tmp_path: Path) -> None:
    # GIVEN a local folder uploaded for labelling, and the job's output manifest for its images
    folder = tmp_path / "photos"
    for name, (width, height) in {"a.jpg": (64, 48), "sub/b.jpg": (32, 32)}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(folder / name), np.zeros((height, width, 3), dtype=np.uint8))
    refs = await make_manifest(str(folder), tmp_path / "in.manifest", s3_prefix=f"s3://{bucket}/job", do_upload=True)
    output = tmp_path / "output.manifest"
    output.write_text(
        "\n".join(
            json.dumps(
                {
                    "source-ref": ref,
                    "vest-check": index,
                    "vest-check-metadata": {
                        "class-name": ["no_vest", "vest"][index],
                        "type": "groundtruth/image-classification",
                    },
                }
            )
            for index, ref in enumerate(refs)
        )
    )
    # WHEN it is imported with --download-to (a sync CLI call: run it off the event loop)
    dataset_file, images = tmp_path / "dataset.json", tmp_path / "images"
    args = ["import-gt", str(output), "--download-to", str(images), "-o", str(dataset_file)]
    assert await asyncio.to_thread(main, args) == 0
    # THEN the images are local under their keys and the dataset points at them, sizes read from the files
    dataset = Dataset.load(dataset_file)
    assert [(i.key, i.image_label, i.width, i.height) for i in dataset.images] == [
        ("job/a.jpg", "no_vest", 64, 48),
        ("job/sub/b.jpg", "vest", 32, 32),
    ]
    assert (images / "job/sub/b.jpg").read_bytes() == (folder / "sub/b.jpg").read_bytes()
    assert all(i.path is not None and Path(i.path).is_file() for i in dataset.images)
