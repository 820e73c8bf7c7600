"""The alert image: the frame as JPEG with its face regions blurred beyond recognition (shared.privacy)."""

from shared.privacy import SnapshotError, blur_regions

__all__ = ["SnapshotError", "blur_regions"]
