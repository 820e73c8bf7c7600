"""A bounded, ordered, crash-safe on-disk queue of frames waiting to be sent.

Every sampled frame is written here first and removed only after ingest accepted it, so frames survive an
ingest outage and an agent restart, and are sent in capture order. Files are written to a temporary name
and renamed, so a crash never leaves a half-written frame behind.
"""

import json
import os
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path


@dataclass(frozen=True)
class SpooledFrame:
    sequence: int
    path: Path
    captured_at: datetime
    client_frame_id: str

    def read(self) -> bytes:
        return self.path.read_bytes()


class Spool:
    def __init__(self, directory: Path, *, max_frames: int) -> None:
        self.directory = directory
        self.max_frames = max_frames
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()
        self._lock = threading.Lock()
        existing = self._sequences()
        self._next = (existing[-1] + 1) if existing else 0
        self.dropped = 0

    def _sequences(self) -> list[int]:
        return sorted(int(p.stem) for p in self.directory.glob("*.jpg") if p.stem.isdigit())

    def __len__(self) -> int:
        return len(self._sequences())

    def put(self, jpeg: bytes, *, captured_at: datetime, client_frame_id: str) -> int:
        """Store a frame; drops the oldest beyond max_frames. Returns how many were dropped."""
        with self._lock:
            sequence = self._next
            self._next += 1
            name = f"{sequence:012d}"
            meta_tmp = self.directory / f"{name}.json.tmp"
            meta_tmp.write_text(json.dumps({"captured_at": captured_at.isoformat(), "client_frame_id": client_frame_id}))
            os.replace(meta_tmp, self.directory / f"{name}.json")
            image_tmp = self.directory / f"{name}.jpg.tmp"
            image_tmp.write_bytes(jpeg)
            os.replace(image_tmp, self.directory / f"{name}.jpg")  # the .jpg appearing commits the entry
            dropped = 0
            sequences = self._sequences()
            while len(sequences) > self.max_frames:
                self._remove(sequences.pop(0))
                dropped += 1
            self.dropped += dropped
            return dropped

    def oldest(self) -> SpooledFrame | None:
        with self._lock:
            for sequence in self._sequences():
                image = self.directory / f"{sequence:012d}.jpg"
                meta_path = image.with_suffix(".json")
                try:
                    meta = json.loads(meta_path.read_text())
                except (FileNotFoundError, json.JSONDecodeError):
                    self._remove(sequence)  # orphan from a crash between the two renames
                    continue
                return SpooledFrame(
                    sequence, image, datetime.fromisoformat(meta["captured_at"]), meta["client_frame_id"]
                )
            return None

    def remove(self, frame: SpooledFrame) -> None:
        with self._lock:
            self._remove(frame.sequence)

    def _remove(self, sequence: int) -> None:
        for suffix in (".jpg", ".json"):
            (self.directory / f"{sequence:012d}{suffix}").unlink(missing_ok=True)
