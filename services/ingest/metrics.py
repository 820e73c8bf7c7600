"""Prometheus metrics of ingest.

Request counts and latency come from shared.http, queue lag and handler time from shared.sqs.
"""

from prometheus_client import Counter

ACCEPTED = Counter("ingest_frames_accepted_total", "Frames accepted (duplicate = same client_frame_id).", ["duplicate"])
BYTES = Counter("ingest_bytes_total", "Image bytes by outcome.", ["outcome"])
REJECTS = Counter("ingest_rejects_total", "Refused requests by reason.", ["reason"])
