"""The engine plug-in interface: one Protocol for PPE engines, one for custom-label engines, and typed errors.

Engines take the encoded image (JPEG/PNG bytes, already checked by `adapters.images.inspect_image`), so an
engine may decode it where it runs (a worker process) or send it as is (Rekognition).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from shared.images import InvalidImage as InvalidImage  # the one malformed-image error (shared.images)
from shared.rekognition import BoundingBox, DetectCustomLabelsResponse, DetectProtectiveEquipmentResponse
from shared.rekognition import SummarizationAttributes as SummarizationAttributes


@dataclass(frozen=True)
class ImageInput:
    """An encoded image and what its header says."""

    data: bytes
    content_type: Literal["image/jpeg", "image/png"]
    width: int
    height: int


class EngineError(Exception):
    """The engine failed on a valid image (model crash, backend error). May succeed on retry."""


class EngineThrottled(EngineError):
    """The backend refused for rate reasons after our own retries; retry later."""


class EngineUnavailable(Exception):
    """The engine cannot start (models not fetched, bad configuration). The message says what to do."""


@runtime_checkable
class PPEEngine(Protocol):
    """Answers DetectProtectiveEquipment."""

    name: str

    @property
    def model_version(self) -> str: ...

    async def start(self) -> None:
        """Load models / open clients; raise EngineUnavailable with the fix when it cannot."""

    async def detect_ppe(
        self, image: ImageInput, attributes: SummarizationAttributes | None
    ) -> DetectProtectiveEquipmentResponse: ...

    async def close(self) -> None: ...


@runtime_checkable
class CustomLabelEngine(Protocol):
    """Answers DetectCustomLabels for one model.

    `needs_persons`: the engine classifies person crops (e.g. a vest classifier on the torso) and is given
    the person boxes found by the PPE engine; otherwise it looks at the whole image and runs concurrently
    with the PPE engine.
    """

    name: str
    needs_persons: bool

    @property
    def model_version(self) -> str: ...

    async def start(self) -> None: ...

    async def detect_labels(
        self,
        image: ImageInput,
        *,
        persons: Sequence[BoundingBox] | None = None,
        min_confidence: float | None = None,
        max_results: int | None = None,
    ) -> DetectCustomLabelsResponse: ...

    async def close(self) -> None: ...


@runtime_checkable
class FusedEngine(Protocol):
    """Optional, on a PPEEngine: PPE and some person-crop label engines in one call (one decode, one round trip).

    The local engine has it (its crop models run in the same worker process); callers check
    `isinstance(engine, FusedEngine) and engine.can_fuse(labels)` and fall back to the two-step path otherwise.
    """

    def can_fuse(self, engine: CustomLabelEngine) -> bool: ...

    async def detect_ppe_with_labels(
        self, image: ImageInput, attributes: SummarizationAttributes | None, engines: Sequence[CustomLabelEngine]
    ) -> tuple[DetectProtectiveEquipmentResponse, dict[str, DetectCustomLabelsResponse]]: ...
