"""Prometheus metrics of the detector (queue lag and handler time come from shared.sqs)."""

from prometheus_client import Counter, Histogram

FRAMES_ANALYZED = Counter("ppe_detector_frames_analyzed_total", "Frames analysed and published.", ["engine"])
FAILURES = Counter("ppe_detector_failures_total", "Frames that failed, by reason.", ["reason"])
DUPLICATES = Counter("ppe_detector_duplicate_frames_total", "Frames seen again after their result was published.")
STAGE_SECONDS = Histogram(
    "ppe_detector_stage_seconds",
    "Duration of each stage of a frame's analysis.",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_REQUESTS = Counter("ppe_detector_api_requests_total", "Rekognition-compatible API calls.", ["operation", "outcome"])
