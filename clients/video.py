"""Analyse stored video: frames at a chosen rate through the PPE engine, a JSON timeline, an annotated MP4.

Example:
    python -m clients.video site-a.mp4 --fps 1 --timeline site-a.json --annotated site-a-annotated.mp4
    python -m clients.video s3://ppe-frames/videos/gate.mp4 --fps 0.5 --required HEAD_COVER FACE_COVER
"""

import argparse
import asyncio
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
from tqdm import tqdm

from shared.rekognition import (
    DetectProtectiveEquipmentResponse,
    EquipmentType,
    SummarizationAttributes,
    person_verdict,
)

COLOURS = {"with": (60, 180, 60), "without": (40, 40, 230), "indeterminate": (0, 200, 230)}


class PPEDetector(Protocol):
    model_version: str

    def detect(
        self, image_bgr: np.ndarray, attributes: SummarizationAttributes | None = None
    ) -> DetectProtectiveEquipmentResponse: ...


class VideoError(Exception):
    """The video cannot be read; the message says why."""


def sample_frames(path: Path, fps: float) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yields (sample index, timestamp in ms, frame) every 1/fps seconds of video time."""
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"{path} is not a video OpenCV can decode")
    step_ms = 1000.0 / fps
    next_ms = 0.0
    sample = 0
    video_fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    index = 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            timestamp_ms = index * 1000.0 / video_fps
            index += 1
            if timestamp_ms + 1e-6 >= next_ms:
                yield sample, round(timestamp_ms), frame
                sample += 1
                next_ms += step_ms
    finally:
        capture.release()


def video_info(path: Path) -> tuple[float, int]:
    capture = cv2.VideoCapture(str(path))
    try:
        return capture.get(cv2.CAP_PROP_FPS) or 25.0, int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()


def annotate(frame: np.ndarray, response: DetectProtectiveEquipmentResponse, attributes: SummarizationAttributes,
             timestamp_ms: int) -> np.ndarray:
    image = frame.copy()
    height, width = image.shape[:2]

    def rect(box: Any) -> tuple[tuple[int, int], tuple[int, int]]:
        return (
            (int(box.Left * width), int(box.Top * height)),
            (int((box.Left + box.Width) * width), int((box.Top + box.Height) * height)),
        )

    for person in response.Persons:
        verdict = person_verdict(person, attributes.RequiredEquipmentTypes, attributes.MinConfidence)
        colour = COLOURS[verdict]
        top_left, bottom_right = rect(person.BoundingBox)
        cv2.rectangle(image, top_left, bottom_right, colour, 2)
        covered = sorted(
            {d.Type.value for part in person.BodyParts for d in part.EquipmentDetections if d.CoversBodyPart.Value}
        )
        label = f"#{person.Id} {verdict}" + (f" [{', '.join(covered)}]" if covered else "")
        cv2.putText(image, label, (top_left[0], max(14, top_left[1] - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 2)
        for part in person.BodyParts:
            for detection in part.EquipmentDetections:
                a, b = rect(detection.BoundingBox)
                cv2.rectangle(image, a, b, (255, 160, 0) if detection.CoversBodyPart.Value else (0, 0, 255), 1)
    cv2.putText(image, f"{timestamp_ms / 1000:.1f}s", (8, height - 10), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    return image


def analyse(
    path: Path,
    engine: PPEDetector,
    *,
    fps: float,
    attributes: SummarizationAttributes,
    annotated: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    video_fps, frame_count = video_info(path)
    expected = max(1, int(frame_count / video_fps * fps) + 1) if frame_count > 0 else None
    frames: list[dict[str, Any]] = []
    writer: cv2.VideoWriter | None = None
    with tqdm(total=expected, unit="frame", desc=f"analysing {path.name}", disable=not progress) as bar:
        for sample, timestamp_ms, frame in sample_frames(path, fps):
            response = engine.detect(frame, attributes)
            frames.append(
                {
                    "index": sample,
                    "timestamp_ms": timestamp_ms,
                    "persons": [p.model_dump(mode="json") for p in response.Persons],
                    "summary": response.Summary.model_dump(mode="json") if response.Summary else None,
                }
            )
            if annotated is not None:
                if writer is None:
                    height, width = frame.shape[:2]
                    writer = cv2.VideoWriter(str(annotated), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
                    if not writer.isOpened():
                        raise VideoError(f"cannot write {annotated}: no MP4 encoder available")
                writer.write(annotate(frame, response, attributes, timestamp_ms))
            bar.update(1)
    if writer is not None:
        writer.release()
    if not frames:
        raise VideoError(f"{path} has no decodable frames")
    return {
        "source": str(path),
        "sample_fps": fps,
        "video_fps": video_fps,
        "model_version": engine.model_version,
        "summarization": attributes.model_dump(mode="json"),
        "frames": frames,
    }


async def download_s3(uri: str, target: Path) -> None:
    from shared.aws import aws_client
    from shared.config import PlatformSettings

    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise VideoError(f"{uri} is not s3://bucket/key")
    async with aws_client("s3", PlatformSettings()) as s3:
        response = await s3.get_object(Bucket=bucket, Key=key)
        async with response["Body"] as body:
            target.write_bytes(await body.read())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m clients.video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a video file, or s3://bucket/key (uses AWS_ENDPOINT_URL if set)")
    parser.add_argument("--fps", type=float, default=1.0, help="frames analysed per second of video")
    parser.add_argument("--timeline", type=Path, help="write the JSON timeline here (default: stdout)")
    parser.add_argument("--annotated", type=Path, help="also write an annotated MP4 here")
    parser.add_argument("--required", nargs="+", default=["HEAD_COVER"], choices=[e.value for e in EquipmentType])
    parser.add_argument("--min-confidence", type=float, default=80.0)
    parser.add_argument("--model-dir", type=Path, help="model cache (default: $PPE_MODEL_DIR)")
    args = parser.parse_args(argv)
    if args.fps <= 0:
        parser.error("--fps must be positive")
    from services.detector.local_engine.pipeline import LocalPipeline

    attributes = SummarizationAttributes(MinConfidence=args.min_confidence, RequiredEquipmentTypes=args.required)
    try:
        engine = LocalPipeline(args.model_dir, intra_op_threads=2)
        with tempfile.TemporaryDirectory() as scratch:
            path = Path(args.source)
            if args.source.startswith("s3://"):
                path = Path(scratch) / Path(args.source).name
                asyncio.run(download_s3(args.source, path))
            elif not path.exists():
                raise VideoError(f"{path} does not exist")
            timeline = analyse(path, engine, fps=args.fps, attributes=attributes, annotated=args.annotated)
    except VideoError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(timeline, indent=1)
    if args.timeline:
        args.timeline.write_text(text)
        print(f"timeline: {args.timeline} ({len(timeline['frames'])} frames)", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
