"""Escalation steps in a rule, and what an escalated alert says (no I/O)."""

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.notifier.domain import RulePolicy
from services.notifier.messages import render
from shared.contracts import FrameRef, IncidentChanged, NotificationRequested

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_a_rule_takes_up_to_two_steps_each_with_channels_and_a_positive_delay() -> None:
    policy = RulePolicy.model_validate({"escalation": [{"after_min": 10, "channel_ids": [7]},
                                                       {"after_min": 20, "channel_ids": [8, 9]}]})
    assert [(s.after_min, s.channel_ids) for s in policy.escalation] == [(10, [7]), (20, [8, 9])]
    assert RulePolicy().escalation == []
    for bad in ([{"after_min": 0, "channel_ids": [1]}], [{"after_min": 5, "channel_ids": []}],
                [{"after_min": 5, "channel_ids": [1]}] * 3, [{"after_min": 5, "channel_ids": [1], "to": "x"}]):
        with pytest.raises(ValidationError):
            RulePolicy.model_validate({"escalation": bad})


def request(step: int) -> NotificationRequested:
    incident = IncidentChanged(
        incident_id="inc-1", status="open", camera_id="cam-1", site_id="site-1", zone_id="gate",
        missing_equipment=["HEAD_COVER"], severity="critical", started_at=T0, last_seen_at=T0, frame_id="f-1",
        max_confidence=97.0, version=1)
    frame = FrameRef(bucket="frames", key="frames/site-1/cam-1/f-1.jpg", content_type="image/jpeg", size_bytes=10,
                     width=640, height=480)
    return NotificationRequested(delivery_id="d-1", channel_id=3, incident=incident, frame=frame, captured_at=T0,
                                 blur_faces=True, escalation_step=step)


def test_an_escalated_alert_says_nobody_acknowledged_and_which_step() -> None:
    plain = render(request(0), frame_url=None, url_expires_at=T0, snapshot=None)
    escalated = render(request(2), frame_url=None, url_expires_at=T0, snapshot=None)
    assert plain.document["event"] == "incident.open" and not plain.title.startswith("[ESCALATION")
    assert escalated.title.startswith("[ESCALATION 2] Not acknowledged: [CRITICAL] PPE violation")
    assert "Nobody has acknowledged this incident yet" in escalated.text
    assert (escalated.document["event"], escalated.document["escalation_step"]) == ("incident.escalated", 2)
