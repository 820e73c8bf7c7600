"""What an alert says, built from a NotificationRequested; no I/O.

Every channel gets the same facts: what (missing PPE, severity), where (site / zone / camera), when,
confidence, and an expiring presigned link to the face-blurred copy of the frame (never the raw frame;
no link when the frame is no longer stored).
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.contracts import NotificationRequested

SIGNATURE_HEADER = "X-PPE-Signature"
DELIVERY_HEADER = "X-PPE-Delivery"


@dataclass(frozen=True)
class Alert:
    delivery_id: str
    title: str
    text: str
    document: dict[str, Any]  # the JSON body of webhooks and SNS messages
    snapshot: bytes | None = None  # JPEG: the stored face-blurred copy the link points to


def _missing(request: NotificationRequested) -> str:
    return ", ".join(str(item).replace("_", " ").lower() for item in request.incident.missing_equipment) or "PPE"


def render(
    request: NotificationRequested, *, frame_url: str | None, url_expires_at: datetime, snapshot: bytes | None
) -> Alert:
    incident = request.incident
    where = f"site {incident.site_id} / zone {incident.zone_id} / camera {incident.camera_id}"
    if incident.status == "resolved":
        title = f"[RESOLVED] PPE violation ended: {_missing(request)} at {incident.camera_id}"
        lead = f"The PPE violation ({_missing(request)} missing) at {where} has ended."
    else:
        title = f"[{incident.severity.upper()}] PPE violation: {_missing(request)} missing at {incident.camera_id}"
        lead = f"A person without {_missing(request)} was seen at {where}."
    if request.escalation_step:
        title = f"[ESCALATION {request.escalation_step}] Not acknowledged: {title}"
        lead = f"Nobody has acknowledged this incident yet (escalation step {request.escalation_step}). {lead}"
    lines = [
        lead,
        f"Missing PPE: {_missing(request)}",
        f"Where: {where}",
        f"Started: {incident.started_at.isoformat()}",
        f"Last seen: {incident.last_seen_at.isoformat()}",
    ]
    if incident.resolved_at is not None:
        lines.append(f"Resolved: {incident.resolved_at.isoformat()}")
    lines += [
        f"Confidence: {incident.max_confidence:.1f}%",
        f"Severity: {incident.severity}",
        f"Frame: {frame_url} (faces blurred; link expires {url_expires_at.isoformat()})"
        if frame_url
        else "Frame: not available (no longer stored)",
        f"Incident: {incident.incident_id}",
    ]
    document = {
        "delivery_id": request.delivery_id,
        "event": "incident.escalated" if request.escalation_step else f"incident.{incident.status}",
        "escalation_step": request.escalation_step,
        "incident": incident.model_dump(mode="json"),
        "frame_id": incident.frame_id,
        "captured_at": request.captured_at.isoformat(),
        "frame_url": frame_url,  # the face-blurred copy; None when the frame is gone
        "frame_url_expires_at": url_expires_at.isoformat() if frame_url else None,
    }
    return Alert(request.delivery_id, title, "\n".join(lines), document, snapshot)


def link_expiry(now: datetime, expires_s: int) -> datetime:
    return now + timedelta(seconds=expires_s)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." + body>`: receivers check both and reject old stamps."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
