"""Prometheus metrics of reporting.

Request counts and latency come from shared.http, queue lag and handler time from shared.sqs.
"""

from prometheus_client import Counter

FRAMES = Counter("reporting_frames_total", "FrameAnalyzed messages by outcome.", ["outcome"])
PERSONS = Counter("reporting_person_events_total", "Person events stored.")
INCIDENTS = Counter("reporting_incident_changes_total", "IncidentChanged messages stored.", ["status"])
DIGESTS_SENT = Counter("reporting_digests_total", "Digest e-mails by outcome.", ["outcome"])
