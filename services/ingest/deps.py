"""What ingest's app talks to, built by main.py (or a test) in a fixed order."""

from dataclasses import dataclass
from typing import Any

from services.ingest.adapters.cameras import CameraDirectory
from services.ingest.adapters.db import CameraRepository, FrameLedger, SharedRateLimiter
from services.ingest.config import IngestSettings
from services.ingest.domain import RateLimiter
from services.ingest.handlers import FrameHandler
from shared.access.http import Access
from shared.s3 import FrameStore
from shared.sqs import QueueResolver


@dataclass
class IngestDeps:
    """Everything the app talks to, built by main.py (or a test) in a fixed order."""

    settings: IngestSettings
    cameras: CameraDirectory
    camera_repository: CameraRepository
    ledger: FrameLedger
    store: FrameStore
    resolver: QueueResolver
    sqs: Any
    intake: FrameHandler
    limiter: RateLimiter | SharedRateLimiter
    access: Access | None = None  # None: only INGEST_ADMIN_TOKEN (tests of the camera side)
